"""Deep-spectrum features: spectrogram images through ImageNet CNNs (fc7 activations).

zhao2019 (Zhao et al. 2019, Sec. IV-B, Table 3, Figs. 3-4) feeds Mel-spectrograms,
as images, to AlexNet, VGG16 and VGG19 and uses the activations of the second fully
connected layer (fc7, 4096-D) as features for a linear SVM -- the DeepSpectrum
approach. It compares them with the representation of its own Attention-BLSTM-FCN
(the layer named ``"embedding"``, Sec. III): :mod:`keras_ser.extraction.embeddings`.

The DeepSpectrum tool draws every spectrogram with matplotlib, saves a PNG and
reloads it. Here the whole waveform -> image path runs in TensorFlow:

1. power Mel spectrogram (centred frames; the STFT window and Mel filters of the
   chosen ``frontend``, see below: the values ``librosa.feature.melspectrogram``
   gives with those settings);
2. decibels relative to the image's maximum, floored at ``-top_db`` (the values of
   ``librosa.power_to_db(S, ref=np.max)``);
3. min-max normalisation to [0, 1] (what matplotlib's colour normalisation does with
   automatic limits), low frequencies at the bottom;
4. the colour map as a 256-entry lookup table gathered in-graph (matplotlib's own
   quantisation: index ``min(floor(v * 256), 255)``);
5. resize to the CNN's input size (227 AlexNet, 224 VGG) and scale to [0, 255].

Spectrogram settings (``frontend``, :data:`FRONTENDS`), both with 25 ms windows, a
10 ms hop and 16 kHz input:

* ``"zhao2019"``: zhao2019's own front end (Sec. III-A), which it used for the images
  it fed to AlexNet / VGG ("we exploited the Mel-spectrograms as the input for these
  three pre-trained CNNs", Sec. IV-B): Hamming window, FFT of the window's 400
  points, Mel bands on the scale of eq. 2, ``m = 2595 log10(1 + f / 700)`` (librosa's
  ``htk=True``; triangles with librosa's default Slaney area normalisation, as in
  :data:`keras_ser.frontend.PRESETS` ``"zhao2019"``). The zhao2019 recipes use it.
* ``"deepspectrum"`` (the default, for compatibility): the DeepSpectrum tool's
  librosa defaults: Hann window, FFT of 512 points (the next power of two), Slaney's
  Mel scale.

DeepSpectrum's own default is 128 Mel bands and the ``viridis`` colour map; zhao2019
varies the number of Mel bands in Figs. 3-4 (30-100) and its recipes use 40, so
``n_mels`` is a parameter.

Weights: ImageNet weights cannot be downloaded in this project's environment. With
``weights=None`` the CNN is randomly initialised (seeded); every description this
module produces says "random-init, NOT pretrained" in that case.

Imports NumPy and :mod:`keras_ser.errors`; matplotlib, TensorFlow, Keras,
:mod:`keras_ser.frontend` and :mod:`keras_ser.models.backbones` when used.
"""

import pathlib

import numpy as np

from keras_ser.errors import DataError, ParameterError

#: Spectrogram settings of :class:`SpectrogramImage` (module docstring): STFT window, Mel scale
#: (``htk``: eq. 2 of zhao2019) and FFT size (None: the next power of two >= the window).
FRONTENDS = {
    "zhao2019": {"window": "hamming", "htk": True, "n_fft": "window"},
    "deepspectrum": {"window": "hann", "htk": False, "n_fft": None},
}

#: fc7 extractor name -> (backbone name of ``keras_ser.models.backbones.fc7_model``, image size).
CNN_FEATURES = {
    "alexnet_fc7": ("alexnet", 227),
    "vgg16_fc7": ("vgg16", 224),
    "vgg19_fc7": ("vgg19", 224),
}


def colormap_table(name="viridis", size=256):
    """RGB lookup table of a matplotlib colour map, float32 [size, 3] in [0, 1].

    Examples
    --------
    >>> colormap_table("gray", 256)[[0, -1]].tolist()
    [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ParameterError(f"unknown matplotlib colour map {name!r}") from None
    return cmap.resampled(size)(np.arange(size))[:, :3].astype(np.float32)


def weights_description(weights):
    """Human-readable statement of which CNN weights are in use.

    Examples
    --------
    >>> weights_description(None)
    'random-init, NOT pretrained'
    """
    if weights is None:
        return "random-init, NOT pretrained"
    if weights == "imagenet":
        return "ImageNet-pretrained (keras)"
    return f"weights from {weights}"


class SpectrogramImage:
    """Waveform -> RGB spectrogram image, entirely in TensorFlow.

    Parameters
    ----------
    sample_rate : int
        Rate of the input waveforms (16000).
    n_mels : int
        Mel bands (rows of the spectrogram before resizing).
    win_length, hop_length : float
        Window and hop in seconds (zhao2019: 25 ms, 10 ms).
    n_fft : int, optional
        FFT size; default the ``frontend``'s (zhao2019: the window, 400 points at
        16 kHz; DeepSpectrum: the next power of two >= the window, 512).
    fmin, fmax : float
        Mel range; ``fmax`` defaults to ``sample_rate / 2``.
    top_db : float
        Dynamic range kept below the maximum (librosa's ``power_to_db`` default).
    colormap : str
        matplotlib colour map turned into an in-graph lookup table.
    image_size : int
        Output side in pixels (227 AlexNet, 224 VGG).
    resize_method : str
        ``tf.image.resize`` method.
    frontend : {"deepspectrum", "zhao2019"}
        STFT window, Mel scale and default FFT size (:data:`FRONTENDS`, module
        docstring): ``"zhao2019"`` is zhao2019's Hamming window and eq. 2 Mel scale,
        ``"deepspectrum"`` (default) the DeepSpectrum tool's Hann window and Slaney
        Mel scale.

    Examples
    --------
    >>> to_image = SpectrogramImage(image_size=224)              # doctest: +SKIP
    >>> to_image(np.zeros(16000, np.float32) + 0.1).shape         # doctest: +SKIP
    TensorShape([224, 224, 3])
    """

    def __init__(self, sample_rate=16000, n_mels=128, win_length=0.025, hop_length=0.010, n_fft=None,
                 fmin=0.0, fmax=None, top_db=80.0, colormap="viridis", image_size=224,
                 resize_method="bilinear", frontend="deepspectrum"):
        import tensorflow as tf

        from keras_ser.frontend import ops

        for key, value in (("sample_rate", sample_rate), ("n_mels", n_mels), ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ParameterError(f"{key} must be a positive int, got {value!r}")
        if not (0 < hop_length and 0 < win_length):
            raise ParameterError(f"win_length and hop_length must be positive seconds, got {win_length}, {hop_length}")
        if top_db is None or top_db <= 0:
            raise ParameterError(f"top_db must be positive, got {top_db!r}")
        self.sample_rate = int(sample_rate)
        self.win_samples = int(round(win_length * sample_rate))
        self.hop_samples = int(round(hop_length * sample_rate))
        if self.win_samples < 2 or self.hop_samples < 1:
            raise ParameterError(f"window {win_length}s / hop {hop_length}s too short at {sample_rate} Hz")
        if frontend not in FRONTENDS:
            raise ParameterError(f"frontend must be one of {sorted(FRONTENDS)}, got {frontend!r}")
        self.frontend = frontend
        settings = FRONTENDS[frontend]
        self.window = settings["window"]
        if n_fft:
            self.n_fft = int(n_fft)
        elif settings["n_fft"] == "window":
            self.n_fft = self.win_samples
        else:
            self.n_fft = int(2 ** np.ceil(np.log2(self.win_samples)))
        if self.n_fft < self.win_samples:
            raise ParameterError(f"n_fft={self.n_fft} is shorter than the window ({self.win_samples} samples)")
        self.top_db = float(top_db)
        self.image_size = int(image_size)
        self.resize_method = resize_method
        self.colormap = colormap
        self.win_ms, self.hop_ms = 1000.0 * win_length, 1000.0 * hop_length
        self._mel = tf.constant(ops.mel_filterbank(sample_rate, self.n_fft, n_mels, fmin, fmax,
                                                        htk=settings["htk"], norm="slaney"), tf.float32)
        self._table = tf.constant(colormap_table(colormap))
        self._fn = tf.function(self._image, input_signature=[tf.TensorSpec([None], tf.float32)])

    def mel_power(self, waveform):
        """Power Mel spectrogram ``[frames, n_mels]`` of a 1-D waveform tensor (librosa's centring)."""
        import tensorflow as tf

        from keras_ser.frontend import ops

        power = ops.power_spectrogram(waveform[None], self.sample_rate, self.win_ms, self.hop_ms,
                                           self.n_fft, window=self.window)[0]
        return tf.matmul(power, self._mel)

    def _image(self, waveform):
        import tensorflow as tf

        from keras_ser.frontend import ops

        db = ops.power_to_db(self.mel_power(waveform)[None], top_db=self.top_db)[0]
        low, high = tf.reduce_min(db), tf.reduce_max(db)
        unit = tf.math.divide_no_nan(db - low, high - low)
        index = tf.minimum(tf.cast(tf.floor(unit * 256.0), tf.int32), 255)
        # [frames, mels] -> rows = Mel bands with the highest band on top, columns = time.
        rgb = tf.gather(self._table, tf.reverse(tf.transpose(index), axis=[0]))
        rgb = tf.image.resize(rgb, [self.image_size, self.image_size], method=self.resize_method)
        return tf.clip_by_value(rgb, 0.0, 1.0) * 255.0

    def __call__(self, waveform):
        """RGB image ``[image_size, image_size, 3]`` float32 in [0, 255] of one waveform."""
        import tensorflow as tf

        signal = np.asarray(waveform, dtype=np.float32)
        if signal.ndim != 1 or signal.size < self.win_samples:
            raise ParameterError(
                f"waveform must be 1-D with at least {self.win_samples} samples, got shape {signal.shape}"
            )
        return self._fn(tf.constant(signal))


class DeepSpectrumExtractor:
    """fc7 activations of an image CNN on in-graph spectrogram images (zhao2019, Figs. 3-4).

    Parameters
    ----------
    features : {"alexnet_fc7", "vgg16_fc7", "vgg19_fc7"}
        Which CNN (zhao2019, Table 3).
    weights : None, "none", "imagenet" or path
        Resolved by ``keras_ser.models.backbones.resolve_weights`` (``"imagenet"`` for
        AlexNet reads ``bvlc_alexnet.npy`` from Keras' model cache) and passed to
        ``fc7_model``. ``None`` / ``"none"`` is a seeded random initialisation, NOT pretrained.
    model : keras.Model, optional
        Use this CNN instead of ``fc7_model`` (any model mapping ``[b, S, S, 3]``
        images in [0, 255] to ``[b, d]``); for small tests and custom backbones.
    image_size : int, optional
        Override of the CNN's image side (227 AlexNet, 224 VGG).
    seed : int
        Seed of the random initialisation when ``weights`` is None.
    sample_rate : int
        Rate the waveforms arrive at.
    **image_options
        Passed to :class:`SpectrogramImage` (``n_mels``, ``colormap``, ``frontend``, ...).

    Examples
    --------
    >>> ex = DeepSpectrumExtractor("vgg16_fc7")                         # doctest: +SKIP
    >>> ex.extract_batch([np.random.randn(32000).astype("float32")]).shape  # doctest: +SKIP
    (1, 4096)
    """

    framewise = False

    def __init__(self, features="vgg16_fc7", weights=None, *, model=None, image_size=None, seed=0,
                 sample_rate=16000, **image_options):
        if features not in CNN_FEATURES:
            raise ParameterError(f"unknown CNN feature {features!r}; expected one of {sorted(CNN_FEATURES)}")
        backbone, default_size = CNN_FEATURES[features]
        self.features = features
        weights = None if weights == "none" else weights
        self.weights = None if model is not None else weights
        self.sample_rate = sample_rate
        self.image = SpectrogramImage(sample_rate=sample_rate, image_size=image_size or default_size,
                                      **image_options)
        if model is None:
            if weights is not None and weights != "imagenet" and not pathlib.Path(weights).is_file():
                raise DataError(f"CNN weight file not found: {weights}")
            import keras

            from keras_ser.models.backbones import fc7_model, resolve_weights

            keras.utils.set_random_seed(seed)
            model = fc7_model(backbone, weights=resolve_weights(backbone, weights, "features.weights"))
            self.description = f"{features} ({weights_description(weights)}), {self.image.colormap} " \
                               f"Mel image {self.image.image_size}px ({self.image.frontend} front end)"
        else:
            self.description = f"{features} (custom model {model.name}), {self.image.colormap} Mel image " \
                               f"{self.image.image_size}px ({self.image.frontend} front end)"
        self.model = model
        self.dimension = int(model.output_shape[-1])
        self.feature_names = [f"{features}_{i}" for i in range(self.dimension)]
        import tensorflow as tf

        size = self.image.image_size
        self._forward = tf.function(lambda images: model(images, training=False),
                                    input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])

    def images(self, waveforms):
        """Stacked RGB images ``[n, S, S, 3]`` in [0, 255] of a list of waveforms."""
        import tensorflow as tf

        return tf.stack([self.image(w) for w in waveforms])

    def extract_batch(self, waveforms):
        """fc7 features ``[n, dimension]`` of a list of waveforms (one CNN call)."""
        if not len(waveforms):
            return np.zeros((0, self.dimension), np.float32)
        return self._forward(self.images(waveforms)).numpy().astype(np.float32)
