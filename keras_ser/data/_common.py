"""Helpers shared by the corpus readers: clear errors for missing data, checked downloads."""

import hashlib
import logging
import pathlib
import zipfile

from keras_ser.errors import DataError
from keras_ser.paths import ENV_VAR, tried

logger = logging.getLogger(__name__)


def missing_corpus_error(name, expected, hint, reason=None, *, data_dir=None):
    """A :class:`DataError` saying which folder is missing, where it was looked for, and how to fill it.

    ``data_dir`` is the reader's argument: the message says how the data root was
    set and, for a relative one, every absolute path tried (:func:`keras_ser.paths.tried`).
    """
    message = f"corpus {name!r} not found: expected {expected}"
    if reason:
        message += f" ({reason})"
    message += f" [{tried(name, data_dir)}]"
    message += (
        f". {hint}, or point {ENV_VAR} (or data_dir=) at the folder that holds {name}/."
    )
    return DataError(message)


def require_file(path, what="file"):
    """Return ``path`` if it is a file, else raise a :class:`DataError` naming it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"missing {what}: {path}")
    return path


def file_digest(path, algorithm):
    """Hex digest of a file (``"sha256"`` or ``"md5"``), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_archive(url, target, fname, layout, file_hash=None):
    """Fetch the zip at ``url`` into the folder ``target`` and extract it there.

    The download is ``keras.utils.get_file(..., file_hash=file_hash)``: a SHA-256
    (64 hex digits) or MD5 (32) hash the archive must match. On a mismatch the archive
    is deleted and a :class:`DataError` gives both hashes; without ``file_hash`` the
    archive's SHA-256 is logged (``logging`` WARNING), to pin it next time. The archive
    is removed once extracted. ``layout`` is a glob (``"wav"``, ``"Actor_*"``) that must
    match at the top of ``target`` afterwards; an archive that wraps it in one folder is
    unwrapped.

    Parameters
    ----------
    url : str
        Any URL ``urllib`` opens (``https://``, ``file://``).
    target : path-like
        The corpus folder (``<data root>/<name>``); created if missing.
    fname : str
        File name of the archive inside ``target`` while it is extracted.
    layout : str
    file_hash : str, optional

    Raises
    ------
    DataError
        Hash mismatch, or an archive without ``layout``.
    """
    import keras  # deferred: keras_ser.data stays importable without TensorFlow

    target = pathlib.Path(target)
    target.mkdir(parents=True, exist_ok=True)
    algorithm = None if file_hash is None else ("sha256" if len(file_hash) == 64 else "md5")
    try:
        archive = pathlib.Path(keras.utils.get_file(
            fname=fname, origin=url, file_hash=file_hash, hash_algorithm=algorithm or "auto",
            cache_dir=str(target.parent), cache_subdir=target.name,
        ))
    except ValueError as error:
        archive = target / fname
        if file_hash is None or not archive.is_file():
            raise
        actual = file_digest(archive, algorithm)
        archive.unlink()
        raise DataError(f"the archive downloaded from {url} has {algorithm} {actual}, not the expected "
                        f"file_hash {file_hash}; it was deleted") from error
    if file_hash is None:
        logger.warning("%s downloaded without a hash check; its sha256 is %s (pass file_hash= to check it)",
                       url, file_digest(archive, "sha256"))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    archive.unlink()
    if not any(target.glob(layout)):
        nested = [path.parent for path in target.glob(f"*/{layout}")]
        if len(set(nested)) != 1:
            raise DataError(f"the archive from {url} has no {layout} at its top or in one folder; "
                            f"see what it unpacked in {target}")
        for item in nested[0].iterdir():
            item.rename(target / item.name)
        nested[0].rmdir()
