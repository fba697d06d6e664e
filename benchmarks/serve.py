"""Real-time factor of an exported SavedModel (``keras_ser.export``) on this CPU.

RTF = compute seconds / seconds of audio served; below 1 is faster than real time.
The ``serving_default`` signature of the loaded SavedModel (front end, network and
pooling, as TF Serving would run it) is called on random waveforms at batch 1 and
batch 32 for each duration in ``--durations`` (2 s is EMO-DB's utterance length);
the median of ``--repeats`` timed calls after one warm-up call is reported.

Without ``--model`` an *untrained* MODEL DIR of ``--recipe`` is built (its registry
model, FrontEnd and EMO-DB's 7 labels): the cost of serving does not depend on the
weights. Note that fixed-length front ends (zhao2019: 500 frames; zhang2021_dcnn: 3 s) crop or pad
every input to their length, so their compute per request does not grow with the
duration.

Usage::

    python benchmarks/serve.py [--model RUN_OR_MODEL_DIR | --recipe NAME]
                               [--durations 2,5] [--batches 1,32] [--repeats 3]
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EMODB_LABELS = ["anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness"]


def _untrained_model_dir(recipe_name, directory):
    from keras_ser.experiments.neural import cached_frontend
    from keras_ser.experiments.run_dir import write_model_dir
    from keras_ser.models import build
    from keras_ser.recipe import load_recipe

    recipe = load_recipe(recipe_name)
    if recipe["experiment"]["kind"] != "neural":
        raise SystemExit(f"--recipe {recipe_name}: only single-network ('neural') recipes can be "
                         f"built untrained here; export a trained run and pass --model")
    # Per-fold (speaker / global) statistics do not exist before training; their affine map
    # costs next to nothing, so the front end is timed without it.
    frontend = cached_frontend(recipe["frontend"])
    options = {k: v for k, v in recipe["model"].items() if k != "name"}
    model = build(recipe["model"]["name"], num_classes=len(EMODB_LABELS), **options)
    model_dir = pathlib.Path(directory) / "model"
    write_model_dir(model_dir, model, frontend, EMODB_LABELS,
                    {"recipe": recipe_name, "fold": None, "pooling": recipe["experiment"]["pooling"]})
    return model_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="RUN_DIR or MODEL DIR to export and time")
    source.add_argument("--recipe", default="zhao2019_attention_blstm_fcn",
                        help="recipe whose untrained model is timed (default: %(default)s)")
    parser.add_argument("--durations", default="2,5", help="seconds per input, comma-separated")
    parser.add_argument("--batches", default="1,32", help="batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per setting")
    args = parser.parse_args(argv)
    durations = [float(v) for v in args.durations.split(",")]
    batches = [int(v) for v in args.batches.split(",")]
    if args.repeats < 1 or min(durations) <= 0 or min(batches) < 1:
        parser.error("--repeats, --durations and --batches must be positive")

    import numpy as np
    import tensorflow as tf

    from keras_ser.export import export

    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or _untrained_model_dir(args.recipe, tmp)
        predictor = export(source, pathlib.Path(tmp) / "saved")
        serve = tf.saved_model.load(str(pathlib.Path(tmp) / "saved")).signatures["serving_default"]
        print(predictor.reason if args.model else f"untrained {args.recipe} ({predictor.model_dir})")
        print(f"sample rate {predictor.sample_rate} Hz, pooling {predictor.pooling}, "
              f"CPU threads {os.cpu_count()}, median of {args.repeats} calls")
        print(f"{'batch':>5s} {'seconds':>8s} {'call s':>9s} {'RTF':>9s} {'audio s / s':>12s}")
        rng = np.random.default_rng(0)
        results = []
        for batch in batches:
            for duration in durations:
                samples = int(round(duration * predictor.sample_rate))
                waveform = tf.constant(0.1 * rng.standard_normal((batch, samples)), tf.float32)
                serve(waveform=waveform)
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    serve(waveform=waveform)["probabilities"].numpy()
                    times.append(time.perf_counter() - start)
                call = statistics.median(times)
                rtf = call / (batch * duration)
                results.append({"batch": batch, "duration_s": duration, "call_s": call, "rtf": rtf})
                print(f"{batch:5d} {duration:8.1f} {call:9.4f} {rtf:9.5f} {1 / rtf:12.1f}", flush=True)
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
