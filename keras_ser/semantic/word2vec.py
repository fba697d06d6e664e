"""Word2Vec text embeddings for the semantic branch of tzirakis2021 (Sec. 3.1).

tzirakis2021 trains a skip-gram Word2Vec (Mikolov et al., NeurIPS 2013, the paper's
[13]) on text and aligns a Speech2Vec space onto it. The text is used in training
only: the corpus is the transcripts of the training speakers
(:func:`training_sentences`), or a text file the user gives (:func:`read_sentences`),
never the test speakers' transcripts.

The paper gives no Word2Vec settings. The dimensionality defaults to 100, the
``EMBEDDING_DIMENSION`` and Word2Vec ``embedding_size`` of the authors' public code
(github.com/glam-imperial/semantic_speech_emotion_recognition, ``helper.py`` and
``word2vec/main.py``); every other setting is gensim's default (those of Mikolov's
word2vec tool), with one worker thread so that a seed fixes the result.

Examples
--------
>>> from keras_ser.semantic import train_word2vec
>>> model = train_word2vec([["der", "lappen", "liegt"], ["der", "tisch"]] * 5, dim=8, epochs=2)
>>> model.wv["lappen"].shape
(8,)
"""

import os
import pathlib
import re

from keras_ser.errors import DataError, ParameterError

#: Word2Vec dimensionality of the authors' code (the paper states none).
DEFAULT_DIM = 100

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def tokenize(text):
    """Lower-cased words of ``text`` (letters, with inner apostrophes), e.g. for lookups.

    Examples
    --------
    >>> tokenize("Was sind denn das für Tüten, die da unter dem Tisch stehen?")[:5]
    ['was', 'sind', 'denn', 'das', 'für']
    """
    return _WORD.findall(str(text).lower())


def training_sentences(utterances, speakers):
    """Token lists of the transcripts of the utterances spoken by ``speakers``.

    Use the training speakers of a fold so that no test speaker's text reaches the
    embeddings. An utterance without a transcript contributes its ``words`` (word
    timings) when it has them.

    Parameters
    ----------
    utterances : iterable of keras_ser.data.Utterance
    speakers : collection of str
        Speaker ids to keep.

    Returns
    -------
    list of list of str
        One entry per utterance with text, in input order.

    Raises
    ------
    ParameterError
        When ``speakers`` is empty or none of their utterances has text.
    """
    speakers = set(speakers)
    if not speakers:
        raise ParameterError("training_sentences: speakers is empty; give the training speakers")
    sentences = []
    for utterance in utterances:
        if utterance.speaker not in speakers:
            continue
        if utterance.transcript:
            tokens = tokenize(utterance.transcript)
        else:
            tokens = [token for word, _, _ in (utterance.words or ()) for token in tokenize(word)]
        if tokens:
            sentences.append(tokens)
    if not sentences:
        raise ParameterError(f"training_sentences: no utterance of speakers {sorted(speakers)} has a "
                             "transcript or word timings")
    return sentences


def read_sentences(path):
    """Token lists of a UTF-8 text file, one sentence (or paragraph) per line.

    Raises
    ------
    DataError
        When the file is missing, unreadable or holds no words; the message names it.
    """
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Word2Vec text file {path}: cannot read it as UTF-8 text ({exc})") from exc
    sentences = [tokens for tokens in map(tokenize, lines) if tokens]
    if not sentences:
        raise DataError(f"Word2Vec text file {path}: no words")
    return sentences


def train_word2vec(sentences, dim=DEFAULT_DIM, *, window=5, min_count=5, negative=5, epochs=5,
                   seed=0, workers=1, path=None):
    """Train a skip-gram Word2Vec model with gensim.

    Parameters
    ----------
    sentences : iterable of list of str, or path-like
        Tokenised sentences (:func:`training_sentences`), or a text file read by
        :func:`read_sentences`.
    dim : int, default 100
        Vector size (the authors' code; the paper states none).
    window, min_count, negative, epochs : int
        Context window, minimum count, negative samples and passes: gensim's
        defaults (5, 5, 5, 5).
    seed : int, default 0
        Seed of the initial vectors and of the sampling.
    workers : int, default 1
        Training threads. One thread makes the result a function of ``seed``;
        more are faster but not reproducible (gensim's own caveat).
    path : path-like, optional
        Where to save the model in gensim's format (``Word2Vec.save``; reload with
        :func:`load_word2vec`).

    Returns
    -------
    gensim.models.Word2Vec
        ``model.wv`` holds the vectors, most frequent word first.

    Raises
    ------
    ParameterError
        For a non-positive setting, or when no word occurs ``min_count`` times.
    DataError
        When ``sentences`` names a file that cannot be read.
    """
    from gensim.models import Word2Vec  # deferred: gensim is the optional "semantic" extra

    for name, value in (("dim", dim), ("window", window), ("min_count", min_count),
                        ("epochs", epochs), ("workers", workers)):
        if not isinstance(value, int) or value < 1:
            raise ParameterError(f"train_word2vec: {name} must be a positive integer, got {value!r}")
    if isinstance(sentences, (str, os.PathLike)):
        sentences = read_sentences(sentences)
    sentences = [list(tokens) for tokens in sentences]
    counts = {}
    for tokens in sentences:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    if not any(count >= min_count for count in counts.values()):
        raise ParameterError(f"train_word2vec: no word occurs min_count={min_count} times in "
                             f"{len(sentences)} sentences ({len(counts)} distinct words)")
    model = Word2Vec(sentences, vector_size=dim, window=window, min_count=min_count, sg=1,
                     negative=negative, epochs=epochs, seed=seed, workers=workers)
    if path is not None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(path))
    return model


def load_word2vec(path):
    """Load a model saved by :func:`train_word2vec` (``path`` is named in the error if absent)."""
    from gensim.models import Word2Vec

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"Word2Vec model {path}: no such file")
    return Word2Vec.load(str(path))
