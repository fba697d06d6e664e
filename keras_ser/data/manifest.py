"""Generic CSV manifest: ``load_corpus("manifest:PATH")``.

The CSV has a header with at least ``path``, ``label``, ``speaker`` and
optionally ``gender`` (female/male/f/m), ``session``, ``split``
(train/validation/test; val, dev, devel accepted), ``id`` and ``transcript``.
Relative paths are resolved against the CSV's folder. Empty optional cells are
``None``. Without an ``id`` column the id is the ``path`` cell.

The file is read as UTF-8; a byte-order mark (as spreadsheet programs write) is
ignored. Every error is a ``DataError`` naming the manifest (and the line): a
missing file or column, an empty required cell, a listed audio file that does
not exist, an unknown gender or split, no rows, a file that is not UTF-8 text,
and two rows with one id or one audio file (a file listed twice could land in
the training and the test set of one fold). A manifest defines its own classes
(its sorted distinct labels), so no label is unknown to it; a label that only one
speaker has leaves the training set of that speaker's fold without the class,
which the training run reports as an error naming the class.
"""

import csv
import pathlib

from keras_ser.data.records import Utterance
from keras_ser.errors import DataError

REQUIRED = ("path", "label", "speaker")
GENDERS = {"f": "female", "female": "female", "m": "male", "male": "male"}
SPLITS = {"train": "train", "validation": "validation", "val": "validation", "dev": "validation",
          "devel": "validation", "test": "test"}


def _rows(path):
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"manifest {path} not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"manifest {path}: missing column(s) {missing}; found {reader.fieldnames}")
            return path, list(enumerate(reader, 2))
    except UnicodeDecodeError as error:
        raise DataError(f"manifest {path} is not UTF-8 text ({error.reason} at byte {error.start}): "
                        "is it an audio or binary file?") from None


def label_names(path):
    """Sorted distinct labels of the manifest."""
    _, rows = _rows(path)
    return sorted({row["label"].strip() for _, row in rows})


def load(path):
    """Read the manifest at ``path`` into :class:`~keras_ser.data.Utterance` records.

    Examples
    --------
    >>> utts = load("my_corpus/list.csv")  # doctest: +SKIP
    """
    path, rows = _rows(path)
    utterances, lines = [], {}
    for number, row in rows:
        def cell(name):
            value = (row.get(name) or "").strip()
            return value or None

        for column in REQUIRED:
            if cell(column) is None:
                raise DataError(f"manifest {path}, line {number}: empty {column!r}")
        audio = pathlib.Path(cell("path")).expanduser()
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            raise DataError(f"manifest {path}, line {number}: audio file {audio} not found")
        first = lines.setdefault(audio.resolve(), number)
        if first != number:
            raise DataError(f"manifest {path}, line {number}: audio file {audio} is already listed on line {first}")
        gender = cell("gender")
        if gender is not None:
            if gender.lower() not in GENDERS:
                raise DataError(f"manifest {path}, line {number}: gender {gender!r} is not female/male/f/m")
            gender = GENDERS[gender.lower()]
        split = cell("split")
        if split is not None:
            if split.lower() not in SPLITS:
                raise DataError(f"manifest {path}, line {number}: split {split!r} is not train/validation/test")
            split = SPLITS[split.lower()]
        utterances.append(Utterance(
            id=cell("id") or cell("path"), path=audio, label=cell("label"), speaker=cell("speaker"),
            gender=gender, session=cell("session"), split=split, transcript=cell("transcript"),
            corpus=f"manifest:{path}",
        ))
    if not utterances:
        raise DataError(f"manifest {path}: no rows")
    ids = [u.id for u in utterances]
    if len(set(ids)) != len(ids):
        raise DataError(f"manifest {path}: duplicate ids, e.g. {next(i for i in ids if ids.count(i) > 1)!r}")
    return utterances
