"""Speaker-independent evaluation protocols.

``make_folds(protocol, utterances, **kw)`` returns a list of :class:`Fold`:

- ``"loso"``: leave-one-speaker-out (zhang2021_dcnn on EMO-DB; zhao2018 on CHEAVD), one
  fold per speaker, with one other speaker held out for validation.
- ``"loso_session"``: leave-one-session-out (zhao2019 and zhao2018 on IEMOCAP): the
  held-out session is split by gender, one speaker for validation, the other for test.
- ``"logo"``: leave-one-subject-group-out (zhang2021_multicnn on BAUM-1s, five groups).
- ``"official"``: the corpus's own partitions (FAU Aibo Ohm/Mont, AFEW Train/Val,
  CHEAVD, SEWA).

Every fold is checked: no speaker (or, for ``logo``, group) appears in two of
train / validation / test, and every class has training examples.
"""

import collections
import dataclasses

from keras_ser.errors import DataError, ParameterError

PROTOCOLS = ("loso", "loso_session", "logo", "official")
VALIDATION_CHOICES = ("next_same_gender", "next", "none")


@dataclasses.dataclass(frozen=True)
class Fold:
    """One train / validation / test partition.

    Parameters
    ----------
    name : str
        Used as a folder name by the runner, e.g. ``"speaker_03"``, ``"Ses01_F"``.
    train, validation, test : tuple of Utterance
        ``validation`` may be empty (protocol or corpus without one).

    Examples
    --------
    >>> Fold("all", (), (), ()).name
    'all'
    """

    name: str
    train: tuple
    validation: tuple
    test: tuple

    def __post_init__(self):
        for part in ("train", "validation", "test"):
            object.__setattr__(self, part, tuple(getattr(self, part)))


def _speakers(utterances):
    return {u.speaker for u in utterances if u.speaker is not None}


def check_fold(fold, classes=None):
    """Assert speaker independence and non-empty training classes of ``fold``.

    Utterances whose speaker is unknown (``None``: AFEW, CHEAVD film clips) cannot
    be checked and are ignored by the speaker test; those corpora rely on their
    official partition being speaker-disjoint.

    Parameters
    ----------
    fold : Fold
    classes : iterable of str, optional
        Classes that must appear in training. Default: every label in the fold.

    Raises
    ------
    DataError
        Naming the fold and the shared speaker, the empty class, or the empty
        train / test part.
    """
    if not fold.train:
        raise DataError(f"fold {fold.name!r}: empty training set")
    if not fold.test:
        raise DataError(f"fold {fold.name!r}: empty test set")
    parts = {"train": fold.train, "validation": fold.validation, "test": fold.test}
    names = list(parts)
    for a_index, a in enumerate(names):
        for b in names[a_index + 1:]:
            shared = _speakers(parts[a]) & _speakers(parts[b])
            if shared:
                raise DataError(
                    f"fold {fold.name!r} is not speaker-independent: speaker(s) {sorted(shared)} "
                    f"in both {a} and {b}"
                )
    if classes is None:
        classes = {u.label for part in parts.values() for u in part if u.label is not None}
    trained = {u.label for u in fold.train}
    for label in sorted(classes):
        if label not in trained:
            raise DataError(f"fold {fold.name!r}: class {label!r} has no training utterance")
    return fold


def _gender_of(utterances):
    genders = {}
    for u in utterances:
        if u.speaker is None:
            raise DataError(f"utterance {u.id!r} has no speaker: speaker-wise protocols need one")
        known = genders.get(u.speaker)
        if known is not None and u.gender is not None and known != u.gender:
            raise DataError(f"speaker {u.speaker!r} has two genders ({known}, {u.gender}), see {u.id!r}")
        if known is None:
            genders[u.speaker] = u.gender
    return genders


def _validation_speaker(speaker, speakers, genders, rule):
    """The speaker after ``speaker`` in sorted order (cyclic), optionally of the same gender."""
    order = speakers[speakers.index(speaker) + 1:] + speakers[: speakers.index(speaker)]
    if rule == "next_same_gender" and genders[speaker] is not None:
        same = [s for s in order if genders[s] == genders[speaker]]
        if same:
            return same[0]
    return order[0] if order else None


def _loso(utterances, validation="next_same_gender", classes=None):
    genders = _gender_of(utterances)
    speakers = sorted(genders)
    if len(speakers) < (3 if validation != "none" else 2):
        raise DataError(f"loso needs at least 3 speakers (2 without validation), got {speakers}")
    folds = []
    for speaker in speakers:
        held = _validation_speaker(speaker, speakers, genders, validation) if validation != "none" else None
        fold = Fold(
            name=f"speaker_{speaker}",
            train=[u for u in utterances if u.speaker not in (speaker, held)],
            validation=[u for u in utterances if u.speaker == held],
            test=[u for u in utterances if u.speaker == speaker],
        )
        folds.append(check_fold(fold, classes))
    return folds


def _loso_session(utterances, test_gender="female", classes=None):
    if test_gender not in ("female", "male", "both"):
        raise ParameterError(f"test_gender must be 'female', 'male' or 'both', got {test_gender!r}")
    _gender_of(utterances)
    sessions = sorted({u.session for u in utterances if u.session is not None})
    missing = [u.id for u in utterances if u.session is None]
    if missing:
        raise DataError(f"loso_session: utterance {missing[0]!r} has no session")
    if len(sessions) < 2:
        raise DataError(f"loso_session needs at least 2 sessions, got {sessions}")
    genders = ("female", "male") if test_gender == "both" else (test_gender,)
    folds = []
    for session in sessions:
        held = [u for u in utterances if u.session == session]
        for gender in genders:
            other = "male" if gender == "female" else "female"
            fold = Fold(
                name=f"{session}_{gender[0].upper()}",
                train=[u for u in utterances if u.session != session],
                validation=[u for u in held if u.gender == other],
                test=[u for u in held if u.gender == gender],
            )
            untyped = [u.id for u in held if u.gender is None]
            if untyped:
                raise DataError(f"fold {fold.name!r}: utterance {untyped[0]!r} has no gender")
            folds.append(check_fold(fold, classes))
    return folds


def _logo(utterances, group_by="session", validation="next", classes=None):
    if validation not in ("next", "none"):
        raise ParameterError(f"logo validation must be 'next' or 'none', got {validation!r}")
    groups_of = {}
    for u in utterances:
        group = getattr(u, group_by)
        if group is None:
            raise DataError(f"logo: utterance {u.id!r} has no {group_by}")
        groups_of.setdefault(u.speaker, set()).add(group)
    for speaker, groups in groups_of.items():
        if speaker is not None and len(groups) > 1:
            raise DataError(f"logo: speaker {speaker!r} is in several groups {sorted(groups)}")
    groups = sorted({getattr(u, group_by) for u in utterances})
    if len(groups) < (3 if validation == "next" else 2):
        raise DataError(f"logo needs at least 3 groups (2 without validation), got {groups}")
    folds = []
    for index, group in enumerate(groups):
        held = groups[(index + 1) % len(groups)] if validation == "next" else None
        fold = Fold(
            name=f"group_{group}",
            train=[u for u in utterances if getattr(u, group_by) not in (group, held)],
            validation=[u for u in utterances if getattr(u, group_by) == held],
            test=[u for u in utterances if getattr(u, group_by) == group],
        )
        folds.append(check_fold(fold, classes))
    return folds


def _official(utterances, classes=None):
    by_split = collections.defaultdict(list)
    for u in utterances:
        if u.split not in ("train", "validation", "test"):
            raise DataError(f"official: utterance {u.id!r} has split {u.split!r}, not train/validation/test")
        by_split[u.split].append(u)
    if by_split["test"]:
        fold = Fold("official", by_split["train"], by_split["validation"], by_split["test"])
    else:
        # AFEW 5.0 and CHEAVD 2.0 publish no test labels: zhang2021_multicnn and zhao2018 report on validation.
        fold = Fold("official", by_split["train"], (), by_split["validation"])
    return [check_fold(fold, classes)]


def make_folds(protocol, utterances, **kw):
    """Build the folds of ``protocol`` over ``utterances``.

    Parameters
    ----------
    protocol : {"loso", "loso_session", "logo", "official"}
    utterances : list of Utterance
    classes : iterable of str, optional
        Classes every training set must contain (default: every label among
        ``utterances``).
    validation : str, optional
        ``loso``: ``"next_same_gender"`` (default), ``"next"`` or ``"none"``. The
        papers do not say how the validation speaker was chosen; keras_ser takes,
        deterministically, the next speaker in sorted order (cyclic) of the same
        gender as the test speaker (or of any gender with ``"next"``), so the
        training set keeps a gender balance close to the corpus's.
        ``logo``: ``"next"`` (default: the next group in sorted order) or ``"none"``.
    test_gender : {"female", "male", "both"}, optional
        ``loso_session``: which speaker of the held-out session is tested, the other
        validates. zhao2019 and zhao2018 do not say; default ``"female"``; ``"both"``
        gives two folds per session so that every speaker is tested once.
    group_by : str, optional
        ``logo``: the Utterance attribute holding the group (default ``"session"``,
        where the BAUM-1s reader stores the subject group).

    Returns
    -------
    list of Fold

    Raises
    ------
    ParameterError
        Unknown protocol or option.
    DataError
        A fold that shares a speaker between parts, or leaves a class without
        training utterances (the message names the fold and class).

    Examples
    --------
    >>> from keras_ser.data import load_corpus  # doctest: +SKIP
    >>> folds = make_folds("loso", load_corpus("emodb"))  # doctest: +SKIP
    >>> [f.name for f in folds][:2]  # doctest: +SKIP
    ['speaker_03', 'speaker_08']
    """
    if protocol not in PROTOCOLS:
        raise ParameterError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    utterances = list(utterances)
    if not utterances:
        raise DataError(f"make_folds({protocol!r}): no utterances")
    allowed = {
        "loso": {"validation", "classes"},
        "loso_session": {"test_gender", "classes"},
        "logo": {"group_by", "validation", "classes"},
        "official": {"classes"},
    }[protocol]
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ParameterError(f"make_folds({protocol!r}) got unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    if protocol == "loso" and kw.get("validation", "next_same_gender") not in VALIDATION_CHOICES:
        raise ParameterError(f"loso validation must be one of {VALIDATION_CHOICES}, got {kw['validation']!r}")
    if kw.get("classes") is None:
        kw["classes"] = sorted({u.label for u in utterances if u.label is not None})
    else:
        kw["classes"] = list(kw["classes"])
    builder = {"loso": _loso, "loso_session": _loso_session, "logo": _logo, "official": _official}[protocol]
    return builder(utterances, **kw)
