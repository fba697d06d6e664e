"""Feature standardisation: per utterance, with training-set statistics, per speaker.

None of the papers states a feature normalisation; ``FrontEnd(standardize=...)``
(:class:`keras_ser.frontend.FrontEnd`) offers three, all applied in the graph so that
``predict`` and exported models carry them:

* ``"utterance"``: :func:`standardize_utterance` (per-utterance CMVN);
* ``"global"``: ``(x - feature_mean) / feature_std`` with :func:`feature_statistics`
  of a training set;
* ``"speaker"``: the same map with one speaker's statistics; :func:`with_speaker_statistics`
  adapts a front end to a new speaker.

Imports NumPy, TensorFlow and :mod:`keras_ser.errors` only; it works on a front end
through its ``get_config`` / ``from_config``, so it does not import the layers.
"""

import numpy as np
import tensorflow as tf

from keras_ser.errors import ParameterError


def standardize_utterance(features, epsilon=1e-5):
    """Per-utterance, per-dimension standardisation over time (CMVN).

    None of the papers states a feature normalisation. Raw dB log-mels (band
    means of -10 to -45 dB and standard deviations near 15-20 dB on EMO-DB)
    saturate the LSTM gates of the BLSTM branches, which have no BatchNorm.
    This per-utterance map fixes that, at the price of removing each
    utterance's level per band (an arousal cue; ``standardize="global"`` and
    ``"speaker"`` keep it, and the ``zhao2019`` / ``zhao2018`` recipes use
    ``"speaker"``). It is computed in the graph, so exported models carry it.

    Parameters
    ----------
    features : tf.Tensor
        ``[batch, frames, dims]``.
    epsilon : float
        Added to the variance.

    Returns
    -------
    tf.Tensor
        ``(features - mean_t) / sqrt(var_t + epsilon)``, statistics over axis -2.

    Examples
    --------
    >>> x = tf.constant([[[1.0], [3.0]]])
    >>> standardize_utterance(x).numpy().ravel().round(3).tolist()
    [-1.0, 1.0]
    """
    mean, variance = tf.nn.moments(features, axes=[-2], keepdims=True)
    return (features - mean) * tf.math.rsqrt(variance + epsilon)


def feature_statistics(features, epsilon=1e-5):
    """Per-dimension mean and standard deviation over every frame of a training set.

    The statistics of ``FrontEnd(..., standardize="global")``: the experiment
    runner computes them on each fold's training utterances (after speed
    perturbation) and stores them in the fold's front end, so that predict and
    export apply the same affine map in the graph.

    Parameters
    ----------
    features : sequence of np.ndarray
        ``[frames, dims]`` arrays (frame counts may differ).
    epsilon : float
        Added to the variance, so that a constant dimension gets std ``sqrt(epsilon)``.

    Returns
    -------
    (list of float, list of float)
        Mean and standard deviation per dimension, accumulated in float64.

    Examples
    --------
    >>> mean, std = feature_statistics([np.array([[1.0], [3.0]]), np.array([[5.0]])])
    >>> [round(v, 3) for v in mean + std]
    [3.0, 1.633]
    """
    rows = [np.asarray(f, np.float64).reshape(-1, np.shape(f)[-1]) for f in features]
    if not rows or not sum(len(r) for r in rows):
        raise ParameterError("feature_statistics needs at least one frame")
    if len({r.shape[1] for r in rows}) != 1:
        raise ParameterError(f"feature_statistics got frames of different widths {sorted({r.shape[1] for r in rows})}")
    frames = np.concatenate(rows)
    if not np.all(np.isfinite(frames)):
        raise ParameterError("feature_statistics got non-finite feature values")
    mean = frames.mean(axis=0)
    std = np.sqrt(frames.var(axis=0) + epsilon)
    return mean.tolist(), std.tolist()


def with_speaker_statistics(frontend, waveforms):
    """A copy of a ``standardize="speaker"`` front end holding one speaker's statistics.

    The per-speaker normalisation of the experiment runner, for a speaker it has
    not seen: :func:`feature_statistics` over every frame of the speaker's
    utterances (unstandardised front-end outputs, no labels needed) become the
    ``feature_mean`` / ``feature_std`` of the returned front end. Use several
    utterances: one utterance's statistics amount to per-utterance standardisation.

    Parameters
    ----------
    frontend : FrontEnd
        With ``standardize="speaker"``.
    waveforms : sequence of 1-D arrays
        The speaker's utterances at ``frontend.sample_rate`` (lengths may differ).

    Raises
    ------
    keras_ser.errors.ParameterError
        If ``frontend`` is not speaker-standardised or ``waveforms`` is empty.

    Examples
    --------
    >>> from keras_ser.frontend import FrontEnd
    >>> fe = FrontEnd("zhao2019", standardize="speaker", feature_mean=[0.0] * 40, feature_std=[1.0] * 40)
    >>> rng = np.random.default_rng(0)
    >>> adapted = with_speaker_statistics(fe, [0.1 * rng.standard_normal(16000) for _ in range(3)])
    >>> bool(np.abs(np.mean(adapted(0.1 * rng.standard_normal((1, 16000)).astype("float32")))) < 0.5)
    True
    """
    config = frontend.get_config()
    if config.get("standardize") != "speaker":
        raise ParameterError(f"the front end has standardize={config.get('standardize')!r}, not 'speaker'; "
                             "it takes no speaker statistics")
    if len(waveforms) == 0:
        raise ParameterError("speaker statistics need at least one waveform of the speaker")
    layer = type(frontend)
    raw = layer.from_config(dict(config, standardize=None, feature_mean=None, feature_std=None))
    mean, std = feature_statistics([np.asarray(raw(np.asarray(w, np.float32)[None]))[0] for w in waveforms])
    return layer.from_config(dict(config, feature_mean=mean, feature_std=std))
