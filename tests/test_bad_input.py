"""The bad-input suite: every kind of bad input through every consumer.

The corpus is generated in ``tmp_path``. Each file kind goes through
``audio.load``, the extractors (eGeMAPS, ComParE, log-Mel, and the deep-spectrum
CNN path with a tiny stand-in network, and the trained-embedding extractor of the
tiny model) and ``Predictor.predict_files`` of a tiny model trained here once with
``keras_ser.train.main``; waveform-level cases go
through ``Predictor.predict_waveforms`` and the model's exported SavedModel;
manifest cases through ``load_corpus("manifest:...")`` and a one-fold training.
Every case asserts its specific outcome: the error type and that the message
names the file (or setting), or the documented handling (README, "Bad input and
interrupted runs").
"""

import json
import math
import shutil
import warnings

import keras
import numpy as np
import pytest
import soundfile

from keras_ser import audio, extraction
from keras_ser import extract as cli
from keras_ser.errors import DataError, ParameterError

from model_helper import register_tiny_logmel_model

SR = 16000
TINY = register_tiny_logmel_model()
LABELS = ["anger", "neutral"]

TRAIN_ARGS = ["--recipe", "zhao2019_attention_blstm_fcn", "--no-progress", f"model.name={TINY}",
              "train.epochs=1", "train.verbose=0", "train.batch_size=64", "experiment.save_features=false",
              "frontend.standardize=utterance"]


def _noise(seconds=0.5, rms=0.1, sr=SR, seed=0):
    return (rms * np.random.default_rng(seed).standard_normal(int(round(sr * seconds)))).astype(np.float32)


# ---------------------------------------------------------------------------- the file corpus

def _write(folder, name, data, sr=SR, subtype="FLOAT"):
    path = folder / name
    soundfile.write(path, data, sr, subtype=subtype)
    return path


def _truncated_header(folder):
    good = _write(folder, "good.wav", _noise(), subtype="PCM_16")
    path = folder / "truncated_header.wav"
    path.write_bytes(good.read_bytes()[:20])
    good.unlink()
    return path


def _zero_length(folder):
    path = folder / "zero_length.wav"
    path.write_bytes(b"")
    return path


def _with_bad_sample(value):
    def build(folder):
        data = _noise()
        data[100] = value
        return _write(folder, f"bad_sample_{value}.wav", data)
    return build


def _text_renamed(folder):
    path = folder / "notes.wav"
    path.write_text("path,label,speaker\nthis is not audio\n")
    return path


def _directory(folder):
    path = folder / "x.wav"
    path.mkdir()
    return path


def _channels(count):
    def build(folder):
        data = np.stack([_noise(seed=c) for c in range(count)], axis=1)
        return _write(folder, f"channels_{count}.wav", data)
    return build


FILES = {
    "truncated_header": _truncated_header,
    "zero_length": _zero_length,
    "zero_samples": lambda d: _write(d, "zero_samples.wav", np.zeros(0, np.float32)),
    "silent": lambda d: _write(d, "silent.wav", np.zeros(SR // 2, np.float32), subtype="PCM_16"),
    "near_silent": lambda d: _write(d, "near_silent.wav", _noise(rms=1e-6)),
    "nan": _with_bad_sample(np.nan),
    "inf": _with_bad_sample(np.inf),
    "1ms": lambda d: _write(d, "one_ms.wav", _noise(seconds=0.001), subtype="PCM_16"),
    "30ms": lambda d: _write(d, "thirty_ms.wav", _noise(seconds=0.030), subtype="PCM_16"),
    "stereo": _channels(2),
    "6_channels": _channels(6),
    "8kHz": lambda d: _write(d, "rate_8k.wav", _noise(sr=8000), sr=8000, subtype="PCM_16"),
    "48kHz": lambda d: _write(d, "rate_48k.wav", _noise(sr=48000), sr=48000, subtype="PCM_16"),
    "8bit": lambda d: _write(d, "eight_bit.wav", _noise(), subtype="PCM_U8"),
    "float64": lambda d: _write(d, "float64.wav", _noise().astype(np.float64), subtype="DOUBLE"),
    "out_of_range": lambda d: _write(d, "out_of_range.wav", _noise() / np.max(np.abs(_noise())) * 4e6),
    "text_renamed_wav": _text_renamed,
    "directory_x_wav": _directory,
    "unicode_path_spaces": lambda d: _write(d, "ääh ünïcode – file.wav", _noise(), subtype="PCM_16"),
    "missing": lambda d: d / "missing.wav",
}

#: File kinds that every consumer refuses: (error type, message pattern).
REFUSED = {
    "truncated_header": (DataError, "cannot decode"),
    "zero_length": (DataError, "cannot decode"),
    "zero_samples": (DataError, "contains no samples"),
    "silent": (DataError, r"is silent \(all samples are zero\)"),
    "near_silent": (DataError, r"is silent: RMS -1[12]\d\.\d dBFS is below the silence floor -70 dBFS"),
    "nan": (DataError, "NaN or infinite"),
    "inf": (DataError, "NaN or infinite"),
    "1ms": (DataError, r"too short: 1\.0 ms < min_duration 25\.0 ms"),
    "text_renamed_wav": (DataError, "cannot decode"),
    "directory_x_wav": (DataError, "is a directory"),
    "missing": (DataError, "not found"),
}
ACCEPTED = [kind for kind in FILES if kind not in REFUSED]

#: Extractors with a longer minimum than load's 25 ms refuse the 30 ms file.
SHORT_REFUSED = {"egemaps": r"too short for openSMILE eGeMAPSv02.*30\.0 ms < 61\.0 ms",
                 "compare": r"too short for openSMILE ComParE_2016.*30\.0 ms < 61\.0 ms"}


def _expected_waveform(kind):
    """The documented result of ``audio.load(path, sr=16000)`` for an accepted kind."""
    if kind in ("stereo", "6_channels"):
        count = 2 if kind == "stereo" else 6
        return np.mean([_noise(seed=c) for c in range(count)], axis=0)
    if kind == "out_of_range":
        return _noise() / np.max(np.abs(_noise()))
    if kind == "30ms":
        return _noise(seconds=0.030)
    return _noise()


# ---------------------------------------------------------------------------- shared fixtures

def _tiny_manifest(path, emodb_dir, extra=(), bom=False):
    rows = ["path,label,speaker"]
    for speaker in ("03", "08", "09"):
        for code, label in (("W", "anger"), ("N", "neutral")):
            files = sorted(p for p in (emodb_dir / "wav").glob(f"{speaker}*.wav") if p.name[5] == code)
            rows += [f"{p},{label},{speaker}" for p in files[:2]]
    rows += list(extra)
    path.write_text(("\ufeff" if bom else "") + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, emodb_dir):
    """One fold of a tiny model trained with ``train.main`` on a 12-file manifest, and its SavedModel.

    The manifest starts with a UTF-8 byte-order mark (as spreadsheet programs write
    it): this training is also the BOM manifest case.
    """
    import tensorflow as tf

    from keras_ser.export import export
    from keras_ser.train import main

    root = tmp_path_factory.mktemp("trained")
    manifest = _tiny_manifest(root / "with bom.csv", emodb_dir, bom=True)
    code = main(TRAIN_ARGS + ["--corpus", f"manifest:{manifest}", "--out", str(root / "run"),
                              "--folds", "speaker_03"])
    predictor = export(root / "run", root / "serving" / "1")
    serve = tf.saved_model.load(str(root / "serving" / "1")).signatures["serving_default"]
    return {"code": code, "manifest": manifest, "run": root / "run", "predictor": predictor, "serve": serve}


@pytest.fixture(scope="module")
def extractors(trained):
    from keras_ser.extraction.deep_spectrum import DeepSpectrumExtractor
    from keras_ser.extraction.embeddings import EmbeddingExtractor

    keras.utils.set_random_seed(0)
    tiny_cnn = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, strides=4),
                                 keras.layers.GlobalAveragePooling2D()], name="tiny_cnn")
    return {"egemaps": extraction.get_extractor("egemaps"), "compare": extraction.get_extractor("compare"),
            "logmel": extraction.get_extractor("logmel"),
            "cnn": DeepSpectrumExtractor("alexnet_fc7", model=tiny_cnn, image_size=32),
            "embedding": EmbeddingExtractor(trained["run"] / "folds" / "speaker_03" / "model")}


# ---------------------------------------------------------------------------- files

@pytest.mark.parametrize("kind", list(REFUSED))
def test_load_refuses(tmp_path, kind):
    path = FILES[kind](tmp_path)
    error, pattern = REFUSED[kind]
    with pytest.raises(error, match=pattern) as info:
        audio.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", ACCEPTED)
def test_load_accepts_with_the_documented_handling(tmp_path, kind):
    path = FILES[kind](tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = audio.load(path, sr=SR)
    out_of_range = [w for w in caught if issubclass(w.category, audio.OutOfRangeWarning)]
    assert len(out_of_range) == (kind == "out_of_range")
    if out_of_range:
        assert str(path) in str(out_of_range[0].message) and "peak-normalised" in str(out_of_range[0].message)
    assert y.dtype == np.float32 and y.ndim == 1
    if kind in ("8kHz", "48kHz"):  # resampled to 16 kHz: duration kept, band-limited noise
        assert y.shape == (SR // 2,) and 0.02 < float(np.sqrt(np.mean(y ** 2))) < 0.2
        return
    expected = _expected_waveform(kind)
    tolerance = {"8bit": 1 / 64, "unicode_path_spaces": 1 / 2 ** 14, "30ms": 1 / 2 ** 14}.get(kind, 1e-6)
    np.testing.assert_allclose(y, expected, atol=tolerance)


@pytest.mark.parametrize("kind", list(FILES))
@pytest.mark.parametrize("name", ["egemaps", "compare", "logmel", "cnn", "embedding"])
def test_extractors(tmp_path, extractors, name, kind):
    extractor = extractors[name]
    path = FILES[kind](tmp_path)
    expected = REFUSED.get(kind) or ((DataError, SHORT_REFUSED[name]) if kind == "30ms" and name in SHORT_REFUSED
                                     else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", audio.OutOfRangeWarning)
        if expected is not None:
            with pytest.raises(expected[0], match=expected[1]) as info:
                extraction.extract(extractor, [path], progress=False)
            assert str(path) in str(info.value)
            return
        table = extraction.extract(extractor, [path], progress=False)
    assert table.features.shape == (1, extractor.dimension) and table.names == [path.name]
    assert np.all(np.isfinite(table.features))  # never a NaN row
    if kind == "out_of_range" and name == "egemaps":
        # Peak-normalised before openSMILE: the values of the same signal inside [-1, 1].
        clean = _write(tmp_path, "clean.wav", _expected_waveform(kind))
        reference = extraction.extract(extractor, [clean], progress=False).features
        np.testing.assert_allclose(table.features, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", list(FILES))
def test_predict_files(tmp_path, trained, kind):
    predictor = trained["predictor"]
    path = FILES[kind](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", audio.OutOfRangeWarning)
        if kind in REFUSED:
            error, pattern = REFUSED[kind]
            with pytest.raises(error, match=pattern) as info:
                predictor.predict_files([path])
            assert str(path) in str(info.value)
            return
        probabilities = predictor.predict_files([path])
    assert probabilities.shape == (1, len(LABELS)) and np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)


def test_predict_cli_names_a_silent_file_and_gives_no_emotion(tmp_path, trained, capsys):
    from keras_ser.predict import main

    path = FILES["near_silent"](tmp_path)
    assert main([str(trained["run"]), str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert str(path) in captured.err and "silent" in captured.err and "predicted" not in captured.out


def test_extract_cli_single_file_and_unicode_name(tmp_path):
    path = FILES["unicode_path_spaces"](tmp_path)
    out = tmp_path / "out dir" / "f.csv"
    assert cli.main(["--features", "logmel", "--input", str(path), "--out", str(out), "--no-progress"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and lines[1].startswith(path.name + ",")


# ---------------------------------------------------------------------------- waveforms: predict_waveforms and serving

def _row(seconds=0.5, rms=0.1, seed=0):
    return _noise(seconds=seconds, rms=rms, seed=seed)[None]


WAVEFORMS = {
    # name: (array, predict_waveforms outcome, serving outcome); an outcome is an (error, pattern) or "ok"
    "rank1": (_noise(), (ParameterError, r"shape \[batch>0, samples>0\], got \(8000,\)"),
              "waveform must have rank 2, \\[batch, samples\\].*got shape\\] \\[8000\\]"),
    "rank3_stereo": (np.stack([_noise(), _noise(seed=1)], axis=1)[None],
                     (ParameterError, r"got \(1, 8000, 2\)"),
                     "waveform must have rank 2.*got shape\\] \\[1 8000 2\\]"),
    "empty_batch": (np.zeros((0, SR), np.float32), (ParameterError, "batch>0"), "empty request"),
    "zero_samples": (np.zeros((1, 0), np.float32), (ParameterError, "samples>0"), "waveform too short"),
    "1ms": (_row(seconds=0.001), (DataError, r"16 samples are shorter than the 25 ms minimum \(400 samples"),
            "waveform too short: need at least 400 samples"),
    "nan": (np.where(np.arange(SR // 2) == 7, np.nan, _row()).astype(np.float32),
            (DataError, r"row\(s\) \[0\] have NaN"), "NaN or Inf"),
    "inf": (np.where(np.arange(SR // 2) == 7, np.inf, _row()).astype(np.float32),
            (DataError, r"row\(s\) \[0\] have NaN"), "NaN or Inf"),
    "silent": (np.zeros((1, SR), np.float32), (DataError, r"row\(s\) \[0\] are silent"), "silent waveform"),
    "near_silent": (_row(rms=1e-6), (DataError, r"row\(s\) \[0\] are silent"), "silent waveform"),
    "one_silent_row": (np.concatenate([_row(), _row(rms=1e-9)]), (DataError, r"row\(s\) \[1\] are silent"),
                       "silent waveform.*row is silent:\\] \\[0 1\\]"),
    "30ms": (_row(seconds=0.030), "ok", "ok"),
    "out_of_range": (_row() / np.max(np.abs(_row())) * 4e6, "ok", "ok"),
    # Peaks up to audio.WAVEFORM_PEAK_LIMIT are resampling overshoot and pass unchanged.
    "overshoot": (_row() / np.max(np.abs(_row())) * 1.05, "ok", "ok"),
}


@pytest.mark.parametrize("case", list(WAVEFORMS))
def test_predict_waveforms_and_serving(trained, case, monkeypatch):
    import tensorflow as tf

    waveform, local, served = WAVEFORMS[case]
    predictor, serve = trained["predictor"], trained["serve"]
    seen = []  # what reaches the front end: the waveforms after the peak rule
    frontend = predictor.frontend
    monkeypatch.setattr(predictor, "frontend", lambda x: seen.append(np.array(x)) or frontend(x))
    if local == "ok":
        probabilities = predictor.predict_waveforms(waveform)
        assert np.all(np.isfinite(probabilities)) and probabilities.shape == (len(waveform), len(LABELS))
    else:
        with pytest.raises(local[0], match=local[1]):
            predictor.predict_waveforms(waveform)
    if served != "ok":
        with pytest.raises(tf.errors.InvalidArgumentError, match=served):
            serve(waveform=tf.constant(waveform))
        return
    result = serve(waveform=tf.constant(waveform))["probabilities"].numpy()
    np.testing.assert_allclose(result, probabilities, atol=1e-5)
    if case == "out_of_range":  # peak-normalised, as load does for such files
        clean = waveform / np.max(np.abs(waveform))
        np.testing.assert_array_equal(seen[0], clean)
        np.testing.assert_allclose(result, serve(waveform=tf.constant(clean))["probabilities"].numpy(), atol=1e-6)
    if case == "overshoot":  # not normalised: the front end gets the row as it is
        np.testing.assert_array_equal(seen[0], waveform)


def test_serving_metadata_states_the_silence_floor(trained):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(trained["run"].parent / "serving" / "1"))
    meta = loaded.signatures["metadata"]()
    assert float(meta["silence_floor_dbfs"]) == audio.SILENCE_FLOOR_DBFS
    assert int(meta["min_samples"]) == math.ceil(audio.MIN_DURATION * SR)


# ---------------------------------------------------------------------------- manifests

def _manifest_text(emodb_dir, kind):
    wav = sorted((emodb_dir / "wav").glob("03*.wav"))
    if kind == "missing_columns":
        return f"path,label\n{wav[0]},anger\n"
    if kind == "duplicate_paths":
        return f"id,path,label,speaker\na,{wav[0]},anger,03\nb,{wav[0]},neutral,03\n"
    if kind == "no_rows":
        return "path,label,speaker\n"
    if kind == "not_text":
        return None
    raise AssertionError(kind)


MANIFEST_ERRORS = {
    "missing_columns": r"missing column\(s\) \['speaker'\]",
    "duplicate_paths": r"line 3: audio file .*03a01Fa\.wav is already listed on line 2",
    "no_rows": "no rows",
    "not_text": "is not UTF-8 text",
}


@pytest.mark.parametrize("kind", list(MANIFEST_ERRORS))
def test_manifest_errors_name_the_manifest(tmp_path, emodb_dir, kind, capsys):
    from keras_ser.data import load_corpus
    from keras_ser.train import main

    path = tmp_path / f"{kind} list.csv"
    text = _manifest_text(emodb_dir, kind)
    if text is None:
        shutil.copy(sorted((emodb_dir / "wav").glob("*.wav"))[0], path)
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=MANIFEST_ERRORS[kind]) as info:
        load_corpus(f"manifest:{path}")
    assert str(path) in str(info.value)
    assert main(TRAIN_ARGS + ["--corpus", f"manifest:{path}", "--out", str(tmp_path / "run")]) == 2
    assert str(path) in capsys.readouterr().err and not (tmp_path / "run" / "results.json").exists()


def test_manifest_with_a_byte_order_mark_trains(trained):
    from keras_ser.data import load_corpus, label_names

    assert trained["manifest"].read_bytes().startswith(b"\xef\xbb\xbf")
    utterances = load_corpus(f"manifest:{trained['manifest']}")
    assert len(utterances) == 12 and {u.speaker for u in utterances} == {"03", "08", "09"}
    assert label_names(f"manifest:{trained['manifest']}") == LABELS
    assert trained["code"] == 0
    results = json.loads((trained["run"] / "results.json").read_text())
    assert results["folds_done"] == ["speaker_03"]


def test_manifest_label_of_one_speaker_is_refused_before_training(tmp_path, emodb_dir, capsys):
    # A manifest defines its own classes; a class that one speaker alone has cannot be learnt in that
    # speaker's fold, and the run says so before training anything.
    from keras_ser.train import main

    fear = next(p for p in sorted((emodb_dir / "wav").glob("03*.wav")) if p.name[5] == "A")
    path = _tiny_manifest(tmp_path / "labels.csv", emodb_dir, extra=[f"{fear},fear,03"])
    assert main(TRAIN_ARGS + ["--corpus", f"manifest:{path}", "--out", str(tmp_path / "run"),
                              "--folds", "speaker_08"]) == 2
    assert "class 'fear' has no training utterance" in capsys.readouterr().err
    assert not (tmp_path / "run" / "folds" / "speaker_08" / "metrics.json").exists()


def test_manifest_speaker_with_one_utterance_is_a_fold(tmp_path, emodb_dir):
    from keras_ser.data import load_corpus
    from keras_ser.train import main

    single = sorted((emodb_dir / "wav").glob("10*.wav"))[0]
    path = _tiny_manifest(tmp_path / "one.csv", emodb_dir, extra=[f"{single},anger,10"])
    assert sum(u.speaker == "10" for u in load_corpus(f"manifest:{path}")) == 1
    assert main(TRAIN_ARGS + ["--corpus", f"manifest:{path}", "--out", str(tmp_path / "run"),
                              "--folds", "speaker_10"]) == 0
    predictions = (tmp_path / "run" / "folds" / "speaker_10" / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 2 and predictions[1].split(",")[0] == str(single)
