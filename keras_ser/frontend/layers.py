"""The front end's Keras layers: :class:`LogMel`, :class:`Deltas`, :class:`ResizeImages` and :class:`FrontEnd`.

``FrontEnd`` turns waveforms into one paper's model input (its settings:
:mod:`keras_ser.frontend.presets`) from the ops of :mod:`keras_ser.frontend.ops` and the
standardisation of :mod:`keras_ser.frontend.standardize`. The layers are Keras
custom objects registered as ``keras_ser>LogMel``, ``keras_ser>Deltas``,
``keras_ser>ResizeImages`` and ``keras_ser>FrontEnd``, the names saved ``.keras`` files
refer to (keep them).

Pad/crop policy of the 40 x 500 input of zhao2019
-------------------------------------------------
The waveform is zero-padded at the end (or cropped) to ``(500 - 1) * hop``
samples, which gives exactly 500 centred frames. Padded frames are therefore
digital silence, whose mel power is zero and whose dB value is the floor
``max - top_db`` of that utterance (the same value librosa gives a silent
stretch). No mask or length is carried: zhao2019 feeds a fixed 40 x 500 input.
EMO-DB-2s utterances (2.0 s, 201 frames) thus end with 299 floor frames;
:func:`keras_ser.frontend.ops.num_frames` gives the number of frames that hold signal.

Length cap (``max_seconds``)
----------------------------
A variable-length front end (``num_frames=None``: ``"zhao2018"``, the segment
presets) gives a long utterance many frames, and a training batch is padded to its
longest member, so one 10-minute file raises a run's memory for every batch.
``max_seconds`` keeps the first ``max_seconds`` of each waveform and drops the rest,
before any other step. Keeping the start (rather than a centred crop) matches the
crop of ``num_frames`` and ``duration`` above, and needs no knowledge of the full
length, so a streamed or padded input is cut the same way. Being a ``FrontEnd``
setting, it is stored in a MODEL DIR's ``frontend.json`` and the exported SavedModel,
so training, ``predict`` and serving see the same input. The default, ``None``, keeps
everything: no paper caps the length, and a default cap would change the recipes
(and so the configuration of runs that resume) and the saved models of earlier
versions; a recipe for a corpus with long files sets ``frontend.max_seconds``.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_ser.errors import ParameterError
from keras_ser.frontend.ops import (deltas, fix_length, frame_settings, log_mel, mel_filterbank, minmax_scale,
                                    normalize, pad_to_min, preemphasis, resize_images, segment, stack_deltas,
                                    stack_segments)
from keras_ser.frontend.presets import DEFAULTS, PRESETS, numerics_revision, resolve
from keras_ser.frontend.standardize import standardize_utterance

_LOG_MEL_KEYS = ("sample_rate", "n_mels", "fmin", "fmax", "htk", "win_ms", "hop_ms", "n_fft", "window", "mel_norm", "log", "top_db")


@keras.saving.register_keras_serializable(package="keras_ser")
class LogMel(keras.layers.Layer):
    """Keras layer around :func:`log_mel`: ``[batch, samples] -> [batch, frames, n_mels]``.

    Examples
    --------
    >>> LogMel(n_mels=64, fmin=20.0, fmax=8000.0, htk=False)(tf.zeros([1, 16000])).shape
    TensorShape([1, 101, 64])
    """

    def __init__(self, sample_rate=16000, n_mels=40, fmin=0.0, fmax=None, htk=True, win_ms=25.0, hop_ms=10.0,
                 n_fft=None, window="hamming", mel_norm="slaney", log="db", top_db=80.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.settings = dict(sample_rate=sample_rate, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, win_ms=win_ms,
                             hop_ms=hop_ms, n_fft=n_fft, window=window, mel_norm=mel_norm, log=log, top_db=top_db)
        # Validate eagerly so that a bad setting fails at construction, not at first call.
        bins = frame_settings(sample_rate, win_ms, hop_ms, n_fft)[2]
        mel_filterbank(sample_rate, bins, n_mels, fmin, fmax, htk, mel_norm)

    def call(self, waveform):
        return log_mel(waveform, **self.settings)

    def get_config(self):
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="keras_ser")
class Deltas(keras.layers.Layer):
    """Keras layer around :func:`deltas`; ``orders=(0, 1, 2)`` stacks static, delta and
    delta-delta on a new last axis (the 3-channel input of zhang2021_multicnn and zhang2021_dcnn).

    Examples
    --------
    >>> Deltas()(tf.zeros([1, 64, 64])).shape
    TensorShape([1, 64, 64, 3])
    """

    def __init__(self, orders=(0, 1, 2), width=5, nested=True, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.orders = tuple(int(o) for o in orders)
        if not self.orders or min(self.orders) < 0:
            raise ParameterError(f"orders must be non-negative integers, got {orders!r}")
        self.width = width
        self.nested = nested

    def call(self, features):
        return stack_deltas(features, self.orders, self.width, self.nested)

    def get_config(self):
        return {**super().get_config(), "orders": list(self.orders), "width": self.width, "nested": self.nested}


@keras.saving.register_keras_serializable(package="keras_ser")
class ResizeImages(keras.layers.Layer):
    """Keras layer around :func:`~keras_ser.frontend.ops.resize_images`: ``[..., H, W, C] -> [..., size, size, C]``.

    The image resize of :class:`FrontEnd` as a layer of its own (:meth:`FrontEnd.split_resize`).

    Examples
    --------
    >>> ResizeImages(227)(tf.zeros([2, 8, 64, 64, 3])).shape
    TensorShape([2, 8, 227, 227, 3])
    """

    def __init__(self, size, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ParameterError(f"size must be a positive integer, got {size!r}")
        self.size = size

    def call(self, images):
        return resize_images(images, self.size)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-3]) + (self.size, self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="keras_ser")
class FrontEnd(keras.layers.Layer):
    """Waveforms ``[batch, samples]`` (float32 in [-1, 1] at ``sample_rate``) to a paper's model input.

    ``FrontEnd("zhao2019")`` builds the input of one paper (see :data:`keras_ser.frontend.presets.TABLE`);
    keyword arguments override single settings. The waveform must already be
    at ``sample_rate`` (16 kHz for all presets except the raw-wave inputs of zhang2021_multicnn
    and tzirakis2021, which expect 22.05 kHz): load it with
    ``keras_ser.audio.load(path, sr=front_end.sample_rate)``. Each row is one
    utterance; rows of a padded batch are processed as if the zero padding were
    part of the utterance, so feed utterances one at a time (or at equal
    length) when ``normalize=True``.

    Processing order: ``max_seconds`` (keep at most the first ``max_seconds``
    seconds, see the module docstring) -> ``normalize`` (zhang2021_dcnn Sec. 2.1) -> fixed ``duration`` in
    seconds (crop / zero-pad, zhang2021_dcnn Sec. 3.2) -> ``preemphasis`` (zhang2021_dcnn Sec. 2.2) ->
    representation:

    * ``"log_mel"``: :func:`~keras_ser.frontend.ops.log_mel` ``[b, frames, n_mels]``; ``num_frames``
      fixes the number of frames (module docstring: pad/crop policy);
      ``delta_orders=k`` appends deltas of orders 1..k on the last axis.
    * ``"mel_segments"``: log-mel cut into ``segment_frames``-frame segments
      every ``segment_hop`` frames; ``channels`` (1-3, zhang2021_dcnn Table 1) of static /
      delta / delta-delta computed per segment (``delta_scope="segment"``, zhang2021_multicnn)
      or on the whole utterance before cutting (``"utterance"``); optional
      ``image_range`` min-max scaling per segment and channel, bilinear resize
      to ``image_size`` (zhang2021_multicnn, zhang2021_dcnn: 227 for AlexNet) and 3D stacks of
      ``stack_depth`` consecutive segments (zhang2021_multicnn: 4; Table 6: 6, 8, 10). The
      waveform is zero-padded so that at least one segment (stack) exists.
    * ``"raw_segments"``: waveform times ``raw_scale`` (zhang2021_multicnn: 256) cut into
      ``segment_samples``-sample segments every ``segment_hop_samples``
      (``[b, n, segment_samples, 1]``), or with ``sequence_frames`` into
      sequences of that many frames (tzirakis2021: 100 frames of 0.1 s = 10 s,
      ``[b, n, sequence_frames, segment_samples]``). ``pad_end`` keeps a
      partial last segment / sequence by zero padding.

    ``standardize="utterance"`` standardises ``"log_mel"`` features per
    utterance and dimension over time (:func:`~keras_ser.frontend.standardize.standardize_utterance`);
    ``standardize="global"`` maps them with fixed per-dimension statistics
    ``(x - feature_mean) / feature_std`` (:func:`~keras_ser.frontend.standardize.feature_statistics` of a
    training set), which keeps level differences between utterances (loud
    anger, soft sadness) that per-utterance CMVN removes. ``"speaker"`` is the
    same map with one speaker's statistics (per-speaker normalisation: the
    experiment runner standardises every speaker with its own). Off in every
    preset because no paper states a normalisation.

    Examples
    --------
    >>> fe = FrontEnd("zhang2021_dcnn")
    >>> fe(tf.zeros([2, 32000]) + 0.1 * tf.random.normal([2, 32000])).shape
    TensorShape([2, 8, 227, 227, 3])
    >>> FrontEnd.from_config(fe.get_config()).get_config() == fe.get_config()
    True
    """

    def __init__(self, preset=None, **kwargs):
        base = {k: kwargs.pop(k) for k in list(kwargs) if k in ("name", "dtype", "trainable")}
        base.setdefault("dtype", "float32")
        base.setdefault("trainable", False)
        super().__init__(**base)
        unknown = sorted(set(kwargs) - set(DEFAULTS))
        if unknown:
            raise ParameterError(f"unknown FrontEnd settings {unknown}; known: {sorted(DEFAULTS)}")
        if preset is not None and preset not in PRESETS:
            raise ParameterError(f"unknown FrontEnd preset {preset!r}; available: {sorted(PRESETS)}")
        self.preset = preset
        settings = resolve(preset, **kwargs)
        if settings["image_range"] is not None:
            settings["image_range"] = [float(v) for v in settings["image_range"]]
        self.settings = settings
        self._validate()

    # -- settings ---------------------------------------------------------- #
    @property
    def sample_rate(self):
        """Rate in Hz the input waveform must have."""
        return self.settings["sample_rate"]

    @property
    def max_samples(self):
        """Samples kept of each waveform (``max_seconds`` at ``sample_rate``), or None."""
        seconds = self.settings["max_seconds"]
        return None if seconds is None else int(round(seconds * self.sample_rate))

    @property
    def segmented(self):
        """True when the output has a segment axis 1 (scores are pooled per utterance)."""
        return self.settings["representation"] != "log_mel"

    @property
    def hop_length(self):
        """STFT hop in samples."""
        s = self.settings
        return frame_settings(s["sample_rate"], s["win_ms"], s["hop_ms"], s["n_fft"])[1]

    @property
    def numerics_revision(self):
        """The revision of the front end's code that this front end's output follows
        (:func:`keras_ser.frontend.presets.numerics_revision`)."""
        return numerics_revision(self.settings)

    def split_resize(self):
        """This front end as ``(front end without its image resize, that resize)``.

        :class:`ResizeImages` applied to the first's output gives exactly this front end's
        output, since each image is resized on its own. A 64 x 64 segment holds 1/12.6 of
        the values of its 227 x 227 image, so a fold that keeps every segment of a corpus
        in memory (zhang2021_dcnn's stage 1, the zhang2021_multicnn 2D CNN) keeps them small
        and resizes each batch inside the model
        (:func:`keras_ser.experiments.training.with_input_resize`).

        Returns
        -------
        (FrontEnd, ResizeImages or None)
            ``(self, None)`` when there is nothing to split off: no ``image_size``, or 3D
            stacks (``stack_depth``), which are built from the resized images.

        Examples
        --------
        >>> small, resize = FrontEnd("zhang2021_dcnn").split_resize()
        >>> small(tf.random.normal([1, 48000])).shape, resize.size
        (TensorShape([1, 8, 64, 64, 3]), 227)
        """
        s = self.settings
        if s["image_size"] is None or s["stack_depth"] is not None:
            return self, None
        return FrontEnd(self.preset, **dict(s, image_size=None)), ResizeImages(s["image_size"])

    def _log_mel_kwargs(self):
        return {k: self.settings[k] for k in _LOG_MEL_KEYS}

    def _validate(self):
        s = self.settings
        if s["representation"] not in ("log_mel", "mel_segments", "raw_segments"):
            raise ParameterError(f"representation must be log_mel, mel_segments or raw_segments, got {s['representation']!r}")
        if not isinstance(s["sample_rate"], int) or s["sample_rate"] <= 0:
            raise ParameterError(f"sample_rate must be a positive integer, got {s['sample_rate']!r}")
        if not 0.0 <= s["preemphasis"] < 1.0:
            raise ParameterError(f"preemphasis must lie in [0, 1), got {s['preemphasis']!r}")
        for key in ("duration", "max_seconds"):
            value = s[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise ParameterError(f"{key} must be positive seconds or None, got {value!r}")
        if s["max_seconds"] is not None:
            s["max_seconds"] = float(s["max_seconds"])
            if self.max_samples < 1:
                raise ParameterError(f"max_seconds={s['max_seconds']!r} keeps no sample at {s['sample_rate']} Hz")
        if s["standardize"] not in (None, "utterance", "global", "speaker"):
            raise ParameterError(
                f"standardize must be None, 'utterance', 'global' or 'speaker', got {s['standardize']!r}")
        if s["standardize"] is not None and s["representation"] != "log_mel":
            raise ParameterError(f"standardize applies to representation='log_mel' only, not {s['representation']!r}")
        stats = (s["feature_mean"], s["feature_std"])
        if s["standardize"] in ("global", "speaker"):
            if stats[0] is None or stats[1] is None:
                raise ParameterError(
                    f"standardize={s['standardize']!r} needs feature_mean and feature_std "
                    "(keras_ser.frontend.feature_statistics; the experiment runner computes them per fold)")
            width = s["n_mels"] * (s["delta_orders"] + 1)
            for key, values in zip(("feature_mean", "feature_std"), stats):
                if len(values) != width or not all(np.isfinite(v) for v in values):
                    raise ParameterError(f"{key} must hold {width} finite values (one per feature), got {len(values)}")
            if min(stats[1]) <= 0:
                raise ParameterError("feature_std must be positive")
            s["feature_mean"], s["feature_std"] = [float(v) for v in stats[0]], [float(v) for v in stats[1]]
        elif stats != (None, None):
            raise ParameterError("feature_mean / feature_std are used only with standardize='global' or 'speaker'")
        if s["log"] not in ("db", "ln"):
            raise ParameterError(f"log must be 'db' or 'ln', got {s['log']!r}")
        if s["channels"] not in (1, 2, 3):
            raise ParameterError(f"channels must be 1, 2 or 3, got {s['channels']!r}")
        if s["delta_scope"] not in ("segment", "utterance"):
            raise ParameterError(f"delta_scope must be 'segment' or 'utterance', got {s['delta_scope']!r}")
        if s["image_range"] is not None and (len(s["image_range"]) != 2 or s["image_range"][0] >= s["image_range"][1]):
            raise ParameterError(f"image_range must be [low, high] with low < high, got {s['image_range']!r}")
        for key in ("num_frames", "segment_frames", "segment_hop", "image_size", "stack_depth", "stack_hop",
                    "segment_samples", "segment_hop_samples", "sequence_frames"):
            value = s[key]
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ParameterError(f"{key} must be a positive integer or None, got {value!r}")
        if not isinstance(s["delta_orders"], int) or s["delta_orders"] < 0:
            raise ParameterError(f"delta_orders must be a non-negative integer, got {s['delta_orders']!r}")
        bins = frame_settings(s["sample_rate"], s["win_ms"], s["hop_ms"], s["n_fft"])[2]
        if s["representation"] != "raw_segments":
            mel_filterbank(s["sample_rate"], bins, s["n_mels"], s["fmin"], s["fmax"], s["htk"], s["mel_norm"])
        if s["representation"] == "mel_segments" and s["channels"] > 1 and s["segment_frames"] < s["delta_width"]:
            raise ParameterError(f"segment_frames={s['segment_frames']} is shorter than delta_width={s['delta_width']}")

    # -- computation ------------------------------------------------------- #
    def call(self, waveform):
        s = self.settings
        x = tf.convert_to_tensor(waveform, tf.float32)
        if s["max_seconds"] is not None:
            x = x[:, :self.max_samples]
        if s["normalize"]:
            x = normalize(x)
        if s["duration"] is not None:
            x = fix_length(x, int(round(s["duration"] * s["sample_rate"])))
        if s["preemphasis"]:
            x = preemphasis(x, s["preemphasis"])
        if s["representation"] == "log_mel":
            return self._log_mel(x)
        if s["representation"] == "mel_segments":
            return self._mel_segments(x)
        return self._raw_segments(x)

    def _log_mel(self, x):
        s = self.settings
        if s["num_frames"] is not None:
            x = fix_length(x, (s["num_frames"] - 1) * self.hop_length)
        elif s["delta_orders"]:
            x = pad_to_min(x, (s["delta_width"] - 1) * self.hop_length)
        feats = log_mel(x, **self._log_mel_kwargs())
        if s["delta_orders"]:
            orders = range(s["delta_orders"] + 1)
            feats = tf.concat([feats if o == 0 else deltas(feats, o, s["delta_width"], s["nested_deltas"])
                               for o in orders], axis=-1)
        if s["standardize"] == "utterance":
            feats = standardize_utterance(feats)
        elif s["standardize"] in ("global", "speaker"):
            feats = (feats - tf.constant(s["feature_mean"], tf.float32)) / tf.constant(s["feature_std"], tf.float32)
        return feats

    def _mel_segments(self, x):
        s = self.settings
        min_segments = s["stack_depth"] or 1
        min_frames = s["segment_frames"] + (min_segments - 1) * s["segment_hop"]
        x = pad_to_min(x, (min_frames - 1) * self.hop_length)
        feats = log_mel(x, **self._log_mel_kwargs())
        orders = tuple(range(s["channels"]))
        if s["delta_scope"] == "utterance":
            images = segment(stack_deltas(feats, orders, s["delta_width"], s["nested_deltas"]),
                             s["segment_frames"], s["segment_hop"])
        else:
            images = stack_deltas(segment(feats, s["segment_frames"], s["segment_hop"]), orders,
                                   s["delta_width"], s["nested_deltas"])
        images = tf.transpose(images, [0, 1, 3, 2, 4])  # [b, n, time, mel, c] -> [b, n, mel, time, c]
        if s["image_range"] is not None:
            images = minmax_scale(images, *s["image_range"])
        if s["image_size"] is not None:
            images = resize_images(images, s["image_size"])
        if s["stack_depth"] is not None:
            images = stack_segments(images, s["stack_depth"], s["stack_hop"])
        return images

    def _raw_segments(self, x):
        s = self.settings
        if s["raw_scale"] is not None:
            x = x * s["raw_scale"]
        length = s["segment_samples"]
        hop = s["segment_hop_samples"] or length
        x = pad_to_min(x, length)
        frames = tf.signal.frame(x, length, hop, axis=-1, pad_end=s["pad_end"])
        if s["sequence_frames"] is None:
            return frames[..., None]
        return tf.signal.frame(frames, s["sequence_frames"], s["sequence_frames"], axis=1, pad_end=s["pad_end"])

    def get_config(self):
        config = super().get_config()
        config.update({"preset": self.preset, **self.settings})
        return config
