"""keras_ser.predict and keras_ser.export on tiny MODEL DIRs built here (no training).

References are computed independently of predict.py: waveforms loaded with
``librosa.load`` and the chain FrontEnd -> model -> mean over segments written out
by hand in NumPy. The SavedModel is checked with ``saved_model_cli`` and loaded in a
fresh Python process that imports only TensorFlow and NumPy.
"""

import json
import shutil
import subprocess
import sys
import textwrap

import librosa
import numpy as np
import pytest

from keras_ser.errors import DataError, ParameterError

from model_helper import EMODB_LABELS as LABELS
from model_helper import write_model_dir

SEGMENT_FRONTEND = dict(representation="mel_segments", n_mels=32, segment_frames=32, segment_hop=16,
                        channels=2)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Two tiny MODEL DIRs: an utterance-level log-mel model and a segment model."""
    import keras

    from keras_ser.frontend import FrontEnd

    root = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((500, 40))
    hidden = keras.layers.Conv1D(8, 5, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    utterance_model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    write_model_dir(root / "utterance", utterance_model, FrontEnd("zhao2019"), "none")

    inputs = keras.Input((32, 32, 2))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    segment_model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    write_model_dir(root / "segments", segment_model, FrontEnd(**SEGMENT_FRONTEND), "mean_segments")
    return {"utterance": root / "utterance", "segments": root / "segments"}


@pytest.fixture(scope="module")
def wavs(emodb_wavs):
    return [emodb_wavs[0], emodb_wavs[100], emodb_wavs[300]]


def _reference(model_dir, path):
    """FrontEnd -> model -> mean of segment probabilities, with librosa loading."""
    import keras

    from keras_ser.frontend import FrontEnd

    frontend = FrontEnd.from_config(json.loads((model_dir / "frontend.json").read_text()))
    model = keras.saving.load_model(model_dir / "model.keras")
    waveform, _ = librosa.load(path, sr=16000)
    features = np.asarray(frontend(waveform[None].astype(np.float32)))[0]
    if json.loads((model_dir / "meta.json").read_text())["pooling"] == "none":
        return np.asarray(model.predict(features[None], verbose=0))[0]
    per_segment = [np.asarray(model.predict(s[None], verbose=0))[0] for s in features]
    assert len(per_segment) > 1  # 2 s at hop 16 frames: pooling really averages
    return np.mean(per_segment, axis=0)


@pytest.mark.parametrize("kind", ["utterance", "segments"])
def test_predict_files_matches_reference_chain(model_dirs, wavs, kind):
    from keras_ser.predict import Predictor

    predictor = Predictor(model_dirs[kind])
    probabilities = predictor.predict_files(wavs)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for path, row in zip(wavs, probabilities):
        np.testing.assert_allclose(row, _reference(model_dirs[kind], path), atol=1e-5)


def _finish_fold(fold_dir, scores, **extra):
    """A finished fold's metrics.json (naming the fold, one test utterance) and predictions.csv."""
    (fold_dir / "metrics.json").write_text(json.dumps(
        {"fold": fold_dir.name, "scores": dict(scores, wa=scores["ua"], n=1), **extra}))
    (fold_dir / "predictions.csv").write_text(
        "id,label,predicted," + ",".join(f"p_{name}" for name in LABELS) + "\n"
        + "u1,anger,anger," + ",".join(["1"] + ["0"] * (len(LABELS) - 1)) + "\n")


def _fake_run(tmp_path, model_dir, val_ua, test_ua):
    """RUN_DIR whose folds share one model; val_predictions.csv give the validation UAs."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "labels.json").write_text(json.dumps(LABELS))
    for fold, (val, test) in {"f1": (val_ua[0], test_ua[0]), "f2": (val_ua[1], test_ua[1]),
                              "f3": (val_ua[2], test_ua[2])}.items():
        fold_dir = run / "folds" / fold
        shutil.copytree(model_dir, fold_dir / "model")
        _finish_fold(fold_dir, {"ua": test})
        if val is None:
            continue
        # Two validation classes with 4 utterances each; recall of class a = val, of b = 1.
        n_right = int(round(val * 2 * 4 - 4))
        rows = ["id,label,predicted,p_a,p_b"]
        rows += [f"a{i},anger,{'anger' if i < n_right else 'sadness'},0.5,0.5" for i in range(4)]
        rows += [f"b{i},sadness,sadness,0.5,0.5" for i in range(4)]
        (fold_dir / "val_predictions.csv").write_text("\n".join(rows) + "\n")
    return run


def test_run_dir_picks_best_validation_ua_not_test(tmp_path, model_dirs):
    from keras_ser.experiments.run_dir import resolve_model_dir

    run = _fake_run(tmp_path, model_dirs["utterance"], val_ua=(0.625, 0.875, None),
                    test_ua=(0.99, 0.10, 0.99))
    chosen, reason = resolve_model_dir(run)
    assert chosen == run / "folds" / "f2" / "model"
    assert "best validation UA 0.8750" in reason
    chosen, reason = resolve_model_dir(run, fold="f3")
    assert chosen == run / "folds" / "f3" / "model" and "--fold" in reason
    # A UA recorded in metrics.json wins over the CSV.
    _finish_fold(run / "folds" / "f1", {"ua": 0.99}, validation_scores={"ua": 0.9})
    assert resolve_model_dir(run)[0] == run / "folds" / "f1" / "model"
    with pytest.raises(ParameterError, match="fold 'f9' has no trained model"):
        resolve_model_dir(run, fold="f9")
    with pytest.raises(ParameterError, match="is a MODEL DIR"):
        resolve_model_dir(model_dirs["utterance"], fold="f1")
    with pytest.raises(DataError, match="neither a MODEL DIR"):
        resolve_model_dir(tmp_path)


def test_run_dir_picks_only_finished_folds_and_names_a_damaged_model(tmp_path, model_dirs):
    from keras_ser.experiments.run_dir import resolve_model_dir
    from keras_ser.predict import Predictor

    run = _fake_run(tmp_path, model_dirs["utterance"], val_ua=(0.625, 0.875, None), test_ua=(0.5, 0.5, 0.5))
    # Fold f2, best on validation, was killed while its files were written: no metrics.json yet.
    (run / "folds" / "f2" / "metrics.json").unlink()
    chosen, reason = resolve_model_dir(run)
    assert chosen == run / "folds" / "f1" / "model" and "of 2 finished folds" in reason
    with pytest.raises(ParameterError, match="fold 'f2' is not finished"):
        resolve_model_dir(run, fold="f2")
    # A damaged model file of a finished fold: the error names it.
    model_file = run / "folds" / "f1" / "model" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:500])
    with pytest.raises(DataError, match=f"{model_file}: cannot load"):
        Predictor.from_path(run)


def test_broken_model_dir_names_the_file(tmp_path, model_dirs):
    from keras_ser.predict import Predictor

    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["utterance"], broken)
    (broken / "meta.json").write_text(json.dumps({"pooling": "max"}))
    with pytest.raises(DataError, match="meta.json: pooling"):
        Predictor(broken)
    (broken / "labels.json").unlink()
    with pytest.raises(DataError, match="lacks labels.json"):
        Predictor(broken)


def test_a_model_trained_under_another_front_end_revision_is_named(tmp_path, model_dirs, capsys):
    from keras_ser.predict import Predictor

    Predictor(model_dirs["segments"])  # its own revision (2: the segments have a delta channel)
    assert "front-end revision" not in capsys.readouterr().err
    saved_before = tmp_path / "saved_before"
    shutil.copytree(model_dirs["segments"], saved_before)
    meta = json.loads((saved_before / "meta.json").read_text())
    del meta["frontend_revision"]  # a MODEL DIR saved before revisions were recorded: revision 1
    (saved_before / "meta.json").write_text(json.dumps(meta))
    Predictor(saved_before)
    error = capsys.readouterr().err
    assert f"the network in {saved_before} was trained on front-end revision 1" in error
    assert "computes revision 2 for its settings (revision 2 (91aec90): deltas of a constant stretch" in error
    # The log-mel front end without deltas is the same in both revisions: nothing to say.
    utterance = tmp_path / "utterance"
    shutil.copytree(model_dirs["utterance"], utterance)
    (utterance / "meta.json").write_text(json.dumps({"pooling": "none"}))
    Predictor(utterance)
    assert "front-end revision" not in capsys.readouterr().err


def test_cli_table_and_json(model_dirs, wavs, capsys, tmp_path):
    from keras_ser.predict import Predictor, main

    expected = Predictor(model_dirs["segments"]).predict_files(wavs[:2])
    assert main([str(model_dirs["segments"]), str(wavs[0]), str(wavs[1]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == LABELS
    for entry, row in zip(report["predictions"], expected):
        got = np.array([entry["probabilities"][label] for label in LABELS])
        np.testing.assert_allclose(got, row, atol=1e-6)
        assert entry["predicted"] == LABELS[int(np.argmax(row))]
    assert main([str(model_dirs["segments"]), str(wavs[0])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["file", "anger", "boredom"]
    assert lines[2].split()[-1] == LABELS[int(np.argmax(expected[0]))]
    assert main([str(model_dirs["segments"]), str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err


_FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    serve = loaded.signatures["serving_default"]
    waves = np.load(sys.argv[2])
    result = {"probabilities": [], "labels": None, "errors": {}}
    for name in sorted(waves.files):
        out = serve(waveform=tf.constant(waves[name]))
        result["probabilities"].append(out["probabilities"].numpy().tolist())
        result["labels"] = [v.decode() for v in out["label_names"].numpy()[0]]
    meta = loaded.signatures["metadata"]()
    result["sample_rate"] = int(meta["sample_rate"])
    for name, bad in {"short": np.zeros((1, 100), "float32"), "empty": np.zeros((0, 16000), "float32"),
                      "no_samples": np.zeros((2, 0), "float32"),
                      "nan": np.full((1, 16000), np.nan, "float32")}.items():
        try:
            serve(waveform=tf.constant(bad))
            result["errors"][name] = None
        except tf.errors.InvalidArgumentError as error:
            result["errors"][name] = error.message
    print(json.dumps(result))
""")


def test_export_saved_model_cli_and_fresh_process(tmp_path, model_dirs, wavs):
    from keras_ser import audio
    from keras_ser.export import export

    run = _fake_run(tmp_path, model_dirs["segments"], val_ua=(0.625, 0.875, 0.75), test_ua=(1, 0, 1))
    out = tmp_path / "serving" / "1"
    predictor = export(run, out)
    assert predictor.model_dir == run / "folds" / "f2" / "model"
    with pytest.raises(ParameterError, match="not empty"):
        export(run, out)

    cli = subprocess.run([str(__import__("pathlib").Path(sys.executable).with_name("saved_model_cli")),
                          "show", "--dir", str(out), "--all"], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    serving = cli.stdout.split("signature_def['serving_default']")[1]
    assert "inputs['waveform']" in serving
    assert "dtype: DT_FLOAT\n        shape: unknown_rank" in serving  # so that a wrong rank reaches the check
    assert "outputs['probabilities']" in serving and "outputs['label_names']" in serving

    # Whole files (2 s) as a batch of 3, and a 1.3 s cut (variable length).
    full = np.stack([audio.load(path, sr=16000) for path in wavs])
    cut = full[:1, :20800]
    np.savez(tmp_path / "waves.npz", a_full=full, b_cut=cut)
    fresh = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(out), str(tmp_path / "waves.npz")],
                           capture_output=True, text=True, timeout=180)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    result = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert result["labels"] == LABELS and result["sample_rate"] == 16000
    np.testing.assert_allclose(result["probabilities"][0], predictor.predict_files(wavs), atol=1e-5)
    np.testing.assert_allclose(result["probabilities"][1], predictor.predict_waveforms(cut), atol=1e-5)
    errors = result["errors"]
    assert "waveform too short: need at least 400 samples (25 ms at 16000 Hz)" in errors["short"]
    assert "waveform too short" in errors["no_samples"]
    assert "empty request" in errors["empty"]
    assert "NaN or Inf" in errors["nan"]
