"""Linear SVMs on fixed feature vectors: the evaluation of zhao2019 (Table 7, Figs. 3-4) and zhang2021_multicnn (Table 7).

zhao2019, Sec. IV-B: features (eGeMAPS, ComParE, the fc7 activations of AlexNet /
VGG16 / VGG19, and the Attention-BLSTM-FCN deep-spectrum representation) are fed
into "a linear support vector machine (SVM) implemented using the scikit-learn
toolbox, and trained via stochastic gradient descent". zhang2021_multicnn, Sec. 3.4
(Table 7) concatenates utterance-level CNN features and classifies them with a
linear SVM.

zhao2019's eGeMAPS / ComParE pipeline (recipes ``zhao2019_features_egemaps`` /
``zhao2019_features_compare``; feature names ``egemaps_lld_stats`` /
``compare_lld_stats``, :func:`lld_feature_matrix`):

1. openSMILE low-level descriptors per 10 ms frame ("we first extracted the eGeMAPS
   and ComParE low level features with the openSMILE toolkit"): eGeMAPS 25, ComParE 65
   (:class:`keras_ser.extraction.opensmile.OpenSmileLLDExtractor`), cached per file
   (:class:`keras_ser.extraction.cache.FrameCache`);
2. for ComParE, PCA "on the training set" (``features.pca``): fitted inside each fold
   on the frames of the fold's *training* speakers only (never the validation or test
   speaker), so it cannot be a per-file cached feature;
3. "functionals (max, min, range, mean, and standard-deviation)" of every LLD / PCA
   component over each utterance (:func:`keras_ser.extraction.lld_statistics.lld_statistics`);
4. the SGD linear SVM, with no per-speaker standardisation: "we did not perform any
   preprocessing on data and only used an SVM for classification" (Sec. V). The SVM
   pipeline's own z-scoring with training-set statistics stays (``[svm] standardize =
   "global"``): without it (``"none"``, the most literal reading) SGD does not converge
   on statistics that range from 0.01 to thousands of Hz, and eGeMAPS falls to 22.6 UA
   on EMO-DB-2s LOSO (54.7 with it), ComParE to 20.5 (61.8 with it), far from a working
   SVM such as the paper's.

Two readings the text leaves open, and the choice made here:

- "functionals ... independently for each combination of speaker and feature": read
  as *each utterance of each speaker, each feature (LLD / component) separately*,
  which gives the one vector per utterance that an utterance classifier needs. The
  other reading, a speaker-level step for each feature (each speaker's statistics,
  i.e. per-speaker normalisation, the reading of keras_ser's earlier recipes), is
  the override ``svm.standardize="speaker"``; zhao2019 also says it performed no
  preprocessing, which speaks against it.
- PCA to "top 150 components which explained >95 % variances": ComParE has 65 LLDs
  per frame (130 with deltas), so 150 components of LLD frames do not exist. The
  recipe keeps the paper's order (PCA on frames, then functionals) with all 65
  components (100 % of the variance, a decorrelating rotation whose max / min /
  range differ from those of the raw LLDs); ``features.pca`` also takes a variance
  fraction (``0.95``: as many components as explain 95 %; of the unscaled frames that
  is one component, 22.2 UA on EMO-DB-2s LOSO). The other reading, PCA after the
  functionals (65 x 5 = 325 statistics -> 150 components), is the override
  ``features.pca=none svm.pca=150`` (62.5 UA, against 61.8 for the recipe).

The openSMILE *functionals* with per-speaker standardisation (and, for ComParE, PCA
150 of the 6373 functionals) are kept as the variants
``zhao2019_features_egemaps_functionals`` / ``zhao2019_features_compare_functionals``:
a stronger baseline than the paper's, and the fair comparison for the deep models
trained on per-speaker standardised log-mels.

What the papers leave open, and the choice made here (all are parameters):

- Standardisation: z-scoring with training-set statistics (``"global"``, the
  default), the usual practice before a linear SVM; ``"speaker"`` z-scores every
  speaker with its own statistics (the test speaker with its own, unlabelled
  features: a common, label-free step in speaker-independent SER); ``"none"``
  feeds the features as they are (zhao2019's eGeMAPS / ComParE rows).
- Regularisation: the SVM's ``C`` (LinearSVC) or ``alpha`` (SGD) is chosen from a
  grid by unweighted accuracy on the fold's *validation* speakers only; the test
  speaker is never seen during the choice. The chosen model is then refitted on
  training + validation speakers (``refit="train+validation"``) or kept as trained
  on the training speakers (``refit="train"``).
- Class imbalance: ``class_weight="balanced"`` (weights proportional to 1/N_k, the
  rule of zhao2019 eq. 11).

:func:`run_fold` is the entry point the experiment runner calls for recipes whose
``[experiment] kind = "features_svm"``.

One module on purpose: the SVM's options, pipeline, validation-speaker tuning and fold entry
are one classifier; its feature caches and zhao2019's LLD functionals live in
:mod:`keras_ser.extraction`.
"""

import pathlib

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.extraction.cache import FeatureCache
from keras_ser.extraction.lld_statistics import LLD_FEATURES, lld_feature_matrix
from keras_ser.metrics import unweighted_accuracy

CLASSIFIERS = ("sgd", "linear_svc")
STANDARDIZE = ("global", "speaker", "none")
REFIT = ("train+validation", "train")

#: Default regularisation grids: ``alpha`` for SGD, ``C`` for LinearSVC.
DEFAULT_GRIDS = {
    "sgd": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "linear_svc": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
}

SVM_DEFAULTS = {
    "classifier": "sgd",
    "grid": None,
    "standardize": "global",
    "pca": None,
    "class_weight": "balanced",
    "refit": "train+validation",
    "max_iter": 2000,
}


def svm_options(config):
    """Resolved SVM options from a recipe's ``[svm]`` table, validated.

    Parameters
    ----------
    config : dict
        Either the whole resolved recipe (its ``"svm"`` key is read) or the
        ``[svm]`` table itself.

    Returns
    -------
    dict
        :data:`SVM_DEFAULTS` updated with the recipe's values; ``grid`` filled in.

    Examples
    --------
    >>> svm_options({"svm": {"classifier": "linear_svc", "pca": 150}})["pca"]
    150
    """
    if not isinstance(config, dict):
        raise ParameterError(f"SVM options must be a dict, got {type(config).__name__}")
    # A whole recipe carries its SVM settings under "svm"; a bare table is the settings.
    table = (config.get("svm") or {}) if ("svm" in config or set(config) - set(SVM_DEFAULTS)) else config
    if not isinstance(table, dict):
        raise ParameterError(f"[svm] must be a table, got {type(table).__name__}")
    unknown = set(table) - set(SVM_DEFAULTS)
    if unknown:
        raise ParameterError(f"unknown [svm] settings {sorted(unknown)}; allowed: {sorted(SVM_DEFAULTS)}")
    options = dict(SVM_DEFAULTS)
    options.update(table)
    if options["classifier"] not in CLASSIFIERS:
        raise ParameterError(f"[svm] classifier must be one of {CLASSIFIERS}, got {options['classifier']!r}")
    if options["standardize"] not in STANDARDIZE:
        raise ParameterError(f"[svm] standardize must be one of {STANDARDIZE}, got {options['standardize']!r}")
    if options["refit"] not in REFIT:
        raise ParameterError(f"[svm] refit must be one of {REFIT}, got {options['refit']!r}")
    pca = options["pca"]
    if pca is not None and (isinstance(pca, bool) or not isinstance(pca, int) or pca <= 0):
        raise ParameterError(f"[svm] pca must be a positive int or absent, got {pca!r}")
    if options["class_weight"] not in ("balanced", None):
        raise ParameterError(f"[svm] class_weight must be 'balanced' or absent, got {options['class_weight']!r}")
    grid = options["grid"] if options["grid"] is not None else DEFAULT_GRIDS[options["classifier"]]
    if isinstance(grid, (int, float)):
        grid = [grid]
    grid = [float(v) for v in grid]
    if not grid or any(v <= 0 for v in grid):
        raise ParameterError(f"[svm] grid must hold positive numbers, got {options['grid']!r}")
    options["grid"] = grid
    return options


def make_classifier(classifier, value, *, seed=0, class_weight="balanced", max_iter=2000):
    """A linear SVM.

    Parameters
    ----------
    classifier : {"sgd", "linear_svc"}
        ``"sgd"``: ``SGDClassifier(loss="hinge")``, the SGD-trained linear SVM of
        zhao2019 Sec. IV-B; ``"linear_svc"``: liblinear's ``LinearSVC``.
    value : float
        ``alpha`` (SGD) or ``C`` (LinearSVC).
    seed : int
        Seed of SGD's shuffling (LinearSVC's dual solver is seeded too).

    Examples
    --------
    >>> make_classifier("sgd", 1e-3).loss
    'hinge'
    """
    from sklearn.linear_model import SGDClassifier
    from sklearn.svm import LinearSVC

    if classifier == "sgd":
        return SGDClassifier(
            loss="hinge", penalty="l2", alpha=value, max_iter=max_iter, tol=1e-4,
            class_weight=class_weight, random_state=seed,
        )
    if classifier == "linear_svc":
        return LinearSVC(C=value, class_weight=class_weight, max_iter=max_iter, random_state=seed)
    raise ParameterError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")


def make_pipeline(options, value, *, seed=0):
    """``StandardScaler -> [PCA] -> linear SVM`` for one regularisation ``value``.

    PCA is fitted on the training data only (zhao2019: "PCA ... on the training set").
    With ``standardize="speaker"`` the features arrive already speaker-normalised
    (:func:`standardize_per_speaker`) and are then z-scored globally as well.
    """
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = []
    if options["standardize"] != "none":
        steps.append(("scale", StandardScaler()))
    if options["pca"]:
        steps.append(("pca", PCA(n_components=options["pca"], random_state=seed)))
    steps.append(("svm", make_classifier(
        options["classifier"], value, seed=seed, class_weight=options["class_weight"],
        max_iter=options["max_iter"],
    )))
    return Pipeline(steps)


def standardize_per_speaker(features, speakers):
    """Z-score each speaker's rows with that speaker's own mean and standard deviation.

    Constant features (std 0) become 0. Uses no labels.

    Examples
    --------
    >>> x = np.array([[1.0], [3.0], [10.0], [30.0]])
    >>> standardize_per_speaker(x, ["a", "a", "b", "b"]).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    features = np.asarray(features, dtype=np.float64)
    speakers = np.asarray(speakers)
    if len(speakers) != len(features):
        raise ParameterError(f"{len(features)} feature rows but {len(speakers)} speakers")
    out = np.empty_like(features)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mean = features[rows].mean(axis=0)
        std = features[rows].std(axis=0)
        out[rows] = (features[rows] - mean) / np.where(std > 0, std, 1.0)
    return out


def fit_select_predict(train, validation, test, options, *, seed=0):
    """Choose the regularisation on ``validation``, refit, and predict ``test``.

    Parameters
    ----------
    train, validation, test : tuple (features, labels)
        ``features`` [n, d] float arrays, ``labels`` int arrays. ``test`` labels may
        be None: they are never used here.
    options : dict
        From :func:`svm_options`.

    Returns
    -------
    dict
        ``y_pred`` (test predictions), ``scores`` (decision values [n, classes]),
        ``value`` (chosen alpha / C), ``validation_ua`` (per grid value).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 2)); y = (x[:, 0] > 0).astype(int)
    >>> out = fit_select_predict((x[:40], y[:40]), (x[40:50], y[40:50]), (x[50:], None),
    ...                          svm_options({}))
    >>> out["y_pred"].shape
    (10,)
    """
    x_train, y_train = np.asarray(train[0]), np.asarray(train[1])
    x_val, y_val = np.asarray(validation[0]), np.asarray(validation[1])
    x_test = np.asarray(test[0])
    # Scaling and PCA do not depend on the SVM's regularisation: fit them once per
    # training set and search the grid on the transformed features.
    preprocess = make_pipeline(options, options["grid"][0], seed=seed)[:-1]
    z_train = preprocess.fit_transform(x_train, y_train) if len(preprocess) else x_train
    z_val = preprocess.transform(x_val) if len(preprocess) else x_val
    validation_ua = {}
    for value in options["grid"]:
        classifier = make_pipeline(options, value, seed=seed)[-1].fit(z_train, y_train)
        validation_ua[value] = unweighted_accuracy(y_val, classifier.predict(z_val))
    # Ties go to the stronger regularisation (smaller C / larger alpha): the simpler model.
    ordered = sorted(options["grid"], reverse=options["classifier"] == "sgd")
    best = max(ordered, key=lambda v: validation_ua[v])
    if options["refit"] == "train+validation":
        x_fit, y_fit = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        model = make_pipeline(options, best, seed=seed).fit(x_fit, y_fit)
    else:
        from sklearn.pipeline import Pipeline

        classifier = make_pipeline(options, best, seed=seed)[-1].fit(z_train, y_train)
        model = Pipeline(list(preprocess.steps) + [("svm", classifier)])
    return {
        "y_pred": model.predict(x_test),
        "scores": model.decision_function(x_test),
        "value": best,
        "validation_ua": validation_ua,
        "classes": model.classes_,
    }


# ---------------------------------------------------------------------------- runner entry


def _labels_to_index(utterances, label_names, part):
    index = {name: i for i, name in enumerate(label_names)}
    try:
        return np.array([index[u.label] for u in utterances], dtype=np.int64)
    except KeyError as exc:
        raise DataError(f"{part} utterance label {exc.args[0]!r} is not in label_names {label_names}") from None


def stored_embeddings(run_dir, fold, layer="embedding"):
    """The ``embeddings.npz`` a neural run wrote for ``fold``, as one matrix, or None.

    A run with ``experiment.save_features = true`` stores, per fold, the
    ``"embedding"`` layer's output for the fold's training, validation and test
    utterances, computed at training time with the fold's own front end. For a
    model trained on per-speaker standardised features (``frontend.standardize =
    "speaker"``) this is the only correct source: every speaker's features were
    standardised with that speaker's statistics, which a waveform extractor of the
    saved model does not know (it holds the test speaker's only).

    Parameters
    ----------
    run_dir : path-like
        The run directory (``folds/<fold>/embeddings.npz``).
    fold : keras_ser.data.splits.Fold
    layer : str
        Only ``"embedding"`` is stored; another layer name returns None.

    Returns
    -------
    (numpy.ndarray, str) or None
        The ``[train + validation + test, dim]`` matrix in the fold's utterance order
        and a description, or None when the run has no such file.

    Raises
    ------
    keras_ser.errors.DataError
        If the file's utterance ids are not the fold's (another corpus or protocol).
    """
    path = pathlib.Path(run_dir) / "folds" / fold.name / "embeddings.npz"
    if layer != "embedding" or not path.is_file():
        return None
    with np.load(path) as stored:
        blocks = []
        for part in ("train", "validation", "test"):
            utterances = getattr(fold, part)
            if not utterances:
                continue
            ids = list(stored[f"{part}_ids"]) if f"{part}_ids" in stored else []
            if ids != [u.id for u in utterances]:
                raise DataError(f"{path}: its {part} utterances are not those of fold {fold.name} "
                                "(was the run made on another corpus or protocol?)")
            blocks.append(np.asarray(stored[f"{part}_x"], np.float64))
    return np.concatenate(blocks), f"embedding of {run_dir}, each fold's own network (stored embeddings.npz)"


def run_fold(config, fold, label_names, work_dir):
    """Extract (cached), standardise, tune on validation speakers, and predict one fold.

    The experiment runner calls it for every fold of a recipe
    whose ``[experiment] kind = "features_svm"``.

    Parameters
    ----------
    config : dict
        Resolved recipe (:mod:`keras_ser.recipe`). Read: ``features`` (table with
        ``name`` -- an extractor name of :func:`keras_ser.extraction.get_extractor`, or
        one of :data:`LLD_FEATURES` (:func:`lld_feature_matrix`) -- plus its options
        and optional ``cache_dir``), ``svm`` (see
        :func:`svm_options`), ``experiment.seed``, ``experiment.corpus`` and
        ``progress`` (else ``train.verbose``) for the progress bar.
    fold : keras_ser.data.splits.Fold
        ``train``, ``validation``, ``test`` lists of utterances (``.id``, ``.path``,
        ``.label``, ``.speaker``). Hyperparameters are chosen on ``validation`` only.
    label_names : list of str
        Output class order.
    work_dir : pathlib.Path
        The fold's working directory. Features are cached in
        ``features.cache_dir`` if given, else in ``work_dir.parent / "feature_cache"``
        when ``work_dir`` sits in a ``folds/`` folder (one cache per run), else in
        ``work_dir / "feature_cache"``.

    Returns
    -------
    dict
        ``ids``, ``y_true``, ``y_pred`` (label names), ``scores`` (decision values per
        class in ``label_names`` order), ``params`` (chosen value, validation UA per
        grid value, feature description incl. the CNN weights used; for
        :data:`LLD_FEATURES` also ``lld_pca_components``).

    Examples
    --------
    >>> out = run_fold({"features": {"name": "egemaps"}, "svm": {"classifier": "sgd"}},
    ...                fold, label_names, pathlib.Path("runs/x/folds/03"))   # doctest: +SKIP
    """
    from keras_ser.extraction import extract_utterance_features, get_extractor

    if not fold.validation:
        raise DataError(f"fold {fold.name}: no validation speakers to tune the SVM on")
    features_cfg = dict(config.get("features") or {})
    if "name" not in features_cfg:
        raise ParameterError("a features_svm recipe needs [features] name = ...")
    name = features_cfg.pop("name")
    cache_dir = features_cfg.pop("cache_dir", None)
    options = svm_options(config)
    experiment = config.get("experiment") or {}
    seed = int(experiment.get("seed", config.get("seed", 0)))
    work_dir = pathlib.Path(work_dir)
    if cache_dir is None:
        cache_dir = (work_dir.parent.parent if work_dir.parent.name == "folds" else work_dir) / "feature_cache"

    extractor_options = dict(features_cfg)
    parts = {"train": fold.train, "validation": fold.validation, "test": fold.test}
    everything = [u for part in parts.values() for u in part]
    stored, extra = None, {}
    corpus = experiment.get("corpus", config.get("corpus", ""))
    progress = bool(config.get("progress", (config.get("train") or {}).get("verbose", 1)))
    if name in LLD_FEATURES:
        # Fold-level features: the PCA is fitted on this fold's training speakers.
        matrix, description, extra["lld_pca_components"] = lld_feature_matrix(
            name, extractor_options, fold, cache_dir, corpus=corpus, seed=seed, progress=progress)
        stored = matrix, description
    elif name.startswith("embedding:"):
        # Each fold's network was trained without this fold's test speaker: use that one.
        extractor_options.setdefault("fold", fold.name)
        stored = stored_embeddings(name[len("embedding:"):], fold, extractor_options.get("layer", "embedding"))
    if stored is not None:
        matrix, description = stored
    else:
        extractor = get_extractor(name, **extractor_options)
        description = extractor.description
        cache = FeatureCache(cache_dir, {"features": name, "options": extractor_options, "corpus": corpus,
                                         "sample_rate": extractor.sample_rate})
        matrix = cache.get(everything, lambda utts: extract_utterance_features(extractor, utts, progress=progress))
    if options["standardize"] == "speaker":
        matrix = standardize_per_speaker(matrix, [u.speaker for u in everything])
    bounds = np.cumsum([0] + [len(p) for p in parts.values()])
    x = {key: matrix[bounds[i]:bounds[i + 1]] for i, key in enumerate(parts)}
    y_train = _labels_to_index(fold.train, label_names, "training")
    y_val = _labels_to_index(fold.validation, label_names, "validation")
    result = fit_select_predict((x["train"], y_train), (x["validation"], y_val), (x["test"], None),
                                options, seed=seed)
    scores = np.full((len(fold.test), len(label_names)), -np.inf, dtype=np.float64)
    raw = np.asarray(result["scores"], dtype=np.float64)
    if raw.ndim == 1:  # binary problems give one margin for the positive class
        raw = np.stack([-raw, raw], axis=1)
    scores[:, result["classes"]] = raw
    return {
        "ids": [u.id for u in fold.test],
        "y_true": [u.label for u in fold.test],
        "y_pred": [label_names[i] for i in result["y_pred"]],
        "scores": scores.tolist(),
        "params": {
            "classifier": options["classifier"],
            "parameter": "alpha" if options["classifier"] == "sgd" else "C",
            "value": result["value"],
            "validation_ua": {str(k): v for k, v in result["validation_ua"].items()},
            "features": description,
            "dimension": int(matrix.shape[1]),
            "pca": options["pca"],
            "standardize": options["standardize"],
            **extra,
        },
    }
