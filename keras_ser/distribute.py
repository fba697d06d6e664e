"""tf.distribute strategies by name, for ``--strategy default|mirrored|multi_worker``.

Keras 3 on the TensorFlow backend trains under any ``tf.distribute`` strategy:
build and compile the model inside ``strategy.scope()`` and call ``fit`` as usual.

- ``"default"``: the no-op default strategy (one device, no replication).
- ``"mirrored"``: ``tf.distribute.MirroredStrategy``, synchronous data parallelism
  over the local GPUs (or the CPU when there is none).
- ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy``, synchronous data
  parallelism over several processes/machines. The cluster comes from the
  ``TF_CONFIG`` environment variable (``{"cluster": {"worker": ["host:port", ...]},
  "task": {"type": "worker", "index": i}}``), set differently in each process. Without
  ``TF_CONFIG`` it runs as a single local worker. The global batch is split across
  workers, so keep the paper's batch size as the global batch size.

``keras.Model.fit`` of Keras 3.15 fails under MultiWorkerMirroredStrategy (it reduces
scalar step outputs with ``strategy.reduce("MEAN", v, axis=0)``; keras-team/keras
#20585, tensorflow/tensorflow #72388). :func:`fit` is a small synchronous training loop
built on ``strategy.run`` that works under all three strategies; use it for
``multi_worker``.

Examples
--------
>>> import keras
>>> from keras_ser.distribute import get_strategy
>>> strategy = get_strategy("mirrored")
>>> with strategy.scope():
...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
...     model.compile(optimizer="adam", loss="mse")
"""

import json
import os

from tqdm.auto import tqdm

from keras_ser.errors import ParameterError

STRATEGIES = ("default", "mirrored", "multi_worker")


def _check_tf_config():
    # MultiWorkerMirroredStrategy fails late and cryptically (or hangs waiting for
    # peers) on a malformed TF_CONFIG, so check its shape up front.
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ParameterError(f"TF_CONFIG is not valid JSON ({error}): {raw!r}") from None
    if not isinstance(config, dict):
        raise ParameterError(f"TF_CONFIG must be a JSON object, got {raw!r}")
    workers = config.get("cluster", {}).get("worker")
    task = config.get("task", {})
    if not isinstance(workers, list) or not workers:
        raise ParameterError(f"TF_CONFIG needs a non-empty cluster.worker list, got {raw!r}")
    index = task.get("index")
    if task.get("type") not in ("worker", "chief") or not isinstance(index, int):
        raise ParameterError(
            f'TF_CONFIG needs task {{"type": "worker", "index": <int>}}, got {raw!r}'
        )
    if task["type"] == "worker" and not 0 <= index < len(workers):
        raise ParameterError(
            f"TF_CONFIG task index {index} is outside the {len(workers)} listed workers"
        )


def get_strategy(name="default"):
    """Return the ``tf.distribute.Strategy`` called ``name``.

    Parameters
    ----------
    name : {"default", "mirrored", "multi_worker"}
        See the module docstring. ``"multi_worker"`` reads ``TF_CONFIG``; a malformed
        ``TF_CONFIG`` raises ``ParameterError`` before any connection is attempted.

    Returns
    -------
    tf.distribute.Strategy

    Raises
    ------
    ParameterError
        For an unknown ``name`` or a malformed ``TF_CONFIG``.

    Examples
    --------
    >>> get_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ParameterError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    _check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _per_example_loss(loss):
    import keras

    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError:
            raise ParameterError(f"unknown keras loss {loss!r}") from None
    if isinstance(loss, keras.losses.Loss):
        return type(loss).from_config(dict(loss.get_config(), reduction=None))
    if callable(loss):
        # A Keras loss function fn(y_true, y_pred) already returns one loss per example.
        return loss
    raise ParameterError(f"loss must be a keras loss name, keras.losses.Loss or function, got {loss!r}")


def fit(model, dataset, *, strategy, loss, epochs=1, steps_per_epoch=None, class_weight=None,
        progress=True):
    """Train ``model`` on ``dataset`` with ``strategy`` by a synchronous data-parallel loop.

    Each step runs the forward and backward pass on every replica's share of the
    global batch; the per-example losses are averaged over the *global* batch
    (``tf.nn.compute_average_loss``) and the optimizer all-reduces (sums) the replica
    gradients, so one step equals one step of single-device training on the global
    batch, as in ``Model.fit`` with ``class_weight``.

    Parameters
    ----------
    model : keras.Model
        Built and compiled (for its optimizer) inside ``strategy.scope()``.
    dataset : tf.data.Dataset
        Batches ``(inputs, labels)`` of the global batch size. Under
        ``multi_worker`` it is sharded across workers by ``tf.data``'s auto-shard policy
        unless its options say otherwise.
    strategy : tf.distribute.Strategy
        From :func:`get_strategy`.
    loss : str, keras.losses.Loss or callable
        A Keras loss (name, object, or function returning one loss per example);
        the reduction of a ``Loss`` object is replaced by per-example losses.
    epochs : int
    steps_per_epoch : int, optional
        Steps per epoch; by default one pass over ``dataset``.
    class_weight : dict[int, float], optional
        Per-class loss weights (e.g. zhao2019 eq. 11), applied to each example's loss.
    progress : bool
        Show a tqdm bar per epoch.

    Returns
    -------
    dict
        ``{"loss": [mean training loss of each epoch]}``.

    Examples
    --------
    >>> import keras, numpy as np, tensorflow as tf
    >>> strategy = get_strategy("default")
    >>> with strategy.scope():
    ...     model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    ...     model.compile(optimizer="sgd")
    >>> dataset = tf.data.Dataset.from_tensor_slices(
    ...     (np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"))).batch(4)
    >>> history = fit(model, dataset, strategy=strategy, loss="mse", epochs=2, progress=False)
    >>> len(history["loss"])
    2
    """
    import tensorflow as tf

    if epochs < 1 or (steps_per_epoch is not None and steps_per_epoch < 1):
        raise ParameterError(f"epochs and steps_per_epoch must be >= 1, got {epochs}, "
                             f"{steps_per_epoch}")
    if getattr(model, "optimizer", None) is None:
        raise ParameterError("compile the model (inside strategy.scope()) before fit")
    per_example_loss = _per_example_loss(loss)
    optimizer = model.optimizer
    with strategy.scope():
        optimizer.build(model.trainable_variables)
    weights = None
    if class_weight:
        n_weights = max(class_weight) + 1
        weights = tf.constant([float(class_weight.get(k, 1.0)) for k in range(n_weights)])

    def replica_step(inputs, labels):
        with tf.GradientTape() as tape:
            predictions = model(inputs, training=True)
            losses = per_example_loss(labels, predictions)
            if weights is not None:
                losses = losses * tf.gather(weights, tf.cast(tf.reshape(labels, [-1]), tf.int32))
            total = tf.nn.compute_average_loss(losses)
            if model.losses:
                total += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return total

    @tf.function
    def step(batch):
        per_replica = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    distributed = strategy.experimental_distribute_dataset(dataset)
    history = {"loss": []}
    for epoch in range(epochs):
        total, count = 0.0, 0
        iterator = iter(distributed)
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        pass_count = 0
        while steps_per_epoch is None or count < steps_per_epoch:
            try:
                batch = next(iterator)
            except StopIteration:
                if pass_count == 0:
                    raise ParameterError("the dataset yielded no batch") from None
                if steps_per_epoch is None:
                    break
                # Like Model.fit, a finite dataset is restarted to fill the epoch.
                iterator, pass_count = iter(distributed), 0
                continue
            total += float(step(batch))
            count += 1
            pass_count += 1
            bar.update(1)
        bar.close()
        history["loss"].append(total / count)
    return history
