"""The per-fold semantic feature pipeline of tzirakis2021 (Sec. 3.1): fit on the training speakers, apply to speech.

tzirakis2021 trains Word2Vec on text and Speech2Vec on speech, aligns the speech space
onto the text space (eqs. 1-3) and, at evaluation, feeds the network the aligned
Speech2Vec vectors of the spoken words only: "the text modality is used during
training, but discarded during evaluation" (Sec. 1). Per fold of a speaker-independent
protocol that is two calls:

>>> fitted = fit_semantic(train_utterances, seed=0, work_dir=fold_dir / "semantic")  # doctest: +SKIP
>>> frames = semantic_frames(fitted, fold_utterances, num_frames=100)  # doctest: +SKIP

or one, :func:`fold_semantic_frames`, which also resumes from ``work_dir``.

What is read, and when
----------------------
:func:`fit_semantic` (training speakers only):

- the training utterances' ``transcript`` (or, without one, the words of their
  ``words`` timings) for Word2Vec (:func:`keras_ser.semantic.word2vec.training_sentences`);
- their audio and ``words`` timings, word text included, for Speech2Vec: the text says
  which segments are the same word, for the word vectors (the mean over a word's segments,
  Chung and Glass) that the alignment and its evaluation use.

:func:`semantic_frames` (any utterance, test speakers included) reads ``id``, ``path``
(the audio) and only the start and end times of ``words``: never ``transcript`` and
never the word strings in ``words`` (only ``timing[-2:]`` of each timing is read, and
the segments are named ``"word 0"``, ``"word 1"``, ...), except with
``vectors="word2vec"``, the text-based row of Table 2, which looks the word strings up
in Word2Vec. An utterance without word
timings gets all-zero frames (logged). On EMO-DB the word boundaries are the corpus's
labelled syllable timings (``silb/``) grouped into the sentence's words when the corpus
is read (:func:`keras_ser.data.emodb.align_syllables`, which uses the sentence's text):
in effect a forced alignment with the transcript, made by the corpus reader, not here.
A deployed system has neither labels nor transcript and would take the boundaries from
a speech recogniser, which is what tzirakis2021's speech-only inference presupposes (the
paper does not say where its test-time word boundaries come from).

The fitted object (:class:`SemanticFeatures`) keeps the Word2Vec model, the Speech2Vec
encoder with its MFCC front end and scaling, the alignment ``W`` with the mean that
centred the training speech vectors, and a summary; :meth:`SemanticFeatures.save`
writes them in one directory (gensim's format, ``.keras``, ``.npy``, JSON) so that a run
keeps one per fold.

Alignment
---------
``alignment="adversarial"`` is tzirakis2021's unsupervised map
(:func:`keras_ser.semantic.align`: adversarial training, then Procrustes refinement on
mutual CSLS neighbours). Its retrieval precision is measured on every word the two
vocabularies share: no pair was used to learn ``W``, so all of them are held out.

``alignment="procrustes_shared_vocabulary"`` is a **departure from tzirakis2021**:
``W`` is eq. 3's Procrustes solution on pairs of the same word in both spaces (the shared
vocabulary, a seeded ``1 - held_out_fraction`` of it), i.e. a supervised map, and the
precision is measured on the held-out rest. The reason is EMO-DB: its ten sentences give
about 70 word types (about 66 spoken by each speaker in the 2-s copy), a thousand times
fewer than the tens of thousands of words unsupervised alignment relies on (Conneau et
al. use the 75 000 most frequent); with so few points the adversarial game has little to
match and the CSLS dictionary little to refine. Both spaces are trained on the same
words, so the pairs come for free on the training speakers; at inference the map is
applied as before, from speech alone. The summary records which was used and what
precision each achieved.

Measured on EMO-DB-2s, one leave-one-speaker-out fold (test speaker 03; the other nine
speakers' 486 utterances, 3749 word segments, 70 spoken word types, all in Word2Vec's 72),
``d = 50``, Word2Vec ``min_count=1, epochs=50``, Speech2Vec 30 epochs (Adam 0.005, batches
of 64; loss 4.50 -> 3.13), seed 0, CSLS retrieval over the 72 text words (chance
precision@1 1/72 = 0.014, @5 0.069):

- ``"adversarial"`` (16 games of 3 x 1000 steps, discriminator 2 x 256, no input dropout,
  rates 1.0 / 0.5, beta 0.01, 5 refinements): precision@1 0.014, @5 0.029 on the 70
  shared words (alignment seed 1 on the same spaces: 0.014 / 0.129; no map at all,
  ``W = I``: 0.0 / 0.057): chance. The unsupervised alignment does not find the word
  correspondence on EMO-DB.
- ``"procrustes_shared_vocabulary"`` (56 pairs fitted, 14 held out): held-out
  precision@1 0.0, @5 0.50 (the adversarial maps on the same 14 words: 0.071 / 0.071
  and 0.0 / 0.071); on its own 56 pairs 0.80 / 0.96. The map nearly interpolates its
  pairs (56 in 50 dimensions) and generalises only in the top 5: the two spaces, learnt
  from ten sentences, are far from isometric.

Reloading the saved fit and recomputing the segments gives the same numbers. Frames for
all 535 utterances took 22 s on a shared 2-core CPU.

Neither is a semantic space in tzirakis2021's sense; on EMO-DB the frames are best read as
Speech2Vec vectors in a fixed, orthogonal (length-preserving) rotation.

EMO-DB carries no semantic emotion information
----------------------------------------------
Every EMO-DB speaker reads the same ten sentences in every emotion, so what is said is
independent of the emotion, and a semantic-only model on EMO-DB is expected near chance:
a score far above it would suggest the labels leak into the semantic branch. Two things
besides leakage can lift it, though, and a check should allow for them: the Speech2Vec
vectors are computed from the MFCCs of the spoken word, so they keep some of how it was
said (tzirakis2021 itself reads its aligned Speech2Vec results as showing "that
paralinguistic information exists in the model", Sec. 5.3.1); and the frames show where
words are and are not, i.e. speaking rate and pauses, which differ between, e.g., sad or
bored and angry speech. Nothing here reads a label.

Examples
--------
>>> from keras_ser.data import load_corpus
>>> utterances = load_corpus("emodb")  # doctest: +SKIP
>>> train = [u for u in utterances if u.speaker in {"08", "09", "10"}]  # doctest: +SKIP
>>> fitted = fit_semantic(train, word2vec_options={"dim": 16, "min_count": 1},
...                       speech2vec_options={"embedding_dim": 16, "epochs": 5}, seed=0)  # doctest: +SKIP
>>> frames = fitted.frames([u for u in utterances if u.speaker == "03"], num_frames=100)  # doctest: +SKIP
>>> fitted.summary["alignment"]["precision@1"]  # doctest: +SKIP

One module on purpose: fitting, caching, resuming and applying the semantic features are
one pipeline whose stored files must agree with each other.
"""

import dataclasses
import inspect
import json
import logging
import pathlib

import numpy as np

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError
from keras_ser.semantic import frames as frames_module
from keras_ser.semantic.alignment import align, evaluate_alignment, map_vectors, normalize, procrustes
from keras_ser.semantic.speech2vec import Speech2Vec, train_speech2vec, word_segments
from keras_ser.semantic.word2vec import DEFAULT_DIM, load_word2vec, tokenize, train_word2vec, training_sentences

logger = logging.getLogger(__name__)

ALIGNMENTS = ("adversarial", "procrustes_shared_vocabulary")
#: What fills the frames (:func:`semantic_frames`): the semantic inputs of tzirakis2021 Table 2.
VECTORS = ("aligned_speech2vec", "speech2vec", "word2vec")

#: Files of a saved :class:`SemanticFeatures`.
FILES = dict(word2vec="word2vec.model", encoder="speech2vec_encoder.keras", W="W.npy",
             speech_mean="speech_mean.npy", mfcc_mean="mfcc_mean.npy", mfcc_std="mfcc_std.npy",
             speech2vec="speech2vec.json", summary="summary.json")

#: Options of :func:`fit_semantic`'s Speech2Vec that are not :func:`train_speech2vec` arguments.
_SPEECH2VEC_EXTRA = {"short_segments": "skip", "mfcc": {}}
_PROCRUSTES_DEFAULTS = {"held_out_fraction": 0.2, "csls_k": 10}
#: :func:`fit_semantic`'s settings and their defaults.
_FIT_DEFAULTS = {"word2vec_options": None, "speech2vec_options": None, "alignment": "adversarial",
                 "alignment_options": None, "seed": 0}


def _arguments(function, excluded=()):
    return set(inspect.signature(function).parameters) - set(excluded)


def _options(options, allowed, name):
    """``options`` as a dict whose keys are all in ``allowed``."""
    options = dict(options or {})
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ParameterError(f"{name}: unknown option(s) {unknown}; expected some of {sorted(allowed)}")
    return options


@dataclasses.dataclass
class SemanticFeatures:
    """A fold's fitted semantic feature extractor (tzirakis2021 Sec. 3.1).

    Attributes
    ----------
    word2vec : gensim.models.Word2Vec
        Trained on the training speakers' transcripts.
    speech2vec : keras_ser.semantic.speech2vec.Speech2Vec
        Trained on the training speakers' word segments. After :meth:`load` it holds
        the encoder only (``model`` is ``None``: the decoder serves training only).
    W : numpy.ndarray, shape (d, d), float32
        Maps normalised Speech2Vec vectors into the normalised Word2Vec space
        (``speech @ W.T``, :func:`keras_ser.semantic.map_vectors`).
    speech_mean : numpy.ndarray, shape (d,), float32
        Mean of the unit-length training speech word vectors, which centres new ones
        (:func:`keras_ser.semantic.normalize`).
    summary : dict
        Vocabulary sizes, Speech2Vec losses, the alignment's method and retrieval
        precision, and the settings (JSON-serialisable).
    """

    word2vec: object
    speech2vec: Speech2Vec
    W: np.ndarray
    speech_mean: np.ndarray
    summary: dict

    @property
    def dim(self):
        """Dimension of the semantic frames."""
        return int(self.W.shape[0])

    def frames(self, utterances, num_frames=None, *, frame_s=frames_module.FRAME_SECONDS,
               vectors="aligned_speech2vec"):
        """See :func:`semantic_frames`."""
        return semantic_frames(self, utterances, num_frames, frame_s=frame_s, vectors=vectors)

    def save(self, path):
        """Write the fitted extractor into the directory ``path`` (created; files :data:`FILES`).

        Returns
        -------
        pathlib.Path
        """
        path = pathlib.Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.word2vec.save(str(path / FILES["word2vec"]))
        self.speech2vec.encoder.save(path / FILES["encoder"])
        np.save(path / FILES["W"], np.asarray(self.W, np.float32))
        np.save(path / FILES["speech_mean"], np.asarray(self.speech_mean, np.float32))
        scaled = self.speech2vec.mean is not None
        if scaled:
            np.save(path / FILES["mfcc_mean"], self.speech2vec.mean)
            np.save(path / FILES["mfcc_std"], self.speech2vec.std)
        config = {"window": self.speech2vec.window, "mfcc_settings": self.speech2vec.mfcc_settings,
                  "standardized": scaled, "history": [float(x) for x in self.speech2vec.history]}
        (path / FILES["speech2vec"]).write_text(json.dumps(config, indent=1), encoding="utf-8")
        # Written last: fold_semantic_frames takes a directory without it for an unfinished save.
        (path / FILES["summary"]).write_text(json.dumps(self.summary, indent=1, ensure_ascii=False),
                                             encoding="utf-8")
        return path

    @classmethod
    def load(cls, path):
        """Read a directory written by :meth:`save`.

        Raises
        ------
        DataError
            A missing or unreadable file; the message names it.
        """
        import keras

        path = pathlib.Path(path)
        config = _read_json(path / FILES["speech2vec"])
        summary = _read_json(path / FILES["summary"])
        encoder_path = _existing(path / FILES["encoder"])
        try:
            encoder = keras.models.load_model(encoder_path)
        except (OSError, ValueError) as exc:
            raise DataError(f"Speech2Vec encoder {path / FILES['encoder']}: cannot load it ({exc})") from exc
        mean = std = None
        if config.get("standardized"):
            mean, std = _read_npy(path / FILES["mfcc_mean"]), _read_npy(path / FILES["mfcc_std"])
        speech2vec = Speech2Vec(model=None, encoder=encoder, window=int(config["window"]),
                                mfcc_settings=dict(config["mfcc_settings"]), mean=mean, std=std,
                                history=list(config.get("history", [])))
        return cls(word2vec=load_word2vec(path / FILES["word2vec"]), speech2vec=speech2vec,
                   W=_read_npy(path / FILES["W"]), speech_mean=_read_npy(path / FILES["speech_mean"]),
                   summary=summary)


def _existing(path):
    if not path.is_file():
        raise DataError(f"saved semantic features: {path} is missing")
    return path


def _read_json(path):
    try:
        return json.loads(_existing(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"saved semantic features: cannot read {path} ({exc})") from exc


def _read_npy(path):
    try:
        return np.load(_existing(path)).astype(np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"saved semantic features: cannot read {path} ({exc})") from exc


def load_semantic(path):
    """Load a :class:`SemanticFeatures` saved with :meth:`SemanticFeatures.save`."""
    return SemanticFeatures.load(path)


def fit_semantic(train_utterances, *, word2vec_options=None, speech2vec_options=None, alignment="adversarial",
                 alignment_options=None, seed=0, work_dir=None):
    """Fit tzirakis2021's semantic feature extractor on one fold's training utterances.

    Parameters
    ----------
    train_utterances : sequence of keras_ser.data.Utterance
        The training (and, if the runner wishes, validation) speakers' utterances, never
        the test speakers'. Word2Vec needs their transcripts (or word timings);
        Speech2Vec their audio and word timings (those without are left out, logged).
    word2vec_options : dict, optional
        Arguments of :func:`keras_ser.semantic.train_word2vec` (``dim``, ``window``,
        ``min_count``, ``negative``, ``epochs``, ``workers``). ``dim`` defaults to the
        Speech2Vec ``embedding_dim``; the orthogonal ``W`` needs the two equal.
    speech2vec_options : dict, optional
        Arguments of :func:`keras_ser.semantic.speech2vec.train_speech2vec` (``window``,
        ``embedding_dim``, ``epochs``, ``max_steps``, ``batch_size``, ``optimizer``,
        ``learning_rate``, ...), plus ``short_segments`` (``"skip"`` by default: words
        shorter than one MFCC window are left out) and ``mfcc`` (overrides of
        :data:`keras_ser.semantic.speech2vec.MFCC_DEFAULTS`).
    alignment : {"adversarial", "procrustes_shared_vocabulary"}, default "adversarial"
        tzirakis2021's unsupervised alignment, or the supervised Procrustes map on the
        shared vocabulary (a departure; see the module docstring).
    alignment_options : dict, optional
        ``"adversarial"``: arguments of :func:`keras_ser.semantic.align` (its defaults
        are Conneau et al.'s full-size settings). ``"procrustes_shared_vocabulary"``:
        ``held_out_fraction`` (0.2; words left out of the fit to measure precision on)
        and ``csls_k`` (10).
    seed : int, default 0
        Seeds Word2Vec, Speech2Vec, the alignment and the held-out words.
    work_dir : path-like, optional
        Save the fitted extractor there (:meth:`SemanticFeatures.save`).

    Returns
    -------
    SemanticFeatures

    Raises
    ------
    ParameterError
        An unknown option or alignment, different Word2Vec and Speech2Vec dimensions,
        no training utterances, or none with a transcript or word timings.
    DataError
        No training utterance with word timings, too few shared words for the
        Procrustes map, or an unreadable audio file.
    """
    settings = _settings(word2vec_options, speech2vec_options, alignment, alignment_options, seed)
    word2vec_options = dict(settings["word2vec_options"])
    speech2vec_options = dict(settings["speech2vec_options"])
    alignment_options = dict(settings["alignment_options"])
    train_utterances = list(train_utterances)
    if not train_utterances:
        raise ParameterError("fit_semantic: no training utterances")

    # Word2Vec: the training speakers' text (tzirakis2021 uses text in training only).
    speakers = {u.speaker for u in train_utterances}
    sentences = training_sentences(train_utterances, speakers)
    word2vec = train_word2vec(sentences, seed=seed, **word2vec_options)

    # Speech2Vec: the training speakers' word segments.
    timed = [u for u in train_utterances if u.words]
    if not timed:
        raise DataError(f"fit_semantic: none of the {len(train_utterances)} training utterances has word "
                        f"timings (e.g. {train_utterances[0].id}, {train_utterances[0].path}); Speech2Vec "
                        "needs the words' start and end times")
    if len(timed) < len(train_utterances):
        logger.info("fit_semantic: %d training utterances without word timings left out of Speech2Vec",
                    len(train_utterances) - len(timed))
    options = dict(speech2vec_options)
    short_segments = options.pop("short_segments", _SPEECH2VEC_EXTRA["short_segments"])
    mfcc_settings = dict(options.pop("mfcc", {}))
    segments = word_segments(timed, short_segments=short_segments, **mfcc_settings)
    speech2vec = train_speech2vec(segments, seed=seed, mfcc_settings=mfcc_settings, **options)

    # The two vocabularies, most frequent word first, normalised as align() expects.
    speech_words, speech_raw, speech_counts = _speech_vocabulary(speech2vec, segments)
    speech_mean = normalize(speech_raw, center=False).mean(axis=0)
    speech = normalize(speech_raw, mean=speech_mean)
    text_words = list(word2vec.wv.index_to_key)
    text = normalize(word2vec.wv.vectors)
    text_counts = np.array([word2vec.wv.get_vecattr(w, "count") for w in text_words], np.float64)
    text_index = {w: i for i, w in enumerate(text_words)}
    shared = [(row, text_index[w]) for row, w in enumerate(speech_words) if w in text_index]

    if alignment == "adversarial":
        W, history = align(speech, text, speech_frequencies=speech_counts, text_frequencies=text_counts,
                           seed=seed, return_history=True, **alignment_options)
        evaluated, fitted_on = shared, 0
        details = {"criterion": history[-1]["criterion"],
                   "stages": [{k: v for k, v in h.items() if k != "restart_criteria"} for h in history]}
    else:
        W, fit_pairs, evaluated = _procrustes_shared(speech, text, shared, alignment_options, seed)
        fitted_on = len(fit_pairs)
        # How well the map fits its own pairs: far above the held-out precision means the
        # two spaces are not close to isometric, so no orthogonal map generalises.
        fit_precision = _precision(W, speech, text, fit_pairs, alignment_options["csls_k"])
        details = {"fitted_pairs_precision@1": fit_precision["precision@1"],
                   "fitted_pairs_precision@5": fit_precision["precision@5"]}
    summary = {
        "paper": "tzirakis2021",
        "train_utterances": len(train_utterances),
        "train_speakers": sorted(str(s) for s in speakers),
        "train_utterance_ids": sorted(u.id for u in train_utterances),
        "word2vec_vocabulary": len(text_words),
        "speech2vec_vocabulary": len(speech_words),
        "shared_vocabulary": len(shared),
        "speech2vec_segments": int(sum(len(group) for group in segments)),
        "speech2vec_utterances_without_words": len(train_utterances) - len(timed),
        "speech2vec_steps": len(speech2vec.history),
        "speech2vec_loss_first": speech2vec.history[0],
        "speech2vec_loss_last": speech2vec.history[-1],
        "alignment": {"method": alignment, "pairs_fitted": fitted_on, "chance@1": 1.0 / len(text_words),
                      **_precision(W, speech, text, evaluated, alignment_options.get("csls_k", 10)), **details},
        "settings": settings,
    }
    fitted = SemanticFeatures(word2vec=word2vec, speech2vec=speech2vec, W=np.asarray(W, np.float32),
                              speech_mean=speech_mean.astype(np.float32), summary=_jsonable(summary))
    if work_dir is not None:
        fitted.save(work_dir)
    return fitted


def _settings(word2vec_options, speech2vec_options, alignment, alignment_options, seed):
    """:func:`fit_semantic`'s settings checked, with the dimensions and Procrustes defaults filled in."""
    if alignment not in ALIGNMENTS:
        raise ParameterError(f"fit_semantic: alignment must be one of {ALIGNMENTS}, got {alignment!r}")
    word2vec_options = _options(word2vec_options, _arguments(train_word2vec, ("sentences", "seed", "path")),
                                "word2vec_options")
    speech2vec_options = _options(
        speech2vec_options, _arguments(train_speech2vec, ("segments", "seed", "mfcc_settings")) | set(_SPEECH2VEC_EXTRA),
        "speech2vec_options")
    if alignment == "adversarial":
        excluded = ("speech_vectors", "text_vectors", "seed", "speech_frequencies", "text_frequencies",
                    "return_history")
        alignment_options = _options(alignment_options, _arguments(align, excluded), "alignment_options")
    else:
        alignment_options = _options(alignment_options, set(_PROCRUSTES_DEFAULTS), "alignment_options")
        alignment_options = {**_PROCRUSTES_DEFAULTS, **alignment_options}
        if not 0 < alignment_options["held_out_fraction"] < 1:
            raise ParameterError(f"alignment_options: held_out_fraction must be in (0, 1), got "
                                 f"{alignment_options['held_out_fraction']!r}")
    dim = speech2vec_options.setdefault("embedding_dim", word2vec_options.get("dim", DEFAULT_DIM))
    word2vec_options.setdefault("dim", dim)
    if word2vec_options["dim"] != dim:
        raise ParameterError(f"word2vec_options dim={word2vec_options['dim']} and speech2vec_options "
                             f"embedding_dim={dim} differ; the orthogonal alignment needs one dimension")
    return {"word2vec_options": word2vec_options, "speech2vec_options": speech2vec_options,
            "alignment": alignment, "alignment_options": alignment_options, "seed": seed}


def _speech_vocabulary(speech2vec, segments):
    """Word types of the segments (lower-cased, as Word2Vec's tokens), their mean vectors and counts."""
    vectors = speech2vec.word_vectors(segments)
    counts = {}
    for group in segments:
        for segment in group:
            word = segment.word.lower()
            counts[word] = counts.get(word, 0) + 1
    words = sorted(vectors, key=lambda w: (-counts[w], w))
    # Word2Vec's tokens are tokenize()'s; a timing spelt otherwise (e.g. with a hyphen) would never match.
    keys = [" ".join(tokenize(w)) or w for w in words]
    return keys, np.stack([vectors[w] for w in words]), np.array([counts[w] for w in words], np.float64)


def _procrustes_shared(speech, text, shared, options, seed):
    """Eq. 3 on a seeded ``1 - held_out_fraction`` of the shared words; returns W, the pairs used, the rest."""
    held = int(round(len(shared) * options["held_out_fraction"]))
    if len(shared) - held < 2:
        raise DataError(f"procrustes_shared_vocabulary: the Speech2Vec and Word2Vec vocabularies share "
                        f"{len(shared)} words; at least {2 + held} are needed (held_out_fraction="
                        f"{options['held_out_fraction']})")
    order = np.random.default_rng(seed).permutation(len(shared))
    pairs = np.array(shared)[order]
    fit, held_out = pairs[held:], pairs[:held]
    return (procrustes(speech[fit[:, 0]], text[fit[:, 1]]), [tuple(p) for p in fit.tolist()],
            [tuple(p) for p in held_out.tolist()])


def _precision(W, speech, text, pairs, csls_k):
    """Precision@1/@5 (CSLS retrieval) on ``pairs``, or the reason it is not evaluable."""
    if not pairs:
        return {"precision@1": None, "precision@5": None, "words": 0,
                "note": "no held-out word is in both vocabularies"}
    return evaluate_alignment(W, speech, text, pairs, ks=(1, 5), csls_k=csls_k)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _timings(utterance):
    """The utterance's word start and end times under neutral names.

    Only ``timing[-2:]`` is read, so the word text of a ``(word, start, end)`` timing is
    never touched, not even unpacked.
    """
    return [(f"word {k}", *map(float, timing[-2:])) for k, timing in enumerate(utterance.words)]


def semantic_frames(fitted, utterances, num_frames=None, *, frame_s=frames_module.FRAME_SECONDS,
                    vectors="aligned_speech2vec"):
    """The per-frame semantic input of tzirakis2021 for each utterance, from its speech and word times.

    Each word segment (cut by the utterance's word timings) goes through the Speech2Vec
    encoder; its vector is normalised with the training mean, mapped by ``W`` and spread
    over 0.1 s frames: a frame takes the word overlapping it longest, zero where no word
    is, and words shorter than one MFCC window are left out (their frames are zero). This
    is :func:`keras_ser.semantic.frames.semantic_frames` for many utterances, with one
    encoder pass over all their segments. Reads only ``id``, ``path`` and the times in
    ``words`` (see the module docstring).

    Parameters
    ----------
    fitted : SemanticFeatures
    utterances : iterable of keras_ser.data.Utterance
    num_frames : int or dict of str to int, optional
        Frames per utterance (or per utterance id), e.g. the padded sequence length of
        the ``tzirakis2021`` front end (100 for 10 s); words past the last frame are
        ignored and frames past the audio are zero. Default: the 0.1 s frames covering
        each utterance's audio.
    frame_s : float, default 0.1
    vectors : {"aligned_speech2vec", "speech2vec", "word2vec"}
        Which vectors fill the frames, the three semantic inputs of tzirakis2021 Table 2:
        Speech2Vec mapped by ``W`` (the default and the paper's system), Speech2Vec
        unmapped (normalised with the training mean), or the Word2Vec vector of the
        word's text (normalised as the alignment's text space; a word Word2Vec lacks
        gets a zero vector). ``"word2vec"`` reads the word strings of ``words``: it is
        the text-based row of Table 2 and, unlike the other two, needs the transcript
        at test time too.

    Returns
    -------
    dict of str to numpy.ndarray, shape (num_frames, d), float32
        Keyed by utterance id; the ``word_vectors`` input of
        :func:`keras_ser.models.semantic.tzirakis2021_semantic`.

    Raises
    ------
    ParameterError
        Two utterances with the same id, a bad ``num_frames`` or ``vectors``, or an
        utterance missing from a ``num_frames`` mapping.
    DataError
        An unreadable audio file or a bad word timing (named).
    """
    if vectors not in VECTORS:
        raise ParameterError(f"semantic_frames: vectors must be one of {VECTORS}, got {vectors!r}")
    if vectors == "word2vec":
        return _word2vec_frames(fitted, utterances, num_frames, frame_s)
    speech2vec = fitted.speech2vec
    rate = speech2vec.mfcc_settings["sample_rate"]
    kept, counts, untimed = {}, {}, []
    for utterance in utterances:
        if utterance.id in kept:
            raise ParameterError(f"semantic_frames: utterance id {utterance.id!r} occurs twice")
        waveform = audio.load(utterance.path, sr=rate)
        counts[utterance.id] = _frame_count(num_frames, utterance, waveform.size, rate, frame_s)
        kept[utterance.id] = []
        if not utterance.words:
            untimed.append(utterance.id)
            continue
        kept[utterance.id] = speech2vec.segments(waveform, _timings(utterance), short_segments="skip",
                                                 name=f"utterance {utterance.id} ({utterance.path})")
    # One encoder pass over every segment: per-utterance calls cost far more on a CPU.
    segments = [segment for group in kept.values() for segment in group]
    if segments:
        table = normalize(speech2vec.embed(segments), mean=fitted.speech_mean)
        table = map_vectors(fitted.W, table) if vectors == "aligned_speech2vec" else table
    else:
        table = np.zeros((0, fitted.dim), np.float32)
    result, begin = {}, 0
    for key, group in kept.items():
        timings = [(s.word, s.start, s.end) for s in group]
        result[key] = frames_module.spread_vectors(timings, table[begin:begin + len(group)], counts[key],
                                                   frame_s=frame_s)
        begin += len(group)
    if untimed:
        logger.warning("semantic_frames: %d utterances without word timings get all-zero semantic frames "
                       "(e.g. %s)", len(untimed), untimed[0])
    return result


def _frame_count(num_frames, utterance, num_samples, rate, frame_s):
    """Frames of one utterance: ``num_frames`` itself, its entry for the utterance, or the audio's 0.1 s frames."""
    if num_frames is None:
        return frames_module.num_frames_for(num_samples, rate, frame_s)
    if isinstance(num_frames, dict):
        if utterance.id not in num_frames:
            raise ParameterError(f"semantic_frames: num_frames has no entry for utterance {utterance.id!r}")
        return num_frames[utterance.id]
    return num_frames


def _word2vec_frames(fitted, utterances, num_frames, frame_s):
    """Frames of Word2Vec vectors of the words' text (the ``vectors="word2vec"`` row of Table 2)."""
    words = list(fitted.word2vec.wv.index_to_key)
    text = normalize(fitted.word2vec.wv.vectors)
    index = {word: row for row, word in enumerate(words)}
    rate = fitted.speech2vec.mfcc_settings["sample_rate"]
    result, untimed = {}, []
    for utterance in utterances:
        if utterance.id in result:
            raise ParameterError(f"semantic_frames: utterance id {utterance.id!r} occurs twice")
        samples = audio.load(utterance.path, sr=rate).size if num_frames is None else 0
        count = _frame_count(num_frames, utterance, samples, rate, frame_s)
        timings = [(str(t[0]), float(t[-2]), float(t[-1])) for t in utterance.words or ()]
        if not timings:
            untimed.append(utterance.id)
        table = np.zeros((len(timings), fitted.dim), np.float32)
        for row, (word, _, _) in enumerate(timings):
            known = [index[token] for token in tokenize(word) if token in index]
            if known:
                table[row] = text[known].mean(axis=0)
        result[utterance.id] = frames_module.spread_vectors(timings, table, count, frame_s=frame_s)
    if untimed:
        logger.warning("semantic_frames: %d utterances without word timings get all-zero semantic frames "
                       "(e.g. %s)", len(untimed), untimed[0])
    return result


def fold_semantic_frames(train_utterances, utterances, num_frames=None, *, work_dir=None,
                         vectors="aligned_speech2vec", **fit_options):
    """One fold in one call: fit (or reload) on ``train_utterances``, then frames for ``utterances``.

    Parameters
    ----------
    train_utterances : sequence of keras_ser.data.Utterance
        The fold's training speakers' utterances (see :func:`fit_semantic`).
    utterances : iterable of keras_ser.data.Utterance
        Every utterance the fold's network sees (training, validation and test).
    num_frames : int, optional
        See :func:`semantic_frames`.
    work_dir : path-like, optional
        The fold's directory for the fitted extractor. When it already holds one fitted
        with the same settings on the same training utterances it is loaded instead of
        refitted (a resumed run); one fitted otherwise is refused.
    vectors : {"aligned_speech2vec", "speech2vec", "word2vec"}
        See :func:`semantic_frames`.
    **fit_options
        ``word2vec_options``, ``speech2vec_options``, ``alignment``,
        ``alignment_options``, ``seed`` of :func:`fit_semantic`.

    Returns
    -------
    fitted : SemanticFeatures
    frames : dict of str to numpy.ndarray (num_frames, d)
    """
    train_utterances = list(train_utterances)
    if work_dir is None or not (pathlib.Path(work_dir) / FILES["summary"]).is_file():
        fitted = fit_semantic(train_utterances, work_dir=work_dir, **_fit_options(fit_options))
    else:
        fitted = load_semantic(work_dir)
        expected = _jsonable(_settings(**{**_FIT_DEFAULTS, **_fit_options(fit_options)}))
        ids = sorted(u.id for u in train_utterances)
        if fitted.summary.get("settings") != expected or fitted.summary.get("train_utterance_ids") != ids:
            raise ParameterError(f"{work_dir} holds semantic features fitted with other settings or training "
                                 "utterances than these; remove it or choose another work_dir")
    return fitted, semantic_frames(fitted, utterances, num_frames, vectors=vectors)


def _fit_options(fit_options):
    unknown = sorted(set(fit_options) - set(_FIT_DEFAULTS))
    if unknown:
        raise ParameterError(f"fold_semantic_frames: unknown argument(s) {unknown}; expected some of "
                             f"{sorted(_FIT_DEFAULTS)}")
    return fit_options
