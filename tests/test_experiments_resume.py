"""keras_ser.experiments.resume (the config checks of a resumed run) and the environment record it lets change.

The lock and the corpus fingerprint are exercised through the runner in
test_experiments_run_dir.py.
"""

import platform

import pytest
import tensorflow as tf

from keras_ser.errors import ParameterError
from keras_ser.experiments import resume
from keras_ser.experiments.environment import run_environment
from keras_ser.experiments.run_dir import read_json


def test_config_records_the_environment_and_a_resume_may_change_it(tmp_path, monkeypatch):
    environment = run_environment(["GPU:0"])
    assert environment["tensorflow"] == tf.__version__
    assert environment["python"] == platform.python_version()
    assert environment["machine"]["gpus"] == ["GPU:0"] and environment["machine"]["cpu_count"] >= 1
    assert environment["git_commit"] is None or len(environment["git_commit"]) == 40

    config = {"recipe": {"name": "r"}, "seed": 1, "environment": environment}
    resume.check_config(tmp_path, config)
    upgraded = dict(config, environment=dict(environment, tensorflow="9.9.9"))
    resume.check_config(tmp_path, upgraded)  # an upgrade does not block a resume...
    assert read_json(tmp_path / "config.json")["environment"]["tensorflow"] == "9.9.9"
    with pytest.raises(ParameterError, match="different configuration"):  # ...another seed does
        resume.check_config(tmp_path, dict(upgraded, seed=2))


def test_a_run_resumes_after_its_recipe_text_changes_or_a_schema_key_is_added(tmp_path):
    recipe = {"recipe": {"name": "r", "paper": "zhao2019 Zhao", "description": "old"},
              "train": {"epochs": 2}, "paper": {"note": "old", "reported": [{"UA": 1.0}]}}
    resume.check_config(tmp_path, {"recipe": recipe, "seed": 1})
    renamed = {"recipe": {"name": "r", "paper": "zhao2019", "description": "new"},
               "train": {"epochs": 2, "precision": "float32"}, "paper": {"note": "new", "reported": []}}
    resume.check_config(tmp_path, {"recipe": renamed, "seed": 1})
    assert read_json(tmp_path / "config.json")["recipe"]["recipe"]["paper"] == "zhao2019"
    # an added key away from its default, or a changed name, is a different experiment
    for changed, key in (({"precision": "mixed_bfloat16"}, "recipe.train.precision"),
                         ({"epochs": 3}, "recipe.train.epochs")):
        other = dict(renamed, train=dict(renamed["train"], **changed))
        with pytest.raises(ParameterError, match=key.replace(".", r"\.")):
            resume.check_config(tmp_path, {"recipe": other, "seed": 1})
    with pytest.raises(ParameterError, match=r"recipe\.recipe\.name"):
        resume.check_config(tmp_path, {"recipe": dict(renamed, recipe=dict(renamed["recipe"], name="s")),
                                               "seed": 1})


@pytest.mark.parametrize("table", ["train", "stage1", "encoder"])
def test_a_run_resumes_with_another_verbosity_but_not_with_another_override(tmp_path, table):
    recipe = {"recipe": {"name": "r"}, table: {"epochs": 2, "verbose": 1}}
    resume.check_config(tmp_path, {"recipe": recipe, "overrides": [], "seed": 1})
    quiet = dict(recipe, **{table: {"epochs": 2, "verbose": 0}})
    resume.check_config(tmp_path, {"recipe": quiet, "overrides": [f"{table}.verbose=0"], "seed": 1})
    assert read_json(tmp_path / "config.json")["overrides"] == [f"{table}.verbose=0"]
    longer = dict(quiet, **{table: {"epochs": 3, "verbose": 0}})
    with pytest.raises(ParameterError, match=rf"recipe\.{table}\.epochs: 2 -> 3"):
        resume.check_config(tmp_path, {"recipe": longer, "overrides": [f"{table}.verbose=0", f"{table}.epochs=3"],
                                       "seed": 1})


def test_overrides_are_compared_through_the_recipe_they_resolve_to(tmp_path):
    # A run started with "train.epochs=3" resumes once the recipe says 3 itself.
    longer = {"recipe": {"name": "r"}, "train": {"epochs": 3}}
    resume.check_config(tmp_path, {"recipe": longer, "overrides": ["train.epochs=3"], "seed": 1})
    resume.check_config(tmp_path, {"recipe": longer, "overrides": [], "seed": 1})
    # A fusion member's override is not in the fusion recipe: it is compared as written.
    fusion = {"recipe": {"name": "f"}, "fusion": {"members": ["a"]}}
    resume.check_config(tmp_path / "fusion", {"recipe": fusion, "overrides": ["a:model.x=1"], "seed": 1})
    with pytest.raises(ParameterError, match=r"overrides: .*a:model\.x=1.*a:model\.x=2"):
        resume.check_config(tmp_path / "fusion", {"recipe": fusion, "overrides": ["a:model.x=2"], "seed": 1})
    # ... except its verbosity, which changes only the log.
    resume.check_config(tmp_path / "fusion", {"recipe": fusion, "overrides": ["a:model.x=1", "a:train.verbose=0"],
                                              "seed": 1})


def test_a_run_recorded_before_front_end_revisions_resumes_only_under_revision_1(tmp_path):
    legacy = {"recipe": {"recipe": {"name": "r"}}, "seed": 1}  # no frontend_revision: revision 1
    resume.check_config(tmp_path, legacy)
    resume.check_config(tmp_path, dict(legacy, frontend_revision=1))
    assert read_json(tmp_path / "config.json")["frontend_revision"] == 1
    with pytest.raises(ParameterError, match=r"frontend_revision: 1 -> 2 \(the front end's code has changed .*"
                                             r"keras_ser\.frontend\.presets\.REVISIONS"):
        resume.check_config(tmp_path, dict(legacy, frontend_revision=2))
    resume.check_config(tmp_path / "other", legacy)
    # The refusal shows what the unrecorded key counts as.
    with pytest.raises(ParameterError, match=r'frontend_revision: \(not recorded: 1\) -> 2 \(the front end'):
        resume.check_config(tmp_path / "other", dict(legacy, frontend_revision=2))


def test_corpus_changes_compares_paths_and_times_only_for_a_run_directory():
    record = ["u1", "/a/u1.wav", "anger", "03", 10, 5, "00ff"]
    old = {"utterances": [record, ["u2", "/a/u2.wav", "fear", "08", 20, 5, "0a0a"]]}
    assert resume.corpus_changes(old, old) == []
    copied = {"utterances": [["u1", "/b/u1.wav", "anger", "03", 10, 99, "00ff"],
                             ["u3", "/b/u3.wav", "fear", "08", 1, 1, "ab"]]}
    assert resume.corpus_changes(old, copied) == ["u2: removed", "u3: added", "u1: path /a/u1.wav -> /b/u1.wav"]
    assert resume.corpus_changes(old, copied, paths=False) == ["u2: removed", "u3: added"]
    edited = {"utterances": [record[:4] + [10, 5, "00fe"], old["utterances"][1][:3] + ["09", 20, 5, "0a0a"]]}
    assert resume.corpus_changes(old, edited) == ["u1: content changed (/a/u1.wav)", "u2: speaker 08 -> 09"]
    # Without digests on one side: size and time in place; size alone across machines.
    legacy = {"utterances": [record[:6], old["utterances"][1][:6]]}
    touched = {"utterances": [record[:5] + [6, "00ff"], old["utterances"][1]]}
    assert resume.corpus_changes(legacy, touched) == ["u1: file size or modification time changed (/a/u1.wav)"]
    assert resume.corpus_changes(legacy, touched, paths=False) == []
