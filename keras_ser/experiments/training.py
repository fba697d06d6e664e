"""Training one network: optimiser, loss, class weights, callbacks, ``fit``, seeding.

Shared by the fold modules (:mod:`~keras_ser.experiments.neural`,
:mod:`~keras_ser.experiments.two_stage`), together with the array helpers that
turn cached front-end outputs into training arrays (labels, segments, speed
factors). Imports nothing else of :mod:`keras_ser.experiments` but
:mod:`~keras_ser.experiments.checkpoints` (a fit's epoch checkpoints).

Experiment trackers
-------------------
Extra Keras callbacks (MLflow, TensorBoard HParams, Weights & Biases logging, ...) are
added without editing the runner by a *callback factory*: a callable
``factory(recipe, fold, fold_dir)`` returning a list of ``keras.callbacks.Callback``.
``recipe`` is the resolved recipe dict, ``fold`` the :class:`keras_ser.data.Fold`
being trained (``fold.name``; a ``train --final`` model's is ``"final"``) and
``fold_dir`` its folder in the run directory. Register it in Python with
:func:`register_callback_factory`, or name it on the command line as
``module:function`` (``python -m keras_ser.train --callbacks mypkg.tracking:mlflow_callbacks``,
:func:`load_callback_factory`). Every ``Model.fit`` of a fold calls every factory
once (a two-stage recipe fits twice per fold); the callbacks run after keras_ser's
own (validation pass, TensorBoard, early stopping), so they see ``val_ua`` in the
logs. The multi-worker loop has no callbacks and calls no factory. For example::

    import keras
    from keras_ser.experiments.training import register_callback_factory

    @register_callback_factory
    def hparams(recipe, fold, fold_dir):
        from tensorboard.plugins.hparams import api as hp
        return [hp.KerasCallback(str(fold_dir / "hparams"), {
            "model": recipe["model"]["name"], "lr": recipe["train"]["learning_rate"]})]

Example
-------
>>> from keras_ser.experiments.training import make_optimizer
>>> from keras_ser.recipe import load_recipe
>>> make_optimizer(load_recipe("zhao2019_attention_blstm_fcn")["train"])  # doctest: +SKIP
<keras.src.optimizers.adam.Adam object at ...>

One module on purpose: everything one ``Model.fit`` of a fold needs, from the optimiser to
the callbacks and the tf.data feed.
"""

import contextlib
import contextvars
import importlib
import importlib.util
import logging

import keras
import numpy as np
import tensorflow as tf

from keras_ser import distribute
from keras_ser.data import FAU_AIBO_CLASS_WEIGHTS, class_weights
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.checkpoints import next_fit_checkpoint
from keras_ser.frontend.dataset import array_dataset
from keras_ser.ccc import ConcordanceCorrelation, ccc_loss
from keras_ser.metrics import unweighted_accuracy


def set_seed(seed):
    """Seed Python, NumPy and TensorFlow and make TensorFlow ops deterministic.

    Called before every fold, so the same seed, data and settings give the same metrics.
    """
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# ---------------------------------------------------------------------------- optimiser, loss, weights


def make_optimizer(train):
    """The Keras optimiser of a ``[train]`` / ``[stage1]`` table.

    ``decay`` reproduces Keras 2's legacy argument (zhao2019: "Adam ... decay of 1e-6"),
    which Keras 3 removed: ``lr_t = lr / (1 + decay * iterations)``. That is exactly
    ``keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1,
    decay_rate=decay)``, used here. ``nadam`` is Adam with Nesterov momentum
    (zhang2021_dcnn); its momentum 0.9 is ``beta_1``.
    """
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


def make_loss(train):
    """The loss of a ``[train]`` table: CCC (:func:`keras_ser.ccc.ccc_loss`) or cross-entropy."""
    if train["loss"] == "ccc":
        return ccc_loss
    return "sparse_categorical_crossentropy"


def class_weight(train_cfg, labels, label_names):
    """Keras ``class_weight`` of ``train.class_weight``: ``"inverse_frequency"`` (zhao2019 eq. 11)
    on the fold's training labels, ``"zhao2019_table4"`` (zhao2019 Table 4's fixed FAU-AEC
    weights), else None."""
    if train_cfg["class_weight"] == "zhao2019_table4":
        if sorted(label_names) != sorted(FAU_AIBO_CLASS_WEIGHTS):
            raise ParameterError(
                f"train.class_weight=\"zhao2019_table4\" weights the five FAU-AEC classes "
                f"{sorted(FAU_AIBO_CLASS_WEIGHTS)}; this corpus has {sorted(label_names)}"
            )
        return {index: FAU_AIBO_CLASS_WEIGHTS[name] for index, name in enumerate(label_names)}
    if train_cfg["class_weight"] != "inverse_frequency":
        return None
    return class_weights(labels, label_names)


# ---------------------------------------------------------------------------- training arrays


def label_index(utterances, label_names):
    """Class indices of ``utterances`` in ``label_names`` order.

    Raises
    ------
    keras_ser.errors.DataError
        An utterance's label is not one of ``label_names``.
    """
    index = {name: k for k, name in enumerate(label_names)}
    try:
        return np.array([index[u.label] for u in utterances], np.int64)
    except KeyError as error:
        raise DataError(f"label {error.args[0]!r} is not one of {label_names}") from None


def continuous_track(utterance, dimension):
    """The ``(times_s, values)`` label track of ``dimension`` of one utterance, checked.

    Raises
    ------
    keras_ser.errors.DataError
        The utterance has no continuous labels, lacks ``dimension``, or its track is
        empty, of mismatched length, or holds a NaN or infinite value; the message names
        the utterance, its file and the dimension.
    """
    tracks = utterance.continuous
    if not tracks or dimension not in tracks:
        have = sorted(tracks) if tracks else []
        raise DataError(f"utterance {utterance.id!r} ({utterance.path}) has no continuous label {dimension!r} "
                        f"(it has {have or 'none'}); a train.loss='ccc' recipe needs every dimension of the "
                        "corpus (e.g. corpus 'emodb_dimensional' or 'sewa')")
    times, values = (np.asarray(a, np.float64).ravel() for a in tracks[dimension])
    if values.size == 0 or times.shape != values.shape:
        raise DataError(f"utterance {utterance.id!r} ({utterance.path}): continuous label {dimension!r} has "
                        f"{times.size} times and {values.size} values")
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(times))):
        raise DataError(f"utterance {utterance.id!r} ({utterance.path}): continuous label {dimension!r} holds a "
                        "NaN or infinite value")
    return times, values


def frame_targets(utterance, dimensions, frame_s, n_frames):
    """Per-frame regression targets ``[n_frames, len(dimensions)]`` of one utterance.

    Frame ``k`` covers ``[k * frame_s, (k + 1) * frame_s)``; its target is the label
    track at the frame's start time ``k * frame_s``, linearly interpolated between label
    times and held constant before the first and after the last (``numpy.interp``). On
    SEWA, whose labels are given every 0.1 s at the frame starts (tzirakis2021 Sec. 4; the
    tzirakis2021 front end's 2205-sample frames at 22.05 kHz are 0.1 s), this is the label
    of the frame itself; a derived EMO-DB target (one value per utterance) is constant.
    """
    starts = np.arange(n_frames) * float(frame_s)
    return np.stack([np.interp(starts, *continuous_track(utterance, dim)) for dim in dimensions], axis=-1)


def utterance_targets(utterances, dimensions):
    """One regression target per utterance ``[n, len(dimensions)]``: the mean of each label track's values."""
    return np.array([[continuous_track(u, dim)[1].mean() for dim in dimensions] for u in utterances], np.float64)


def flatten_segments(features, labels):
    """Segment-level training set: every segment carries its utterance's label (zhang2021_multicnn Sec. 3.1).

    Returns
    -------
    (x, y, owner)
        Segments, their labels and the index of the utterance each came from.
    """
    counts = [f.shape[0] for f in features]
    x = np.concatenate(features, axis=0)
    y = np.repeat(labels, counts)
    owner = np.repeat(np.arange(len(features)), counts)
    return x, y, owner


def with_input_resize(model, resize, shape):
    """``model`` fed with segment images before their resize: ``resize``, then ``model``.

    The returned model shares ``model``'s layers and weights: training it trains ``model``.
    A fold that holds every segment of a corpus keeps them as the front end's images before
    the resize (:meth:`keras_ser.experiments.neural.FeatureStore.split_resize`; 64 x 64
    instead of 227 x 227, 12.6 times fewer values, ``benchmarks/two_stage_memory.py``) and
    trains and predicts through this; the fold's saved model is ``model`` itself, which
    takes the front end's output. ``model`` itself when ``resize`` is None.

    Parameters
    ----------
    model : keras.Model
    resize : keras_ser.frontend.ResizeImages or None
    shape : tuple of int
        One input row before the resize, e.g. ``(64, 64, 3)``.
    """
    if resize is None:
        return model
    inputs = keras.Input(shape=shape)
    return keras.Model(inputs, model(resize(inputs)), name=f"{model.name}_resized_input")


def mean_by_owner(values, owner, n):
    """Mean of the rows of ``values`` per owner index (segment scores -> utterance scores)."""
    sums = np.zeros((n,) + values.shape[1:], np.float64)
    np.add.at(sums, owner, values)
    counts = np.bincount(owner, minlength=n).reshape((n,) + (1,) * (values.ndim - 1))
    return sums / counts


def augmented(store, utterances, factors):
    """Front-end outputs of ``utterances`` at every speed factor (1.0 if none given).

    Returns
    -------
    (features, owners)
        One entry per (factor, utterance), factor-major.
    """
    factors = factors or [1.0]
    features, owners = [], []
    for factor in factors:
        features.extend(store.get(utterances, float(factor)))
        owners.extend(utterances)
    return features, owners


# ---------------------------------------------------------------------------- fit


def tensorboard_available():
    """True when the ``tensorboard`` package is installed (Keras's TensorBoard callback needs it).

    Without it, runs still write ``history.json`` and ``curves.png``; TensorBoard logs
    are skipped rather than failing the run.
    """
    return importlib.util.find_spec("tensorboard") is not None


_CALLBACK_FACTORIES = []
#: (recipe, fold, fold_dir) of the fold being trained, set by :func:`fold_context`.
_FOLD = contextvars.ContextVar("keras_ser_fold", default=None)


def register_callback_factory(factory):
    """Add ``factory(recipe, fold, fold_dir) -> list of keras.callbacks.Callback`` to every fit.

    Returns ``factory``, so that it also works as a decorator. Registering the same
    factory twice adds it once. See the module docstring for an example.

    Raises
    ------
    ParameterError
        ``factory`` is not callable.
    """
    if not callable(factory):
        raise ParameterError(f"a callback factory must be callable, got {factory!r}")
    if factory not in _CALLBACK_FACTORIES:
        _CALLBACK_FACTORIES.append(factory)
    return factory


def unregister_callback_factory(factory):
    """Remove a factory added by :func:`register_callback_factory` (no error if absent)."""
    if factory in _CALLBACK_FACTORIES:
        _CALLBACK_FACTORIES.remove(factory)


def load_callback_factory(spec):
    """The callable named by ``"module:function"`` (``module`` importable, ``function`` an attribute path).

    Raises
    ------
    ParameterError
        ``spec`` is not ``module:function``, the module cannot be imported, or it has
        no such callable; the message names ``spec``.
    """
    module_name, _, attribute = str(spec).partition(":")
    if not module_name or not attribute:
        raise ParameterError(f"callback factory {spec!r}: expected module:function, e.g. mypkg.tracking:callbacks")
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise ParameterError(f"callback factory {spec!r}: cannot import {module_name!r} ({error})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ParameterError(f"callback factory {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ParameterError(f"callback factory {spec!r}: {attribute!r} is not callable")
    return target


class _NewModelTraces(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning.

    TensorFlow counts the traces of a ``tf.function`` by its Python code object, not by the
    model it steps: Keras' train / test / predict steps and :class:`ValidationPass`'s step
    have one code object for every model of a run (each fold's network, its embedding and
    resize wrappers), so the first trace of each new model counts against the warning's
    threshold of five, and a LOSO run warns from its second or third fold on. Its advice
    (reuse the function, fix the input shapes) does not apply to models trained one after
    the other.
    """

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def fold_context(recipe, fold, fold_dir):
    """Within the block, :func:`fit_model` passes ``(recipe, fold, fold_dir)`` to the callback factories,
    and TensorFlow's retracing warning, a false alarm for a run's new models, is dropped (:class:`_NewModelTraces`).
    """
    token = _FOLD.set((recipe, fold, fold_dir))
    quiet = _NewModelTraces()
    tf.get_logger().addFilter(quiet)
    try:
        yield
    finally:
        tf.get_logger().removeFilter(quiet)
        _FOLD.reset(token)


def tracker_callbacks():
    """The callbacks of every registered factory for the current fold (none outside :func:`fold_context`).

    Raises
    ------
    ParameterError
        A factory returned something other than a list or tuple of Keras callbacks;
        the message names the factory.
    """
    context = _FOLD.get()
    if context is None:
        return []
    callbacks = []
    for factory in list(_CALLBACK_FACTORIES):
        made = factory(*context)
        name = getattr(factory, "__qualname__", repr(factory))
        if not isinstance(made, (list, tuple)) or not all(isinstance(c, keras.callbacks.Callback) for c in made):
            raise ParameterError(f"callback factory {name} must return a list of keras.callbacks.Callback, "
                                 f"got {made!r}")
        callbacks.extend(made)
    return callbacks


def predict_arrays(model, inputs, batch_size):
    """``model.predict`` on in-memory inputs, fed in order through :func:`keras_ser.frontend.array_dataset`.

    Keras' own feed of NumPy arrays without shuffling (``predict``) makes TensorFlow log an
    ``E0000 ... NodeDef mentions attribute use_unbounded_threadpool`` line at every call once
    :func:`set_seed` has turned on op determinism. This feed computes the same batches in the same
    order without it.
    """
    return model.predict(array_dataset(inputs, None, batch_size), verbose=0)


class ValidationPass(keras.callbacks.Callback):
    """Keras callback scoring the validation speakers once per epoch: ``val_loss``, the compiled
    metrics (``val_accuracy`` / ``val_ccc``) and ``val_ua``, from one forward pass.

    ``Model.fit(validation_data=...)`` would run the validation rows through the network for
    its loss and metrics, and the utterance-level UA needs their scores again (segment scores
    are averaged per utterance before the arg max, which no streaming Keras metric can do), so
    the rows went through twice per epoch. This callback runs them through once, in the
    batches of Keras' evaluation, and each batch's step does what Keras' ``test_step`` does
    (the model's compiled loss on the graph's outputs, so a softmax's loss is still computed
    from its logits; the batch's loss weighted by its size; the compiled metrics) and also
    returns the scores. A test compares the numbers with ``validation_data``'s to the last bit.

    Parameters
    ----------
    x : array, tuple or dict of arrays
        Validation inputs (utterances, or segments when ``utterance`` is given).
    y : array
        Their targets (row labels, or dimensional targets for the CCC loss).
    batch_size : int
    utterance : (y_utt, owner) or None
        For segment models, the utterance labels and the utterance index of every row of
        ``x``: segment scores are averaged per utterance, as the test scores are.
    ua : bool
        Add ``val_ua`` (classification); False for the CCC loss's dimensional targets.
    """

    def __init__(self, x, y, batch_size, *, utterance=None, ua=True):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.utterance, self.ua = utterance, ua
        self._step = None

    def _make_step(self):
        model, loss_mean = self.model, keras.metrics.Mean()

        @tf.function(reduce_retracing=True)
        def step(x, y):
            y_pred = model(x, training=False)
            loss = model.compute_loss(None, y, y_pred, None, training=False)
            loss_mean.update_state(loss, sample_weight=tf.shape(y_pred)[0])
            model.compute_metrics(None, y, y_pred, None)
            return y_pred

        return loss_mean, step

    def on_epoch_end(self, epoch, logs=None):
        if self._step is None:
            self._step = self._make_step()
        loss_mean, step = self._step
        loss_mean.reset_state()
        self.model.reset_metrics()
        scores = np.concatenate([step(x, y).numpy() for x, y in array_dataset(self.x, self.y, self.batch_size)])
        if logs is None:
            return
        results = dict(self.model.get_metrics_result(), loss=loss_mean.result())
        # In the order of the training logs, as Keras lists them
        for name in [n for n in logs if n in results] + [n for n in results if n not in logs]:
            logs[f"val_{name}"] = float(results[name])
        if self.ua:
            labels = np.asarray(self.y)
            if self.utterance is not None:
                labels, owner = self.utterance
                scores = mean_by_owner(scores, owner, len(labels))
            logs["val_ua"] = unweighted_accuracy(labels, scores.argmax(-1))


#: Iterators Keras' ``fit`` makes of a finite training dataset per epoch (Keras 3.15: one at the
#: start of the epoch, and one at its end that the next epoch replaces), each drawing a
#: shuffle order (:func:`keras_ser.frontend.array_dataset`): a fit resumed at epoch ``k``
#: drops ``k`` times this many orders to see the rows as an uninterrupted fit does.
#: tests/test_experiments_checkpoints.py fails if a Keras release changes it.
KERAS_ORDERS_PER_EPOCH = 2


def fit_model(model, train_cfg, train_data, val_data, *, class_weight, log_dir, val_utterance=None):
    """Compile and fit ``model``; return the Keras history dict, the epochs run and the best epoch.

    The arrays reach ``Model.fit`` through the tf.data pipeline
    (:func:`keras_ser.frontend.array_dataset`): the training rows reshuffled every epoch
    in an order fixed by the fold's seed, batched and prefetched; the validation rows in
    their order.

    Parameters
    ----------
    model : keras.Model
        Built (inside the strategy scope by the caller).
    train_cfg : dict
        ``[train]`` or ``[stage1]`` table.
    train_data, val_data : (x, y)
        Arrays (``x`` a tuple or dict of arrays for a multi-input model). ``val_data`` may be
        None (no validation speakers): no early stopping.
    class_weight : dict or None
    log_dir : pathlib.Path
        TensorBoard log folder.
    val_utterance : (y_utt, owner) or None
        For segment models, the utterance labels and segment owners, so that
        ``val_ua`` is measured per utterance as the test score is.

    Inside :func:`keras_ser.experiments.checkpoints.fit_checkpoints` the fit saves its state
    now and then and resumes from a saved one: a finished fit is not run again (its weights
    and history are loaded), an interrupted one goes on from its last saved epoch.
    """
    metrics = (
        [ConcordanceCorrelation(num_outputs=model.output_shape[-1])]
        if train_cfg["loss"] == "ccc"
        else ["accuracy"]
    )
    model.compile(optimizer=make_optimizer(train_cfg), loss=make_loss(train_cfg), metrics=metrics,
                  jit_compile=train_cfg["jit_compile"])
    callbacks = []
    if tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, profile_batch=0))
    if val_data is not None:
        callbacks.insert(0, ValidationPass(val_data[0], val_data[1], train_cfg["batch_size"],
                                           utterance=val_utterance, ua=train_cfg["loss"] != "ccc"))
        if train_cfg["early_stopping"]:
            monitor = train_cfg["monitor"]
            mode = "max" if monitor.endswith(("ua", "accuracy", "ccc")) else "min"
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor, mode=mode, patience=train_cfg["patience"], restore_best_weights=True,
                    start_from_epoch=train_cfg["start_from_epoch"],
                )
            )
    # Drawn from NumPy's global generator, which set_seed seeds before every fold: each fit
    # of a fold (two_stage fits several) gets its own shuffle order, the same on every run.
    shuffle_seed = int(np.random.randint(0, 2**31 - 1))
    if multi_worker():
        return fit_multi_worker(model, train_cfg, train_data, class_weight, shuffle_seed)
    stopper = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
    rows = int(np.shape(tf.nest.flatten(train_data[0])[0])[0])
    checkpoint = next_fit_checkpoint(model, {
        "settings": {k: v for k, v in train_cfg.items() if k != "verbose"}, "rows": rows,
        "validation_rows": None if val_data is None else int(np.shape(val_data[1])[0]),
        "shuffle_seed": shuffle_seed, "class_weight": _json_class_weight(class_weight)}, stopper)
    initial_epoch = 0
    if checkpoint is not None:
        if checkpoint.restore(model):
            return _fit_result(checkpoint.record, train_cfg, stopper)
        initial_epoch = checkpoint.initial_epoch
        callbacks.append(checkpoint)
    callbacks.extend(tracker_callbacks())
    batch_size = train_cfg["batch_size"]
    history = model.fit(
        array_dataset(*train_data, batch_size, shuffle_seed=shuffle_seed,
                      skip_orders=KERAS_ORDERS_PER_EPOCH * initial_epoch),
        epochs=train_cfg["epochs"],
        initial_epoch=initial_epoch,
        class_weight=class_weight,
        callbacks=callbacks,
        shuffle=False,  # array_dataset shuffles
        verbose=train_cfg["verbose"],
    )
    if checkpoint is not None:
        return _fit_result(checkpoint.record, train_cfg, stopper)
    return _fit_result({key: [float(v) for v in values] for key, values in history.history.items()},
                       train_cfg, stopper)


def _json_class_weight(weights):
    return None if weights is None else {str(k): float(v) for k, v in sorted(weights.items())}


def _fit_result(record, train_cfg, stopper):
    """``(history, epochs run, best epoch)`` of a fit from its per-epoch logs."""
    epochs_run = len(next(iter(record.values()))) if record else 0
    best_epoch = epochs_run
    if stopper is not None and train_cfg["monitor"] in record:
        # restore_best_weights keeps this epoch's weights; the warm-up epochs are never chosen.
        skip = min(train_cfg["start_from_epoch"], len(record[train_cfg["monitor"]]) - 1)
        values = record[train_cfg["monitor"]][skip:]
        best_epoch = skip + int(np.argmax(values) if stopper.mode == "max" else np.argmin(values)) + 1
    return record, epochs_run, best_epoch


def multi_worker():
    """Whether the current strategy spans several worker processes."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return len(strategy.cluster_resolver.cluster_spec().as_dict().get("worker", [])) > 1


def fit_multi_worker(model, train_cfg, train_data, class_weight, shuffle_seed):
    """Train with :func:`keras_ser.distribute.fit` for ``train.epochs`` epochs.

    ``Model.fit`` of Keras 3.15 fails with two or more workers (see
    :mod:`keras_ser.distribute`), so multi-worker runs use that loop instead. It has
    no callbacks: no validation early stopping, the last epoch's weights are kept.
    """
    if train_cfg["loss"] == "ccc":
        raise ParameterError("train.loss='ccc' is a statistic of the whole batch and cannot be split "
                             "across workers; use --strategy default or mirrored")
    logging.getLogger("keras_ser").warning(
        "multi_worker: training %d epochs with keras_ser.distribute.fit "
        "(Keras fit fails with several workers); no validation early stopping",
        train_cfg["epochs"],
    )
    dataset = array_dataset(*train_data, train_cfg["batch_size"], shuffle_seed=shuffle_seed)
    history = distribute.fit(model, dataset, strategy=tf.distribute.get_strategy(), loss=make_loss(train_cfg),
                             epochs=train_cfg["epochs"], class_weight=class_weight,
                             progress=train_cfg["verbose"] > 0)
    return history, train_cfg["epochs"], train_cfg["epochs"]
