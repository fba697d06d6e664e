"""CHEAVD 2.0 reader (MEC 2017), eight classes, train / val / test (zhao2018 Sec. 4).

Layout under ``<data dir>/cheavd/``::

    train/<name>.wav   val/<name>.wav   test/<name>.wav
    train.csv          val.csv          test.csv       header "name,emotion"

Emotions are the eight of zhao2018 Table 1, accepted as the paper's abbreviations
(Ang, Dis, Hap, Sad, Sup, Anx, Wor, Neu) or English words, case-insensitive.
A partition without a label file (the challenge's test set) is skipped; with no
test labels, the "official" protocol tests on val, as zhao2018 does. Clips come from
films and TV with no speaker list, so ``speaker`` is ``None``.
"""

import csv

from keras_ser.data._common import missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "cheavd"
LABELS = ["anger", "disgust", "happiness", "sadness", "surprise", "anxiety", "worry", "neutral"]
CODES = {"ang": "anger", "dis": "disgust", "hap": "happiness", "sad": "sadness", "sup": "surprise",
         "anx": "anxiety", "wor": "worry", "neu": "neutral", "angry": "anger", "happy": "happiness",
         "surprised": "surprise", "anxious": "anxiety", "worried": "worry"}
CODES.update({name: name for name in LABELS})
PARTITIONS = {"train": "train", "val": "validation", "test": "test"}


def load(data_dir=None):
    """Load the labelled CHEAVD 2.0 partitions.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> sorted({u.split for u in utts})  # doctest: +SKIP
    ['train', 'validation']
    """
    root = corpus_dir(NAME, data_dir)
    if not (root / "train.csv").is_file():
        raise missing_corpus_error(NAME, root / "train.csv",
                                   "Put train/ val/ test/ audio folders and train.csv, val.csv there",
                                   data_dir=data_dir)
    utterances = []
    for folder, split in PARTITIONS.items():
        label_file = root / f"{folder}.csv"
        if not label_file.is_file():
            continue
        with open(label_file, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"name", "emotion"} <= set(reader.fieldnames or []):
                raise DataError(f"{label_file}: needs columns name, emotion; found {reader.fieldnames}")
            for number, row in enumerate(reader, 2):
                code = row["emotion"].strip().lower()
                if code not in CODES:
                    raise DataError(f"{label_file}, line {number}: unknown emotion {row['emotion']!r}")
                stem = row["name"].strip()
                stem = stem[:-4] if stem.endswith(".wav") else stem
                wav = root / folder / f"{stem}.wav"
                if not wav.is_file():
                    raise DataError(f"CHEAVD: missing audio {wav} (listed in {label_file}, line {number})")
                utterances.append(Utterance(id=f"{folder}/{stem}", path=wav, label=CODES[code],
                                            speaker=None, split=split, corpus=NAME))
    if not any(u.split == "validation" for u in utterances):
        raise DataError(f"CHEAVD: no labelled validation partition ({root / 'val.csv'})")
    return utterances
