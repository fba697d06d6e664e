"""tzirakis2021's semantic models through the runner: word vectors fitted per fold, on real EMO-DB.

Tiny settings: the semantic extractor (Word2Vec, Speech2Vec, alignment) is fitted on the
training speakers of one LOSO fold with a few steps, the network is a few units wide and
trains two epochs. What is checked is the wiring: which utterances the fit sees, that the
frames the network is fed are the extractor's, the classifier head, the refusals.
"""

import dataclasses
import json
import os
import pathlib

import numpy as np
import pytest

from keras_ser.data import load_corpus, make_folds
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import runner, word_vectors
from keras_ser.models import build
from keras_ser.recipe import load_recipe
from keras_ser.semantic import frame_words, normalize, tokenize
from keras_ser.semantic.pipeline import fit_semantic, load_semantic

RECIPE = "tzirakis2021_semantic_emodb"
TINY_SEMANTIC = [
    "semantic.alignment='procrustes_shared_vocabulary'", "semantic.alignment_options={}",
    "semantic.word2vec={dim = 4, min_count = 1, epochs = 2}",
    "semantic.speech2vec={embedding_dim = 4, encoder_units = 4, decoder_units = 4, max_steps = 2, batch_size = 32}",
]
TINY = ["train.epochs=2", "train.verbose=0", "model.filters=[4, 4, 4]", "model.units=8", "model.lstm_units=8",
        *TINY_SEMANTIC]


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """Semantic fits shared in a folder of this module's own."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_SER_CACHE", str(path))
        yield path / "semantic"


@pytest.fixture(scope="module")
def run(tmp_path_factory, emodb_dir):
    out = tmp_path_factory.mktemp("word_vectors") / "run"
    results = runner.run_experiment(load_recipe(RECIPE, TINY), out=out, folds=["03"], progress=False,
                                    data_dir=emodb_dir.parent)
    return out, results


def test_fused_classifier_trains_on_emodb_and_fits_semantics_on_training_speakers_only(run):
    out, results = run
    fold_dir = out / "folds" / "speaker_03"
    summary = json.loads((fold_dir / "semantic" / "summary.json").read_text())
    fold = next(f for f in make_folds("loso", load_corpus("emodb")) if f.name == "speaker_03")
    assert summary["train_utterance_ids"] == sorted(u.id for u in fold.train)
    assert set(summary["train_speakers"]).isdisjoint({u.speaker for u in (*fold.test, *fold.validation)})
    rows = (fold_dir / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + len(fold.test)
    assert results["folds_done"] == ["speaker_03"] and 0 <= results["pooled"]["ua"] <= 1


def test_frames_fed_to_the_network_are_the_fold_extractors(run):
    out, _ = run
    fold_dir = out / "folds" / "speaker_03"
    fitted = load_semantic(fold_dir / "semantic")
    recipe = load_recipe(RECIPE, TINY)
    fold = next(f for f in make_folds("loso", load_corpus("emodb")) if f.name == "speaker_03")
    test = list(fold.test)[:4]
    # The same call the fold made reloads the saved extractor and gives its frames.
    frames, _ = word_vectors.fold_word_vectors(recipe, fold, fold_dir, {u.id: 20 for u in
                                                                        (*fold.train, *fold.validation, *fold.test)})
    np.testing.assert_array_equal(np.stack([frames[u.id] for u in test]),
                                  np.stack(list(fitted.frames(test, 20).values())))
    # A frame holds a vector exactly where a word is.
    timed = next(u for u in test if u.words)
    index = frame_words(timed.words, 20)
    assert frames[timed.id][index >= 0].any(axis=1).mean() > 0.9 and not frames[timed.id][index < 0].any()


def test_word2vec_and_speech2vec_frames_against_their_definitions(emodb_dir):
    utterances = load_corpus("emodb", emodb_dir.parent, download_if_missing=False)
    train = [u for u in utterances if u.speaker in {"08", "09"}][::3]
    test = [u for u in utterances if u.speaker == "03" and u.words][:3]
    fitted = fit_semantic(train, word2vec_options=dict(dim=4, min_count=1, epochs=2),
                          speech2vec_options=dict(embedding_dim=4, encoder_units=4, decoder_units=4, max_steps=2),
                          alignment="procrustes_shared_vocabulary", seed=1)
    text = fitted.word2vec.wv
    table = normalize(text.vectors)
    word2vec = fitted.frames(test, 20, vectors="word2vec")
    speech = fitted.frames(test, 20, vectors="speech2vec")
    aligned = fitted.frames(test, 20)
    for u in test:
        index = frame_words(u.words, 20)
        for frame, k in enumerate(index):
            tokens = [t for t in tokenize(u.words[k][0]) if t in text.key_to_index] if k >= 0 else []
            expected = table[[text.key_to_index[t] for t in tokens]].mean(axis=0) if tokens else np.zeros(4)
            np.testing.assert_allclose(word2vec[u.id][frame], expected, atol=1e-6)
        # aligned = speech @ W.T with an orthogonal W, so speech = aligned @ W.
        np.testing.assert_allclose(aligned[u.id] @ fitted.W, speech[u.id], atol=1e-5)
        assert not np.allclose(aligned[u.id], speech[u.id], atol=1e-3)


def test_classifier_head_reads_the_last_unpadded_frame():
    model = build("tzirakis2021_semantic", num_classes=5, frame_length=50, filters=(2, 2, 2),
                  kernel_sizes=(3, 3, 3), pool_sizes=(2, 2, 2), units=4, semantic_dim=3, lstm_units=4)
    assert model.output_shape == (None, 5)
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(2, 6, 50)).astype("float32")
    words = rng.normal(size=(2, 6, 3)).astype("float32")
    probabilities = model.predict({"audio_frames": audio, "word_vectors": words}, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Two all-zero padding frames (masked audio) leave the output as it was.
    padded = model.predict({"audio_frames": np.concatenate([audio, np.zeros((2, 2, 50), "float32")], axis=1),
                            "word_vectors": np.concatenate([words, np.zeros((2, 2, 3), "float32")], axis=1)},
                           verbose=0)
    np.testing.assert_allclose(padded, probabilities, atol=1e-5)
    # The regression network (no num_classes) keeps its per-frame outputs.
    assert build("tzirakis2021_semantic", frame_length=50, filters=(2, 2, 2), kernel_sizes=(3, 3, 3),
                 pool_sizes=(2, 2, 2), units=4, semantic_dim=3, lstm_units=4).output_shape == (None, None, 3)


def test_a_second_recipe_reuses_the_fit_and_a_regression_run_prints_ccc(run, cache, tmp_path, emodb_dir, capsys,
                                                                        monkeypatch):
    """Another recipe (regression, Word2Vec frames) with the same fit settings copies the stored fit."""
    import keras_ser.semantic.pipeline as semantic_pipeline
    from keras_ser import train

    out, _ = run
    (stored,) = [p for p in cache.iterdir()]
    assert sorted(f.name for f in stored.iterdir()) == sorted(
        f.name for f in (out / "folds" / "speaker_03" / "semantic").iterdir())

    def refit(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(semantic_pipeline, "fit_semantic", refit)
    code = train.main(["--recipe", "tzirakis2021_semantic_only_word2vec_emodb_dimensional", "--out",
                       str(tmp_path / "run"), "--folds", "03", "--no-progress", "--data-dir", str(emodb_dir.parent),
                       "train.epochs=1", "train.verbose=0", "model.lstm_units=4", *TINY_SEMANTIC])
    assert code == 0
    copied = tmp_path / "run" / "folds" / "speaker_03" / "semantic"
    assert (copied / "W.npy").read_bytes() == (stored / "W.npy").read_bytes()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"CCC arousal {results['pooled']['ccc']['arousal']:.3f}" in line and "CCC mean" in line


def test_the_cache_key_follows_the_settings_and_the_training_files(tmp_path):
    fold = next(f for f in make_folds("loso", load_corpus("emodb")) if f.name == "speaker_03")
    fit = dict(word2vec_options=None, speech2vec_options=None, alignment="adversarial", alignment_options=None,
               seed=42)
    key = word_vectors._cache_key(fit, fold.train)
    assert key == word_vectors._cache_key(dict(fit), list(reversed(fold.train)))
    assert key != word_vectors._cache_key(dict(fit, seed=5), fold.train)
    assert key != word_vectors._cache_key(fit, fold.train[1:])
    # The corpus copied elsewhere (new path and modification time, same bytes) finds the same fit;
    # a training file whose audio changed is another fit.
    copy = tmp_path / "copy.wav"
    content = pathlib.Path(fold.train[0].path).read_bytes()
    copy.write_bytes(content)
    os.utime(copy, ns=(0, 0))
    moved = [dataclasses.replace(fold.train[0], path=copy), *fold.train[1:]]
    assert word_vectors._cache_key(fit, moved) == key
    copy.write_bytes(content[:-2] + bytes([content[-2] ^ 1, content[-1]]))
    assert word_vectors._cache_key(fit, moved) != key


def test_settings_a_word_vector_model_cannot_use_are_refused(run, tmp_path):
    with pytest.raises(ParameterError, match="speed_perturbation would stretch"):
        runner.check_supported(load_recipe(RECIPE, ["train.speed_perturbation=[0.9, 1.0]"]))
    with pytest.raises(ParameterError, match=r"\[semantic\] vectors must be one of"):
        load_recipe(RECIPE, ["semantic.vectors=glove"])
    with pytest.raises(ParameterError, match="--final cannot train"):
        runner.run_experiment(load_recipe(RECIPE, TINY), out=tmp_path / "final", final=True, progress=False)
    with pytest.raises(ParameterError, match="model.semantic_dim=7 but the fold's word vectors have 4"):
        word_vectors.semantic_dim({"semantic_dim": 7}, {"x": np.zeros((20, 4))})
    # predict and export feed audio only: refused with the reason, naming the inputs.
    from keras_ser.predict import Predictor

    with pytest.raises(DataError, match=r"word_vectors.*feed it the front end's audio only"):
        Predictor(run[0] / "folds" / "speaker_03" / "model")


def test_paralinguistic_network_alone_classifies_whole_utterances(tmp_path, emodb_dir):
    import keras

    recipe = load_recipe("tzirakis2021_paralinguistic_emodb", ["train.epochs=1", "train.verbose=0",
                                                               "model.filters=[4, 4, 4]", "model.lstm_units=4"])
    results = runner.run_experiment(recipe, out=tmp_path / "run", folds=["03"], progress=False,
                                    data_dir=emodb_dir.parent)
    fold_dir = tmp_path / "run" / "folds" / "speaker_03"
    model = keras.saving.load_model(fold_dir / "model" / "model.keras", compile=False)
    # One example per utterance: its 20 frames of 0.1 s, no word vectors and no semantic fit.
    assert model.input_shape == (None, None, 2205) and model.output_shape == (None, 7)
    assert not (fold_dir / "semantic").exists() and results["folds_done"] == ["speaker_03"]
