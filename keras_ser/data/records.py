"""The utterance record shared by every corpus reader, split and pipeline.

One :class:`Utterance` describes one audio file and everything the corpora tell
about it. Readers fill what their corpus provides and leave the rest ``None``.
"""

import dataclasses
import pathlib

from keras_ser.errors import ParameterError

GENDERS = ("female", "male")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance of a corpus.

    Parameters
    ----------
    id : str
        Identifier unique within the corpus (usually the file stem).
    path : pathlib.Path
        Audio file.
    label : str or None
        Canonical English class name (see :func:`keras_ser.data.label_names`);
        ``None`` for corpora with continuous labels only (SEWA).
    speaker : str or None
        Speaker identifier, unique within the corpus; ``None`` where the corpus
        does not identify speakers (AFEW, CHEAVD film clips).
    gender : {"female", "male", None}
    session : str or None
        Recording session (IEMOCAP ``"Ses01"``) or subject group (BAUM-1s).
    split : {"train", "validation", "test", None}
        Official partition, where the corpus defines one.
    transcript : str or None
        Orthographic transcription.
    words : tuple of (str, float, float) or None
        Word timings ``(word, start_s, end_s)`` relative to the start of the
        audio file as distributed by the corpus (see each reader for caveats).
    continuous : dict or None
        ``name -> (times_s, values)`` NumPy arrays of time-continuous labels
        (SEWA arousal / valence / liking). Excluded from hashing and equality.
    corpus : str
        Corpus name as given to :func:`keras_ser.data.load_corpus`.
    text_id : str or None
        Identifier of the read sentence where the corpus has fixed texts
        (EMO-DB ``"a01"`` ... ``"b10"``, RAVDESS statement ``"01"``/``"02"``).

    Examples
    --------
    >>> u = Utterance(id="03a01Fa", path="wav/03a01Fa.wav", label="happiness",
    ...               speaker="03", gender="male")
    >>> u.path.name
    '03a01Fa.wav'
    """

    id: str
    path: pathlib.Path
    label: str | None
    speaker: str | None
    gender: str | None = None
    session: str | None = None
    split: str | None = None
    transcript: str | None = None
    words: tuple | None = None
    continuous: dict | None = dataclasses.field(default=None, hash=False, compare=False)
    corpus: str = ""
    text_id: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "path", pathlib.Path(self.path))
        if self.gender not in (None,) + GENDERS:
            raise ParameterError(
                f"Utterance {self.id!r}: gender must be one of {GENDERS} or None, got {self.gender!r}"
            )
        if self.words is not None:
            object.__setattr__(self, "words", tuple(tuple(w) for w in self.words))


def clip_words(words, duration):
    """Restrict word timings to the first ``duration`` seconds of a recording.

    Words starting at or after ``duration`` are dropped; a word running past it
    is cut at ``duration``. Use it when audio was truncated after the timings were
    made (the 2-s EMO-DB copy keeps the first 2 s of each original recording).

    Parameters
    ----------
    words : tuple of (str, float, float) or None
    duration : float
        Length of the audio actually available, in seconds (> 0).

    Returns
    -------
    tuple of (str, float, float) or None
        ``None`` when ``words`` is ``None``.

    Examples
    --------
    >>> clip_words((("Der", 0.1, 0.3), ("Lappen", 1.9, 2.2), ("liegt", 2.2, 2.5)), 2.0)
    (('Der', 0.1, 0.3), ('Lappen', 1.9, 2.0))
    """
    if not duration > 0:
        raise ParameterError(f"duration must be > 0 seconds, got {duration!r}")
    if words is None:
        return None
    return tuple((w, s, min(e, duration)) for w, s, e in words if s < duration)
