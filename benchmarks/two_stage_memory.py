"""Memory of zhang2021_dcnn's stage 1: segments held as 227 x 227 images against 64 x 64 ones.

Stage 1 (:func:`keras_ser.experiments.two_stage.run_two_stage_fold`) holds every training
segment of the corpus, at every speed factor, for the whole fold. This script prepares a
fold's stage-1 training set from real EMO-DB utterances and trains the recipe's AlexNet
(random weights) for a few steps, each way in a fresh process:

* ``resized``: the front end's output, 227 x 227 x 3 images, fed to the DCNN (how stage 1
  held its data before);
* ``small``: the front end's output before its image resize (64 x 64 x 3,
  :meth:`keras_ser.frontend.FrontEnd.split_resize`), resized per batch inside the model
  (:func:`~keras_ser.experiments.training.with_input_resize`; how it holds them now).

It prints, for each, the bytes of the segments held, the process's peak resident memory
(``ru_maxrss``), the ms per training step after one warm-up step, and the losses of the
steps, which must agree: the batches, the weights and the dropout masks are the same.

Usage::

    python benchmarks/two_stage_memory.py [--utterances 200] [--factors 1.0] [--steps 3]

``--factors 0.8,0.9,1.0,1.1,1.2`` is the speed perturbation of the zhang2021_dcnn_blstmwa
recipe (five copies of every segment); the ``resized`` way of it needs more memory than this
24 GiB machine has for the whole corpus.
"""

import argparse
import multiprocessing
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WAYS = ("resized", "small")


def run(way, utterances, factors, steps, batch_size=128, overrides=()):
    """Prepare the stage-1 set of ``utterances`` EMO-DB files one ``way`` and train ``steps`` + 1 steps.

    Parameters
    ----------
    way : {"resized", "small"}
    utterances : int
        The first this many utterances of EMO-DB (by id), every one at every factor.
    factors : sequence of float
        Speed factors (zhang2021_dcnn Sec. 3.2).
    steps : int
        Timed training steps, after one warm-up step.
    batch_size : int
        Stage 1's batch (the recipe's 128).
    overrides : sequence of str
        Recipe overrides on top of ``stage1.model_options.weights=none`` (tests shrink the
        network and the image with them); default: the recipe's full AlexNet.

    Returns
    -------
    dict
        ``held_bytes`` (the segments' array), ``segments``, ``peak_rss_bytes``,
        ``ms_per_step`` and ``losses`` (warm-up step first).
    """
    import keras
    import numpy as np

    from keras_ser.data import load_corpus
    from keras_ser.experiments.neural import FeatureStore, cached_frontend
    from keras_ser.experiments.training import (augmented, flatten_segments, label_index, make_optimizer,
                                                with_input_resize)
    from keras_ser.frontend import array_dataset
    from keras_ser.models import build
    from keras_ser.recipe import load_recipe

    if way not in WAYS or steps < 1:
        raise ValueError(f"way must be one of {WAYS} and steps >= 1, got {way!r}, {steps!r}")
    recipe = load_recipe("zhang2021_dcnn_blstmwa", ["stage1.model_options.weights=none", *overrides])
    corpus = load_corpus("emodb")[:utterances]
    labels = sorted({u.label for u in corpus})
    store, resize = FeatureStore(cached_frontend(recipe["frontend"])), None
    if way == "small":
        store, resize = store.split_resize()
    features, owners = augmented(store, corpus, list(factors))
    x, y, _ = flatten_segments(features, label_index(owners, labels))
    keras.utils.set_random_seed(0)
    dcnn = build("zhang2021_dcnn", num_classes=len(labels), **recipe["stage1"]["model_options"])
    model = with_input_resize(dcnn, resize, x.shape[1:])
    model.compile(optimizer=make_optimizer(recipe["stage1"]), loss="sparse_categorical_crossentropy")
    batches = iter(array_dataset(x, y, batch_size, shuffle_seed=0).repeat())
    losses, start = [], None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()
        inputs, targets = next(batches)
        losses.append(float(model.train_on_batch(inputs, targets)))
    return {"held_bytes": int(x.nbytes), "segments": int(len(x)),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "ms_per_step": 1000.0 * (time.perf_counter() - start) / steps, "losses": losses}


def _in_process(queue, *args):
    queue.put(run(*args))


def measure(way, utterances, factors, steps):
    """:func:`run` in a fresh process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_in_process, args=(queue, way, utterances, factors, steps))
    worker.start()
    result = queue.get()
    worker.join()
    if worker.exitcode:
        raise RuntimeError(f"{way}: the worker process failed (exit status {worker.exitcode})")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=200, help="EMO-DB utterances (default 200 of 535)")
    parser.add_argument("--factors", default="1.0", help="comma-separated speed factors (default 1.0)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up (default 3)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"which of {', '.join(WAYS)} (default both)")
    args = parser.parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    ways = [w.strip() for w in args.ways.split(",")]
    if args.utterances < 1 or args.steps < 1 or not set(ways) <= set(WAYS):
        parser.error("--utterances and --steps must be >= 1, --ways a list of " + ", ".join(WAYS))
    gib = 2.0 ** 30
    print(f"zhang2021_dcnn stage 1, AlexNet (random weights), batch 128: {args.utterances} EMO-DB utterances "
          f"x speed factors {factors}; {args.steps} timed steps after one warm-up")
    print(f"{'way':8s} {'segments':>8s} {'held GiB':>9s} {'peak RSS GiB':>13s} {'ms/step':>8s}  losses")
    for way in ways:
        r = measure(way, args.utterances, factors, args.steps)
        print(f"{way:8s} {r['segments']:8d} {r['held_bytes'] / gib:9.2f} {r['peak_rss_bytes'] / gib:13.2f} "
              f"{r['ms_per_step']:8.0f}  {' '.join(f'{v:.5f}' for v in r['losses'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
