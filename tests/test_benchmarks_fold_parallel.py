"""benchmarks/fold_parallel.py times what --jobs runs: pinned worker processes beside one on every core."""

import os
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from fold_parallel import compare  # noqa: E402


def test_each_layout_runs_on_the_cores_it_names():
    cores = sorted(os.sched_getaffinity(0))
    result = compare("zhao2018", 2, steps=1)
    assert [c for c, _ in result["one"]] == [cores]
    # Two processes, on disjoint groups that together are every core.
    groups = sorted(c for c, _ in result["parallel"])
    assert len(groups) == 2 and sorted(sum(groups, [])) == cores
    times = [ms for _, ms in result["one"] + result["parallel"]]
    assert all(ms > 0 for ms in times)
    assert result["speedup"] == pytest.approx(sum(1 / ms for ms in times[1:]) * times[0])
