"""The model registry: shapes, seeded init, ONNX parity, parameter checks, sizes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spectragrid.core.config import load_schema
from spectragrid.train.architectures.resnetv2 import StdConv1d
from spectragrid.train.architectures.vgg import AveragePoolTo
from spectragrid.train.classical import FAMILIES as CLASSICAL
from spectragrid.train.export import check_parity, export_onnx
from spectragrid.train.models import (
    IMAGE_REGISTRY,
    REGISTRY,
    ModelError,
    build_model,
    count_parameters,
    flops_per_sample,
    model_params,
    model_preprocessing,
)

ARCHS = list(REGISTRY)
C, L = 3, 128
# The demo: 3 channels of 446 points, 2 tabular columns, a 2-class target.
DEMO = {"n_channels": 3, "length": 446, "n_tabular": 2, "n_classes": 2}


def small(arch: str, n_channels: int = C, length: int = L, n_tabular: int = 2, **params):
    return build_model(arch, params, n_channels, length, n_tabular, n_classes=3)


@pytest.mark.parametrize("n_tabular", [0, 2])
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_gives_one_logit_per_class(arch, n_tabular):
    torch.manual_seed(0)
    model = small(arch, n_tabular=n_tabular)
    spectra, tabular = torch.rand(5, C, L), torch.rand(5, n_tabular)
    assert model.train()(spectra, tabular).shape == (5, 3)
    with torch.no_grad():
        assert model.eval()(spectra, tabular).shape == (5, 3)


@pytest.mark.parametrize("arch", ARCHS)
def test_under_bf16_autocast_the_trunk_is_bf16_and_the_head_float32(arch):
    model = small(arch)
    seen = {}
    model.head[0].register_forward_hook(lambda m, inp, out: seen.update(head=inp[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        trunk_out = model.trunk(model.spectra_scale(torch.rand(4, C, L)))
        logits = model(torch.rand(4, C, L), torch.rand(4, 2))
    # the transformer's trunk ends in LayerNorm, which autocast runs in float32
    assert trunk_out.dtype == (torch.float32 if arch == "transformer" else torch.bfloat16)
    assert seen["head"] == torch.float32 and logits.dtype == torch.float32
    logits.sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in model.head.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_initial_weights_depend_only_on_the_seed(arch):
    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return small(arch).state_dict()

    first, again, other = weights(3), weights(3), weights(4)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_single_channel_of_any_length_works(arch):
    # 100 is no multiple of the patch (16) nor of the VGG pooling (32).
    torch.manual_seed(0)
    model = small(arch, n_channels=1, length=100).eval()
    with torch.no_grad():
        assert model(torch.rand(4, 1, 100), torch.rand(4, 2)).shape == (4, 3)
    assert flops_per_sample(model, 1, 100) > 0


@pytest.mark.parametrize("n_tabular", [0, 2])
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_export_matches_onnxruntime_at_any_batch_size(arch, n_tabular, tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = small(arch, n_tabular=n_tabular)
    model.fit_scaling(
        rng.uniform(0, 5000, (50, C, L)).astype(np.float32),
        rng.uniform(0, 10, (50, n_tabular)).astype(np.float32),
    )
    # Move batch-norm statistics off their initial values so eval mode is exercised.
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, C, L) * 5000, torch.rand(16, n_tabular) * 10)
    model.eval()
    path = tmp_path / f"{arch}.onnx"
    export_onnx(model, path, C, L, n_tabular, {"arch": arch})
    for batch in (5, 1, 7):
        spectra = rng.uniform(0, 5000, (batch, C, L)).astype(np.float32)
        tabular = rng.uniform(0, 10, (batch, n_tabular)).astype(np.float32)
        with torch.no_grad():
            expected = torch.softmax(
                model(torch.from_numpy(spectra), torch.from_numpy(tabular)), dim=1
            ).numpy()
        assert check_parity(path, spectra, tabular, expected)["n"] == batch


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_steps_reduce_the_loss_on_a_separable_problem(arch):
    torch.manual_seed(0)
    labels = torch.arange(32) % 2
    spectra = torch.rand(32, C, L) * 0.2
    spectra[labels == 1, :, 40:60] += 1.0
    tabular = torch.zeros(32, 0)
    # No dropout, and losses measured in training mode, so the comparison sees
    # only the weight updates.
    model = build_model(arch, {"dropout": 0.0}, C, L, 0, 2).train()
    model.fit_scaling(spectra.numpy(), tabular.numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        before = F.cross_entropy(model(spectra, tabular), labels).item()
    for _ in range(10):
        optimizer.zero_grad()
        F.cross_entropy(model(spectra, tabular), labels).backward()
        optimizer.step()
    with torch.no_grad():
        after = F.cross_entropy(model(spectra, tabular), labels).item()
    assert after < 0.9 * before


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = small(arch).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(1)
    fresh = small(arch).eval()
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    spectra, tabular = torch.rand(3, C, L), torch.rand(3, 2)
    with torch.no_grad():
        assert torch.equal(model(spectra, tabular), fresh(spectra, tabular))


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_parameter_names_the_key_and_the_allowed_ones(arch):
    with pytest.raises(ModelError) as error:
        small(arch, dropuot=0.2)
    message = str(error.value)
    assert repr(arch) in message and "'dropuot'" in message and "did you mean 'dropout'" in message
    assert all(key in message for key in model_params(arch, {}))


def test_every_registered_family_has_its_parameters_in_the_schema():
    schema = load_schema()
    arch_enum = schema["$defs"]["model"]["properties"]["arch"]["enum"]
    # the schema's architectures are the networks here, the image families and
    # the classical families
    assert set(arch_enum) == set(REGISTRY) | set(IMAGE_REGISTRY) | set(CLASSICAL)
    assert not set(REGISTRY) & set(CLASSICAL)
    for arch in REGISTRY:
        assert {"head_hidden", "dropout"} <= set(model_params(arch, {}))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_family_accepts_the_head_parameters(arch):
    model = small(arch, head_hidden=5, dropout=0.3)
    assert model.head[0].out_features == 5 and model.head[2].p == 0.3


def test_defaults_come_fresh_from_the_schema_and_params_are_not_mutated():
    defaults = model_params("mlp", {})
    defaults["hidden"].append(1)
    assert model_params("mlp", {})["hidden"] == [256, 64]
    params = {"hidden": [8]}
    resolved = model_params("mlp", params)
    assert params == {"hidden": [8]} and resolved["batch_norm"] is False


@pytest.mark.parametrize(
    ("arch", "params", "match"),
    [
        ("resnetv2", {"depth": "3_4_6"}, r"'resnetv2'.*params\.depth: '3_4_6' does not match"),
        ("resnetv2", {"depth": 3}, r"'resnetv2'.*params\.depth: 3 is not of type 'string'"),
        ("resnetv2", {"width": 1.5}, r"params\.width: 1\.5 is not of type 'integer'"),
        ("vgg11", {"batch_norm": "yes"}, r"'vgg11'.*params\.batch_norm: 'yes' is not of type"),
        ("vgg16", {"width": 0}, r"'vgg16'.*params\.width: 0 is less than or equal to"),
        ("transformer", {"heads": 5}, r"'heads' \(5\) must divide 'dim' \(64\)"),
        ("transformer", {"pool": "max"}, r"params\.pool: 'max' is not allowed.*allowed: cls, mean"),
        ("mlp", {"hidden": [8, 0]}, r"params\.hidden\.1: 0 is less than the minimum of 1"),
        ("cnn", {"widths": 16}, r"params\.widths: 16 is not of type 'array'"),
        ("mlp", {"dropout": 1.0}, r"params\.dropout: 1\.0 is greater than or equal to"),
    ],
)
def test_bad_parameter_values_are_rejected_with_the_key(arch, params, match):
    with pytest.raises(ModelError, match=f"(?s){match}"):
        small(arch, **params)


def test_unknown_architecture_suggests_the_closest():
    with pytest.raises(ModelError, match=r"'vgg61' is not allowed \(did you mean 'vgg16'\?\)"):
        small("vgg61")


def test_too_short_spectra_are_a_model_error():
    with pytest.raises(ModelError, match=r"'vgg11'.*length 16 are too short"):
        small("vgg11", length=16)


def test_pooling_matrix_equals_adaptive_average_pooling():
    x = torch.randn(2, 3, 13)
    for out in (1, 5, 7, 13, 20):
        assert torch.allclose(AveragePoolTo(13, out)(x), F.adaptive_avg_pool1d(x, out), atol=1e-6)


def test_standardised_conv_ignores_the_weight_scale_and_offset():
    torch.manual_seed(0)
    conv = StdConv1d(4, 6, 3, padding=1, bias=False)
    x = torch.randn(2, 4, 20)
    expected = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(0.5)
    assert torch.allclose(conv(x), expected, atol=1e-4)
    w = conv.weight
    mean, std = w.mean(dim=(1, 2), keepdim=True), w.std(dim=(1, 2), keepdim=True, correction=0)
    standard = (w - mean) / std
    assert torch.allclose(conv(x), F.conv1d(x, standard, padding=1), atol=1e-4)


def test_group_norm_groups_divide_the_channels():
    torch.manual_seed(0)
    model = small("resnetv2", width=3, base_width=8)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_channels % m.num_groups == 0 for m in norms)
    assert {m.num_groups for m in norms} == {24, 32}


def test_transformer_flops_count_embedding_projections_attention_and_mlp():
    # 2 channels x 2 patches (30 points padded to 32) + the class token = 5 tokens.
    params = {"patch": 16, "dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2.0, "head_hidden": 4}
    model = build_model("transformer", params, 2, 30, 0, 2)
    tokens, dim, hidden = 5, 8, 16
    expected = (
        2 * 16 * dim * 2 * 2  # patch embedding: (channel, patch) pairs x dim outputs
        + 2 * dim * 3 * dim * tokens  # q, k, v
        + 2 * 2 * tokens * tokens * dim  # Q K^T and softmax(.) V
        + 2 * dim * dim * tokens  # output projection
        + 2 * 2 * dim * hidden * tokens  # MLP
        + 2 * dim * 4
        + 2 * 4 * 2  # head
    )
    assert flops_per_sample(model, 2, 30) == expected


# Parameters and FLOPs per sample at the demo size with default params (docs/models.md).
DEMO_SIZES = [
    ("cnn", {}, 43_266, 1_919_168),
    ("vgg11", {}, 77_754, 4_670_944),
    ("vgg16", {}, 106_730, 7_881_952),
    ("resnetv2", {}, 404_978, 16_157_536),
    ("transformer", {}, 74_626, 15_021_056),
    ("mlp", {}, 363_650, 726_528),
    ("vgg16", {"width": 0.25}, 366_354, 31_283_136),
    ("resnetv2", {"depth": "3_4_6_3", "width": 1}, 1_038_578, 43_912_032),
]


@pytest.mark.parametrize(("arch", "params", "parameters", "flops"), DEMO_SIZES)
def test_sizes_at_the_demo_shape(arch, params, parameters, flops):
    model = build_model(arch, params, **DEMO)
    assert count_parameters(model) == parameters
    assert flops_per_sample(model, DEMO["n_channels"], DEMO["length"]) == flops


def test_networks_scale_min_max_unless_their_preprocessing_says_otherwise():
    assert model_preprocessing("cnn") == ["minmax"]
    torch.manual_seed(0)
    default = small("cnn")
    assert [type(step).__name__ for step in default.spectra_scale.steps] == ["MinMaxScale"]


@pytest.mark.parametrize("arch", ARCHS)
def test_the_trunk_sees_the_preprocessed_length_and_the_export_takes_raw_spectra(arch, tmp_path):
    """A crop shortens what the trunk sees; the ONNX file still takes the full spectra
    and applies every step inside."""
    rng = np.random.default_rng(0)
    wavelengths = 300 + np.arange(L, dtype=np.float64)
    steps = [
        {"crop": [310, 409]},
        "snv",
        {"savgol": {"window": 7, "polyorder": 2, "deriv": 1}},
        "standard",
    ]
    torch.manual_seed(0)
    model = build_model(arch, {}, C, L, 2, 3, preprocessing=steps, wavelengths=wavelengths)
    assert model.spectra_scale.out_length == 100
    t = np.linspace(0, 1, L)
    spectra = (rng.uniform(0.5, 1.5, (40, C, 1)) * np.exp(-(((t - 0.5) / 0.2) ** 2)) * 1000).astype(
        np.float32
    ) + rng.normal(0, 5, (40, C, L)).astype(np.float32)
    tabular = rng.uniform(0, 10, (40, 2)).astype(np.float32)
    model.fit_scaling(spectra, tabular)
    model.eval()
    path = tmp_path / "model.onnx"
    export_onnx(model, path, C, L, 2, {"arch": arch})
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(spectra), torch.from_numpy(tabular)), 1)
    assert check_parity(path, spectra, tabular, expected.numpy())["n"] == 40


def test_a_classical_family_is_not_a_network():
    with pytest.raises(ModelError, match="'logreg' is a classical family"):
        build_model("logreg", {}, C, L, 0, 2)
