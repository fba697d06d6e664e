"""A relative data root (the README's KERAS_SER_DATA=../shared/data) from any working directory."""

import os
import pathlib
import subprocess
import sys

import pytest

from keras_ser import paths
from keras_ser.data import load_corpus
from keras_ser.errors import DataError

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """``repo/notebooks`` beside ``shared/data/emodb``, and a checkout elsewhere."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "emodb" / "wav").mkdir(parents=True)
    monkeypatch.setattr(paths, "CHECKOUT", tmp_path / "elsewhere")
    monkeypatch.setenv(paths.ENV_VAR, "../shared/data")
    return tmp_path


def test_relative_root_from_the_start_directory(layout, monkeypatch):
    monkeypatch.chdir(layout / "repo")
    monkeypatch.delenv("PWD", raising=False)
    assert paths.corpus_dir("emodb") == layout / "shared" / "data" / "emodb"


def test_relative_root_from_a_notebook_kernel(layout, monkeypatch):
    # Jupyter started in repo/ runs a notebook's kernel in repo/notebooks/; $PWD is still repo/.
    monkeypatch.chdir(layout / "repo" / "notebooks")
    monkeypatch.setenv("PWD", str(layout / "repo"))
    assert paths.corpus_dir("emodb") == layout / "shared" / "data" / "emodb"
    assert paths.data_root() == layout / "shared" / "data"


def test_relative_root_from_the_checkout(layout, monkeypatch):
    # An editor that starts kernels in notebooks/ without the shell's $PWD: the checkout decides.
    monkeypatch.chdir(layout / "repo" / "notebooks")
    monkeypatch.setenv("PWD", str(layout / "repo" / "notebooks"))
    monkeypatch.setattr(paths, "CHECKOUT", layout / "repo")
    (layout / "repo" / "setup.cfg").write_text("[metadata]\n")
    assert paths.corpus_dir("emodb") == layout / "shared" / "data" / "emodb"


def test_missing_corpus_error_lists_every_absolute_path_tried(layout, monkeypatch):
    (layout / "shared" / "data" / "emodb" / "wav").rmdir()
    (layout / "shared" / "data" / "emodb").rmdir()
    monkeypatch.chdir(layout / "repo" / "notebooks")
    monkeypatch.setenv("PWD", str(layout / "repo"))
    with pytest.raises(DataError) as info:
        load_corpus("emodb", download_if_missing=False)
    message = str(info.value)
    assert f"expected {layout / 'repo' / 'shared' / 'data' / 'emodb' / 'wav'}" in message   # the cwd's, first
    assert f"tried {layout / 'repo' / 'shared' / 'data' / 'emodb'}, {layout / 'shared' / 'data' / 'emodb'}" \
        in message
    assert "'../shared/data' (KERAS_SER_DATA)" in message


def test_absolute_root_is_used_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "data"))
    assert paths.data_root_candidates() == [tmp_path / "data"]
    assert paths.tried("emodb") == f"data root {tmp_path / 'data'} (KERAS_SER_DATA)"
    assert paths.corpus_dir("emodb", tmp_path / "data" / "emodb") == tmp_path / "data" / "emodb"


def test_notebook_directory_finds_the_readme_data_root(emodb_dir):
    # As a Jupyter kernel runs a notebook: in notebooks/, with the README's relative setting.
    relative = os.path.relpath(emodb_dir.parent, REPOSITORY)
    code = "from keras_ser.data import load_corpus; print(len(load_corpus('emodb', download_if_missing=False)))"
    env = dict(os.environ, KERAS_SER_DATA=relative, PWD=str(REPOSITORY))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY / "notebooks", env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["535"]
