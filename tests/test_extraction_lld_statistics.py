"""zhao2019's eGeMAPS / ComParE pipeline: openSMILE LLDs -> PCA fitted in the fold -> statistics -> SVM."""

import csv
import json

import numpy as np
import pytest
import soundfile
from sklearn.decomposition import PCA

from keras_ser import svm
from keras_ser.extraction import cache, lld_statistics
from keras_ser.extraction import opensmile as opensmile_features
from keras_ser.data import Utterance
from keras_ser.data.splits import Fold
from keras_ser.errors import DataError, ParameterError
from keras_ser.extraction.opensmile import OpenSmileLLDExtractor, import_opensmile

# Plain `import opensmile` after TensorFlow crashes (keras_ser.extraction.opensmile._preload_smileapi).
opensmile = import_opensmile()


def _reference_statistics(matrix):
    """max, min, range, mean, std of every column, one column at a time in plain Python."""
    columns = [[float(v) for v in matrix[:, j]] for j in range(matrix.shape[1])]
    blocks = {"max": [], "min": [], "range": [], "mean": [], "std": []}
    for values in columns:
        mean = sum(values) / len(values)
        blocks["max"].append(max(values))
        blocks["min"].append(min(values))
        blocks["range"].append(max(values) - min(values))
        blocks["mean"].append(mean)
        blocks["std"].append((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5)
    return np.array([v for name in lld_statistics.STATISTICS for v in blocks[name]])


def test_lld_statistics_match_a_plain_reference():
    rng = np.random.default_rng(0)
    matrices = [np.array([[1.0, -2.0, 5.0], [4.0, 0.0, 5.0], [-3.0, 7.0, 5.0]]), rng.normal(size=(11, 3))]
    out = lld_statistics.lld_statistics(matrices)
    assert out.shape == (2, 15)
    for row, matrix in zip(out, matrices):
        np.testing.assert_allclose(row, _reference_statistics(matrix), rtol=1e-12, atol=1e-12)
    with pytest.raises(ParameterError, match="frame"):
        lld_statistics.lld_statistics([np.zeros((0, 3))])


class _FakeLLD:
    """Stands in for OpenSmileLLDExtractor: fixed matrices per file path."""

    matrices = {}
    calls = 0

    def __init__(self, feature_set, sample_rate=16000):
        self.sample_rate = sample_rate
        self.description = f"fake {feature_set} LLDs"

    def extract_file(self, path):
        type(self).calls += 1
        return self.matrices[str(path)]


def _leak_fold(tmp_path):
    """Training frames vary along LLD 0; the test speaker's vary far more along LLD 1."""
    rng = np.random.default_rng(1)
    utterances, matrices = [], {}
    for speaker, scale in (("a", (5.0, 0.1, 0.1)), ("b", (5.0, 0.1, 0.1)), ("v", (5.0, 0.1, 0.1)),
                           ("t", (0.1, 50.0, 0.1))):
        for i in range(3):
            path = tmp_path / f"{speaker}{i}.wav"
            path.write_bytes(b"x" * (10 + i))  # the cache keys rows by file size and time
            utterances.append(Utterance(id=f"{speaker}{i}", path=path, label="neg" if i % 2 else "pos",
                                        speaker=speaker))
            matrices[str(path)] = (rng.normal(size=(8 + i, 3)) * np.array(scale)).astype(np.float32)  # as cached
    by_speaker = {s: [u for u in utterances if u.speaker == s] for s in "abvt"}
    return Fold("speaker_t", by_speaker["a"] + by_speaker["b"], by_speaker["v"], by_speaker["t"]), matrices


def test_pca_is_fitted_on_the_training_speakers_frames_only(tmp_path, monkeypatch):
    fold, matrices = _leak_fold(tmp_path)
    monkeypatch.setattr(opensmile_features, "OpenSmileLLDExtractor", _FakeLLD)
    monkeypatch.setattr(_FakeLLD, "matrices", matrices)
    out, description, components = lld_statistics.lld_feature_matrix("compare_lld_stats", {"pca": 1}, fold, tmp_path / "c",
                                                           progress=False)
    everything = [*fold.train, *fold.validation, *fold.test]
    frames = [matrices[str(u.path)].astype(np.float64) for u in everything]
    train_frames = np.concatenate([matrices[str(u.path)] for u in fold.train]).astype(np.float64)
    reference = PCA(n_components=1, svd_solver="full").fit(train_frames)
    expected = np.stack([_reference_statistics(reference.transform(m)) for m in frames])
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)
    assert components == 1 and "PCA 1" in description and "training speakers" in description
    # With the test speaker's frames in the fit, the component turns to LLD 1: another matrix.
    leaked = PCA(n_components=1, svd_solver="full").fit(np.concatenate(frames))
    assert abs(leaked.components_[0, 1]) > 0.9 > abs(reference.components_[0, 1])
    # Variance fraction and no PCA; a count above the LLDs per frame is refused, naming the setting.
    assert lld_statistics.lld_feature_matrix("egemaps_lld_stats", {"pca": 0.99}, fold, tmp_path / "c", progress=False)[2] >= 1
    plain, _, none = lld_statistics.lld_feature_matrix("egemaps_lld_stats", {}, fold, tmp_path / "c", progress=False)
    np.testing.assert_allclose(plain, np.stack([_reference_statistics(m) for m in frames]), rtol=1e-6)
    assert none is None
    with pytest.raises(ParameterError, match=r"features\.pca=150 .* 3 LLDs"):
        lld_statistics.lld_feature_matrix("compare_lld_stats", {"pca": 150}, fold, tmp_path / "c", progress=False)
    with pytest.raises(ParameterError, match="variance fraction"):
        lld_statistics.lld_feature_matrix("compare_lld_stats", {"pca": 1.5}, fold, tmp_path / "c", progress=False)


def test_frame_cache_round_trip_of_matrices_of_different_lengths(tmp_path):
    fold, matrices = _leak_fold(tmp_path)
    utterances = [*fold.train, *fold.test]
    calls = []

    def extract_fn(missing):
        calls.append(len(missing))
        return [matrices[str(u.path)] for u in missing]

    spec = {"features": "compare_lld_stats", "corpus": "toy"}
    first = cache.FrameCache(tmp_path / "cache", spec).get(utterances, extract_fn)
    cache.FeatureCache._memory.clear()  # read the .npz back from disk
    again = cache.FrameCache(tmp_path / "cache", spec).get(utterances, extract_fn)
    assert calls == [len(utterances)]
    for u, a, b in zip(utterances, first, again):
        np.testing.assert_array_equal(b, matrices[str(u.path)])
        assert a.shape == b.shape
    with pytest.raises(DataError, match="shapes"):
        cache.FrameCache(tmp_path / "other", spec).get(utterances[:2], lambda m: [np.zeros((3, 2)), np.zeros((3, 4))])


def test_lld_extractor_equals_opensmile_and_refuses_short_or_nan_audio(tmp_path, emodb_wavs, monkeypatch):
    extractor = OpenSmileLLDExtractor("egemaps")
    from keras_ser.audio import load

    waveform = load(emodb_wavs[3], sr=16000)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    expected = smile.process_signal(waveform, 16000).to_numpy(np.float32)
    np.testing.assert_array_equal(extractor.extract_file(emodb_wavs[3]), expected)
    assert expected.shape[1] == opensmile_features.LLD_DIMENSIONS["egemaps"] == extractor.dimension
    times, frames = extractor.extract_frames(waveform)
    assert len(times) == len(frames) and times[1] == pytest.approx(0.01)

    short = tmp_path / "short.wav"
    soundfile.write(short, 0.1 * np.random.default_rng(0).standard_normal(800), 16000)  # 50 ms
    with pytest.raises(DataError, match="short.wav"):
        extractor.extract_file(short)
    with pytest.raises(DataError, match="shorter than the 61.0 ms"):
        extractor.extract_waveform(np.ones(800, np.float32) * 0.1)

    class NaNSmile:
        def process_signal(self, signal, rate):
            frame = smile.process_signal(signal, rate)
            return frame * np.nan

    monkeypatch.setattr(extractor, "_smile", NaNSmile())
    with pytest.raises(DataError, match=r"audio file .*03.*non-finite"):
        extractor.extract_file(emodb_wavs[3])
    with pytest.raises(ParameterError, match="feature set"):
        OpenSmileLLDExtractor("gemaps")


@pytest.fixture(scope="module")
def fake_corpus(tmp_path_factory):
    """Four speakers, two classes (low and high tones in noise), three utterances each."""
    folder = tmp_path_factory.mktemp("fake_corpus")
    rng = np.random.default_rng(3)
    t = np.arange(8000) / 16000
    rows = []
    for speaker in ("s1", "s2", "s3", "s4"):
        for label, pitch in (("low", 150.0), ("high", 400.0)):
            for i in range(3):
                wave = 0.3 * np.sin(2 * np.pi * pitch * (1 + 0.02 * i) * t) + 0.02 * rng.standard_normal(t.size)
                path = folder / f"{speaker}_{label}_{i}.wav"
                soundfile.write(path, wave.astype(np.float32), 16000)
                rows.append({"path": str(path), "label": label, "speaker": speaker})
    manifest = folder / "list.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.mark.parametrize("recipe", ["zhao2019_features_compare", "zhao2019_features_egemaps"])
def test_paper_recipe_trains_end_to_end_on_a_fake_corpus(fake_corpus, tmp_path, recipe):
    from keras_ser.train import main

    out = tmp_path / "run"
    # 4 speakers: the PCA of the training speakers' frames, at most 65 components, fits on 2 of them.
    status = main(["--recipe", recipe, "--corpus", f"manifest:{fake_corpus}", "--out", str(out),
                   "--folds", "s1", "--no-progress", "-q"])
    assert status == 0
    metrics = json.loads((out / "folds" / "speaker_s1" / "metrics.json").read_text())
    params = metrics["params"]
    assert params["standardize"] == "global" and params["pca"] is None  # no per-speaker standardisation
    if recipe == "zhao2019_features_compare":
        assert params["lld_pca_components"] == 65 and params["dimension"] == 5 * 65
    else:
        assert params["lld_pca_components"] is None and params["dimension"] == 5 * 25
    assert "low-level descriptors" in params["features"]
    with open(out / "folds" / "speaker_s1" / "predictions.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 6


def test_paper_recipe_names_a_too_short_file(tmp_path, capsys):
    from keras_ser.train import main

    rows, utterances = [], []
    rng = np.random.default_rng(4)
    for speaker in ("s1", "s2", "s3"):
        for label in ("low", "high"):
            path = tmp_path / f"{speaker}_{label}.wav"
            # 70 ms passes audio.load's 25 ms floor; one file of 40 ms is shorter than openSMILE's 61 ms.
            length = 640 if (speaker, label) == ("s2", "high") else 1120
            soundfile.write(path, (0.1 * rng.standard_normal(length)).astype(np.float32), 16000)
            rows.append(f"{path},{label},{speaker}")
            utterances.append(Utterance(id=path.stem, path=path, label=label, speaker=speaker))
    fold = Fold("speaker_s1", utterances[4:], utterances[2:4], utterances[:2])
    with pytest.raises(DataError, match=r"audio file .*s2_high\.wav.*61\.0 ms"):
        svm.run_fold({"features": {"name": "egemaps_lld_stats"}, "svm": {"standardize": "none"},
                      "progress": False}, fold, ["low", "high"], tmp_path / "work")
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    assert main(["--recipe", "zhao2019_features_egemaps", "--corpus", f"manifest:{manifest}",
                 "--out", str(tmp_path / "run"), "--folds", "s1", "--no-progress", "-q"]) != 0
    assert "s2_high.wav" in capsys.readouterr().err
