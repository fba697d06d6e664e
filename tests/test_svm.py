import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from keras_ser import extraction
from keras_ser.extraction import cache
from keras_ser import svm
from keras_ser.data import Utterance
from keras_ser.data.splits import Fold
from keras_ser.errors import DataError, ParameterError


def _blobs(seed, n_per_class=12, classes=3, dim=5, shift=2.5):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(n_per_class, dim)) + shift * np.eye(dim)[c] for c in range(classes)])
    y = np.repeat(np.arange(classes), n_per_class)
    return x, y


def test_options_defaults_and_validation():
    options = svm.svm_options({"svm": {"classifier": "linear_svc", "pca": 150}, "experiment": {}})
    assert options["pca"] == 150 and options["grid"] == list(svm.DEFAULT_GRIDS["linear_svc"])
    assert svm.svm_options({})["classifier"] == "sgd"
    for bad in ({"classifier": "rbf"}, {"standardize": "minmax"}, {"pca": 0}, {"pca": True},
                {"grid": [0.1, -1]}, {"refit": "test"}, {"gamma": 1}):
        with pytest.raises(ParameterError):
            svm.svm_options({"svm": bad})


def test_sgd_is_a_hinge_linear_svm_and_linear_svc_uses_c():
    sgd = svm.make_classifier("sgd", 1e-3, seed=3)
    assert isinstance(sgd, SGDClassifier) and sgd.loss == "hinge" and sgd.alpha == 1e-3
    assert sgd.class_weight == "balanced"
    lsvc = svm.make_classifier("linear_svc", 0.5)
    assert isinstance(lsvc, LinearSVC) and lsvc.C == 0.5


def test_pipeline_pca_is_fitted_on_training_data_only():
    x, y = _blobs(0, dim=8)
    options = svm.svm_options({"pca": 3, "classifier": "linear_svc"})
    model = svm.make_pipeline(options, 1.0).fit(x, y)
    reference = PCA(n_components=3, random_state=0).fit(StandardScaler().fit_transform(x))
    np.testing.assert_allclose(np.abs(model.named_steps["pca"].components_), np.abs(reference.components_),
                               atol=1e-8)


def test_standardize_per_speaker_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(loc=5.0, scale=3.0, size=(10, 4))
    x[:, 3] = 7.0  # a constant feature must not divide by zero
    speakers = ["a"] * 4 + ["b"] * 6
    out = svm.standardize_per_speaker(x, speakers)
    for rows in (slice(0, 4), slice(4, 10)):
        block = x[rows, :3]
        np.testing.assert_allclose(out[rows, :3], (block - block.mean(0)) / block.std(0))
    assert np.all(out[:, 3] == 0)
    with pytest.raises(ParameterError):
        svm.standardize_per_speaker(x, speakers[:3])


def test_value_is_chosen_on_validation_only_and_matches_manual_selection():
    x_train, y_train = _blobs(0)
    x_val, y_val = _blobs(1, n_per_class=4, shift=1.0)
    x_test, y_test = _blobs(2, n_per_class=4)
    options = svm.svm_options({"classifier": "linear_svc", "grid": [1e-4, 1e-2, 1.0], "refit": "train"})
    out = svm.fit_select_predict((x_train, y_train), (x_val, y_val), (x_test, None), options)
    manual = {}
    for c in options["grid"]:
        model = LinearSVC(C=c, class_weight="balanced", max_iter=2000, random_state=0)
        model.fit(StandardScaler().fit(x_train).transform(x_train), y_train)
        pred = model.predict(StandardScaler().fit(x_train).transform(x_val))
        manual[c] = np.mean([np.mean(pred[y_val == k] == k) for k in np.unique(y_val)])
    assert out["validation_ua"] == pytest.approx(manual)
    best = max(manual.values())
    assert out["value"] == min(c for c, ua in manual.items() if ua == best)  # ties: strongest regularisation
    # The test labels are never an input, so the result cannot depend on them.
    assert np.mean(out["y_pred"] == y_test) > 0.8


def _utterances():
    x, y = _blobs(4, n_per_class=8, classes=2, dim=3, shift=3.0)
    names = ["neg", "pos"]
    utts = [Utterance(id=f"u{i:02d}", path=f"/nonexistent/u{i}.wav", label=names[label], speaker=f"s{i % 4}")
            for i, label in enumerate(y)]
    return utts, dict(zip([u.id for u in utts], x.astype(np.float32))), names


class _TableExtractor:
    """Returns fixed features per utterance id; counts calls (cache check)."""

    framewise = False
    sample_rate = 16000
    description = "table"
    feature_names = ["a", "b", "c"]

    def __init__(self, table):
        self.table = table
        self.calls = 0


def test_run_fold_contract_caching_and_test_label_independence(monkeypatch, tmp_path):
    utts, table, names = _utterances()
    extractor = _TableExtractor(table)
    monkeypatch.setattr(extraction, "get_extractor", lambda name, **kw: extractor)

    def fake_features(ex, items, **kw):
        ex.calls += 1
        return np.stack([ex.table[u.id] for u in items])

    monkeypatch.setattr(extraction, "extract_utterance_features", fake_features)
    config = {"experiment": {"seed": 1, "corpus": "toy"}, "features": {"name": "toy"},
              "svm": {"classifier": "sgd", "grid": [1e-3, 1e-1]}, "train": {"verbose": 0}}

    def fold_for(test_speaker, val_speaker, relabel=False):
        test = [u for u in utts if u.speaker == test_speaker]
        if relabel:  # flip every test label: predictions must not change
            test = [Utterance(id=u.id, path=u.path, label=names[1 - names.index(u.label)], speaker=u.speaker)
                    for u in test]
        return Fold(f"speaker_{test_speaker}", [u for u in utts if u.speaker not in (test_speaker, val_speaker)],
                    [u for u in utts if u.speaker == val_speaker], test)

    run_dir = tmp_path / "run"
    out = svm.run_fold(config, fold_for("s0", "s1"), names, run_dir / "folds" / "speaker_s0")
    assert set(out) >= {"ids", "y_true", "y_pred", "scores", "params"}
    assert out["ids"] == [u.id for u in utts if u.speaker == "s0"]
    assert np.array(out["scores"]).shape == (len(out["ids"]), 2)
    assert out["params"]["value"] in (1e-3, 1e-1)
    flipped = svm.run_fold(config, fold_for("s0", "s1", relabel=True), names, run_dir / "folds" / "speaker_s0")
    assert flipped["y_pred"] == out["y_pred"] and flipped["y_true"] != out["y_true"]
    svm.run_fold(config, fold_for("s2", "s3"), names, run_dir / "folds" / "speaker_s2")
    assert extractor.calls == 1  # every later fold reads the per-run cache
    assert list((run_dir / "feature_cache").glob("*.npz"))


def test_run_fold_errors(monkeypatch, tmp_path):
    utts, _, names = _utterances()
    fold = Fold("f", utts[:8], (), utts[8:])
    with pytest.raises(DataError, match="validation"):
        svm.run_fold({"features": {"name": "egemaps"}}, fold, names, tmp_path)
    fold = Fold("f", utts[:8], utts[8:12], utts[12:])
    with pytest.raises(ParameterError, match="features"):
        svm.run_fold({"features": {}}, fold, names, tmp_path)


def test_feature_cache_is_keyed_by_file_content_not_path(tmp_path):
    # After replacing an audio file the stale features were used until the cache was deleted (defect 10).
    import json
    import os

    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    utts = [Utterance(id=f"u{i}", path=audio_dir / f"u{i}.wav", label="neg", speaker="s0") for i in range(3)]
    for i, u in enumerate(utts):
        u.path.write_bytes(b"x" * (10 + i))
    calls = []

    def extract_fn(missing):
        calls.append([u.id for u in missing])
        return np.array([[float(u.path.stat().st_size)] for u in missing])

    spec = {"features": "toy", "options": {}, "corpus": "c"}
    features = cache.FeatureCache(tmp_path / "cache", spec)
    np.testing.assert_array_equal(features.get(utts, extract_fn).ravel(), [10, 11, 12])
    assert cache.FeatureCache(tmp_path / "cache", spec).get(utts, extract_fn).ravel().tolist() == [10, 11, 12]
    assert calls == [["u0", "u1", "u2"]]
    utts[1].path.write_bytes(b"y" * 20)  # replaced: another size
    assert cache.FeatureCache(tmp_path / "cache", spec).get(utts, extract_fn).ravel().tolist() == [10, 20, 12]
    stat = utts[2].path.stat()
    utts[2].path.write_bytes(b"z" * 12)  # same size, newer modification time
    os.utime(utts[2].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cache.FeatureCache(tmp_path / "cache", spec).get(utts, extract_fn)
    assert calls == [["u0", "u1", "u2"], ["u1"], ["u2"]]
    # The key is visible: a JSON manifest beside the .npz lists what each row was computed from.
    manifest = json.loads(features.manifest_path.read_text())
    assert manifest["key"] == "size + modification time (ns) + absolute path of the audio file"
    entry = next(e for e in manifest["entries"] if e["id"] == "u1" and e["size"] == 20)
    assert entry["path"] == str(utts[1].path.resolve()) and entry["mtime_ns"] == utts[1].path.stat().st_mtime_ns
    assert features.path.name.startswith("toy-") and features.manifest_path.name == features.path.stem + ".json"
