import copy
import time
from pathlib import Path

import pytest
import yaml

from spectragrid.core.config import (
    ConfigError,
    complete_model,
    config_hash,
    load_schema,
    trained_models,
    validate,
)
from spectragrid.core.layout import NAME_PATTERN

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_the_default_config_is_valid_and_gets_defaults(config):
    del config["report"]
    checked = validate(config)
    assert checked["report"]["best_metric"] == "test_macro_f1"
    # the grid's two models and two judges outside the grid judge the labels from all
    # channels, one source per model averaged; cleanlab's two pruning rules must agree
    assert checked["label_issues"]["models"] == ["cnn", "pls_da", "random_forest", "svm"]
    assert checked["grid"]["models"] == ["cnn", "pls_da"]
    assert checked["label_issues"]["channel_sets"] == ["all"]
    assert checked["label_issues"]["combine"] == "model_mean"
    assert checked["label_issues"]["filter_by"] == "both"
    assert trained_models(checked) == ["cnn", "pls_da", "random_forest", "svm"]


def test_evidence_channel_sets_must_be_in_the_grid(config):
    config["label_issues"]["channel_sets"] = ["all", "ex278"]
    with pytest.raises(ConfigError, match=r"label_issues\.channel_sets: 'ex278' is not defined"):
        validate(config)
    config["label_issues"]["channel_sets"] = "every"
    with pytest.raises(ConfigError, match=r"label_issues\.channel_sets: 'every' is not allowed"):
        validate(config)


def test_unknown_key_names_the_path_and_suggests(config):
    config["splits"]["seed"] = [1]
    with pytest.raises(ConfigError, match=r"splits: unknown key 'seed' \(did you mean 'seeds'\?\)"):
        validate(config)


def test_wrong_type_names_the_key(config):
    config["splits"]["k"] = "five"
    with pytest.raises(ConfigError, match=r"splits\.k: 'five' is not of type 'integer'"):
        validate(config)


def test_unknown_name_in_the_grid(config):
    config["grid"]["models"] = ["cnm"]
    with pytest.raises(
        ConfigError, match=r"grid\.models: 'cnm' is not defined \(did you mean 'cnn'\?\)"
    ):
        validate(config)


def test_names_that_could_escape_results_are_refused(config):
    config["channel_sets"]["../../etc"] = ["277"]
    with pytest.raises(ConfigError, match="channel_sets"):
        validate(config)


def test_unknown_channel_in_a_channel_set(config):
    config["channel_sets"]["all"] = ["277", "999"]
    with pytest.raises(ConfigError, match=r"channel_sets\.all: '999' is not defined"):
        validate(config)


def test_hash_ignores_key_order(config):
    reordered = dict(reversed(list(copy.deepcopy(config).items())))
    assert config_hash(config) == config_hash(reordered)
    config["models"]["cnn"]["train"]["lr"] = 0.1
    assert config_hash(config) != config_hash(reordered)


def test_bad_model_params_are_rejected_before_any_job(config):
    config["models"]["cnn"]["params"]["widht"] = 3
    with pytest.raises(
        ConfigError, match=r"models\.cnn\.params: .*'widht' \(did you mean 'widths'\?\)"
    ):
        validate(config)


def test_every_architecture_is_accepted(config):
    for arch in ("cnn", "vgg11", "vgg16", "resnetv2", "transformer", "mlp"):
        config["models"]["cnn"] = {"arch": arch}
        validate(config)


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    config[last] = value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # wrong types
        ("models.cnn.train.lr", "fast", "models.cnn.train.lr: 'fast' is not of type 'number'"),
        (
            "dataset.channels",
            [277, "380"],
            "dataset.channels.0: 277 is not of type 'string' (quote it in the YAML: \"277\")",
        ),
        (
            "models.cnn.transforms",
            {"da": "yes"},
            "models.cnn.transforms.da: 'yes' is not of type boolean or object",
        ),
        ("splits.grouped", "yes", "splits.grouped: 'yes' is not of type 'boolean'"),
        # unknown keys
        (
            "models.cnn.train.epoch",
            3,
            "models.cnn.train: unknown key 'epoch' (did you mean 'epochs'?); allowed keys: ",
        ),
        (
            "label_issues.filter",
            "both",
            "label_issues: unknown key 'filter' (did you mean 'filter_by'?)",
        ),
        # unknown names in the grid and elsewhere
        (
            "grid.targets",
            ["OVA_KO"],
            "grid.targets: 'OVA_KO' is not defined (did you mean 'OVA_OK'?); "
            "defined: AVA_IN, OVA_OK",
        ),
        (
            "grid.channel_sets",
            ["al"],
            "grid.channel_sets: 'al' is not defined (did you mean 'all'?); defined: all, ex277",
        ),
        (
            "label_issues.models",
            ["vgg"],
            "label_issues.models: 'vgg' is not defined; defined: cnn",
        ),
        (
            "cleaning.saturation",
            {"2777": 6500, "380": 7000},
            "cleaning.saturation: '2777' is not defined (did you mean '277'?); "
            "defined: 277, 380, 425",
        ),
        (
            "models.cnn.transforms",
            {"new_fluorimeter": {"points": {"lspr": 10}}},
            "models.cnn.transforms.new_fluorimeter.points: 'lspr' is not defined",
        ),
        (
            "models.cnn.tabular",
            ["brix"],
            "models.cnn.tabular: ['brix'] must also be listed in dataset.columns.tabular",
        ),
        ("models.cnn.arch", "resnet", "models.cnn.arch: 'resnet' is not allowed (did you mean"),
        (
            "targets.OVA_OK",
            "AVA XX",
            "targets.OVA_OK: 'AVA XX' does not match '^(AVA( (IN|INs|TY|TYs|INTY|INsTYs))?|"
            "OVA \\\\S(.*\\\\S)?)$' (a code: AVA (one class per label), AVA IN, INs, TY, TYs, "
            "INTY or INsTYs, or OVA X",
        ),
        # impossible split sizes and demo sizes
        (
            "splits.k",
            2,
            "splits.k: 2 is less than the minimum of 3 (cell f tests on fold f, validates on "
            "fold f+1 and trains on the rest)",
        ),
        ("splits.k", 101, "splits.k: 101 is greater than the maximum of 100"),
        ("splits.seeds", [], "splits.seeds: [] should be non-empty"),
        (
            "dataset.demo.n_samples",
            150,
            "dataset.demo.n_samples: 150 is less than the minimum of 200 (the demo needs 200",
        ),
        # a column both requested and dropped as leakage
        (
            "dataset.columns.provenance",
            ["outil_id", "sa_controle"],
            "dataset.columns.provenance: 'sa_controle' starts with one of "
            "dataset.columns.drop_prefixes ['sa_']",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(config, key, value, message):
    _set(config, key, value)
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert message in str(info.value)


def test_every_problem_is_listed_at_once(config):
    config["splits"]["k"] = 2
    config["models"]["cnn"]["train"]["lr"] = "fast"
    config["splits"]["seed"] = [1]
    with pytest.raises(ConfigError) as info:
        validate(config)
    lines = str(info.value).splitlines()
    assert lines[0] == "config is invalid:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  - models.cnn.train.lr",
        "  - splits",
        "  - splits.k",
    ]


def test_no_group_column_is_a_valid_config(config):
    config["dataset"]["columns"]["group"] = None
    assert validate(config)["dataset"]["columns"]["group"] is None


def test_validated_config_is_canonical_whatever_the_key_order(config):
    config["targets"]["mine"] = {"column": "severity", "classes": {"VR": ["VR"], "OK": ["OK"]}}
    reordered = copy.deepcopy(config)
    reordered["cleaning"]["saturation"] = dict(reversed(config["cleaning"]["saturation"].items()))
    reordered["models"]["cnn"]["train"] = dict(reversed(config["models"]["cnn"]["train"].items()))
    # Snakemake compares params by repr, which follows key order
    assert repr(validate(config)) == repr(validate(reordered))
    checked = validate(config)
    # keys sorted, every schema default filled in
    train_keys = load_schema()["$defs"]["train"]["properties"]
    assert list(checked["models"]["cnn"]["train"]) == sorted(train_keys)
    assert checked["models"]["cnn"]["train"]["precision"] == "auto"
    # a custom target's class order is its models' class order: kept as written
    assert list(checked["targets"]["mine"]["classes"]) == ["VR", "OK"]
    assert list(checked["targets"]["mine"]) == ["classes", "column"]


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x\n"])
@pytest.mark.parametrize("section", ["models", "targets", "channel_sets"])
def test_a_name_that_is_not_a_plain_folder_name_is_refused(config, section, name):
    config[section][name] = copy.deepcopy(next(iter(config[section].values())))
    with pytest.raises(ConfigError) as caught:
        validate(config)
    assert f"{section}: {name!r} is not a valid name" in str(caught.value)
    assert "folder names under results/" in str(caught.value)


@pytest.mark.parametrize("name", ["../x", "a/b", "x\n"])
def test_a_dataset_name_that_is_not_a_plain_folder_name_is_refused(config, name):
    config["dataset"]["name"] = name
    with pytest.raises(ConfigError, match=r"dataset\.name: .* is not a valid name"):
        validate(config)


def test_the_schema_checks_names_with_the_wildcard_pattern():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$defs"]["name"]["pattern"] == f"^{NAME_PATTERN}$"


def test_complete_model_fills_every_default_from_the_schema():
    model = complete_model({"arch": "cnn", "train": {"lr": 0.5}})
    schema = load_schema()["$defs"]
    assert model["train"]["lr"] == 0.5
    assert model["train"]["epochs"] == schema["train"]["properties"]["epochs"]["default"]
    assert model["params"]["widths"] == schema["params_cnn"]["properties"]["widths"]["default"]
    assert model["transforms"] == {}


def test_a_transform_given_as_true_or_in_part_gets_its_default_settings():
    model = complete_model(
        {"arch": "mlp", "transforms": {"da": True, "new_fluorimeter": {"p": 0.25}}}
    )
    assert model["transforms"]["da"] == {
        "gain_sd": 0.1,
        "noise_sd": 0.05,
        "shift_scale": 1.5,
        "tabular_sd": 0.05,
    }
    assert model["transforms"]["new_fluorimeter"] == {
        "p": 0.25,
        "points": {"277": 45, "380": 113, "425": 158},
    }
    partial = complete_model({"arch": "mlp", "transforms": {"da": {"gain_sd": 0.3}}})
    assert partial["transforms"]["da"]["gain_sd"] == 0.3
    assert partial["transforms"]["da"]["noise_sd"] == 0.05


def test_a_family_parameter_of_another_family_is_refused():
    with pytest.raises(ConfigError, match=r"params: unknown key 'widths'.*allowed keys"):
        complete_model({"arch": "mlp", "params": {"widths": [4]}})


# --- bounded: a config's size, and what its messages show -----------------------------------


def _nested_anchors(levels: int) -> str:
    """YAML of about one kilobyte that stands for 9**levels values (aliases of aliases)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["top level", "dataset.name"])
def test_nested_anchors_fail_fast_naming_the_problem(where):
    text = (ROOT / "config" / "config.yaml").read_text()
    text = (
        "x_anchors:\n" + "".join(f"  {line}\n" for line in _nested_anchors(9).splitlines()) + text
    )
    if where == "dataset.name":
        text = text.replace("\n  name: demo\n", "\n  name: *l9\n", 1)
    assert len(text.encode()) < len((ROOT / "config" / "config.yaml").read_bytes()) + 1500
    # loaded as Snakemake loads it: the aliases are shared, not copied
    config = yaml.safe_load(text)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert time.perf_counter() - started < 2
    message = str(info.value)
    assert "holds more than 100,000 values, counting each YAML alias (*name) as a copy" in message
    assert ("dataset.name" if where == "dataset.name" else "x_anchors.l9") in message
    assert len(message) < 500


def test_an_alias_inside_its_own_anchor_is_named():
    config = yaml.safe_load("models: &loop {cnn: *loop}\n")
    with pytest.raises(ConfigError, match=r"models\.cnn\.cnn: nested more than 32 levels deep"):
        validate(config)


def test_a_model_checked_alone_is_bounded_too():
    entry = yaml.safe_load(_nested_anchors(7) + "arch: cnn\nparams: {widths: *l7}\n")
    with pytest.raises(ConfigError, match=r"^model is invalid:\n  - .*more than 100,000 values"):
        complete_model(entry)


@pytest.mark.parametrize(
    ("key", "value", "start"),
    [
        ("splits.k", "k" * 100_000, "splits.k: 'kkkk"),
        ("dataset.name", ["x" * 5000] * 50, "dataset.name: ['xxxx"),
        ("report.best_metric", "m" * 100_000, "report.best_metric: 'mmmm"),
        ("grid.models", ["cnn", {"deep": [[["x" * 1000] * 10] * 10]}], "grid.models.1: {'deep'"),
    ],
)
def test_an_offending_value_is_shown_cut_to_about_200_characters(config, key, value, start):
    _set(config, key, value)
    with pytest.raises(ConfigError) as info:
        validate(config)
    (line,) = [ln for ln in str(info.value).splitlines() if ln.startswith(f"  - {start}")]
    assert len(line) < 450
    assert "..." in line or "…" in line


def test_unknown_keys_are_listed_cut_and_counted(config):
    for i in range(25):
        config["splits"][f"{'z' * 1000}{i}"] = 1
    with pytest.raises(ConfigError) as info:
        validate(config)
    (line,) = [ln for ln in str(info.value).splitlines() if ln.startswith("  - splits:")]
    assert line.count("unknown key") == 10
    assert "and 15 more" in line
    assert len(line) < 3000


def test_a_long_text_repeated_by_aliases_is_bounded_too():
    # 90,000 aliases of one 1 MB text: few values, but 90 GB once printed
    text = "s: &s '" + "x" * 1_000_000 + "'\ndataset:\n  name: [" + ", ".join(["*s"] * 90_000)
    config = yaml.safe_load(text + "]\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert time.perf_counter() - started < 2
    assert "  - dataset.name.8" in str(info.value)
    assert "the config holds more than 10,000,000 characters of text" in str(info.value)


def _one_label_column(config: dict) -> dict:
    """The shipped config turned into a study of files with one label column."""
    dataset = config["dataset"]
    del dataset["demo"]
    dataset.update(raw=["data/grain.csv"], truth=None)
    columns = dataset["columns"]
    del columns["severity"], columns["type"]
    columns.update(label="variety", tabular=[], provenance=[])
    dataset["label_map"] = {"barley": "barley", "Wheat": "wheat", "rye ": "rye"}
    config["tabular"] = []
    config["targets"] = {"all": "AVA", "wheat": "OVA wheat"}
    config["grid"]["targets"] = ["all", "wheat"]
    return config


def test_a_data_set_with_one_label_column_is_a_valid_config(config):
    checked = validate(_one_label_column(config))
    assert checked["dataset"]["columns"]["label"] == "variety"
    assert "severity" not in checked["dataset"]["columns"]
    checked["targets"]["own"] = {"column": "label", "classes": {"a": ["rye"], "b": ["wheat"]}}
    validate(checked)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["targets"].update(AVA_IN="AVA IN"),
            "targets.AVA_IN: 'AVA IN' is a code of data sets with a severity and a type "
            "column; this data set has one label column (dataset.columns.label): use 'AVA' "
            "(one class per label), 'OVA <label>', or a user-defined target",
        ),
        (
            lambda c: c["targets"].update(oats="OVA oats"),
            "targets.oats: 'OVA oats': 'oats' is not a label of dataset.label_map; its labels: "
            "'barley', 'rye', 'wheat'",
        ),
        (
            lambda c: c["targets"].update(
                sev={"column": "severity", "classes": {"a": ["rye"], "b": ["wheat"]}}
            ),
            "targets.sev.column: 'severity' is not a label column of this data set, which has "
            "one label column (dataset.columns.label); use label or full_truth",
        ),
        (
            lambda c: c["targets"].update(
                own={"column": "label", "classes": {"a": ["rye"], "b": ["Wheat"]}}
            ),
            "targets.own.classes.b: 'Wheat' is not a label of dataset.label_map (did you mean "
            "'wheat'?); its labels: 'barley', 'rye', 'wheat'",
        ),
        (
            lambda c: c["dataset"]["columns"].update(severity="grade"),
            "dataset.columns: both label and dataset.columns.severity are named; name label "
            "for a data set with one label column, or severity and type (and no label)",
        ),
        (
            lambda c: (
                c["dataset"].update(truth="truth.csv") or c["dataset"]["columns"].update(id=None)
            ),
            "dataset.truth: a truth file names samples by id, and dataset.columns.id is null",
        ),
    ],
)
def test_targets_and_columns_that_do_not_fit_one_label_column_name_the_key(config, change, message):
    config = _one_label_column(config)
    change(config)
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"type": None},
            "dataset.columns.type: not named, beside dataset.columns.severity; a data set with "
            "one label column names it as dataset.columns.label: 'greffon_defaut_severite', "
            "and leaves out severity and type",
        ),
        (
            {"severity": None, "type": None},
            "dataset.columns: no label column named; name label (a data set with one label "
            "column) or severity and type",
        ),
    ],
)
def test_a_missing_type_column_points_to_the_one_column_layout(config, columns, message):
    config["dataset"]["columns"].update(columns)
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert message in str(info.value)
    assert "quote it" not in str(info.value)


def test_an_empty_value_is_not_told_to_be_quoted(config):
    config["dataset"]["name"] = None
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert "dataset.name: is empty (null); give it a value, or remove the key" in str(info.value)
    assert '"None"' not in str(info.value)


def test_demo_and_raw_files_together_name_both_keys(config):
    config["dataset"]["raw"] = ["data/mine.csv"]
    with pytest.raises(ConfigError) as info:
        validate(config)
    assert (
        "dataset.demo and dataset.raw are both set: with dataset.demo the demo data are "
        "generated and studied, and the files of dataset.raw are never read. Remove the "
        "dataset.demo block to study your files, or empty dataset.raw to run the demo"
    ) in str(info.value)


@pytest.mark.parametrize(
    ("code", "valid"),
    [("AVA", True), ("OVA OK", True), ("OVA 11", True), ("OVA VR11", True), ("OVA ZZ", False)],
)
def test_codes_of_the_severity_and_type_layout_are_checked_against_the_label_map(
    config, code, valid
):
    config["targets"]["OVA_OK"] = code
    if valid:
        validate(config)
    else:
        with pytest.raises(ConfigError, match=r"targets.OVA_OK: 'OVA ZZ': 'ZZ' is not a label"):
            validate(config)


def test_the_schema_parsed_once_per_process_is_what_yaml_safe_load_reads():
    from spectragrid.core.config import SCHEMA_PATH

    # yaml.safe_load: PyYAML's pure-Python parser, where load_schema takes libyaml's
    expected = yaml.safe_load(SCHEMA_PATH.read_text())
    assert load_schema() == expected
    # each caller gets its own copy
    first = load_schema()
    first["properties"].clear()
    assert load_schema() == expected
