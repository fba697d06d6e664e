"""Idle time at each epoch's end: :func:`keras_ser.frontend.array_dataset` against tf.data autotuning.

Keras creates a new iterator over the training data every epoch, and one more for the
validation data and for every ``predict``. An autotuned tf.data iterator runs a tuning
thread that sleeps between its rounds, and destroying the iterator waits for that sleep to
end, with the CPU idle. ``array_dataset`` turns autotuning off; this script trains the same
model on the same batches both ways and prints, per epoch, the wall time, the time from the
epoch's start to its first batch (where the last epoch's iterator is destroyed) and the loss
(which must agree: the batches are the same).

The model is a recipe's network (``--recipe``, default ``zhang2021_multicnn_3d``, whose
short epochs on EMO-DB showed the idle time) on random inputs of its input shape, fitted with
Keras' ``validation_data``: one training and one validation iterator per epoch, as
:func:`keras_ser.experiments.training.fit_model` makes (its validation pass is a callback).

Usage::

    python benchmarks/epoch_overhead.py [--recipe zhang2021_multicnn_3d] [--epochs 6] [--steps 10]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


class _EpochClock:
    """Per epoch: wall seconds, and the seconds from its start to its first training batch.

    The second is where the previous epoch's iterator is destroyed and the new one made;
    measured between callbacks, it does not depend on other load on the machine.
    """

    def __init__(self):
        import keras

        clock = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                clock.start, clock.first_batch = time.perf_counter(), None

            def on_train_batch_begin(self, batch, logs=None):
                if clock.first_batch is None:
                    clock.first_batch = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                now = time.perf_counter()
                clock.epochs.append((now - clock.start, clock.first_batch - clock.start, float(logs["loss"])))

        self.epochs = []
        self.callback = Callback()


def run(recipe_name, autotune, epochs, steps, seed=0):
    import keras
    import tensorflow as tf

    import keras_ser.models as models
    from keras_ser.experiments.training import set_seed
    from keras_ser.frontend import array_dataset
    from keras_ser.recipe import load_recipe

    recipe = load_recipe(recipe_name)
    batch = recipe["train"]["batch_size"]
    set_seed(seed)
    model = models.build(recipe["model"]["name"], num_classes=7)
    shape = tuple(model.input_shape[1:])
    if None in shape:
        raise SystemExit(f"{recipe_name}: input shape {shape} has a free axis; choose a recipe with a fixed input")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * batch,) + shape).astype("float32")
    y = rng.integers(0, 7, steps * batch)
    x_val, y_val = x[: 2 * batch], y[: 2 * batch]

    def dataset(inputs, targets, shuffle_seed=None):
        ds = array_dataset(inputs, targets, batch, shuffle_seed=shuffle_seed)
        if autotune:  # the tf.data default array_dataset turns off
            options = tf.data.Options()
            options.autotune.enabled = True
            ds = ds.with_options(options)
        return ds

    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9), loss="sparse_categorical_crossentropy")
    clock = _EpochClock()
    model.fit(dataset(x, y, shuffle_seed=1), validation_data=dataset(x_val, y_val), epochs=epochs, verbose=0,
              shuffle=False, callbacks=[clock.callback])
    return clock.epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="zhang2021_multicnn_3d")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10, help="training steps per epoch")
    args = parser.parse_args(argv)
    print(f"{args.recipe}: {args.epochs} epochs of {args.steps} steps, 2 batches of validation; seconds per "
          f"epoch, and from its start to its first batch (iterators made and destroyed); the first epoch traces")
    print(f"{'data pipeline':34s} {'epoch':>5s} {'wall s':>8s} {'to batch 1 s':>13s} {'loss':>10s}")
    totals = {}
    for label, autotune in (("tf.data autotuning (reference)", True), ("array_dataset (autotuning off)", False)):
        epochs = run(args.recipe, autotune, args.epochs, args.steps)
        for i, (wall, gap, loss) in enumerate(epochs):
            print(f"{label:34s} {i:5d} {wall:8.2f} {gap:13.3f} {loss:10.6f}")
        totals[label] = (sum(wall for wall, _, _ in epochs[1:]), sum(gap for _, gap, _ in epochs[1:]))
    (reference, reference_gap), (ours, our_gap) = totals.values()
    print(f"epochs 2..{args.epochs}: {reference:.1f} s with autotuning ({reference_gap:.2f} s before first batches), "
          f"{ours:.1f} s without ({our_gap:.2f} s)")


if __name__ == "__main__":
    main()
