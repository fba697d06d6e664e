"""Packaging: saved models load after a plain ``import keras_ser`` (in fresh processes)."""

import importlib
import json
import pathlib
import pkgutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_ser
from keras_ser.features import FrontEnd
from keras_ser.layers import AttentionPooling
from keras_ser.models.multicnn import FoldSegments, UnfoldSegments

ROOT = pathlib.Path(keras_ser.__file__).parent.parent

LOAD = """
import json, sys
import numpy as np
{imports}
import keras
model = keras.models.load_model(sys.argv[1])
np.save(sys.argv[2], model.predict(np.load(sys.argv[3]), verbose=0))
names = sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_ser>"))
print(json.dumps(names))
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A ``.keras`` file of a model made of keras_ser layers, an input and its output."""
    folder = tmp_path_factory.mktemp("model")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 4000))
    segments = FoldSegments()(inputs)                           # [b * 2, 4000]
    features = FrontEnd("zhao2019", num_frames=24)(segments)      # [b * 2, 24, 40]
    pooled = AttentionPooling()(features)                         # [b * 2, 40]
    per_clip = keras.ops.mean(UnfoldSegments()([pooled, inputs]), axis=1)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(per_clip))
    x = np.random.default_rng(0).normal(scale=0.1, size=(2, 2, 4000)).astype("float32")
    model.save(folder / "model.keras")
    np.save(folder / "x.npy", x)
    return folder, model.predict(x, verbose=0)


def _all_custom_object_names():
    """Names registered once every keras_ser module is imported (in this process)."""
    for module in pkgutil.walk_packages(keras_ser.__path__, "keras_ser."):
        importlib.import_module(module.name)
    return {name for name in keras.saving.get_custom_objects() if name.startswith("keras_ser>")}


@pytest.mark.parametrize("imports", [
    "import keras_ser",                                    # registered right after `import keras`
    "import tensorflow\nimport keras_ser",                 # Keras already loaded: registered at once
    "import keras_ser.data\nimport keras_ser.audio\nfrom keras_ser import pipeline",  # Keras loaded by keras_ser
])
def test_plain_import_loads_saved_models_in_a_fresh_process(saved_model, tmp_path, imports):
    folder, expected = saved_model
    out = tmp_path / "y.npy"
    result = subprocess.run(
        [sys.executable, "-c", LOAD.format(imports=imports), str(folder / "model.keras"), str(out),
         str(folder / "x.npy")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)
    registered = set(json.loads(result.stdout.strip().splitlines()[-1]))
    missing = _all_custom_object_names() - registered
    assert not missing, f"not registered by `{imports}`: {sorted(missing)}"
    assert {"keras_ser>ConcordanceCorrelation", "keras_ser>ccc_loss"} <= registered
