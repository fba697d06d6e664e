"""``python -m keras_ser.train --skip-bad``: refused corpus files are left out, listed and counted.

A 14-file EMO-DB manifest (3 speakers, anger / neutral) with one corrupt file (speaker
03, in the test fold) and one silent file (speaker 08, in training or validation), on
the tiny stand-in network of tests/test_bad_input.py.
"""

import json

import numpy as np
import pytest
import soundfile

from test_bad_input import TRAIN_ARGS, _tiny_manifest


@pytest.fixture()
def bad_manifest(tmp_path, emodb_dir):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 7)  # a header cut short
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    manifest = _tiny_manifest(tmp_path / "bad.csv", emodb_dir,
                              extra=[f"{corrupt},anger,03", f"{silent},neutral,08"])
    return manifest, corrupt, silent


def _train(manifest, out, *extra):
    from keras_ser.train import main

    return main(TRAIN_ARGS + ["--corpus", f"manifest:{manifest}", "--out", str(out), "--folds", "speaker_03",
                              *extra])


def test_strict_run_stops_naming_the_file(tmp_path, bad_manifest, capsys):
    manifest, corrupt, _ = bad_manifest
    assert _train(manifest, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert str(corrupt) in err and "--skip-bad" in err
    # Refused before config.json is written, so the same command runs once the file is repaired.
    assert not (tmp_path / "run" / "folds").exists() and not (tmp_path / "run" / "config.json").exists()


def test_skip_bad_leaves_the_files_out_and_reports_them(tmp_path, bad_manifest, capsys):
    manifest, corrupt, silent = bad_manifest
    run = tmp_path / "run"
    assert _train(manifest, run, "--skip-bad") == 0

    results = json.loads((run / "results.json").read_text())
    skipped = {s["path"]: s["reason"] for s in results["skipped_files"]}
    assert set(skipped) == {str(corrupt), str(silent)}
    assert "cannot decode" in skipped[str(corrupt)] and "silent" in skipped[str(silent)]
    markdown = (run / "results.md").read_text()
    section = markdown[markdown.index("## Skipped files"):]
    assert str(corrupt) in section and str(silent) in section and "silent" in section

    fold = run / "folds" / "speaker_03"
    metrics = json.loads((fold / "metrics.json").read_text())
    # 12 good files: the two refused ones are in no split of the fold.
    assert metrics["n_train"] + metrics["n_validation"] + metrics["n_test"] == 12
    for csv in fold.glob("*predictions.csv"):
        text = csv.read_text()
        assert str(corrupt) not in text and str(silent) not in text
    assert json.loads((run / "config.json").read_text())["skip_bad"] is True

    # The run's folds were made without the refused files: resuming it strictly is refused, by the
    # refused file itself or, once the files are repaired, by the recorded skip_bad.
    capsys.readouterr()
    assert _train(manifest, run) == 2
    assert str(corrupt) in capsys.readouterr().err
    for repaired in (corrupt, silent):
        soundfile.write(repaired, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    assert _train(manifest, run) == 2
    assert "different configuration" in capsys.readouterr().err
    assert (fold / "metrics.json").is_file()


def test_a_class_left_without_files_by_skipping_is_refused_before_training(tmp_path, emodb_dir, capsys):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    # Every 'fear' file is refused: the class is in the manifest but in no fold's training set.
    manifest = _tiny_manifest(tmp_path / "fear.csv", emodb_dir,
                              extra=[f"{silent},fear,08", f"{broken},fear,09"])
    assert _train(manifest, tmp_path / "run", "--skip-bad") == 2
    err = capsys.readouterr().err
    assert "left class(es) ['fear'] without any file" in err and str(silent) in err and str(broken) in err
    assert not (tmp_path / "run" / "folds").exists()


def test_a_fold_left_without_a_class_by_skipping_gets_the_usual_error(tmp_path, emodb_dir, capsys):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    fear = [p for p in sorted((emodb_dir / "wav").glob("*.wav")) if p.name[5] == "A"]
    fear_03 = next(p for p in fear if p.name.startswith("03"))
    # 'fear' keeps one file, speaker 03's: the fold testing speaker 03 has no 'fear' to train on.
    manifest = _tiny_manifest(tmp_path / "fear.csv", emodb_dir,
                              extra=[f"{fear_03},fear,03", f"{silent},fear,08"])
    assert _train(manifest, tmp_path / "run", "--skip-bad") == 2
    assert "fold 'speaker_03': class 'fear' has no training utterance" in capsys.readouterr().err
    assert not (tmp_path / "run" / "folds" / "speaker_03" / "metrics.json").exists()
