"""The exported SavedModel's signatures: lengths, per-request speaker statistics, WAV bytes.

Tiny MODEL DIRs are built here (no training): a variable-length log-mel model with
per-speaker standardisation and the segment model of test_predict_export. Expected
values come from :class:`keras_ser.predict.Predictor` on the clip alone (its own
path, not the serving graph) and from :func:`keras_ser.frontend.with_speaker_statistics`.
"""

import re

import numpy as np
import pytest

from model_helper import EMODB_LABELS as LABELS
from model_helper import write_model_dir

FEATURES = 40


@pytest.fixture(scope="module")
def clips(emodb_wavs):
    """Three EMO-DB utterances of speaker 03 at 16 kHz, and their paths."""
    from keras_ser import audio

    paths = [p for p in emodb_wavs if p.name.startswith("03")][:3]
    return paths, [audio.load(p, sr=16000) for p in paths]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """SavedModels of a speaker-standardised model and of a segment model, loaded."""
    import keras
    import tensorflow as tf

    from keras_ser.export import export
    from keras_ser.frontend import FrontEnd

    root = tmp_path_factory.mktemp("serving")
    keras.utils.set_random_seed(5)
    inputs = keras.Input((None, FEATURES))
    hidden = keras.layers.Conv1D(8, 5, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    # Statistics far from any real speaker's, so that using or ignoring them shows.
    frontend = FrontEnd("zhao2019", num_frames=None, standardize="speaker",
                        feature_mean=[-40.0] * FEATURES, feature_std=[10.0] * FEATURES)
    write_model_dir(root / "speaker", model, frontend, "none")

    inputs = keras.Input((32, 32, 2))
    # Raw dB images would saturate the softmax of random weights, hiding any difference.
    hidden = keras.layers.Rescaling(0.01)(inputs)
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    segment_model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    write_model_dir(root / "segments", segment_model,
                     FrontEnd(representation="mel_segments", n_mels=32, segment_frames=32, segment_hop=16,
                              channels=2), "mean_segments")
    for name in ("speaker", "segments"):
        export(root / name, root / f"{name}_sm")
    return {name: (root / name, tf.saved_model.load(str(root / f"{name}_sm")), root / f"{name}_sm")
            for name in ("speaker", "segments")}


def _call(loaded, signature, **inputs):
    import tensorflow as tf

    return {k: v.numpy() for k, v in loaded.signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _padded(rows):
    batch = np.zeros((len(rows), max(len(r) for r in rows)), np.float32)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = row
    return batch, np.array([len(r) for r in rows], np.int32)


@pytest.mark.parametrize("kind", ["speaker", "segments"])
def test_two_row_request_equals_two_one_row_requests(exported, clips, kind):
    from keras_ser.predict import Predictor

    model_dir, loaded, _ = exported[kind]
    no_stats = {"speaker_mean": np.zeros(0, np.float32), "speaker_std": np.zeros(0, np.float32)}
    stats = no_stats if kind == "speaker" else {}
    long_clip, short_clip = clips[1][0], clips[1][1][:16000]  # 2 s and 1 s
    batch, lengths = _padded([long_clip, short_clip])
    together = _call(loaded, "serving_full", waveform=batch, lengths=lengths, **stats)["probabilities"]
    alone = [_call(loaded, "serving_full", waveform=clip[None], lengths=np.zeros(0, np.int32), **stats)
             ["probabilities"][0] for clip in (long_clip, short_clip)]
    np.testing.assert_allclose(together, np.stack(alone), atol=1e-6)
    # The serving graph agrees with Predictor, which scores the clip by itself.
    predictor = Predictor(model_dir)
    np.testing.assert_allclose(alone[1], predictor.predict_waveforms(short_clip[None])[0], atol=1e-5)
    # Without lengths the padding is part of the clip, and the probabilities move: lengths are what masks it.
    unmasked = _call(loaded, "serving_default", waveform=batch)["probabilities"]
    assert np.abs(unmasked[1] - alone[1]).max() > 1e-4
    np.testing.assert_allclose(unmasked[0], alone[0], atol=1e-6)  # the full row is its whole clip
    # The padding's content is ignored, even NaN.
    batch[1, len(short_clip):] = np.nan
    np.testing.assert_allclose(_call(loaded, "serving_full", waveform=batch, lengths=lengths, **stats)
                               ["probabilities"], together, atol=1e-6)


def test_speaker_statistics_inputs_fall_back_to_the_stored_ones(exported, clips):
    from keras_ser.frontend import with_speaker_statistics
    from keras_ser.predict import Predictor

    model_dir, loaded, _ = exported["speaker"]
    _, waves = clips
    clip = waves[0][None]
    empty = np.zeros(0, np.float32)
    meta = _call(loaded, "metadata")
    assert meta["standardize"] == b"speaker"
    np.testing.assert_allclose(meta["speaker_mean"], [-40.0] * FEATURES)
    np.testing.assert_allclose(meta["speaker_std"], [10.0] * FEATURES)
    stored = Predictor(model_dir).predict_waveforms(clip)
    fallback = _call(loaded, "serving_full", waveform=clip, lengths=np.zeros(0, np.int32),
                     speaker_mean=empty, speaker_std=empty)["probabilities"]
    np.testing.assert_allclose(fallback, stored, atol=1e-5)
    np.testing.assert_allclose(_call(loaded, "serving_default", waveform=clip)["probabilities"], stored, atol=1e-5)

    # The speaker_statistics signature gives the statistics adapt_to_speaker computes (padded rows).
    batch, lengths = _padded(waves)
    statistics = _call(loaded, "speaker_statistics", waveform=batch, lengths=lengths)
    reference = with_speaker_statistics(Predictor(model_dir).frontend, waves).settings
    np.testing.assert_allclose(statistics["speaker_mean"], reference["feature_mean"], atol=1e-4)
    np.testing.assert_allclose(statistics["speaker_std"], reference["feature_std"], atol=1e-4)

    adapted = Predictor(model_dir)
    adapted.adapt_to_speaker(waves)
    expected = adapted.predict_waveforms(clip)
    assert np.abs(expected - stored).max() > 1e-3  # the statistics matter for this model
    given = _call(loaded, "serving_full", waveform=clip, lengths=np.zeros(0, np.int32), **statistics)
    np.testing.assert_allclose(given["probabilities"], expected, atol=1e-5)

    # One speaker per row: row 0 with the stored statistics, row 1 with the given ones.
    per_row = _call(loaded, "serving_full", waveform=np.concatenate([clip, clip]), lengths=np.zeros(0, np.int32),
                    speaker_mean=np.stack([meta["speaker_mean"], statistics["speaker_mean"]]),
                    speaker_std=np.stack([meta["speaker_std"], statistics["speaker_std"]]))["probabilities"]
    np.testing.assert_allclose(per_row, np.concatenate([stored, expected]), atol=1e-5)


def test_speaker_statistics_inputs_are_checked(exported, clips):
    import tensorflow as tf

    _, loaded, _ = exported["speaker"]
    clip = clips[1][0][None]
    good = np.ones(FEATURES, np.float32)
    cases = {
        "speaker_mean must be [40] (one speaker) or [batch, 40]": dict(
            speaker_mean=np.ones(7, np.float32), speaker_std=good),
        "speaker_std must be [40]": dict(speaker_mean=good, speaker_std=np.ones((3, FEATURES), np.float32)),
        "speaker_mean must be [40] (one speaker)": dict(speaker_mean=np.float32(1.0), speaker_std=good),
        "give both speaker_mean and speaker_std, or neither": dict(
            speaker_mean=good, speaker_std=np.zeros(0, np.float32)),
        "speaker_mean has NaN or Inf": dict(speaker_mean=np.full(FEATURES, np.nan, np.float32), speaker_std=good),
        "speaker_std must be positive": dict(speaker_mean=good, speaker_std=np.zeros(FEATURES, np.float32)),
    }
    for message, stats in cases.items():
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(message)):
            _call(loaded, "serving_full", waveform=clip, lengths=np.zeros(0, np.int32), **stats)


def test_lengths_are_checked_like_the_waveform(exported, clips):
    import tensorflow as tf

    _, loaded, _ = exported["segments"]
    batch, lengths = _padded([clips[1][0], clips[1][1][:8000]])
    cases = {
        "lengths must hold one sample count per waveform row": np.array([100], np.int32),
        "lengths exceed the number of samples per waveform row": lengths + 1,
        "waveform too short: need at least 400 samples": np.array([32000, 399], np.int32),
        "waveform must have rank 2": None,
    }
    for message, bad in cases.items():
        inputs = dict(waveform=batch, lengths=bad) if bad is not None else dict(
            waveform=batch[0], lengths=lengths[:1])
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            _call(loaded, "serving_full", **inputs)
    # Checks look at the valid samples only: a row that is silent there is refused, padding is not checked.
    silent = batch.copy()
    silent[1, :lengths[1]] = 0.0
    silent[1, lengths[1]:] = 0.5
    with pytest.raises(tf.errors.InvalidArgumentError, match="silent waveform"):
        _call(loaded, "serving_full", waveform=silent, lengths=lengths)
    nan = batch.copy()
    nan[0, 5] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        _call(loaded, "serving_full", waveform=nan, lengths=lengths)


def test_wav_bytes_signature_with_emodb_files(exported, clips, tmp_path):
    import soxr
    import soundfile
    import tensorflow as tf

    _, loaded, _ = exported["speaker"]
    paths, _ = clips
    # EMO-DB-2s is 22.05 kHz and the model's front end 16 kHz: the graph refuses rather than resamples.
    raw = [path.read_bytes() for path in paths]
    assert soundfile.info(paths[0]).samplerate == 22050
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"WAV sample rate must be 16000 Hz.*\[22050"):
        _call(loaded, "serving_wav", wav=np.array(raw[:1], object))

    # Resampled to 16 kHz by the client, written as 16-bit PCM stereo (channels averaged), lengths differ.
    files = []
    for i, path in enumerate(paths):
        waveform, rate = soundfile.read(path, dtype="float32")
        waveform = soxr.resample(waveform, rate, 16000, quality="HQ")[: 32000 - 6000 * i]
        out = tmp_path / f"{i}.wav"
        soundfile.write(out, np.stack([waveform, 0.5 * waveform], axis=1), 16000, subtype="PCM_16")
        files.append(out.read_bytes())
    result = _call(loaded, "serving_wav", wav=np.array(files, object))
    assert result["probabilities"].shape == (3, 7)
    assert [v.decode() for v in result["label_names"][0]] == LABELS
    for row, data in zip(result["probabilities"], files):
        samples, rate = tf.audio.decode_wav(data)
        assert int(rate) == 16000
        mono = tf.reduce_mean(samples, axis=1)[None]
        np.testing.assert_allclose(row, _call(loaded, "serving_default", waveform=mono.numpy())["probabilities"][0],
                                   atol=1e-6)
    statistics = _call(loaded, "speaker_statistics", waveform=np.stack([c[:24000] for c in clips[1]]),
                       lengths=np.zeros(0, np.int32))
    full = _call(loaded, "serving_wav_full", wav=np.array(files, object), **statistics)["probabilities"]
    assert np.abs(full - result["probabilities"]).max() > 1e-3
    mono = tf.reduce_mean(tf.audio.decode_wav(files[2])[0], axis=1)[None].numpy()
    np.testing.assert_allclose(full[2], _call(loaded, "serving_full", waveform=mono, lengths=np.zeros(0, np.int32),
                                              **statistics)["probabilities"][0], atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="wav must have rank 1"):
        _call(loaded, "serving_wav", wav=np.array(files[:1], object)[None])


def test_signatures_listed_by_saved_model_cli(exported):
    import pathlib
    import subprocess
    import sys

    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    listing = {}
    for kind in ("speaker", "segments"):
        shown = subprocess.run([str(cli), "show", "--dir", str(exported[kind][2]), "--all"],
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        listing[kind] = shown.stdout
    speaker_full = listing["speaker"].split("signature_def['serving_full']")[1].split("signature_def[")[0]
    for name in ("waveform", "lengths", "speaker_mean", "speaker_std"):
        assert f"inputs['{name}']" in speaker_full
    assert "signature_def['speaker_statistics']" in listing["speaker"]
    assert "signature_def['serving_wav_full']" in listing["speaker"]
    segments_full = listing["segments"].split("signature_def['serving_full']")[1].split("signature_def[")[0]
    assert "inputs['lengths']" in segments_full and "speaker_mean" not in segments_full
    assert "signature_def['serving_wav']" in listing["segments"]
    assert "speaker_statistics" not in listing["segments"]
