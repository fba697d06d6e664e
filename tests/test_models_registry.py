"""The model registry: one contract for every registered model, presets as data, README's table."""

import inspect
import pathlib

import keras
import pytest

from keras_ser import models
from keras_ser.errors import ParameterError
from keras_ser.models import dcnn_presets, multicnn_presets, registry, semantic_presets, zhao_presets
from model_helper import check_model_contract

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRESETS = (zhao_presets, multicnn_presets, dcnn_presets, semantic_presets)
PAPERS = ("zhao2019", "zhao2018", "zhang2021_multicnn", "zhang2021_dcnn", "tzirakis2021")

_ALEXNET = dict(image_size=67, backbone_size=67, filters=(4, 8, 8, 8, 8), fc_units=(8, 8))
#: Overrides that keep a paper-size build cheap (ImageNet backbones, the longest 1D CNNs).
SMALL = {
    "zhang2021_multicnn_2d": _ALEXNET, "zhang2021_alexnet": _ALEXNET, "zhang2021_multicnn_2d_utterance": _ALEXNET,
    "zhang2021_dcnn": _ALEXNET, "zhang2021_dcnn_c1": _ALEXNET, "zhang2021_dcnn_c2": _ALEXNET,
    "zhang2021_multicnn_2d_vgg16": dict(image_size=40, backbone_size=32, fc_units=(8, 8)),
    "zhang2021_multicnn_2d_resnet50": dict(image_size=40, backbone_size=32),
    "zhang2021_multicnn_1d_3125": dict(fc_units=(8, 8)), "zhang2021_multicnn_1d_15625": dict(fc_units=(8, 8)),
}


def _registered():
    return [name for name in models.available() if models.info(name).paper != "test"]


@pytest.mark.parametrize("name", _registered())
def test_every_registered_model_follows_the_contract(name):
    check_model_contract(name, models.build(name, num_classes=3, **SMALL.get(name, {})))
    keras.backend.clear_session()


def test_presets_are_data_registered_once():
    names = [name for module in PRESETS for name in module.PRESETS]
    assert len(names) == len(set(names)) and set(names) == set(_registered())
    for module in PRESETS:
        for name, preset in module.PRESETS.items():
            assert set(preset) <= {"builder", "paper", "table", "input", "overrides"}, name
            paper = preset["paper"].split()[0]
            assert paper in PAPERS and name.split("_")[0] == paper.split("_")[0], name
            parameters = inspect.signature(preset["builder"]).parameters
            assert "name" in parameters and set(preset.get("overrides", {})) <= set(parameters), name
            entry = models.info(name)
            assert (entry.builder, entry.default_kwargs) == (preset["builder"], preset.get("overrides", {}))


def test_an_ablation_is_named_by_its_registry_name_not_the_full_model():
    assert models.build("zhao2019_fcn", num_classes=4, num_frames=16).name == "zhao2019_fcn"
    with pytest.raises(ParameterError, match="unknown model 'zhao2019'"):
        models.build("zhao2019")


def test_readme_models_table_is_the_registry_table():
    readme = (ROOT / "README.md").read_text()
    assert registry.models_table() in readme
