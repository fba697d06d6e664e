"""Helpers shared by the corpus readers: clear errors for missing data."""

import pathlib

from keras_ser.errors import DataError
from keras_ser.paths import ENV_VAR


def missing_corpus_error(name, expected, hint, reason=None):
    """A :class:`DataError` saying which folder is missing and how to fill it."""
    message = f"corpus {name!r} not found: expected {expected}"
    if reason:
        message += f" ({reason})"
    message += (
        f". {hint}, or point {ENV_VAR} (or data_dir=) at the folder that holds {name}/."
    )
    return DataError(message)


def require_dir(name, path, hint):
    """Return ``path`` if it is a directory, else raise :func:`missing_corpus_error`."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise missing_corpus_error(name, path, hint)
    return path


def require_file(path, what="file"):
    """Return ``path`` if it is a file, else raise a :class:`DataError` naming it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"missing {what}: {path}")
    return path
