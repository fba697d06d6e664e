"""RAVDESS speech reader (Livingstone & Russo 2018): 24 actors, 8 emotions.

Layout under ``<data dir>/ravdess/``: ``Actor_01/03-01-05-01-02-01-01.wav`` ...
(the "Audio_Speech_Actors_01-24" archive). The seven two-digit fields of a
name are modality (03 = audio-only), vocal channel (01 = speech, 02 = song),
emotion, intensity (01 normal, 02 strong), statement (01 "Kids are talking by
the door", 02 "Dogs are sitting by the door"), repetition and actor (odd = male,
even = female). Only audio-only speech files are read (1 440 in the release);
song and video files found in the tree are skipped.

RAVDESS is freely downloadable from Zenodo (record 1188976) under CC BY-NC-SA 4.0
(attribution, non-commercial, share-alike): :func:`load` fetches the speech archive
(208 MB) when the folder is missing, checking the MD5 that Zenodo publishes for it.
"""

from keras_ser.data._common import download_archive, missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "ravdess"
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happiness", "04": "sadness", "05": "anger",
            "06": "fear", "07": "disgust", "08": "surprise"}
LABELS = list(EMOTIONS.values())
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}

#: The audio-only speech archive of Zenodo record 1188976 (Livingstone & Russo 2018).
URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"
#: The MD5 Zenodo lists for that file.
FILE_HASH = "bc696df654c87fed845eb13823edef8a"
LICENSE = "CC BY-NC-SA 4.0"


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


def download(target, *, url=URL, file_hash=FILE_HASH):
    """Fetch the RAVDESS speech archive into ``target`` with ``keras.utils.get_file`` and extract it.

    It unpacks to ``Actor_01/`` ... ``Actor_24/``. ``file_hash`` (MD5 or SHA-256 of
    the zip) defaults to the MD5 published by Zenodo; ``None`` skips the check.
    """
    download_archive(url, target, "ravdess_speech.zip", "Actor_*", file_hash=file_hash)


def load(data_dir=None, *, download_if_missing=True, url=URL, file_hash=FILE_HASH, downloader=download):
    """Load RAVDESS audio-only speech.

    When no ``Actor_*`` folder exists and ``download_if_missing`` is true, the
    speech archive is fetched from ``url`` (default :data:`URL`, Zenodo, 208 MB,
    licence :data:`LICENSE`) by ``downloader(folder, url=url, file_hash=file_hash)``
    (:func:`download`); if that fails (no network, a wrong hash) a :class:`DataError`
    gives the reason and names the folder to fill.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> len(utts), len({u.speaker for u in utts})  # doctest: +SKIP
    (1440, 24)
    """
    root = corpus_dir(NAME, data_dir)
    hint = f"Put the Actor_01 ... Actor_24 folders there (Audio_Speech_Actors_01-24.zip from {URL})"
    if not any(root.glob("Actor_*")) and download_if_missing:
        try:
            downloader(root, url=url, file_hash=file_hash)
        except Exception as exc:  # any failure to fetch leads to the same instruction
            raise missing_corpus_error(NAME, root / "Actor_01", hint, reason=f"download from {url} failed: {exc}",
                                       data_dir=data_dir) from exc
    actors = sorted(root.glob("Actor_*"))
    if not actors:
        raise missing_corpus_error(NAME, root / "Actor_01", hint, data_dir=data_dir)
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
