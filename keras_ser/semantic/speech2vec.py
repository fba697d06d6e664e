"""Speech2Vec: word embeddings learned from speech (Chung and Glass, Interspeech 2018).

tzirakis2021 (Sec. 3.1, its reference [14]) trains Speech2Vec on the training speakers'
speech and aligns its space onto Word2Vec's (:mod:`keras_ser.semantic.alignment`). This
module is the skip-gram variant of Chung and Glass (Sec. 2):

- **Segments.** Every word of an utterance, cut by its word timings, is a sequence of
  13 MFCCs computed with 25 ms windows every 10 ms (Chung and Glass Sec. 3, their
  front end). :func:`mfcc` computes them with the project's TensorFlow log-mel
  (:func:`keras_ser.frontend.log_mel`) and a type-II orthonormal DCT, as
  ``librosa.feature.mfcc`` does; the tests compare the two.
- **Encoder.** A bidirectional LSTM reads a segment's MFCCs (padding masked); its two
  final states, concatenated, are projected linearly to the word vector ``z``.
- **Decoder.** An LSTM conditioned on ``z`` (``z`` is its input at every step) and a
  linear output layer reconstruct the MFCC sequence of every neighbouring word within
  ``window`` words on either side (Chung and Glass's ``k``) in the same utterance.
- **Loss.** For each neighbour the mean squared error over its real (unpadded) frames
  and coefficients; the neighbours' errors are summed (Chung and Glass Sec. 2, the
  skip-gram objective) and averaged over the centre words of a batch. A missing
  neighbour (near the start or end of an utterance) contributes nothing.
- **Word vectors.** A word type's embedding is the mean of the encoder vectors of all
  its segments (Chung and Glass Sec. 2).

What Chung and Glass state and what is chosen here (their full text was not available
while this was written: the settings below are the paper's as it is usually summarised,
not checked against the text; each is a parameter, and tzirakis2021 gives none of its own): a single-layer
bidirectional LSTM encoder, a single-layer LSTM decoder, window ``k = 3``, SGD with
learning rate 1e-3 (:func:`train_speech2vec`'s defaults), embeddings of 50 to 300
dimensions. The default dimension here is :data:`keras_ser.semantic.word2vec.DEFAULT_DIM`
(100): tzirakis2021's ``W`` is ``d_t x d_s`` (Sec. 3.1), but the orthogonal map of
:func:`keras_ser.semantic.align` needs speech and text vectors of one dimension.
Not stated (chosen here, each a parameter): how the encoder's two directions become
``z`` (concatenation + linear projection), how the decoder is conditioned (``z`` as
input at every step), whether one decoder serves all neighbour positions (one shared
decoder by default, the analogue of Word2Vec's single output layer for all context
positions; ``shared_decoder=False`` gives one per offset), the mel filterbank of the
MFCCs (40 HTK bands, Hamming window, 0 Hz to Nyquist, at 16 kHz, LibriSpeech's rate)
and feature scaling (each MFCC standardised with the training segments' mean and
standard deviation, ``standardize=True``, so that the energy coefficient does not
dominate the loss).

A segment shorter than one MFCC analysis window (25 ms) has no complete frame; such
words (EMO-DB-2s has a few: words cut by the 2-s copy, odd syllable alignments) are
refused with :class:`~keras_ser.errors.DataError` by default, or left out with
``short_segments="skip"`` (the utterance's remaining words keep their order, so the
skipped word's neighbours become each other's).

Examples
--------
>>> from keras_ser.data import load_corpus
>>> from keras_ser.semantic.speech2vec import word_segments, train_speech2vec
>>> utterances = load_corpus("emodb")[:20]  # doctest: +SKIP
>>> segments = word_segments(utterances, short_segments="skip")  # doctest: +SKIP
>>> s2v = train_speech2vec(segments, epochs=5)  # doctest: +SKIP
>>> vectors = s2v.word_vectors(segments)  # {"der": array(100,), ...}  # doctest: +SKIP

One module on purpose: the segments, the encoder-decoder, its loss and training loop and
the word vectors are one model, as Chung and Glass describe it.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError
from keras_ser.frontend import log_mel
from keras_ser.semantic.word2vec import DEFAULT_DIM

#: Chung and Glass's front end (Sec. 3: 13 MFCCs, 25 ms windows, 10 ms hop); the
#: rest is not stated and chosen here (see the module docstring).
MFCC_DEFAULTS = dict(sample_rate=16000, n_mfcc=13, n_mels=40, win_ms=25.0, hop_ms=10.0, n_fft=None,
                     window="hamming", htk=True, fmin=0.0, fmax=None, top_db=80.0)
SHORT_SEGMENTS = ("error", "skip")


def mfcc(waveform, sample_rate=16000, n_mfcc=13, n_mels=40, win_ms=25.0, hop_ms=10.0, n_fft=None,
         window="hamming", htk=True, fmin=0.0, fmax=None, top_db=80.0):
    """MFCCs ``[batch, samples] -> [batch, frames, n_mfcc]`` float32 (Chung and Glass Sec. 3).

    The dB log-mel spectrogram of :func:`keras_ser.frontend.log_mel` (centred frames,
    frame ``t`` centred on sample ``t * hop``), then the orthonormal type-II DCT over
    the mel bands, first ``n_mfcc`` coefficients: ``librosa.feature.mfcc`` with
    ``n_fft = win_length``, ``center=True``, ``pad_mode="constant"``, ``htk=True``,
    ``lifter=0``. ``top_db`` clips per waveform (librosa clips per call).

    Examples
    --------
    >>> mfcc(tf.zeros([1, 16000]) + 0.1).shape
    TensorShape([1, 101, 13])
    """
    if not isinstance(n_mfcc, (int, np.integer)) or not 1 <= n_mfcc <= n_mels:
        raise ParameterError(f"n_mfcc must be an integer in [1, n_mels={n_mels}], got {n_mfcc!r}")
    spectrogram = log_mel(waveform, sample_rate=sample_rate, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                          win_ms=win_ms, hop_ms=hop_ms, n_fft=n_fft, window=window, log="db", top_db=top_db)
    return tf.signal.dct(spectrogram, type=2, norm="ortho")[..., :n_mfcc]


@dataclasses.dataclass(frozen=True)
class WordSegment:
    """One spoken word: its MFCCs and where it came from.

    Parameters
    ----------
    word : str
        The word as the timings spell it.
    utterance : str
        Utterance id (or the name given to :func:`segment_waveform`).
    index : int
        Position among the utterance's kept segments.
    start, end : float
        Seconds from the start of the audio (``end`` cut at the audio's end).
    features : numpy.ndarray, shape (frames, n_mfcc), float32
        The MFCC frames centred in ``[start, end)``.
    """

    word: str
    utterance: str
    index: int
    start: float
    end: float
    features: np.ndarray = dataclasses.field(repr=False, compare=False)


def _mfcc_settings(settings):
    unknown = set(settings) - set(MFCC_DEFAULTS)
    if unknown:
        raise ParameterError(f"unknown MFCC setting(s) {sorted(unknown)}; expected some of {sorted(MFCC_DEFAULTS)}")
    return {**MFCC_DEFAULTS, **settings}


def segment_waveform(waveform, words, *, name="waveform", short_segments="error", **mfcc_settings):
    """Cut one waveform's words into MFCC segments.

    The MFCCs of the whole waveform are computed once (so a word's first frames see
    the audio before it, as in continuous speech) and a word keeps the frames centred
    in ``[start, end)``.

    Parameters
    ----------
    waveform : array-like, shape (samples,)
        Mono audio at ``sample_rate``.
    words : sequence of (str, float, float)
        Word timings ``(word, start_s, end_s)``, as :attr:`keras_ser.data.Utterance.words`.
    name : str
        Names the waveform in errors and in :attr:`WordSegment.utterance`.
    short_segments : {"error", "skip"}
        What to do with a word shorter than one analysis window (``win_ms``):
        refuse it (:class:`DataError`) or leave it out.
    **mfcc_settings
        Overrides of :data:`MFCC_DEFAULTS` (``sample_rate``, ``n_mfcc``, ...).

    Returns
    -------
    list of WordSegment

    Raises
    ------
    DataError
        No word timings, a word with ``end <= start`` or starting at or after the end
        of the audio, or (``short_segments="error"``) one shorter than a window.
    """
    settings = _mfcc_settings(mfcc_settings)
    if short_segments not in SHORT_SEGMENTS:
        raise ParameterError(f"short_segments must be one of {SHORT_SEGMENTS}, got {short_segments!r}")
    if not words:
        raise DataError(f"{name} has no word timings (words={words!r}); Speech2Vec needs the words' "
                        "start and end times")
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise DataError(f"{name}: expected a non-empty mono waveform, got shape {waveform.shape}")
    rate = settings["sample_rate"]
    duration = waveform.size / rate
    hop = int(round(rate * settings["hop_ms"] / 1000.0))
    window_s = settings["win_ms"] / 1000.0
    coefficients = mfcc(waveform[None], **settings)[0].numpy()
    segments = []
    for word, start, end in words:
        start, end = float(start), float(end)
        if not end > start:
            raise DataError(f"{name}: word {word!r} ends ({end}) at or before it starts ({start})")
        if start >= duration or start < 0:
            raise DataError(f"{name}: word {word!r} starts at {start} s, outside the audio (0 to {duration:.3f} s)")
        end = min(end, duration)
        if end - start < window_s:
            if short_segments == "skip":
                continue
            raise DataError(f"{name}: word {word!r} ({start:.3f}-{end:.3f} s) is shorter than one MFCC window "
                            f"({window_s * 1000:.0f} ms); pass short_segments='skip' to leave such words out")
        first = math.ceil(round(start * rate) / hop)
        stop = math.ceil(round(end * rate) / hop)
        segments.append(WordSegment(word, name, len(segments), start, end, coefficients[first:stop]))
    return segments


def word_segments(utterances, *, short_segments="error", **mfcc_settings):
    """MFCC segments of every word of every utterance, read from the audio files.

    Parameters
    ----------
    utterances : iterable of keras_ser.data.Utterance
        Each needs ``words`` (EMO-DB's come from the corpus's syllable timings).
    short_segments : {"error", "skip"}
        See :func:`segment_waveform`.
    **mfcc_settings
        Overrides of :data:`MFCC_DEFAULTS`; the audio is resampled to ``sample_rate``.

    Returns
    -------
    list of list of WordSegment
        One list per utterance, in input order (utterances left without words by
        ``"skip"`` give an empty list).

    Raises
    ------
    DataError
        An utterance without word timings (named with its file), a bad word, or an
        unreadable audio file.
    """
    settings = _mfcc_settings(mfcc_settings)
    result = []
    for utterance in utterances:
        name = f"utterance {utterance.id} ({utterance.path})"
        if not utterance.words:
            raise DataError(f"{name} has no word timings; Speech2Vec needs the words' start and end times")
        waveform = audio.load(utterance.path, sr=settings["sample_rate"])
        segments = segment_waveform(waveform, utterance.words, name=name, short_segments=short_segments,
                                    **settings)
        result.append([dataclasses.replace(s, utterance=utterance.id) for s in segments])
    return result


class RepeatAlongTime(keras.layers.Layer):
    """``[z [b, d], reference [b, ..., T, m]] -> [b, T, d]``: ``z`` repeated for the reference's ``T`` steps."""

    def __init__(self, time_axis=-2, **kwargs):
        super().__init__(**kwargs)
        self.time_axis = time_axis

    def call(self, inputs):
        z, reference = inputs
        steps = keras.ops.shape(reference)[self.time_axis]
        return keras.ops.repeat(keras.ops.expand_dims(z, 1), steps, axis=1)

    def compute_output_shape(self, input_shape):
        z_shape, reference_shape = input_shape
        return (z_shape[0], reference_shape[self.time_axis], z_shape[-1])

    def get_config(self):
        return {**super().get_config(), "time_axis": self.time_axis}


class TileContexts(keras.layers.Layer):
    """``[b, T, m] -> [b, contexts, T, m]``: one shared decoder's output for every neighbour."""

    def __init__(self, contexts, **kwargs):
        super().__init__(**kwargs)
        self.contexts = int(contexts)

    def call(self, x):
        return keras.ops.repeat(keras.ops.expand_dims(x, 1), self.contexts, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.contexts, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "contexts": self.contexts}


def _check_window(window):
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ParameterError(f"window (Chung and Glass's k, neighbours on each side) must be an integer >= 1, "
                             f"got {window!r}")
    return int(window)


def speech2vec_model(*, n_mfcc=13, embedding_dim=DEFAULT_DIM, encoder_units=None, decoder_units=None, window=3,
                     shared_decoder=True):
    """The skip-gram Speech2Vec encoder-decoder (Chung and Glass Sec. 2).

    Parameters
    ----------
    n_mfcc : int, default 13
        Features per frame (Chung and Glass Sec. 3).
    embedding_dim : int, default :data:`~keras_ser.semantic.word2vec.DEFAULT_DIM`
        Dimension of the word vector ``z`` (Chung and Glass: 50 to 300; here Word2Vec's,
        so that the two spaces can be aligned).
    encoder_units : int, optional
        Units per direction of the bidirectional LSTM encoder; default ``embedding_dim``.
    decoder_units : int, optional
        Units of the LSTM decoder; default ``embedding_dim``.
    window : int, default 3
        Neighbours reconstructed on each side (Chung and Glass's ``k``).
    shared_decoder : bool, default True
        One decoder for every neighbour position, or one per offset (not stated in the
        paper; see the module docstring).

    Returns
    -------
    model : keras.Model
        Inputs ``segment [b, T, n_mfcc]``, ``segment_mask [b, T]`` (bool, True on real
        frames), ``context [b, 2 window, T', n_mfcc]`` (read for its length ``T'`` only);
        output the reconstructions ``[b, 2 window, T', n_mfcc]`` of the neighbours at
        offsets ``-window .. -1, 1 .. window``.
    encoder : keras.Model
        ``[segment, segment_mask] -> z [b, embedding_dim]``, sharing the model's weights.
        It holds only Keras' own layers, so it saves and loads with plain Keras (the
        decoder's two small helper layers are not registered custom objects: the whole
        encoder-decoder is for training only).
    """
    window = _check_window(window)
    for name, value in (("n_mfcc", n_mfcc), ("embedding_dim", embedding_dim),
                        ("encoder_units", encoder_units or embedding_dim),
                        ("decoder_units", decoder_units or embedding_dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"speech2vec_model: {name} must be a positive integer, got {value!r}")
    encoder_units = encoder_units or embedding_dim
    decoder_units = decoder_units or embedding_dim
    contexts = 2 * window

    segment = keras.Input((None, n_mfcc), name="segment")
    segment_mask = keras.Input((None,), dtype="bool", name="segment_mask")
    context = keras.Input((contexts, None, n_mfcc), name="context")
    # The inner LSTM is named so that the directions' weights are always encoder/forward_lstm and
    # encoder/backward_lstm, whatever other LSTMs the process built before.
    states = keras.layers.Bidirectional(keras.layers.LSTM(encoder_units, name="lstm"), merge_mode="concat",
                                        name="encoder")(segment, mask=segment_mask)
    z = keras.layers.Dense(embedding_dim, name="embedding")(states)
    encoder = keras.Model([segment, segment_mask], z, name="speech2vec_encoder")

    steps = RepeatAlongTime(name="decoder_input")([z, context])

    def decode(suffix):
        x = keras.layers.LSTM(decoder_units, return_sequences=True, name=f"decoder{suffix}")(steps)
        return keras.layers.Dense(n_mfcc, name=f"reconstruction{suffix}")(x)

    if shared_decoder:
        output = TileContexts(contexts, name="contexts")(decode(""))
    else:
        # Layer names cannot hold "+" or "-": offset -2 is "m2", +2 is "p2".
        offsets = [f"m{-o}" if o < 0 else f"p{o}" for o in range(-window, window + 1) if o]
        parts = [keras.layers.Reshape((1, -1, n_mfcc), name=f"offset_{o}")(decode(f"_{o}")) for o in offsets]
        output = keras.layers.Concatenate(axis=1, name="contexts")(parts)
    model = keras.Model([segment, segment_mask, context], output, name="speech2vec_skipgram")
    return model, encoder


def skipgram_loss(context, context_mask, reconstruction):
    """Chung and Glass's skip-gram loss: per-neighbour MSE, summed over neighbours, mean over the batch.

    Parameters
    ----------
    context : tensor ``[b, N, T, m]``
        The neighbours' MFCCs, padded.
    context_mask : tensor ``[b, N, T]``
        True on real frames; a neighbour with no real frame (missing) adds 0.
    reconstruction : tensor ``[b, N, T, m]``

    Returns
    -------
    scalar tensor
        ``mean_b sum_n (sum_{t, c} mask (x - y)^2) / (m * frames_n)``.
    """
    mask = tf.cast(context_mask, reconstruction.dtype)
    squared = tf.reduce_sum(tf.square(reconstruction - tf.cast(context, reconstruction.dtype)), axis=-1)
    per_neighbour = tf.reduce_sum(squared * mask, axis=-1)
    frames = tf.reduce_sum(mask, axis=-1) * tf.cast(tf.shape(context)[-1], mask.dtype)
    return tf.reduce_mean(tf.reduce_sum(tf.math.divide_no_nan(per_neighbour, frames), axis=-1))


def _pad(arrays, width):
    """Stack ``[frames_i, width]`` arrays into ``[n, max_frames, width]`` zeros + a bool mask."""
    length = max((len(a) for a in arrays), default=0)
    length = max(length, 1)
    batch = np.zeros((len(arrays), length, width), np.float32)
    mask = np.zeros((len(arrays), length), bool)
    for i, a in enumerate(arrays):
        batch[i, : len(a)] = a
        mask[i, : len(a)] = True
    return batch, mask


def skipgram_batch(segments, centres, window, mean=None, std=None):
    """Model inputs and targets for the centre words ``centres`` (pairs ``(utterance, index)``).

    Returns ``(segment, segment_mask, context, context_mask)`` NumPy arrays, padded with
    zeros; a neighbour outside its utterance is all padding.
    """
    window = _check_window(window)

    def scaled(array):
        return array if mean is None else (array - mean) / std

    width = segments[centres[0][0]][centres[0][1]].features.shape[1]
    centre_arrays = [scaled(segments[u][i].features) for u, i in centres]
    offsets = [o for o in range(-window, window + 1) if o]
    neighbour_arrays = []
    for u, i in centres:
        words = segments[u]
        for o in offsets:
            j = i + o
            neighbour_arrays.append(scaled(words[j].features) if 0 <= j < len(words) else np.zeros((0, width)))
    segment, segment_mask = _pad(centre_arrays, width)
    context, context_mask = _pad(neighbour_arrays, width)
    shape = (len(centres), len(offsets), context.shape[1])
    return segment, segment_mask, context.reshape(shape + (width,)), context_mask.reshape(shape)


@dataclasses.dataclass
class Speech2Vec:
    """A trained Speech2Vec: the encoder, its front end and feature scaling.

    Attributes
    ----------
    model, encoder : keras.Model
        From :func:`speech2vec_model` (shared weights).
    window : int
    mfcc_settings : dict
        The front end used for training; :meth:`segments` uses the same.
    mean, std : numpy.ndarray or None
        Per-coefficient scaling from the training segments (``standardize=True``).
    history : list of float
        The training loss of every step.
    """

    model: keras.Model
    encoder: keras.Model
    window: int
    mfcc_settings: dict
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    history: list = dataclasses.field(default_factory=list)

    @property
    def embedding_dim(self):
        """Dimension of the word vectors."""
        return int(self.encoder.output.shape[-1])

    def segments(self, waveform, words, *, name="waveform", short_segments="error"):
        """:func:`segment_waveform` with this model's front end (``waveform`` at its ``sample_rate``)."""
        return segment_waveform(waveform, words, name=name, short_segments=short_segments, **self.mfcc_settings)

    def embed(self, segments, batch_size=256):
        """Encoder vectors of segments.

        Parameters
        ----------
        segments : sequence of WordSegment or of arrays ``(frames, n_mfcc)``
            Unscaled MFCCs, as :func:`segment_waveform` gives them.
        batch_size : int

        Returns
        -------
        numpy.ndarray, shape (len(segments), embedding_dim), float32
        """
        arrays = [np.asarray(getattr(s, "features", s), np.float32) for s in segments]
        width = self.encoder.inputs[0].shape[-1]
        for k, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[1] != width or len(a) == 0:
                raise DataError(f"embed: segment {k} has shape {a.shape}; expected (frames >= 1, {width})")
        if self.mean is not None:
            arrays = [(a - self.mean) / self.std for a in arrays]
        out = np.zeros((len(arrays), self.embedding_dim), np.float32)
        for begin in range(0, len(arrays), batch_size):
            batch, mask = _pad(arrays[begin:begin + batch_size], width)
            out[begin:begin + len(batch)] = keras.ops.convert_to_numpy(self.encoder([batch, mask], training=False))
        return out

    def word_vectors(self, segments, lower=True):
        """``{word: mean encoder vector of its segments}`` (Chung and Glass Sec. 2).

        Parameters
        ----------
        segments : list of WordSegment, or list of lists of them (:func:`word_segments`)
        lower : bool, default True
            Lower-case the words, as :func:`keras_ser.semantic.tokenize` does for Word2Vec.

        Returns
        -------
        dict of str to numpy.ndarray (embedding_dim,)
        """
        flat = [s for group in segments for s in (group if isinstance(group, (list, tuple)) else [group])]
        vectors = self.embed(flat)
        sums, counts = {}, {}
        for segment, vector in zip(flat, vectors):
            word = segment.word.lower() if lower else segment.word
            sums[word] = sums.get(word, 0.0) + vector
            counts[word] = counts.get(word, 0) + 1
        return {word: (sums[word] / counts[word]).astype(np.float32) for word in sums}


def _optimizer(optimizer, learning_rate):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    choices = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
    if optimizer not in choices:
        raise ParameterError(f"optimizer must be 'sgd', 'adam' or a keras optimizer, got {optimizer!r}")
    return choices[optimizer](learning_rate=learning_rate)


def train_speech2vec(segments, *, window=3, embedding_dim=DEFAULT_DIM, encoder_units=None, decoder_units=None,
                     shared_decoder=True, epochs=1, max_steps=None, batch_size=64, optimizer="sgd",
                     learning_rate=1e-3, standardize=True, seed=0, mfcc_settings=None):
    """Train the skip-gram Speech2Vec on word segments (Chung and Glass Sec. 2-3).

    Parameters
    ----------
    segments : list of list of WordSegment
        One list per utterance (:func:`word_segments`); neighbours never cross utterances.
    window, embedding_dim, encoder_units, decoder_units, shared_decoder
        See :func:`speech2vec_model`.
    epochs : int, default 1
        Passes over the centre words, in an order shuffled per epoch (Chung and Glass
        train for 500 epochs on LibriSpeech).
    max_steps : int, optional
        Stop after this many updates.
    batch_size : int, default 64
        Centre words per update (not stated by Chung and Glass).
    optimizer : {"sgd", "adam"} or keras.optimizers.Optimizer, default "sgd"
    learning_rate : float, default 1e-3
        Chung and Glass: SGD at 1e-3.
    standardize : bool, default True
        Scale every MFCC by the training segments' mean and standard deviation (the
        paper is silent on scaling).
    seed : int
        Seeds the weights and the order (:func:`keras.utils.set_random_seed`); the same
        seed and data give the same model.
    mfcc_settings : dict, optional
        The front end that made ``segments`` (stored for :meth:`Speech2Vec.segments`);
        default :data:`MFCC_DEFAULTS`.

    Returns
    -------
    Speech2Vec

    Raises
    ------
    ParameterError
        ``window < 1`` and other bad settings.
    DataError
        No segments, or segments of different widths.
    """
    window = _check_window(window)
    settings = _mfcc_settings(mfcc_settings or {})
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"train_speech2vec: {name} must be a positive integer, got {value!r}")
    if max_steps is not None and (not isinstance(max_steps, (int, np.integer)) or max_steps < 1):
        raise ParameterError(f"train_speech2vec: max_steps must be a positive integer or None, got {max_steps!r}")
    segments = [list(group) for group in segments]
    centres = [(u, i) for u, group in enumerate(segments) for i in range(len(group))]
    if not centres:
        raise DataError("train_speech2vec: no word segments to train on")
    widths = {s.features.shape[1] for group in segments for s in group}
    if len(widths) != 1:
        raise DataError(f"train_speech2vec: segments have different numbers of coefficients {sorted(widths)}")
    n_mfcc = widths.pop()

    mean = std = None
    if standardize:
        frames = np.concatenate([s.features for group in segments for s in group])
        mean = frames.mean(axis=0).astype(np.float32)
        std = np.maximum(frames.std(axis=0), 1e-5).astype(np.float32)

    keras.utils.set_random_seed(seed)
    model, encoder = speech2vec_model(n_mfcc=n_mfcc, embedding_dim=embedding_dim, encoder_units=encoder_units,
                                      decoder_units=decoder_units, window=window, shared_decoder=shared_decoder)
    opt = _optimizer(optimizer, learning_rate)
    opt.build(model.trainable_variables)

    contexts = 2 * window
    # One trace for every batch: segment and neighbour lengths vary from batch to batch.
    signature = [tf.TensorSpec([None, None, n_mfcc], tf.float32), tf.TensorSpec([None, None], tf.bool),
                 tf.TensorSpec([None, contexts, None, n_mfcc], tf.float32),
                 tf.TensorSpec([None, contexts, None], tf.bool)]

    @tf.function(input_signature=signature)
    def step(segment, segment_mask, context, context_mask):
        with tf.GradientTape() as tape:
            loss = skipgram_loss(context, context_mask, model([segment, segment_mask, context], training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(centres))
        for begin in range(0, len(order), batch_size):
            batch = skipgram_batch(segments, [centres[k] for k in order[begin:begin + batch_size]], window,
                                   mean, std)
            history.append(float(step(*batch)))
            if max_steps is not None and len(history) >= max_steps:
                break
        if max_steps is not None and len(history) >= max_steps:
            break
    return Speech2Vec(model=model, encoder=encoder, window=window, mfcc_settings=settings, mean=mean, std=std,
                      history=history)


def evaluate_loss(speech2vec, segments, batch_size=64):
    """Mean skip-gram loss of ``speech2vec`` over all centre words of ``segments`` (no update)."""
    segments = [list(group) for group in segments]
    centres = [(u, i) for u, group in enumerate(segments) for i in range(len(group))]
    if not centres:
        raise DataError("evaluate_loss: no word segments")
    total = 0.0
    for begin in range(0, len(centres), batch_size):
        chunk = centres[begin:begin + batch_size]
        segment, segment_mask, context, context_mask = skipgram_batch(
            segments, chunk, speech2vec.window, speech2vec.mean, speech2vec.std)
        output = speech2vec.model([segment, segment_mask, context], training=False)
        total += float(skipgram_loss(context, context_mask, output)) * len(chunk)
    return total / len(centres)
