"""train.precision: resolution of "auto", float32 islands in mixed models, and a real mixed run.

The end-to-end test trains zhao2018's network (convolutions, BLSTM, attention) at tiny
widths on one EMO-DB fold in mixed bfloat16 and checks that the run records its
precision, that the saved model computes in bfloat16 with float32 outputs, and that
predict and the exported SavedModel reproduce the fold's stored probabilities.
"""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ser import audio, models
from keras_ser.errors import ParameterError
from keras_ser.experiments.precision import build_in_precision, cpu_has_bfloat16, resolve_precision
from keras_ser.recipe import load_recipe
from keras_ser.train import main

TINY_ZHAO2018 = ["model.rnn_units=4", "model.conv_filters=[4, 4]", "model.dnn_units=[4]", "train.epochs=1",
                 "train.verbose=0", "train.early_stopping=false"]


@pytest.mark.parametrize("flags, expected", [("fpu avx512f avx512_bf16 amx_tile", True),
                                             ("fpu avx512f amx_bf16", True),
                                             ("fpu sse4_2 avx2 avx512f", False)])
def test_cpu_bfloat16_detection_reads_cpuinfo_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n")
    assert cpu_has_bfloat16(cpuinfo) is expected
    assert cpu_has_bfloat16(tmp_path / "missing") is False


def test_auto_resolves_by_device_and_other_values_are_refused():
    assert resolve_precision("auto", gpu=True, bfloat16_cpu=False) == "mixed_float16"
    assert resolve_precision("auto", gpu=False, bfloat16_cpu=True) == "mixed_bfloat16"
    assert resolve_precision("auto", gpu=False, bfloat16_cpu=False) == "float32"
    assert resolve_precision("mixed_bfloat16", gpu=True) == "mixed_bfloat16"
    with pytest.raises(ParameterError, match="train.precision"):
        resolve_precision("bfloat16")
    with pytest.raises(ParameterError, match="precision"):
        load_recipe("zhao2018_attention_blstm_fcn", ["train.precision=half"])


def test_mixed_model_keeps_outputs_and_attention_in_float32_and_restores_the_policy():
    def build():
        return models.build("zhao2019_attention_blstm_fcn", num_classes=4, num_frames=16, rnn_units=4,
                            conv_filters=(4, 4, 4), dnn_units=(4,))

    reference = build()
    mixed = build_in_precision(build, "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"
    assert mixed.name == reference.name
    assert [(w.path, w.shape, w.dtype) for w in mixed.weights] == [
        (w.path, w.shape, w.dtype) for w in reference.weights]
    dtypes = {layer.name: layer.compute_dtype for layer in mixed.layers}
    assert dtypes["conv_1"] == dtypes["blstm_1"] == dtypes["dnn_1"] == "bfloat16"
    assert dtypes["predictions"] == dtypes["rnn_attention"] == dtypes["fcn_attention"] == "float32"
    assert mixed.get_layer("bn_1").moving_mean.dtype == "float32"
    assert build_in_precision(build, "float32").get_layer("conv_1").compute_dtype == "float32"


def test_mixed_bfloat16_run_records_precision_and_predict_export_reproduce_it(tmp_path, emodb_dir):
    from keras_ser.export import export
    from keras_ser.predict import Predictor

    run_dir = tmp_path / "run"
    argv = ["--recipe", "zhao2018_attention_blstm_fcn", "--out", str(run_dir), "--folds", "03", "--no-progress",
            "--precision", "mixed_bfloat16"]
    assert main(argv + TINY_ZHAO2018) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["precision"] == {"train": "mixed_bfloat16"}
    assert config["recipe"]["train"]["precision"] == "mixed_bfloat16"
    assert config["environment"]["tensorflow"] == tf.__version__

    model_dir = run_dir / "folds" / "speaker_03" / "model"
    model = keras.saving.load_model(model_dir / "model.keras")
    assert model.get_layer("conv_1").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"

    with open(run_dir / "folds" / "speaker_03" / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))[:4]
    labels = json.loads((model_dir / "labels.json").read_text())
    stored = np.array([[float(r[f"p_{n}"]) for n in labels] for r in rows])
    paths = [emodb_dir / "wav" / f"{r['id']}.wav" for r in rows]
    predictor = Predictor(model_dir)
    predicted = predictor.predict_files(paths)
    assert predicted.dtype == np.float32
    # bfloat16 kernels may round differently for another batch composition.
    np.testing.assert_allclose(predicted, stored, atol=2e-3)

    export(model_dir, tmp_path / "serving" / "1")
    serve = tf.saved_model.load(str(tmp_path / "serving" / "1")).signatures["serving_default"]
    waves = np.stack([audio.load(p, sr=predictor.frontend.sample_rate) for p in paths])
    served = serve(waveform=tf.constant(waves))["probabilities"]
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy(), predictor.predict_waveforms(waves), atol=2e-3)

    # The same run in float32 is another configuration: resuming across it is refused.
    assert main(argv[:-1] + ["float32"] + TINY_ZHAO2018) == 2
