"""benchmarks/alexnet_initializers.py: Caffe's fillers start at a uniform guess, the standard normal explodes."""

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
from alexnet_initializers import run  # noqa: E402

TINY = ["frontend.image_size=67", "stage1.model_options.image_size=67", "stage1.model_options.fc_units=[16, 16]",
        "stage1.model_options.filters=[8, 8, 8, 8, 8]"]


def test_the_literal_standard_normal_cannot_train_where_caffes_fillers_start_at_chance(emodb_dir):
    caffe = run("caffe", 6, steps=2, batch_size=32, overrides=TINY)
    normal = run("standard_normal", 6, steps=2, batch_size=32, overrides=TINY)
    assert caffe["segments"] == normal["segments"] == 32 and len(caffe["losses"]) == 2
    # Kernels of std 0.01 give near-equal class scores: the loss of a uniform guess.
    assert abs(caffe["losses"][0] - math.log(caffe["classes"])) < 0.05, caffe
    assert normal["fc7_mean_abs"] > 1e3 * caffe["fc7_mean_abs"]
    assert normal["losses"][0] > 100 * caffe["losses"][0], normal
