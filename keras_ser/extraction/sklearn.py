"""scikit-learn transformers for keras_ser's feature extractors.

Each transformer maps a list of audio file paths or 1-D waveforms (at
``sample_rate``) to a feature matrix ``[n, d]``, so feature extraction sits inside a
scikit-learn ``Pipeline`` the way zhao2019 (Sec. IV-B) and zhang2021_multicnn (Table 7) feed fixed
features into a linear SVM:

>>> from sklearn.pipeline import Pipeline                        # doctest: +SKIP
>>> from sklearn.svm import LinearSVC                            # doctest: +SKIP
>>> clf = Pipeline([("features", DeepSpectrum("vgg16_fc7")), ("svm", LinearSVC())])  # doctest: +SKIP
>>> clf.fit(train_paths, train_labels).predict(test_paths)      # doctest: +SKIP

The extractors are stateless (``fit`` only builds them), so the transformers never
learn from the data they are fitted on; statistics that do (standardisation, PCA)
belong in later pipeline steps. For the same reason a fitted transformer pickles as
its parameters: the extractor is rebuilt from them on first use after unpickling
(:class:`Embedding` reloads its run directory, :class:`DeepSpectrum` calls its
``backbone`` factory again, which must therefore be picklable and seeded). Without ``weights`` the CNN of :class:`DeepSpectrum`
is random-init, NOT pretrained (see :mod:`keras_ser.extraction.deep_spectrum`).

Imports scikit-learn, NumPy and :mod:`keras_ser.errors`; the extractor modules of
:mod:`keras_ser.extraction` when a transformer is fitted.
"""

import pathlib

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from keras_ser.errors import ParameterError


class _ExtractorTransformer(TransformerMixin, BaseEstimator):
    """Shared fit/transform over paths or waveforms; subclasses define ``_build``."""

    def _build(self):
        raise TypeError("subclasses define _build")

    def _extractor_or_build(self):
        if getattr(self, "extractor_", None) is None:
            self.extractor_ = self._build()
        return self.extractor_

    def __getstate__(self):
        # The built extractor is a cache of the parameters, and it holds traced TensorFlow
        # functions and Keras models that do not pickle; _extractor_or_build rebuilds it.
        state = dict(super().__getstate__())
        state.pop("extractor_", None)
        return state

    def fit(self, X, y=None):
        """Build the extractor (nothing is learned from ``X``); returns ``self``."""
        extractor = self._extractor_or_build()
        self.n_features_out_ = len(extractor.feature_names)
        return self

    def _waveform(self, item):
        from keras_ser.audio import load

        if isinstance(item, (str, pathlib.Path)):
            return load(item, sr=self.sample_rate)
        signal = np.asarray(item, dtype=np.float32)
        if signal.ndim != 1 or signal.size == 0:
            raise ParameterError(
                f"{type(self).__name__}: each input must be a path or a non-empty 1-D waveform, "
                f"got shape {signal.shape}"
            )
        return signal

    def transform(self, X):
        """Feature matrix ``[len(X), d]`` float32 of paths or waveforms ``X``."""
        extractor = self._extractor_or_build()
        if isinstance(X, (str, pathlib.Path)) or (isinstance(X, np.ndarray) and X.ndim == 1):
            raise ParameterError(f"{type(self).__name__}.transform expects a list of inputs, not one input")
        items = list(X)
        rows = []
        batch = max(1, int(getattr(self, "batch_size", 32)))
        for start in range(0, len(items), batch):
            waves = [self._waveform(item) for item in items[start:start + batch]]
            rows.append(np.asarray(extractor.extract_batch(waves), np.float32))
        if not rows:
            return np.zeros((0, len(extractor.feature_names)), np.float32)
        return np.concatenate(rows)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns."""
        return np.asarray(self._extractor_or_build().feature_names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags


class OpenSmile(_ExtractorTransformer):
    """openSMILE functionals: ``"egemaps"`` (88) or ``"compare"`` (6373) (zhao2019 Table 7).

    Parameters
    ----------
    feature_set : {"egemaps", "compare"}
    sample_rate : int
        Paths are loaded at this rate; waveforms must already be at it.

    Examples
    --------
    >>> OpenSmile("egemaps").fit_transform(["03a01Fa.wav"]).shape   # doctest: +SKIP
    (1, 88)
    """

    def __init__(self, feature_set="egemaps", sample_rate=16000):
        self.feature_set = feature_set
        self.sample_rate = sample_rate

    def _build(self):
        from keras_ser.extraction.opensmile import OpenSmileExtractor

        return OpenSmileExtractor(self.feature_set, sample_rate=self.sample_rate)


class LogMelStats(_ExtractorTransformer):
    """Per-band mean and standard deviation of zhao2019's 40-band log-Mel front end.

    Parameters
    ----------
    n_mels : int
    sample_rate : int

    Examples
    --------
    >>> LogMelStats().fit_transform([np.random.randn(16000)]).shape   # doctest: +SKIP
    (1, 80)
    """

    def __init__(self, n_mels=40, sample_rate=16000):
        self.n_mels = n_mels
        self.sample_rate = sample_rate

    def _build(self):
        from keras_ser.extraction.logmel import LogMelExtractor

        return LogMelExtractor(pooling="mean_std", sample_rate=self.sample_rate, n_mels=self.n_mels)


class DeepSpectrum(_ExtractorTransformer):
    """fc7 features of an image CNN on in-graph Mel-spectrogram images (zhao2019 Figs. 3-4).

    Parameters
    ----------
    features : {"alexnet_fc7", "vgg16_fc7", "vgg19_fc7"}
    weights : None, "imagenet" or path
        ``None``: random-init, NOT pretrained (seeded by ``seed``).
    backbone : callable, optional
        Zero-argument factory returning a Keras model ``[b, S, S, 3] -> [b, d]`` used
        instead of the full CNN (small backbones for tests, custom networks).
    image_size : int, optional
        Override of the image side (227 AlexNet, 224 VGG).
    n_mels : int
        Mel bands of the spectrogram image.
    colormap : str
    batch_size : int
        Waveforms per CNN call.
    seed : int
    sample_rate : int

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline                     # doctest: +SKIP
    >>> from sklearn.svm import LinearSVC                         # doctest: +SKIP
    >>> Pipeline([("features", DeepSpectrum("vgg16_fc7")), ("svm", LinearSVC())])  # doctest: +SKIP
    """

    def __init__(self, features="vgg16_fc7", weights=None, backbone=None, image_size=None, n_mels=128,
                 colormap="viridis", batch_size=32, seed=0, sample_rate=16000):
        self.features = features
        self.weights = weights
        self.backbone = backbone
        self.image_size = image_size
        self.n_mels = n_mels
        self.colormap = colormap
        self.batch_size = batch_size
        self.seed = seed
        self.sample_rate = sample_rate

    def _build(self):
        from keras_ser.extraction.deep_spectrum import DeepSpectrumExtractor

        if self.backbone is not None and not callable(self.backbone):
            raise ParameterError("backbone must be a zero-argument callable returning a Keras model")
        model = self.backbone() if self.backbone is not None else None
        return DeepSpectrumExtractor(self.features, weights=self.weights, model=model,
                                     image_size=self.image_size, seed=self.seed,
                                     sample_rate=self.sample_rate, n_mels=self.n_mels,
                                     colormap=self.colormap)


class Embedding(_ExtractorTransformer):
    """The ``"embedding"`` layer of a trained keras_ser model (zhao2019's deep-spectrum representation).

    Parameters
    ----------
    run_dir : path-like
        MODEL DIR or RUN_DIR (see :mod:`keras_ser.predict`).
    fold : str, optional
        Fold of a multi-fold run.
    layer : str
    batch_size : int
    sample_rate : int

    Examples
    --------
    >>> Embedding("runs/zhao2019", fold="speaker_03").fit_transform(paths)   # doctest: +SKIP
    """

    def __init__(self, run_dir=None, fold=None, layer="embedding", batch_size=32, sample_rate=16000):
        # sample_rate must equal the model's front-end rate (16 kHz for zhao2019's models).
        self.run_dir = run_dir
        self.fold = fold
        self.layer = layer
        self.batch_size = batch_size
        self.sample_rate = sample_rate

    def _build(self):
        from keras_ser.extraction.embeddings import EmbeddingExtractor

        if self.run_dir is None:
            raise ParameterError("Embedding needs run_dir (a MODEL DIR or RUN_DIR)")
        extractor = EmbeddingExtractor(self.run_dir, fold=self.fold, layer=self.layer)
        if extractor.sample_rate != self.sample_rate:
            raise ParameterError(f"sample_rate={self.sample_rate} but the model's front end runs at "
                                 f"{extractor.sample_rate} Hz")
        return extractor
