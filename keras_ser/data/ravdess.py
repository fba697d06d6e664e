"""RAVDESS speech reader (Livingstone & Russo 2018): 24 actors, 8 emotions.

Layout under ``<data dir>/ravdess/``: ``Actor_01/03-01-05-01-02-01-01.wav`` ...
(the "Audio_Speech_Actors_01-24" archive). The seven two-digit fields of a
name are modality (03 = audio-only), vocal channel (01 = speech, 02 = song),
emotion, intensity (01 normal, 02 strong), statement (01 "Kids are talking by
the door", 02 "Dogs are sitting by the door"), repetition and actor (odd = male,
even = female). Only audio-only speech files are read (1 440 in the release);
song and video files found in the tree are skipped.
"""

from keras_ser.data._common import missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "ravdess"
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger",
            "06": "fear", "07": "disgust", "08": "surprise"}
LABELS = list(EMOTIONS.values())
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


def parse_name(path):
    """Fields of a RAVDESS file name; :class:`DataError` naming the file if malformed."""
    fields = path.stem.split("-")
    if len(fields) != 7 or not all(len(f) == 2 and f.isdigit() for f in fields):
        raise DataError(f"RAVDESS file {path}: name must be seven two-digit fields, e.g. 03-01-05-01-02-01-12")
    modality, channel, emotion, intensity, statement, repetition, actor = fields
    if emotion not in EMOTIONS:
        raise DataError(f"RAVDESS file {path}: unknown emotion code {emotion!r}")
    if statement not in STATEMENTS or intensity not in ("01", "02") or not 1 <= int(actor) <= 24:
        raise DataError(f"RAVDESS file {path}: invalid statement, intensity or actor field")
    return {"modality": modality, "channel": channel, "label": EMOTIONS[emotion], "intensity": intensity,
            "statement": statement, "repetition": repetition, "actor": actor}


def load(data_dir=None):
    """Load RAVDESS audio-only speech.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> len(utts), len({u.speaker for u in utts})  # doctest: +SKIP
    (1440, 24)
    """
    root = corpus_dir(NAME, data_dir)
    actors = sorted(root.glob("Actor_*"))
    if not actors:
        raise missing_corpus_error(NAME, root / "Actor_01", "Put the Actor_01 ... Actor_24 folders there")
    utterances = []
    for wav in sorted(p for actor in actors for p in actor.glob("*.wav")):
        info = parse_name(wav)
        if info["modality"] != "03" or info["channel"] != "01":
            continue
        utterances.append(Utterance(
            id=wav.stem, path=wav, label=info["label"], speaker=info["actor"],
            gender="male" if int(info["actor"]) % 2 else "female",
            transcript=STATEMENTS[info["statement"]], corpus=NAME, text_id=info["statement"],
        ))
    if not utterances:
        raise DataError(f"RAVDESS: no audio-only speech files (03-01-*.wav) under {root}")
    return utterances
