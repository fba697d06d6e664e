"""FAU Aibo Emotion Corpus reader, five-class problem of zhao2019 (Sec. IV-A).

Layout (the INTERSPEECH 2009 Emotion Challenge release), under ``<data dir>/fau_aibo/``::

    wav/Ohm_01_001_00.wav ...  Mont_25_...wav      one chunk per file
    labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt

Each label line is ``<chunk id> <class> <confidence>`` separated by spaces, the
class one of A (anger), E (emphatic), N (neutral), P (positive), R (rest). The
speaker is the school and child number (``Ohm_01``); the school gives the
official partition: Ohm (26 children, 9 959 chunks) trains, Mont (25 children,
8 257 chunks) tests (zhao2019 Table 2). The label file has no gender, so ``gender``
is ``None``. There is no validation partition.
"""

from keras_ser.data._common import missing_corpus_error, require_file
from keras_ser.data.records import Utterance
from keras_ser.errors import DataError
from keras_ser.paths import corpus_dir

NAME = "fau_aibo"
CODES = {"A": "anger", "E": "emphatic", "N": "neutral", "P": "positive", "R": "rest"}
LABELS = list(CODES.values())  # order of zhao2019 Tables 2 and 4
LABEL_FILE = "labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt"

#: zhao2019, Table 4: the class weights used for FAU-AEC training. They are
#: eq. 11's N / N_k of the Ohm counts (Table 2) divided by 10 and rounded.
TABLE4_CLASS_WEIGHTS = {"anger": 1.1, "emphatic": 0.5, "neutral": 0.2, "positive": 1.5, "rest": 1.4}
#: The same as ``{class index: weight}`` in :data:`LABELS` order, for ``Model.fit``.
TABLE4_CLASS_WEIGHT_INDEX = {i: TABLE4_CLASS_WEIGHTS[name] for i, name in enumerate(LABELS)}

_SCHOOL_SPLIT = {"Ohm": "train", "Mont": "test"}


def load(data_dir=None):
    """Load the 18 216 FAU Aibo chunks with their five-class labels.

    Raises
    ------
    DataError
        Missing folder or label file, an unknown class code, a chunk whose
        school is neither Ohm nor Mont, or a labelled chunk without audio;
        the message names the file or line.

    Examples
    --------
    >>> utts = load("/data")  # doctest: +SKIP
    >>> utts[0].speaker, utts[0].split  # doctest: +SKIP
    ('Mont_01', 'test')
    """
    root = corpus_dir(NAME, data_dir)
    wav_dir = root / "wav"
    if not wav_dir.is_dir():
        raise missing_corpus_error(NAME, wav_dir, f"Put the chunk wavs in wav/ and the label file at {LABEL_FILE}",
                                   data_dir=data_dir)
    label_file = require_file(root / LABEL_FILE, "FAU Aibo label file")
    utterances = []
    for number, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise DataError(f"{label_file}, line {number}: expected '<chunk> <class> <confidence>', got {line!r}")
        chunk, code = fields[0], fields[1]
        if code not in CODES:
            raise DataError(f"{label_file}, line {number}: unknown class code {code!r} for {chunk}")
        school, child = chunk.split("_")[:2] if chunk.count("_") >= 2 else (chunk, "")
        if school not in _SCHOOL_SPLIT:
            raise DataError(f"{label_file}, line {number}: chunk {chunk!r} is from neither Ohm nor Mont")
        wav = wav_dir / f"{chunk}.wav"
        if not wav.is_file():
            raise DataError(f"FAU Aibo: missing audio {wav} for labelled chunk {chunk}")
        utterances.append(
            Utterance(id=chunk, path=wav, label=CODES[code], speaker=f"{school}_{child}",
                      split=_SCHOOL_SPLIT[school], corpus=NAME)
        )
    if not utterances:
        raise DataError(f"FAU Aibo: no labelled chunks in {label_file}")
    return utterances
