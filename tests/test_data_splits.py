"""Speaker-independent protocols on EMO-DB and on hand-made corpora."""

import collections

import pytest

from keras_ser.data import Utterance, load_corpus
from keras_ser.data.splits import Fold, check_fold, make_folds
from keras_ser.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def emodb_utts(emodb_dir):
    return load_corpus("emodb", emodb_dir.parent, download_if_missing=False)


def _check_partition(folds, utterances):
    for fold in folds:
        parts = [{u.speaker for u in p} for p in (fold.train, fold.validation, fold.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        ids = [u.id for p in (fold.train, fold.validation, fold.test) for u in p]
        assert sorted(ids) == sorted(u.id for u in utterances)


def test_loso_emodb(emodb_utts):
    folds = make_folds("loso", emodb_utts)
    assert len(folds) == 10
    tested = collections.Counter(u.speaker for f in folds for u in f.test)
    per_speaker = collections.Counter(u.speaker for u in emodb_utts)
    assert tested == per_speaker  # each speaker held out exactly once, entirely
    assert [len({u.speaker for u in f.test}) for f in folds] == [1] * 10
    _check_partition(folds, emodb_utts)
    # Next speaker of the same gender in sorted order, worked out by hand from the README
    # (male 03 10 11 12 15, female 08 09 13 14 16).
    expected = {"03": "10", "08": "09", "09": "13", "10": "11", "11": "12", "12": "15",
                "13": "14", "14": "16", "15": "03", "16": "08"}
    got = {f.test[0].speaker: f.validation[0].speaker for f in folds}
    assert got == expected
    assert all(len({u.speaker for u in f.validation}) == 1 for f in folds)
    assert folds[0].name == "speaker_03"


def test_loso_next_and_none(emodb_utts):
    folds = make_folds("loso", emodb_utts, validation="next")
    assert {f.test[0].speaker: f.validation[0].speaker for f in folds}["03"] == "08"
    assert {f.test[0].speaker: f.validation[0].speaker for f in folds}["16"] == "03"
    folds = make_folds("loso", emodb_utts, validation="none")
    assert all(f.validation == () for f in folds)
    assert all(len(f.train) + len(f.test) == 535 for f in folds)


def test_loso_is_deterministic(emodb_utts):
    a = make_folds("loso", emodb_utts)
    b = make_folds("loso", list(reversed(emodb_utts)))
    assert [sorted(u.id for u in f.train) for f in a] == [sorted(u.id for u in f.train) for f in b]


def test_class_empty_in_training_is_refused(emodb_utts):
    # Keep disgust only for speaker 03: the fold testing 03 has no disgust to train on.
    subset = [u for u in emodb_utts if u.label != "disgust" or u.speaker == "03"]
    with pytest.raises(DataError, match="speaker_03.*'disgust'"):
        make_folds("loso", subset)
    # Disgust only for speaker 10, the validation speaker of fold speaker_03.
    subset = [u for u in emodb_utts if u.label != "disgust" or u.speaker == "10"]
    with pytest.raises(DataError, match="speaker_03.*'disgust'"):
        make_folds("loso", subset)
    # A class named in `classes` that never occurs is refused too.
    with pytest.raises(DataError, match="'calm'"):
        make_folds("loso", emodb_utts, classes=["anger", "calm"])


def _utt(i, speaker, gender, label, **kw):
    return Utterance(id=f"u{i:04d}", path=f"/x/u{i}.wav", label=label, speaker=speaker,
                     gender=gender, corpus="fake", **kw)


def _iemocap_like():
    utts, i = [], 0
    for s in range(1, 6):
        for g in ("female", "male"):
            for label in ("neutral", "happiness", "sadness", "anger"):
                for _ in range(2):
                    utts.append(_utt(i, f"Ses0{s}{g[0].upper()}", g, label, session=f"Ses0{s}"))
                    i += 1
    return utts


def test_loso_session():
    utts = _iemocap_like()
    folds = make_folds("loso_session", utts)
    assert [f.name for f in folds] == ["Ses01_F", "Ses02_F", "Ses03_F", "Ses04_F", "Ses05_F"]
    for n, fold in enumerate(folds, 1):
        assert {u.speaker for u in fold.test} == {f"Ses0{n}F"}
        assert {u.speaker for u in fold.validation} == {f"Ses0{n}M"}
        assert {u.session for u in fold.train} == {f"Ses0{k}" for k in range(1, 6) if k != n}
        assert len({u.speaker for u in fold.train}) == 8  # 8 speakers from 4 sessions (zhao2019 Sec. IV-A)
    _check_partition(folds, utts)
    both = make_folds("loso_session", utts, test_gender="both")
    assert len(both) == 10
    assert collections.Counter(u.speaker for f in both for u in f.test) == collections.Counter(
        u.speaker for u in utts)
    male = make_folds("loso_session", utts, test_gender="male")
    assert {u.gender for u in male[0].test} == {"male"}
    with pytest.raises(ParameterError):
        make_folds("loso_session", utts, test_gender="x")


def _groups_like():
    utts, i = [], 0
    for group in range(1, 6):
        for subject in range(3):
            for label in ("anger", "happiness", "sadness"):
                utts.append(_utt(i, f"S{group}{subject}", "female", label, session=f"group{group}"))
                i += 1
    return utts


def test_logo():
    utts = _groups_like()
    folds = make_folds("logo", utts)
    assert [f.name for f in folds] == [f"group_group{g}" for g in range(1, 6)]
    for g, fold in enumerate(folds, 1):
        assert {u.session for u in fold.test} == {f"group{g}"}
        assert {u.session for u in fold.validation} == {f"group{g % 5 + 1}"}
    _check_partition(folds, utts)
    assert all(f.validation == () for f in make_folds("logo", utts, validation="none"))
    # A subject in two groups breaks subject independence.
    bad = utts + [_utt(999, "S10", "female", "anger", session="group2")]
    with pytest.raises(DataError, match="'S10'.*several groups"):
        make_folds("logo", bad)


def test_official():
    utts = [_utt(i, f"spk{i % 4}", "male", ["a", "b"][i % 2], split=["train", "train", "validation", "test"][i % 4])
            for i in range(16)]
    (fold,) = make_folds("official", utts)
    assert {u.split for u in fold.train} == {"train"}
    assert {u.split for u in fold.validation} == {"validation"}
    assert {u.split for u in fold.test} == {"test"}
    # Without a labelled test partition (AFEW, CHEAVD) the validation set is the test set.
    no_test = [u for u in utts if u.split != "test"]
    (fold,) = make_folds("official", no_test)
    assert fold.validation == () and {u.split for u in fold.test} == {"validation"}
    with pytest.raises(DataError, match="u0000.*split None"):
        make_folds("official", [_utt(0, "s", None, "a")])


def test_official_speaker_overlap_refused():
    utts = [_utt(0, "same", None, "a", split="train"), _utt(1, "same", None, "a", split="test")]
    with pytest.raises(DataError, match="not speaker-independent.*'same'"):
        make_folds("official", utts)


def test_check_fold_and_bad_arguments():
    a = _utt(0, "s1", "male", "x")
    b = _utt(1, "s1", "male", "x")
    with pytest.raises(DataError, match="fold 'f'.*'s1'.*train and test"):
        check_fold(Fold("f", [a], [], [b]))
    with pytest.raises(ParameterError, match="unknown protocol"):
        make_folds("kfold", [a])
    with pytest.raises(ParameterError, match="unknown option"):
        make_folds("loso", [a], test_gender="female")
    with pytest.raises(ParameterError):
        make_folds("loso", [a], validation="random")
    with pytest.raises(DataError, match="no utterances"):
        make_folds("loso", [])
    with pytest.raises(DataError, match="at least 3 speakers"):
        make_folds("loso", [a, _utt(2, "s2", "male", "x")])


def test_loso_without_genders_uses_next_speaker():
    utts = [_utt(i, f"Ohm_{i % 4:02d}", None, ["a", "b"][i // 4 % 2]) for i in range(16)]
    folds = make_folds("loso", utts)
    assert {f.test[0].speaker: f.validation[0].speaker for f in folds} == {
        "Ohm_00": "Ohm_01", "Ohm_01": "Ohm_02", "Ohm_02": "Ohm_03", "Ohm_03": "Ohm_00"}


def test_utterance_with_continuous_labels_is_hashable():
    import numpy as np

    u = Utterance(id="Train_01", path="a.wav", label=None, speaker="Train_01",
                  continuous={"arousal": (np.zeros(3), np.ones(3))})
    v = Utterance(id="Train_01", path="a.wav", label=None, speaker="Train_01")
    assert hash(u) == hash(v) and u == v
    with pytest.raises(ParameterError, match="gender"):
        Utterance(id="x", path="a.wav", label="a", speaker="s", gender="F")
