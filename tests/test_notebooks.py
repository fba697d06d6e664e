"""Every notebook runs top to bottom (in smoke mode) and computes what it says."""

import json
import pathlib

import matplotlib
import numpy as np
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(path, monkeypatch):
    """Execute the code cells of ``path`` in order; return the namespace."""
    matplotlib.use("Agg")
    monkeypatch.setenv("KERAS_SER_SMOKE", "1")
    monkeypatch.chdir(path.parent)
    namespace = {"__name__": "__main__"}
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}[cell {index}]", "exec"), namespace)
    return namespace


def check_attention_blstm_fcn(ns):
    assert float(np.abs(ns["raw"] - ns["reference"]).max()) <= 0.01
    assert ns["x_train"].shape[1:] == (201, 40)
    # the test speaker is held out of training
    assert not {u.speaker for u in ns["fold"].test} & {u.speaker for u in ns["fold"].train}
    assert 0.0 <= ns["scores"]["ua"] <= 1.0
    assert ns["confusion"].sum() == len(ns["y_test"])


def check_features_svm(ns):
    assert ns["x_egemaps"].shape == (len(ns["paths"]), 88)
    # eGeMAPS + SVM is far above chance (1/7) even on four speakers
    assert ns["egemaps"]["ua"] > 0.35
    assert set(ns["egemaps_folds"]) == {f.name for f in ns["folds"]}
    assert np.isfinite(ns["x_deep"]).all()


def check_serving(ns):
    assert "waveform" in ns["signature"]
    assert ns["difference"] <= 1e-5
    np.testing.assert_allclose(ns["probabilities"].sum(axis=1), 1.0, atol=1e-5)


CHECKS = {
    "01_attention_blstm_fcn_emodb.ipynb": check_attention_blstm_fcn,
    "02_features_svm_emodb.ipynb": check_features_svm,
    "03_train_predict_export.ipynb": check_serving,
}


def test_every_notebook_has_a_check():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_top_to_bottom(name, monkeypatch, emodb_dir):
    CHECKS[name](run_notebook(NOTEBOOKS / name, monkeypatch))
