"""Semantic features at inference from speech alone (tzirakis2021 Sec. 1, 3.1).

tzirakis2021 uses the text only in training: Word2Vec on the transcripts and the
alignment ``W`` of Speech2Vec onto it. At test time a word's semantic feature is its
Speech2Vec vector mapped by ``W``. The network (:mod:`keras_ser.models.semantic`)
takes one such vector per 0.1 s frame (SEWA's label rate); a frame takes the vector
of the word spoken in it.

tzirakis2021 does not say how words are assigned to frames or what a frame without a
word gets. Here (:func:`frame_words`) a frame ``[f * frame_s, (f + 1) * frame_s)``
takes the word that overlaps it for the longest time (on a tie, to within 1 ns, the
earlier word); a frame that no word overlaps gets ``fill``: a zero vector by default
(what :func:`keras_ser.models.semantic.tzirakis2021_semantic` documents: "a frame
without a word has a zero word vector"), or any vector given, e.g. one learned for
silence.

The word timings come with the speech (a corpus's alignment or a recogniser's); the
text of the words is not used at inference, only their times.

This module needs neither TensorFlow nor gensim; :func:`semantic_frames` calls the
Speech2Vec encoder it is given.
"""

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.semantic.alignment import map_vectors, normalize

#: tzirakis2021's frame: 0.1 s (2205 samples at 22.05 kHz, Sec. 5.1).
FRAME_SECONDS = 0.1


def _frame_count(num_frames):
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 0:
        raise ParameterError(f"num_frames must be an integer >= 0, got {num_frames!r}")
    return int(num_frames)


def num_frames_for(num_samples, sample_rate, frame_s=FRAME_SECONDS):
    """Frames of ``frame_s`` covering ``num_samples``: the last partial frame counts, as in
    the ``tzirakis2021`` front end (``pad_end=True``).

    Examples
    --------
    >>> num_frames_for(44100, 22050), num_frames_for(44101, 22050)
    (20, 21)
    """
    frame_samples = int(round(frame_s * sample_rate))
    if frame_samples < 1:
        raise ParameterError(f"frame_s={frame_s} is shorter than one sample at {sample_rate} Hz")
    return max(1, -(-int(num_samples) // frame_samples))


def frame_words(words, num_frames, frame_s=FRAME_SECONDS):
    """Index of the word each frame takes, ``-1`` where no word overlaps it.

    Parameters
    ----------
    words : sequence of (str, float, float) or (float, float)
        Word timings in seconds (the word itself is not used).
    num_frames : int
        Frames of the output; words (or parts of words) past the last frame are ignored.
    frame_s : float, default 0.1
        Frame length in seconds (tzirakis2021).

    Returns
    -------
    numpy.ndarray, shape (num_frames,), int

    Raises
    ------
    DataError
        A word ending at or before its start.

    Examples
    --------
    >>> frame_words([("a", 0.0, 0.15), ("b", 0.15, 0.32)], 5).tolist()
    [0, 0, 1, 1, -1]
    """
    num_frames = _frame_count(num_frames)
    if not frame_s > 0:
        raise ParameterError(f"frame_s must be > 0, got {frame_s!r}")
    index = np.full(num_frames, -1, dtype=np.int64)
    if not words or not num_frames:
        return index
    times = np.array([w[-2:] for w in words], dtype=np.float64)
    bad = np.flatnonzero(~(times[:, 1] > times[:, 0]))
    if bad.size:
        raise DataError(f"word {bad[0]} ({words[bad[0]]!r}) ends at or before it starts")
    edges = np.arange(num_frames + 1, dtype=np.float64) * frame_s
    overlap = np.minimum(times[None, :, 1], edges[1:, None]) - np.maximum(times[None, :, 0], edges[:-1, None])
    overlap = np.round(np.maximum(overlap, 0.0), 9)
    best = np.argmax(overlap, axis=1)
    return np.where(overlap[np.arange(num_frames), best] > 0, best, -1)


def spread_vectors(words, vectors, num_frames, *, frame_s=FRAME_SECONDS, fill=None):
    """Per-frame vectors ``(num_frames, d)`` float32 from per-word vectors (see :func:`frame_words`).

    Parameters
    ----------
    words : sequence of (str, float, float)
    vectors : array-like, shape (len(words), d)
        One vector per word, in the order of ``words``.
    num_frames : int
    frame_s : float, default 0.1
    fill : array-like (d,), optional
        The vector of frames without a word; default zeros.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(words):
        raise ParameterError(f"vectors must have shape (len(words)={len(words)}, d), got {vectors.shape}")
    dim = vectors.shape[1]
    fill = np.zeros(dim, np.float32) if fill is None else np.asarray(fill, dtype=np.float32)
    if fill.shape != (dim,):
        raise ParameterError(f"fill must have shape ({dim},), got {fill.shape}")
    index = frame_words(words, num_frames, frame_s)
    table = np.concatenate([vectors, fill[None]])
    return table[index]  # index -1 picks the fill row


def semantic_frames(waveform, words, speech2vec, W, *, speech_mean=None, num_frames=None, frame_s=FRAME_SECONDS,
                    sample_rate=None, fill=None, short_segments="skip"):
    """The ``(num_frames, d)`` semantic input of tzirakis2021 from speech and word timings.

    Each word's segment goes through the Speech2Vec encoder; the vectors are
    normalised as for the alignment (unit length, centred with ``speech_mean``, unit
    length: :func:`keras_ser.semantic.normalize`), mapped by ``W``
    (:func:`keras_ser.semantic.map_vectors`) and spread over the frames
    (:func:`spread_vectors`).

    Parameters
    ----------
    waveform : array-like, shape (samples,)
        Mono audio at the Speech2Vec front end's rate (``speech2vec.mfcc_settings``).
    words : sequence of (str, float, float)
        Word timings in seconds.
    speech2vec : keras_ser.semantic.speech2vec.Speech2Vec
    W : array-like (d, d)
        From :func:`keras_ser.semantic.align` on the normalised training vectors.
    speech_mean : array-like (d,), optional
        The mean that centred the training speech vectors,
        ``normalize(train_vectors, center=False).mean(axis=0)``; without it the vectors
        are only scaled to unit length (centring on the few words of one utterance
        would distort them).
    num_frames : int, optional
        Default: the frames of 0.1 s covering the waveform (:func:`num_frames_for`),
        the count of the ``tzirakis2021`` front end's frames; pass the padded sequence
        length (e.g. 100) to match a padded batch.
    frame_s : float, default 0.1
    sample_rate : int, optional
        Default ``speech2vec.mfcc_settings["sample_rate"]``; only counts frames.
    fill : array-like (d,), optional
        Vector for frames without a word (default zeros).
    short_segments : {"skip", "error"}, default "skip"
        Words shorter than one MFCC window have no vector; by default their frames get
        ``fill`` (see :func:`keras_ser.semantic.speech2vec.segment_waveform`).

    Returns
    -------
    numpy.ndarray, shape (num_frames, d), float32
        The ``word_vectors`` input of :func:`keras_ser.models.semantic.tzirakis2021_semantic`
        for one sequence (add the batch axis).
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    rate = sample_rate or speech2vec.mfcc_settings["sample_rate"]
    if num_frames is None:
        num_frames = num_frames_for(waveform.size, rate, frame_s)
    dim = speech2vec.embedding_dim
    W = np.asarray(W, dtype=np.float32)
    if W.shape != (dim, dim):
        raise ParameterError(f"W has shape {W.shape}; the Speech2Vec vectors have dimension {dim}")
    segments = speech2vec.segments(waveform, words, short_segments=short_segments)
    kept = [(s.word, s.start, s.end) for s in segments]
    if not segments:
        return spread_vectors([], np.zeros((0, dim)), num_frames, frame_s=frame_s, fill=fill)
    vectors = speech2vec.embed(segments)
    vectors = normalize(vectors, center=speech_mean is not None, mean=speech_mean)
    return spread_vectors(kept, map_vectors(W, vectors), num_frames, frame_s=frame_s, fill=fill)
