"""Feature caches on disk: one row (or frame matrix) per audio file, extracted once per run.

:class:`FeatureCache` keeps utterance-level feature vectors, :class:`FrameCache` frame
matrices of any length (the openSMILE LLDs of zhao2019's SVM rows). Both key every row by
the audio file itself (:func:`file_key`), so a replaced or edited file is extracted again,
and write their files atomically (:func:`keras_ser.experiments.run_dir.atomic_path`).
Used by :mod:`keras_ser.svm` and :mod:`keras_ser.extraction.lld_statistics`.
"""

import hashlib
import json
import pathlib

import numpy as np

from keras_ser.errors import DataError
from keras_ser.experiments.run_dir import atomic_path


def _cache_key(spec):
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


#: What a cached row is keyed by (written into every cache manifest).
FILE_KEY = "size + modification time (ns) + absolute path of the audio file"


def file_key(path):
    """The cache key of one audio file: ``"SIZE:MTIME_NS:ABSOLUTE_PATH"`` (:data:`FILE_KEY`).

    Replacing or editing a file changes its size or modification time, so its
    cached features are no longer found. A missing file gets ``"missing:PATH"``
    (its extraction then fails with the loader's error).
    """
    path = pathlib.Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        return f"missing:{path}"
    return f"{stat.st_size}:{stat.st_mtime_ns}:{path}"


def _atomic_write(path, write):
    """Call ``write(handle)`` on a temporary file beside ``path`` that replaces ``path`` once written."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        write(handle)


class FeatureCache:
    """Utterance-level features of one corpus and one extractor setting, stored as ``.npz``.

    Folds of a leave-one-speaker-out run share the file, so each audio file is
    extracted once per run; only files not yet stored are extracted. Rows are
    keyed by the audio file's size, modification time and absolute path
    (:func:`file_key`), not by the utterance id or path alone, so a replaced file
    is extracted again. The key is visible in ``<name>-<hash>.json`` beside the
    ``.npz``: the extractor setting (``spec``), the key rule and, per row, the
    utterance id, path, size and modification time it was computed from.

    Parameters
    ----------
    directory : path-like
        Where the cache file lives (created if missing).
    spec : dict
        Everything that determines the features (extractor name and options,
        corpus); hashed into the file name together with the key rule.
    """

    _memory = {}

    def __init__(self, directory, spec):
        self.directory = pathlib.Path(directory)
        name = str(spec.get("features", "features")).replace(":", "_").replace("/", "_")[:40]
        self.path = self.directory / f"{name}-{_cache_key({'spec': spec, 'key': FILE_KEY})}.npz"
        self.manifest_path = self.path.with_suffix(".json")
        self.spec = spec

    def get(self, utterances, extract_fn):
        """Features of ``utterances`` in order, calling ``extract_fn(missing)`` for new or changed files.

        ``extract_fn`` takes a list of utterances and returns an array [n, d].
        """
        table = self._load()
        keys = [file_key(u.path) for u in utterances]
        missing, seen = [], set()
        for key, utterance in zip(keys, utterances):
            if key not in table and key not in seen:
                seen.add(key)
                missing.append(utterance)
        if missing:
            values = self._checked(extract_fn(missing), len(missing))
            table.update((file_key(u.path), (u.id, row)) for u, row in zip(missing, values))
            self._save(table)
        return self._assemble([table[key][1] for key in keys])

    def _checked(self, values, count):
        values = np.asarray(values, dtype=np.float32)
        if values.shape[0] != count:
            raise DataError(f"extractor returned {values.shape[0]} rows for {count} utterances")
        return values

    def _assemble(self, rows):
        return np.stack(rows)

    def _arrays(self, rows):
        """The ``.npz`` arrays that store ``rows`` (read back by :meth:`_rows`)."""
        return {"features": np.stack(rows)}

    def _rows(self, data):
        return list(data["features"])

    def _load(self):
        if self.path in self._memory:
            return self._memory[self.path]
        table = {}
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    table = dict(zip(data["keys"].tolist(), zip(data["ids"].tolist(), self._rows(data))))
            except (OSError, ValueError, KeyError) as error:
                raise DataError(f"feature cache {self.path} is unreadable ({error}); delete it to rebuild") from None
        self._memory[self.path] = table
        return table

    def _save(self, table):
        self.directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(table)
        _atomic_write(self.path, lambda handle: np.savez(
            handle, keys=np.array(keys), ids=np.array([table[k][0] for k in keys]),
            spec=json.dumps(self.spec, sort_keys=True, default=str), **self._arrays([table[k][1] for k in keys])))
        entries = []
        for key in keys:
            size, mtime, path = key.split(":", 2) if not key.startswith("missing:") else (None, None, key[8:])
            entries.append({"id": table[key][0], "path": path, "size": None if size is None else int(size),
                            "mtime_ns": None if mtime is None else int(mtime)})
        manifest = {"spec": self.spec, "key": FILE_KEY, "features": self.path.name, "entries": entries}
        _atomic_write(self.manifest_path, lambda handle: handle.write(
            json.dumps(manifest, indent=1, sort_keys=True, default=str).encode()))


class FrameCache(FeatureCache):
    """A :class:`FeatureCache` of frame matrices: one ``[frames, d]`` array per file, lengths may differ.

    ``extract_fn`` returns a list of matrices and :meth:`get` a list in the order
    of the utterances. The ``.npz`` holds the frames of all files one after another
    (``features``) and each file's frame count (``lengths``).
    """

    def _checked(self, values, count):
        values = [np.asarray(v, dtype=np.float32) for v in values]
        if len(values) != count:
            raise DataError(f"extractor returned {len(values)} matrices for {count} utterances")
        if any(v.ndim != 2 or v.shape[1] != values[0].shape[1] for v in values):
            raise DataError(f"extractor returned matrices of shapes {sorted({v.shape for v in values})}; "
                            "need [frames, d] with one d")
        return values

    def _assemble(self, rows):
        return list(rows)

    def _arrays(self, rows):
        return {"features": np.concatenate(rows), "lengths": np.array([len(r) for r in rows], np.int64)}

    def _rows(self, data):
        return np.split(data["features"], np.cumsum(data["lengths"])[:-1])
