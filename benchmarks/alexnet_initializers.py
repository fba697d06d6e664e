"""zhang2021_dcnn's stage 1 from each random start: can it train?

zhang2021_dcnn's Table 4 trains its network "without pre-training" from parameters
"randomly initialized with a standard normal distribution" (Sec. 3.3 (4)). This script
builds the recipe's AlexNet (random weights) once per initializer of
:func:`keras_ser.models.backbones.alexnet.alexnet_initializers` (Keras' defaults, Caffe's
``bvlc_alexnet`` fillers, the standard normal), feeds it the first batch of real EMO-DB
segment images (the recipe's front end and batch), and prints the mean absolute fc7
activation and the losses of the first training steps (the recipe's optimiser), beside
ln(classes), the loss of a uniform guess.

Usage::

    python benchmarks/alexnet_initializers.py [--utterances 40] [--steps 3]
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(initializer, utterances, steps, batch_size=128, overrides=()):
    """Train the recipe's stage-1 AlexNet from ``initializer`` for ``steps`` steps on one batch.

    Parameters
    ----------
    initializer : {"keras", "caffe", "standard_normal"}
    utterances : int
        The first this many EMO-DB utterances (by id) give the segments.
    steps : int
        Training steps on the first batch of their segments.
    batch_size : int
        Stage 1's batch (the recipe's 128).
    overrides : sequence of str
        Recipe overrides after ``weights=none`` and the initializer (tests shrink the network).

    Returns
    -------
    dict
        ``classes``, ``segments`` (in the batch), ``fc7_mean_abs`` (before training) and
        ``losses`` (one per step, each before its update).
    """
    import keras
    import numpy as np

    from keras_ser.data import load_corpus
    from keras_ser.experiments.neural import FeatureStore, cached_frontend
    from keras_ser.experiments.training import augmented, flatten_segments, label_index, make_optimizer
    from keras_ser.models import build
    from keras_ser.recipe import load_recipe

    recipe = load_recipe("zhang2021_dcnn_blstmwa", ["stage1.model_options.weights=none",
                                                    f"stage1.model_options.initializer={initializer}",
                                                    *overrides])
    corpus = load_corpus("emodb")[:utterances]
    labels = sorted({u.label for u in corpus})
    store = FeatureStore(cached_frontend(recipe["frontend"]))
    features, owners = augmented(store, corpus, [1.0])
    x, y, _ = flatten_segments(features, label_index(owners, labels))
    x, y = x[:batch_size], y[:batch_size]
    keras.utils.set_random_seed(0)
    model = build("zhang2021_dcnn", num_classes=len(labels), **recipe["stage1"]["model_options"])
    fc7 = keras.Model(model.input, model.get_layer("fc7").output)(x, training=False)
    model.compile(optimizer=make_optimizer(recipe["stage1"]), loss="sparse_categorical_crossentropy")
    losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    return {"classes": len(labels), "segments": int(len(x)),
            "fc7_mean_abs": float(np.mean(np.abs(np.asarray(fc7)))), "losses": losses}


def main(argv=None):
    from keras_ser.models.backbones.alexnet import INITIALIZERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=40, help="EMO-DB utterances (default 40 of 535)")
    parser.add_argument("--steps", type=int, default=3, help="training steps (default 3)")
    args = parser.parse_args(argv)
    if args.utterances < 1 or args.steps < 1:
        parser.error("--utterances and --steps must be >= 1")
    rows = [(name, run(name, args.utterances, args.steps)) for name in INITIALIZERS]
    first = rows[0][1]
    print(f"zhang2021_dcnn stage 1, AlexNet (random weights): the first batch ({first['segments']} segments) "
          f"of {args.utterances} EMO-DB utterances, {first['classes']} classes, ln(classes) = "
          f"{math.log(first['classes']):.3f}; losses of the first {args.steps} steps")
    print(f"{'initializer':16s} {'fc7 mean |x|':>13s}  losses")
    for name, result in rows:
        print(f"{name:16s} {result['fc7_mean_abs']:13.4g}  {' '.join(f'{v:.4g}' for v in result['losses'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
