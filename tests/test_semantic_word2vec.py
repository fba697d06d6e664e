"""Word2Vec training for tzirakis2021 (keras_ser.semantic.word2vec) on EMO-DB transcripts."""

import os
import subprocess
import sys

import numpy as np
import pytest

from keras_ser.data import Utterance, load_corpus
from keras_ser.data import emodb
from keras_ser.data.splits import make_folds
from keras_ser.errors import DataError, ParameterError
from keras_ser.semantic import (DEFAULT_DIM, load_word2vec, read_sentences, tokenize, train_word2vec,
                                training_sentences)


@pytest.fixture(scope="module")
def emodb_utterances(emodb_dir):
    return load_corpus("emodb", emodb_dir.parent, download_if_missing=False)


def test_emodb_training_speakers_word2vec_saved_and_reloaded(emodb_utterances, tmp_path):
    fold = make_folds("loso", emodb_utterances)[0]
    train_speakers = {u.speaker for u in fold.train}
    sentences = training_sentences(emodb_utterances, train_speakers)
    assert len(sentences) == len(fold.train)
    model = train_word2vec(sentences, epochs=2, path=tmp_path / "run" / "word2vec.model")
    assert model.sg == 1 and model.wv.vector_size == DEFAULT_DIM == 100
    # The ten sentences' words (README of the corpus), lower-cased: every one occurs >= 5 times.
    expected = {w.lower() for text in emodb.SENTENCES.values() for w in tokenize(text)}
    assert set(model.wv.index_to_key) == expected
    assert "holzstück" in expected and "tüten" in expected
    loaded = load_word2vec(tmp_path / "run" / "word2vec.model")
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    assert loaded.wv.index_to_key == model.wv.index_to_key


def _utt(id_, speaker, text):
    return Utterance(id=id_, path=f"{id_}.wav", label=None, speaker=speaker, transcript=text)


def test_only_the_given_speakers_text_is_used():
    utts = [_utt("a", "s1", "the cat sat"), _utt("b", "s2", "secret test words"),
            _utt("c", "s1", "the dog sat"),
            Utterance(id="d", path="d.wav", label=None, speaker="s1",
                      words=(("Timed", 0.0, 0.2), ("words", 0.2, 0.5)))]
    sentences = training_sentences(utts, {"s1"})
    assert sentences == [["the", "cat", "sat"], ["the", "dog", "sat"], ["timed", "words"]]
    model = train_word2vec(sentences, dim=4, min_count=1, epochs=1)
    assert "secret" not in model.wv and "cat" in model.wv
    with pytest.raises(ParameterError, match="speakers is empty"):
        training_sentences(utts, set())
    with pytest.raises(ParameterError, match="s9"):
        training_sentences(utts, {"s9"})


_TRAIN_AND_PRINT = (
    "import sys, numpy as np; from keras_ser.semantic import train_word2vec;"
    "s = [['a', 'b', 'c', 'd'], ['b', 'c', 'e'], ['a', 'e', 'd', 'b']] * 20;"
    "m = train_word2vec(s, dim=6, min_count=1, epochs=3, seed=int(sys.argv[1]));"
    "print(repr(m.wv.vectors.tolist()))"
)


def _vectors_in_new_process(seed, hash_seed):
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    out = subprocess.run([sys.executable, "-c", _TRAIN_AND_PRINT, str(seed)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return np.array(eval(out))  # noqa: S307 - our own repr of a list of floats


def test_deterministic_with_a_seed_across_processes():
    first = _vectors_in_new_process(seed=3, hash_seed=1)
    np.testing.assert_array_equal(first, _vectors_in_new_process(seed=3, hash_seed=2))
    assert not np.allclose(first, _vectors_in_new_process(seed=4, hash_seed=1))


def test_user_text_file(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("Der Lappen liegt auf dem Eisschrank.\n\nDer Tisch, der Lappen!\n" * 3, encoding="utf-8")
    assert read_sentences(text)[:2] == [["der", "lappen", "liegt", "auf", "dem", "eisschrank"],
                                        ["der", "tisch", "der", "lappen"]]
    model = train_word2vec(text, dim=5, min_count=3, epochs=1)
    assert model.wv.index_to_key[0] == "der"  # most frequent first
    assert set(model.wv.index_to_key) == {"der", "lappen", "liegt", "auf", "dem", "eisschrank", "tisch"}


def test_bad_input_named(tmp_path):
    with pytest.raises(DataError, match="missing.txt"):
        train_word2vec(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("123 ...\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt: no words"):
        train_word2vec(tmp_path / "empty.txt")
    with pytest.raises(ParameterError, match="min_count=5"):
        train_word2vec([["rare", "words"]])
    with pytest.raises(ParameterError, match="dim"):
        train_word2vec([["a"]] * 5, dim=0)
    with pytest.raises(DataError, match="nothing.model"):
        load_word2vec(tmp_path / "nothing.model")
