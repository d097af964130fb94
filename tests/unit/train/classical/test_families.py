"""The classical families and the schema agree."""

from spectragrid.core.config import complete_model, load_schema
from spectragrid.train.classical import FAMILIES, is_classical
from spectragrid.train.classical.families import FAMILY_REGISTRY


def test_every_family_is_registered_and_in_the_schema():
    schema = load_schema()
    assert set(FAMILY_REGISTRY) == set(FAMILIES)
    assert set(FAMILIES) <= set(schema["$defs"]["model"]["properties"]["arch"]["enum"])
    assert is_classical("svm") and not is_classical("cnn")


def test_tuned_parameters_are_lists_of_candidates_and_the_others_single_values():
    for arch, family in FAMILY_REGISTRY.items():
        params = complete_model({"arch": arch})["params"]
        assert set(family.tuned) <= set(params), arch
        for key, value in params.items():
            assert isinstance(value, list) == (key in family.tuned), (arch, key)


def test_classical_models_train_without_epochs_and_without_augmentation():
    model = complete_model({"arch": "pls_da"})
    assert model["train"] == {"class_weights": "none", "monitor": "val_macro_f1", "refit": True}
    assert model["preprocessing"] == ["standard"]
    assert complete_model({"arch": "random_forest"})["preprocessing"] == []
