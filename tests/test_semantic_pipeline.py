"""The per-fold semantic feature pipeline of tzirakis2021 on real EMO-DB speakers (tiny settings)."""

import numpy as np
import pytest

from keras_ser import audio
from keras_ser.data import Utterance, load_corpus
from keras_ser.errors import DataError, ParameterError
from keras_ser.semantic import frame_words, map_vectors, normalize, tokenize
from keras_ser.semantic import pipeline
from keras_ser.semantic.pipeline import SemanticFeatures, fit_semantic, fold_semantic_frames, semantic_frames

TRAIN_SPEAKERS = {"08", "09", "10"}
DIM = 4
TINY = dict(
    word2vec_options=dict(min_count=1, epochs=2),
    speech2vec_options=dict(embedding_dim=DIM, encoder_units=4, decoder_units=4, max_steps=2, batch_size=32,
                            optimizer="adam", learning_rate=0.01),
    alignment_options=dict(epochs=1, epoch_size=640, batch_size=32, discriminator_units=16, discriminator_steps=1,
                           discriminator_dropout=0.0, restarts=2, refinement_iterations=1, csls_k=5),
    seed=3,
)


class Leak(AssertionError):
    """A test speaker's text was read."""


class _SecretTiming:
    """A word timing whose times can be read (``timing[-2:]``) but whose word cannot."""

    def __init__(self, start, end):
        self._times = (start, end)

    def __getitem__(self, key):
        if key == slice(-2, None):
            return self._times
        raise Leak(f"word timing [{key!r}] read")

    def __iter__(self):
        raise Leak("word timing unpacked (the word with it)")

    def __len__(self):
        return 3


class _TestSpeakerUtterance:
    """A test utterance whose transcript, text id and word strings raise :class:`Leak` when read."""

    def __init__(self, utterance):
        self._utterance = utterance
        self.words = tuple(_SecretTiming(start, end) for _, start, end in utterance.words or ()) or None

    def __getattr__(self, name):
        if name in ("transcript", "text_id"):
            raise Leak(f"{name} of test utterance {self._utterance.id} read")
        return getattr(self._utterance, name)


@pytest.fixture(scope="module")
def corpus(emodb_dir):
    utterances = load_corpus("emodb", emodb_dir.parent, download_if_missing=False)
    # Every third utterance of the three speakers (all ten sentences) keeps the fits short.
    train = [u for u in utterances if u.speaker in TRAIN_SPEAKERS][::3]
    untimed = [u for u in utterances if not u.words]
    test = [u for u in utterances if u.speaker == "03"][:3] + untimed[:1]
    assert len({u.text_id for u in train}) == 10 and untimed and untimed[0].speaker not in TRAIN_SPEAKERS
    return train, test


@pytest.fixture(scope="module")
def fitted(corpus):
    return fit_semantic(corpus[0], **TINY)


def test_fit_keeps_the_training_speakers_spaces_and_a_summary(corpus, fitted):
    train, _ = corpus
    summary = fitted.summary
    assert summary["train_speakers"] == sorted(TRAIN_SPEAKERS) and summary["train_utterances"] == len(train)
    # EMO-DB's ten sentences: ~70 text word types; the 2-s copy cuts some spoken words off.
    assert 60 <= summary["speech2vec_vocabulary"] <= summary["word2vec_vocabulary"] <= 80
    assert summary["shared_vocabulary"] == summary["speech2vec_vocabulary"]
    assert set(fitted.word2vec.wv.index_to_key) == {w for u in train for w in tokenize(u.transcript)}
    alignment = summary["alignment"]
    assert alignment["method"] == "adversarial" and alignment["pairs_fitted"] == 0
    assert alignment["words"] == summary["shared_vocabulary"]  # unsupervised: every shared word is held out
    assert 0 <= alignment["precision@1"] <= alignment["precision@5"] <= 1
    assert summary["speech2vec_steps"] == 2 and np.isfinite(summary["speech2vec_loss_last"])
    assert fitted.W.shape == (DIM, DIM) and fitted.W.dtype == np.float32 and fitted.dim == DIM


def test_frames_are_the_mapped_encoder_vectors_and_zero_where_no_word_is(corpus, fitted):
    _, test = corpus
    frames = semantic_frames(fitted, test, 100)
    assert list(frames) == [u.id for u in test]
    s2v = fitted.speech2vec
    for utterance in test:
        out = frames[utterance.id]
        assert out.shape == (100, DIM) and out.dtype == np.float32
        if not utterance.words:
            assert not out.any()
            continue
        waveform = audio.load(utterance.path, sr=16000)
        kept = s2v.segments(waveform, utterance.words, short_segments="skip")
        index = frame_words([(s.word, s.start, s.end) for s in kept], 100)
        expected = map_vectors(fitted.W, normalize(s2v.embed(kept), mean=fitted.speech_mean))
        assert (index >= 0).sum() >= 10 and (index == -1).sum() >= 80  # 2 s of speech in 10 s
        np.testing.assert_array_equal(out.any(axis=1), index >= 0)
        np.testing.assert_allclose(out[index >= 0], expected[index[index >= 0]], atol=1e-5)
    # Without num_frames: the 0.1 s frames covering each 2-s file.
    assert {v.shape for v in fitted.frames(test[:1]).values()} == {(20, DIM)}


def test_saved_and_loaded_gives_identical_frames(corpus, fitted, tmp_path):
    _, test = corpus
    fitted.save(tmp_path / "semantic")
    assert {p.name for p in (tmp_path / "semantic").iterdir()} >= set(pipeline.FILES.values())
    loaded = SemanticFeatures.load(tmp_path / "semantic")
    assert loaded.summary == fitted.summary and loaded.speech2vec.model is None
    before, after = fitted.frames(test, 30), loaded.frames(test, 30)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    (tmp_path / "semantic" / "W.npy").unlink()
    with pytest.raises(DataError, match="W.npy"):
        SemanticFeatures.load(tmp_path / "semantic")


def test_fold_never_reads_test_text_is_seeded_and_resumes(corpus, fitted, tmp_path, monkeypatch):
    train, test = corpus
    poisoned = [_TestSpeakerUtterance(u) for u in test]
    with pytest.raises(Leak):  # the poison works: reading the text raises
        poisoned[0].transcript
    with pytest.raises(Leak):
        word, _, _ = poisoned[0].words[0]
    # Fitting (on the training speakers) and inference on the poisoned test speaker.
    again, frames = fold_semantic_frames(train, poisoned, 50, work_dir=tmp_path / "fold", **TINY)
    reference = fitted.frames(test, 50)
    for key in reference:  # the same seed and data: the same frames
        np.testing.assert_array_equal(frames[key], reference[key])
    np.testing.assert_array_equal(again.W, fitted.W)

    # A resumed fold loads what it saved instead of fitting again...
    monkeypatch.setattr(pipeline, "fit_semantic", lambda *a, **k: pytest.fail("refitted"))
    _, resumed = fold_semantic_frames(train, poisoned, 50, work_dir=tmp_path / "fold", **TINY)
    for key in reference:
        np.testing.assert_array_equal(resumed[key], reference[key])
    # ...and refuses one fitted otherwise.
    with pytest.raises(ParameterError, match="other settings"):
        fold_semantic_frames(train, poisoned, 50, work_dir=tmp_path / "fold", **{**TINY, "seed": 4})
    with pytest.raises(ParameterError, match="other settings"):
        fold_semantic_frames(train[1:], poisoned, 50, work_dir=tmp_path / "fold", **TINY)


def test_procrustes_on_the_shared_vocabulary_holds_words_out(corpus):
    train, test = corpus
    fitted = fit_semantic(train, alignment="procrustes_shared_vocabulary",
                          **{k: v for k, v in TINY.items() if k != "alignment_options"})
    alignment, shared = fitted.summary["alignment"], fitted.summary["shared_vocabulary"]
    assert alignment["method"] == "procrustes_shared_vocabulary"
    assert alignment["words"] == round(0.2 * shared) and alignment["pairs_fitted"] == shared - alignment["words"]
    assert 0 <= alignment["fitted_pairs_precision@1"] <= alignment["fitted_pairs_precision@5"] <= 1
    np.testing.assert_allclose(fitted.W @ fitted.W.T, np.eye(DIM), atol=1e-5)
    assert fitted.frames(test[:1], 20)[test[0].id].shape == (20, DIM)


def test_shared_vocabulary_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(0)
    text = normalize(rng.normal(size=(40, 6)))
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    speech = text[::-1] @ rotation  # row r of speech is text word 39 - r, rotated by rotation.T
    shared = [(r, 39 - r) for r in range(40)]
    W, fit, held_out = pipeline._procrustes_shared(speech, text, shared, {"held_out_fraction": 0.25}, 1)
    assert len(held_out) == 10 and sorted(fit + held_out) == shared
    np.testing.assert_allclose(W, rotation, atol=1e-5)
    result = pipeline._precision(W, speech, text, held_out, csls_k=5)
    assert result["precision@1"] == 1.0 and result["words"] == 10
    with pytest.raises(DataError, match="share 1 words"):
        pipeline._procrustes_shared(speech, text, shared[:1], {"held_out_fraction": 0.25}, 1)


def test_bad_training_sets_and_options_are_refused(corpus):
    train, _ = corpus
    path = train[0].path
    bare = [Utterance(id=f"x{i}", path=path, label=None, speaker="1") for i in range(3)]
    with pytest.raises(ParameterError, match="transcript or word timings"):
        fit_semantic(bare, **TINY)
    untimed = [Utterance(id=f"x{i}", path=path, label=None, speaker="1", transcript="Der Lappen liegt")
               for i in range(3)]
    with pytest.raises(DataError, match="word timings"):
        fit_semantic(untimed, **TINY)
    with pytest.raises(ParameterError, match="alignment must be one of"):
        fit_semantic(train, alignment="muse")
    with pytest.raises(ParameterError, match="alignment_options: unknown option"):
        fit_semantic(train, alignment="procrustes_shared_vocabulary", alignment_options={"restarts": 4})
    with pytest.raises(ParameterError, match="speech2vec_options: unknown option"):
        fit_semantic(train, speech2vec_options={"dimension": 4})
    with pytest.raises(ParameterError, match="differ"):
        fit_semantic(train, word2vec_options={"dim": 8}, speech2vec_options={"embedding_dim": 4})
    with pytest.raises(ParameterError, match="no training utterances"):
        fit_semantic([])


def test_frames_train_the_tzirakis2021_network(corpus, fitted):
    import keras

    from keras_ser.frontend import FrontEnd
    from keras_ser.models.semantic import tzirakis2021_semantic

    _, test = corpus
    utterances = test[:2]
    waveforms = np.stack([audio.load(u.path, sr=22050) for u in utterances])
    audio_frames = FrontEnd("tzirakis2021")(waveforms)[:, 0].numpy()
    frames = fitted.frames(utterances, audio_frames.shape[1])
    words = np.stack([frames[u.id] for u in utterances])
    assert audio_frames.shape[:2] == words.shape[:2] == (2, 100)
    model = tzirakis2021_semantic(semantic_dim=fitted.dim, filters=(2, 2, 2), units=4, lstm_units=4)
    assert tuple(model.inputs[1].shape[1:]) == (None, fitted.dim)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch([audio_frames, words], np.zeros((2, 100, 3), np.float32))
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
