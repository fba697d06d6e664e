"""Extractors by name: :func:`get_extractor` and :func:`minimum_duration`.

Feature names (:data:`FEATURES`):

============================ ====================================================
``egemaps`` / ``compare``    openSMILE eGeMAPSv02 (88) / ComParE_2016 (6373)
                             functionals (:mod:`keras_ser.extraction.opensmile`)
``logmel``                   40-band log-Mel (zhao2019's front end), mean and standard
                             deviation over time, or every frame with
                             ``pooling="none"`` (:mod:`keras_ser.extraction.logmel`)
``alexnet_fc7``,             fc7 of the CNN on in-graph spectrogram images
``vgg16_fc7``, ``vgg19_fc7`` (:mod:`keras_ser.extraction.deep_spectrum`); without
                             ``weights`` the CNN is random-init, NOT pretrained
``embedding:RUN_DIR``        the ``"embedding"`` layer of a trained model (zhao2019's
                             deep-spectrum representation,
                             :mod:`keras_ser.extraction.embeddings`); ``fold`` picks
                             the fold of a multi-fold run
============================ ====================================================

The extractors' modules are imported when one is asked for, so that naming them costs
neither openSMILE nor TensorFlow.
"""

from keras_ser.audio import MIN_DURATION
from keras_ser.errors import ParameterError
from keras_ser.extraction.logmel import LogMelExtractor

#: Extractor names accepted by :func:`get_extractor` (plus ``embedding:RUN_DIR``).
FEATURES = ("egemaps", "compare", "logmel", "alexnet_fc7", "vgg16_fc7", "vgg19_fc7")


def get_extractor(name, **options):
    """The extractor called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`FEATURES` or ``"embedding:RUN_DIR"``.
    **options
        Passed to the extractor (e.g. ``weights``, ``n_mels``, ``pooling``, ``fold``).

    Examples
    --------
    >>> get_extractor("egemaps").dimension                  # doctest: +SKIP
    88
    >>> get_extractor("mfcc")
    Traceback (most recent call last):
    ...
    keras_ser.errors.ParameterError: unknown feature name 'mfcc'; expected one of egemaps, compare, logmel, alexnet_fc7, vgg16_fc7, vgg19_fc7, embedding:RUN_DIR
    """
    if not isinstance(name, str):
        raise ParameterError(f"feature name must be a string, got {name!r}")
    if name in ("egemaps", "compare"):
        from keras_ser.extraction.opensmile import OpenSmileExtractor

        return OpenSmileExtractor(name, **options)
    if name == "logmel":
        return LogMelExtractor(**options)
    from keras_ser.extraction import deep_spectrum

    if name in deep_spectrum.CNN_FEATURES:
        return deep_spectrum.DeepSpectrumExtractor(name, **options)
    if name.startswith("embedding:") and len(name) > len("embedding:"):
        from keras_ser.extraction.embeddings import EmbeddingExtractor

        return EmbeddingExtractor(name[len("embedding:"):], **options)
    raise ParameterError(
        f"unknown feature name {name!r}; expected one of {', '.join(FEATURES)}, embedding:RUN_DIR"
    )


def minimum_duration(extractor):
    """Shortest input, in seconds, for which ``extractor`` gives finite features.

    An extractor's own ``min_duration`` (openSMILE: 61 ms; log-Mel: one analysis
    window), else one spectrogram window of a CNN extractor's image, else the
    25 ms that :func:`keras_ser.audio.load` accepts.

    Examples
    --------
    >>> minimum_duration(LogMelExtractor())
    0.025
    """
    known = getattr(extractor, "min_duration", None)
    if known is not None:
        return float(known)
    image = getattr(extractor, "image", None)  # deep_spectrum.SpectrogramImage needs one window
    if image is not None:
        return max(MIN_DURATION, image.win_samples / image.sample_rate)
    return MIN_DURATION
