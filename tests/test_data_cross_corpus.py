"""Cross-corpus evaluation: the label mapping and the fold (keras_ser.data.cross_corpus), and a real run.

The run trains the 8-unit stand-in network of test_train on four EMO-DB speakers written
as one manifest and tests it on two others written as a second manifest whose labels are
renamed ("joy" for happiness) or dropped (boredom), so every step of the mapping is used.
"""

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import recall_score

from keras_ser.data import Utterance, load_corpus
from keras_ser.data.cross_corpus import corpus_prefix, cross_corpus_fold, map_labels
from keras_ser.errors import DataError, ParameterError
from keras_ser.experiments.run_dir import read_json, read_predictions
from keras_ser.train import main
from test_train import TINY_ARGS

LABELS = ["anger", "neutral", "sadness"]


def _utterances(prefix, rows):
    return [Utterance(f"{prefix}{i}", f"/{prefix}/{i}.wav", label, speaker, gender)
            for i, (label, speaker, gender) in enumerate(rows)]


TRAIN = _utterances("a", [(label, speaker, gender) for speaker, gender in
                          (("01", "male"), ("02", "male"), ("03", "female"), ("04", "female"))
                          for label in LABELS])


def test_labels_keep_their_name_map_or_drop_and_an_unmapped_one_is_refused():
    test = _utterances("b", [("anger", "x", None), ("calm", "x", None), ("surprise", "x", None),
                             ("surprise", "y", None)])
    kept, dropped = map_labels(test, {"calm": "neutral", "surprise": ""}, LABELS, "b")
    assert [(u.id, u.label) for u in kept] == [("b0", "anger"), ("b1", "neutral")]
    assert dropped == {"surprise": 2}
    with pytest.raises(DataError, match=r"'calm', 'surprise'.*experiment\.label_map"):
        map_labels(test, {}, LABELS, "b")
    with pytest.raises(ParameterError, match="experiment.label_map sends {'calm': 'bliss'}"):
        map_labels(test, {"calm": "bliss", "surprise": ""}, LABELS, "b")
    with pytest.raises(DataError, match="drops every utterance"):
        map_labels(test[2:], {"surprise": ""}, LABELS, "b")


def test_the_fold_prefixes_the_test_corpus_and_takes_validation_from_the_training_corpus():
    test = _utterances("b", [("anger", "01", "male"), ("sadness", "01", "male")])
    fold, dropped = cross_corpus_fold(TRAIN, test, test_corpus="manifest:/data/other corpus.csv", label_map={},
                                      label_names=LABELS)
    assert fold.name == "cross_corpus_other_corpus" and dropped == {}
    # Speaker "01" of the test corpus is not speaker "01" of the training corpus.
    assert [(u.id, u.speaker) for u in fold.test] == [("other_corpus/b0", "other_corpus/01"),
                                                      ("other_corpus/b1", "other_corpus/01")]
    # The last speaker of each gender validates; the test corpus is never used for it.
    assert {u.speaker for u in fold.validation} == {"02", "04"}
    assert {u.speaker for u in fold.train} == {"01", "03"}
    none, _ = cross_corpus_fold(TRAIN, test, test_corpus="b", label_map={}, label_names=LABELS, validation="none")
    assert not none.validation and len(none.train) == len(TRAIN)
    with pytest.raises(ParameterError, match="validation must be one of"):
        cross_corpus_fold(TRAIN, test, test_corpus="b", label_map={}, label_names=LABELS, validation="next")


def test_a_file_in_both_corpora_or_a_label_the_training_corpus_lacks_is_refused():
    with pytest.raises(DataError, match="shares 1 file"):
        cross_corpus_fold(TRAIN, TRAIN[:1], test_corpus="b", label_map={}, label_names=LABELS)
    no_sadness = [u for u in TRAIN if u.label != "sadness"]
    test = _utterances("b", [("sadness", "x", None)])
    # The classes are the training corpus's: a test label outside them needs the map.
    with pytest.raises(DataError, match="'sadness'"):
        cross_corpus_fold(no_sadness, test, test_corpus="b", label_map={}, label_names=LABELS[:2])
    assert corpus_prefix("manifest:C:\\x\\y.csv") == "y"


def _write_manifest(path, utterances, rename=None):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "path", "label", "speaker", "gender"])
        for u in utterances:
            writer.writerow([u.id, u.path, (rename or {}).get(u.label, u.label), u.speaker, u.gender])


@pytest.fixture(scope="module")
def two_manifests(tmp_path_factory, emodb_dir):
    root = tmp_path_factory.mktemp("cross")
    emodb = load_corpus("emodb")
    train = [u for u in emodb if u.speaker in ("03", "08", "09", "10")]
    test = [u for u in emodb if u.speaker in ("11", "13")]
    _write_manifest(root / "train.csv", train)
    _write_manifest(root / "test.csv", test, rename={"happiness": "joy"})
    (root / "map.json").write_text(json.dumps({"joy": "happiness", "boredom": ""}))
    return root, train, test


def test_a_cross_corpus_run_trains_on_one_manifest_and_scores_the_other(two_manifests, tmp_path):
    root, train, test = two_manifests
    argv = ["--recipe", "zhao2019_attention_blstm_fcn", "--corpus", f"manifest:{root / 'train.csv'}",
            "--test-corpus", f"manifest:{root / 'test.csv'}", "--label-map", str(root / "map.json"),
            "--out", str(tmp_path / "run"), "--results", str(tmp_path / "results"), "--no-progress"] + TINY_ARGS
    assert main(argv) == 0
    run = tmp_path / "run"
    results = read_json(run / "results.json")
    assert results["protocol"] == "cross-corpus" and results["folds_done"] == ["cross_corpus_test"]
    assert results["cross_corpus"]["dropped"] == {"boredom": sum(u.label == "boredom" for u in test)}
    # One validation speaker per gender of the training corpus: 10 (male) and 09 (female).
    assert results["cross_corpus"]["validation_speakers"] == ["09", "10"]
    ids, labels, predicted, _ = read_predictions(run / "folds" / "cross_corpus_test" / "predictions.csv")
    expected = {f"test/{u.id}": u.label for u in test if u.label != "boredom"}
    assert dict(zip(ids, labels)) == expected
    names = read_json(run / "labels.json")
    assert np.isclose(results["pooled"]["ua"], recall_score(labels, predicted, average="macro",
                                                             labels=sorted(set(labels))))
    assert "Cross-corpus: trained on all of manifest:" in (run / "results.md").read_text()
    assert "boredom" in names  # the training corpus's classes, not the test corpus's
    assert (tmp_path / "results" / "zhao2019_attention_blstm_fcn" / "manifest_train_to_manifest_test"
            / "folds" / "cross_corpus_test" / "metrics.json").is_file()
    config = read_json(run / "config.json")
    assert config["recipe"]["experiment"]["label_map"] == {"joy": "happiness", "boredom": ""}


def test_cross_corpus_command_line_errors(two_manifests, tmp_path, capsys):
    root, _, _ = two_manifests
    base = ["--recipe", "zhao2019_attention_blstm_fcn", "--corpus", f"manifest:{root / 'train.csv'}",
            "--out", str(tmp_path / "run"), "--no-progress"] + TINY_ARGS
    assert main(base + ["--label-map", str(root / "map.json")]) == 2
    assert "give --test-corpus too" in capsys.readouterr().err
    # Without the map, the renamed label is refused before any training, naming it and the setting.
    assert main(base + ["--test-corpus", f"manifest:{root / 'test.csv'}"]) == 2
    err = capsys.readouterr().err
    assert "'joy'" in err and "experiment.label_map" in err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(base + ["--test-corpus", f"manifest:{root / 'test.csv'}", "--label-map",
                        str(tmp_path / "bad.json")]) == 2
    assert "--label-map" in capsys.readouterr().err
