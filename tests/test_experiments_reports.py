"""keras_ser.experiments.reports: results.md and results.json of a run directory.

Built on a hand-written run directory (two folds, scores chosen by hand), so each figure of
the report can be checked against the numbers it must come from.
"""

import numpy as np

from keras_ser.experiments import reports
from keras_ser.experiments.run_dir import read_json, write_json, write_predictions
from keras_ser.recipe import load_recipe

LABELS = ["anger", "neutral"]


def _fold(root, name, speaker, labels, predicted, **extra):
    folder = root / "folds" / name
    folder.mkdir(parents=True)
    probabilities = np.eye(2)[[LABELS.index(p) for p in predicted]]
    write_predictions(folder / "predictions.csv", [f"{name}_{i}" for i in range(len(labels))], labels, predicted,
                      probabilities, LABELS)
    correct = [a == b for a, b in zip(labels, predicted)]
    write_json(folder / "metrics.json", dict(fold=name, test_speakers=[speaker], validation_speakers=["v"],
                                             scores={"ua": float(np.mean(correct)), "wa": float(np.mean(correct)),
                                                     "n": len(labels)}, **extra))


def test_the_report_shows_each_folds_validation_ua_and_their_mean(tmp_path):
    recipe = load_recipe("zhao2018_attention_blstm_fcn")
    write_json(tmp_path / "config.json", {"recipe": recipe, "corpus": "emodb"})
    write_json(tmp_path / "labels.json", LABELS)
    # A network fold records its validation scores; an SVM fold the validation UA of each value it tried.
    _fold(tmp_path, "speaker_03", "03", ["anger", "neutral"], ["anger", "anger"],
          validation_scores={"ua": 0.625}, epochs_run=10, best_epoch=4)
    _fold(tmp_path, "speaker_08", "08", ["anger", "neutral"], ["anger", "neutral"],
          params={"classifier": "sgd", "parameter": "alpha", "value": 0.01,
                  "validation_ua": {"0.001": 0.5, "0.01": 0.875}})
    results = reports.write_reports(tmp_path, finished=lambda name: True)
    assert results["validation"] == {"ua": 0.75, "ua_std": 0.125, "folds": 2}
    assert read_json(tmp_path / "results.json")["validation"]["ua"] == 0.75
    text = (tmp_path / "results.md").read_text()
    assert "| validation speaker(s), mean +- std over 2 folds (what settings are chosen on) | | 75.0 +- 12.5 | |" in text
    assert "| speaker_03 | 03 | 2 | 50.0 | 50.0 | 62.5 | 10 (4) |" in text
    assert "| speaker_08 | 08 | 2 | 100.0 | 100.0 | 87.5 | - |" in text


def test_a_fold_without_validation_speakers_shows_a_dash_and_no_mean(tmp_path):
    recipe = load_recipe("zhao2018_attention_blstm_fcn")
    write_json(tmp_path / "config.json", {"recipe": recipe, "corpus": "emodb"})
    write_json(tmp_path / "labels.json", LABELS)
    _fold(tmp_path, "official", "x", ["anger", "neutral"], ["anger", "neutral"])
    results = reports.write_reports(tmp_path, finished=lambda name: True)
    assert "validation" not in results
    assert "| official | x | 2 | 100.0 | 100.0 | - | - |" in (tmp_path / "results.md").read_text()


def test_the_report_states_the_overrides_that_change_the_run_and_only_those(tmp_path):
    recipe = load_recipe("zhao2019_attention_blstm_fcn", ["frontend.num_frames=201"])
    # Keras' verbosity changes nothing the run computes: it is not a setting worth stating.
    for name, overrides in (("overridden", ["train.verbose=0", "frontend.num_frames=201"]),
                            ("quiet", ["train.verbose=0"]), ("plain", [])):
        run = tmp_path / name
        write_json(run / "config.json", {"recipe": recipe, "corpus": "emodb", "overrides": overrides})
        write_json(run / "labels.json", LABELS)
        _fold(run, "speaker_03", "03", ["anger", "neutral"], ["anger", "neutral"])
        results = reports.write_reports(run, finished=lambda fold: True)
        text = (run / "results.md").read_text()
        if name == "overridden":
            assert results["overrides"] == ["frontend.num_frames=201"]
            assert "- Recipe settings overridden for this run: `frontend.num_frames=201`" in text
        else:
            assert "overrides" not in results and "overridden" not in text
