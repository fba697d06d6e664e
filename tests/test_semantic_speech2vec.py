"""Speech2Vec (Chung and Glass 2018) in Keras and the per-frame semantic input of tzirakis2021."""

import numpy as np
import pytest

from keras_ser import audio
from keras_ser.data import Utterance, load_corpus
from keras_ser.errors import DataError, ParameterError
from keras_ser.semantic import (frame_words, map_vectors, normalize, num_frames_for, semantic_frames,
                                spread_vectors)
from keras_ser.semantic import speech2vec as s2v

TINY = dict(embedding_dim=4, encoder_units=3, decoder_units=3)


# --------------------------------------------------------------------------- #
# Front end and segments
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def emodb_utterances(emodb_dir):
    utterances = load_corpus("emodb", emodb_dir.parent, download_if_missing=False)
    return [u for u in utterances if u.words][:6]


def test_mfcc_matches_librosa_on_real_speech(emodb_utterances):
    import librosa  # a [test] dependency

    y = audio.load(emodb_utterances[0].path, sr=16000)
    ours = s2v.mfcc(y[None])[0].numpy()
    # Chung and Glass's 13 MFCCs, 25 ms / 10 ms; librosa with the same (stated) mel settings.
    ref = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=400, hop_length=160, win_length=400,
                               window="hamming", center=True, pad_mode="constant", n_mels=40, htk=True,
                               fmin=0.0, fmax=None).T
    assert ours.shape == ref.shape == (1 + len(y) // 160, 13)
    scale = np.abs(ref).max(axis=0)
    np.testing.assert_allclose(ours / scale, ref / scale, atol=2e-4)


def test_segments_take_the_frames_centred_in_each_word():
    rng = np.random.default_rng(0)
    y = rng.normal(scale=0.1, size=16000).astype(np.float32)
    words = [("eins", 0.104, 0.3), ("zwei", 0.3, 0.455), ("drei", 0.9, 1.5)]
    segments = s2v.segment_waveform(y, words, name="toy")
    full = s2v.mfcc(y[None])[0].numpy()
    # Frame t is centred on t * 10 ms: [0.104, 0.3) -> 11..29, [0.3, 0.455) -> 30..45, and the last word,
    # cut at the audio's end, [0.9, 1.0) -> 90..99 (frame 100, centred on 1.0 s, lies outside it).
    for segment, (first, stop) in zip(segments, [(11, 30), (30, 46), (90, 100)]):
        np.testing.assert_array_equal(segment.features, full[first:stop])
    assert [s.index for s in segments] == [0, 1, 2] and segments[2].end == 1.0
    assert [s.word for s in segments] == ["eins", "zwei", "drei"]


def test_bad_word_timings_are_refused_with_the_name():
    y = np.random.default_rng(1).normal(scale=0.1, size=8000).astype(np.float32)
    with pytest.raises(DataError, match="toy: word 'kurz' .* shorter than one MFCC window"):
        s2v.segment_waveform(y, [("lang", 0.0, 0.2), ("kurz", 0.2, 0.22)], name="toy")
    kept = s2v.segment_waveform(y, [("a", 0.0, 0.1), ("kurz", 0.1, 0.12), ("b", 0.12, 0.3)], short_segments="skip")
    assert [(s.word, s.index) for s in kept] == [("a", 0), ("b", 1)]
    with pytest.raises(DataError, match="ends .* before it starts"):
        s2v.segment_waveform(y, [("a", 0.2, 0.1)])
    with pytest.raises(DataError, match="outside the audio"):
        s2v.segment_waveform(y, [("a", 0.6, 0.7)])
    with pytest.raises(DataError, match="toy has no word timings"):
        s2v.segment_waveform(y, [], name="toy")
    with pytest.raises(ParameterError, match="short_segments"):
        s2v.segment_waveform(y, [("a", 0.0, 0.1)], short_segments="pad")


def test_utterance_without_word_timings_names_the_file(emodb_utterances):
    bare = Utterance(id="x01", path=emodb_utterances[0].path, label=None, speaker="1")
    with pytest.raises(DataError, match=r"utterance x01 \(.*\.wav\) has no word timings"):
        s2v.word_segments([emodb_utterances[0], bare])


# --------------------------------------------------------------------------- #
# Model and loss
# --------------------------------------------------------------------------- #


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _lstm(x, kernel, recurrent, bias, steps=None):
    """Keras' LSTM (gates i, f, c, o) over ``x [T, d]``; the final state after ``steps`` steps."""
    units = recurrent.shape[0]
    h, c, outputs = np.zeros(units), np.zeros(units), []
    for t in range(len(x) if steps is None else steps):
        gates = x[t] @ kernel + h @ recurrent + bias
        i, f, g, o = (gates[k * units:(k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return h, np.array(outputs)


def _numpy_forward(model, segment, length, context_steps):
    """The tiny shared-decoder model by hand: BLSTM over the real frames, projection, decoder."""
    w = {v.path: v.numpy().astype(np.float64) for v in model.weights}

    def get(layer, name):
        return next(value for path, value in w.items() if path.startswith(layer + "/") and path.endswith(name))

    forward_h, _ = _lstm(segment[:length], get("encoder/forward_lstm", "/kernel"),
                         get("encoder/forward_lstm", "recurrent_kernel"), get("encoder/forward_lstm", "bias"))
    backward_h, _ = _lstm(segment[:length][::-1], get("encoder/backward_lstm", "/kernel"),
                          get("encoder/backward_lstm", "recurrent_kernel"), get("encoder/backward_lstm", "bias"))
    z = np.concatenate([forward_h, backward_h]) @ get("embedding", "kernel") + get("embedding", "bias")
    _, hidden = _lstm(np.repeat(z[None], context_steps, axis=0), get("decoder", "/kernel"),
                      get("decoder", "recurrent_kernel"), get("decoder", "bias"))
    return hidden @ get("reconstruction", "kernel") + get("reconstruction", "bias")


def _toy_segments(seed=0, utterances=3, words=5, n_mfcc=13):
    rng = np.random.default_rng(seed)
    return [[s2v.WordSegment(f"w{i}", f"u{u}", i, 0.0, 1.0,
                             rng.normal(size=(int(rng.integers(2, 7)), n_mfcc)).astype(np.float32))
             for i in range(words)] for u in range(utterances)]


def test_one_step_loss_equals_numpy_on_padded_masked_neighbours():
    segments = _toy_segments(utterances=1, words=4, n_mfcc=2)
    model, _ = s2v.speech2vec_model(n_mfcc=2, window=1, **TINY)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.5, size=v.shape).astype(np.float32) for v in model.get_weights()])
    centres = [(0, 0), (0, 2), (0, 3)]    # (0, 0) has no left neighbour, (0, 3) no right one
    segment, segment_mask, context, context_mask = s2v.skipgram_batch(segments, centres, window=1)
    output = model([segment, segment_mask, context]).numpy()
    loss = float(s2v.skipgram_loss(context, context_mask, output))

    expected = []
    for row, (_, i) in enumerate(centres):
        length = len(segments[0][i].features)
        recon = _numpy_forward(model, segment[row], length, context.shape[2])
        np.testing.assert_allclose(output[row, 0], recon, atol=1e-5)
        total = 0.0
        for j in (i - 1, i + 1):
            if 0 <= j < 4:
                target = segments[0][j].features
                total += np.mean((recon[: len(target)] - target) ** 2)
        expected.append(total)
    assert loss == pytest.approx(np.mean(expected), rel=1e-5)
    # Five more padded frames on every sequence (as a longer segment in the batch would add) change nothing.
    pad = [(0, 0)] * 3
    more = (np.pad(segment, [(0, 0), (0, 5), (0, 0)]), np.pad(segment_mask, [(0, 0), (0, 5)]),
            np.pad(context, pad[:2] + [(0, 5), (0, 0)]), np.pad(context_mask, pad[:2] + [(0, 5)]))
    padded_output = model(list(more[:3]))
    assert float(s2v.skipgram_loss(more[2], more[3], padded_output)) == pytest.approx(loss, rel=1e-5)


def test_separate_decoders_give_each_offset_its_own_reconstruction():
    model, encoder = s2v.speech2vec_model(n_mfcc=3, window=2, shared_decoder=False, **TINY)
    segments = _toy_segments(n_mfcc=3)
    batch = s2v.skipgram_batch(segments, [(0, 2)], window=2)
    output = model(list(batch[:3])).numpy()
    assert output.shape == (1, 4, batch[2].shape[2], 3)
    assert not np.allclose(output[0, 0], output[0, 1])
    assert encoder.output.shape == (None, TINY["embedding_dim"])
    shared, _ = s2v.speech2vec_model(n_mfcc=3, window=2, **TINY)
    shared_output = shared(list(batch[:3])).numpy()
    np.testing.assert_array_equal(shared_output[0, 0], shared_output[0, 3])


def test_window_below_one_is_refused():
    for window in (0, -1, 1.5, True):
        with pytest.raises(ParameterError, match="window"):
            s2v.speech2vec_model(window=window)
    with pytest.raises(ParameterError, match="window"):
        s2v.train_speech2vec(_toy_segments(), window=0)
    with pytest.raises(DataError, match="no word segments"):
        s2v.train_speech2vec([[], []])


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


def _patterned_segments(seed=0, utterances=8):
    """Three word types, each a fixed MFCC pattern (+ noise), always spoken in the same order."""
    rng = np.random.default_rng(seed)
    patterns = {w: rng.normal(size=(n, 5)).astype(np.float32) for w, n in (("a", 4), ("b", 6), ("c", 3))}
    return [[s2v.WordSegment(w, f"u{u}", i, 0.0, 1.0,
                             patterns[w] + rng.normal(scale=0.05, size=patterns[w].shape).astype(np.float32))
             for i, w in enumerate("abcab")] for u in range(utterances)]


@pytest.fixture(scope="module")
def trained():
    segments = _patterned_segments()
    settings = dict(window=2, embedding_dim=6, encoder_units=8, decoder_units=8, batch_size=8,
                    optimizer="adam", learning_rate=0.02, seed=4)
    untrained = s2v.train_speech2vec(segments, max_steps=1, **{**settings, "learning_rate": 0.0})
    model = s2v.train_speech2vec(segments, epochs=12, **settings)
    return segments, settings, untrained, model


def test_training_lowers_the_loss(trained):
    segments, _, untrained, model = trained
    before, after = s2v.evaluate_loss(untrained, segments), s2v.evaluate_loss(model, segments)
    assert len(model.history) == 12 * 5 and np.all(np.isfinite(model.history))
    assert after < 0.6 * before, (before, after)


def test_training_is_deterministic_with_a_seed(trained):
    segments, settings, _, model = trained
    again = s2v.train_speech2vec(segments, epochs=12, **settings)
    assert again.history == model.history
    for a, b in zip(again.model.get_weights(), model.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = s2v.train_speech2vec(segments, max_steps=3, **{**settings, "seed": 5})
    assert other.history != model.history[:3]


def test_embed_ignores_padding_and_word_vectors_average_segments(trained):
    segments, _, _, model = trained
    flat = [s for group in segments for s in group]
    short, long_ = flat[2], flat[1]                 # 3 and 6 frames
    alone = model.embed([short])
    together = model.embed([short, long_])
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    vectors = model.word_vectors(segments)
    assert sorted(vectors) == ["a", "b", "c"]
    a_rows = model.embed([s for s in flat if s.word == "a"])
    np.testing.assert_allclose(vectors["a"], a_rows.mean(axis=0), atol=1e-6)
    with pytest.raises(DataError, match="segment 0 has shape"):
        model.embed([np.zeros((0, 5), np.float32)])


def test_encoder_saves_and_loads_with_plain_keras(trained, tmp_path):
    import dataclasses

    import keras

    segments, _, _, model = trained
    model.encoder.save(tmp_path / "encoder.keras")
    loaded = dataclasses.replace(model, encoder=keras.models.load_model(tmp_path / "encoder.keras"))
    flat = [s for group in segments for s in group]
    np.testing.assert_allclose(loaded.embed(flat), model.embed(flat), atol=1e-6)


def test_real_emodb_word_segments_train_for_a_few_steps(emodb_utterances):
    segments = s2v.word_segments(emodb_utterances, short_segments="skip")
    assert len(segments) == len(emodb_utterances)
    for utterance, group in zip(emodb_utterances, segments):
        assert group and all(s.utterance == utterance.id and s.features.shape[1] == 13 for s in group)
        assert len(group) <= len(utterance.words)
    model = s2v.train_speech2vec(segments, window=3, embedding_dim=8, encoder_units=8, decoder_units=8,
                                 batch_size=16, max_steps=3, optimizer="adam", learning_rate=0.01)
    assert len(model.history) == 3 and np.all(np.isfinite(model.history))
    vectors = model.word_vectors(segments)
    assert set(vectors) == {s.word.lower() for group in segments for s in group}
    assert all(v.shape == (8,) and np.all(np.isfinite(v)) for v in vectors.values())


# --------------------------------------------------------------------------- #
# Frames (part 5)
# --------------------------------------------------------------------------- #


def test_frame_words_boundary_cases():
    words = [("spans", 0.05, 0.32),    # frames 0 (0.05 s), 1 (0.1 s), 2 (0.1 s), 3 (0.02 s)
             ("short", 0.33, 0.36),    # frame 3: 0.03 s beats spans' 0.02 s
             ("after_gap", 0.61, 0.75),  # frames 4-5 empty (gap), 6, 7
             ("tie", 0.75, 0.85),       # frame 7: 0.05 s each -> the earlier word
             ("past_end", 0.95, 1.4)]   # frame 9 only; the rest lies past the last frame
    expected = [0, 0, 0, 1, -1, -1, 2, 2, 3, 4]
    assert frame_words(words, 10).tolist() == expected
    assert frame_words(words, 3).tolist() == expected[:3]
    assert frame_words([("late", 2.0, 2.5)], 5).tolist() == [-1] * 5
    assert frame_words([], 4).tolist() == [-1] * 4
    assert frame_words(words, 0).shape == (0,)
    with pytest.raises(DataError, match="ends at or before"):
        frame_words([("bad", 0.3, 0.3)], 5)
    with pytest.raises(ParameterError, match="num_frames"):
        frame_words(words, -1)


def test_spread_vectors_zero_or_given_fill():
    words = [("a", 0.0, 0.1), ("b", 0.2, 0.3)]
    vectors = np.array([[1.0, 2.0], [3.0, 4.0]])
    frames = spread_vectors(words, vectors, 4)
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, [[1, 2], [0, 0], [3, 4], [0, 0]])
    filled = spread_vectors(words, vectors, 4, fill=[9.0, 9.0])
    np.testing.assert_array_equal(filled, [[1, 2], [9, 9], [3, 4], [9, 9]])
    with pytest.raises(ParameterError, match="fill"):
        spread_vectors(words, vectors, 4, fill=[1.0])
    assert num_frames_for(44100, 22050) == 20 and num_frames_for(44101, 22050) == 21


@pytest.fixture(scope="module")
def real_speech2vec(emodb_utterances):
    segments = s2v.word_segments(emodb_utterances, short_segments="skip")
    model = s2v.train_speech2vec(segments, window=2, embedding_dim=6, encoder_units=6, decoder_units=6,
                                 max_steps=2, optimizer="adam", learning_rate=0.01)
    return segments, model


def test_semantic_frames_feed_the_tzirakis2021_network(emodb_utterances, real_speech2vec):
    from keras_ser.frontend import FrontEnd
    from keras_ser.models.semantic import tzirakis2021_semantic

    segments, model = real_speech2vec
    train = np.stack(list(model.word_vectors(segments).values()))
    mean = normalize(train, center=False).mean(axis=0)
    rng = np.random.default_rng(0)
    W, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    utterance = emodb_utterances[1]
    y16 = audio.load(utterance.path, sr=16000)
    frames = semantic_frames(y16, utterance.words, model, W, speech_mean=mean)
    assert frames.shape == (num_frames_for(len(y16), 16000), 6) == (20, 6) and frames.dtype == np.float32

    kept = model.segments(y16, utterance.words, short_segments="skip")
    expected = map_vectors(W, normalize(model.embed(kept), mean=mean))
    index = frame_words([(s.word, s.start, s.end) for s in kept], 20)
    for f, k in enumerate(index):
        np.testing.assert_allclose(frames[f], expected[k] if k >= 0 else 0.0, atol=1e-6)
    assert (index == -1).any() and (index >= 0).sum() > 10     # leading silence, then words

    # The network's semantic input: the front end's 100-frame sequences, words padded with zeros.
    y22 = audio.load(utterance.path, sr=22050)
    audio_frames = FrontEnd("tzirakis2021")(y22[None])[:, 0].numpy()
    padded = semantic_frames(y16, utterance.words, model, W, speech_mean=mean, num_frames=audio_frames.shape[1])
    np.testing.assert_array_equal(padded[:20], frames)
    assert not padded[20:].any()
    net = tzirakis2021_semantic(semantic_dim=6, filters=(2, 2, 2), units=4, lstm_units=4)
    output = net([audio_frames, padded[None]])
    assert tuple(output.shape) == (1, 100, 3) and np.all(np.isfinite(output))
    with pytest.raises(ParameterError, match="W has shape"):
        semantic_frames(y16, utterance.words, model, np.eye(5))



def test_package_import_leaves_tensorflow_until_speech2vec_is_used():
    import subprocess
    import sys

    code = ("import sys, keras_ser.semantic as s; before = 'tensorflow' in sys.modules; "
            "f = s.train_speech2vec; print(before, 'tensorflow' in sys.modules, f.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True", "keras_ser.semantic.speech2vec"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        import keras_ser.semantic

        keras_ser.semantic.nothing
