import pytest

from keras_ser.errors import ParameterError
from keras_ser.recipe import available_recipes, load_recipe, parse_value
from keras_ser.report import PAPERS, paper_key

REQUIRED = [
    "zhao2019_attention_blstm_fcn", "zhao2019_fcn", "zhao2019_attention_fcn",
    "zhao2019_attention_lstm", "zhao2019_attention_blstm", "zhao2018_attention_blstm_fcn",
    "zhang2021_multicnn_1d", "zhang2021_multicnn_2d", "zhang2021_multicnn_3d",
    "zhang2021_multicnn_fusion", "zhang2021_dcnn_blstmwa", "tzirakis2021_semantic",
]


def test_every_required_recipe_loads_and_cites_the_paper():
    names = available_recipes()
    for name in REQUIRED:
        assert name in names
    for name in names:
        recipe = load_recipe(name)
        assert recipe["recipe"]["name"] == name
        # Its figures (or, for a diagnostic, why it has none): test_recipes_all.
        assert paper_key(recipe) in PAPERS, f"{name} cites none of the five papers"


def test_paper_hyperparameters():
    r000 = load_recipe("zhao2019_attention_blstm_fcn")
    assert (r000["train"]["optimizer"], r000["train"]["learning_rate"], r000["train"]["decay"]) == ("adam", 1e-3, 1e-6)
    assert (r000["train"]["batch_size"], r000["train"]["epochs"]) == (100, 100)
    assert r000["train"]["class_weight"] == "inverse_frequency"
    assert (r000["experiment"]["corpus"], r000["experiment"]["protocol"]) == ("emodb", "loso")
    r002 = load_recipe("zhang2021_dcnn_blstmwa")
    assert (r002["stage1"]["optimizer"], r002["stage1"]["learning_rate"], r002["stage1"]["batch_size"],
            r002["stage1"]["epochs"]) == ("nadam", 1e-4, 128, 20)
    assert (r002["train"]["optimizer"], r002["train"]["learning_rate"], r002["train"]["batch_size"],
            r002["train"]["epochs"]) == ("nadam", 5e-6, 16, 30)
    assert r002["train"]["speed_perturbation"] == [0.8, 0.9, 1.0, 1.1, 1.2]
    for name in ("zhang2021_multicnn_1d", "zhang2021_multicnn_2d", "zhang2021_multicnn_3d"):
        r001 = load_recipe(name)
        assert (r001["train"]["batch_size"], r001["train"]["learning_rate"], r001["train"]["epochs"]) == (30, 1e-3, 300)
        assert r001["experiment"]["pooling"] == "mean_segments"


def test_extends_inherits_training_but_not_paper_numbers():
    child = load_recipe("zhao2019_fcn")
    parent = load_recipe("zhao2019_attention_blstm_fcn")
    assert child["train"] == parent["train"]
    assert child["model"]["name"] == "zhao2019_fcn"
    assert {row["WA"] for row in child["paper"]["reported"] if "WA" in row} == {64.5}


def test_overrides_are_typed_and_dotted():
    r = load_recipe("zhao2019_attention_blstm_fcn",
                    ["epochs=2", "train.learning_rate=1e-4", "model.units=4", "corpus=manifest:/x.csv",
                     "train.speed_perturbation=[0.9, 1.1]", "early_stopping=false"])
    assert r["train"]["epochs"] == 2 and isinstance(r["train"]["epochs"], int)
    assert r["train"]["learning_rate"] == 1e-4
    assert r["model"]["units"] == 4
    assert r["experiment"]["corpus"] == "manifest:/x.csv"
    assert r["train"]["speed_perturbation"] == [0.9, 1.1]
    assert r["train"]["early_stopping"] is False
    # An int where a float is expected is widened.
    assert load_recipe("zhao2019_fcn", ["train.learning_rate=1"])["train"]["learning_rate"] == 1.0
    assert parse_value('"5"') == "5"


@pytest.mark.parametrize("override, message", [
    ("train.epochs=ten", "epochs must be int"),
    ("train.epochs=0", "epochs must be > 0"),
    ("train.optimizer=rmsprop", "optimizer must be one of"),
    ("train.epoch=3", "did you mean 'epochs'"),
    ("units=4", "write it as section.units"),
    ("learning_rate=1e-4", None),
    ("bogus.key=1", "unknown section"),
    ("novalue", "key=value"),
    ("experiment.pooling=max", "pooling must be one of"),
])
def test_bad_overrides_raise(override, message):
    if message is None:  # unambiguous bare key: accepted
        load_recipe("zhao2019_attention_blstm_fcn", [override])
        return
    with pytest.raises(ParameterError, match=message):
        load_recipe("zhao2019_attention_blstm_fcn", [override])


def test_bare_key_in_two_sections_is_ambiguous():
    with pytest.raises(ParameterError, match="ambiguous"):
        load_recipe("zhang2021_dcnn_blstmwa", ["epochs=1"])


def test_unknown_recipe_and_bad_file(tmp_path):
    with pytest.raises(ParameterError, match="did you mean"):
        load_recipe("zhao2019_attention_blstm_fc")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1")
    with pytest.raises(ParameterError, match="not valid TOML"):
        load_recipe(bad)
    odd = tmp_path / "odd.toml"
    odd.write_text('[experiment]\nkind = "neural"\n[frontend]\npreset = "zhao2019"\n')
    with pytest.raises(ParameterError, match=r"needs \[model\] name"):
        load_recipe(odd)
    loop = tmp_path / "loop.toml"
    loop.write_text(f'[recipe]\nextends = "{loop}"\n')
    with pytest.raises(ParameterError, match="circular"):
        load_recipe(loop)


def test_member_scoped_overrides_reach_only_that_fusion_member():
    from keras_ser.recipe import member_overrides

    items = ["train.epochs=1", "zhang2021_multicnn_2d:model.image_size=67", "zhang2021_multicnn_3d:model.filters=[4, 4]"]
    fusion = load_recipe("zhang2021_multicnn_fusion", items)
    assert "image_size" not in fusion.get("model", {})
    assert member_overrides(items, "zhang2021_multicnn_2d") == ["train.epochs=1", "model.image_size=67"]
    assert member_overrides(items, "zhang2021_multicnn_1d") == ["train.epochs=1"]
    member = load_recipe("zhang2021_multicnn_3d", member_overrides(items, "zhang2021_multicnn_3d"))
    assert member["model"]["filters"] == [4, 4] and member["train"]["epochs"] == 1
    with pytest.raises(ParameterError, match="not a member"):
        load_recipe("zhang2021_multicnn_fusion", ["zhang2021_multicnn_9d:model.filters=[4]"])
    with pytest.raises(ParameterError, match="not a fusion recipe"):
        load_recipe("zhang2021_multicnn_2d", ["zhang2021_multicnn_3d:model.filters=[4]"])
