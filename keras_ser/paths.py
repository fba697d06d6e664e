"""Where corpora live: one rule used everywhere.

An explicit ``data_dir`` argument wins, then the environment variable
``KERAS_SER_DATA``, then ``~/.keras/datasets`` (the Keras default cache).
A corpus ``name`` lives in ``<data dir>/<name>``.

A relative data root (the README's ``KERAS_SER_DATA=../shared/data``) is resolved
against, in this order, and the first place that holds the corpus wins:

1. the current directory;
2. the directory the user started from, ``$PWD``: a shell sets it, and programs it
   starts inherit it even when they change directory, as a Jupyter kernel does for a
   notebook in ``notebooks/`` when Jupyter was started from the repository root;
3. the root of the source checkout keras_ser runs from (the folder holding its
   ``setup.cfg``), where the README's commands run.

When none holds it, the corpus is expected (and EMO-DB downloaded) under the first,
and errors list every absolute path tried (:func:`tried`).
"""

import os
import pathlib

ENV_VAR = "KERAS_SER_DATA"

#: The source checkout that holds this file, when keras_ser runs from one.
CHECKOUT = pathlib.Path(__file__).resolve().parent.parent


def _configured(data_dir):
    """The data root as given (possibly relative), and where it came from."""
    if data_dir is not None:
        return pathlib.Path(data_dir).expanduser(), "data_dir"
    env = os.environ.get(ENV_VAR)
    if env:
        return pathlib.Path(env).expanduser(), ENV_VAR
    return pathlib.Path("~/.keras/datasets").expanduser(), "default"


def _bases():
    """Directories a relative data root is resolved against, in order, without repeats."""
    bases = [pathlib.Path.cwd()]
    started = os.environ.get("PWD")
    if started and os.path.isabs(started):
        bases.append(pathlib.Path(started))
    if (CHECKOUT / "setup.cfg").is_file():
        bases.append(CHECKOUT)
    unique = []
    for base in bases:
        if all(not _same(base, other) for other in unique):
            unique.append(base)
    return unique


def _same(a, b):
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def data_root_candidates(data_dir=None):
    """Absolute paths the data root may be, in the order tried (one when it is absolute).

    Examples
    --------
    >>> import os
    >>> os.environ["KERAS_SER_DATA"] = "/data"
    >>> [str(p) for p in data_root_candidates()]
    ['/data']
    """
    root, _ = _configured(data_dir)
    if root.is_absolute():
        return [root]
    return [pathlib.Path(os.path.normpath(base / root)) for base in _bases()]


def data_root(data_dir=None):
    """Return the data root chosen by the rule above, as an absolute ``pathlib.Path``.

    A relative root resolves to the first candidate that exists
    (:func:`data_root_candidates`), else to the current directory's.

    Examples
    --------
    >>> import os
    >>> os.environ["KERAS_SER_DATA"] = "/data"
    >>> str(data_root())
    '/data'
    >>> str(data_root("/elsewhere"))
    '/elsewhere'
    """
    candidates = data_root_candidates(data_dir)
    return next((path for path in candidates if path.is_dir()), candidates[0])


def corpus_dir(name, data_dir=None):
    """Absolute directory of corpus ``name`` under :func:`data_root`.

    If the data root itself is the corpus folder (its last component is ``name``),
    it is returned unchanged, so both ``data_dir=".../data"`` and
    ``data_dir=".../data/emodb"`` work. A relative root resolves to the first
    candidate that holds ``name``, else to the current directory's.
    """
    paths = _corpus_candidates(name, data_dir)
    return next((path for path in paths if path.is_dir()), paths[0])


def _corpus_candidates(name, data_dir):
    return [root if root.name == name else root / name for root in data_root_candidates(data_dir)]


def tried(name, data_dir=None):
    """For an error message: how the data root was set and, if relative, each path tried.

    Examples
    --------
    >>> tried("emodb", "/data")
    'data root /data (data_dir)'
    """
    root, source = _configured(data_dir)
    if root.is_absolute():
        return f"data root {root} ({source})"
    paths = ", ".join(str(path) for path in _corpus_candidates(name, data_dir))
    return (f"relative data root {str(root)!r} ({source}) resolved against the current directory, "
            f"$PWD and the keras_ser checkout: tried {paths}")
