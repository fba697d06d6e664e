"""keras_ser.experiments.run_dir and the runner's use of it, with keras_ser.experiments.resume's
checks as a run meets them: corpus fingerprint, fold status, the run-directory lock, atomic
writes and Ctrl-C.

No network is trained here: the runner's ``run_fold`` is replaced by a stand-in that
writes a finished fold (``predictions.csv`` and ``metrics.json``) the way the real one
does, so that each test runs in seconds on a manifest of eight EMO-DB files.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import run_dir as run_dir_module
from keras_ser.experiments import runner
from keras_ser.experiments.run_dir import RunDir, write_json, write_predictions
from keras_ser.metrics import classification_scores
from keras_ser.recipe import load_recipe

SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male"}
CODES = {"W": "anger", "N": "neutral"}
RECIPE = ["experiment.save_models=false"]


@pytest.fixture()
def manifest(tmp_path, emodb_dir):
    """A manifest of one anger and one neutral file per speaker, copied so that tests may edit them."""
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    rows = ["path,label,speaker,gender"]
    for speaker, gender in SPEAKERS.items():
        for code, label in CODES.items():
            source = sorted((emodb_dir / "wav").glob(f"{speaker}???{code}?.wav"))[0]
            shutil.copy(source, audio_dir / source.name)
            rows.append(f"{audio_dir / source.name},{label},{speaker},{gender}")
    path = tmp_path / "corpus.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture()
def fake_folds(monkeypatch):
    """Replace the runner's fold training by a stand-in; returns the names of the folds it ran."""
    calls = []

    def run_fold(recipe, fold, label_names, fold_dir, **_):
        calls.append(fold.name)
        fold_dir.mkdir(parents=True, exist_ok=True)
        y_true = [label_names.index(u.label) for u in fold.test]
        y_pred = [0] * len(y_true)
        write_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test], [u.label for u in fold.test],
                          [label_names[0]] * len(y_true), [[1.0] + [0.0] * (len(label_names) - 1)] * len(y_true),
                          label_names)
        metrics = {"fold": fold.name, "scores": classification_scores(y_true, y_pred, label_names),
                   "epochs_run": None, "best_epoch": None}
        write_json(fold_dir / "metrics.json", metrics)
        return metrics

    monkeypatch.setattr(runner, "run_fold", run_fold)
    return calls


def _run(manifest, out, folds=("03",)):
    return runner.run_experiment(load_recipe("zhao2019_attention_blstm_fcn", RECIPE), corpus=f"manifest:{manifest}",
                                 out=out, folds=list(folds), overrides=RECIPE, progress=False)


# ---------------------------------------------------------------------------- 5. corpus fingerprint


def test_resume_refuses_an_edited_manifest_and_says_what_changed(tmp_path, manifest, fake_folds):
    out = tmp_path / "run"
    _run(manifest, out)
    config = json.loads((out / "config.json").read_text())
    assert len(config["corpus_fingerprint"]["utterances"]) == 8
    _run(manifest, out, ("03", "08"))  # unchanged corpus: resumes
    assert fake_folds == ["speaker_03", "speaker_08"]

    # The same label set, one label swapped: without a fingerprint this pools folds of different data.
    text = manifest.read_text()
    first = text.splitlines()[1]
    manifest.write_text(text.replace(first, first.replace(",anger,", ",neutral,")))
    with pytest.raises(DataError) as error:
        _run(manifest, out, ("03", "08", "09"))
    message = str(error.value)
    utterance = first.split(",")[0]  # a manifest's utterance id is its path
    assert f"{utterance}: label anger -> neutral" in message
    assert str(out) in message and "--out" in message
    assert fake_folds == ["speaker_03", "speaker_08"]  # nothing was trained on the new data

    # New modification times alone (the corpus copied to another machine, a restored backup)
    # are no change: the run resumes.
    manifest.write_text(text)
    audio_file = first.split(",")[0]
    for line in text.splitlines()[1:]:
        os.utime(line.split(",")[0], ns=(1, 1))
    _run(manifest, out, ("03", "08", "09"))
    assert fake_folds == ["speaker_03", "speaker_08", "speaker_09"]

    # An audio file edited in place, same size and modification time, is a change.
    data = bytearray(pathlib.Path(audio_file).read_bytes())
    data[-1] ^= 1
    pathlib.Path(audio_file).write_bytes(bytes(data))
    os.utime(audio_file, ns=(1, 1))
    with pytest.raises(DataError, match=re.escape(f"{utterance}: content changed")):
        _run(manifest, out)

    # And a replaced one (same name, other size).
    with open(audio_file, "ab") as handle:
        handle.write(b"\0" * 64)
    with pytest.raises(DataError, match=re.escape(f"{utterance}: content changed")):
        _run(manifest, out)
    assert fake_folds == ["speaker_03", "speaker_08", "speaker_09"]


def test_a_run_recorded_before_digests_resumes_on_the_same_files_only(tmp_path, manifest, fake_folds):
    out = tmp_path / "run"
    _run(manifest, out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    for record in config["corpus_fingerprint"]["utterances"]:
        del record[6:]  # as written before fingerprints held a digest: size and mtime only
    config_path.write_text(json.dumps(config))
    _run(manifest, out, ("03", "08"))  # the files are as recorded: resumes, and records digests
    assert fake_folds == ["speaker_03", "speaker_08"]
    assert all(len(r) == 7 for r in json.loads(config_path.read_text())["corpus_fingerprint"]["utterances"])

    # Without a digest a new modification time cannot be told from an edit: refused.
    config["corpus_fingerprint"]["utterances"][0][5] -= 1
    config_path.write_text(json.dumps(config))
    with pytest.raises(DataError, match="file size or modification time changed"):
        _run(manifest, out, ("03", "08"))


# ---------------------------------------------------------------------------- 7. fold status


def test_a_corrupt_metrics_file_makes_the_fold_be_redone_with_a_message(tmp_path, manifest, fake_folds, capsys):
    out = tmp_path / "run"
    _run(manifest, out, ("03", "08"))
    metrics = out / "folds" / "speaker_03" / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])  # truncated by a crash or a full disk
    results = _run(manifest, out, ("03", "08"))
    assert fake_folds == ["speaker_03", "speaker_08", "speaker_03"]
    err = capsys.readouterr().err
    assert f"{metrics} is not valid JSON" in err and "redoing" in err
    assert results["folds_done"] == ["speaker_03", "speaker_08"]

    # A fold whose files disagree with the run is not finished either; reports skip it.
    predictions = out / "folds" / "speaker_08" / "predictions.csv"
    predictions.write_text(predictions.read_text().splitlines()[0] + "\n")
    finished, reason = run_dir_module.fold_status(out, "speaker_08")
    assert not finished and "predictions.csv" in reason and "rows" in reason
    assert runner.reports.write_reports(out)["folds_done"] == ["speaker_03"]


def test_fold_status_checks_every_file_against_the_config(tmp_path):
    run = RunDir(tmp_path)
    labels = ["anger", "neutral"]
    write_json(run.labels, labels)
    write_json(run.config, {"recipe": {"experiment": {"kind": "neural", "save_models": True}}})
    assert run_dir_module.fold_status(tmp_path, "f1") == (False, f"{run.metrics('f1')} is missing")
    run.fold("f1").mkdir(parents=True)
    write_predictions(run.predictions("f1"), ["a", "b"], labels, labels, [[1, 0], [0, 1]], labels)
    write_json(run.metrics("f1"), {"fold": "f2", "scores": classification_scores([0, 1], [0, 1], labels)})
    assert "names fold 'f2'" in run_dir_module.fold_status(tmp_path, "f1")[1]
    write_json(run.metrics("f1"), {"fold": "f1", "scores": classification_scores([0, 1], [0, 1], labels)})
    finished, reason = run_dir_module.fold_status(tmp_path, "f1")
    assert not finished and "model.keras" in reason  # save_models: the MODEL DIR belongs to the fold
    run.model_dir("f1").mkdir()
    for name in run_dir_module.MODEL_FILES:
        (run.model_dir("f1") / name).write_text("{}")
    assert run_dir_module.fold_status(tmp_path, "f1") == (True, None)
    write_json(run.labels, ["anger", "sadness"])
    assert "columns" in run_dir_module.fold_status(tmp_path, "f1")[1]


# ---------------------------------------------------------------------------- 8. lock and atomic writes


def test_a_second_run_on_a_locked_directory_fails_at_once(tmp_path, manifest, fake_folds):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from keras_ser.experiments.resume import RunLock
        with RunLock({str(out)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ParameterError) as error:
            _run(manifest, out)
        assert f"in use by process {holder.pid}" in str(error.value) and "--out" in str(error.value)
        assert fake_folds == []
    finally:
        holder.kill()
        holder.wait()
    _run(manifest, out)  # the lock died with its process
    assert fake_folds == ["speaker_03"]
    assert not (out / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path, manifest, fake_folds, capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    _run(manifest, out)
    assert fake_folds == ["speaker_03"]
    err = capsys.readouterr().err
    assert f"process {dead.pid}" in err and "no longer running" in err


def test_writes_use_a_unique_temporary_file_in_the_same_folder_fsynced_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    # Another writer's temporary file under the old fixed name must not be renamed away.
    (tmp_path / "metrics.json.tmp").write_text("another writer, half done")
    events = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", fd)) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda src, dst: events.append(("replace", str(src))) or real_replace(src, dst))
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    renamed = [name for kind, name in events if kind == "replace"]
    assert len(set(renamed)) == 2 and all(os.path.dirname(n) == str(tmp_path) for n in renamed)
    assert events[0][0] == "fsync" and events.index(("replace", renamed[0])) > 0
    assert json.loads(target.read_text()) == {"a": 2}
    assert (tmp_path / "metrics.json.tmp").read_text() == "another writer, half done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "metrics.json.tmp"]
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"a": object()})
    assert not list(tmp_path.glob(".bad.json*")) and not (tmp_path / "bad.json").exists()


# ---------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, manifest, monkeypatch, capsys):
    from keras_ser.train import main

    done = []

    def run_fold(recipe, fold, label_names, fold_dir, **_):
        if done:
            raise KeyboardInterrupt
        done.append(fold.name)
        fold_dir.mkdir(parents=True)
        write_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test], [u.label for u in fold.test],
                          [u.label for u in fold.test], [[1.0, 0.0]] * len(fold.test), label_names)
        write_json(fold_dir / "metrics.json", {"fold": fold.name, "scores": classification_scores(
            [label_names.index(u.label) for u in fold.test], [label_names.index(u.label) for u in fold.test],
            label_names)})

    monkeypatch.setattr(runner, "run_fold", run_fold)
    out = tmp_path / "run"
    argv = ["--recipe", "zhao2019_attention_blstm_fcn", "--corpus", f"manifest:{manifest}", "--out", str(out),
            "--folds", "03,08", "--no-progress"] + RECIPE
    assert main(argv) == 130
    # Before training the runner logs the resolved precision; the interruption itself is one line.
    log, err = capsys.readouterr().err.strip().rsplit("\n", 1)
    assert log == "train precision: float32"
    assert "Traceback" not in err
    assert "1 finished fold (speaker_03)" in err and str(out) in err
    assert "python -m keras_ser.train" in err and "--folds 03,08" in err
    assert not (out / ".lock").exists()


def test_a_real_sigint_during_a_fold_ends_the_process_with_130_and_no_traceback(tmp_path, manifest):
    out = tmp_path / "run"
    # The first fold finishes at once, the second blocks until the signal comes.
    script = textwrap.dedent(f"""
        import signal, sys, time
        # A process started in the background by a non-interactive shell (nohup, CI) inherits
        # SIGINT ignored, and Python then keeps it ignored; a terminal user's Ctrl-C is not.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from keras_ser.experiments import runner
        from keras_ser.experiments.run_dir import write_json, write_predictions
        from keras_ser.metrics import classification_scores
        from keras_ser.train import main

        def run_fold(recipe, fold, label_names, fold_dir, **_):
            if fold.name != "speaker_03":
                print("training", flush=True)
                time.sleep(60)
            fold_dir.mkdir(parents=True)
            y = [label_names.index(u.label) for u in fold.test]
            write_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test], [u.label for u in fold.test],
                              [u.label for u in fold.test], [[1.0, 0.0]] * len(y), label_names)
            write_json(fold_dir / "metrics.json", {{"fold": fold.name, "scores": classification_scores(y, y, label_names)}})

        runner.run_fold = run_fold
        sys.exit(main(["--recipe", "zhao2019_attention_blstm_fcn", "--corpus", "manifest:{manifest}",
                       "--out", "{out}", "--folds", "03,08", "--no-progress", "{RECIPE[0]}"]))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "training"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert "Traceback" not in err and len(lines) == 1 and "1 finished fold (speaker_03)" in lines[0]
    assert not (out / ".lock").exists()


def test_an_embedding_svm_records_the_front_end_revision_of_the_network_it_reads(tmp_path):
    from keras_ser.frontend import FrontEnd

    recipe = load_recipe("zhang2021_dcnn_fc7_svm")
    assert runner._frontend_revision(dict(recipe, features={"name": f"embedding:{tmp_path / 'none'}"})) is None
    run = tmp_path / "run"  # a RUN_DIR: its recipe's [frontend]
    write_json(RunDir(run).config, {"recipe": {"frontend": {"preset": "zhang2021_dcnn"}}})
    assert runner._frontend_revision(dict(recipe, features={"name": f"embedding:{run}"})) == 2
    model = tmp_path / "model"  # a MODEL DIR: its frontend.json
    write_json(model / "frontend.json", FrontEnd("zhang2021_2d", channels=1).get_config())
    assert runner._frontend_revision(dict(recipe, features={"name": f"embedding:{model}"})) == 1
    assert runner._frontend_revision(load_recipe("zhao2018_attention_blstm_fcn")) == 2
    assert runner._frontend_revision(load_recipe("zhao2019_features_egemaps")) is None
