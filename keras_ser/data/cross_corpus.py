"""Cross-corpus evaluation: train on one corpus, test on another through a label mapping.

None of the five papers evaluates across corpora; this is the protocol SER toolkits offer
for it (train on corpus A, test every utterance of corpus B), made explicit:

* **Labels.** Every reader gives canonical English class names (:func:`keras_ser.data.label_names`),
  so a test label that is also a training class keeps its name. Any other test label must be
  mapped: ``label_map = {"calm": "neutral"}`` sends it to a training class, ``{"surprise": ""}``
  drops its utterances (counted in the fold's summary). An unmapped one is refused with the
  labels and the setting to use: guessing would change what UA means. A training class absent
  from the test corpus is allowed; UA then averages over the classes the test set has
  (:func:`keras_ser.metrics.unweighted_accuracy`).
* **Speakers and files.** The test corpus's ids and speakers are prefixed with its name
  (``"ravdess/Actor_01"``), so they cannot collide with the training corpus's. A test file
  that the training corpus also holds (the same path) is refused: the run would not be
  cross-corpus.
* **Validation.** The papers give no rule for this protocol. keras_ser holds out, from the
  training corpus, the last speaker in sorted order of each gender (one speaker when genders are
  unknown) for early stopping and model selection (``validation="one_per_gender"``), or none
  (``"none"``); the test corpus is never used for any decision.

Example
-------
>>> from keras_ser.data import Utterance
>>> train = [Utterance(f"a{i}", f"/a/{i}.wav", label, s, g) for i, (label, s, g) in enumerate(
...     [("anger", "01", "male"), ("neutral", "01", "male"), ("anger", "02", "male"),
...      ("neutral", "02", "male"), ("anger", "03", "female"), ("neutral", "03", "female")])]
>>> test = [Utterance("b0", "/b/0.wav", "anger", "x", "female"),
...         Utterance("b1", "/b/1.wav", "calm", "x", "female")]
>>> fold, dropped = cross_corpus_fold(train, test, test_corpus="b", label_map={"calm": "neutral"},
...                                   label_names=["anger", "neutral"], validation="none")
>>> fold.name, [(u.id, u.label, u.speaker) for u in fold.test], dropped
('cross_corpus_b', [('b/b0', 'anger', 'b/x'), ('b/b1', 'neutral', 'b/x')], {})
"""

import collections
import dataclasses
import re

from keras_ser.data.splits import Fold, check_fold
from keras_ser.errors import DataError, ParameterError

VALIDATION_CHOICES = ("one_per_gender", "none")


def corpus_prefix(corpus):
    """The prefix of a test corpus's ids and speakers: ``"ravdess"``, ``"manifest:x/b.csv"`` -> ``"b"``."""
    corpus = str(corpus)
    if corpus.startswith("manifest:"):
        corpus = re.split(r"[\\/]", corpus.split(":", 1)[1])[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", corpus)


def map_labels(utterances, label_map, label_names, corpus):
    """The test utterances with training-class labels, and the count dropped per original label.

    Parameters
    ----------
    utterances : list of Utterance
        The test corpus.
    label_map : dict
        ``test label -> training label`` (``""`` drops that label's utterances).
    label_names : list of str
        The training corpus's classes.
    corpus : str
        The test corpus's name, for messages.

    Returns
    -------
    kept : list of Utterance
    dropped : dict
        ``label -> count`` of the utterances dropped through ``label_map``.

    Raises
    ------
    ParameterError
        ``label_map`` sends a label to something that is not a training class.
    DataError
        A test label is neither a training class nor in ``label_map``; or nothing is left.
    """
    classes = set(label_names)
    wrong = {k: v for k, v in label_map.items() if v != "" and v not in classes}
    if wrong:
        raise ParameterError(f"experiment.label_map sends {wrong} to no training class; "
                             f"training classes are {list(label_names)} (or \"\" to drop a label)")
    present = collections.Counter(u.label for u in utterances)
    unmapped = sorted(label for label in present if label not in classes and label not in label_map)
    if unmapped:
        raise DataError(
            f"test corpus {corpus!r} has label(s) {unmapped} ({', '.join(str(present[k]) for k in unmapped)} "
            f"utterance(s)) that are not training classes {list(label_names)}: map them with "
            "experiment.label_map (e.g. experiment.label_map={" + f'{unmapped[0]}="{label_names[0]}"'
            + "}) or drop them with " + f'{{{unmapped[0]}=""}}')
    kept, dropped = [], collections.Counter()
    for u in utterances:
        target = label_map.get(u.label, u.label)
        if target == "":
            dropped[u.label] += 1
            continue
        kept.append(dataclasses.replace(u, label=target))
    if not kept:
        raise DataError(f"test corpus {corpus!r}: experiment.label_map drops every utterance ({dict(dropped)})")
    return kept, dict(dropped)


def _validation_speakers(utterances, rule):
    if rule == "none":
        return set()
    by_gender = collections.defaultdict(set)
    for u in utterances:
        if u.speaker is not None:
            by_gender[u.gender].add(u.speaker)
    return {max(speakers) for speakers in by_gender.values()}


def cross_corpus_fold(train_utterances, test_utterances, *, test_corpus, label_map, label_names,
                      validation="one_per_gender"):
    """The one fold of a cross-corpus run: all of one corpus against all of another.

    Parameters
    ----------
    train_utterances : list of Utterance
        The training corpus (its validation speakers are taken from it).
    test_utterances : list of Utterance
        The test corpus, with its own labels (mapped by ``label_map``).
    test_corpus : str
        The test corpus's name (``"ravdess"``, ``"manifest:PATH"``): the fold is named
        ``cross_corpus_<name>`` and its ids and speakers are prefixed with it.
    label_map : dict
        See :func:`map_labels`.
    label_names : list of str
        The training corpus's classes.
    validation : {"one_per_gender", "none"}
        Validation speakers held out of the training corpus (module docstring).

    Returns
    -------
    fold : Fold
    dropped : dict
        ``test label -> count`` of the utterances ``label_map`` dropped.

    Raises
    ------
    ParameterError
        An unknown ``validation`` or a bad ``label_map``.
    DataError
        An unmapped test label, a file in both corpora, or a training class left without
        training utterances.
    """
    if validation not in VALIDATION_CHOICES:
        raise ParameterError(f"cross-corpus validation must be one of {VALIDATION_CHOICES}, got {validation!r}")
    shared = sorted({str(u.path) for u in train_utterances} & {str(u.path) for u in test_utterances})
    if shared:
        raise DataError(f"test corpus {test_corpus!r} shares {len(shared)} file(s) with the training corpus "
                        f"(e.g. {shared[0]}): a cross-corpus test needs files the model was not trained on")
    kept, dropped = map_labels(test_utterances, dict(label_map), label_names, test_corpus)
    prefix = corpus_prefix(test_corpus)
    test = [dataclasses.replace(u, id=f"{prefix}/{u.id}",
                                speaker=None if u.speaker is None else f"{prefix}/{u.speaker}") for u in kept]
    held_out = _validation_speakers(train_utterances, validation)
    fold = Fold(f"cross_corpus_{prefix}", [u for u in train_utterances if u.speaker not in held_out],
                [u for u in train_utterances if u.speaker in held_out], test)
    return check_fold(fold, classes=sorted({u.label for u in train_utterances})), dropped
