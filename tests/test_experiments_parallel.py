"""Fold-parallel training (keras_ser.experiments.parallel): the same results as one fold at a time.

The runs train the tiny stand-in network (tests/model_helper.py) on the zhao2019 front end of a
three-speaker, three-class EMO-DB manifest, in two worker processes.
"""

import json
import os

import keras
import pytest

from keras_ser.errors import ParameterError
from keras_ser.experiments import training
from keras_ser.experiments.parallel import core_groups
from keras_ser.experiments.runner import run_experiment
from keras_ser.models import registry
from keras_ser.train import main

from corpus_helper import emodb_manifest
from model_helper import register_tiny_logmel_model

TINY = register_tiny_logmel_model()
OVERRIDES = [f"model.name={TINY}", "train.epochs=3", "train.verbose=0", "train.batch_size=4"]
FOLDS = ("speaker_03", "speaker_08", "speaker_09")


@pytest.fixture(scope="module")
def manifest(emodb_wavs, tmp_path_factory):
    """Speakers 03, 08 and 09; anger, neutral and sadness; three utterances each."""
    return emodb_manifest(emodb_wavs, tmp_path_factory.mktemp("parallel"), ("03", "08", "09"), 3)


class _RecordProcess(keras.callbacks.Callback):
    def __init__(self, fold_dir):
        super().__init__()
        self.fold_dir = fold_dir

    def on_train_end(self, logs=None):
        (self.fold_dir / "trained_by.json").write_text(json.dumps({"pid": os.getpid(),
                                                                    "cores": sorted(os.sched_getaffinity(0))}))


def record_process(recipe, fold, fold_dir):
    """A tracker that writes which process, on which cores, trained the fold."""
    return [_RecordProcess(fold_dir)]


def fail_on_speaker_08(recipe, fold, fold_dir):
    if fold.name == "speaker_08":
        raise RuntimeError("tracker refused speaker_08")
    return []


def fail_in_run_2(recipe, fold, fold_dir):
    if fold_dir.name == "repeat_2":
        raise RuntimeError(f"tracker refused run 2 of {fold.name}")
    return []


def test_core_groups_split_the_cores_and_refuse_what_cannot_run():
    assert core_groups(1, cores=[4, 6]) == [[4, 6]]
    assert core_groups(2, cores=[6, 4]) == [[4], [6]]
    assert core_groups(3, cores=range(8)) == [[0, 1], [2, 3, 4], [5, 6, 7]]
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ParameterError, match="jobs must be a whole number"):
            core_groups(jobs, cores=[0, 1])
    with pytest.raises(ParameterError, match="jobs=3 exceeds the 2 CPU core"):
        core_groups(3, cores=[0, 1])


def test_parallel_folds_give_the_sequential_results_and_resume(manifest, tmp_path):
    run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "sequential",
                   progress=False, overrides=OVERRIDES)
    training.register_callback_factory(record_process)
    try:
        results = run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "parallel",
                                 progress=False, overrides=OVERRIDES, results=tmp_path / "results", jobs=2)
    finally:
        training.unregister_callback_factory(record_process)
    assert results["folds_done"] == list(FOLDS)
    trained_by = [json.loads((tmp_path / "parallel" / "folds" / f / "trained_by.json").read_text()) for f in FOLDS]
    # Two worker processes, neither of them this one, each pinned to a core of its own.
    assert len({t["pid"] for t in trained_by}) == 2 and os.getpid() not in {t["pid"] for t in trained_by}
    assert {tuple(t["cores"]) for t in trained_by} == {tuple(g) for g in core_groups(2)}
    for fold, worker in zip(FOLDS, trained_by):
        for name in ("predictions.csv", "val_predictions.csv", "history.json"):
            sequential = (tmp_path / "sequential" / "folds" / fold / name).read_text()
            assert (tmp_path / "parallel" / "folds" / fold / name).read_text() == sequential, (fold, name)
        threads = [json.loads((tmp_path / run / "folds" / fold / "metrics.json").read_text())["cpu_threads"]
                   for run in ("sequential", "parallel")]
        assert threads == [len(os.sched_getaffinity(0)), len(worker["cores"])]
        # Each fold was mirrored to results/ as it ended.
        assert len(list((tmp_path / "results").glob(f"*/*/folds/{fold}/predictions.csv"))) == 1
    sequential = json.loads((tmp_path / "sequential" / "results.json").read_text())
    assert results["pooled"] == sequential["pooled"]

    # Two folds interrupted: resuming in parallel trains those two again, and only those.
    for fold in FOLDS[1:]:
        os.remove(tmp_path / "parallel" / "folds" / fold / "metrics.json")
    again = run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "parallel",
                           progress=False, overrides=OVERRIDES, jobs=2)
    assert again["pooled"] == sequential["pooled"]
    assert (tmp_path / "parallel" / "folds" / FOLDS[0] / "trained_by.json").is_file()
    assert not any((tmp_path / "parallel" / "folds" / fold / "trained_by.json").exists() for fold in FOLDS[1:])


def test_a_failing_fold_stops_the_run_with_its_error_and_keeps_the_others(manifest, tmp_path):
    out = tmp_path / "run"
    training.register_callback_factory(fail_on_speaker_08)
    try:
        with pytest.raises(RuntimeError, match="tracker refused speaker_08"):
            run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=out, progress=False,
                           overrides=OVERRIDES, jobs=2)
    finally:
        training.unregister_callback_factory(fail_on_speaker_08)
    assert not (out / "folds" / "speaker_08" / "metrics.json").exists()
    # The lock is released: the same command resumes and trains what is missing.
    results = run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=out, progress=False,
                             overrides=OVERRIDES, jobs=2)
    assert results["folds_done"] == list(FOLDS)


def test_workers_copy_each_run_of_a_fold_to_results_as_it_ends(manifest, tmp_path):
    mirror = tmp_path / "results"
    training.register_callback_factory(fail_in_run_2)
    try:
        # No fold finishes, so nothing but the workers themselves can have written the runs to results/.
        with pytest.raises(RuntimeError, match="run 2 of speaker_0[38]") as failure:
            run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "run", progress=False,
                           overrides=OVERRIDES + ["experiment.repeats=2"], folds=["03", "08"], results=mirror,
                           jobs=2)
    finally:
        training.unregister_callback_factory(fail_in_run_2)
    fold = str(failure.value).rsplit(" ", 1)[-1]
    found = list(mirror.glob(f"zhao2019_attention_blstm_fcn/*/folds/{fold}"))
    assert found, f"results/ holds nothing of {fold}"
    stored = found[0]
    # The worker copied run 1 of the fold when it ended, before run 2 failed.
    assert (stored / "repeat_1" / "metrics.json").is_file() and (stored / "repeat_1" / "predictions.csv").is_file()
    assert not (stored / "metrics.json").exists() and not (stored / "repeat_2").exists()


def test_jobs_refuses_what_workers_cannot_import(manifest, tmp_path):
    name = "test_closure_model"
    registry.register(name, paper="test", table="-", input="40x500 log-mel")(lambda **kwargs: None)
    try:
        with pytest.raises(ParameterError, match=f"model '{name}' was registered with a builder that worker"):
            run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "run",
                           progress=False, overrides=OVERRIDES + [f"model.name={name}"], jobs=2)
    finally:
        registry._REGISTRY.pop(name)
        registry._registered_here.remove(name)
    with pytest.raises(ParameterError, match="strategy 'mirrored' distributes one fold"):
        run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "run",
                       progress=False, overrides=OVERRIDES, jobs=2, strategy="mirrored")


def test_cli_jobs_option(manifest, tmp_path, capsys):
    assert main(["--recipe", "zhao2019_attention_blstm_fcn", "--corpus", manifest, "--out", str(tmp_path / "run"),
                 "--no-progress", "--jobs", "0", *OVERRIDES]) == 2
    assert "jobs must be a whole number of at least 1, got 0" in capsys.readouterr().err
