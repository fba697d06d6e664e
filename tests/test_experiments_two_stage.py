"""The two-stage fold (zhang2021_dcnn) trains its DCNN on segments kept before their image resize.

:func:`keras_ser.experiments.two_stage.run_two_stage_fold` holds every segment of the corpus as
a 64 x 64 log-mel image and lets the model resize each batch (``with_input_resize``): the DCNN
must learn exactly what it learns from the front end's resized images. The fold's end-to-end
run, and its saved chain scoring as the fold did, are in tests/test_recipes_end_to_end.py.
"""

import keras
import numpy as np
import pytest
from frontend_helper import waves  # noqa: F401 (fixture)

from keras_ser.experiments import runner
from keras_ser.experiments.two_stage import with_input_resize
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
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("two_stage"), ("03", "08", "09"), 2)


def test_the_fold_never_computes_a_resized_image(manifest, tmp_path, monkeypatch):
    shapes = []
    real_call, real_fold = FrontEnd.call, runner.run_two_stage_fold

    def recording_call(self, waveform):
        out = real_call(self, waveform)
        shapes.append(tuple(out.shape[-3:]))
        return out

    def fold(*args, **kwargs):
        monkeypatch.setattr(FrontEnd, "call", recording_call)
        try:
            return real_fold(*args, **kwargs)
        finally:
            monkeypatch.setattr(FrontEnd, "call", real_call)

    monkeypatch.setattr(runner, "run_two_stage_fold", fold)
    status = main([
        "--recipe", "zhang2021_dcnn_blstmwa", "--corpus", manifest, "--out", str(tmp_path / "run"),
        "--folds", "03", "--no-progress", "stage1.epochs=1", "train.epochs=1", "encoder.epochs=1",
        "stage1.verbose=0", "train.verbose=0", "encoder.verbose=0", "experiment.repeats=1",
        "stage1.model_options.weights=none", "frontend.image_size=67", "stage1.model_options.image_size=67",
        "stage1.model_options.fc_units=[8, 8]", "stage1.model_options.filters=[4, 4, 4, 4, 4]",
        "stage1.speed_perturbation=[0.9, 1.0]", "train.speed_perturbation=[1.0]",
        "model.lstm_units=4", "model.dnn_units=[8]",
    ])
    assert status == 0
    # Training, validation and test utterances at both speed factors: 64 x 64 segments only.
    assert len(shapes) >= 3 and set(shapes) == {(64, 64, 3)}
