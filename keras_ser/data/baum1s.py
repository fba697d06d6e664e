"""BAUM-1s reader (Zhalehpour et al. 2017), six basic emotions in five subject groups (zhang2021_multicnn).

Layout under ``<data dir>/baum1s/``::

    wav/S001_003.wav ...       audio extracted from the release's clips (same stems)
    labels.csv                 header "clip,emotion"; one row per clip
    groups.csv                 optional, header "subject,group"

The subject is the part of the clip stem before the first ``_`` (``S001``).
Emotion names are case-insensitive English words; the six basic emotions kept by
zhang2021_multicnn Sec. 4.1 are anger, disgust, fear, happiness (``joy``/``happy`` accepted),
sadness and surprise (521 clips); the release's other mental states (unsure,
thinking, concentrating, bothered, neutral, ...) are skipped.

zhang2021_multicnn uses leave-one-subject-group-out with five groups of its 31 subjects
but does not list the groups. Without ``groups.csv`` keras_ser sorts the
subjects and cuts them into five contiguous groups as equal as possible
(sizes 7, 6, 6, 6, 6 for 31 subjects), stored in ``session`` as
``"group1"`` ... ``"group5"`` for :func:`keras_ser.data.splits.make_folds` ("logo").
"""

import csv

from keras_ser.data._common import missing_corpus_error, require_file
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "baum1s"
LABELS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
SYNONYMS = {"angry": "anger", "joy": "happiness", "happy": "happiness", "sad": "sadness",
            "surprised": "surprise", "fearful": "fear", "disgusted": "disgust"}
N_GROUPS = 5


def default_groups(subjects, n_groups=N_GROUPS):
    """Cut sorted ``subjects`` into ``n_groups`` contiguous groups, the first ones one larger.

    Examples
    --------
    >>> default_groups(["S1", "S2", "S3", "S4", "S5", "S6", "S7"], 3)
    {'S1': 'group1', 'S2': 'group1', 'S3': 'group1', 'S4': 'group2', 'S5': 'group2', 'S6': 'group3', 'S7': 'group3'}
    """
    subjects = sorted(set(subjects))
    if len(subjects) < n_groups:
        raise DataError(f"BAUM-1s: {len(subjects)} subjects cannot form {n_groups} groups")
    size, extra = divmod(len(subjects), n_groups)
    groups, start = {}, 0
    for g in range(n_groups):
        stop = start + size + (1 if g < extra else 0)
        for subject in subjects[start:stop]:
            groups[subject] = f"group{g + 1}"
        start = stop
    return groups


def _read_csv(path, columns):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def load(data_dir=None):
    """Load the six-emotion subset of BAUM-1s with its subject groups.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> sorted({u.session for u in utts})  # doctest: +SKIP
    ['group1', 'group2', 'group3', 'group4', 'group5']
    """
    root = corpus_dir(NAME, data_dir)
    wav_dir = root / "wav"
    if not wav_dir.is_dir():
        raise missing_corpus_error(NAME, wav_dir, "Put the clips' audio in wav/ and the labels in labels.csv",
                                   data_dir=data_dir)
    rows = _read_csv(require_file(root / "labels.csv", "BAUM-1s label file"), ["clip", "emotion"])
    kept = []
    for row in rows:
        emotion = row["emotion"].strip().lower()
        emotion = SYNONYMS.get(emotion, emotion)
        if emotion in LABELS:
            kept.append((row["clip"].strip(), emotion))
    if not kept:
        raise DataError(f"BAUM-1s: no clip of the six basic emotions in {root / 'labels.csv'}")
    subjects = {clip.split("_")[0] for clip, _ in kept}
    if (root / "groups.csv").is_file():
        groups = {r["subject"].strip(): r["group"].strip() for r in _read_csv(root / "groups.csv", ["subject", "group"])}
        unassigned = sorted(subjects - set(groups))
        if unassigned:
            raise DataError(f"BAUM-1s: subjects {unassigned} have no group in {root / 'groups.csv'}")
    else:
        groups = default_groups(subjects)
    utterances = []
    for clip, emotion in kept:
        wav = wav_dir / f"{clip}.wav"
        if not wav.is_file():
            raise DataError(f"BAUM-1s: missing audio {wav} for labelled clip {clip}")
        subject = clip.split("_")[0]
        utterances.append(Utterance(id=clip, path=wav, label=emotion, speaker=subject,
                                    session=groups[subject], corpus=NAME))
    return utterances
