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
