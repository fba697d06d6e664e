"""zhao2019's eGeMAPS / ComParE utterance features: openSMILE LLDs, a PCA fitted per fold, functionals.

zhao2019 (Sec. IV-B) "first extracted the eGeMAPS and ComParE low level features with the
openSMILE toolkit", reduced ComParE's by PCA "on the training set" and took "functionals
(max, min, range, mean, and standard-deviation)" of every descriptor over each utterance.
:func:`lld_feature_matrix` does this for one fold: LLD matrices cached per file
(:class:`keras_ser.extraction.cache.FrameCache`), the PCA (:class:`LLDStatistics`) fitted
on the frames of the fold's training speakers only, then :func:`lld_statistics`.
:mod:`keras_ser.svm` classifies the result.
"""

import numpy as np

from keras_ser.errors import ParameterError
from keras_ser.extraction.cache import FrameCache

#: Fold-level feature names (zhao2019's eGeMAPS / ComParE pipeline) -> openSMILE feature set.
LLD_FEATURES = {"egemaps_lld_stats": "egemaps", "compare_lld_stats": "compare"}

#: zhao2019's functionals of each LLD / component over an utterance, in column order.
STATISTICS = ("max", "min", "range", "mean", "std")


def lld_statistics(matrices):
    """zhao2019's functionals of each column over each utterance: max, min, range, mean, std.

    Parameters
    ----------
    matrices : sequence of array_like, each ``[frames, d]``
        One matrix per utterance (LLDs or their PCA components).

    Returns
    -------
    numpy.ndarray, shape (n, 5 * d), float64
        Per utterance the blocks of :data:`STATISTICS` in that order, each with the
        ``d`` columns in their order; ``std`` is the population standard deviation
        (``ddof=0``, openSMILE's ``stddev``).

    Examples
    --------
    >>> lld_statistics([np.array([[1.0, 0.0], [3.0, 0.0]])]).tolist()
    [[3.0, 0.0, 1.0, 0.0, 2.0, 0.0, 2.0, 0.0, 1.0, 0.0]]
    """
    rows = []
    for matrix in matrices:
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise ParameterError(f"each utterance needs a [frames, d] matrix with a frame, got shape {matrix.shape}")
        high, low = matrix.max(axis=0), matrix.min(axis=0)
        rows.append(np.concatenate([high, low, high - low, matrix.mean(axis=0), matrix.std(axis=0)]))
    return np.stack(rows)


def _pca_components(value, dimension):
    """``features.pca`` checked against the LLD count: None / "none", an int <= ``dimension`` or a fraction in (0, 1)."""
    if value is None or value == "none":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"features.pca must be a number of components or a variance fraction, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        if not 0.0 < value < 1.0:
            raise ParameterError(f"features.pca as a variance fraction must lie in (0, 1), got {value!r}")
        return value
    value = int(value)
    if not 1 <= value <= dimension:
        raise ParameterError(
            f"features.pca={value} components, but there are {dimension} LLDs per frame: PCA of frames keeps at "
            f"most {dimension} (for zhao2019's 150 after the functionals use svm.pca)")
    return value


class LLDStatistics:
    """Optional PCA of LLD frames fitted on the training utterances, then :func:`lld_statistics`.

    Parameters
    ----------
    pca : int, float or None
        Components kept (int), or the variance fraction they must explain (float in
        (0, 1)); None (or ``"none"``, as a command-line override gives it) skips PCA. The PCA centres the frames but does not scale them
        (scikit-learn's ``PCA``; zhao2019 names no scaling).
    seed : int
        PCA's random state (only used by randomised solvers).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = [rng.normal(size=(20, 4)) for _ in range(3)]
    >>> LLDStatistics(pca=2).fit(train).transform(train).shape
    (3, 10)
    """

    def __init__(self, pca=None, seed=0):
        self.pca = pca
        self.seed = seed
        self.projection = None

    def fit(self, matrices):
        """Fit the PCA on all frames of ``matrices`` (the training utterances only)."""
        from sklearn.decomposition import PCA

        if not len(matrices):
            raise ParameterError("LLD statistics need at least one training utterance to fit on")
        frames = np.concatenate([np.asarray(m, dtype=np.float64) for m in matrices])
        components = _pca_components(self.pca, frames.shape[1])
        self.projection = None if components is None else PCA(
            n_components=components, svd_solver="full", random_state=self.seed).fit(frames)
        return self

    @property
    def components(self):
        """Number of PCA components kept (None without PCA)."""
        return None if self.projection is None else int(self.projection.n_components_)

    def transform(self, matrices):
        """``[n, 5 * columns]`` statistics of each utterance (after the fitted projection)."""
        if self.projection is None:
            return lld_statistics(matrices)
        return lld_statistics([self.projection.transform(np.asarray(m, dtype=np.float64)) for m in matrices])


def lld_feature_matrix(name, options, fold, cache_dir, *, corpus="", seed=0, progress=True):
    """zhao2019's eGeMAPS / ComParE features of one fold: cached LLDs -> fold PCA -> statistics.

    Parameters
    ----------
    name : {"egemaps_lld_stats", "compare_lld_stats"}
        :data:`LLD_FEATURES`.
    options : dict
        The recipe's ``[features]`` options: ``pca`` (see :class:`LLDStatistics`) and
        the options of :class:`~keras_ser.extraction.opensmile.OpenSmileLLDExtractor`
        (``sample_rate``).
    fold : keras_ser.data.splits.Fold
        The PCA is fitted on the frames of ``fold.train`` only.
    cache_dir : path-like
        Where the per-file LLD matrices are cached (:class:`FrameCache`, shared by
        the folds of a run; the PCA is not cached).

    Returns
    -------
    (numpy.ndarray, str, int or None)
        The ``[train + validation + test, 5 * columns]`` matrix in the fold's order,
        a description, and the number of PCA components kept.
    """
    from keras_ser.extraction.opensmile import OpenSmileLLDExtractor

    options = dict(options)
    pca = options.pop("pca", None)
    extractor = OpenSmileLLDExtractor(LLD_FEATURES[name], **options)
    everything = [*fold.train, *fold.validation, *fold.test]
    cache = FrameCache(cache_dir, {"features": name, "level": "LowLevelDescriptors", "options": options,
                                   "corpus": corpus, "sample_rate": extractor.sample_rate})

    def extract_fn(utterances):
        from tqdm.auto import tqdm

        return [extractor.extract_file(u.path)
                for u in tqdm(utterances, disable=not progress, desc=extractor.description[:40], unit="file")]

    matrices = cache.get(everything, extract_fn)
    statistics = LLDStatistics(pca, seed).fit(matrices[:len(fold.train)])
    reduced = "" if statistics.components is None else \
        f" -> PCA {statistics.components} (fitted on the training speakers' frames)"
    description = f"{extractor.description}{reduced} -> {', '.join(STATISTICS)} per utterance"
    return statistics.transform(matrices), description, statistics.components
