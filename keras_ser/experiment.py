"""The fold loop: train and evaluate a recipe on every fold of its protocol.

:func:`run_experiment` is what ``python -m keras_ser.train`` calls. For each fold
of the recipe's protocol (leave-one-speaker-out on EMO-DB by default) it

1. computes the front-end output of every utterance once (and of the
   speed-perturbed copies of the training utterances, 002 Sec. 3.2);
2. builds the model inside ``strategy.scope()``, trains it on the training
   speakers with the recipe's optimiser and class weights (000 eq. 11) and stops
   early on the fold's validation speaker(s), restoring the best weights;
3. predicts the test speaker(s); segment models average their segment scores per
   utterance (001 Sec. 2.4, ``pooling = "mean_segments"``);
4. writes ``folds/<fold>/`` (predictions, history, TensorBoard logs, the model
   directory of contract D) and, last, ``metrics.json``: its presence marks the
   fold as done, so re-running the same command skips it (resume).

Two-stage recipes (002) fine-tune ``[stage1] model`` on segments, take its fc7
activations as a sequence per utterance and train ``[model]`` on them; the saved
model chains both so that it still takes the front-end output. Feature/SVM
recipes call :func:`keras_ser.svm.run_fold` (contract E). Fusion recipes (001)
run their member recipes into ``RUN_DIR/members/<name>`` and fuse their scores
and features (:mod:`keras_ser.fusion`).

Seeding: ``keras.utils.set_random_seed(seed)`` and TensorFlow op determinism
before every fold, so the same seed, data and settings give the same metrics.

Example
-------
>>> from keras_ser.experiment import run_experiment
>>> from keras_ser.recipe import load_recipe
>>> recipe = load_recipe("zhao2019_attention_blstm_fcn", ["epochs=1"])
>>> results = run_experiment(recipe, out="runs/tiny", folds=["speaker_03"])  # doctest: +SKIP
"""

import csv
import inspect
import json
import os
import pathlib
import time

import numpy as np

from keras_ser.errors import DataError, ParameterError
from keras_ser.recipe import load_recipe

#: Input rate when a front end does not say (every paper resamples to 16 kHz).
SAMPLE_RATE = 16000

#: Config keys that may differ between a run and its resumption.
_RESUMABLE_KEYS = ("strategy", "folds", "progress")


# ---------------------------------------------------------------------------- small I/O helpers


def write_json(path, data):
    """Write JSON atomically (tmp file + rename), so a killed run leaves no half file."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default))
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pathlib.Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_predictions(path, ids, labels, predicted, probabilities, label_names, prefix="p_"):
    """``predictions.csv``: id, label, predicted, one score column per class.

    Columns are ``p_<class>`` for probabilities; SVM folds write their decision
    values as ``score_<class>`` (``prefix="score_"``), which are not probabilities.
    """
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "predicted"] + [f"{prefix}{name}" for name in label_names])
        for row in zip(ids, labels, predicted, probabilities):
            writer.writerow(list(row[:3]) + [f"{p:.6g}" for p in row[3]])


def read_predictions(path):
    """Inverse of :func:`write_predictions`: ``(ids, labels, predicted, probabilities)``."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    body = rows[1:]
    probabilities = np.array([[float(v) for v in row[3:]] for row in body], np.float64)
    return [r[0] for r in body], [r[1] for r in body], [r[2] for r in body], probabilities


def corpus_display_name(corpus):
    """How results name a corpus: the shared 2-second EMO-DB copy is "EMO-DB-2s"."""
    return {"emodb": "EMO-DB-2s"}.get(corpus, corpus)


# ---------------------------------------------------------------------------- optimisers


def make_optimizer(train):
    """The Keras optimiser of a ``[train]`` / ``[stage1]`` table.

    ``decay`` reproduces Keras 2's legacy argument (000: "Adam ... decay of 1e-6"),
    which Keras 3 removed: ``lr_t = lr / (1 + decay * iterations)``. That is exactly
    ``keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1,
    decay_rate=decay)``, used here. ``nadam`` is Adam with Nesterov momentum (002);
    its momentum 0.9 is ``beta_1``.
    """
    import keras

    learning_rate = train["learning_rate"]
    if train["decay"] > 0:
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=train["decay"]
        )
    extra = {"clipnorm": train["clipnorm"]} if train["clipnorm"] > 0 else {}
    if train["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=train["beta_1"], **extra)
    if train["optimizer"] == "nadam":
        return keras.optimizers.Nadam(learning_rate, beta_1=train["beta_1"], **extra)
    return keras.optimizers.SGD(learning_rate, momentum=train["momentum"], **extra)


def _loss(train):
    if train["loss"] == "ccc":
        from keras_ser.metrics import ccc_loss

        return ccc_loss
    return "sparse_categorical_crossentropy"


# ---------------------------------------------------------------------------- features


class FeatureStore:
    """Front-end outputs per (utterance id, speed factor), computed once per run.

    Parameters
    ----------
    frontend : keras.layers.Layer
        A :class:`keras_ser.features.FrontEnd`, called on ``[batch, samples]``.
    batch_size : int
        Waveforms per front-end call (equal-length waveforms are batched together).
    """

    def __init__(self, frontend, batch_size=32):
        self.frontend = frontend
        self.batch_size = batch_size
        # 16 kHz for the spectrogram presets, 22.05 kHz for the raw-wave ones (001 1D, 003).
        self.sample_rate = int(getattr(frontend, "sample_rate", SAMPLE_RATE))
        self._waves = {}
        self._features = {}

    def _wave(self, utterance):
        from keras_ser import audio

        if utterance.id not in self._waves:
            self._waves[utterance.id] = audio.load(utterance.path, sr=self.sample_rate)
        return self._waves[utterance.id]

    def get(self, utterances, factor=1.0):
        """List of front-end outputs (NumPy) for ``utterances`` at speed ``factor``."""
        from keras_ser import audio

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
    (002 Sec. 3.2) even of equal-length utterances. The padded frames carry the
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


def _label_index(utterances, label_names):
    index = {name: k for k, name in enumerate(label_names)}
    try:
        return np.array([index[u.label] for u in utterances], np.int64)
    except KeyError as error:
        raise DataError(f"label {error.args[0]!r} is not one of {label_names}") from None


def _flatten_segments(features, labels):
    """Segment-level training set: every segment carries its utterance's label (001 Sec. 3.1)."""
    counts = [f.shape[0] for f in features]
    x = np.concatenate(features, axis=0)
    y = np.repeat(labels, counts)
    owner = np.repeat(np.arange(len(features)), counts)
    return x, y, owner


def _mean_by_owner(values, owner, n):
    sums = np.zeros((n,) + values.shape[1:], np.float64)
    np.add.at(sums, owner, values)
    counts = np.bincount(owner, minlength=n).reshape((n,) + (1,) * (values.ndim - 1))
    return sums / counts


# ---------------------------------------------------------------------------- one training


def tensorboard_available():
    """True when the ``tensorboard`` package is installed (Keras's TensorBoard callback needs it).

    Without it, runs still write ``history.json`` and ``curves.png``; TensorBoard logs
    are skipped rather than failing the run.
    """
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class _ValidationUA:
    """Keras callback adding ``val_ua`` (utterance-level UA on the validation speakers)."""

    def __new__(cls, x, y, owner, n_utterances, batch_size):
        import keras

        from keras_ser.metrics import unweighted_accuracy

        class ValidationUA(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                probabilities = self.model.predict(x, batch_size=batch_size, verbose=0)
                if owner is not None:
                    probabilities = _mean_by_owner(probabilities, owner, n_utterances)
                if logs is not None:
                    logs["val_ua"] = unweighted_accuracy(y, probabilities.argmax(-1))

        return ValidationUA()


def fit_model(model, train_cfg, train_data, val_data, *, class_weight, log_dir, val_utterance=None):
    """Compile and fit ``model``; return the Keras history dict and the best epoch.

    Parameters
    ----------
    model : keras.Model
        Built (inside the strategy scope by the caller).
    train_cfg : dict
        ``[train]`` or ``[stage1]`` table.
    train_data, val_data : (x, y)
        ``val_data`` may be None (no validation speakers): no early stopping.
    class_weight : dict or None
    log_dir : pathlib.Path
        TensorBoard log folder.
    val_utterance : (y_utt, owner) or None
        For segment models, the utterance labels and segment owners, so that
        ``val_ua`` is measured per utterance as the test score is.
    """
    import keras

    from keras_ser.metrics import ConcordanceCorrelation

    metrics = (
        [ConcordanceCorrelation(num_outputs=model.output_shape[-1])]
        if train_cfg["loss"] == "ccc"
        else ["accuracy"]
    )
    model.compile(optimizer=make_optimizer(train_cfg), loss=_loss(train_cfg), metrics=metrics,
                  jit_compile=train_cfg["jit_compile"])
    callbacks = []
    if tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0))
    if val_data is not None:
        if train_cfg["loss"] != "ccc":
            if val_utterance is None:
                callbacks.insert(0, _ValidationUA(val_data[0], val_data[1], None, None, train_cfg["batch_size"]))
            else:
                y_utt, owner = val_utterance
                callbacks.insert(0, _ValidationUA(val_data[0], y_utt, owner, len(y_utt), train_cfg["batch_size"]))
        if train_cfg["early_stopping"]:
            monitor = train_cfg["monitor"]
            mode = "max" if monitor.endswith(("ua", "accuracy", "ccc")) else "min"
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor, mode=mode, patience=train_cfg["patience"], restore_best_weights=True,
                    start_from_epoch=train_cfg["start_from_epoch"],
                )
            )
    if _multi_worker():
        return _fit_multi_worker(model, train_cfg, train_data, class_weight)
    history = model.fit(
        train_data[0],
        train_data[1],
        batch_size=train_cfg["batch_size"],
        epochs=train_cfg["epochs"],
        validation_data=val_data,
        class_weight=class_weight,
        callbacks=callbacks,
        shuffle=True,
        verbose=train_cfg["verbose"],
    )
    record = {key: [float(v) for v in values] for key, values in history.history.items()}
    epochs_run = len(next(iter(record.values()))) if record else 0
    best_epoch = epochs_run
    stopper = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    if stopper and train_cfg["monitor"] in record:
        # restore_best_weights keeps this epoch's weights; the warm-up epochs are never chosen.
        skip = min(train_cfg["start_from_epoch"], len(record[train_cfg["monitor"]]) - 1)
        values = record[train_cfg["monitor"]][skip:]
        best_epoch = skip + int(np.argmax(values) if stopper[0].mode == "max" else np.argmin(values)) + 1
    return record, epochs_run, best_epoch


def _multi_worker():
    """Whether the current strategy spans several worker processes."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return len(strategy.cluster_resolver.cluster_spec().as_dict().get("worker", [])) > 1


def _fit_multi_worker(model, train_cfg, train_data, class_weight):
    """Train with :func:`keras_ser.distribute.fit` for ``train.epochs`` epochs.

    ``Model.fit`` of Keras 3.15 fails with two or more workers (see
    :mod:`keras_ser.distribute`), so multi-worker runs use that loop instead. It has
    no callbacks: no validation early stopping, the last epoch's weights are kept.
    """
    import logging

    import tensorflow as tf

    from keras_ser.distribute import fit

    if train_cfg["loss"] == "ccc":
        raise ParameterError("train.loss='ccc' is a statistic of the whole batch and cannot be split "
                             "across workers; use --strategy default or mirrored")
    logging.getLogger("keras_ser").warning(
        "multi_worker: training %d epochs with keras_ser.distribute.fit "
        "(Keras fit fails with several workers); no validation early stopping",
        train_cfg["epochs"],
    )
    x, y = train_data
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(y), seed=0, reshuffle_each_iteration=True)
        .batch(train_cfg["batch_size"])
    )
    history = fit(model, dataset, strategy=tf.distribute.get_strategy(), loss=_loss(train_cfg),
                  epochs=train_cfg["epochs"], class_weight=class_weight, progress=train_cfg["verbose"] > 0)
    return history, train_cfg["epochs"], train_cfg["epochs"]


def _class_weight(train_cfg, labels, label_names):
    if train_cfg["class_weight"] != "inverse_frequency":
        return None
    from keras_ser.data import class_weights

    return class_weights(labels, label_names)


def _augmented(store, utterances, factors):
    """Front-end outputs of ``utterances`` at every speed factor (1.0 if none given)."""
    factors = factors or [1.0]
    features, owners = [], []
    for factor in factors:
        features.extend(store.get(utterances, float(factor)))
        owners.extend(utterances)
    return features, owners


def _penultimate(model, prefer="fc7"):
    """Sub-model giving the named layer's output, else the input of the final Dense."""
    import keras

    names = {layer.name for layer in model.layers}
    if prefer in names:
        return keras.Model(model.inputs, model.get_layer(prefer).output)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ParameterError(f"model {model.name!r} has no Dense layer to take features from")
    return keras.Model(model.inputs, dense[-1].input)


# ---------------------------------------------------------------------------- fold runners


def _set_seed(seed):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _model_kwargs(model_table, frontend):
    """Builder keyword arguments of a recipe's ``[model]`` table.

    A model whose builder takes ``num_frames`` gets the front end's
    ``num_frames`` unless the recipe sets it, so that overriding
    ``frontend.num_frames`` alone keeps the model input consistent.
    """
    from keras_ser.models import info

    kwargs = {k: v for k, v in model_table.items() if k != "name"}
    entry = info(model_table["name"])
    frames = frontend.settings.get("num_frames")
    if (frames is not None and "num_frames" not in kwargs
            and "num_frames" not in entry.default_kwargs
            and "num_frames" in inspect.signature(entry.builder).parameters):
        kwargs["num_frames"] = frames
    return kwargs


def _mask_value(model_table):
    """The padding value a model masks (its builder's ``mask_value``), or None if it masks nothing."""
    from keras_ser.models import info

    entry = info(model_table["name"])
    parameters = inspect.signature(entry.builder).parameters
    if "mask_value" not in parameters:
        return None
    return model_table.get("mask_value", entry.default_kwargs.get("mask_value", parameters["mask_value"].default))


def _per_fold_statistics(frontend_table):
    """True when ``standardize="global"`` / ``"speaker"`` statistics are left to each fold."""
    return frontend_table.get("standardize") in ("global", "speaker") and frontend_table.get("feature_mean") is None


def cached_frontend(frontend_table):
    """The front end whose outputs a run computes once and caches (:class:`FeatureStore`).

    It is the recipe's ``[frontend]``, except that ``standardize="global"`` or
    ``"speaker"`` without statistics is left out: each fold then standardises
    the cached features with statistics it computes (:class:`_FoldStandardizer`).
    """
    from keras_ser.features import FrontEnd

    settings = dict(frontend_table)
    if _per_fold_statistics(settings):
        settings["standardize"] = None
    return FrontEnd(**settings)


class _FoldStandardizer:
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
        from keras_ser.features import FrontEnd, feature_statistics

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


def _neural_fold(recipe, fold, label_names, fold_dir, store, strategy):
    from keras_ser.models import build

    experiment, train = recipe["experiment"], recipe["train"]
    segments = experiment["pooling"] == "mean_segments"
    train_features, train_utts = _augmented(store, list(fold.train), train["speed_perturbation"])
    fold_frontend, standardized = None, (lambda features, utterances: features)
    if _per_fold_statistics(recipe["frontend"]):
        standardized = _FoldStandardizer(recipe["frontend"], fold, train_features, train_utts, store)
        fold_frontend = standardized.frontend
        train_features = standardized(train_features, train_utts)
    y_train_utt = _label_index(train_utts, label_names)
    val_utts = list(fold.validation)
    test_utts = list(fold.test)

    def arrays(features, y):
        if segments:
            return _flatten_segments(features, y)
        return pad_stack(features, _mask_value(recipe["model"])), y, None

    x_train, y_train, _ = arrays(train_features, y_train_utt)
    val_data, val_utterance = None, None
    if val_utts:
        y_val_utt = _label_index(val_utts, label_names)
        x_val, y_val, val_owner = arrays(standardized(store.get(val_utts), val_utts), y_val_utt)
        val_data = (x_val, y_val)
        val_utterance = (y_val_utt, val_owner) if segments else None
    model_kwargs = _model_kwargs(recipe["model"], store.frontend)
    with strategy.scope():
        model = build(recipe["model"]["name"], num_classes=len(label_names), **model_kwargs)
        history, epochs_run, best_epoch = fit_model(
            model, train, (x_train, y_train), val_data,
            class_weight=_class_weight(train, [u.label for u in train_utts], label_names),
            log_dir=fold_dir / "tensorboard", val_utterance=val_utterance,
        )

    def predict(utterances):
        x, _, owner = arrays(standardized(store.get(utterances), utterances), np.zeros(len(utterances), np.int64))
        probabilities = model.predict(x, batch_size=train["batch_size"], verbose=0)
        return _mean_by_owner(probabilities, owner, len(utterances)) if segments else probabilities

    embeddings = None
    if experiment["save_features"]:
        extractor = _penultimate(model, prefer="embedding")
        embeddings = {}
        for part, utts in (("train", list(fold.train)), ("validation", val_utts), ("test", test_utts)):
            if not utts:
                continue
            x, _, owner = arrays(standardized(store.get(utts), utts), np.zeros(len(utts), np.int64))
            values = np.asarray(extractor.predict(x, batch_size=train["batch_size"], verbose=0))
            embeddings[part] = _mean_by_owner(values, owner, len(utts)) if segments else values
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


def _fc7_model(dcnn, name):
    """Sub-model of the fine-tuned DCNN giving its ``fc7`` activations (002 Sec. 2.4.1)."""
    import keras

    if "fc7" not in {layer.name for layer in dcnn.layers}:
        raise ParameterError(f"[stage1] model {name!r} has no layer named 'fc7' to take segment features from")
    return keras.Model(dcnn.inputs, dcnn.get_layer("fc7").output)


def _stage2_kwargs(model_table, feature_dim):
    """Builder arguments of the stage-2 model; its ``feature_dim`` is the fc7 width."""
    kwargs = {k: v for k, v in model_table.items() if k != "name"}
    if kwargs.setdefault("feature_dim", feature_dim) != feature_dim:
        raise ParameterError(
            f"model.feature_dim={kwargs['feature_dim']} but the stage-1 fc7 layer has {feature_dim} units; "
            "drop model.feature_dim (it follows fc7) or change stage1.model_options.fc_units"
        )
    return kwargs


def _two_stage_fold(recipe, fold, label_names, fold_dir, store, strategy):
    import keras

    from keras_ser.models import build

    stage1, train = recipe["stage1"], recipe["train"]
    val_utts, test_utts = list(fold.validation), list(fold.test)

    # Stage 1 (002 Sec. 2.3, 3.2): fine-tune the DCNN on labelled segments.
    s1_features, s1_utts = _augmented(store, list(fold.train), stage1["speed_perturbation"])
    x1, y1, _ = _flatten_segments(s1_features, _label_index(s1_utts, label_names))
    val1 = None
    if val_utts:
        xv, yv, _ = _flatten_segments(store.get(val_utts), _label_index(val_utts, label_names))
        val1 = (xv, yv)
    with strategy.scope():
        dcnn = build(stage1["model"], num_classes=len(label_names), **stage1["model_options"])
        history1, epochs1, best1 = fit_model(
            dcnn, stage1, (x1, y1), val1,
            class_weight=_class_weight(stage1, [u.label for u in s1_utts], label_names),
            log_dir=fold_dir / "tensorboard" / "stage1",
        )
    fc7 = _fc7_model(dcnn, stage1["model"])

    # Stage 2: the fc7 activations of an utterance's segments form its sequence.
    def sequences(features):
        # One predict call over every segment: a call per utterance costs ~0.1 s of Keras overhead each.
        counts = [len(f) for f in features]
        values = np.asarray(fc7.predict(np.concatenate(features), batch_size=stage1["batch_size"], verbose=0))
        return np.stack(np.split(values, np.cumsum(counts)[:-1]))

    s2_features, s2_utts = _augmented(store, list(fold.train), train["speed_perturbation"])
    x2, y2 = sequences(s2_features), _label_index(s2_utts, label_names)
    val2 = (sequences(store.get(val_utts)), _label_index(val_utts, label_names)) if val_utts else None
    model_kwargs = _stage2_kwargs(recipe["model"], fc7.output_shape[-1])
    with strategy.scope():
        head = build(recipe["model"]["name"], num_classes=len(label_names), **model_kwargs)
        history2, epochs2, best2 = fit_model(
            head, train, (x2, y2), val2,
            class_weight=_class_weight(train, [u.label for u in s2_utts], label_names),
            log_dir=fold_dir / "tensorboard" / "stage2",
        )
        # The saved model chains both stages so it takes the front-end output.
        segments_in = keras.Input(shape=store.get(test_utts[:1])[0].shape)
        combined = keras.Model(segments_in, head(keras.layers.TimeDistributed(fc7)(segments_in)))

    def predict(utterances):
        return np.asarray(head.predict(sequences(store.get(utterances)), batch_size=train["batch_size"], verbose=0))

    history = {f"stage1_{k}": v for k, v in history1.items()}
    history.update(history2)
    return {
        "model": combined,
        "pooling": "none",
        "history": history,
        "epochs_run": epochs2,
        "best_epoch": best2,
        "stage1_epochs_run": epochs1,
        "stage1_best_epoch": best1,
        "test_probabilities": predict(test_utts),
        "val_probabilities": predict(val_utts) if val_utts else None,
        "embeddings": None,
    }


def _save_model_dir(model_dir, model, frontend, label_names, meta):
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "model.keras")
    write_json(model_dir / "frontend.json", frontend.get_config())
    write_json(model_dir / "labels.json", list(label_names))
    write_json(model_dir / "meta.json", meta)


def _fold_summary(fold):
    def speakers(utts):
        return sorted({str(u.speaker) for u in utts})

    return {
        "fold": fold.name,
        "test_speakers": speakers(fold.test),
        "validation_speakers": speakers(fold.validation),
        "n_train": len(fold.train),
        "n_validation": len(fold.validation),
        "n_test": len(fold.test),
    }


def run_fold(recipe, fold, label_names, fold_dir, *, store=None, frontend=None, strategy=None, progress=True):
    """Train and evaluate one fold; write its files; return its ``metrics.json`` dict."""
    from keras_ser.metrics import classification_scores

    fold_dir = pathlib.Path(fold_dir)
    fold_dir.mkdir(parents=True, exist_ok=True)
    kind = recipe["experiment"]["kind"]
    start = time.time()
    _set_seed(recipe["experiment"]["seed"])
    summary = _fold_summary(fold)
    if kind == "features_svm":
        from keras_ser import svm

        config = dict(recipe, corpus=recipe["experiment"]["corpus"], seed=recipe["experiment"]["seed"],
                      progress=progress)
        out = svm.run_fold(config, fold, label_names, fold_dir)
        index = {name: k for k, name in enumerate(label_names)}
        y_true = [index[v] if isinstance(v, str) else int(v) for v in out["y_true"]]
        y_pred = [index[v] if isinstance(v, str) else int(v) for v in out["y_pred"]]
        scores = np.asarray(out.get("scores") or np.eye(len(label_names))[y_pred], np.float64)
        write_predictions(fold_dir / "predictions.csv", out["ids"], [label_names[k] for k in y_true],
                          [label_names[k] for k in y_pred], scores, label_names, prefix="score_")
        metrics = dict(summary, scores=classification_scores(y_true, y_pred, label_names),
                       params=out.get("params", {}), epochs_run=None, best_epoch=None)
    else:
        runner = _two_stage_fold if kind == "two_stage" else _neural_fold
        out = runner(recipe, fold, label_names, fold_dir, store, strategy)
        y_true = _label_index(list(fold.test), label_names)
        probabilities = out["test_probabilities"]
        y_pred = probabilities.argmax(-1)
        write_predictions(fold_dir / "predictions.csv", [u.id for u in fold.test],
                          [label_names[k] for k in y_true], [label_names[k] for k in y_pred],
                          probabilities, label_names)
        validation = {}
        if out["val_probabilities"] is not None:
            val_pred = out["val_probabilities"].argmax(-1)
            write_predictions(fold_dir / "val_predictions.csv", [u.id for u in fold.validation],
                              [u.label for u in fold.validation],
                              [label_names[k] for k in val_pred],
                              out["val_probabilities"], label_names)
            # keras_ser.predict picks a run's fold model by validation UA, never by test UA.
            validation["validation_scores"] = classification_scores(
                _label_index(list(fold.validation), label_names), val_pred, label_names)
        if out["embeddings"] is not None:
            ids = {"train": fold.train, "validation": fold.validation, "test": fold.test}
            np.savez(fold_dir / "embeddings.npz",
                     **{f"{part}_x": v for part, v in out["embeddings"].items()},
                     **{f"{part}_ids": np.array([u.id for u in ids[part]]) for part in out["embeddings"]})
        write_json(fold_dir / "history.json", out["history"])
        if recipe["experiment"]["save_models"]:
            _save_model_dir(fold_dir / "model", out["model"], out.get("frontend") or frontend, label_names, {
                "recipe": recipe["recipe"]["name"], "fold": fold.name, "pooling": out["pooling"],
                "corpus": recipe["experiment"]["corpus"], "sample_rate": store.sample_rate,
            })
        metrics = dict(summary, scores=classification_scores(y_true, y_pred, label_names),
                       epochs_run=out["epochs_run"], best_epoch=out["best_epoch"], **validation)
        for key in ("stage1_epochs_run", "stage1_best_epoch"):
            if key in out:
                metrics[key] = out[key]
    metrics["wall_s"] = round(time.time() - start, 2)
    # Written last: its presence marks the fold as finished.
    write_json(fold_dir / "metrics.json", metrics)
    return metrics


# ---------------------------------------------------------------------------- the run


def _select_folds(folds, wanted):
    if not wanted:
        return folds
    by_name = {f.name: f for f in folds}
    chosen = []
    for name in wanted:
        match = by_name.get(name) or by_name.get(f"speaker_{name}")
        if match is None:
            raise ParameterError(f"--folds: no fold {name!r}; folds are {', '.join(by_name)}")
        chosen.append(match)
    return chosen


def _check_config(run_dir, config):
    path = run_dir / "config.json"
    if path.is_file():
        old = json.loads(path.read_text())
        strip = lambda c: {k: v for k, v in c.items() if k not in _RESUMABLE_KEYS}  # noqa: E731
        if strip(old) != strip(json.loads(json.dumps(config, default=_json_default))):
            raise ParameterError(
                f"{run_dir} holds a run with a different configuration (see its config.json); "
                "resume with the same recipe, overrides and corpus, or choose another --out"
            )
    write_json(path, config)


def _check_supported(recipe):
    """Refuse, before any data is read, a recipe whose training path the runner lacks.

    The fold runners train classifiers on one front-end input with categorical labels.
    003 (``loss = "ccc"``) regresses continuous arousal / valence / liking and its
    model takes a second input, aligned word vectors ``[T, 300]`` (Sec. 3.1:
    Speech2Vec aligned to Word2Vec), which nothing here computes: keras_ser ships no
    Word2Vec/Speech2Vec models and no SEWA transcripts.
    """
    if recipe["experiment"]["kind"] in ("neural", "two_stage") and recipe["train"]["loss"] == "ccc":
        raise ParameterError(
            f"recipe {recipe['recipe']['name']!r}: python -m keras_ser.train has no continuous-regression "
            "path (train.loss='ccc'). 003's model also needs a second input, aligned Speech2Vec/Word2Vec "
            "vectors [T, 300] per 0.1 s frame (003 Sec. 3.1), that keras_ser cannot compute: it needs "
            "the SEWA corpus under <data dir>/sewa (audio/, labels/, see keras_ser.data.sewa) and word "
            "vectors aligned to its transcripts, neither of which is available. Build the model with "
            "keras_ser.models.build('tzirakis2021_semantic') and train it with keras_ser.metrics.ccc_loss "
            "on your own [audio_frames, word_vectors] arrays instead"
        )


def run_experiment(recipe, *, corpus=None, data_dir=None, out=None, folds=None, strategy="default",
                   overrides=(), progress=True):
    """Run ``recipe`` over every fold (or ``folds``), resuming finished folds.

    Parameters
    ----------
    recipe : dict or str
        A resolved recipe (:func:`keras_ser.recipe.load_recipe`) or its name.
    corpus : str, optional
        Overrides ``[experiment] corpus`` (``"emodb"``, ``"manifest:PATH"``, ...).
    data_dir : str, optional
        Data root, see :func:`keras_ser.paths.data_root`.
    out : path, optional
        Run directory; default ``runs/<recipe name>``.
    folds : list of str, optional
        Fold names (``"speaker_03"`` or just ``"03"``) to run now; the others are
        left for a later call. Reports cover every finished fold.
    strategy : {"default", "mirrored", "multi_worker"}
        Passed to :func:`keras_ser.distribute.get_strategy`.
    overrides : sequence of str
        Recorded in ``config.json`` (and passed to fusion members).
    progress : bool
        tqdm bar over folds.

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    from tqdm.auto import tqdm

    from keras_ser import reports
    from keras_ser.data import label_names as corpus_labels
    from keras_ser.data import load_corpus, make_folds

    if isinstance(recipe, str):
        recipe = load_recipe(recipe, overrides)
    recipe = json.loads(json.dumps(recipe))
    if corpus:
        recipe["experiment"]["corpus"] = corpus
    _check_supported(recipe)
    name = recipe["recipe"]["name"]
    run_dir = pathlib.Path(out) if out else pathlib.Path("runs") / name
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = recipe["experiment"]["corpus"]
    config = {"recipe": recipe, "overrides": list(overrides), "corpus": corpus,
              "data_dir": str(data_dir) if data_dir else None, "seed": recipe["experiment"]["seed"],
              "strategy": strategy, "folds": list(folds or [])}
    _check_config(run_dir, config)
    labels = corpus_labels(corpus)
    write_json(run_dir / "labels.json", labels)

    if recipe["experiment"]["kind"] == "fusion":
        from keras_ser import fusion

        return fusion.run_fusion(recipe, run_dir, corpus=corpus, data_dir=data_dir, folds=folds,
                                 strategy=strategy, overrides=overrides, progress=progress)

    utterances = load_corpus(corpus, data_dir)
    all_folds = make_folds(recipe["experiment"]["protocol"], utterances, **recipe["experiment"]["protocol_options"])
    chosen = _select_folds(all_folds, folds)
    todo = [f for f in chosen if not (run_dir / "folds" / f.name / "metrics.json").is_file()]
    store = frontend = strategy_obj = None
    if todo and recipe["experiment"]["kind"] in ("neural", "two_stage"):
        from keras_ser.distribute import get_strategy

        frontend = cached_frontend(recipe["frontend"])
        store = FeatureStore(frontend)
        strategy_obj = get_strategy(strategy)
    bar = tqdm(chosen, desc=name, unit="fold", disable=not progress)
    for fold in bar:
        bar.set_postfix_str(fold.name)
        if fold in todo:
            run_fold(recipe, fold, labels, run_dir / "folds" / fold.name,
                     store=store, frontend=frontend, strategy=strategy_obj, progress=progress)
    return reports.write_reports(run_dir, recipe, labels, [f.name for f in all_folds])
