"""Every notebook in notebooks/ runs top to bottom in a Jupyter kernel and computes what it says.

The notebooks run as Jupyter runs them: nbclient starts an IPython kernel whose working
directory is notebooks/, in smoke mode (``KERAS_SER_SMOKE=1``), with the data root given
relative to the repository root, the directory Jupyter was started from (the README's
``KERAS_SER_DATA=../shared/data``). A probe cell appended after the last cell prints, as JSON,
the values each notebook's check needs. The committed copies are checked as files: full-mode
runs with their outputs, cell ids and one parameters cell.
"""

import json
import os
import pathlib
import re

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from sklearn.metrics import accuracy_score, balanced_accuracy_score

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: A committed notebook holds plots and short logs, not progress bars or arrays.
MAX_NOTEBOOK_BYTES = 2_000_000
#: A paper's file number ("000" .. "004") where its key (zhao2019, ...) belongs.
FILE_NUMBER = re.compile(r"(?<![\w.])00[0-4](?![\w.])")


def execute(nb):
    """Run ``nb`` in a fresh ``python3`` kernel started in notebooks/, as Jupyter does."""
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


def probe(nb, expressions, setup=""):
    """Append a cell printing ``expressions`` (name -> Python expression) as JSON, run ``nb``, return them."""
    items = ", ".join(f"{name!r}: {expression}" for name, expression in expressions.items())
    nb.cells.append(nbformat.v4.new_code_cell(f"{setup}\nimport json as _json\nprint(_json.dumps({{{items}}}))"))
    execute(nb)
    printed = "".join(out.get("text", "") for out in nb.cells[-1].outputs
                      if out.output_type == "stream" and out.name == "stdout")
    return json.loads(printed)


# --------------------------------------------------------------------------- what each notebook computes
EVALUATION = {
    "train_speakers": "sorted({u.speaker for u in parts['train']})",
    "test_speakers": "sorted({u.speaker for u in parts['test']})",
    "y_test": "[int(v) for v in y_test]",
    "y_pred": "[int(v) for v in y_pred]",
    "scores": "scores",
    "confusion": "confusion.tolist()",
}


def check_evaluation(values):
    """The fold holds out speaker 03, and UA / WA / F1 and the confusion matrix are those of the predictions."""
    assert values["test_speakers"] == ["03"]
    assert "03" not in values["train_speakers"]
    y_test, y_pred, scores = np.array(values["y_test"]), np.array(values["y_pred"]), values["scores"]
    assert 0.0 <= scores["ua"] <= 1.0 and 0.0 <= scores["macro_f1"] <= 1.0
    assert scores["ua"] == pytest.approx(balanced_accuracy_score(y_test, y_pred))
    assert scores["wa"] == pytest.approx(accuracy_score(y_test, y_pred))
    confusion = np.array(values["confusion"])
    assert confusion.sum() == len(y_test)
    assert np.trace(confusion) == int((y_test == y_pred).sum())


def check_frontend(values):
    """The TensorFlow front end matches librosa: log-mel in dB, deltas relative to their range."""
    assert values["logmel_db"] <= 0.01
    assert values["deltas"] <= 1e-3 * values["delta_range"] + 1e-3


ZHAO2019 = dict(EVALUATION, logmel_db="float(np.abs(raw - reference).max())",
                input_shape="list(x_train.shape[1:])",
                test_band_means="float(np.abs(x_test.mean(axis=(0, 1))).max())")


def check_zhao2019(values):
    assert values["logmel_db"] <= 0.01
    assert values["input_shape"] == [201, 40]
    # per-speaker standardisation: the test speaker's every band has mean 0
    assert values["test_band_means"] <= 1e-3
    check_evaluation(values)


ZHAO2018 = dict(EVALUATION, logmel_db="float(difference[:, :40].max())", deltas="float(difference[:, 40:].max())",
                delta_range="float(np.abs(reference[:, 40:]).max())", input_shape="list(x_train.shape[1:])",
                test_band_means="float(np.abs(x_test.mean(axis=(0, 1))).max())")


def check_zhao2018(values):
    check_frontend(values)
    assert values["input_shape"] == [63, 120]  # 2 s at a 512-sample hop; 40 log-mels, deltas, delta-deltas
    assert values["test_band_means"] <= 1e-3
    check_evaluation(values)


MULTICNN = dict(EVALUATION, logmel_db="float(difference[..., 0].max())", deltas="float(difference[..., 1:].max())",
                delta_range="float(np.abs(reference[..., 1:]).max())", image_shape="list(images.shape)",
                image_range="[float(images.min()), float(images.max())]",
                segment_owners="np.bincount(owner_test).tolist()",
                utterance_scores="utterance_scores.tolist()", segment_scores="segment_scores.tolist()",
                owner_test="owner_test.tolist()")


def check_multicnn(values):
    check_frontend(values)
    assert values["image_shape"] == [3, 227, 227, 3]  # 201 frames: three 64-frame segments
    low, high = values["image_range"]
    assert 0.0 <= low and high <= 255.0 + 1e-3
    assert values["segment_owners"] == [3] * len(values["y_test"])
    # an utterance's scores are the mean of its segments' scores (zhang2021_multicnn Sec. 2.3)
    segments, owner = np.array(values["segment_scores"]), np.array(values["owner_test"])
    expected = np.stack([segments[owner == k].mean(axis=0) for k in range(len(values["y_test"]))])
    np.testing.assert_allclose(values["utterance_scores"], expected, atol=1e-6)
    check_evaluation(values)


DCNN = dict(EVALUATION, logmel_db="float(worst['log-mel'])", deltas="float(worst['deltas'])", delta_range="10.0",
            image_shape="list(images.shape)", test_sequences="list(f_test.shape)",
            fc7_width="int(dcnn.get_layer('fc7').output.shape[-1])", stage1_examples="int(len(keep))",
            train_utterances="len(y_train)")


def check_dcnn(values):
    check_frontend(values)
    assert values["image_shape"] == [8, 227, 227, 3]  # 3 s, 64-frame segments every 32 frames
    assert values["test_sequences"] == [len(values["y_test"]), 8, values["fc7_width"]]
    assert values["stage1_examples"] == 8 * values["train_utterances"] // 2
    check_evaluation(values)


FEATURES_SVM = dict(egemaps_shape="list(x_egemaps.shape)", utterances="len(paths)", egemaps_ua="egemaps['ua']",
                    egemaps_folds="sorted(egemaps_folds)", folds="sorted(f.name for f in folds)",
                    deep_finite="bool(np.isfinite(x_deep).all())")


def check_features_svm(values):
    assert values["egemaps_shape"] == [values["utterances"], 88]
    # eGeMAPS + SVM is far above chance (1/7) even on four speakers
    assert values["egemaps_ua"] > 0.35
    assert values["egemaps_folds"] == values["folds"]
    assert values["deep_finite"]


SERVING = dict(signature="signature", difference="difference", probabilities="probabilities.tolist()")


def check_serving(values):
    assert "waveform" in values["signature"]
    assert values["difference"] <= 1e-5
    np.testing.assert_allclose(np.sum(values["probabilities"], axis=1), 1.0, atol=1e-5)


TZIRAKIS2021 = dict(EVALUATION, timings_ok="timings_ok", zero_where_no_word="zero_where_no_word",
                    retrieval="retrieval", text_vocabulary="summary['word2vec_vocabulary']",
                    fit_speakers="sorted({u.speaker for u in fit_on})",
                    frame_shapes="{k: list(v.shape) for k, v in x_test.items()}", dim="fitted.dim")


def check_tzirakis2021(values):
    assert values["timings_ok"] and values["zero_where_no_word"]
    # Word vectors fitted on training speakers only.
    assert "03" not in values["fit_speakers"] and values["fit_speakers"]
    retrieval = values["retrieval"]
    assert retrieval["chance@1"] == pytest.approx(1 / values["text_vocabulary"])
    assert 0.0 <= retrieval["precision@1"] <= retrieval["precision@5"] <= 1.0
    n_test = len(values["y_test"])
    assert values["frame_shapes"] == {"audio_frames": [n_test, 20, 2205], "word_vectors": [n_test, 20, values["dim"]]}
    check_evaluation(values)


CHECKS = {
    "01_zhao2019_attention_blstm_fcn.ipynb": (ZHAO2019, check_zhao2019),
    "02_features_svm_emodb.ipynb": (FEATURES_SVM, check_features_svm),
    "03_train_predict_export.ipynb": (SERVING, check_serving),
    "04_zhao2018_attention_blstm_fcn.ipynb": (ZHAO2018, check_zhao2018),
    "05_zhang2021_multicnn.ipynb": (MULTICNN, check_multicnn),
    "06_zhang2021_dcnn_blstmwa.ipynb": (DCNN, check_dcnn),
    "07_tzirakis2021_semantic.ipynb": (TZIRAKIS2021, check_tzirakis2021),
}


def test_every_notebook_has_a_check():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CHECKS)


@pytest.fixture
def jupyter_started_in_the_checkout(monkeypatch, emodb_dir):
    """Smoke mode; Jupyter started in the repository root with a relative data root."""
    monkeypatch.setenv("KERAS_SER_SMOKE", "1")
    monkeypatch.setenv("KERAS_SER_DATA", os.path.relpath(emodb_dir.parent, ROOT))
    monkeypatch.setenv("PWD", str(ROOT))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_top_to_bottom_in_a_kernel(name, jupyter_started_in_the_checkout):
    expressions, check = CHECKS[name]
    values = probe(nbformat.read(NOTEBOOKS / name, as_version=4), expressions)
    check(values)


def test_kernel_resolves_a_relative_data_root_against_the_directory_jupyter_started_from(
        tmp_path, monkeypatch, emodb_dir):
    started = tmp_path / "start"
    started.mkdir()
    (tmp_path / "data").symlink_to(emodb_dir.parent, target_is_directory=True)
    monkeypatch.setenv("KERAS_SER_DATA", "../data")
    monkeypatch.setenv("PWD", str(started))
    # Only $PWD can find it: neither the kernel's directory (notebooks/) nor the checkout has ../data.
    assert not (NOTEBOOKS.parent / "data" / "emodb").exists()
    assert not (ROOT.parent / "data" / "emodb").exists()
    values = probe(nbformat.v4.new_notebook(), {
        "cwd": "os.getcwd()", "corpus": "str(paths.corpus_dir('emodb'))", "utterances": "len(data.load_corpus('emodb'))",
    }, setup="import os\nfrom keras_ser import data, paths")
    assert values["cwd"] == str(NOTEBOOKS)
    assert values["corpus"] == str(tmp_path / "data" / "emodb")
    assert values["utterances"] == len(list((emodb_dir / "wav").glob("*.wav")))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_committed_notebook_is_a_full_run_with_outputs(name):
    path = NOTEBOOKS / name
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    parameters = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    # one parameters cell, the first code cell, holding the smoke switch
    assert parameters == code[:1] and "SMOKE = " in parameters[0].source
    # executed top to bottom in one kernel, in full mode, without errors
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert "".join(out.get("text", "") for out in parameters[0].outputs).strip() == "full mode"
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    for cell in code:
        if "plt.show()" in cell.source:
            assert any("image/png" in out.get("data", {}) for out in cell.outputs), cell.source[:80]
    assert not [cell.source for cell in nb.cells if FILE_NUMBER.search(cell.source)]
    printed = ["".join(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
               for cell in code for out in cell.outputs]
    assert not [text for text in printed if FILE_NUMBER.search(text)]
