"""Resuming a run directory safely: the lock, the corpus fingerprint, the environment record, config checks.

A run directory (:mod:`keras_ser.experiments.run_dir`) may be resumed, after a crash or
on another day, only by one process at a time (:class:`RunLock`) and only under the
configuration and corpus it was started with: :func:`check_config` compares the new
run's ``config.json`` with the recorded one (:func:`config_differences`, which lets the
keys of :data:`RESUMABLE_KEYS` and the descriptive text of :data:`DESCRIPTIVE_KEYS`
change) and the corpus with its :func:`corpus_fingerprint` (paths, labels, speakers, file
sizes and content digests).

Imports :mod:`~keras_ser.experiments.run_dir` only, of this package (not Keras).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import sys
import time

from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.run_dir import RunDir, json_default, read_json, write_json
from keras_ser.recipe import SCHEMA

#: Config keys that may differ between a run and its resumption.
# "environment" (versions, commit, machine) is rewritten by every call: a run may be resumed
# after an upgrade or on another machine, and config.json then shows the latest.
RESUMABLE_KEYS = ("strategy", "folds", "progress", "environment")

#: Dotted ``config.json`` keys that describe or display a run without changing what it computes:
#: the recipe's citation and description, the paper's figures and notes, Keras' verbosity in
#: every schema table that has one (``[train]``, and a two-stage run's ``[stage1]`` and
#: ``[encoder]``), and how often a fit saves its state (``experiment.checkpoint_minutes``). A
#: run resumes when only these changed (a citation corrected, a figure added, a quieter log,
#: also when set by a command-line override, a fusion member's ``<name>:`` one included), and
#: config.json then shows the new values.
DESCRIPTIVE_KEYS = ("recipe.recipe.paper", "recipe.recipe.description", "recipe.paper",
                    "recipe.experiment.checkpoint_minutes") + tuple(
    f"recipe.{table}.verbose" for table, keys in SCHEMA.items() if "verbose" in keys)

#: Top-level keys that configs recorded before them lack, and the value such a run had (no front-end
#: fix had changed its inputs: revision 1 of :data:`keras_ser.frontend.presets.REVISIONS`).
RECORDED_DEFAULTS = {"frontend_revision": 1}
_REVISED = ("the front end's code has changed what these settings compute since the recorded folds were computed "
            "(keras_ser.frontend.presets.REVISIONS); finish them with a checkout of the code that computed them")


# ---------------------------------------------------------------------------- lock


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive lock of a run directory: one process runs on it at a time.

    ``RUN_DIR/.lock`` is held with ``flock`` (released by the kernel when its process
    ends, however it ends) and records the holder's process id, host and start
    time for the messages. A second process fails at once with a
    :class:`~keras_ser.errors.ParameterError` naming the holder. A lock file left by
    a process that was killed is taken over, with a note on stderr.

    Parameters
    ----------
    root : path-like
        The run directory (created if missing).

    Examples
    --------
    >>> with RunLock("runs/x"):            # doctest: +SKIP
    ...     pass                           # train, write reports
    """

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.path = RunDir(root).lock
        self._fd = None

    @staticmethod
    def _holder(fd):
        try:
            data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def __enter__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise ParameterError(
                    f"run directory {self.root} is in use by process {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')} (since {holder.get('started', '?')}); wait for it to end "
                    "or choose another --out"
                ) from None
            # The holder we waited on may have removed the file before letting go: then lock the new one.
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)
        previous = self._holder(fd)
        pid = previous.get("pid")
        if isinstance(pid, int) and pid != os.getpid():
            state = ("no longer running" if not _pid_running(pid) or previous.get("host") != os.uname().nodename
                     else "no longer holding it")
            print(f"note: {self.path} was left by process {pid} ({state}); taking the run directory over",
                  file=sys.stderr)
        record = json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        # Removed while still held, so that no other process can lock this file after we let go.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        return False


# ---------------------------------------------------------------------------- resume


def file_digest(path):
    """The BLAKE2b digest (hex, 16 bytes) of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def corpus_fingerprint(utterances):
    """What a run's results depend on in its corpus: each utterance's path, label, speaker, size and content.

    The content is a digest of the file's bytes, not its modification time: a copy of the
    corpus on another machine (or a restored backup) keeps its content and loses its times,
    and a run must resume there; a file edited in place keeps its size and changes its digest.

    Returns
    -------
    dict
        ``sha256`` of the records and ``utterances``: ``[id, path, label, speaker,
        size, mtime_ns, digest]`` per utterance, sorted by id (``mtime_ns`` is recorded,
        not compared).

    Raises
    ------
    DataError
        An utterance's file cannot be read.
    """
    records = []
    for u in utterances:
        try:
            stat = os.stat(u.path)
            digest = file_digest(u.path)
        except OSError as error:
            raise DataError(f"{u.path} (utterance {u.id}): {error.strerror}") from None
        records.append([str(u.id), str(u.path), u.label, u.speaker, stat.st_size, stat.st_mtime_ns, digest])
    records.sort(key=lambda r: r[0])
    return fingerprint_of(records)


def fingerprint_of(records):
    """A corpus fingerprint of utterance ``records``: their ``sha256`` beside them."""
    return {"sha256": hashlib.sha256(json.dumps(records).encode()).hexdigest(), "utterances": records}


def corpus_changes(old, new, *, paths=True):
    """Lines saying how corpus fingerprint ``new`` differs from ``old``; empty if it does not.

    Utterance ids, labels and speakers are compared, and each file's content: its size and
    digest where both records have a digest. Records written before fingerprints held
    digests ([id, path, label, speaker, size, mtime_ns]) are compared by size and
    modification time when ``paths`` (a run directory, resumed where it was written, where
    an unchanged file keeps its time) and by size alone otherwise.

    Parameters
    ----------
    old, new : dict
        :func:`corpus_fingerprint` results.
    paths : bool
        Also compare the files' paths: True for a run directory; False for ``results/``,
        which travels between machines (:mod:`keras_ser.experiments.results`).

    Examples
    --------
    >>> a = {"utterances": [["u1", "/a/u1.wav", "anger", "03", 10, 5, "00ff"]]}
    >>> b = {"utterances": [["u1", "/b/u1.wav", "fear", "03", 10, 7, "00ff"]]}
    >>> corpus_changes(a, b)
    ['u1: path /a/u1.wav -> /b/u1.wav', 'u1: label anger -> fear']
    >>> corpus_changes(a, b, paths=False)
    ['u1: label anger -> fear']
    """
    old_by, new_by = {r[0]: r for r in old["utterances"]}, {r[0]: r for r in new["utterances"]}
    changes = [f"{i}: removed" for i in sorted(set(old_by) - set(new_by))]
    changes += [f"{i}: added" for i in sorted(set(new_by) - set(old_by))]
    fields = ((1, "path"),) * paths + ((2, "label"), (3, "speaker"))
    for i in sorted(set(old_by) & set(new_by)):
        before, after = old_by[i], new_by[i]
        changes += [f"{i}: {field} {before[k]} -> {after[k]}" for k, field in fields if before[k] != after[k]]
        if paths and before[1] != after[1]:
            continue  # another file: its content is not this one's
        if len(before) > 6 and len(after) > 6:
            what, content = "content", (4, 6)
        else:
            what, content = ("file size or modification time", (4, 5)) if paths else ("file size", (4,))
        if [before[k] for k in content] != [after[k] for k in content]:
            changes.append(f"{i}: {what} changed ({after[1]})")
    return changes


def _flatten(value, prefix=""):
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _recorded_default(key):
    """Dotted config key ``key``'s value where it was not recorded (schema default, :data:`RECORDED_DEFAULTS`)."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "recipe" and parts[2] in SCHEMA.get(parts[1], {}):
        return SCHEMA[parts[1]][parts[2]][1]
    return RECORDED_DEFAULTS.get(key, _ABSENT)


_ABSENT = "(absent)"


def _shown(flat, key, default):
    """``key``'s value in a flattened config as a refusal shows it; if absent, what it counts as."""
    if key in flat:
        return json.dumps(flat[key])
    return _ABSENT if default == _ABSENT else f"(not recorded: {json.dumps(default)})"


def _descriptive(key):
    return any(key == d or key.startswith(d + ".") for d in DESCRIPTIVE_KEYS)


def effective_overrides(overrides):
    """The command-line overrides (``"section.key=value"``) that change what a run computes.

    An override of a :data:`DESCRIPTIVE_KEYS` key (``train.verbose=0``, or a fusion member's
    ``zhang2021_multicnn_2d:train.verbose=0``) is left out.

    Example
    -------
    >>> effective_overrides(["frontend.num_frames=201", "train.verbose=0", "m:stage1.verbose=0"])
    ['frontend.num_frames=201']
    """
    def key(override):
        return override.split("=", 1)[0].split(":", 1)[-1].strip()

    return [o for o in overrides if not (isinstance(o, str) and _descriptive("recipe." + key(o)))]


def config_differences(stored, current, ignored=RESUMABLE_KEYS):
    """Dotted keys whose values differ between two ``config.json`` dicts.

    Top-level keys in ``ignored`` and the text of :data:`DESCRIPTIVE_KEYS` are not compared,
    nor the overrides that the resolved ``recipe`` holds (all but fusion members' scoped ones).
    A recipe key that one side lacks counts as its schema default
    (:data:`keras_ser.recipe.SCHEMA`), so a run recorded before a key was added to the schema
    resumes as long as the key keeps its default; a top-level key counts as its
    :data:`RECORDED_DEFAULTS` value (``frontend_revision``: 1).

    Returns
    -------
    list of str
        ``"key: stored -> current"`` lines, sorted by key.

    Example
    -------
    >>> config_differences({"recipe": {"train": {"epochs": 2}}, "seed": 1},
    ...                    {"recipe": {"train": {"epochs": 3, "precision": "float32"}}, "seed": 1})
    ['recipe.train.epochs: 2 -> 3']
    """
    def comparable(config):
        kept = {k: v for k, v in config.items() if k not in ignored}
        if isinstance(kept.get("overrides"), list):
            # An unscoped override ("model.bn_momentum=0.9") is applied to the recipe and compared
            # there, so an override the recipe later adopted as its default resumes; a fusion
            # member's ("member:key=value") is not part of the fusion recipe and is compared here
            # (unless it only sets a verbosity).
            kept["overrides"] = [o for o in effective_overrides(kept["overrides"])
                                 if isinstance(o, str) and ":" in o.split("=", 1)[0]]
        return {k: v for k, v in _flatten(kept).items() if not _descriptive(k)}

    a, b = comparable(stored), comparable(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        default = _recorded_default(key)
        old, new = a.get(key, default), b.get(key, default)
        if old != new:
            why = f" ({_REVISED})" if key == "frontend_revision" else ""
            lines.append(f"{key}: {_shown(a, key, default)} -> {_shown(b, key, default)}{why}")
    return lines


def check_config(run_dir, config, fingerprint=None):
    """Refuse to resume ``run_dir`` under another configuration or corpus; write ``config.json``.

    Parameters
    ----------
    run_dir : path-like
    config : dict
        The run's settings; keys in :data:`RESUMABLE_KEYS` and :data:`DESCRIPTIVE_KEYS` may
        change between calls, and recipe keys added to the schema since may be absent from
        the recorded config while they keep their default (:func:`config_differences`).
    fingerprint : dict, optional
        :func:`corpus_fingerprint` of the corpus the run reads, stored as
        ``config["corpus_fingerprint"]`` (a run started before fingerprints were
        recorded gets one now).

    Raises
    ------
    ParameterError
        ``config.json`` exists and differs from ``config``: the message names every key.
    DataError
        The corpus differs from the one recorded: the message lists what changed.
    """
    path = RunDir(run_dir).config
    config = json.loads(json.dumps(config, default=json_default))
    if fingerprint is not None:
        config["corpus_fingerprint"] = fingerprint
    if path.is_file():
        old = read_json(path)
        keys = config_differences(old, config, RESUMABLE_KEYS + ("corpus_fingerprint",))
        if keys:
            raise ParameterError(
                f"{run_dir} holds a run with a different configuration (see its config.json): "
                + "; ".join(keys) + ". Resume with the same recipe, overrides and corpus, or choose another --out"
            )
        recorded = old.get("corpus_fingerprint")
        changes = corpus_changes(recorded, fingerprint) if fingerprint is not None and recorded is not None else []
        if changes:
            shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
            raise DataError(
                f"corpus {config.get('corpus')!r} has changed since the run in {run_dir} started, so its "
                f"finished folds were trained on other data ({len(changes)} change(s): {shown}). "
                f"Start afresh with another --out (or delete {run_dir}), or restore the corpus to resume"
            )
    write_json(path, config)
