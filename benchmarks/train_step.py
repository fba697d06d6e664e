"""Training-step cost of every recipe's model at the paper's batch size.

For each neural recipe in ``keras_ser/recipes`` (two-stage recipes give one row per
stage; SVM and fusion recipes have no network of their own and are skipped) this
prints the milliseconds per training step, the training samples per second and the
peak resident memory. Each model runs in its own subprocess so that the peak RSS
(``resource.getrusage``) is that model's alone.

Setup, per recipe: the batch size, optimiser and loss of its ``[train]`` (or
``[stage1]``) table; 7 classes (EMO-DB); inputs of the shape the recipe's FrontEnd
gives for a 2-s utterance at its sample rate (EMO-DB's length) -- one segment per
sample for segment-level models (``pooling = "mean_segments"``, 001), one
utterance's fc7 sequence for the second stage of 002; random values and labels
(the cost of a step does not depend on them). The first two steps (tracing) are
not timed.

Usage::

    python benchmarks/train_step.py [--steps 10] [--models 'zhao2019_*,zhang2021_multicnn_1d']

``--models`` takes comma-separated shell patterns matched against recipe names.
"""

import argparse
import fnmatch
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NUM_CLASSES = 7
UTTERANCE_SECONDS = 2.0
WARMUP_STEPS = 2


def _stages(recipe):
    kind = recipe["experiment"]["kind"]
    if kind == "neural":
        options = {k: v for k, v in recipe["model"].items() if k != "name"}
        return [("", recipe["model"]["name"], options, recipe["train"])]
    if kind == "two_stage":
        options = {k: v for k, v in recipe["model"].items() if k != "name"}
        return [("stage1", recipe["stage1"]["model"], recipe["stage1"]["model_options"], recipe["stage1"]),
                ("stage2", recipe["model"]["name"], options, recipe["train"])]
    return []


def _input_shapes(model, utterance_features, segmented):
    """Each model input's shape for one training sample (None dims filled from the front end).

    A model input of the rank of one utterance's front-end output takes its shape; one of
    the rank of a single segment (segment-level training, or 003's sequences) takes the
    segment's shape; any other input is a sequence over the utterance's segments (002
    stage 2: fc7 per segment) and gets the segment count.
    """
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    utterance = list(utterance_features.shape)
    candidates = [utterance[1:]] if segmented else [utterance, utterance[1:]]
    filled = []
    for shape in shapes:
        wanted = list(shape[1:])
        example = next((c for c in candidates if len(c) == len(wanted)), None)
        if example is None:
            example = [utterance[0]] * len(wanted)
        filled.append([e if w is None else w for w, e in zip(wanted, example)])
    return filled


def _measure(recipe_name, stage_name, steps):
    import keras
    import numpy as np

    from keras_ser.experiments.neural import cached_frontend
    from keras_ser.experiments.training import make_loss, make_optimizer
    from keras_ser.models import build
    from keras_ser.recipe import load_recipe

    recipe = load_recipe(recipe_name)
    stage = next(s for s in _stages(recipe) if s[0] == stage_name)
    _, model_name, options, train = stage
    keras.utils.set_random_seed(0)
    # Per-fold (speaker / global) statistics do not exist before training; their affine map
    # costs next to nothing, so the front end is timed without it.
    frontend = cached_frontend(recipe["frontend"])
    rng = np.random.default_rng(0)
    wave = 0.1 * rng.standard_normal((1, int(UTTERANCE_SECONDS * frontend.sample_rate))).astype("float32")
    features = np.asarray(frontend(wave))[0]
    segmented = recipe["experiment"]["pooling"] == "mean_segments" or stage_name == "stage1"
    regression = train["loss"] == "ccc"
    # Regression models (003) take num_outputs, not num_classes.
    model = build(model_name, num_classes=None if regression else NUM_CLASSES, **options)
    batch = train["batch_size"]
    x = [rng.standard_normal([batch] + shape).astype("float32")
         for shape in _input_shapes(model, features, segmented)]
    if regression:
        # Sequence outputs (003: one prediction per frame) follow the input's time axis.
        shape = [x[0].shape[1] if d is None else d for d in model.output_shape[1:]]
        y = rng.standard_normal([batch] + shape).astype("float32")
    else:
        y = rng.integers(0, NUM_CLASSES, batch)
    model.compile(optimizer=make_optimizer(train), loss=make_loss(train), jit_compile=train["jit_compile"])
    described = " + ".join("x".join(str(d) for d in part.shape[1:]) for part in x)
    x = x[0] if len(x) == 1 else x
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = (time.perf_counter() - start) / steps
    return {
        "recipe": recipe_name + (f" [{stage_name}]" if stage_name else ""),
        "model": model_name,
        "batch": batch,
        "input": described,
        "params": int(model.count_params()),
        "ms_per_step": 1000.0 * seconds,
        "samples_per_s": batch / seconds,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model (default 10)")
    parser.add_argument("--models", default="*", help="comma-separated patterns of recipe names")
    parser.add_argument("--worker", nargs=2, metavar=("RECIPE", "STAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.worker:
        stage = "" if args.worker[1] == "-" else args.worker[1]
        print(json.dumps(_measure(args.worker[0], stage, args.steps)))
        return 0

    from keras_ser.recipe import available_recipes, load_recipe

    patterns = [p.strip() for p in args.models.split(",") if p.strip()]
    names = [n for n in available_recipes() if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not names:
        parser.error(f"no recipe matches {args.models!r}")
    header = (f"{'recipe':42s} {'model':30s} {'batch':>5s} {'input':>16s} {'params':>10s} "
              f"{'ms/step':>9s} {'samples/s':>10s} {'peak RSS MiB':>12s}")
    print(f"training step, {args.steps} timed steps after {WARMUP_STEPS} warm-up, CPU threads: "
          f"{os.cpu_count()}")
    print(header)
    for name in names:
        stages = _stages(load_recipe(name))
        if not stages:
            print(f"{name:42s} (no network of its own: {load_recipe(name)['experiment']['kind']})")
            continue
        for stage_name, _, _, _ in stages:
            command = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps),
                       "--worker", name, stage_name or "-"]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name:42s} FAILED: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{r['recipe']:42s} {r['model']:30s} {r['batch']:5d} {r['input']:>16s} "
                  f"{r['params']:10d} {r['ms_per_step']:9.1f} {r['samples_per_s']:10.1f} "
                  f"{r['peak_rss_mib']:12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
