"""The files to extract from: corpus names, manifests, directories, single files (:func:`resolve_inputs`).

Inputs (``--input`` of ``python -m keras_ser.extract``): a corpus name known to
:func:`keras_ser.data.load_corpus` (``emodb``), ``manifest:PATH`` or a CSV manifest
file, a corpus directory whose folder name is a corpus name (``/data/emodb``) -- these
give labels and utterance ids -- or one audio file or any other directory, whose audio
files (``.wav .flac .ogg``, recursively) are extracted *without labels* (the label
column holds ``?``) and named by their relative path (a single file by its name). A
file that is neither audio nor a UTF-8 text manifest is a ``DataError`` naming it.

Imports :mod:`keras_ser.errors`; :mod:`keras_ser.data` and soundfile when resolving.
"""

import dataclasses
import pathlib

from keras_ser.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclasses.dataclass
class Item:
    """One input file: ``name`` (row name), ``path``, ``label`` and ``speaker`` (None if unknown)."""

    name: str
    path: pathlib.Path
    label: object = None
    speaker: object = None


def resolve_inputs(spec, data_dir=None):
    """Files and labels of ``--input``.

    Parameters
    ----------
    spec : str or path-like
        Corpus name, ``manifest:PATH``, a manifest file, a corpus directory, one
        audio file or a plain directory of audio files (no labels).

    Returns
    -------
    items : list of Item
    label_names : list of str or None
        The corpus's class order; None for a plain directory.
    """
    from keras_ser import data

    text = str(spec)
    path = pathlib.Path(text).expanduser()
    corpora = set(data.available_corpora())
    corpus = None
    if text.startswith("manifest:") or (text in corpora and not path.exists()):
        corpus, directory = text, data_dir
    elif path.is_file():
        if _is_audio(path):
            return [Item(path.name, path)], None
        if not _is_text(path):
            raise DataError(f"--input {path} is neither an audio file ({', '.join(AUDIO_SUFFIXES)} or another "
                            "format libsndfile reads) nor a CSV manifest (UTF-8 text with a header)")
        corpus, directory = f"manifest:{path}", None
    elif path.is_dir() and path.name in corpora:
        corpus, directory = path.name, path
    if corpus is not None:
        utterances = data.load_corpus(corpus, data_dir=directory)
        names = data.label_names(corpus) if not corpus.startswith("manifest:") else sorted(
            {u.label for u in utterances})
        return [Item(u.id, pathlib.Path(u.path), u.label, u.speaker) for u in utterances], list(names)
    if not path.is_dir():
        raise DataError(f"--input {text!r} is not a corpus name ({', '.join(sorted(corpora))}), "
                        "a manifest file or a directory")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {path}")
    return [Item(str(p.relative_to(path)), p) for p in files], None


def _is_audio(path):
    """An audio suffix, or a file libsndfile recognises (a broken ``.wav`` counts: load names it)."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return True
    import soundfile

    try:
        soundfile.info(str(path))
    except Exception:  # libsndfile raises several types for what it cannot read
        return False
    return True


def _is_text(path, probe=65536):
    with open(path, "rb") as handle:
        head = handle.read(probe)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # A multi-byte character may be cut at the end of the probe.
        if error.start < len(head) - 3:
            return False
        text = head[:error.start].decode("utf-8-sig")
    return "\x00" not in text



def as_item(item):
    """``item`` as an :class:`Item`: an Item, an utterance record (``.id``, ``.path``, ...) or a path."""
    if isinstance(item, Item):
        return item
    if hasattr(item, "path") and hasattr(item, "id"):
        return Item(str(item.id), pathlib.Path(item.path), getattr(item, "label", None),
                    getattr(item, "speaker", None))
    path = pathlib.Path(item)
    return Item(path.name, path)
