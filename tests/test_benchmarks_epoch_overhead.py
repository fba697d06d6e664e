"""benchmarks/epoch_overhead.py compares like with like: the same batches, with and without autotuning."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from epoch_overhead import run  # noqa: E402


def test_both_pipelines_train_on_the_same_batches():
    with_autotuning = run("zhang2021_multicnn_1d", True, epochs=2, steps=2)
    without = run("zhang2021_multicnn_1d", False, epochs=2, steps=2)
    assert len(with_autotuning) == len(without) == 2
    assert [loss for _, _, loss in with_autotuning] == [loss for _, _, loss in without]
    # Each epoch's time to its first batch is part of its wall time.
    assert all(0 <= gap <= wall for wall, gap, _ in with_autotuning + without)
