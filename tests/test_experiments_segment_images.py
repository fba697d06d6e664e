"""Segment-image folds hold their segments before the image resize and resize each batch in the model.

The two-stage fold (zhang2021_dcnn), the neural fold of a segment network (zhang2021_multicnn's
2D CNN) and the final model keep every segment as a 64 x 64 log-mel image
(``FeatureStore.split_resize``) and train through ``with_input_resize``: the network must learn
exactly what it learns from the front end's 227 x 227 images, and the saved model still takes
the front end's output (tests/test_recipes_end_to_end.py checks the saved zhang2021_dcnn chain
against the fold's scores).
"""

import keras
import numpy as np
import pytest
from frontend_helper import waves  # noqa: F401 (fixture)

from keras_ser.experiments import final, runner
from keras_ser.experiments.run_dir import read_predictions
from keras_ser.experiments.training import with_input_resize
from keras_ser.frontend import FrontEnd
from keras_ser.models import build
from keras_ser.train import main

from corpus_helper import emodb_manifest

TINY_DCNN = dict(weights="none", image_size=67, fc_units=(8, 8), filters=(4, 4, 4, 4, 4))


def _tiny_dcnn():
    keras.utils.set_random_seed(0)
    return build("zhang2021_dcnn", num_classes=3, **TINY_DCNN)


def test_a_step_on_small_images_moves_the_dcnn_as_a_step_on_resized_ones(waves):
    fe = FrontEnd("zhang2021_dcnn", image_size=67)
    x = np.stack([w[:32000] for w in waves[:2]])
    small, resize = fe.split_resize()
    images = np.asarray(fe(x)).reshape((-1, 67, 67, 3))
    segments = np.asarray(small(x)).reshape((-1, 64, 64, 3))
    y = np.arange(len(images)) % 3
    direct, wrapped = _tiny_dcnn(), _tiny_dcnn()
    trainer = with_input_resize(wrapped, resize, segments.shape[1:])
    assert trainer.name == "zhang2021_dcnn_resized_input" and with_input_resize(direct, None, (1,)) is direct
    for model, inputs in ((direct, images), (trainer, segments)):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        keras.utils.set_random_seed(1)  # the same dropout masks in both steps
        model.train_on_batch(inputs, y)
    moved = [not np.allclose(a, b) for a, b in zip(direct.get_weights(), _tiny_dcnn().get_weights())]
    assert any(moved)
    for a, b in zip(direct.get_weights(), wrapped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def manifest(emodb_wavs, tmp_path_factory):
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("segment_images"), ("03", "08", "09"), 2)


def _recording_front_end_calls(monkeypatch, module, function):
    """Patch ``module.function`` so that the front-end outputs computed inside it are recorded."""
    shapes = []
    real_call, real = FrontEnd.call, getattr(module, function)

    def recording_call(self, waveform):
        out = real_call(self, waveform)
        shapes.append(tuple(out.shape[-3:]))
        return out

    def recorded(*args, **kwargs):
        monkeypatch.setattr(FrontEnd, "call", recording_call)
        try:
            return real(*args, **kwargs)
        finally:
            monkeypatch.setattr(FrontEnd, "call", real_call)

    monkeypatch.setattr(module, function, recorded)
    return shapes


TWO_STAGE = ["--recipe", "zhang2021_dcnn_blstmwa", "stage1.epochs=1", "train.epochs=1", "encoder.epochs=1",
             "stage1.verbose=0", "encoder.verbose=0", "experiment.repeats=1", "stage1.model_options.weights=none",
             "frontend.image_size=67", "stage1.model_options.image_size=67", "stage1.model_options.fc_units=[8, 8]",
             "stage1.model_options.filters=[4, 4, 4, 4, 4]", "stage1.speed_perturbation=[0.9, 1.0]",
             "train.speed_perturbation=[1.0]", "model.lstm_units=4", "model.dnn_units=[8]"]
SEGMENT_CNN = ["--recipe", "zhang2021_multicnn_2d", "model.weights=none", "frontend.image_size=67",
               "model.image_size=67", "model.fc_units=[8, 8]", "model.filters=[4, 4, 4, 4, 4]", "train.epochs=1",
               "train.speed_perturbation=[0.9, 1.0]"]


@pytest.mark.parametrize("args, function", [(TWO_STAGE, "run_two_stage_fold"), (SEGMENT_CNN, "run_neural_fold")],
                         ids=["two_stage", "neural"])
def test_the_fold_never_computes_a_resized_image(args, function, manifest, tmp_path, monkeypatch):
    shapes = _recording_front_end_calls(monkeypatch, runner, function)
    status = main([*args, "--corpus", manifest, "--out", str(tmp_path / "run"), "--folds", "03", "--no-progress",
                   "train.verbose=0"])
    assert status == 0
    # Training, validation and test utterances at both speed factors: 64 x 64 segments only.
    assert len(shapes) >= 3 and set(shapes) == {(64, 64, 3)}
    # The saved model takes the front end's 67 x 67 images and scores the test speaker as the fold did.
    from keras_ser.predict import Predictor

    fold_dir = tmp_path / "run" / "folds" / "speaker_03"
    ids, _, _, probabilities = read_predictions(fold_dir / "predictions.csv")
    np.testing.assert_allclose(Predictor(fold_dir / "model").predict_files(ids), probabilities, atol=1e-5)


def test_the_final_model_trains_on_small_images_and_takes_the_front_ends_output(manifest, emodb_wavs, tmp_path,
                                                                                 monkeypatch):
    fitted, real_fit = [], final.fit_model

    def recording_fit(model, train_cfg, train_data, *args, **kwargs):
        fitted.append((model.input_shape[1:], train_data[0].shape[1:]))
        return real_fit(model, train_cfg, train_data, *args, **kwargs)

    monkeypatch.setattr(final, "fit_model", recording_fit)
    status = main([*SEGMENT_CNN, "--corpus", manifest, "--out", str(tmp_path / "run"), "--no-progress",
                   "train.verbose=0", "--final"])
    assert status == 0
    assert fitted == [((64, 64, 3), (64, 64, 3))]
    from keras_ser.predict import Predictor

    predictor = Predictor(tmp_path / "run" / "final" / "model")
    assert predictor.model.input_shape[1:] == (67, 67, 3)
    scores = np.asarray(predictor.predict_files([str(emodb_wavs[0])]))
    assert scores.shape == (1, 3) and np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)
