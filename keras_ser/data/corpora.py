"""Corpus registry: one name per corpus (and per labelling variant).

``load_corpus(name)`` dispatches to the reader module of ``name``; readers are
imported on first use. Names with a colon carry an argument:
``"manifest:/path/to/list.csv"``.
"""

import collections
import importlib

from keras_ser.errors import DataError, ParameterError

# name -> (module under keras_ser.data, loader function, keyword arguments bound to it)
_READERS = {
    "emodb": ("emodb", "load", {}),
    # Arousal / valence derived from the categorical labels (keras_ser.data.emodb.DERIVED_DIMENSIONAL).
    "emodb_dimensional": ("emodb", "load", {"targets": "derived_dimensional"}),
    "iemocap": ("iemocap", "load", {"variant": "improvised_merged"}),
    "iemocap_dataset1": ("iemocap", "load", {"variant": "dataset1"}),
    "iemocap_dataset2": ("iemocap", "load", {"variant": "dataset2"}),
    "iemocap_improvised_dataset1": ("iemocap", "load", {"variant": "improvised_dataset1"}),
    "fau_aibo": ("fau_aibo", "load", {}),
    "afew": ("afew", "load", {}),
    "baum1s": ("baum1s", "load", {}),
    "cheavd": ("cheavd", "load", {}),
    "sewa": ("sewa", "load", {}),
    "ravdess": ("ravdess", "load", {}),
}

_MANIFEST_PREFIX = "manifest:"


def available_corpora():
    """Names accepted by :func:`load_corpus`, sorted (plus ``"manifest:PATH"`` for any CSV).

    Examples
    --------
    >>> "emodb" in available_corpora()
    True
    """
    return sorted(_READERS)


def _resolve(name):
    if not isinstance(name, str):
        raise ParameterError(f"corpus name must be a string, got {name!r}")
    if name.startswith(_MANIFEST_PREFIX):
        path = name[len(_MANIFEST_PREFIX):]
        if not path:
            raise ParameterError("corpus name 'manifest:' needs a CSV path, e.g. 'manifest:data/list.csv'")
        return importlib.import_module("keras_ser.data.manifest"), "load", {"path": path}
    if name not in _READERS:
        raise ParameterError(
            f"unknown corpus {name!r}; available: {', '.join(available_corpora())}, or 'manifest:PATH'"
        )
    module_name, function, bound = _READERS[name]
    return importlib.import_module(f"keras_ser.data.{module_name}"), function, bound


def load_corpus(name, data_dir=None, **options):
    """Load corpus ``name`` as a list of :class:`~keras_ser.data.Utterance`, sorted by id.

    Parameters
    ----------
    name : str
        One of :func:`available_corpora` or ``"manifest:PATH"``.
    data_dir : str or path-like, optional
        Data root (or the corpus folder itself); see :func:`keras_ser.paths.corpus_dir`.
        Ignored by ``manifest:``, whose paths are relative to the CSV.
    **options
        Passed to the corpus reader (e.g. ``download_if_missing=False`` for EMO-DB).

    Raises
    ------
    ParameterError
        Unknown name.
    DataError
        The corpus is missing (the message names the expected folder) or malformed.

    Examples
    --------
    >>> utts = load_corpus("emodb", "/work/shared/data")  # doctest: +SKIP
    >>> len(utts)  # doctest: +SKIP
    535
    """
    module, function, bound = _resolve(name)
    loader = getattr(module, function)
    if name.startswith(_MANIFEST_PREFIX):
        utterances = loader(**bound, **options)
    else:
        utterances = loader(data_dir, **bound, **options)
    return sorted(utterances, key=lambda u: u.id)


def label_names(name):
    """Canonical class names of corpus ``name`` in model output order.

    For SEWA, whose labels are continuous, the names of the regression outputs
    (arousal, valence, liking). For ``manifest:PATH``, the sorted distinct labels
    of the CSV (the file is read).

    Examples
    --------
    >>> label_names("emodb")
    ['anger', 'boredom', 'disgust', 'fear', 'happiness', 'sadness', 'neutral']
    """
    module, _, bound = _resolve(name)
    if name.startswith(_MANIFEST_PREFIX):
        return module.label_names(bound["path"])
    return list(module.label_names(**bound)) if callable(getattr(module, "label_names", None)) else list(module.LABELS)


def class_weights(labels, label_names):
    """Class weights ``r_k = N / N_k`` of zhao2019, eq. 11.

    Parameters
    ----------
    labels : iterable of str
        Training labels (one per utterance).
    label_names : list of str
        Class names in model output order.

    Returns
    -------
    dict
        ``{class index: N / N_k}`` for every class of ``label_names``, ready for
        ``keras.Model.fit(class_weight=...)``.

    Raises
    ------
    DataError
        A label is not in ``label_names``, or a class has no example (its weight
        would be infinite).

    Examples
    --------
    >>> class_weights(["a", "a", "a", "b"], ["a", "b"])
    {0: 1.3333333333333333, 1: 4.0}
    """
    label_names = list(label_names)
    counts = collections.Counter(labels)
    unknown = sorted(set(counts) - set(label_names))
    if unknown:
        raise DataError(f"class_weights: labels {unknown} are not among the classes {label_names}")
    empty = [name for name in label_names if counts[name] == 0]
    if empty:
        raise DataError(f"class_weights: no training example of class(es) {empty}")
    total = sum(counts.values())
    return {index: total / counts[name] for index, name in enumerate(label_names)}
