"""The neural fold: one network on the cached front-end output of every utterance.

For a fold it

1. takes the front-end outputs of the training utterances (and of their
   speed-perturbed copies, zhang2021_dcnn Sec. 3.2) from the run's
   :class:`FeatureStore`, standardised per fold when the recipe asks for
   ``frontend.standardize = "global" | "speaker"`` (:class:`FoldStandardizer`); segment
   images before their resize (:meth:`FeatureStore.split_resize`), which the network's
   input resizes per batch (:func:`~keras_ser.experiments.training.with_input_resize`);
2. builds the model (:func:`build_model`) inside ``strategy.scope()``, trains it on
   the training speakers and stops early on the fold's validation speaker(s),
   restoring the best weights (:func:`keras_ser.experiments.training.fit_model`);
3. predicts the test and validation speakers; segment models average their segment
   scores per utterance (zhang2021_multicnn Sec. 2.4, ``pooling = "mean_segments"``).

Regression recipes (``train.loss = "ccc"``, tzirakis2021) go through
:func:`run_regression_fold` instead: continuous targets, CCC loss, one predicted value per
utterance and dimension.

Imports :mod:`~keras_ser.experiments.training` and :mod:`~keras_ser.experiments.word_vectors` only, of this package.

A model that reads word vectors (tzirakis2021's semantic network) also gets the fold's
word-vector frames (:mod:`keras_ser.experiments.word_vectors`), fitted on its training speakers.

One module on purpose: the feature store, the fold standardiser and the two network folds
(classification and regression) share the arrays they build.
"""

import inspect

import keras
import numpy as np

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments import word_vectors
from keras_ser.experiments.precision import build_in_precision, resolve_precision
from keras_ser.experiments.training import (augmented, class_weight, fit_model, flatten_segments, frame_targets,
                                            label_index, mean_by_owner, predict_arrays, utterance_targets,
                                            with_input_resize)
from keras_ser.frontend import FrontEnd, feature_statistics
from keras_ser.models import build, info

#: Input rate when a front end does not say (every paper resamples to 16 kHz).
SAMPLE_RATE = 16000


class FeatureStore:
    """Front-end outputs per (utterance id, speed factor), computed once per run.

    Parameters
    ----------
    frontend : keras.layers.Layer
        A :class:`keras_ser.frontend.FrontEnd`, called on ``[batch, samples]``.
    batch_size : int
        Waveforms per front-end call (equal-length waveforms are batched together).
    """

    def __init__(self, frontend, batch_size=32):
        self.frontend = frontend
        self.batch_size = batch_size
        # 16 kHz for the spectrogram presets, 22.05 kHz for the raw-wave ones (zhang2021_multicnn 1D, tzirakis2021).
        self.sample_rate = int(getattr(frontend, "sample_rate", SAMPLE_RATE))
        self._waves = {}
        self._features = {}
        self._split = None

    def _wave(self, utterance):
        if utterance.id not in self._waves:
            self._waves[utterance.id] = audio.load(utterance.path, sr=self.sample_rate)
        return self._waves[utterance.id]

    def num_samples(self, utterance):
        """Length of an utterance's waveform at :attr:`sample_rate`, in samples."""
        return int(self._wave(utterance).shape[0])

    def split_resize(self):
        """``(store, resize)``: a store of the front end's output before its image resize, and the resize.

        :meth:`keras_ser.frontend.FrontEnd.split_resize`: the small store's outputs, resized by
        ``resize`` (a :class:`keras_ser.frontend.ResizeImages` layer), are this store's, to the
        bit. It shares this store's waveforms and is made once, so the folds of a run share
        its outputs too. ``(self, None)`` for a front end without an image resize.
        """
        if self._split is None:
            small, resize = self.frontend.split_resize()
            store = self
            if resize is not None:
                store = FeatureStore(small, self.batch_size)
                store._waves = self._waves
            self._split = (store, resize)
        return self._split

    def get(self, utterances, factor=1.0):
        """List of front-end outputs (NumPy) for ``utterances`` at speed ``factor``."""
        missing = [u for u in utterances if (u.id, factor) not in self._features]
        waves = {}
        for u in missing:
            wave = self._wave(u)
            waves[u.id] = wave if factor == 1.0 else audio.speed_perturb(wave, factor, self.sample_rate)
        by_length = {}
        for u in missing:
            by_length.setdefault(waves[u.id].shape[0], []).append(u.id)
        for ids in by_length.values():
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start:start + self.batch_size]
                out = np.asarray(self.frontend(np.stack([waves[i] for i in chunk])))
                for i, features in zip(chunk, out):
                    self._features[(i, factor)] = features
        return [self._features[(u.id, factor)] for u in utterances]


def pad_stack(features, pad_value=0.0):
    """Stack ``[frames, ...]`` arrays, right-padding shorter ones along time with ``pad_value``.

    A variable-length front end (``num_frames=None``) gives utterances of
    different lengths different frame counts, and so do speed-perturbed copies
    (zhang2021_dcnn Sec. 3.2) even of equal-length utterances. The padded frames carry the
    model's ``mask_value`` (:mod:`keras_ser.models.attention_blstm_fcn`), so
    the recurrent and pooling layers ignore them; a model without one gets
    ``pad_value=None`` and different lengths are refused. Padding is applied after any
    standardisation, so it stays exactly ``pad_value``.

    Raises
    ------
    keras_ser.errors.DataError
        If the arrays differ in more than their first (time) axis, or if they
        differ in length and ``pad_value`` is None (a model without masking).
    """
    shapes = {f.shape for f in features}
    if len(shapes) == 1:
        return np.stack(features)
    if len({s[1:] for s in shapes}) != 1:
        raise DataError(f"front-end outputs differ beyond the time axis: shapes {sorted(shapes)[:3]}")
    if pad_value is None:
        raise DataError(
            f"front-end outputs have {min(s[0] for s in shapes)} to {max(s[0] for s in shapes)} frames but "
            "the model has no mask_value to pad with; set frontend.num_frames for a fixed length")
    frames = max(s[0] for s in shapes)
    out = np.full((len(features), frames) + features[0].shape[1:], pad_value, dtype=features[0].dtype)
    for row, f in zip(out, features):
        row[:f.shape[0]] = f
    return out


def penultimate(model):
    """Sub-model giving ``model``'s layer ``"embedding"`` (the registry's model contract).

    Raises
    ------
    ParameterError
        If ``model`` has no layer named ``"embedding"``.
    """
    if "embedding" not in {layer.name for layer in model.layers}:
        raise ParameterError(f"model {model.name!r} has no layer named 'embedding' to take features from")
    return keras.Model(model.inputs, model.get_layer("embedding").output)


def model_kwargs(model_table, frontend):
    """Builder keyword arguments of a recipe's ``[model]`` table.

    A model whose builder takes ``num_frames`` gets the front end's
    ``num_frames`` unless the recipe sets it, so that overriding
    ``frontend.num_frames`` alone keeps the model input consistent.
    """
    kwargs = {k: v for k, v in model_table.items() if k != "name"}
    entry = info(model_table["name"])
    frames = frontend.settings.get("num_frames")
    if (frames is not None and "num_frames" not in kwargs
            and "num_frames" not in entry.default_kwargs
            and "num_frames" in inspect.signature(entry.builder).parameters):
        kwargs["num_frames"] = frames
    return kwargs


def mask_value(model_table):
    """The padding value a model masks (its builder's ``mask_value``), or None if it masks nothing."""
    entry = info(model_table["name"])
    parameters = inspect.signature(entry.builder).parameters
    if "mask_value" not in parameters:
        return None
    return model_table.get("mask_value", entry.default_kwargs.get("mask_value", parameters["mask_value"].default))


def build_model(recipe, label_names, frontend, **extra):
    """The fold's network, built from the recipe's ``[model]`` table in ``train.precision``.

    ``extra`` adds builder arguments the fold decides (``semantic_dim`` of its word
    vectors). Call inside the strategy scope.
    """
    kwargs = dict(model_kwargs(recipe["model"], frontend), **extra)
    return build_in_precision(
        lambda: build(recipe["model"]["name"], num_classes=len(label_names), **kwargs),
        resolve_precision(recipe["train"]["precision"]),
    )


def per_fold_statistics(frontend_table):
    """True when ``standardize="global"`` / ``"speaker"`` statistics are left to each fold."""
    return frontend_table.get("standardize") in ("global", "speaker") and frontend_table.get("feature_mean") is None


def cached_frontend(frontend_table):
    """The front end whose outputs a run computes once and caches (:class:`FeatureStore`).

    It is the recipe's ``[frontend]``, except that ``standardize="global"`` or
    ``"speaker"`` without statistics is left out: each fold then standardises
    the cached features with statistics it computes (:class:`FoldStandardizer`).
    """
    settings = dict(frontend_table)
    if per_fold_statistics(settings):
        settings["standardize"] = None
    return FrontEnd(**settings)


class FoldStandardizer:
    """Feature map of a fold under ``standardize="global"`` or ``"speaker"``.

    * ``"global"``: one mean / std per dimension over the fold's training
      features (never its validation or test speakers).
    * ``"speaker"``: each speaker's features are standardised with that
      speaker's own statistics: a training speaker's over its training
      features (speed-perturbed copies included), a validation or test
      speaker's over all of its utterances in the fold, without their labels.
      This is the per-speaker normalisation the SVM recipes use
      (``[svm] standardize = "speaker"``); it adapts to the test speaker
      transductively, so the model expects speaker-normalised input.

    ``frontend`` is the fold's front end with the statistics the test
    predictions used (the test speakers' pooled frames under ``"speaker"``),
    so that the saved fold model reproduces them at predict and export time.
    """

    def __init__(self, frontend_table, fold, train_features, train_utts, store):
        self.mode = frontend_table["standardize"]
        self._stats = {}
        if self.mode == "global":
            self._stats[None] = feature_statistics(train_features)
            test_stats = self._stats[None]
        else:
            unknown = [u.id for u in (*fold.train, *fold.validation, *fold.test) if u.speaker is None]
            if unknown:
                raise ParameterError(
                    f"frontend.standardize='speaker' needs speaker ids; utterance {unknown[0]!r} has none")
            by_speaker = {}
            for features, u in zip(train_features, train_utts):
                by_speaker.setdefault(u.speaker, []).append(features)
            for u, features in zip((*fold.validation, *fold.test), store.get([*fold.validation, *fold.test])):
                by_speaker.setdefault(u.speaker, []).append(features)
            self._stats = {speaker: feature_statistics(items) for speaker, items in by_speaker.items()}
            test_stats = feature_statistics(store.get(list(fold.test)))
        self.frontend = FrontEnd(**dict(frontend_table, feature_mean=test_stats[0], feature_std=test_stats[1]))
        self._stats = {k: (np.asarray(m, np.float32), np.asarray(sd, np.float32)) for k, (m, sd) in self._stats.items()}

    def __call__(self, features, utterances):
        def stats(u):
            return self._stats[None if self.mode == "global" else u.speaker]

        return [(f - stats(u)[0]) / stats(u)[1] for f, u in zip(features, utterances)]


def run_neural_fold(recipe, fold, label_names, fold_dir, store, strategy):
    """Train and evaluate one network on one fold.

    Returns
    -------
    dict
        ``model``, ``pooling``, ``history``, ``epochs_run``, ``best_epoch``,
        ``test_probabilities``, ``val_probabilities`` (or None), ``embeddings``
        (``{part: array}`` or None) and ``frontend`` (the fold's front end with
        its statistics, or None for the run's).
    """
    experiment, train = recipe["experiment"], recipe["train"]
    segments = experiment["pooling"] == "mean_segments"
    frontend = store.frontend
    # Segment images are held before their resize (training.with_input_resize).
    store, resize = store.split_resize() if segments else (store, None)
    train_features, train_utts = augmented(store, list(fold.train), train["speed_perturbation"])
    fold_frontend, standardized = None, (lambda features, utterances: features)
    if per_fold_statistics(recipe["frontend"]):
        standardized = FoldStandardizer(recipe["frontend"], fold, train_features, train_utts, store)
        fold_frontend = standardized.frontend
        train_features = standardized(train_features, train_utts)
    y_train_utt = label_index(train_utts, label_names)
    val_utts = list(fold.validation)
    test_utts = list(fold.test)
    words, extra = None, {}
    if word_vectors.uses_word_vectors(recipe["model"]):
        every = [*fold.train, *val_utts, *test_utts]
        words, _ = word_vectors.fold_word_vectors(recipe, fold, fold_dir,
                                                  word_vectors.frame_counts(store.get(every), every))
        extra["semantic_dim"] = word_vectors.semantic_dim(recipe["model"], words)

    def arrays(features, y, utterances):
        if word_vectors.reads_frame_sequences(recipe["model"]):
            return word_vectors.utterance_inputs(recipe["model"], features, words, utterances), y, None
        if segments:
            return flatten_segments(features, y)
        return pad_stack(features, mask_value(recipe["model"])), y, None

    x_train, y_train, _ = arrays(train_features, y_train_utt, train_utts)
    row_shape = x_train.shape[1:] if resize is not None else None
    val_data, val_utterance = None, None
    if val_utts:
        y_val_utt = label_index(val_utts, label_names)
        x_val, y_val, val_owner = arrays(standardized(store.get(val_utts), val_utts), y_val_utt, val_utts)
        val_data = (x_val, y_val)
        val_utterance = (y_val_utt, val_owner) if segments else None
    with strategy.scope():
        model = build_model(recipe, label_names, frontend, **extra)
        trainer = with_input_resize(model, resize, row_shape)
        history, epochs_run, best_epoch = fit_model(
            trainer, train, (x_train, y_train), val_data,
            class_weight=class_weight(train, [u.label for u in train_utts], label_names),
            log_dir=fold_dir / "tensorboard", val_utterance=val_utterance,
        )

    def predict(utterances):
        x, _, owner = arrays(standardized(store.get(utterances), utterances), np.zeros(len(utterances), np.int64),
                             utterances)
        probabilities = predict_arrays(trainer, x, train["batch_size"])
        return mean_by_owner(probabilities, owner, len(utterances)) if segments else probabilities

    embeddings = None
    if experiment["save_features"]:
        extractor = with_input_resize(penultimate(model), resize, row_shape)
        embeddings = {}
        for part, utts in (("train", list(fold.train)), ("validation", val_utts), ("test", test_utts)):
            if not utts:
                continue
            x, _, owner = arrays(standardized(store.get(utts), utts), np.zeros(len(utts), np.int64), utts)
            values = np.asarray(predict_arrays(extractor, x, train["batch_size"]))
            embeddings[part] = mean_by_owner(values, owner, len(utts)) if segments else values
    return {
        "model": model,
        "pooling": experiment["pooling"],
        "history": history,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "test_probabilities": predict(test_utts),
        "val_probabilities": predict(val_utts) if val_utts else None,
        "embeddings": embeddings,
        "frontend": fold_frontend,
    }


# ---------------------------------------------------------------------------- regression (train.loss = "ccc")


def frame_seconds(frontend_settings):
    """Duration of one front-end frame of a regression recipe, in seconds.

    Regression trains on sequences of raw-wave frames (the ``tzirakis2021`` preset:
    2205 samples at 22.05 kHz = 0.1 s, tzirakis2021 Sec. 5.1), whose frame times the
    per-frame targets are sampled at (:func:`keras_ser.experiments.training.frame_targets`).

    Raises
    ------
    ParameterError
        The front end is not ``representation="raw_segments"`` with ``sequence_frames`` set.
    """
    if frontend_settings.get("representation") != "raw_segments" or not frontend_settings.get("sequence_frames"):
        raise ParameterError(
            "train.loss='ccc' trains on sequences of raw-wave frames: it needs frontend.representation="
            "'raw_segments' with frontend.sequence_frames set (the tzirakis2021 preset); got representation="
            f"{frontend_settings.get('representation')!r}, sequence_frames={frontend_settings.get('sequence_frames')!r}")
    hop = frontend_settings.get("segment_hop_samples") or frontend_settings["segment_samples"]
    return hop / frontend_settings["sample_rate"]


def build_regression_model(recipe, dimensions, frontend, **extra):
    """The fold's regression network with one output per dimension, in ``train.precision``."""
    kwargs = dict(model_kwargs(recipe["model"], frontend), num_outputs=len(dimensions), **extra)
    return build_in_precision(lambda: build(recipe["model"]["name"], **kwargs),
                              resolve_precision(recipe["train"]["precision"]))


def regression_arrays(store, utterances, dimensions, *, per_frame, standardized=None, words=None, model_table=None):
    """Training arrays of a regression fold: every sequence of every utterance is one row.

    Parameters
    ----------
    store : FeatureStore
        Front-end outputs ``[sequences, frames, samples]`` per utterance.
    utterances : list of keras_ser.data.Utterance
    dimensions : list of str
    per_frame : bool
        Targets ``[rows, frames, dims]`` (models that output a sequence: one target per
        frame, :func:`keras_ser.experiments.training.frame_targets`), else ``[rows, dims]``
        (each sequence carries its utterance's mean label).
    standardized : callable, optional
        :class:`FoldStandardizer` of the fold.
    words : dict of str to numpy.ndarray, optional
        Word-vector frames per utterance id for a word-vector model
        (:func:`keras_ser.experiments.word_vectors.fold_word_vectors`); ``x`` is then a dict
        of the model's inputs, ``model_table`` (the recipe's ``[model]``) saying which.

    Returns
    -------
    (x, y, owner, valid)
        Rows, targets, the utterance index of each row, and the number of frames of each
        utterance that hold audio (``ceil(samples / hop)``; frames beyond are end padding).
    """
    features = store.get(utterances)
    if standardized is not None:
        features = standardized(features, utterances)
    if any(f.ndim != 3 for f in features):
        raise ParameterError(f"train.loss='ccc' needs front-end outputs [sequences, frames, samples] per "
                             f"utterance; got shape {features[0].shape}")
    frame_s = frame_seconds(store.frontend.settings)
    hop = round(frame_s * store.sample_rate)
    counts = [f.shape[0] for f in features]
    x = np.concatenate(features, axis=0)
    owner = np.repeat(np.arange(len(utterances)), counts)
    valid = np.array([-(-store.num_samples(u) // hop) for u in utterances], np.int64)
    if per_frame:
        frames = features[0].shape[1]
        y = np.concatenate([frame_targets(u, dimensions, frame_s, n * frames).reshape(n, frames, len(dimensions))
                            for u, n in zip(utterances, counts)], axis=0)
    else:
        y = np.repeat(utterance_targets(utterances, dimensions), counts, axis=0)
    if words is not None:
        rows = word_vectors.sequence_word_vectors(words, utterances, counts, features[0].shape[1])
        x = {word_vectors.WORD_INPUT: rows, **({word_vectors.AUDIO_INPUT: x} if word_vectors.uses_audio(model_table)
                                               else {})}
    return x, y.astype(np.float32), owner, valid


def utterance_means(values, owner, valid):
    """Per-utterance values ``[n, dims]`` from per-row model outputs.

    Sequence outputs ``[rows, frames, dims]`` are joined per utterance and averaged over
    its frames that hold audio (the first ``valid[i]``; the zero frames that pad the last
    sequence are left out); row outputs ``[rows, dims]`` are averaged over the
    utterance's rows.
    """
    values = np.asarray(values, np.float64)
    if values.ndim == 2:
        return mean_by_owner(values, owner, len(valid))
    out = np.zeros((len(valid), values.shape[-1]))
    for i, count in enumerate(valid):
        frames = values[owner == i].reshape(-1, values.shape[-1])
        out[i] = frames[:max(1, min(int(count), frames.shape[0]))].mean(axis=0)
    return out


def run_regression_fold(recipe, fold, dimensions, fold_dir, store, strategy):
    """Train and evaluate one regression network (``train.loss = "ccc"``) on one fold.

    The loss is tzirakis2021's eq. 8 averaged over the dimensions
    (:func:`keras_ser.ccc.ccc_loss`, over every frame of the batch: all-zero frames
    that the model masks count too, with the LSTM's held output and the track's
    interpolated target; EMO-DB-2s sequences of 20 frames have none but the corpus's own
    zero-padded tails), gradients clipped to norm ``train.clipnorm`` (5.0, Sec. 5.1), the Keras metric
    ``ccc`` the mean CCC over the dimensions of every frame seen in the epoch, so early
    stopping monitors ``val_ccc`` (mode max) on the fold's validation speaker(s). Test and
    validation predictions are per utterance: the mean over its frames that hold audio
    (:func:`utterance_means`), as are the true values they are scored against.

    Returns
    -------
    dict
        As :func:`run_neural_fold`, with ``test_values`` / ``val_values`` (predicted) and
        ``test_targets`` / ``val_targets`` (true), each ``[utterances, dims]``, instead of
        probabilities.
    """
    experiment, train = recipe["experiment"], recipe["train"]
    if train["speed_perturbation"] and list(train["speed_perturbation"]) != [1.0]:
        raise ParameterError("train.speed_perturbation with train.loss='ccc' would stretch the audio away from "
                             "its label times; leave it empty")
    train_utts, val_utts, test_utts = list(fold.train), list(fold.validation), list(fold.test)
    fold_frontend, standardized = None, None
    if per_fold_statistics(recipe["frontend"]):
        standardized = FoldStandardizer(recipe["frontend"], fold, store.get(train_utts), train_utts, store)
        fold_frontend = standardized.frontend
    words, extra = None, {}
    if word_vectors.uses_word_vectors(recipe["model"]):
        every = [*train_utts, *val_utts, *test_utts]
        words, _ = word_vectors.fold_word_vectors(recipe, fold, fold_dir,
                                                  word_vectors.frame_counts(store.get(every), every))
        extra["semantic_dim"] = word_vectors.semantic_dim(recipe["model"], words)
    with strategy.scope():
        model = build_regression_model(recipe, dimensions, store.frontend, **extra)
    per_frame = len(model.output_shape) == 3

    def arrays(utterances):
        return regression_arrays(store, utterances, dimensions, per_frame=per_frame, standardized=standardized,
                                 words=words, model_table=recipe["model"])

    x_train, y_train, _, _ = arrays(train_utts)
    val_data = None
    if val_utts:
        x_val, y_val, _, _ = arrays(val_utts)
        val_data = (x_val, y_val)
    with strategy.scope():
        history, epochs_run, best_epoch = fit_model(model, train, (x_train, y_train), val_data, class_weight=None,
                                                    log_dir=fold_dir / "tensorboard")

    def predict(utterances):
        x, y, owner, valid = arrays(utterances)
        values = predict_arrays(model, x, train["batch_size"])
        return utterance_means(values, owner, valid), utterance_means(y, owner, valid)

    test_values, test_targets = predict(test_utts)
    val_values, val_targets = predict(val_utts) if val_utts else (None, None)
    return {
        "model": model,
        "pooling": experiment["pooling"],
        "history": history,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "test_values": test_values,
        "test_targets": test_targets,
        "val_values": val_values,
        "val_targets": val_targets,
        "embeddings": None,
        "frontend": fold_frontend,
    }
