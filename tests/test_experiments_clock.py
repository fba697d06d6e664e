"""keras_ser.experiments.clock: wall times that leave out the stretches a run was stopped.

A real process is stopped with SIGSTOP and continued; the rules are checked on a clock
whose monotonic time the test sets; the runner's ``wall_s`` / ``stopped_s`` on a tiny
repeated fold during whose fits the clock "stops" the process.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import keras
import pytest

from keras_ser.errors import ParameterError
from keras_ser.experiments import clock, training
from keras_ser.experiments.runner import run_experiment

from corpus_helper import emodb_manifest
from model_helper import register_tiny_logmel_model

TINY = register_tiny_logmel_model()

_CHILD = """
import json, sys, time
from keras_ser.experiments.clock import ActiveClock
watch = ActiveClock(tick_s=0.05, gap_s=0.5)
began, active = time.monotonic(), watch.now()
print("ready", flush=True)
while time.monotonic() - began < float(sys.argv[1]):
    time.sleep(0.01)
print(json.dumps({"wall": time.monotonic() - began, "active": watch.now() - active, "stopped": watch.stopped_s}))
"""


def test_a_process_stopped_with_sigstop_leaves_the_stop_out():
    child = subprocess.Popen([sys.executable, "-c", _CHILD, "4.0"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    child.send_signal(signal.SIGSTOP)
    time.sleep(2.0)
    child.send_signal(signal.SIGCONT)
    out, _ = child.communicate(timeout=60)
    result = json.loads(out)
    # The child's own monotonic clock ran through the stop; the active clock did not.
    assert result["wall"] >= 4.0
    assert 1.8 < result["stopped"] < 2.5, result
    assert result["active"] == pytest.approx(result["wall"] - result["stopped"], abs=0.1)


class _SetTime:
    """A stand-in for the ``time`` module whose monotonic time the test sets."""

    now = 0.0

    @classmethod
    def monotonic(cls):
        return cls.now

    @staticmethod
    def sleep(seconds):
        threading.Event().wait()  # the watching thread never wakes: each reading does the counting


def test_only_a_gap_longer_than_tick_plus_gap_counts_and_once(monkeypatch):
    monkeypatch.setattr(clock, "time", _SetTime)
    _SetTime.now = 0.0
    watch = clock.ActiveClock(tick_s=1.0, gap_s=10.0)
    _SetTime.now = 8.0  # 7 s later than the next wake-up was due: a delay, not a stop
    assert watch.now() == 8.0 and watch.stopped_s == 0.0
    _SetTime.now = 108.0  # no wake-up for 108 s: stopped for all but the one tick
    assert watch.stopped_s == 107.0 and watch.now() == 1.0
    _SetTime.now = 110.0  # counted once, not again at the next reading
    assert watch.stopped_s == 107.0 and watch.now() == 3.0
    with pytest.raises(ParameterError, match="tick_s and gap_s"):
        clock.ActiveClock(tick_s=0.0)


class _StoppingClock:
    """The process's clock, made to see a stop of ``STOP_S`` seconds whenever ``stop()`` is called."""

    STOP_S = 100.0

    def __init__(self):
        self.stopped_s, self._jump = 0.0, 0.0

    def stop(self):
        # A stopped process's monotonic clock runs on; the active clock does not.
        self._jump += self.STOP_S
        self.stopped_s += self.STOP_S

    def now(self):
        return time.monotonic() + self._jump - self.stopped_s


def test_the_runner_records_stops_apart_from_wall_time(emodb_wavs, tmp_path, monkeypatch):
    manifest = emodb_manifest(emodb_wavs, tmp_path, ("03", "08", "09"), 2)
    stopping = _StoppingClock()
    monkeypatch.setitem(clock._CLOCK, os.getpid(), stopping)

    class StopOnce(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            stopping.stop()

    def factory(recipe, fold, fold_dir):
        return [StopOnce()]

    training.register_callback_factory(factory)
    began = time.monotonic()
    try:
        run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "run", folds=["speaker_03"],
                       progress=False, overrides=[f"model.name={TINY}", "train.epochs=1", "train.verbose=0",
                                                  "train.batch_size=4", "experiment.repeats=2"])
    finally:
        training.unregister_callback_factory(factory)
    elapsed = time.monotonic() - began
    fold = tmp_path / "run" / "folds" / "speaker_03"
    runs = [json.loads((fold / f"repeat_{k}" / "metrics.json").read_text()) for k in (1, 2)]
    for run in runs:
        assert run["stopped_s"] == stopping.STOP_S and 0 < run["wall_s"] < elapsed
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["stopped_s"] == 2 * stopping.STOP_S
    assert metrics["wall_s"] == pytest.approx(sum(run["wall_s"] for run in runs), abs=0.02)
    assert [r["stopped_s"] for r in metrics["per_repeat"]] == [stopping.STOP_S] * 2


def test_a_run_never_stopped_records_no_stopped_time(emodb_wavs, tmp_path):
    manifest = emodb_manifest(emodb_wavs, tmp_path, ("03", "08", "09"), 2)
    run_experiment("zhao2019_attention_blstm_fcn", corpus=manifest, out=tmp_path / "run", folds=["speaker_03"],
                   progress=False, overrides=[f"model.name={TINY}", "train.epochs=1", "train.verbose=0",
                                              "train.batch_size=4"])
    metrics = json.loads((tmp_path / "run" / "folds" / "speaker_03" / "metrics.json").read_text())
    assert "stopped_s" not in metrics and metrics["wall_s"] > 0
