import json

import keras
import numpy as np
import pytest

from keras_ser.errors import ParameterError
from keras_ser.recipe import load_recipe
from keras_ser.train import main

from model_helper import register_tiny_logmel_model

TINY = register_tiny_logmel_model()

TINY_ARGS = [f"model.name={TINY}", "train.epochs=2", "train.verbose=0", "train.batch_size=64"]


def _run(out, folds, extra=()):
    argv = ["--recipe", "zhao2019_attention_blstm_fcn", "--out", str(out), "--no-progress"]
    if folds:
        argv += ["--folds", folds]
    assert main(argv + TINY_ARGS + list(extra)) == 0


def _fold_metrics(run_dir, fold):
    return json.loads((run_dir / "folds" / fold / "metrics.json").read_text())


def test_resume_skips_finished_folds_and_is_deterministic(tmp_path, emodb_dir):
    resumed = tmp_path / "resumed"
    _run(resumed, "03")
    first = resumed / "folds" / "speaker_03" / "metrics.json"
    stamp, content = first.stat().st_mtime_ns, first.read_text()
    _run(resumed, "03,08")  # the finished fold must not be retrained
    assert first.stat().st_mtime_ns == stamp and first.read_text() == content

    straight = tmp_path / "straight"
    _run(straight, "speaker_03")
    a, b = _fold_metrics(resumed, "speaker_03"), _fold_metrics(straight, "speaker_03")
    assert a["scores"] == b["scores"], "same seed must give the same metrics"

    # Run-directory layout (keras_ser.experiments.run_dir).
    for name in ("config.json", "labels.json", "results.json", "results.md", "confusion.png", "curves.png"):
        assert (resumed / name).is_file(), name
    fold_dir = resumed / "folds" / "speaker_08"
    for name in ("metrics.json", "predictions.csv", "val_predictions.csv", "history.json",
                 "model/model.keras", "model/frontend.json", "model/labels.json", "model/meta.json"):
        assert (fold_dir / name).is_file(), name
    meta = json.loads((fold_dir / "model" / "meta.json").read_text())
    assert meta["fold"] == "speaker_08" and meta["pooling"] == "none"

    results = json.loads((resumed / "results.json").read_text())
    assert results["folds_done"] == ["speaker_03", "speaker_08"] and results["folds_total"] == 10
    assert results["corpus_display"] == "EMO-DB-2s"
    # The pooled scores are those of the concatenated predictions, recomputed here.
    from sklearn.metrics import balanced_accuracy_score
    import csv
    rows = []
    for fold in results["folds_done"]:
        with open(resumed / "folds" / fold / "predictions.csv") as handle:
            rows += list(csv.DictReader(handle))
    assert len(rows) == 49 + 58  # speakers 03 and 08
    assert results["pooled"]["ua"] == pytest.approx(
        balanced_accuracy_score([r["label"] for r in rows], [r["predicted"] for r in rows]))
    markdown = (resumed / "results.md").read_text()
    assert "EMO-DB-2s" in markdown and "68.1" in markdown and "loso" in markdown

    # The saved model reproduces the stored test probabilities from the front-end output.
    from keras_ser import audio
    from keras_ser.frontend import FrontEnd
    model = keras.saving.load_model(fold_dir / "model" / "model.keras")
    frontend = FrontEnd.from_config(json.loads((fold_dir / "model" / "frontend.json").read_text()))
    with open(fold_dir / "predictions.csv") as handle:
        row = next(csv.DictReader(handle))
    wave = audio.load(emodb_dir / "wav" / f"{row['id']}.wav", sr=16000)
    probabilities = model.predict(frontend(wave[None]), verbose=0)[0]
    labels = json.loads((fold_dir / "model" / "labels.json").read_text())
    np.testing.assert_allclose(probabilities, [float(row[f"p_{n}"]) for n in labels], rtol=1e-4, atol=1e-5)

    # Resuming with another configuration is refused instead of mixing results.
    with pytest.raises(ParameterError, match="different configuration"):
        from keras_ser.experiments.runner import run_experiment
        run_experiment(load_recipe("zhao2019_attention_blstm_fcn", TINY_ARGS + ["train.epochs=3"]),
                       out=resumed, folds=["03"], progress=False)


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_fold_standardization_statistics_and_saved_front_end(tmp_path, emodb_dir, mode):
    from keras_ser import audio
    from keras_ser.data import load_corpus, make_folds
    from keras_ser.frontend import FrontEnd, feature_statistics

    run_dir = tmp_path / mode
    _run(run_dir, "09", [f"frontend.standardize={mode}"])
    model_dir = run_dir / "folds" / "speaker_09" / "model"
    settings = json.loads((model_dir / "frontend.json").read_text())
    fold = next(f for f in make_folds("loso", load_corpus("emodb", emodb_dir)) if f.name == "speaker_09")
    raw = FrontEnd("zhao2019")

    def features(utterances):
        return [raw(audio.load(u.path, sr=16000)[None]).numpy()[0] for u in utterances]

    # "global": the training speakers' statistics; "speaker": the test speaker's own.
    expected = feature_statistics(features(fold.train if mode == "global" else fold.test))
    assert settings["standardize"] == mode
    np.testing.assert_allclose(settings["feature_mean"], expected[0], rtol=1e-5)
    np.testing.assert_allclose(settings["feature_std"], expected[1], rtol=1e-5)
    other = feature_statistics(features(fold.test if mode == "global" else fold.train))
    assert np.abs(np.subtract(other[0], expected[0])).max() > 1e-3

    # The saved fold (front end with its statistics + model) reproduces the stored probabilities.
    import csv
    model = keras.saving.load_model(model_dir / "model.keras")
    with open(run_dir / "folds" / "speaker_09" / "predictions.csv") as handle:
        rows = list(csv.DictReader(handle))[:3]
    waves = np.stack([audio.load(emodb_dir / "wav" / f"{r['id']}.wav", sr=16000) for r in rows])
    probabilities = model.predict(FrontEnd.from_config(settings)(waves), verbose=0)
    labels = json.loads((model_dir / "labels.json").read_text())
    np.testing.assert_allclose(probabilities, [[float(r[f"p_{n}"]) for n in labels] for r in rows],
                               rtol=1e-4, atol=1e-5)

    # predict --adapt-speaker: the statistics come from the given files of one speaker.
    from keras_ser.predict import Predictor
    from keras_ser.predict import main as predict_main

    predictor = Predictor(model_dir)
    assert predictor.speaker_standardized == (mode == "speaker")
    if mode == "global":
        with pytest.raises(ParameterError, match="not 'speaker'"):
            predictor.adapt_to_speaker([waves[0]])
        assert predict_main([str(model_dir), str(emodb_dir / "wav" / f"{rows[0]['id']}.wav"),
                             "--adapt-speaker"]) == 2
        return
    predictor.adapt_to_speaker([audio.load(u.path, sr=16000) for u in fold.test])
    np.testing.assert_allclose(predictor.frontend.settings["feature_mean"], expected[0], rtol=1e-5)
    np.testing.assert_allclose(predictor.predict_waveforms(waves), probabilities, rtol=1e-4, atol=1e-5)
    predictor.adapt_to_speaker([audio.load(u.path, sr=16000) for u in fold.train if u.speaker == "03"])
    np.testing.assert_allclose(predictor.frontend.settings["feature_mean"],
                               feature_statistics(features([u for u in fold.train if u.speaker == "03"]))[0],
                               rtol=1e-5)
    assert np.abs(predictor.predict_waveforms(waves) - probabilities).max() > 1e-4

    # export --speaker-files bakes that speaker's statistics into the served graph.
    import tensorflow as tf

    from keras_ser.export import export

    speaker_03 = [u.path for u in fold.train if u.speaker == "03"]
    export(model_dir, tmp_path / "serving" / "1", speaker_files=speaker_03)
    serve = tf.saved_model.load(str(tmp_path / "serving" / "1")).signatures["serving_default"]
    np.testing.assert_allclose(serve(waveform=tf.constant(waves))["probabilities"].numpy(),
                               predictor.predict_waveforms(waves), atol=1e-5)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["--recipe", "no_such_recipe", "--out", str(tmp_path / "x")]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "y"), "--folds", "99", "--no-progress"] + TINY_ARGS) == 2
    assert "no fold '99'" in capsys.readouterr().err


def test_overrides_may_come_before_between_and_after_the_options(capsys):
    from keras_ser.train import build_parser

    # argparse's plain parse_args stops with "unrecognized arguments" on the second override.
    assert main(["train.verbose=0", "--list", "frontend.num_frames=201"]) == 0
    assert "zhao2019_fcn" in capsys.readouterr().out
    args = build_parser().parse_intermixed_args(
        ["train.verbose=0", "--recipe", "zhao2019_fcn", "frontend.num_frames=201", "--folds", "03", "train.epochs=2"])
    assert args.recipe == "zhao2019_fcn" and args.folds == "03"
    assert args.overrides == ["train.verbose=0", "frontend.num_frames=201", "train.epochs=2"]


def test_features_svm_recipe_end_to_end_report(tmp_path, emodb_dir):
    # Four EMO-DB speakers (two per gender, so every fold has a same-gender validation speaker).
    wavs = sorted(p for p in (emodb_dir / "wav").glob("*.wav") if p.name[:2] in {"03", "08", "09", "10"})
    codes = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness",
             "N": "neutral"}
    manifest = tmp_path / "emodb4.csv"
    manifest.write_text("path,label,speaker,gender\n" + "".join(
        f"{p},{codes[p.name[5]]},{p.name[:2]},{'male' if p.name[:2] in {'03', '10'} else 'female'}\n"
        for p in wavs))
    out = tmp_path / "svm"
    argv = ["--recipe", "zhao2019_features_egemaps", "--corpus", f"manifest:{manifest}", "--out", str(out),
            "--folds", "03", "--no-progress", "features.name=logmel"]
    assert main(argv) == 0
    metrics = _fold_metrics(out, "speaker_03")
    assert metrics["params"]["value"] in [float(v) for v in metrics["params"]["validation_ua"]]
    header = (out / "folds" / "speaker_03" / "predictions.csv").read_text().splitlines()[0]
    assert header.startswith("id,label,predicted,score_")
    markdown = (out / "results.md").read_text()
    assert f"- Features: {metrics['params']['features']}" in markdown
    assert f"alpha={metrics['params']['value']:g}" in markdown
    assert metrics["scores"]["ua"] > 1 / 7  # log-mel statistics + SVM beat chance on a held-out speaker
