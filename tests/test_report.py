"""python -m keras_ser.report: the results table and chart of a results/ folder.

Tiny real runs on a manifest of eight EMO-DB files (one anger and one neutral utterance
of four speakers: four leave-one-speaker-out folds): the stand-in network of test_train
and the log-mel statistics + SVM baseline, mirrored with ``train --results``.
"""

import csv
import pathlib
import re
import shutil

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from keras_ser.metrics import accuracy_z_test
from keras_ser.report import main as report_main
from keras_ser.report import PAPERS, paper_key, weights_used, z_tests
from keras_ser.recipe import load_recipe
from keras_ser.train import main as train_main
from test_train import TINY_ARGS

SPEAKERS = {"03": "male", "08": "female", "09": "female", "10": "male"}
CODES = {"W": "anger", "N": "neutral"}
NETWORK = "zhao2019_attention_blstm_fcn"
SVM = "zhao2019_features_egemaps"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, emodb_dir):
    """``results/`` with a complete network run and SVM run, and one with a partial network run."""
    base = tmp_path_factory.mktemp("report")
    rows = ["path,label,speaker,gender"]
    for speaker, gender in SPEAKERS.items():
        for code, label in CODES.items():
            source = sorted((emodb_dir / "wav").glob(f"{speaker}???{code}?.wav"))[0]
            rows.append(f"{source},{label},{speaker},{gender}")
    manifest = base / "corpus.csv"
    manifest.write_text("\n".join(rows) + "\n")
    corpus = ["--corpus", f"manifest:{manifest}", "--no-progress"]
    complete, partial = base / "complete", base / "partial"
    assert train_main(["--recipe", NETWORK, "--out", str(base / "net"), "--results", str(complete)]
                      + corpus + TINY_ARGS) == 0
    assert train_main(["--recipe", SVM, "--out", str(base / "svm"), "--results", str(complete)]
                      + corpus + ["features.name=logmel"]) == 0
    assert train_main(["--recipe", NETWORK, "--out", str(base / "net1"), "--results", str(partial),
                       "--folds", "03"] + corpus + TINY_ARGS) == 0
    return complete, partial


def _predictions(run):
    rows = {}
    for path in sorted((run / "folds").glob("*/predictions.csv")):
        with open(path) as handle:
            rows[path.parent.name] = list(csv.DictReader(handle))
    return rows


def _table_row(markdown, system):
    """The cells of ``system``'s row in a paper's table (13 columns; the z-test tables have 8)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith(f"| {system} |")]
    rows = [cells for cells in rows if len(cells) == 13]
    assert len(rows) == 1, rows
    return rows[0]


def test_complete_runs_are_pooled_and_tested_against_the_svm(runs, capsys):
    complete, _ = runs
    assert report_main([str(complete)]) == 0
    assert "2 run(s), 0 partial" in capsys.readouterr().out
    markdown = (complete / "README.md").read_text()
    network = _table_row(markdown, NETWORK)
    assert network[1] == "Table 5, Attention- Two-layer BLSTM-FCN" and network[3] == "loso"
    assert network[4] == "4 / 4"

    # Pooled UA / WA / F1 and the fold standard deviation, recomputed from the CSVs with scikit-learn.
    folds = _predictions(complete / NETWORK / "manifest_corpus")
    assert len(folds) == 4
    pooled = [r for rows in folds.values() for r in rows]
    truth, predicted = [r["label"] for r in pooled], [r["predicted"] for r in pooled]
    fold_ua = [balanced_accuracy_score([r["label"] for r in rows], [r["predicted"] for r in rows])
               for rows in folds.values()]
    assert network[5] == f"{100 * balanced_accuracy_score(truth, predicted):.1f} ± {100 * np.std(fold_ua):.1f}"
    assert network[6].startswith(f"{100 * accuracy_score(truth, predicted):.1f} ± ")
    assert network[7].startswith(f"{100 * f1_score(truth, predicted, average='macro'):.1f} ± ")
    assert network[9].startswith("WA 68.1, UA 67.0")
    assert network[10] == "n/a" and network[11] == "float32"

    # The z-test of the main system against the SVM baseline, from the two runs' correct counts.
    svm = [r for rows in _predictions(complete / SVM / "manifest_corpus").values() for r in rows]
    z, p = accuracy_z_test(sum(r["label"] == r["predicted"] for r in pooled), len(pooled),
                           sum(r["label"] == r["predicted"] for r in svm), len(svm))
    test_line = next(line for line in markdown.splitlines() if line.startswith(f"| {NETWORK} | {SVM} |"))
    assert "| 4 / 4 | " in test_line and f"| {z:.2f} | {p:.3g}" in test_line
    assert "## zhao2019" in markdown and "## tzirakis2021" in markdown and "No run in results/ yet." in markdown


def test_a_partial_run_is_marked_and_not_pooled_as_complete(runs):
    _, partial = runs
    assert report_main([str(partial), "--quiet"]) == 0
    markdown = (partial / "README.md").read_text()
    row = _table_row(markdown, NETWORK)
    assert row[4] == "partial: 1 of 4 folds"
    rows = _predictions(partial / NETWORK / "manifest_corpus")["speaker_03"]
    ua = balanced_accuracy_score([r["label"] for r in rows], [r["predicted"] for r in rows])
    assert row[5] == f"*[{100 * ua:.1f} ± 0.0]*"


def test_the_chart_is_a_png_with_a_bar_per_row(runs, tmp_path):
    complete, _ = runs
    chart = tmp_path / "chart.png"
    assert report_main([str(complete), "--out", str(tmp_path / "table.md"), "--chart", str(chart), "-q"]) == 0
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(chart)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
    assert "](chart.png)" in (tmp_path / "table.md").read_text()  # linked relative to the table


def test_a_missing_or_broken_results_folder_is_an_error_naming_it(tmp_path, runs, capsys):
    assert report_main([str(tmp_path / "none")]) == 2
    assert f"results folder {tmp_path / 'none'} does not exist" in capsys.readouterr().err
    complete, _ = runs
    broken = tmp_path / "broken"
    shutil.copytree(complete, broken)
    (broken / NETWORK / "manifest_corpus" / "config.json").write_text("{")
    assert report_main([str(broken)]) == 2
    assert "config.json is not valid JSON" in capsys.readouterr().err


def test_paper_and_weights_come_from_the_recipe():
    assert paper_key(load_recipe("zhang2021_dcnn_blstmwa_speed3")) == "zhang2021_dcnn"
    assert paper_key(load_recipe("zhao2019_features_compare")) == "zhao2019"
    recipe = load_recipe("zhao2018_attention_blstm_fcn")
    recipe["recipe"]["name"] = "my_row"
    assert paper_key(recipe) == "zhao2018"  # from "[recipe] paper = '004 ...'"
    recipe = load_recipe("zhang2021_multicnn_2d")
    recipe["model"]["weights"] = "none"
    assert weights_used(recipe) == "random init (no ImageNet weights)"
    recipe["model"]["weights"] = "bvlc_alexnet.npy"
    assert weights_used(recipe) == "bvlc_alexnet.npy"
    del recipe["model"]["weights"]  # a config from before the weights setting: random init then
    assert weights_used(recipe) == "random init (no ImageNet weights)"
    recipe = load_recipe("zhao2019_features_vgg16_fc7")
    recipe["features"]["weights"] = "imagenet"
    assert weights_used(recipe) == "ImageNet"
    recipe = load_recipe("zhang2021_dcnn_blstmwa")
    recipe["stage1"]["model_options"]["weights"] = "none"
    assert weights_used(recipe) == "random init (no ImageNet weights)"
    # Table 4's row starts from Caffe's fillers, and says so.
    assert weights_used(load_recipe("zhang2021_dcnn_blstmwa_no_pretraining")) == (
        "random init, caffe initializer (no ImageNet weights)")
    assert weights_used(load_recipe("zhao2018_attention_blstm_fcn")) == "n/a"


def test_the_paper_row_shown_matches_our_corpus_and_weights():
    from keras_ser.report import _paper_row

    recipe = load_recipe("zhang2021_dcnn_blstmwa")
    recipe["paper"]["reported"] = [
        {"table": "Table 6", "corpus": "IEMOCAP improvised", "weights": "imagenet", "UA": 68.5},
        {"table": "Table 5", "corpus": "EMO-DB, 7 classes", "weights": "imagenet", "UA": 87.86},
        {"table": "Table 4, Without Pre-training", "corpus": "EMO-DB, 7 classes", "weights": "none", "UA": 81.31},
    ]
    recipe["stage1"]["model_options"]["weights"] = "imagenet"
    assert _paper_row(recipe, "emodb")["table"] == "Table 5"
    recipe["stage1"]["model_options"]["weights"] = "none"
    assert _paper_row(recipe, "emodb")["table"] == "Table 4, Without Pre-training"
    # The weights decide before the corpus: no IEMOCAP row without pretraining, so the first such row.
    assert _paper_row(recipe, "iemocap")["table"] == "Table 4, Without Pre-training"


def test_a_variant_run_is_filed_beside_the_recipe_and_reported_as_its_own_row(runs, tmp_path, emodb_dir, capsys):
    _, partial = runs
    results = tmp_path / "results"
    shutil.copytree(partial, results)
    manifest = next(iter((results / NETWORK / "manifest_corpus").glob("config.json")))
    corpus = f"manifest:{_manifest_of(manifest)}"
    variant = ["--recipe", NETWORK, "--out", str(tmp_path / "variant"), "--results", str(results),
               "--folds", "03", "--corpus", corpus, "--no-progress"] + TINY_ARGS + ["train.epochs=1"]
    # Without the variant name, another setting is refused by the recipe's own folder...
    assert train_main(variant) == 2
    assert "recipe.train.epochs: 2 -> 1" in capsys.readouterr().err
    # ...with it, the run goes to <corpus>__<name>.
    assert train_main(variant + ["--results-variant", "one_epoch"]) == 0
    assert (results / NETWORK / "manifest_corpus__one_epoch" / "folds" / "speaker_03" / "metrics.json").is_file()
    assert report_main([str(results), "--quiet"]) == 0
    markdown = (results / "README.md").read_text()
    assert _table_row(markdown, f"{NETWORK} [one_epoch]")[4] == "partial: 1 of 4 folds"
    assert _table_row(markdown, NETWORK)[4] == "partial: 1 of 4 folds"
    assert train_main(variant + ["--results-variant", "a b"]) == 2
    assert "--results-variant 'a b'" in capsys.readouterr().err
    assert train_main(variant[:4] + variant[6:] + ["--results-variant", "x"]) == 2
    assert "give --results too" in capsys.readouterr().err


def _manifest_of(config_path):
    import json

    return json.loads(config_path.read_text())["corpus"].split(":", 1)[1]


def test_a_recorded_table_reference_loses_the_old_file_number(tmp_path):
    # Runs recorded before the paper keys began their table references with the paper's file number.
    committed = pathlib.Path(__file__).resolve().parent.parent / "results" / "zhao2019_features_compare"
    shutil.copytree(committed, tmp_path / "results" / "zhao2019_features_compare")
    config = tmp_path / "results" / "zhao2019_features_compare" / "emodb" / "config.json"
    recorded = config.read_text()
    assert '"table": "Table 7"' in recorded
    config.write_text(recorded.replace('"table": "Table 7"', '"table": "000 Table 7"'))
    assert report_main([str(tmp_path / "results")]) == 0
    row = _table_row((tmp_path / "results" / "README.md").read_text(), "zhao2019_features_compare")
    assert row[1] == "Table 7"


def test_the_committed_results_name_papers_by_key_not_by_file_number():
    # A paper's file number ("000" .. "004") where its key (zhao2019, ...) belongs.
    file_number = re.compile(r"(?<![\w.])00[0-4](?![\w.])")
    results = pathlib.Path(__file__).resolve().parent.parent / "results"
    texts = [path for pattern in ("*.json", "*.md") for path in results.rglob(pattern)]
    assert len(texts) > 20
    assert not [str(path) for path in texts if file_number.search(path.read_text())]


def test_a_regression_run_is_reported_with_its_ccc_per_dimension(tmp_path):
    committed = pathlib.Path(__file__).resolve().parent.parent / "results" / "tzirakis2021_semantic_only_emodb_dimensional"
    shutil.copytree(committed, tmp_path / "results" / committed.name)
    assert report_main([str(tmp_path / "results")]) == 0
    rows = [line for line in (tmp_path / "results" / "README.md").read_text().splitlines()
            if line.startswith(f"| {committed.name} |")]
    assert len(rows) == 1 and "derived from the categories" in rows[0]
    true, predicted = [], []
    for path in sorted((committed / "emodb_dimensional" / "folds").glob("*/predictions.csv")):
        with open(path) as handle:
            for line in csv.DictReader(handle):
                true.append([float(line["true_arousal"]), float(line["true_valence"])])
                predicted.append([float(line["pred_arousal"]), float(line["pred_valence"])])
    true, predicted = np.array(true), np.array(predicted)
    for k, name in enumerate(("arousal", "valence")):
        x, y = true[:, k], predicted[:, k]  # eq. 8 with population moments, written out here
        ccc = 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
        assert f"{name} {ccc:.3f}" in rows[0]


def test_a_main_system_ported_to_the_corpus_is_tested_against_the_svm_not_its_variants_or_a_diagnostic():
    def row(system, kind="neural", correct=300, corpus="emodb"):
        return {"paper": "tzirakis2021", "system": system, "kind": kind, "corpus": corpus, "protocol": "loso",
                "complete": True, "pooled": {"n": 535},
                "fold_correct": {"speaker_03": (correct - 100, 235), "speaker_08": (100, 300)}}

    svm = row("zhao2019_features_egemaps", kind="features_svm", correct=250)
    ported = row("tzirakis2021_semantic_emodb")
    others = [row("tzirakis2021_semantic_concat_emodb"), row("tzirakis2021_semantic_fau", corpus="emodb"),
              # An SVM on a trained network's own layers dissects that network: it is no baseline.
              dict(row("zhang2021_dcnn_fc7_svm [attention]", kind="features_svm"), variant="attention"),
              {k: v for k, v in row("tzirakis2021_semantic_emodb_dimensional").items() if k != "fold_correct"}]
    tests = z_tests([svm, ported, *others], "tzirakis2021")
    assert [(t["main"]["system"], t["baseline"]["system"]) for t in tests] == [
        ("tzirakis2021_semantic_emodb", "zhao2019_features_egemaps")]
    expected = accuracy_z_test(300, 535, 250, 535)
    assert (tests[0]["z"], tests[0]["p"]) == pytest.approx(expected)


def _z_test_line(markdown, main, baseline):
    lines = [line for line in markdown.splitlines() if line.startswith(f"| {main} | {baseline} |")]
    assert len(lines) == 1, lines
    return [cell.strip() for cell in lines[0].strip().strip("|").split("|")]


def test_a_partial_main_system_is_tested_on_the_folds_it_shares_with_the_baseline(runs, tmp_path):
    complete, partial = runs
    results = tmp_path / "results"
    shutil.copytree(partial, results)
    shutil.copytree(complete / SVM, results / SVM)
    assert report_main([str(results), "--quiet"]) == 0
    cells = _z_test_line((results / "README.md").read_text(), NETWORK, SVM)
    assert cells[3] == "1 of 4 (partial): speaker_03"
    # The same speaker's test utterances on both sides, counted from the CSVs.
    ours = _predictions(results / NETWORK / "manifest_corpus")["speaker_03"]
    svm = _predictions(results / SVM / "manifest_corpus")["speaker_03"]
    correct = [sum(r["label"] == r["predicted"] for r in rows) for rows in (ours, svm)]
    z, p = accuracy_z_test(correct[0], len(ours), correct[1], len(svm))
    assert cells[4:7] == [f"{100 * correct[0] / len(ours):.1f}", f"{100 * correct[1] / len(svm):.1f}", f"{z:.2f}"]
    assert cells[7].startswith(f"{p:.3g}")


@pytest.mark.parametrize("drop_fold", [None, "speaker_16"])
def test_a_stand_in_main_system_of_several_runs_a_fold_is_tested_on_its_runs_mean(tmp_path, drop_fold):
    # zhang2021_dcnn's main system has no run; its speed-1 row (variant random_init, ten folds of
    # three runs each, as committed) stands in for it against the complete eGeMAPS SVM. Dropping a
    # fold from the copy makes it the partial row it was while the runs went on.
    import json

    repo_results = pathlib.Path(__file__).resolve().parent.parent / "results"
    stand_in, svm = "zhang2021_dcnn_blstmwa_speed1", "zhao2019_features_egemaps"
    for name in (stand_in, svm):
        shutil.copytree(repo_results / name, tmp_path / name)
    run = tmp_path / stand_in / "emodb__random_init"
    if drop_fold:
        shutil.rmtree(run / "folds" / drop_fold)
    assert report_main([str(tmp_path), "--quiet"]) == 0
    markdown = (tmp_path / "README.md").read_text()
    assert f"Main system (zhang2021_dcnn_blstmwa; no run yet, so its stand-in {stand_in})" in markdown
    cells = _z_test_line(markdown, f"{stand_in} [random_init]", svm)
    # The finished folds (a fold whose three runs are not all in has no metrics.json of its own yet).
    folds = sorted(path.parent.name for path in (run / "folds").glob("*/metrics.json"))
    if drop_fold:
        assert len(folds) == 9 and cells[3] == "9 of 10 (partial): " + ", ".join(folds)
    else:
        assert len(folds) == 10 and cells[3] == "10 / 10"
    # zhang2021_dcnn Sec. 3.2 averages its three runs: a fold counts the runs' mean correct predictions.
    ours, theirs, n = 0.0, 0, 0
    for fold in folds:
        fold_dir = run / "folds" / fold
        repeats = json.loads((fold_dir / "metrics.json").read_text())["repeats"]
        assert repeats == 3
        ours += np.mean([accuracy_score(*_labels(fold_dir / f"repeat_{k}" / "predictions.csv"), normalize=False)
                         for k in range(1, repeats + 1)])
        rows = _predictions(tmp_path / svm / "emodb")[fold]
        theirs += sum(r["label"] == r["predicted"] for r in rows)
        n += len(rows)
    z, p = accuracy_z_test(int(round(ours)), n, theirs, n)
    assert cells[4:7] == [f"{100 * ours / n:.1f}", f"{100 * theirs / n:.1f}", f"{z:.2f}"]
    assert cells[7].startswith(f"{p:.3g}")
    # Ours on the tested folds is the row's own WA: the same folds, the same mean over runs,
    # bracketed while the row is partial.
    wa = _table_row(markdown, f"{stand_in} [random_init]")[6]
    assert wa.startswith(f"*[{100 * ours / n:.1f} ± " if drop_fold else f"{100 * ours / n:.1f} ± ")


def _labels(path):
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    return [r["label"] for r in rows], [r["predicted"] for r in rows]


def _section(markdown, key):
    return markdown.split(f"\n## {key}\n", 1)[1].split("\n## ", 1)[0]


def _listed(section):
    lines = [line for line in section.splitlines() if line.startswith("Recipes for EMO-DB-2s with no run in results/")]
    assert len(lines) <= 1, lines
    return re.findall(r"`([^`]+)` \((.*?)\)(?=, `|\.$)", lines[0]) if lines else []


def test_recipes_for_a_corpus_run_here_but_without_a_run_are_listed_under_their_paper(tmp_path):
    repo_results = pathlib.Path(__file__).resolve().parent.parent / "results"
    for name in ("zhang2021_dcnn_blstmwa_speed1", "zhao2019_features_egemaps"):
        shutil.copytree(repo_results / name, tmp_path / name)
    assert report_main([str(tmp_path), "--quiet"]) == 0
    markdown = (tmp_path / "README.md").read_text()
    dcnn = dict(_listed(_section(markdown, "zhang2021_dcnn")))
    assert dcnn["zhang2021_dcnn_blstmwa_no_pretraining"] == "Table 4, Without Pre-training"
    assert "zhang2021_dcnn_blstmwa" in dcnn and "zhang2021_dcnn_blstmwa_speed1" not in dcnn
    zhao2019 = dict(_listed(_section(markdown, "zhao2019")))
    assert "zhao2019_attention_blstm_fcn" in zhao2019 and "zhao2019_features_egemaps" not in zhao2019
    # A paper with no run at all still lists its recipes for the corpus; other corpora's are not listed.
    tzirakis = _section(markdown, "tzirakis2021")
    assert "No run in results/ yet." in tzirakis
    assert "tzirakis2021_semantic_emodb" in dict(_listed(tzirakis))
    listed = [name for key in PAPERS for name, _ in _listed(_section(markdown, key))]
    assert "zhao2019_attention_blstm_fcn_fau" not in listed and "tzirakis2021_semantic" not in listed
    for name in listed:
        assert load_recipe(name)["experiment"]["corpus"] == "emodb"
        assert not (tmp_path / name).exists()
    # Once run, a recipe leaves the list.
    shutil.copytree(repo_results / "zhao2019_attention_blstm_fcn", tmp_path / "zhao2019_attention_blstm_fcn")
    assert report_main([str(tmp_path), "--quiet"]) == 0
    zhao2019 = dict(_listed(_section((tmp_path / "README.md").read_text(), "zhao2019")))
    assert "zhao2019_attention_blstm_fcn" not in zhao2019 and "zhao2019_attention_blstm_fcn_mel30" in zhao2019
