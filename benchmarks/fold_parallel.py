"""Fold-parallel training (``train --jobs N``): training steps an hour, N folds at once against one.

For each case of ``benchmarks/train_step.py`` (float32, the paper's batch and input) it
measures, in the same run:

* one process on every core this process may use (how ``--jobs 1`` trains a fold);
* N processes at once, each pinned to its group of cores
  (:func:`keras_ser.experiments.parallel.core_groups`) with TensorFlow's thread pools sized
  to it (how ``--jobs N`` trains N folds). They time their steps together: each waits for
  the others at a barrier after its warm-up steps.

and prints the ms per step of each, and the speed-up: the steps per second of the N
processes together over those of the one.

Usage::

    python benchmarks/fold_parallel.py [--jobs 2] [--steps 10] [--cases multicnn_1d,zhao2018]
"""

import argparse
import fnmatch
import multiprocessing
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from train_step import CASES, WARMUP_STEPS  # noqa: E402

DEFAULT_CASES = "multicnn_1d,zhao2018,zhao2019_201"


def _time_steps(case, cores, steps, barrier, queue):
    from keras_ser.experiments.parallel import pin_to_cores
    from train_step import prepare

    pin_to_cores(cores)

    model, x, y, _ = prepare(case, "float32")
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(x, y)
    barrier.wait()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    queue.put((sorted(os.sched_getaffinity(0)), 1000.0 * (time.perf_counter() - start) / steps))


def measure(case, groups, steps):
    """ms per step of each of ``len(groups)`` processes training ``case`` at once, each on its group of cores.

    Returns
    -------
    list of (cores, ms_per_step)
        One per process, in the order they finished.
    """
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(len(groups)), context.Queue()
    workers = [context.Process(target=_time_steps, args=(case, cores, steps, barrier, queue)) for cores in groups]
    for worker in workers:
        worker.start()
    timings = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise RuntimeError(f"{case}: a worker process failed (exit status {worker.exitcode})")
    return timings


def compare(case, jobs, steps):
    """One process on every core against ``jobs`` pinned processes; returns a dict of both and the speed-up."""
    from keras_ser.experiments.parallel import core_groups

    one = measure(case, core_groups(1), steps)
    many = measure(case, core_groups(jobs), steps)
    speedup = sum(1.0 / ms for _, ms in many) / (1.0 / one[0][1])
    return {"case": case, "one": one, "parallel": many, "speedup": speedup}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (default 2)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process (default 10)")
    parser.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated patterns of case names "
                                                               f"(default {DEFAULT_CASES}): "
                                                               f"{', '.join(c[0] for c in CASES)}")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
    cases = [c[0] for c in CASES if any(fnmatch.fnmatch(c[0], p) for p in patterns)]
    if not cases:
        parser.error(f"no case matches {args.cases!r}")
    cores = len(os.sched_getaffinity(0))
    print(f"float32 training steps, {args.steps} timed after {WARMUP_STEPS} warm-up; one process on {cores} "
          f"core(s) against {args.jobs} at once")
    print(f"{'case':14s} {'1 process ms/step':>18s} {f'{args.jobs} processes ms/step':>28s} {'speed-up':>9s}")
    for case in cases:
        result = compare(case, args.jobs, args.steps)
        parallel = ", ".join(f"{ms:.0f} (cores {','.join(map(str, c))})" for c, ms in result["parallel"])
        print(f"{case:14s} {result['one'][0][1]:18.0f} {parallel:>28s} {result['speedup']:8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
