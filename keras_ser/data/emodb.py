"""EMO-DB (Berlin Database of Emotional Speech) reader, with word timings.

Burkhardt et al., "A Database of German Emotional Speech", Interspeech 2005;
used with leave-one-speaker-out by zhang2021_dcnn (Zhang et al. 2021, Sec. 3.1).

One module on purpose: the file-name scheme, the sentence texts and the word timings from
``silb/`` describe one corpus.
"""

import functools
import logging
import pathlib

import numpy as np
import soundfile

from keras_ser.data._common import download_archive, missing_corpus_error, require_file
from keras_ser.data.records import Utterance, clip_words
from keras_ser.errors import DataError, ParameterError
from keras_ser.paths import corpus_dir

logger = logging.getLogger(__name__)

NAME = "emodb"
URL = "http://emodb.bilderbar.info/download/download.zip"

#: German emotion initial in the file name -> canonical English label.
EMOTION_CODES = {
    "W": "anger",  # Wut
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}
LABELS = list(EMOTION_CODES.values())

#: ``load(targets=...)`` values: the corpus's own categorical labels, or the arousal / valence
#: coordinates of :data:`DERIVED_DIMENSIONAL` attached to every utterance.
TARGETS = ("categorical", "derived_dimensional")

#: Regression outputs of ``targets="derived_dimensional"``, in model output order.
DIMENSIONS = ["arousal", "valence"]

#: Arousal and valence of each EMO-DB emotion, DERIVED FROM ITS CATEGORICAL LABEL (EMO-DB itself
#: has no dimensional annotation). Values are the arousal (A) and pleasure (P, used as valence)
#: coordinates on [-1, 1] of the emotion terms in Russell & Mehrabian, "Evidence for a three-factor
#: theory of emotions", Journal of Research in Personality 11(3):273-294, 1977 (the PAD ratings
#: of 151 emotion terms): angry (P -0.51, A 0.59), bored (-0.65, -0.62), disgusted (-0.60, 0.35),
#: afraid / fear (-0.64, 0.60), happy (0.81, 0.51), sad (-0.63, -0.27). Anger and fear are
#: the values Gebhard's ALMA ("ALMA - a layered model of affect", AAMAS 2005, Table 1) tabulates
#: from that source. Caveat: these figures were taken from secondary tabulations of the 1977
#: table (ALMA and the code that copies it), not checked against the primary article here.
#: Neutral is the origin of the scale (its neutral point by construction), not a rated term.
DERIVED_DIMENSIONAL = {
    "anger": {"arousal": 0.59, "valence": -0.51},
    "boredom": {"arousal": -0.62, "valence": -0.65},
    "disgust": {"arousal": 0.35, "valence": -0.60},
    "fear": {"arousal": 0.60, "valence": -0.64},
    "happiness": {"arousal": 0.51, "valence": 0.81},
    "sadness": {"arousal": -0.27, "valence": -0.63},
    "neutral": {"arousal": 0.0, "valence": 0.0},
}


def label_names(targets="categorical"):
    """Class names (``"categorical"``) or regression outputs (``"derived_dimensional"``) in model order.

    Examples
    --------
    >>> label_names("derived_dimensional")
    ['arousal', 'valence']
    """
    _check_targets(targets)
    return list(DIMENSIONS if targets == "derived_dimensional" else LABELS)


def _check_targets(targets):
    if targets not in TARGETS:
        raise ParameterError(f"EMO-DB targets must be one of {TARGETS}, got {targets!r}")


def derived_continuous(label):
    """``continuous`` of an utterance labelled ``label`` under ``targets="derived_dimensional"``.

    One value per dimension, held for the whole utterance: ``{dim: (times [0.0], values
    [v])}``, the same ``(times_s, values)`` layout as SEWA's time-continuous labels, so
    the regression path samples it like any label track (constant over time).
    """
    values = DERIVED_DIMENSIONAL[label]
    return {dim: (np.zeros(1), np.array([values[dim]], np.float64)) for dim in DIMENSIONS}

SPEAKER_GENDER = {
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
    "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
}

#: The ten read sentences, as listed by Burkhardt et al. (Interspeech 2005) and on
#: the corpus site (http://emodb.bilderbar.info/, "Texte"). a05 reads
#: "Blatt Papier": every silb/ segmentation of a05 has the syllable "blatt" where
#: some text lists print "Stück Papier".
SENTENCES = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Blatt Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}

_PAUSE = "("
_END = "."


def sentence_words(text_id):
    """The words of sentence ``text_id`` without punctuation, e.g. ``["Der", "Lappen", ...]``."""
    return [w.strip(",.?") for w in SENTENCES[text_id].split()]


def parse_name(path):
    """Labels encoded in an EMO-DB file name ``SSTTTEV.wav``.

    Returns
    -------
    dict
        ``speaker``, ``text_id``, ``label``, ``version``.

    Raises
    ------
    DataError
        When the name does not follow the scheme, or the speaker, text or
        emotion code is unknown; the message names the file.

    Examples
    --------
    >>> parse_name("03a01Fa.wav")["label"]
    'happiness'
    """
    path = pathlib.Path(path)
    stem = path.stem
    if len(stem) != 7:
        raise DataError(f"EMO-DB file {path}: name must be SSTTTEV (7 characters), got {stem!r}")
    speaker, text_id, code, version = stem[:2], stem[2:5], stem[5], stem[6]
    if code not in EMOTION_CODES:
        raise DataError(
            f"EMO-DB file {path}: unknown emotion code {code!r} (expected one of "
            f"{''.join(EMOTION_CODES)})"
        )
    if speaker not in SPEAKER_GENDER:
        raise DataError(f"EMO-DB file {path}: unknown speaker {speaker!r}")
    if text_id not in SENTENCES:
        raise DataError(f"EMO-DB file {path}: unknown text code {text_id!r}")
    return {"speaker": speaker, "text_id": text_id, "label": EMOTION_CODES[code], "version": version}


def read_silb(path):
    """Read one ``silb/`` syllable segmentation as ``[(start_s, token), ...]``.

    The files are ISO-8859-1, one ``<time> <token>`` per line (tab or spaces).
    Each time is where the token **starts**: the first time lies at the speech
    onset and the final ``.`` at the end of speech, which the 126 zero-padded
    files of the 2-s copy confirm (``tests/test_data_emodb.py`` checks the onset).
    ``(`` marks a pause. Returns ``[]`` for an empty file (13a01Wb).
    """
    entries = []
    text = pathlib.Path(path).read_bytes().decode("latin-1")
    for line_number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            entries.append((float(fields[0]), fields[1].lower()))
        except (ValueError, IndexError) as exc:
            raise DataError(f"EMO-DB segmentation {path}, line {line_number}: cannot parse {line!r}") from exc
    return entries


def _lcs_length(a, b):
    """Length of the longest common subsequence of two short strings."""
    previous = [0] * (len(b) + 1)
    for char in a:
        current = [0]
        for k, other in enumerate(b):
            current.append(previous[k] + 1 if char == other else max(previous[k + 1], current[k]))
        previous = current
    return previous[-1]


def _segment_score(tokens, word):
    """How well a run of syllable tokens spells ``word``.

    The similarity ``2 * LCS / (len(tokens) + len(word))`` of the concatenated
    tokens and the word, plus 1 when the run starts with the word's first
    letter, so that trailing reduced-syllable marks (``"haben bm"``,
    ``"oben ben"``, ``"bring gn"``) stay with the word they end instead of
    starting the next one.
    """
    joined = "".join(tokens)
    similarity = 2.0 * _lcs_length(joined, word) / (len(joined) + len(word))
    return similarity + (1.0 if joined[0] == word[0] else 0.0)


#: Longest run of silb tokens one word may take (the longest words have four
#: syllables plus, at most, a reduced-syllable mark and a repetition).
MAX_TOKENS_PER_WORD = 6


def align_syllables(entries, words):
    """Map silb syllable tokens onto the sentence's words.

    The segmentation is phonetic and irregular (``"stehen hn"``, ``"ge gera de"``,
    ``"bring gn"``, ``"oben ben ne ben"``), so consecutive runs of tokens are
    assigned to words by dynamic programming: every word takes one run of 1 to
    :data:`MAX_TOKENS_PER_WORD` tokens, in order, maximising the summed
    :func:`_segment_score`. A word spans from its first token's start to the
    start of whatever follows its last token (next syllable, pause ``(`` or the
    end mark ``.``), so a pause inside a sentence belongs to no word.

    Parameters
    ----------
    entries : list of (float, str)
        Output of :func:`read_silb`.
    words : list of str
        The sentence's words, in order.

    Returns
    -------
    tuple of (str, float, float) or None
        ``None`` when the segmentation is empty or cannot be split into one run
        per word.

    Examples
    --------
    >>> entries = [(0.1, "ha"), (0.2, "ben"), (0.4, "bm"), (0.5, "es"), (0.6, ".")]
    >>> align_syllables(entries, ["haben", "es"])
    (('haben', 0.1, 0.5), ('es', 0.5, 0.6))
    """
    syllables = []  # (token, start, end)
    for (start, token), (next_start, _) in zip(entries, entries[1:]):
        if token not in (_PAUSE, _END):
            syllables.append((token, start, next_start))
    n_tok, n_word = len(syllables), len(words)
    if n_word == 0 or n_tok < n_word or n_tok > n_word * MAX_TOKENS_PER_WORD:
        return None
    runs = _best_runs(tuple(tok for tok, _, _ in syllables), tuple(w.lower() for w in words))
    if runs is None:
        return None
    return tuple(
        (word, round(syllables[k][1], 6), round(syllables[i - 1][2], 6))
        for word, (k, i) in zip(words, runs)
    )


@functools.lru_cache(maxsize=4096)
def _best_runs(tokens, keys):
    """Token runs ``[(start, stop), ...]`` per word of the best alignment, or ``None``.

    Cached: most of the 535 segmentations share one of a few token sequences.
    """
    n_tok, n_word = len(tokens), len(keys)
    neg = float("-inf")
    # best[j][i]: best score for the first j words taking the first i tokens.
    best = [[neg] * (n_tok + 1) for _ in range(n_word + 1)]
    run_start = [[0] * (n_tok + 1) for _ in range(n_word + 1)]
    best[0][0] = 0.0
    for j in range(1, n_word + 1):
        # Leave at least one token for each of the remaining words.
        for i in range(j, n_tok - (n_word - j) + 1):
            for k in range(max(j - 1, i - MAX_TOKENS_PER_WORD), i):
                if best[j - 1][k] == neg:
                    continue
                score = best[j - 1][k] + _segment_score(tokens[k:i], keys[j - 1])
                if score > best[j][i]:
                    best[j][i], run_start[j][i] = score, k
    if best[n_word][n_tok] == neg:
        return None
    runs = []
    i = n_tok
    for j in range(n_word, 0, -1):
        k = run_start[j][i]
        runs.append((k, i))
        i = k
    return tuple(reversed(runs))


def utterance_words(silb_path, text_id, duration):
    """Word timings of one recording, restricted to the audio that exists.

    The ``silb/`` times refer to the original full-length recording; the 2-s copy
    keeps its first 2 s. Words starting at or after ``duration`` are dropped
    (and counted); a word running past it is cut at ``duration``
    (:func:`~keras_ser.data.records.clip_words`).

    Parameters
    ----------
    silb_path : path-like
        The utterance's syllable segmentation.
    text_id : str
        Sentence code (``"a01"`` ... ``"b10"``).
    duration : float
        Length of the audio file in seconds.

    Returns
    -------
    words : tuple of (str, float, float) or None
        ``None`` when the segmentation is empty or does not fit the sentence.
    dropped : int
        Words of the sentence lost because they start after the audio ends.

    Examples
    --------
    >>> words, dropped = utterance_words("silb/03b03Nb.silb", "b03", 2.0)  # doctest: +SKIP
    >>> words[-1], dropped  # doctest: +SKIP
    (('gefahren', 1.92471, 2.0), 4)
    """
    words = align_syllables(read_silb(require_file(silb_path)), sentence_words(text_id))
    if words is None:
        return None, 0
    kept = clip_words(words, duration)
    return kept, len(words) - len(kept)


def download(target, *, url=URL, file_hash=None):
    """Fetch the EMO-DB release into ``target`` with ``keras.utils.get_file`` and extract it.

    The zip from :data:`URL` unpacks to ``wav/``, ``silb/`` and the other label folders.
    The corpus site publishes no hash of it, and none can be computed offline, so
    ``file_hash`` (SHA-256 or MD5 of the zip) is the caller's: ``None`` downloads
    unchecked and logs the SHA-256 of what came, to pass next time (see
    :func:`keras_ser.data._common.download_archive`).
    """
    download_archive(url, target, "emodb_download.zip", "wav", file_hash=file_hash)


def load(data_dir=None, *, download_if_missing=True, url=URL, file_hash=None, downloader=download,
         targets="categorical"):
    """Load EMO-DB as a list of :class:`~keras_ser.data.Utterance`.

    Layout: ``<data dir>/emodb/wav/SSTTTEV.wav`` and optionally
    ``<data dir>/emodb/silb/SSTTTEV.silb``. File names carry speaker (``SS``),
    text (``TTT``), emotion (``E``, German initial) and version (``V``).

    Labels are the canonical English names of :data:`LABELS` (anger, boredom,
    disgust, fear, happiness, sadness, neutral). ``transcript`` is the German
    sentence, ``text_id`` its code. ``words`` come from ``silb/`` aligned onto
    the sentence's words by :func:`align_syllables`, in seconds from the start of
    the file. The segmentation was made on the **original full-length**
    recordings; the 2-s redistributed copy keeps their first 2 s (truncated or
    zero-padded at the end, after resampling), so the times hold for it, but only
    up to the cut: :func:`utterance_words` drops the words that start after the
    audio file ends and cuts a word that runs past it, so every word lies within
    the audio. The number dropped is logged (``logging`` INFO, logger
    ``keras_ser.data.emodb``); on the 2-s copy it is 1001 words in 278 utterances.
    Utterances whose segmentation is missing or empty (13a01Wb) get
    ``words=None``.

    When ``wav/`` is absent and ``download_if_missing`` is true, the release is
    fetched from ``url`` (default :data:`URL`) by ``downloader(folder, url=url,
    file_hash=file_hash)`` (:func:`download`: pass the archive's SHA-256 as
    ``file_hash`` to have it checked); if that fails (no network, a wrong hash) a
    :class:`DataError` gives the reason and names the folder to fill.

    ``targets="derived_dimensional"`` (corpus name ``"emodb_dimensional"``) keeps the
    categorical ``label`` and adds ``continuous`` = the arousal / valence of that label in
    :data:`DERIVED_DIMENSIONAL` (:func:`derived_continuous`): targets derived from
    categorical labels, not annotated.

    Examples
    --------
    >>> utts = load("/work/shared/data")  # doctest: +SKIP
    >>> len(utts), utts[0].id, utts[0].label  # doctest: +SKIP
    (535, '03a01Fa', 'happiness')
    """
    _check_targets(targets)
    root = corpus_dir(NAME, data_dir)
    wav_dir = root / "wav"
    hint = f"Put the EMO-DB wav/ and silb/ folders there (official release: {URL})"
    if not wav_dir.is_dir() and download_if_missing:
        try:
            downloader(root, url=url, file_hash=file_hash)
        except Exception as exc:  # any failure to fetch leads to the same instruction
            raise missing_corpus_error(NAME, wav_dir, hint, reason=f"download from {url} failed: {exc}",
                                       data_dir=data_dir) from exc
    if not wav_dir.is_dir():
        raise missing_corpus_error(NAME, wav_dir, hint, data_dir=data_dir)
    wavs = sorted(wav_dir.glob("*.wav"))
    if not wavs:
        raise DataError(f"EMO-DB: no .wav files in {wav_dir}")
    utterances = []
    dropped_words = dropped_in = 0
    for path in wavs:
        info = parse_name(path)
        silb = root / "silb" / f"{path.stem}.silb"
        words = None
        if silb.is_file():
            words, dropped = utterance_words(silb, info["text_id"], _duration(path))
            dropped_words += dropped
            dropped_in += dropped > 0
        utterances.append(
            Utterance(
                id=path.stem,
                path=path,
                label=info["label"],
                speaker=info["speaker"],
                gender=SPEAKER_GENDER[info["speaker"]],
                transcript=SENTENCES[info["text_id"]],
                words=words,
                corpus=NAME,
                text_id=info["text_id"],
                continuous=derived_continuous(info["label"]) if targets == "derived_dimensional" else None,
            )
        )
    if dropped_words:
        logger.info("EMO-DB %s: %d words in %d utterances start after the end of the audio and were "
                    "dropped (a cut copy of the corpus)", root, dropped_words, dropped_in)
    return utterances


def _duration(path):
    """Length of an audio file in seconds, from its header."""
    try:
        return soundfile.info(str(path)).duration
    except RuntimeError as exc:  # soundfile's error for unreadable files
        raise DataError(f"EMO-DB file {path}: cannot read the audio header ({exc})") from exc
