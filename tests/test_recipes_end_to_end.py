"""Every recipe is consistent with its front end and model; the zhang2021_multicnn and zhang2021_dcnn paths run end to end.

The end-to-end runs go through ``python -m keras_ser.train``'s ``main`` on a manifest
corpus of four real EMO-DB speakers and three classes, with tiny model widths and
one epoch, and check what the paths do differently from the single-network recipes:
segment-score averaging and validation-tuned score fusion (zhang2021_multicnn), and the stage-2
network fed with the fine-tuned DCNN's fc7 sequences (zhang2021_dcnn).
"""

import inspect
import json

import keras
import numpy as np
import pytest

from keras_ser import audio
from keras_ser.errors import ParameterError
from keras_ser.experiments.neural import cached_frontend, model_kwargs
from keras_ser.experiments.run_dir import read_predictions
from keras_ser.experiments.word_vectors import reads_frame_sequences, uses_word_vectors
from keras_ser.models import available, build, info
from keras_ser.recipe import available_recipes, load_recipe, recipe_weights
from keras_ser.train import main

from corpus_helper import emodb_manifest

#: Narrow widths for a symbolic build; none of them changes a model's input shape.
TINY = {"fc_units": (8, 8), "dnn_units": (8,), "lstm_units": 4}


def _tiny(name, kwargs):
    accepted = inspect.signature(info(name).builder).parameters
    return dict(kwargs, **{k: v for k, v in TINY.items() if k in accepted and k not in kwargs})


def _matches(model_shape, data_shape):
    return len(model_shape) == len(data_shape) and all(m in (None, d) for m, d in zip(model_shape, data_shape))


def _random_weights(name):
    """The override that builds a recipe's ImageNet backbone from random weights (no weight file here)."""
    found = recipe_weights(load_recipe(name))
    return [] if found is None else [f"{found[0]}=none"]


@pytest.mark.parametrize("name", available_recipes())
def test_recipe_model_takes_its_front_end_output(name):
    recipe = load_recipe(name, _random_weights(name))
    kind = recipe["experiment"]["kind"]
    if kind == "fusion":
        for member in recipe["fusion"]["members"]:
            assert load_recipe(member)["experiment"]["pooling"] == "mean_segments"
        return
    if kind == "features_svm":
        return
    assert recipe["model"]["name"] in available()
    frontend = cached_frontend(recipe["frontend"])
    waveform = np.random.default_rng(0).standard_normal((1, 2 * int(frontend.sample_rate))).astype("float32")
    per_utterance = tuple(np.asarray(frontend(waveform)).shape[1:])
    segments = recipe["experiment"]["pooling"] == "mean_segments" or kind == "two_stage"
    data_shape = per_utterance[1:] if segments else per_utterance
    if kind == "two_stage":
        assert recipe["stage1"]["model"] in available()
        keras.utils.set_random_seed(0)
        dcnn = build(recipe["stage1"]["model"], num_classes=7, **_tiny(recipe["stage1"]["model"],
                                                                         recipe["stage1"]["model_options"]))
        assert _matches(tuple(dcnn.input.shape[1:]), data_shape)
        width = dcnn.get_layer("fc7").output.shape[-1]
        head = build(recipe["model"]["name"], num_classes=7, **_tiny(recipe["model"]["name"], {"feature_dim": width}))
        assert _matches(tuple(head.input.shape[1:]), (per_utterance[0], width))
        return
    model = build(recipe["model"]["name"], num_classes=7,
                  **_tiny(recipe["model"]["name"], model_kwargs(recipe["model"], frontend)))
    if reads_frame_sequences(recipe["model"]):
        # tzirakis2021: an example is a sequence of raw-wave frames [frames, samples] (absent from the
        # semantic-only rows), with a word vector per frame when the model reads them.
        for audio_input in [t for t in model.inputs if t.name.startswith("audio_frames")]:
            assert _matches(tuple(audio_input.shape[1:]), per_utterance[1:])
        assert any(t.name.startswith("word_vectors") for t in model.inputs) == uses_word_vectors(recipe["model"])
        return
    assert _matches(tuple(model.input.shape[1:]), data_shape), (model.input.shape, per_utterance)


@pytest.fixture(scope="module")
def manifest(emodb_wavs, tmp_path_factory):
    """Four EMO-DB speakers, neutral / sadness / anger, two utterances per class and speaker."""
    # Without an id column a manifest utterance's id is its path, which the checks below load.
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("manifest"), ("03", "08", "09", "10"), 2,
                          codes={"N": "neutral", "T": "sadness", "W": "anger"})


def _predictions(fold_dir, filename="predictions.csv"):
    ids, labels, _, probabilities = read_predictions(fold_dir / filename)
    return ids, labels, probabilities


def test_fusion_averages_segment_scores_and_tunes_lambdas_on_validation(manifest, tmp_path):
    corpus = manifest
    out = tmp_path / "fusion"
    status = main([
        "--recipe", "zhang2021_multicnn_fusion", "--corpus", corpus, "--out", str(out), "--folds", "03",
        "--no-progress", "fusion.members=['zhang2021_multicnn_1d', 'zhang2021_multicnn_3d']",
        "train.epochs=1", "train.verbose=0", "model.fc_units=[8, 8]",
        "zhang2021_multicnn_1d:model.filters=[4, 4, 4, 4]", "zhang2021_multicnn_3d:model.filters=[4, 4]",
    ])
    assert status == 0
    members = {}
    for name in ("zhang2021_multicnn_1d", "zhang2021_multicnn_3d"):
        fold_dir = out / "members" / name / "folds" / "speaker_03"
        members[name] = {part: _predictions(fold_dir, f) for part, f in
                         (("test", "predictions.csv"), ("validation", "val_predictions.csv"))}
    # zhang2021_multicnn Sec. 2.4: an utterance's score is the mean of its segments' softmax scores.
    model_dir = out / "members" / "zhang2021_multicnn_1d" / "folds" / "speaker_03" / "model"
    assert json.loads((model_dir / "meta.json").read_text())["pooling"] == "mean_segments"
    from keras_ser.predict import Predictor

    predictor = Predictor(model_dir)  # registers the custom layers
    ids, _, probabilities = members["zhang2021_multicnn_1d"]["test"]
    for uid, row in zip(ids, probabilities):
        segments = np.asarray(predictor.frontend(audio.load(uid, sr=predictor.sample_rate)[None]))[0]
        assert segments.shape[0] > 1
        segment_scores = np.asarray(predictor.model(segments, training=False))
        np.testing.assert_allclose(segment_scores.mean(axis=0), row, atol=1e-5)

    # Score fusion: the lambdas are the brute-force best accuracy on the validation speaker.
    metrics = json.loads((out / "score" / "folds" / "speaker_03" / "metrics.json").read_text())
    lambdas = np.array(metrics["lambdas"])
    assert abs(lambdas.sum() - 1) < 1e-9 and np.allclose(lambdas * 10, np.round(lambdas * 10))
    index = {name: k for k, name in enumerate(json.loads((out / "labels.json").read_text()))}
    val = [members[n]["validation"] for n in members]
    y_val = np.array([index[v] for v in val[0][1]])
    best = -1.0
    for w in np.arange(11) / 10:
        best = max(best, np.mean((w * val[0][2] + (1 - w) * val[1][2]).argmax(-1) == y_val))
    chosen = lambdas[0] * val[0][2] + lambdas[1] * val[1][2]
    assert np.mean(chosen.argmax(-1) == y_val) == best
    assert metrics["tuned_accuracy"] == pytest.approx(best)
    _, _, fused = _predictions(out / "score" / "folds" / "speaker_03")
    test = [members[n]["test"][2] for n in members]
    np.testing.assert_allclose(fused, lambdas[0] * test[0] + lambdas[1] * test[1], atol=1e-5)
    assert json.loads((out / "score" / "results.json").read_text())["fusion"]["tune_on"] == "validation"


def test_two_stage_head_reads_fc7_sequences_of_the_fine_tuned_dcnn(manifest, tmp_path):
    corpus = manifest
    out = tmp_path / "dcnn"
    status = main([
        "--recipe", "zhang2021_dcnn_blstmwa", "--corpus", corpus, "--out", str(out), "--folds", "03",
        "--no-progress", "stage1.epochs=1", "train.epochs=1", "stage1.verbose=0", "train.verbose=0",
        "stage1.model_options.weights=none", "frontend.image_size=67", "stage1.model_options.image_size=67",
        "stage1.model_options.fc_units=[8, 8]", "stage1.model_options.filters=[4, 4, 4, 4, 4]",
        "stage1.speed_perturbation=[1.0]", "train.speed_perturbation=[0.9, 1.0]",
        "model.lstm_units=4", "model.dnn_units=[8]", "encoder.epochs=1", "encoder.verbose=0",
        "experiment.repeats=1",
    ])
    assert status == 0
    fold_dir = out / "folds" / "speaker_03"
    history = json.loads((fold_dir / "history.json").read_text())
    assert len(history["stage1_loss"]) == 1 and len(history["loss"]) == 1
    # Sec. 3.2 read as two trainings: BLSTM + attention with their own softmax, then the DNN.
    assert len(history["encoder_loss"]) == 1
    # The report says the DCNN was not pretrained and sets it beside Table 4's untrained figure.
    report = (out / "results.md").read_text()
    assert "- Weights: alexnet from random initialisation, NOT pretrained" in report
    assert "81.31" in report and "87.86" not in report
    from keras_ser.predict import Predictor

    predictor = Predictor(fold_dir / "model")
    chained = predictor.model
    fc7 = [layer for layer in chained.layers if isinstance(layer, keras.layers.TimeDistributed)][0].layer
    head = [layer for layer in chained.layers if layer.name == "zhang2021_dcnn_blstmwa"][0]
    # The stage-2 network reads the 8-wide fc7 of the stage-1 DCNN, not a 4096-d default.
    assert fc7.layers[-1].name == "fc7" and fc7.output.shape[-1] == 8
    assert head.input.shape[-1] == 8
    ids, _, probabilities = _predictions(fold_dir)
    for uid, row in zip(ids, probabilities):
        segments = np.asarray(predictor.frontend(audio.load(uid, sr=predictor.sample_rate)[None]))[0]
        sequence = np.asarray(fc7(keras.ops.convert_to_tensor(segments), training=False))
        np.testing.assert_allclose(np.asarray(head(sequence[None], training=False))[0], row, atol=1e-5)
    # The saved chain (front end -> DCNN fc7 per segment -> head) gives the same scores.
    np.testing.assert_allclose(predictor.predict_files(ids[:2]), probabilities[:2], atol=1e-5)

    # zhang2021_dcnn_fc7_svm reads either stage of the fold's network: the DCNN's fc7 averaged
    # over the segments, or the stage-2 vector Z that the DNN classifies.
    from keras_ser.extraction.embeddings import EmbeddingExtractor

    waveforms = [audio.load(uid, sr=predictor.sample_rate) for uid in ids[:2]]
    sequences = np.stack([np.asarray(fc7(predictor.frontend(w[None])[0], training=False)) for w in waveforms])
    assert not np.allclose(sequences[:, 0], sequences[:, 1])  # the mean is over distinct segments
    np.testing.assert_allclose(EmbeddingExtractor(out, fold="speaker_03", layer="fc7").extract_batch(waveforms),
                               sequences.mean(axis=1), rtol=1e-5, atol=1e-5)
    z = keras.Model(head.inputs[0], head.get_layer("attention").output)
    np.testing.assert_allclose(
        EmbeddingExtractor(out, fold="speaker_03", layer="attention").extract_batch(waveforms),
        np.asarray(z(sequences, training=False)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ParameterError, match="no layer named 'fc9'"):
        EmbeddingExtractor(out, fold="speaker_03", layer="fc9")
    svm_out = tmp_path / "dcnn_svm"
    status = main(["--recipe", "zhang2021_dcnn_fc7_svm", "--corpus", corpus, "--out", str(svm_out),
                   "--folds", "03", "--no-progress", f"features.name=embedding:{out}"])
    assert status == 0
    params = json.loads((svm_out / "folds" / "speaker_03" / "metrics.json").read_text())["params"]
    assert params["features"].startswith("fc7 of ") and params["dimension"] == 8
    assert params["standardize"] == "global"


def test_speed_perturbed_variable_length_training_and_svm_on_stored_speaker_embeddings(manifest, tmp_path):
    from keras_ser.data import load_corpus, make_folds
    from keras_ser.errors import DataError
    from keras_ser.svm import stored_embeddings

    # zhao2018's front end keeps each waveform's length: 0.9x copies are longer than the originals,
    # so the training batch is padded with the model's mask value (this used to fail in np.stack).
    run = tmp_path / "zhao2018"
    status = main([
        "--recipe", "zhao2018_attention_blstm_fcn", "--corpus", manifest, "--out", str(run), "--folds", "03",
        "--no-progress", "train.epochs=1", "train.verbose=0", "model.rnn_units=4", "model.conv_filters=[4, 4]",
        "model.dnn_units=[4]", "train.speed_perturbation=[0.9, 1.0, 1.1]", "frontend.standardize=speaker",
        "experiment.save_features=true",
    ])
    assert status == 0
    stored = np.load(run / "folds" / "speaker_03" / "embeddings.npz")
    fold = next(f for f in make_folds("loso", load_corpus(manifest)) if f.name == "speaker_03")
    assert list(stored["test_ids"]) == [u.id for u in fold.test]

    # The per-speaker model cannot be run from waveforms (its front end holds one speaker's
    # statistics), so the SVM reads the fold's stored embeddings instead.
    svm_run = tmp_path / "svm"
    status = main(["--recipe", "zhao2019_features_embedding", "--corpus", manifest, "--out", str(svm_run),
                   "--folds", "03", "--no-progress", f"features.name=embedding:{run}"])
    assert status == 0
    params = json.loads((svm_run / "folds" / "speaker_03" / "metrics.json").read_text())["params"]
    assert f"- Weights: the trained networks of {run} (one per fold)" in (svm_run / "results.md").read_text()
    assert "stored embeddings.npz" in params["features"] and params["dimension"] == stored["test_x"].shape[1]
    matrix, _ = stored_embeddings(run, fold)
    np.testing.assert_array_equal(matrix, np.concatenate([stored["train_x"], stored["validation_x"],
                                                          stored["test_x"]]))
    assert stored_embeddings(run, fold, layer="fc") is None

    # From waveforms, each speaker is standardised with its own statistics, as in training: the
    # validation and test speakers' embeddings equal the stored ones (the training speakers'
    # training statistics also held their speed-perturbed copies), rows stay in input order.
    from keras_ser.extraction.embeddings import EmbeddingExtractor
    from keras_ser.extraction import extract

    extractor = EmbeddingExtractor(run, fold="speaker_03")
    assert extractor.speaker_standardized
    mixed = [u for pair in zip(fold.test, fold.validation) for u in pair]  # alternating speakers
    table = extract(extractor, mixed, progress=False)
    assert table.names == [u.id for u in mixed]
    expected = {uid: row for part in ("validation", "test")
                for uid, row in zip(stored[f"{part}_ids"], stored[f"{part}_x"])}
    np.testing.assert_allclose(table.features, [expected[u.id] for u in mixed], rtol=1e-4, atol=1e-5)
    with pytest.raises(ParameterError, match="has no speaker"):
        extract(extractor, [u.path for u in fold.test], progress=False)
    other = next(f for f in make_folds("loso", load_corpus(manifest)) if f.name == "speaker_08")
    with pytest.raises(DataError, match="not those of fold speaker_03"):
        stored_embeddings(run, type(fold)(name="speaker_03", train=other.train, validation=other.validation,
                                          test=other.test))
