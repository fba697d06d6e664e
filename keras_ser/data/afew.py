"""AFEW 5.0 reader (EmotiW 2015), Train / Val partitions as used by zhang2021_multicnn.

Layout under ``<data dir>/afew/``::

    Train/Angry/000046280.wav   Train/Disgust/...  ...  Train/Surprise/...
    Val/Angry/...               ...

the seven emotion folders of the release (Angry, Disgust, Fear, Happy, Neutral,
Sad, Surprise), with the audio of each ``.avi`` clip extracted to a ``.wav`` of
the same stem (e.g. ``ffmpeg -i clip.avi -ac 1 clip.wav``); ``.avi`` files are
ignored. The test set has no public labels and is not read (zhang2021_multicnn Sec. 4.1 uses
Train for training and Val for testing: 723 and 383 clips). Clips come from
films and are not labelled with actors, so ``speaker`` is ``None``.
"""

from keras_ser.data._common import missing_corpus_error
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "afew"
FOLDERS = {"Angry": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happiness",
           "Neutral": "neutral", "Sad": "sadness", "Surprise": "surprise"}
LABELS = list(FOLDERS.values())
PARTITIONS = {"Train": "train", "Val": "validation"}


def load(data_dir=None):
    """Load AFEW 5.0 Train and Val audio.

    Raises
    ------
    DataError
        Missing ``Train``/``Val``, an unknown emotion folder, or an empty partition.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> sorted({u.split for u in utts})  # doctest: +SKIP
    ['train', 'validation']
    """
    root = corpus_dir(NAME, data_dir)
    utterances = []
    for folder, split in PARTITIONS.items():
        part = root / folder
        if not part.is_dir():
            raise missing_corpus_error(NAME, part, "Put the AFEW 5.0 Train/ and Val/ emotion folders (with .wav audio) there",
                                       data_dir=data_dir)
        for emotion_dir in sorted(p for p in part.iterdir() if p.is_dir()):
            if emotion_dir.name not in FOLDERS:
                raise DataError(f"AFEW: unknown emotion folder {emotion_dir} (expected {sorted(FOLDERS)})")
            for wav in sorted(emotion_dir.glob("*.wav")):
                utterances.append(Utterance(id=f"{folder}/{emotion_dir.name}/{wav.stem}", path=wav,
                                            label=FOLDERS[emotion_dir.name], speaker=None, split=split,
                                            corpus=NAME))
        if not any(u.split == split for u in utterances):
            raise DataError(f"AFEW: no .wav files under {part}/<emotion>/ (extract the audio of the .avi clips)")
    return utterances
