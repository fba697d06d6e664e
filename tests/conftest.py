import os

import pytest

from keras_ser.paths import corpus_dir


@pytest.fixture(scope="session")
def emodb_dir():
    """The real EMO-DB copy (``$KERAS_SER_DATA/emodb``; `.ci/run` sets the variable)."""
    path = corpus_dir("emodb")
    if not (path / "wav").is_dir():
        pytest.fail(
            f"EMO-DB not found at {path}: set KERAS_SER_DATA to the folder holding emodb/ "
            "(e.g. ../shared/data)"
        )
    return path


@pytest.fixture(scope="session")
def emodb_wavs(emodb_dir):
    return sorted((emodb_dir / "wav").glob("*.wav"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The suite's semantic fits go to a cache of its own, not the user's ``~/.cache/keras_ser``
    (and parallel test workers, one session each, never share a half-written fit)."""
    previous = os.environ.get("KERAS_SER_CACHE")
    os.environ["KERAS_SER_CACHE"] = str(tmp_path_factory.mktemp("keras_ser_cache"))
    yield
    if previous is None:
        os.environ.pop("KERAS_SER_CACHE", None)
    else:
        os.environ["KERAS_SER_CACHE"] = previous
