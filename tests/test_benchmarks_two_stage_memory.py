"""benchmarks/two_stage_memory.py compares like with like: the same training steps on either held form."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from two_stage_memory import run  # noqa: E402

TINY = ["frontend.image_size=67", "stage1.model_options.image_size=67", "stage1.model_options.fc_units=[8, 8]",
        "stage1.model_options.filters=[4, 4, 4, 4, 4]"]


def test_both_ways_take_the_same_steps_and_small_segments_hold_less(emodb_dir):
    resized = run("resized", 4, [0.9, 1.0], steps=2, batch_size=16, overrides=TINY)
    small = run("small", 4, [0.9, 1.0], steps=2, batch_size=16, overrides=TINY)
    assert resized["segments"] == small["segments"] == 4 * 2 * 8
    assert resized["held_bytes"] / small["held_bytes"] == pytest.approx(67 ** 2 / 64 ** 2)
    assert len(small["losses"]) == 3
    assert small["losses"] == pytest.approx(resized["losses"], rel=1e-5)
