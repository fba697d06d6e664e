"""SEWA (AVEC 2017 Affect sub-challenge) reader: continuous arousal, valence, liking (tzirakis2021).

Layout of the AVEC 2017 package under ``<data dir>/sewa/``::

    audio/Train_01.wav ... Train_34.wav, Devel_01.wav ... Devel_14.wav, Test_01.wav ...
    labels/Train_01.csv ...

Each label file has one row per 100 ms frame, fields separated by ``;``:
``instance name; time in s; arousal; valence; liking`` (a header row, and rows
without the instance name, ``time; arousal; valence; liking``, are accepted).
The prefix gives the partition: Train -> "train", Devel -> "validation",
Test -> "test"; recordings without a label file (the challenge test set) are
skipped. Each recording is one participant, so ``speaker`` is the recording id;
the two partners of a conversation are in the same partition by design (tzirakis2021
Sec. 4: 17 / 7 / 8 pairs). ``label`` is ``None``; ``continuous`` maps
``"arousal"``, ``"valence"``, ``"liking"`` to ``(times, values)`` float arrays.

Text, both optional (a recording without the files gets ``None``)::

    transcriptions/Train_01.csv   turn-level transcription of the AVEC 2017 package
    words/Train_01.csv            word timings

``transcriptions/``: one turn per line, ``start;end;'text'`` (seconds; the text
in single quotes, as the AVEC 2017 files and the tzirakis2021 authors' reader
``speech2vec/speech2word_mapping.py`` have it). Turns that are only ``<filler>``
are skipped; the others, joined with spaces, are ``transcript``.

``words/``: SEWA has no word-level timings of its own; tzirakis2021's authors
obtained them by forced alignment of each turn (aeneas), writing one word per line
as ``id;start;end;word`` (e.g. ``s0w1;12.3400;12.5600;hallo``, times in seconds
from the start of the recording). That layout, or ``start;end;word`` without the
id, is read into ``words`` = ``((word, start, end), ...)``; a header line is
allowed, empty lines are ignored, and words must not start before the previous
one.
"""

import numpy as np

from keras_ser.data._common import missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "sewa"
LABELS = ["arousal", "valence", "liking"]  # regression outputs, in order
PARTITIONS = {"Train": "train", "Devel": "validation", "Test": "test"}


def read_labels(path):
    """``{"arousal": (times, values), "valence": ..., "liking": ...}`` from one label file."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = [f.strip() for f in line.replace(",", ";").split(";") if f.strip() != ""]
        if not fields:
            continue
        if len(fields) == 5:
            fields = fields[1:]
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            if number == 1:
                continue  # header row
            raise DataError(f"SEWA labels {path}, line {number}: cannot parse {line!r}") from None
        if len(fields) != 4:
            raise DataError(f"SEWA labels {path}, line {number}: expected time;arousal;valence;liking, got {line!r}")
    if not rows:
        raise DataError(f"SEWA labels {path}: no frames")
    table = np.asarray(rows, dtype=np.float64)
    if np.any(np.diff(table[:, 0]) <= 0):
        raise DataError(f"SEWA labels {path}: time stamps are not increasing")
    return {name: (table[:, 0], table[:, k + 1]) for k, name in enumerate(LABELS)}


def read_transcription(path):
    """The turns of one ``transcriptions/`` file, joined with spaces (``<filler>`` turns skipped)."""
    turns = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(";", 2)
        try:
            float(fields[0]), float(fields[1])
            text = fields[2].strip().strip("'").strip()
        except (ValueError, IndexError):
            if number == 1:
                continue  # header row
            raise DataError(f"SEWA transcription {path}, line {number}: expected start;end;'text', "
                            f"got {line!r}") from None
        if text and text != "<filler>":
            turns.append(text)
    return " ".join(turns) if turns else None


def read_words(path):
    """``((word, start_s, end_s), ...)`` from one ``words/`` file (``[id;]start;end;word`` lines)."""
    words = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = [f.strip() for f in line.split(";")]
        if not line.strip():
            continue
        if len(fields) == 4:
            fields = fields[1:]
        try:
            if len(fields) != 3 or not fields[2]:
                raise ValueError
            start, end, word = float(fields[0]), float(fields[1]), fields[2]
        except ValueError:
            if number == 1 and not words:
                continue  # header row
            raise DataError(f"SEWA word timings {path}, line {number}: expected [id;]start;end;word, "
                            f"got {line!r}") from None
        if not 0 <= start <= end:
            raise DataError(f"SEWA word timings {path}, line {number}: need 0 <= start <= end, got {line!r}")
        if words and start < words[-1][1]:
            raise DataError(f"SEWA word timings {path}, line {number}: {word!r} starts before the "
                            f"previous word")
        words.append((word, start, end))
    return tuple(words) if words else None


def _optional(path, reader):
    return reader(path) if path.is_file() else None


def load(data_dir=None):
    """Load the labelled SEWA recordings of AVEC 2017.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> times, arousal = utts[0].continuous["arousal"]  # doctest: +SKIP
    """
    root = corpus_dir(NAME, data_dir)
    audio_dir = root / "audio"
    if not audio_dir.is_dir():
        raise missing_corpus_error(NAME, audio_dir, "Put the AVEC 2017 SEWA audio/ and labels/ folders there",
                                   data_dir=data_dir)
    utterances = []
    for wav in sorted(audio_dir.glob("*.wav")):
        prefix = wav.stem.split("_")[0]
        if prefix not in PARTITIONS:
            raise DataError(f"SEWA: {wav} does not start with Train_, Devel_ or Test_")
        label_file = root / "labels" / f"{wav.stem}.csv"
        if not label_file.is_file():
            if prefix == "Test":
                continue
            raise DataError(f"SEWA: missing label file {label_file} for {wav}")
        utterances.append(Utterance(id=wav.stem, path=wav, label=None, speaker=wav.stem,
                                    split=PARTITIONS[prefix], continuous=read_labels(label_file),
                                    corpus=NAME,
                                    transcript=_optional(root / "transcriptions" / f"{wav.stem}.csv",
                                                         read_transcription),
                                    words=_optional(root / "words" / f"{wav.stem}.csv", read_words)))
    if not utterances:
        raise DataError(f"SEWA: no labelled recordings in {audio_dir}")
    return utterances
