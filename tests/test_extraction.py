import csv
import json

import librosa
import numpy as np
import pytest

from keras_ser import extract as cli
from keras_ser import extraction
from keras_ser.errors import DataError, ParameterError
from keras_ser.extraction.opensmile import OpenSmileExtractor, import_opensmile

# Plain `import opensmile` after TensorFlow (loaded by earlier test modules) crashes.
opensmile = import_opensmile()

FILES = ("03a01Fa.wav", "08a02Wc.wav", "16b10Td.wav")


@pytest.fixture(scope="module")
def egemaps_smile():
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


@pytest.mark.parametrize("name,feature_set,dim", [
    ("egemaps", opensmile.FeatureSet.eGeMAPSv02, 88),
    ("compare", opensmile.FeatureSet.ComParE_2016, 6373),
])
def test_opensmile_values_equal_opensmile_process_file(emodb_dir, name, feature_set, dim):
    smile = opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)
    native = OpenSmileExtractor(name, sample_rate=None)
    files = FILES if name == "egemaps" else FILES[:2]
    table = extraction.extract(native, [emodb_dir / "wav" / f for f in files], progress=False)
    expected = np.stack([smile.process_file(str(emodb_dir / "wav" / f)).to_numpy()[0] for f in files])
    assert table.features.shape == (len(files), dim)
    np.testing.assert_allclose(table.features, expected.astype(np.float32), rtol=1e-6)
    assert table.feature_names == list(smile.feature_names)


def test_opensmile_16k_equals_process_signal_of_resampled_audio(emodb_dir, egemaps_smile):
    path = emodb_dir / "wav" / FILES[1]
    ours = OpenSmileExtractor("egemaps").extract_file(path)
    signal, _ = librosa.load(path, sr=16000)
    expected = egemaps_smile.process_signal(signal, 16000).to_numpy()[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_corpus_input_gives_labels_from_file_names(emodb_dir):
    items, label_names = extraction.resolve_inputs(emodb_dir)
    assert len(items) == 535 and len(label_names) == 7
    by_name = {item.name: item.label for item in items}
    # README: the 6th character is the emotion, F = happiness, W = anger, T = sadness.
    assert by_name["03a01Fa"] == "happiness" and by_name["08a02Wc"] == "anger" and by_name["16b10Td"] == "sadness"
    assert extraction.resolve_inputs("emodb")[0][0].name == items[0].name


def test_cli_plain_directory_csv_layout_and_values(emodb_dir, tmp_path, egemaps_smile, capsys):
    wavs = tmp_path / "wavs"
    (wavs / "sub").mkdir(parents=True)
    for f in FILES[:2]:
        (wavs / "sub" / f).symlink_to(emodb_dir / "wav" / f)
    out = tmp_path / "eg.csv"
    code = cli.main(["--features", "egemaps", "--input", str(wavs), "--out", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["files"] == 2 and summary["dimension"] == 88
    with open(out) as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "name" and rows[0][-1] == "label" and rows[0][1:-1] == list(egemaps_smile.feature_names)
    assert [r[0] for r in rows[1:]] == [f"sub/{f}" for f in FILES[:2]]
    assert all(r[-1] == "?" for r in rows[1:])  # a plain directory has no labels
    signal, _ = librosa.load(emodb_dir / "wav" / FILES[0], sr=16000)
    expected = egemaps_smile.process_signal(signal, 16000).to_numpy()[0]
    np.testing.assert_allclose(np.array(rows[1][1:-1], float), expected, rtol=1e-4, atol=1e-5)


def test_windows_give_timestamped_rows_equal_to_opensmile_on_the_slice(emodb_dir, tmp_path, egemaps_smile):
    path = emodb_dir / "wav" / FILES[0]
    table = extraction.extract(OpenSmileExtractor("egemaps"), [path], window=1.0, hop=0.5, progress=False)
    np.testing.assert_allclose(table.timestamps, [0.0, 0.5, 1.0])
    signal, _ = librosa.load(path, sr=16000)
    expected = egemaps_smile.process_signal(signal[8000:24000], 16000).to_numpy()[0]
    np.testing.assert_allclose(table.features[1], expected, rtol=1e-4, atol=1e-5)
    table.write(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as saved:
        np.testing.assert_array_equal(saved["features"], table.features)
        np.testing.assert_array_equal(saved["timestamps"], table.timestamps)
        assert saved["names"].tolist() == [path.name] * 3
    table.write(tmp_path / "w.arff")
    text = (tmp_path / "w.arff").read_text().splitlines()
    assert "@attribute timestamp numeric" in text and text[text.index("@data") + 2].startswith("'03a01Fa.wav',0.500,")
    assert sum(line.startswith("@attribute") for line in text) == 88 + 3


def test_segment_starts():
    assert extraction.segment_starts(16000 * 2, 16000, 0.75, 0.5).tolist() == [0, 8000, 16000]
    assert extraction.segment_starts(4000, 16000, 1.0, 0.5).tolist() == [0]
    assert extraction.segment_starts(4000, 16000, None, None).tolist() == [0]
    with pytest.raises(ParameterError):
        extraction.segment_starts(4000, 16000, 1.0, 0.0)


def test_logmel_pooled_and_framewise_agree(emodb_dir):
    from keras_ser.frontend import log_mel

    path = emodb_dir / "wav" / FILES[2]
    pooled = extraction.extract(extraction.get_extractor("logmel"), [path], progress=False)
    frames = extraction.extract(extraction.get_extractor("logmel", pooling="none"), [path], progress=False)
    assert pooled.features.shape == (1, 80) and frames.features.shape[1] == 40
    np.testing.assert_allclose(frames.timestamps[:3], [0.0, 0.01, 0.02])
    signal, _ = librosa.load(path, sr=16000)
    reference = np.asarray(log_mel(signal[None].astype(np.float32), sample_rate=16000, n_mels=40))[0]
    np.testing.assert_allclose(frames.features, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pooled.features[0], np.concatenate([reference.mean(0), reference.std(0)]),
                               rtol=1e-4, atol=1e-4)


def test_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"this is not audio")
    with pytest.raises(DataError, match="broken.wav"):
        extraction.extract(OpenSmileExtractor("egemaps"), [bad / "broken.wav"], progress=False)
    code = cli.main(["--features", "egemaps", "--input", str(bad), "--out", str(tmp_path / "x.csv"),
                         "--no-progress"])
    assert code == 2 and "broken.wav" in capsys.readouterr().err
    code = cli.main(["--features", "mfcc", "--input", str(bad), "--out", str(tmp_path / "x.csv")])
    assert code == 2 and "unknown feature name 'mfcc'" in capsys.readouterr().err
    with pytest.raises(DataError, match="not a corpus name"):
        extraction.resolve_inputs(tmp_path / "does_not_exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        extraction.resolve_inputs(tmp_path / "empty")
    with pytest.raises(ParameterError, match="must end in"):
        extraction.FeatureTable(["a"], None, np.zeros((1, 1)), ["f"], [None]).write(tmp_path / "x.txt")
    with pytest.raises(ParameterError, match="hop needs"):
        extraction.extract(OpenSmileExtractor("egemaps"), [bad / "broken.wav"], hop=0.5, progress=False)


def test_opensmile_works_after_tensorflow_is_loaded(emodb_dir):
    import subprocess
    import sys

    # libSMILEapi segfaulted when TensorFlow was imported first (symbol clash); run in a
    # fresh process so that the import order is exactly that.
    code = ("import tensorflow as tf; tf.image.resize(tf.zeros([1, 4, 4, 3]), [2, 2]);"
            "from keras_ser.extraction.opensmile import OpenSmileExtractor;"
            f"print(OpenSmileExtractor('egemaps').extract_file({str(emodb_dir / 'wav' / FILES[0])!r}).shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(88,)")


def _wav(path, seconds, sr=16000, rms=0.1, seed=0):
    import soundfile

    signal = rms * np.random.default_rng(seed).standard_normal(int(round(sr * seconds)))
    soundfile.write(path, signal.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.mark.parametrize("name", ["egemaps", "compare"])
def test_opensmile_refuses_input_shorter_than_its_minimum(tmp_path, name):
    # A 30 ms file used to give a row of NaN and exit 0.
    short = _wav(tmp_path / "thirty ms.wav", 0.030)
    extractor = extraction.get_extractor(name)
    assert extraction.minimum_duration(extractor) == pytest.approx(0.061)
    with pytest.raises(DataError, match=r"too short for .*: 30\.0 ms < 61\.0 ms") as info:
        extraction.extract(extractor, [short], progress=False)
    assert str(short) in str(info.value)
    with pytest.raises(DataError, match="61.0 ms"):
        extractor.extract_waveform(np.full(480, 0.1, np.float32))
    out = tmp_path / "x.csv"
    assert cli.main(["--features", name, "--input", str(short), "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()
    enough = _wav(tmp_path / "enough.wav", 0.061)
    assert np.all(np.isfinite(extraction.extract(extractor, [enough], progress=False).features))


def test_window_shorter_than_the_extractor_minimum_is_a_parameter_error(tmp_path):
    path = _wav(tmp_path / "a.wav", 0.5)
    with pytest.raises(ParameterError, match="--window 0.05 s is shorter than"):
        extraction.extract(extraction.get_extractor("egemaps"), [path], window=0.05, progress=False)


class _NaNForSecondFile:
    """Finite features except for waveforms of one length (a stand-in for a broken extractor)."""

    framewise = False
    sample_rate = 16000
    description = "nan-test"
    feature_names = ["a", "b"]

    def __init__(self, bad_length):
        self.bad_length = bad_length

    def extract_batch(self, waveforms):
        return np.array([[np.nan, 1.0] if len(w) == self.bad_length else [0.0, 1.0] for w in waveforms])


def test_no_extractor_writes_a_nan_row(tmp_path):
    good = _wav(tmp_path / "good.wav", 0.5)
    bad = _wav(tmp_path / "bad.wav", 0.25)
    with pytest.raises(DataError, match="not finite") as info:
        extraction.extract(_NaNForSecondFile(4000), [good, bad], progress=False)
    assert str(bad) in str(info.value) and str(good) not in str(info.value)
    table = extraction.extract(_NaNForSecondFile(1), [good, bad], progress=False)
    assert table.features.shape == (2, 2)


def test_single_audio_file_input_and_files_that_are_neither(tmp_path, capsys):
    # `--input a.wav` used to be read as a manifest and die with UnicodeDecodeError (defect 4).
    path = _wav(tmp_path / "a.wav", 0.5)
    items, label_names = extraction.resolve_inputs(path)
    assert [(i.name, i.path, i.label) for i in items] == [("a.wav", path, None)] and label_names is None
    out = tmp_path / "a.csv"
    assert cli.main(["--features", "logmel", "--input", str(path), "--out", str(out), "--no-progress"]) == 0
    rows = list(csv.reader(open(out)))
    assert len(rows) == 2 and rows[1][0] == "a.wav" and rows[1][-1] == "?"
    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="neither an audio file .* nor a CSV manifest") as info:
        extraction.resolve_inputs(blob)
    assert str(blob) in str(info.value)
    capsys.readouterr()
    assert cli.main(["--features", "logmel", "--input", str(blob), "--out", str(out), "--no-progress"]) == 2
    assert "weights.bin" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".arff", ".npz"])
def test_output_is_written_to_a_temporary_file_and_renamed(tmp_path, monkeypatch, suffix):
    # A killed extract left a truncated file that looked complete (defect 9).
    out = tmp_path / f"features{suffix}"
    out.write_text("previous complete output\n")
    table = extraction.FeatureTable(["a", "b"], None, np.ones((2, 3), np.float32), ["f1", "f2", "f3"], ["x", "y"])
    seen = []
    original = np.savez

    def interrupted(*args, **kwargs):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise KeyboardInterrupt

    if suffix == ".npz":
        monkeypatch.setattr(np, "savez", interrupted)
    else:
        monkeypatch.setattr(extraction.FeatureTable, "_cells", lambda *a: interrupted())
    with pytest.raises(KeyboardInterrupt):
        table.write(out)
    assert out.read_text() == "previous complete output\n"  # the old output is untouched ...
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # ... and no partial file is left
    assert any(name.startswith(f".{out.name}.") and ".tmp" in name for name in seen[0])
    monkeypatch.setattr(np, "savez", original)
    monkeypatch.undo()
    table.write(out)
    if suffix == ".npz":
        with np.load(out) as saved:
            np.testing.assert_array_equal(saved["features"], table.features)
    else:
        assert out.read_text().count("\n") >= 3
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


class _RefusesOneLength(_NaNForSecondFile):
    """Raises ``DataError`` (without a file name) for a batch holding a waveform of one length."""

    def extract_batch(self, waveforms):
        if any(len(w) == self.bad_length for w in waveforms):
            raise DataError("this waveform cannot be used")
        return np.zeros((len(waveforms), 2))


def test_an_extractor_error_inside_a_batch_names_its_file(tmp_path):
    files = [_wav(tmp_path / f"f{i}.wav", 0.5) for i in range(3)] + [_wav(tmp_path / "odd.wav", 0.25)]
    with pytest.raises(DataError, match="cannot be used") as info:
        extraction.extract(_RefusesOneLength(4000), files, batch_size=8, progress=False)
    assert str(files[-1]) in str(info.value) and not any(str(f) in str(info.value) for f in files[:3])


def test_logmel_refuses_a_waveform_shorter_than_one_window():
    extractor = extraction.get_extractor("logmel")
    assert extraction.minimum_duration(extractor) == 0.025
    with pytest.raises(DataError, match=r"16 samples is shorter than one 25\.0 ms analysis window \(400 samples"):
        extractor.extract_batch([np.full(16, 0.1, np.float32)])
    assert extractor.extract_batch([np.full(400, 0.1, np.float32)]).shape == (1, 80)
