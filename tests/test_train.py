import json

import keras
import numpy as np
import pytest

from keras_ser.errors import ParameterError
from keras_ser.experiment import make_optimizer
from keras_ser.models import registry
from keras_ser.recipe import load_recipe
from keras_ser.train import main

TINY = "test_tiny_logmel_dense"

if TINY not in registry._REGISTRY:
    @registry.register(TINY, paper="test", table="-", input="40x500 log-mel")
    def _tiny(num_classes=7, units=8):
        # A stand-in network on the zhao2019 front end, small enough for a CPU test.
        return keras.Sequential([
            keras.Input((500, 40)), keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(units, activation="relu", name="embedding"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ])

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

    # Run-directory layout of contract D.
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
    from keras_ser.features import FrontEnd
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
        from keras_ser.experiment import run_experiment
        run_experiment(load_recipe("zhao2019_attention_blstm_fcn", TINY_ARGS + ["train.epochs=3"]),
                       out=resumed, folds=["03"], progress=False)


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_fold_standardization_statistics_and_saved_front_end(tmp_path, emodb_dir, mode):
    from keras_ser import audio
    from keras_ser.data import load_corpus, make_folds
    from keras_ser.features import FrontEnd, feature_statistics

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


def test_speaker_standardization_normalizes_every_speaker_with_its_own_statistics():
    from keras_ser.data import Fold, Utterance
    from keras_ser.experiment import _FoldStandardizer

    rng = np.random.default_rng(0)
    utts = {s: [Utterance(id=f"{s}{k}", path=f"{s}{k}.wav", label="anger", speaker=s) for k in range(3)] for s in "abcd"}
    offset = {"a": 0.0, "b": 30.0, "c": -20.0, "d": 5.0}
    feats = {u.id: offset[s] + rng.standard_normal((7, 4)) * (1 + ord(s) % 3)
             for s, us in utts.items() for u in us}

    class Store:
        def get(self, utterances):
            return [feats[u.id] for u in utterances]

    fold = Fold(name="d", train=tuple(utts["a"] + utts["b"]), validation=tuple(utts["c"]), test=tuple(utts["d"]))
    train = list(fold.train)
    standardizer = _FoldStandardizer({"preset": "zhao2019", "n_mels": 4, "standardize": "speaker"},
                                     fold, Store().get(train), train, Store())
    for speaker, us in utts.items():
        out = np.concatenate(standardizer(Store().get(us), us))
        np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(out.std(0), 1.0, atol=1e-3)
    np.testing.assert_allclose(standardizer.frontend.settings["feature_mean"],
                               np.concatenate(Store().get(utts["d"])).mean(0), rtol=1e-6)
    nameless = Fold(name="x", train=(Utterance(id="x", path="x.wav", label="anger", speaker=None),), validation=(),
                    test=tuple(utts["d"]))
    with pytest.raises(ParameterError, match="speaker ids"):
        _FoldStandardizer({"preset": "zhao2019", "standardize": "speaker"}, nameless, [], list(nameless.train),
                          Store())


def test_legacy_decay_schedule_matches_keras2_formula():
    recipe = load_recipe("zhao2019_attention_blstm_fcn")
    optimizer = make_optimizer(recipe["train"])
    for step in (0, 1, 1000, 250000):
        expected = 1e-3 / (1 + 1e-6 * step)
        assert float(optimizer._learning_rate(step)) == pytest.approx(expected, rel=1e-6)
    nadam = make_optimizer(load_recipe("zhang2021_dcnn_blstmwa")["stage1"])
    assert isinstance(nadam, keras.optimizers.Nadam)
    assert float(nadam.learning_rate) == pytest.approx(1e-4) and nadam.beta_1 == 0.9


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["--recipe", "no_such_recipe", "--out", str(tmp_path / "x")]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "y"), "--folds", "99", "--no-progress"] + TINY_ARGS) == 2
    assert "no fold '99'" in capsys.readouterr().err


def test_multi_worker_training_uses_the_distribute_loop(monkeypatch, tmp_path):
    from keras_ser import experiment

    calls = []
    real_fit = __import__("keras_ser.distribute", fromlist=["fit"]).fit

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(experiment, "_multi_worker", lambda: True)
    monkeypatch.setattr("keras_ser.distribute.fit", spy)
    train = load_recipe("zhao2018_attention_blstm_fcn", ["train.epochs=2", "train.verbose=0"])["train"]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = np.array([0, 1] * 4)
    history, epochs_run, best = experiment.fit_model(
        model, train, (x, y), (x, y), class_weight={0: 1.0, 1: 3.0}, log_dir=tmp_path)
    assert len(calls) == 1 and calls[0]["class_weight"] == {0: 1.0, 1: 3.0}
    assert epochs_run == best == 2 and len(history["loss"]) == 2
    with pytest.raises(ParameterError, match="ccc"):
        experiment.fit_model(model, dict(train, loss="ccc"), (x, y), None, class_weight=None, log_dir=tmp_path)


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


def test_pad_stack_pads_time_with_the_mask_value_only():
    from keras_ser.errors import DataError
    from keras_ser.experiment import pad_stack

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((2, 3))
    out = pad_stack([a, b], pad_value=-1.5)
    assert out.shape == (2, 5, 3)
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_array_equal(out[1, :2], b)
    assert np.all(out[1, 2:] == -1.5)
    np.testing.assert_array_equal(pad_stack([a, a]), np.stack([a, a]))
    with pytest.raises(DataError, match="beyond the time axis"):
        pad_stack([a, rng.standard_normal((5, 4))])
    with pytest.raises(DataError, match="no mask_value"):
        pad_stack([a, b], pad_value=None)

    # The pad value is the model's own mask value; a model that masks nothing gets none.
    from keras_ser.experiment import _mask_value
    assert _mask_value({"name": "zhao2018_attention_blstm_fcn"}) == 0.0
    assert _mask_value({"name": "zhao2018_attention_blstm_fcn", "mask_value": -9.0}) == -9.0
    assert _mask_value({"name": "zhang2021_multicnn_1d"}) is None


def test_early_stopping_warm_up_never_picks_an_early_epoch(tmp_path):
    from keras_ser import experiment

    # lr 0: the validation loss is the same every epoch, so the best epoch is the first one considered.
    train = dict(load_recipe("zhao2018_attention_blstm_fcn", ["train.verbose=0"])["train"],
                 learning_rate=0.0, epochs=5, monitor="val_loss", patience=10)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    y = np.array([0, 1] * 4)
    for warm_up, expected in ((0, 1), (2, 3), (9, 5)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        _, epochs_run, best = experiment.fit_model(model, dict(train, start_from_epoch=warm_up), (x, y), (x, y),
                                                   class_weight=None, log_dir=tmp_path)
        assert (epochs_run, best) == (5, expected), warm_up
    with pytest.raises(ParameterError, match="start_from_epoch"):
        load_recipe("zhao2018_attention_blstm_fcn", ["train.start_from_epoch=-1"])
