"""Where corpora live: one rule used everywhere.

An explicit ``data_dir`` argument wins, then the environment variable
``KERAS_SER_DATA``, then ``~/.keras/datasets`` (the Keras default cache).
A corpus ``name`` lives in ``<data dir>/<name>``.
"""

import os
import pathlib

ENV_VAR = "KERAS_SER_DATA"


def data_root(data_dir=None):
    """Return the data root chosen by the rule above, as a ``pathlib.Path``.

    Examples
    --------
    >>> import os
    >>> os.environ["KERAS_SER_DATA"] = "/data"
    >>> str(data_root())
    '/data'
    >>> str(data_root("/elsewhere"))
    '/elsewhere'
    """
    if data_dir is not None:
        return pathlib.Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return pathlib.Path(env).expanduser()
    return pathlib.Path("~/.keras/datasets").expanduser()


def corpus_dir(name, data_dir=None):
    """Directory of corpus ``name`` under :func:`data_root`.

    If ``data_dir`` itself is the corpus folder (its last component is ``name``),
    it is returned unchanged, so both ``data_dir=".../data"`` and
    ``data_dir=".../data/emodb"`` work.
    """
    root = data_root(data_dir)
    if root.name == name:
        return root
    return root / name
