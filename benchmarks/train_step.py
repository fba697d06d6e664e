"""Training-step cost of every paper's main model, in float32 and mixed bfloat16.

For each case (a recipe, its stage, the paper's batch size and input) this prints, in one
table, and writes as JSON (``--json``):

* ms per training step in float32 and in mixed bfloat16 (``keras_ser.experiments.precision``);
* the model's FLOPs per training step (:mod:`flop_count`: counted per layer from its
  shapes, three times the forward pass, and checked against the TensorFlow profiler in
  ``tests/test_benchmarks_flops.py``) and the achieved GFLOP/s;
* the machine's own ceiling, measured in the same run: a 2048 x 2048 matmul in float32
  and in bfloat16, and each model's fraction of it;
* peak resident memory (each model runs in its own subprocess, ``ru_maxrss``);
* the issue's target for the step time where one was set.

``--profile DIR`` also records a TensorFlow profiler trace of two steps per model and
precision under ``DIR/<case>_<precision>`` (open it with TensorBoard's profile plugin) and,
when ``xprof`` is installed (``pip install xprof``), prints the op types that took most
of the step's time.

Inputs are random arrays of the shape the recipe's front end gives for a 2-s utterance
(EMO-DB's length) or the case's ``frontend.num_frames``; one segment per sample for
segment-level models; one utterance's fc7 sequence for the second stage of
zhang2021_dcnn. The first two steps (tracing) are not timed.

Usage::

    python benchmarks/train_step.py [--steps 5] [--cases 'zhao2019*,alexnet*'] [--json out.json]
"""

import argparse
import fnmatch
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

NUM_CLASSES = 7
UTTERANCE_SECONDS = 2.0
WARMUP_STEPS = 2
PRECISIONS = ("float32", "mixed_bfloat16")

#: (case, recipe, stage, recipe overrides, target seconds per step or None)
CASES = (
    ("zhao2019_201", "zhao2019_attention_blstm_fcn", "", ["frontend.num_frames=201"], 0.8),
    ("zhao2019_500", "zhao2019_attention_blstm_fcn", "", [], 2.0),
    ("zhao2018", "zhao2018_attention_blstm_fcn", "", [], None),
    ("multicnn_1d", "zhang2021_multicnn_1d", "", [], None),
    # Random weights: speed does not depend on them, and the ImageNet file may be absent.
    ("alexnet_2d", "zhang2021_multicnn_2d", "", ["model.weights=none"], 1.2),
    ("multicnn_3d", "zhang2021_multicnn_3d", "", [], None),
    ("dcnn_stage1", "zhang2021_dcnn_blstmwa", "stage1", ["stage1.model_options.weights=none"], 5.0),
    ("dcnn_stage2", "zhang2021_dcnn_blstmwa", "stage2", ["stage1.model_options.weights=none"], None),
    ("tzirakis2021", "tzirakis2021_semantic", "", [], 1.5),
)


def _stages(recipe):
    kind = recipe["experiment"]["kind"]
    options = {k: v for k, v in recipe["model"].items() if k != "name"}
    if kind == "neural":
        return {"": (recipe["model"]["name"], options, recipe["train"])}
    if kind == "two_stage":
        return {"stage1": (recipe["stage1"]["model"], recipe["stage1"]["model_options"], recipe["stage1"]),
                "stage2": (recipe["model"]["name"], options, recipe["train"])}
    return {}


def _input_shapes(model, utterance_features, segmented):
    """Each model input's shape for one training sample (None dims filled from the front end).

    A model input of the rank of one utterance's front-end output takes its shape; one of
    the rank of a single segment (segment-level training, or tzirakis2021's sequences) takes
    the segment's shape; any other input is a sequence over the utterance's segments
    (zhang2021_dcnn stage 2: fc7 per segment) and gets the segment count.
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


def matmul_ceiling(dtype, size=2048, repeats=10):
    """GFLOP/s of a ``size x size`` matmul in ``dtype`` (the machine's ceiling for dense math)."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal((size, size), (0, 0)), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), (0, 1)), dtype)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    product(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        product(a, b).numpy()
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


def top_op_types(trace_dir, count=8):
    """``[(op type, share of the traced self time)]`` from a profiler trace, via xprof."""
    import glob

    from xprof.convert import raw_to_tool_data

    paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    data, _ = raw_to_tool_data.xspace_to_tool_data(paths, "framework_op_stats", {})
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    columns = [c["id"] for c in table["cols"]]
    kind, self_time = columns.index("type"), columns.index("total_self_time")
    totals = {}
    for row in table["rows"]:
        cells = [c.get("v") for c in row["c"]]
        if cells[kind] != "IDLE":
            totals[cells[kind]] = totals.get(cells[kind], 0.0) + cells[self_time]
    whole = sum(totals.values()) or 1.0
    return [(name, t / whole) for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[:count]]


def prepare(case, precision):
    """The case's compiled model and a random batch of its inputs and labels; and the step's FLOPs.

    Returns
    -------
    model, x, y, info
        ``info`` has the recipe (and stage), model name, batch, input shapes, parameter count
        and FLOPs per training step.
    """
    import keras
    import numpy as np

    from flop_count import training_flops
    from keras_ser.experiments.neural import cached_frontend, model_kwargs
    from keras_ser.experiments.precision import build_in_precision
    from keras_ser.experiments.training import make_loss, make_optimizer
    from keras_ser.models import build
    from keras_ser.recipe import load_recipe

    _, recipe_name, stage_name, overrides, _ = next(c for c in CASES if c[0] == case)
    recipe = load_recipe(recipe_name, overrides)
    model_name, options, train = _stages(recipe)[stage_name]
    keras.utils.set_random_seed(0)
    # Per-fold (speaker / global) statistics do not exist before training; their affine map
    # costs next to nothing, so the front end is used without it.
    frontend = cached_frontend(recipe["frontend"])
    rng = np.random.default_rng(0)
    wave = 0.1 * rng.standard_normal((1, int(UTTERANCE_SECONDS * frontend.sample_rate))).astype("float32")
    features = np.asarray(frontend(wave))[0]
    segmented = recipe["experiment"]["pooling"] == "mean_segments" or stage_name == "stage1"
    regression = train["loss"] == "ccc"
    # Regression models (tzirakis2021) take num_outputs, not num_classes.
    if stage_name == "":
        # As the runner does: the front end's num_frames reaches the model (frontend.num_frames=201).
        options = model_kwargs(recipe["model"], frontend)
    model = build_in_precision(
        lambda: build(model_name, num_classes=None if regression else NUM_CLASSES, **options), precision)
    batch = train["batch_size"]
    x = [rng.standard_normal([batch] + shape).astype("float32")
         for shape in _input_shapes(model, features, segmented)]
    if regression:
        # Sequence outputs (one prediction per frame) follow the input's time axis.
        shape = [x[0].shape[1] if d is None else d for d in model.output_shape[1:]]
        y = rng.standard_normal([batch] + shape).astype("float32")
    else:
        y = rng.integers(0, NUM_CLASSES, batch)
    flops = training_flops(model, [part.shape for part in x])
    model.compile(optimizer=make_optimizer(train), loss=make_loss(train), jit_compile=train["jit_compile"])
    info = {
        "case": case,
        "recipe": recipe_name + (f" [{stage_name}]" if stage_name else ""),
        "model": model_name,
        "precision": precision,
        "batch": batch,
        "input": " + ".join("x".join(str(d) for d in part.shape[1:]) for part in x),
        "params": int(model.count_params()),
        "gflop_per_step": flops / 1e9,
    }
    return model, x[0] if len(x) == 1 else x, y, info


def _measure(case, precision, steps, profile_dir=None):
    model, x, y, info = prepare(case, precision)
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    seconds = (time.perf_counter() - start) / steps
    top_ops = None
    if profile_dir:
        import tensorflow as tf

        trace_dir = os.path.join(profile_dir, f"{case}_{precision}")
        tf.profiler.experimental.start(trace_dir)
        for _ in range(2):
            model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
        try:
            top_ops = top_op_types(trace_dir)
        except ImportError:
            top_ops = None
    return dict(
        info,
        ms_per_step=1000.0 * seconds,
        gflops=info["gflop_per_step"] / seconds,
        # ru_maxrss is in KiB on Linux.
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        top_ops=top_ops,
    )


def _worker(args):
    if args.worker[0] == "ceiling":
        print(json.dumps({dtype: matmul_ceiling(dtype) for dtype in ("float32", "bfloat16")}))
    else:
        print(json.dumps(_measure(args.worker[0], args.worker[1], args.steps, args.profile)))


def _run_worker(steps, profile, *worker):
    command = [sys.executable, os.path.abspath(__file__), "--steps", str(steps), "--worker", *worker]
    if profile:
        command += ["--profile", profile]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and precision (default 5)")
    parser.add_argument("--cases", default="*", help=f"comma-separated patterns of case names: "
                                                     f"{', '.join(c[0] for c in CASES)}")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated (default both)")
    parser.add_argument("--json", help="also write the table as JSON to this path")
    parser.add_argument("--profile", help="write a profiler trace per model and precision under this folder")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.worker:
        _worker(args)
        return 0
    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
    cases = [c for c in CASES if any(fnmatch.fnmatch(c[0], p) for p in patterns)]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not cases:
        parser.error(f"no case matches {args.cases!r}")
    if any(p not in PRECISIONS for p in precisions):
        parser.error(f"--precisions takes {PRECISIONS}")

    ceiling = _run_worker(args.steps, None, "ceiling")
    print(f"training step, {args.steps} timed steps after {WARMUP_STEPS} warm-up, {os.cpu_count()} CPU threads; "
          f"matmul 2048^2 ceiling: {ceiling['float32']:.0f} GFLOP/s float32, {ceiling['bfloat16']:.0f} bfloat16")
    header = (f"{'case':14s} {'model':30s} {'batch':>5s} {'input':>18s} {'GFLOP':>7s} {'precision':>15s} "
              f"{'ms/step':>8s} {'target':>7s} {'GFLOP/s':>8s} {'% ceil':>6s} {'peak MiB':>8s}")
    print(header)
    rows = []
    for case, _, _, _, target in cases:
        for precision in precisions:
            r = _run_worker(args.steps, args.profile, case, precision)
            if "error" in r:
                print(f"{case:14s} {precision:>15s} FAILED: {r['error']}", flush=True)
                rows.append({"case": case, "precision": precision, **r})
                continue
            key = "bfloat16" if precision == "mixed_bfloat16" else "float32"
            r["ceiling_fraction"] = r["gflops"] / ceiling[key]
            r["target_ms"] = None if target is None else 1000.0 * target
            rows.append(r)
            target_text = "-" if target is None else f"{1000 * target:.0f}"
            print(f"{case:14s} {r['model'][:30]:30s} {r['batch']:5d} {r['input'][:18]:>18s} "
                  f"{r['gflop_per_step']:7.1f} {precision:>15s} {r['ms_per_step']:8.0f} {target_text:>7s} "
                  f"{r['gflops']:8.1f} {100 * r['ceiling_fraction']:5.1f}% {r['peak_rss_mib']:8.0f}", flush=True)
            if r["top_ops"]:
                print(" " * 15 + "time by op type: " + ", ".join(f"{n} {100 * f:.0f}%" for n, f in r["top_ops"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"steps": args.steps, "cpu_threads": os.cpu_count(), "matmul_ceiling_gflops": ceiling,
                       "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
