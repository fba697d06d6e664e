"""tzirakis2021's second input in the fold runner: word vectors per 0.1 s frame, fitted per fold.

A model that reads word vectors (tzirakis2021's semantic network, alone or fused with
the paralinguistic one; its builder's ``modalities`` include ``"semantic"``) gets, in
every fold, the frames of :func:`keras_ser.semantic.fold_semantic_frames`: Word2Vec and
Speech2Vec trained on the fold's training speakers only, the alignment ``W`` between
them, and for every utterance of the fold (training, validation and test) one vector per
front-end frame, from the utterance's speech and word times (tzirakis2021 Sec. 3.1). The
recipe's ``[semantic]`` table chooses which of Table 2's inputs fills the frames
(``vectors``) and the fit's settings. The fitted extractor is kept in the fold's
``semantic/`` folder, so a resumed fold reuses it.

Fits are shared: the fit depends only on the ``[semantic]`` settings, the seed and the
training utterances, so the Table 2 and 3 recipes (which differ in the network and the
``vectors`` read out, not in the fit) would otherwise refit the same Speech2Vec fold by
fold. A finished fit is copied to ``$KERAS_SER_CACHE/semantic/<key>`` (default
``~/.cache/keras_ser``), the key a hash of the settings and of the training utterances
(id, a hash of the audio file's bytes, transcript, word times), and a later fold with the
same key copies it into its own ``semantic/`` folder instead of fitting. Every fold folder
holds its fit either way.

The frames follow the audio frames one to one: an utterance whose front-end output is
``[sequences, frames, samples]`` gets ``sequences * frames`` word-vector frames, cut
into the same sequences.

Imports :mod:`keras_ser.semantic`, :mod:`keras_ser.models` and :mod:`keras_ser.recipe`,
nothing of this package.
"""

import hashlib
import inspect
import json
import os
import pathlib
import shutil

import numpy as np

from keras_ser.errors import ParameterError
from keras_ser.models import info
from keras_ser.recipe import SEMANTIC_KEYS
from keras_ser.semantic.pipeline import FILES, fold_semantic_frames

#: Name of the word-vector input of tzirakis2021's models (:func:`keras_ser.models.semantic.tzirakis2021_semantic`).
WORD_INPUT = "word_vectors"
#: Name of their audio input.
AUDIO_INPUT = "audio_frames"


def _modalities(model_table):
    entry = info(model_table["name"])
    parameters = inspect.signature(entry.builder).parameters
    if "modalities" not in parameters:
        return ()
    return tuple(model_table.get("modalities", entry.default_kwargs.get("modalities",
                                                                        parameters["modalities"].default)))


def uses_word_vectors(model_table):
    """Whether the recipe's model reads word vectors (its ``modalities`` include ``"semantic"``)."""
    return "semantic" in _modalities(model_table)


def reads_frame_sequences(model_table):
    """Whether the model is one of tzirakis2021's, which read ``[frames, samples]`` per example (and word vectors)."""
    return bool(_modalities(model_table))


def uses_audio(model_table):
    """Whether a word-vector model also reads the front end's audio frames."""
    return "paralinguistic" in _modalities(model_table)


def semantic_settings(recipe):
    """The recipe's ``[semantic]`` table, with :data:`keras_ser.recipe.SEMANTIC_KEYS` defaults when absent."""
    table = recipe.get("semantic") or {}
    return {key: table.get(key, default) for key, (_, default) in SEMANTIC_KEYS.items()}


def check_word_vector_recipe(recipe):
    """Refuse the settings a word-vector model cannot be trained with, before any data is read.

    Raises
    ------
    ParameterError
        Speed perturbation (it would move the audio away from the word times), or a
        two-stage or non-neural kind.
    """
    name = recipe["recipe"]["name"]
    if recipe["experiment"]["kind"] != "neural":
        raise ParameterError(f"recipe {name!r}: a word-vector model is trained by experiment.kind='neural' only")
    factors = recipe["train"]["speed_perturbation"]
    if factors and list(factors) != [1.0]:
        raise ParameterError(f"recipe {name!r}: train.speed_perturbation would stretch the audio away from the "
                             "word times its word vectors are placed by; leave it empty")


def fold_word_vectors(recipe, fold, fold_dir, frame_counts):
    """Fit the fold's semantic extractor (or reload it) and return each utterance's word-vector frames.

    Parameters
    ----------
    recipe : dict
        Resolved recipe; ``[semantic]`` and ``experiment.seed`` are used.
    fold : keras_ser.data.splits.Fold
        The extractor is fitted on ``fold.train`` only.
    fold_dir : pathlib.Path
        The fitted extractor goes to ``fold_dir / "semantic"``.
    frame_counts : dict of str to int
        Frames per utterance id (the audio front end's), for every utterance the fold uses.

    Returns
    -------
    frames : dict of str to numpy.ndarray, shape (frames, d)
    summary : dict
        The fit's summary (vocabularies, alignment precision), also in ``semantic/summary.json``.
    """
    settings = semantic_settings(recipe)
    fit = dict(word2vec_options=settings["word2vec"] or None, speech2vec_options=settings["speech2vec"] or None,
               alignment=settings["alignment"], alignment_options=settings["alignment_options"] or None,
               seed=recipe["experiment"]["seed"])
    work_dir = pathlib.Path(fold_dir) / "semantic"
    shared = cache_dir() / _cache_key(fit, fold.train)
    if not (work_dir / FILES["summary"]).is_file() and (shared / FILES["summary"]).is_file():
        shutil.rmtree(work_dir, ignore_errors=True)
        shutil.copytree(shared, work_dir)
    utterances = [*fold.train, *fold.validation, *fold.test]
    fitted, frames = fold_semantic_frames(list(fold.train), utterances, dict(frame_counts), work_dir=work_dir,
                                          vectors=settings["vectors"], **fit)
    if not (shared / FILES["summary"]).is_file():
        # Copied to a temporary name, then renamed: a reader never sees a half-written fit.
        partial = shared.with_name(f"{shared.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(work_dir, partial)
        try:
            partial.rename(shared)
        except OSError:  # another run stored the same fit first
            shutil.rmtree(partial, ignore_errors=True)
    return frames, fitted.summary


def cache_dir():
    """Where finished semantic fits are shared: ``$KERAS_SER_CACHE/semantic`` (default ``~/.cache/keras_ser``)."""
    root = os.environ.get("KERAS_SER_CACHE") or pathlib.Path.home() / ".cache" / "keras_ser"
    path = pathlib.Path(root) / "semantic"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_key(fit, train):
    """Hash of the fit's settings and of the training utterances (id, audio content, text, word times).

    The audio enters by the hash of its bytes, not its path or modification time, so a fit
    is found again after the corpus is copied to another folder or machine (about 0.1 s
    for EMO-DB's 535 files).
    """
    files = []
    for u in sorted(train, key=lambda u: u.id):
        audio_hash = hashlib.sha256(pathlib.Path(u.path).read_bytes()).hexdigest()
        files.append([u.id, audio_hash, getattr(u, "transcript", None),
                      [list(map(str, w)) for w in u.words or ()]])
    text = json.dumps({"fit": fit, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def semantic_dim(model_table, frames):
    """The ``semantic_dim`` to build the model with: that of ``frames``, checked against the recipe's.

    Raises
    ------
    ParameterError
        ``[model] semantic_dim`` is set and differs from the fitted vectors' dimension.
    """
    dim = int(next(iter(frames.values())).shape[-1])
    wanted = model_table.get("semantic_dim")
    if wanted is not None and int(wanted) != dim:
        raise ParameterError(f"model.semantic_dim={wanted} but the fold's word vectors have {dim} dimensions "
                             "(semantic.word2vec.dim / semantic.speech2vec.embedding_dim); set them equal or "
                             "leave model.semantic_dim unset")
    return dim


def utterance_inputs(model_table, audio, frames, utterances):
    """The inputs of one of tzirakis2021's models for whole utterances (classification): ``{input name: array}``.

    Parameters
    ----------
    audio : list of numpy.ndarray
        Front-end outputs per utterance, ``[frames, samples]`` or ``[sequences, frames, samples]``
        (joined into one sequence: an utterance is one example).
    frames : dict of str to numpy.ndarray or None
        Word-vector frames per utterance id (:func:`fold_word_vectors`); None for the
        paralinguistic network alone.
    utterances : list of keras_ser.data.Utterance
    """
    joined = [a.reshape(-1, a.shape[-1]) for a in audio]
    inputs = {}
    if frames is not None:
        words = [frames[u.id] for u in utterances]
        for u, a, w in zip(utterances, joined, words):
            if a.shape[0] != w.shape[0]:
                raise ParameterError(f"utterance {u.id}: {a.shape[0]} audio frames but {w.shape[0]} word-vector "
                                     "frames")
        inputs[WORD_INPUT] = _stack(words)
    if uses_audio(model_table):
        inputs[AUDIO_INPUT] = _stack(joined)
    return inputs


def sequence_word_vectors(frames, utterances, counts, frames_per_sequence):
    """Word-vector rows aligned with regression rows: ``[sum(counts), frames_per_sequence, d]``.

    ``counts[i]`` is the number of sequences of utterance ``i``; its
    ``counts[i] * frames_per_sequence`` frames are cut into them in order.
    """
    rows = [frames[u.id].reshape(n, frames_per_sequence, -1) for u, n in zip(utterances, counts)]
    return np.concatenate(rows, axis=0).astype(np.float32)


def frame_counts(features, utterances):
    """Frames of each utterance's front-end output (all its sequences together), by utterance id."""
    return {u.id: int(np.prod(f.shape[:-1])) for u, f in zip(utterances, features)}


def _stack(arrays):
    if len({a.shape for a in arrays}) != 1:
        raise ParameterError("word-vector models take utterances of one length (frontend.num_frames or "
                             f"sequence_frames fixed); got frame counts {sorted({a.shape[0] for a in arrays})}")
    return np.stack(arrays).astype(np.float32)
