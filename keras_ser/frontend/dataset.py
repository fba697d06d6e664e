"""The tf.data pipeline: utterance records to batched model inputs (:func:`make_dataset`).

An utterance record is any object with ``.path``, ``.label`` and ``.id``
(e.g. :class:`keras_ser.data.Utterance`). :func:`make_dataset` builds

    records -> (shuffle) -> decode + resample (soundfile + soxr, parallel map)
    -> (speed perturbation) -> (cache) -> FrontEnd -> (segments) -> batch -> prefetch

and yields ``(inputs, label_index)`` or, with ``with_ids=True``,
``(inputs, label_index, utterance_id)``. Keras ``predict`` reads only the first
element, so the id-carrying form can be predicted directly and the segment
scores pooled back to utterances with :func:`pool_by_id`; for ``fit`` use
``with_ids=False`` (a third element would be taken as sample weights).

Determinism: the order depends only on ``seed`` (shuffling uses it, all maps
are order-preserving), and speed perturbation is the deterministic 5-fold
expansion of zhang2021_dcnn (Sec. 3.2: every utterance at every factor, 535 -> 2675
EMO-DB utterances), not a random draw.

Training (:func:`keras_ser.experiments.training.fit_model`) computes each utterance's
front-end output once per run, in TensorFlow, and keeps it for the fold (the runner's
feature store: standardisation and word vectors are fitted per fold on those outputs);
:func:`array_dataset` then feeds the fold's arrays to ``Model.fit`` as a shuffled,
batched, prefetched ``tf.data.Dataset``.
"""

import numpy as np
import soundfile
import tensorflow as tf

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError
from keras_ser.frontend.layers import FrontEnd


def label_indices(utterances, label_names):
    """Map each record's ``.label`` to its index in ``label_names``.

    Raises ``DataError`` naming the utterance (id and path) for a label that is
    not in ``label_names``.

    Examples
    --------
    >>> from types import SimpleNamespace as U
    >>> label_indices([U(id="a", path="a.wav", label="sad")], ["angry", "sad"])
    [1]
    """
    index = {name: i for i, name in enumerate(label_names)}
    if len(index) != len(label_names):
        raise ParameterError(f"label_names contains duplicates: {list(label_names)}")
    out = []
    for utt in utterances:
        if utt.label not in index:
            raise DataError(
                f"utterance {utt.id!r} ({utt.path}) has label {utt.label!r}, which is not one of {list(label_names)}"
            )
        out.append(index[utt.label])
    return out


def _check_readable(utterances):
    for utt in utterances:
        try:
            info = soundfile.info(str(utt.path))
        except Exception as err:  # missing or undecodable header
            raise DataError(f"utterance {utt.id!r}: cannot read audio file {utt.path}: {err}") from err
        if info.frames == 0:
            raise DataError(f"utterance {utt.id!r}: audio file {utt.path} contains no samples")


def make_dataset(
    utterances,
    label_names,
    front_end=None,
    *,
    sample_rate=None,
    batch_size=32,
    shuffle=False,
    seed=None,
    speed_factors=None,
    segments=False,
    with_ids=False,
    bucket_boundaries=None,
    cache=None,
    drop_remainder=False,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=True,
    check_files=True,
):
    """Build a batched ``tf.data.Dataset`` from utterance records.

    Parameters
    ----------
    utterances : sequence
        Records with ``.path``, ``.label`` and ``.id``.
    label_names : sequence of str
        Output order of the classes; labels are mapped to their index here.
    front_end : FrontEnd, str, dict or None
        A :class:`~keras_ser.frontend.FrontEnd`, a preset name, a FrontEnd
        config, or ``None`` for batches of raw waveforms.
    sample_rate : int or None
        Decoding rate; defaults to the front end's ``sample_rate`` (16 kHz
        without a front end).
    batch_size : int
        Elements per batch: utterances, or segments when ``segments=True``.
    shuffle : bool
        Shuffle the records (each epoch anew, seeded by ``seed``); segments are
        additionally shuffled within a window of ``4 * batch_size``.
    seed : int or None
        Seed of all shuffling. Same seed and records give the same batches.
    speed_factors : sequence of float or None
        Speed perturbation (zhang2021_dcnn Sec. 3.2): every utterance is included once per
        factor, e.g. :data:`keras_ser.audio.SPEED_FACTORS`.
    segments : bool
        For a segmenting front end, yield single segments (each with its
        utterance's label and id) instead of per-utterance segment stacks.
    with_ids : bool
        Add the utterance id (tf.string) as a third element.
    bucket_boundaries : sequence of int or None
        Waveform lengths (samples) at which to split buckets of similar length
        before padding (``tf.data.Dataset.bucket_by_sequence_length``); used
        when utterances (not segments) are batched.
    cache : None, "memory" or path
        Cache the decoded (and perturbed) waveforms in memory or in a file.
    drop_remainder : bool
        Drop an incomplete last batch.
    check_files : bool
        Check every file header before building the dataset, so missing or
        unreadable files fail early with a ``DataError`` naming them (decoding
        errors inside the pipeline also name the file).

    Returns
    -------
    tf.data.Dataset
        ``(inputs, label_index)`` or ``(inputs, label_index, id)``. Utterances
        of different lengths are zero-padded to the longest in the batch; the
        front end is then applied to the batch (one batched STFT) for
        non-segmenting front ends, or per utterance for segmenting ones.

    Examples
    --------
    >>> ds = make_dataset(utts, ["W", "L", "E", "A", "F", "T", "N"], "zhao2019", batch_size=8)  # doctest: +SKIP
    >>> x, y = next(iter(ds))  # doctest: +SKIP
    >>> x.shape  # doctest: +SKIP
    TensorShape([8, 500, 40])
    """
    utterances = list(utterances)
    if not utterances:
        raise DataError("make_dataset got no utterances")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    if cache not in (None, "memory") and not isinstance(cache, (str, bytes)) and not hasattr(cache, "__fspath__"):
        raise ParameterError(f"cache must be None, 'memory' or a file path, got {cache!r}")
    if isinstance(front_end, str):
        front_end = FrontEnd(front_end)
    elif isinstance(front_end, dict):
        front_end = FrontEnd.from_config(front_end)
    elif front_end is not None and not isinstance(front_end, FrontEnd):
        raise ParameterError(f"front_end must be a FrontEnd, preset name, config dict or None, got {front_end!r}")
    if segments and (front_end is None or not front_end.segmented):
        raise ParameterError("segments=True needs a segmenting front end (mel_segments or raw_segments)")
    if sample_rate is None:
        sample_rate = front_end.sample_rate if front_end is not None else 16000
    if front_end is not None and sample_rate != front_end.sample_rate:
        raise ParameterError(f"sample_rate {sample_rate} differs from the front end's {front_end.sample_rate}")
    factors = [1.0] if speed_factors is None else [float(f) for f in speed_factors]
    if not factors or min(factors) <= 0:
        raise ParameterError(f"speed_factors must be positive, got {speed_factors!r}")

    labels = label_indices(utterances, label_names)
    if check_files:
        _check_readable(utterances)
    paths = [str(u.path) for u in utterances for _ in factors]
    ids = [str(u.id) for u in utterances for _ in factors]
    targets = np.repeat(np.asarray(labels, np.int32), len(factors))
    speeds = np.tile(np.asarray(factors, np.float32), len(utterances))

    ds = tf.data.Dataset.from_tensor_slices((paths, speeds, targets, ids))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)

    def _decode(path, speed):
        def _load(path_bytes, factor):
            y = audio.load(path_bytes.decode(), sr=sample_rate)
            # the factor travelled as float32; round it back to the requested value
            factor = round(float(factor), 6)
            if factor != 1.0:
                y = audio.speed_perturb(y, factor, sample_rate)
            return y

        wave = tf.numpy_function(_load, [path, speed], tf.float32, stateful=False)
        return tf.ensure_shape(wave, [None])

    ds = ds.map(lambda p, s, y, i: (_decode(p, s), y, i), num_parallel_calls=num_parallel_calls, deterministic=True)
    if cache == "memory":
        ds = ds.cache()
    elif cache is not None:
        ds = ds.cache(str(cache))

    if front_end is not None and front_end.segmented:
        ds = ds.map(lambda w, y, i: (front_end(w[None])[0], y, i), num_parallel_calls=num_parallel_calls,
                    deterministic=True)
        if segments:
            ds = ds.flat_map(lambda x, y, i: tf.data.Dataset.from_tensor_slices(
                (x, tf.fill(tf.shape(x)[:1], y), tf.fill(tf.shape(x)[:1], i))))
            if shuffle:
                ds = ds.shuffle(4 * batch_size, seed=None if seed is None else seed + 1)
            ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        else:
            ds = ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    else:
        if bucket_boundaries:
            ds = ds.bucket_by_sequence_length(
                lambda w, y, i: tf.shape(w)[0], list(bucket_boundaries), [batch_size] * (len(bucket_boundaries) + 1),
                drop_remainder=drop_remainder)
        else:
            ds = ds.padded_batch(batch_size, drop_remainder=drop_remainder)
        if front_end is not None:
            ds = ds.map(lambda w, y, i: (front_end(w), y, i), num_parallel_calls=num_parallel_calls,
                        deterministic=True)
    if not with_ids:
        ds = ds.map(lambda x, y, i: (x, y))
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


#: Batches :func:`array_dataset` prepares ahead of the one the model is running on.
ARRAY_PREFETCH_BATCHES = 2


def array_dataset(inputs, targets, batch_size, *, shuffle_seed=None, skip_orders=0, prefetch=True):
    """Batched ``tf.data.Dataset`` of in-memory model inputs and targets, reshuffled every epoch.

    The arrays are held once, as one repeated element, and every batch gathers its rows
    by index (as Keras does for NumPy input), so shuffling does not copy the data into
    a shuffle buffer.

    Parameters
    ----------
    inputs : array, tuple / list of arrays, or dict of str to array
        ``[n, ...]`` each; several arrays (or a dict by input name) are the inputs of a
        multi-input model.
    targets : array ``[n, ...]`` or None
        None gives batches of inputs alone, for ``Model.predict``.
    batch_size : int
    shuffle_seed : int or None
        Shuffle the rows anew each epoch, in an order fixed by this seed; None keeps
        their order (validation, prediction).
    skip_orders : int
        With ``shuffle_seed``, draw and drop the orders of this many passes over the rows
        first, so that a fit resumed mid-way (:mod:`keras_ser.experiments.checkpoints`) sees
        the rows in the orders an uninterrupted one saw from there.
    prefetch : bool
        Prepare the next batches (:data:`ARRAY_PREFETCH_BATCHES`) while the model runs on
        this one. tf.data's autotuning is off (see the source for why).

    Returns
    -------
    tf.data.Dataset
        ``(inputs, targets)`` batches, or ``(inputs,)`` without targets; the last one may be smaller.

    Raises
    ------
    keras_ser.errors.ParameterError
        An empty set of rows, a bad ``batch_size`` or ``skip_orders``, or arrays whose row
        counts differ.

    Examples
    --------
    >>> ds = array_dataset(np.zeros([5, 3]), np.arange(5), 2, shuffle_seed=0)
    >>> [int(y.shape[0]) for _, y in ds]
    [2, 2, 1]
    """
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(skip_orders, (int, np.integer)) or isinstance(skip_orders, bool) or skip_orders < 0:
        raise ParameterError(f"skip_orders must be an integer >= 0, got {skip_orders!r}")
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else inputs
    # A one-element tuple keeps Keras from reading a two-input model's inputs as (x, y).
    structure = (inputs,) if targets is None else (inputs, targets)
    rows = {int(np.shape(a)[0]) for a in tf.nest.flatten(structure)}
    if len(rows) != 1:
        raise ParameterError(f"inputs and targets differ in their number of rows: {sorted(rows)}")
    n = rows.pop()
    if n == 0:
        raise ParameterError("array_dataset got no rows")
    data = tf.data.Dataset.from_tensors(structure).repeat()
    order = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        order = order.shuffle(n, seed=int(shuffle_seed), reshuffle_each_iteration=True)
        # Every iterator made of the indices (here, or of the zipped dataset below) draws its
        # order from one generator, which each draw advances.
        for _ in range(int(skip_orders)):
            order.reduce(np.int64(0), lambda total, _: total)
    ds = tf.data.Dataset.zip((order.batch(batch_size), data)).map(
        lambda index, arrays: tf.nest.map_structure(lambda a: tf.gather(a, index), arrays))
    if prefetch:
        ds = ds.prefetch(ARRAY_PREFETCH_BATCHES)
    # Autotuning runs a thread per iterator that sleeps between its rounds, and destroying the
    # iterator waits out that sleep: Keras makes one iterator per epoch for training, one for
    # validation and one per prediction, so each epoch lost seconds of idle CPU (2-4 s of
    # each 8-10 s zhang2021_multicnn_3d epoch; benchmarks/epoch_overhead.py). One gather per batch
    # leaves nothing to tune.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def pool_by_id(ids, scores):
    """Average segment scores per utterance id (zhang2021_multicnn Sec. 2.3, segment-to-utterance average pooling).

    Parameters
    ----------
    ids : sequence of str or bytes
        Utterance id of each segment.
    scores : array-like ``[segments, classes]``

    Returns
    -------
    unique_ids : list of str
        In order of first appearance.
    pooled : np.ndarray ``[utterances, classes]``

    Examples
    --------
    >>> pool_by_id(["a", "b", "a"], [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    (['a', 'b'], array([[0.5, 0. ],
           [0. , 1. ]]))
    """
    names = [i.decode() if isinstance(i, bytes) else str(i) for i in np.asarray(ids).tolist()]
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(names):
        raise ParameterError(f"scores must be [segments, classes] with one row per id, got {scores.shape} "
                             f"for {len(names)} ids")
    order = {}
    for name in names:
        order.setdefault(name, len(order))
    index = np.array([order[n] for n in names])
    sums = np.zeros((len(order), scores.shape[1]))
    np.add.at(sums, index, scores)
    counts = np.bincount(index, minlength=len(order))
    return list(order), sums / counts[:, None]
