"""Epoch checkpoints: a fit interrupted mid-way continues from its last saved epoch.

A fold's results are written when the fold (or one of its repeated runs) ends, so before
this a run stopped by a machine going down lost every epoch of the fit in progress: up to
three hours of a zhang2021_dcnn stage-1 fit with five speed factors on a CPU. Within
:func:`fit_checkpoints` (the runner opens it around each network it trains, under
``<fold>/checkpoints/``), every :func:`keras_ser.experiments.training.fit_model` call keeps
the state of its fit in ``fit_<n>.npz`` (``n`` counts the fits of the fold: a two-stage fold
fits up to three networks), saved at the end of an epoch once ``experiment.checkpoint_minutes``
have passed since the last save, and at the end of a fit that lasted that long. A rerun of
the fold loads it: a finished fit is not trained again, an unfinished one goes on from the
epoch after the saved one.

The state is everything the next epochs depend on, so that a resumed fit ends with the
weights, history and scores of an uninterrupted one (a test compares them to the bit): the
model's variables (including the dropout layers' random-generator states), the optimiser's
(its moments and step count), early stopping's best value, wait count and best weights,
the history so far, and the epoch, from which the training rows' shuffle order is replayed
(:func:`keras_ser.frontend.array_dataset`, ``skip_epochs``). The file is replaced
atomically; a checkpoint saved for another network, other settings or other training rows
is set aside with a note and the fit starts afresh. The runner deletes a fold's checkpoints
once the fold is finished (they hold weights, which results/ never does).

Each checkpoint also records the seconds its fit has trained, across the processes that
trained it (on :mod:`keras_ser.experiments.clock`, which leaves out stops); a fold's
``wall_s`` adds those of the checkpoints it restored (:attr:`FitTimes.restored_s`), so
that a fold resumed after an interruption reports the time its training took, not only the
part after the resume (the epochs after the last save that were lost and trained again
count once).
"""

import contextlib
import contextvars
import json
import os
import pathlib
import shutil
import sys
import time
import zipfile

import keras
import numpy as np

from keras_ser.errors import ParameterError
from keras_ser.experiments.clock import active_clock

#: The sub-folder of a fold (or run) folder that holds its fits' checkpoints.
CHECKPOINTS_DIR = "checkpoints"

#: The :class:`FitTimes` of the network being trained.
_CHECKPOINTS = contextvars.ContextVar("keras_ser_fit_checkpoints", default=None)


class FitTimes:
    """What a :func:`fit_checkpoints` block has: its folder, save interval, fits so far and restored time.

    Attributes
    ----------
    restored_s : float
        Seconds of training recorded in the checkpoints restored within the block: the
        earlier processes' part of its fits, which this process did not train again.
    """

    def __init__(self, directory, interval_s):
        self.directory, self.interval_s, self.fits, self.restored_s = pathlib.Path(directory), interval_s, 0, 0.0


@contextlib.contextmanager
def fit_checkpoints(directory, minutes):
    """Within the block, the n-th ``fit_model`` call keeps its state in ``directory/fit_<n>.npz``.

    Parameters
    ----------
    directory : path
        Created at the first save.
    minutes : float
        Save at the end of an epoch once this many minutes have passed since the fit
        started or was last saved; 0 saves after every epoch.

    Yields
    ------
    FitTimes
        Its ``restored_s`` is read once the block's fits have run.

    Raises
    ------
    ParameterError
        ``minutes`` is negative or not a number.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes >= 0:
        raise ParameterError(f"experiment.checkpoint_minutes must be a number >= 0, got {minutes!r}")
    times = FitTimes(directory, 60.0 * minutes)
    token = _CHECKPOINTS.set(times)
    try:
        yield times
    finally:
        _CHECKPOINTS.reset(token)


def clear_folder(folder):
    """Delete what ``folder`` holds (the folder too), except its checkpoints: an unfinished fold is redone from them."""
    folder = pathlib.Path(folder)
    if not folder.exists():
        return
    if not (folder / CHECKPOINTS_DIR).is_dir():
        shutil.rmtree(folder)
        return
    for path in folder.iterdir():
        if path.name == CHECKPOINTS_DIR:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def remove_checkpoints(folder):
    """Delete ``folder``'s checkpoints (once what they would resume is finished)."""
    shutil.rmtree(pathlib.Path(folder) / CHECKPOINTS_DIR, ignore_errors=True)


def next_fit_checkpoint(model, identity, stopper=None):
    """The :class:`FitCheckpoint` of the next fit inside :func:`fit_checkpoints`; None outside it."""
    times = _CHECKPOINTS.get()
    if times is None:
        return None
    times.fits += 1
    return FitCheckpoint(times.directory / f"fit_{times.fits}.npz", times.interval_s, model, identity, stopper,
                         times=times)


def _note(message):
    print(f"note: {message}", file=sys.stderr)


def _variable_shapes(variables):
    return [[list(v.shape), str(v.dtype)] for v in variables]


class FitCheckpoint(keras.callbacks.Callback):
    """Saves and restores the state of one ``Model.fit`` (see the module docstring).

    Placed after the validation pass and early stopping in the fit's callbacks, so that
    an epoch's logs hold the validation scores and early stopping has judged the epoch
    before it is saved.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npz`` file.
    interval_s : float
        Seconds between saves (0: every epoch).
    model : keras.Model
        The compiled model the fit trains.
    identity : dict
        JSON-able description of the fit (settings, rows, shuffle seed); a saved state
        with another identity is not used.
    stopper : keras.callbacks.EarlyStopping or None
    times : FitTimes, optional
        Told the training time a restored checkpoint records.
    """

    def __init__(self, path, interval_s, model, identity, stopper=None, times=None):
        super().__init__()
        self.path, self.interval_s, self.stopper, self.times = pathlib.Path(path), float(interval_s), stopper, times
        # Through JSON, as it is stored: tuples become lists, and so on.
        self.identity = json.loads(json.dumps(dict(identity, variables=_variable_shapes(model.variables))))
        self.record, self.initial_epoch, self._epochs, self._stopper_state = {}, 0, 0, None
        self._last_save, self._saved = None, False
        # Seconds trained before this process took the fit over (from the restored checkpoint).
        self._earlier_s, self._began = 0.0, None

    # ------------------------------------------------------------------ restore

    def restore(self, model):
        """Load a saved state into ``model``; return True if the fit had finished, False otherwise.

        After it, :attr:`initial_epoch` is the epoch to go on from and :attr:`record` the
        history of the epochs before it (0 and empty when nothing was loaded).
        """
        if not self.path.is_file():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                meta = json.loads(str(saved["meta"]))
                arrays = {key: saved[key] for key in saved.files if key != "meta"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            return self._discard(f"cannot be read ({error})")
        if meta.get("identity") != self.identity:
            return self._discard("was saved by another fit (network, settings or training rows differ)")
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self._assign(model.variables, arrays, "model")
        self._assign(optimizer.variables, arrays, "optimizer")
        self.record = meta["record"]
        self.initial_epoch = self._epochs = meta["epochs"]
        # Checkpoints written before fit_seconds was recorded count as no time.
        self._earlier_s = float(meta.get("fit_seconds", 0.0))
        if self.times is not None:
            self.times.restored_s += self._earlier_s
        if self.stopper is not None and meta["stopper"] is not None:
            state = dict(meta["stopper"])
            count = state.pop("best_weights")
            state["best_weights"] = None if count is None else [arrays[f"best/{i}"] for i in range(count)]
            self._stopper_state = state
        _note(f"{self.path}: {'finished' if meta['done'] else 'interrupted'} fit restored at epoch "
              f"{self.initial_epoch}" + ("" if meta["done"] else ", training on from there"))
        return bool(meta["done"])

    def _discard(self, reason):
        stale = self.path.with_name(self.path.stem + ".stale.npz")
        os.replace(self.path, stale)
        _note(f"{self.path} {reason}: set aside as {stale.name}; the fit starts afresh")
        return False

    @staticmethod
    def _assign(variables, arrays, prefix):
        for i, variable in enumerate(variables):
            variable.assign(arrays[f"{prefix}/{i}"])

    # ------------------------------------------------------------------ callback

    def on_train_begin(self, logs=None):
        # Runs after EarlyStopping's own on_train_begin, which resets the state restored here.
        if self._stopper_state is not None:
            for key, value in self._stopper_state.items():
                setattr(self.stopper, key, value)
        self._last_save = time.monotonic()
        self._began = active_clock().now()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.record.setdefault(key, []).append(float(value))
        self._epochs = epoch + 1
        # A fit early stopping ends now is saved as finished by on_train_end, with its best weights.
        if not self.model.stop_training and time.monotonic() - self._last_save >= self.interval_s:
            self.save(done=False)

    def on_train_end(self, logs=None):
        # A fit shorter than the interval is redone rather than written out.
        if self._saved or time.monotonic() - self._last_save >= self.interval_s:
            self.save(done=True)

    def save(self, *, done):
        """Write the state after the epochs run so far (``done``: the fit has ended) atomically."""
        model = self.model
        arrays = {f"model/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
        arrays.update({f"optimizer/{i}": keras.ops.convert_to_numpy(v)
                       for i, v in enumerate(model.optimizer.variables)})
        stopper = None
        if self.stopper is not None:
            best_weights = self.stopper.best_weights
            stopper = {"wait": int(self.stopper.wait), "stopped_epoch": int(self.stopper.stopped_epoch),
                       "best": None if self.stopper.best is None else float(self.stopper.best),
                       "best_epoch": int(self.stopper.best_epoch),
                       "best_weights": None if best_weights is None else len(best_weights)}
            arrays.update({f"best/{i}": np.asarray(w) for i, w in enumerate(best_weights or [])})
        meta = {"identity": self.identity, "epochs": self._epochs, "done": bool(done), "record": self.record,
                "stopper": stopper, "fit_seconds": self._earlier_s + active_clock().now() - self._began}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._last_save, self._saved = time.monotonic(), True
