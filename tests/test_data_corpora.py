"""Corpus readers on tiny fake trees that copy the real layouts and label formats."""

import collections
import hashlib
import zipfile

import numpy as np
import pytest
import soundfile as sf

from keras_ser.data import (FAU_AIBO_CLASS_WEIGHTS, available_corpora, class_weights, label_names,
                            load_corpus)
from keras_ser.data import iemocap, ravdess
from keras_ser.data.splits import make_folds
from keras_ser.errors import DataError, ParameterError


def _wav(path, seconds=0.05, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.01 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)


# ---------------------------------------------------------------- IEMOCAP

_EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
_WDSEG = """ SFrm  EFrm    SegAScr Word
     0    15     -95425 <s>
    16    28     -61155 EXCUSE(2)
    29    40     -70440 ++BREATH++
    41    67    -270440 ME
    68    75     -30000 </s>
 Total score:    -527060
"""


def _iemocap_tree(root):
    """Sessions 1-5, one improvised and one scripted dialog each, both speakers talking."""
    base = root / "iemocap" / "IEMOCAP_full_release"
    codes = ["neu", "hap", "exc", "sad", "ang", "fru", "xxx"]
    for s in range(1, 6):
        session = base / f"Session{s}"
        for dialog in (f"Ses0{s}F_impro01", f"Ses0{s}M_script01_1"):
            blocks, lines = [], []
            for k, code in enumerate(codes):
                for gender in "FM":
                    utt = f"{dialog}_{gender}{k:03d}"
                    blocks.append(f"[{k}.0000 - {k}.9000]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]\n"
                                  f"C-E1:\tNeutral;\t()\nA-E1:\tval 3; act 2; dom  2;\t()\n")
                    lines.append(f"{utt} [{k:03d}.0000-{k:03d}.9000]: Excuse me number {k}.")
                    _wav(session / "sentences" / "wav" / dialog / f"{utt}.wav", 0.01)
                    wdseg = session / "sentences" / "ForcedAlignment" / dialog / f"{utt}.wdseg"
                    wdseg.parent.mkdir(parents=True, exist_ok=True)
                    wdseg.write_text(_WDSEG)
            ev = session / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
            ev.parent.mkdir(parents=True, exist_ok=True)
            ev.write_text(_EMO_HEADER + "\n".join(blocks))
            tr = session / "dialog" / "transcriptions" / f"{dialog}.txt"
            tr.parent.mkdir(parents=True, exist_ok=True)
            tr.write_text("\n".join(lines + [f"{dialog}_MXX0 [010.0000-011.0000]: [LAUGHTER]"]) + "\n")
    return root


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return _iemocap_tree(tmp_path_factory.mktemp("iemo"))


def test_iemocap_variants(iemocap_root):
    # Per dialog and speaker: one utterance of each code neu hap exc sad ang fru xxx.
    impro = load_corpus("iemocap", iemocap_root)
    assert len(impro) == 5 * 2 * 5  # 5 sessions, 2 speakers, neu hap exc sad ang
    assert collections.Counter(u.label for u in impro) == {"neutral": 10, "happiness": 20, "sadness": 10, "anger": 10}
    assert all("_impro" in u.id for u in impro)
    d1 = load_corpus("iemocap_dataset1", iemocap_root)
    assert len(d1) == 5 * 2 * 2 * 4 and not any(u.id.endswith("002") for u in d1)  # exc (index 2) dropped
    assert {"_impro" in u.id for u in d1} == {True, False}
    d2 = load_corpus("iemocap_dataset2", iemocap_root)
    assert collections.Counter(u.label for u in d2)["happiness"] == 40
    imp1 = load_corpus("iemocap_improvised_dataset1", iemocap_root)
    assert len(imp1) == 5 * 2 * 4
    assert label_names("iemocap_dataset2") == ["neutral", "happiness", "sadness", "anger"]
    with pytest.raises(ParameterError):
        iemocap.load(iemocap_root, variant="dataset3")


def test_iemocap_speakers_words_and_folds(iemocap_root):
    utts = {u.id: u for u in load_corpus("iemocap", iemocap_root)}
    u = utts["Ses03F_impro01_M004"]  # a male speaking in a dialog led by the female actor
    assert (u.speaker, u.gender, u.session, u.label) == ("Ses03M", "male", "Ses03", "anger")
    assert u.transcript == "Excuse me number 4."
    assert u.words == (("EXCUSE", 0.16, 0.29), ("ME", 0.41, 0.68))
    assert u.corpus == "iemocap"
    folds = make_folds("loso_session", list(utts.values()))
    assert [f.name for f in folds] == ["Ses01_F", "Ses02_F", "Ses03_F", "Ses04_F", "Ses05_F"]
    assert {x.speaker for x in folds[2].test} == {"Ses03F"}
    assert {x.speaker for x in folds[2].validation} == {"Ses03M"}


def test_iemocap_missing_and_broken(tmp_path, iemocap_root):
    with pytest.raises(DataError, match="Session1"):
        load_corpus("iemocap", tmp_path)
    broken = _iemocap_tree(tmp_path / "b")
    (broken / "iemocap/IEMOCAP_full_release/Session2/sentences/wav/Ses02F_impro01/Ses02F_impro01_F000.wav").unlink()
    with pytest.raises(DataError, match="Ses02F_impro01_F000.wav"):
        load_corpus("iemocap", broken)


# ---------------------------------------------------------------- FAU Aibo

def _fau_tree(root, extra_line=None):
    base = root / "fau_aibo"
    lines = []
    codes = "AENPR"
    for school, n_children in (("Ohm", 3), ("Mont", 2)):
        for child in range(1, n_children + 1):
            for k, code in enumerate(codes):
                chunk = f"{school}_{child:02d}_{k:03d}_00"
                _wav(base / "wav" / f"{chunk}.wav", 0.01)
                lines.append(f"{chunk} {code} 1.000000")
    if extra_line:
        lines.append(extra_line)
    label = base / "labels" / "IS2009EmotionChallenge" / "chunk_labels_5cl_corpus.txt"
    label.parent.mkdir(parents=True)
    label.write_text("\n".join(lines) + "\n")
    return root


def test_fau_aibo(tmp_path):
    utts = load_corpus("fau_aibo", _fau_tree(tmp_path))
    assert len(utts) == 25
    assert {u.split for u in utts if u.speaker.startswith("Ohm")} == {"train"}
    assert {u.split for u in utts if u.speaker.startswith("Mont")} == {"test"}
    assert len({u.speaker for u in utts}) == 5
    assert label_names("fau_aibo") == ["anger", "emphatic", "neutral", "positive", "rest"]
    (fold,) = make_folds("official", utts)
    assert len(fold.train) == 15 and len(fold.test) == 10 and fold.validation == ()


def test_fau_aibo_bad_code(tmp_path):
    _wav(tmp_path / "fau_aibo" / "wav" / "Ohm_09_000_00.wav", 0.01)
    with pytest.raises(DataError, match="line 26: unknown class code 'X'"):
        load_corpus("fau_aibo", _fau_tree(tmp_path, "Ohm_09_000_00 X 1.0"))


def test_table4_weights_follow_eq11():
    """zhao2019 Table 4 is eq. 11 on the Ohm (training) counts of Table 2, divided by 10."""
    table2_train = {"anger": 881, "emphatic": 2093, "neutral": 5590, "positive": 674, "rest": 721}
    labels = [name for name, n in table2_train.items() for _ in range(n)]
    weights = class_weights(labels, label_names("fau_aibo"))
    total = sum(table2_train.values())
    for index, name in enumerate(label_names("fau_aibo")):
        assert weights[index] == pytest.approx(total / table2_train[name])
        assert round(weights[index] / 10, 1) == FAU_AIBO_CLASS_WEIGHTS[name]


def test_class_weights_errors():
    with pytest.raises(DataError, match=r"\['c'\]"):
        class_weights(["a", "c"], ["a", "b"])
    with pytest.raises(DataError, match=r"\['b'\]"):
        class_weights(["a"], ["a", "b"])


# ---------------------------------------------------------------- AFEW, BAUM-1s, CHEAVD

def test_afew(tmp_path):
    for part in ("Train", "Val"):
        for emotion in ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"):
            for k in range(2):
                _wav(tmp_path / "afew" / part / emotion / f"{emotion}{k:06d}.wav", 0.01)
                (tmp_path / "afew" / part / emotion / f"{emotion}{k:06d}.avi").write_bytes(b"")
    utts = load_corpus("afew", tmp_path)
    assert len(utts) == 28
    assert collections.Counter(u.split for u in utts) == {"train": 14, "validation": 14}
    assert {u.label for u in utts} == set(label_names("afew"))
    assert all(u.speaker is None for u in utts)
    (fold,) = make_folds("official", utts)
    assert {u.split for u in fold.test} == {"validation"}
    (tmp_path / "afew" / "Val" / "Contempt").mkdir()
    with pytest.raises(DataError, match="Contempt"):
        load_corpus("afew", tmp_path)


def test_baum1s(tmp_path):
    base = tmp_path / "baum1s"
    rows = ["clip,emotion"]
    emotions = ["anger", "Disgust", "fear", "joy", "sadness", "surprise", "thinking"]
    for s in range(1, 12):
        for k, emotion in enumerate(emotions):
            clip = f"S{s:03d}_{k:03d}"
            _wav(base / "wav" / f"{clip}.wav", 0.01)
            rows.append(f"{clip},{emotion}")
    (base / "labels.csv").write_text("\n".join(rows) + "\n")
    utts = load_corpus("baum1s", tmp_path)
    assert len(utts) == 11 * 6  # "thinking" skipped
    assert {u.label for u in utts} == set(label_names("baum1s"))
    # 11 subjects into 5 groups: sizes 3, 2, 2, 2, 2 in sorted order.
    group_of = {u.speaker: u.session for u in utts}
    assert [sum(g == f"group{i}" for g in group_of.values()) for i in range(1, 6)] == [3, 2, 2, 2, 2]
    assert group_of["S001"] == group_of["S003"] == "group1" and group_of["S004"] == "group2"
    folds = make_folds("logo", utts)
    assert len(folds) == 5
    assert collections.Counter(u.speaker for f in folds for u in f.test) == collections.Counter(
        u.speaker for u in utts)
    (base / "groups.csv").write_text("subject,group\n" + "\n".join(f"S{s:03d},g{s % 3}" for s in range(1, 12)))
    assert {u.session for u in load_corpus("baum1s", tmp_path)} == {"g0", "g1", "g2"}


def test_cheavd(tmp_path):
    base = tmp_path / "cheavd"
    codes = ["Ang", "Dis", "Hap", "Sad", "Sup", "Anx", "Wor", "Neu"]
    for part in ("train", "val"):
        rows = ["name,emotion"]
        for k, code in enumerate(codes):
            _wav(base / part / f"{part}_{k:04d}.wav", 0.01)
            rows.append(f"{part}_{k:04d}.wav,{code}")
        (base / f"{part}.csv").write_text("\n".join(rows) + "\n")
    _wav(base / "test" / "test_0000.wav", 0.01)  # unlabelled challenge test set
    utts = load_corpus("cheavd", tmp_path)
    assert collections.Counter(u.split for u in utts) == {"train": 8, "validation": 8}
    assert [u.label for u in utts if u.split == "train"] == label_names("cheavd")
    (base / "val.csv").write_text("name,emotion\nval_0000,Bored\n")
    with pytest.raises(DataError, match="val.csv, line 2: unknown emotion 'Bored'"):
        load_corpus("cheavd", tmp_path)


# ---------------------------------------------------------------- SEWA

def test_sewa(tmp_path):
    base = tmp_path / "sewa"
    for name in ("Train_01", "Train_02", "Devel_01", "Test_01"):
        _wav(base / "audio" / f"{name}.wav", 0.05)
        if name == "Test_01":
            continue
        times = np.arange(5) * 0.1
        rows = [f"{name};{t:.2f};{0.1 * k:.6f};{-0.1 * k:.6f};{0.05:.6f}" for k, t in enumerate(times)]
        (base / "labels").mkdir(exist_ok=True)
        (base / "labels" / f"{name}.csv").write_text("\n".join(rows) + "\n")
    utts = load_corpus("sewa", tmp_path)
    assert [u.id for u in utts] == ["Devel_01", "Train_01", "Train_02"]
    assert [u.split for u in utts] == ["validation", "train", "train"]
    times, arousal = utts[1].continuous["arousal"]
    np.testing.assert_allclose(times, [0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(arousal, [0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(utts[1].continuous["valence"][1], [0, -0.1, -0.2, -0.3, -0.4])
    assert label_names("sewa") == ["arousal", "valence", "liking"]
    assert all(u.label is None for u in utts)
    (fold,) = make_folds("official", utts)
    assert [u.id for u in fold.test] == ["Devel_01"]
    (base / "labels" / "Train_02.csv").write_text("Train_02;0.0;0.1;0.1;0.1\nTrain_02;0.0;0.1;x;0.1\n")
    with pytest.raises(DataError, match="Train_02.csv, line 2"):
        load_corpus("sewa", tmp_path)


def _sewa_recording(base, name):
    _wav(base / "audio" / f"{name}.wav", 0.05)
    (base / "labels").mkdir(parents=True, exist_ok=True)
    (base / "labels" / f"{name}.csv").write_text(f"{name};0.00;0.1;0.2;0.3\n{name};0.10;0.1;0.2;0.3\n")


def test_sewa_transcriptions_and_word_timings(tmp_path):
    base = tmp_path / "sewa"
    for name in ("Train_01", "Train_02", "Devel_01"):
        _sewa_recording(base, name)
    (base / "transcriptions").mkdir()
    (base / "transcriptions" / "Train_01.csv").write_text(
        "1.20;2.50;'Hallo, wie geht's?'\n3.00;3.40;'<filler>'\n4.00;5.10;'Gut; danke.'\n", encoding="utf-8")
    (base / "words").mkdir()
    # The tzirakis2021 authors' forced-alignment layout (id;start;end;word) ...
    (base / "words" / "Train_01.csv").write_text(
        "s0w1;1.2;1.55;hallo\ns0w2;1.55;1.8;wie\ns0w3;1.8;2.5;geht's\n\ns2w1;4.0;4.3;gut\n", encoding="utf-8")
    # ... and start;end;word with a header.
    (base / "words" / "Devel_01.csv").write_text("start;end;word\n0.5;0.9;schön\n", encoding="utf-8")
    utts = {u.id: u for u in load_corpus("sewa", tmp_path)}
    assert utts["Train_01"].transcript == "Hallo, wie geht's? Gut; danke."
    assert utts["Train_01"].words == (("hallo", 1.2, 1.55), ("wie", 1.55, 1.8), ("geht's", 1.8, 2.5),
                                      ("gut", 4.0, 4.3))
    assert utts["Devel_01"].words == (("schön", 0.5, 0.9),) and utts["Devel_01"].transcript is None
    assert utts["Train_02"].words is None and utts["Train_02"].transcript is None
    (base / "words" / "Train_02.csv").write_text("0.0;0.4;ja\n0.3;0.2;nein\n")
    with pytest.raises(DataError, match="Train_02.csv, line 2: need 0 <= start <= end"):
        load_corpus("sewa", tmp_path)
    (base / "words" / "Train_02.csv").write_text("0.5;0.9;ja\n0.3;0.4;nein\n")
    with pytest.raises(DataError, match="Train_02.csv, line 2: 'nein' starts before the previous"):
        load_corpus("sewa", tmp_path)
    (base / "words" / "Train_02.csv").write_text("0.5;0.9;ja\n0.3;nein\n")
    with pytest.raises(DataError, match="Train_02.csv, line 2: expected"):
        load_corpus("sewa", tmp_path)
    (base / "words" / "Train_02.csv").unlink()
    (base / "transcriptions" / "Train_02.csv").write_text("1.0;2.0;'ok'\nbroken line\n")
    with pytest.raises(DataError, match="transcription .*Train_02.csv, line 2"):
        load_corpus("sewa", tmp_path)


# ---------------------------------------------------------------- RAVDESS, manifest, registry

def test_ravdess(tmp_path):
    for actor in (1, 2, 3):
        for emotion in range(1, 9):
            _wav(tmp_path / "ravdess" / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-02-01-{actor:02d}.wav", 0.01)
        _wav(tmp_path / "ravdess" / f"Actor_{actor:02d}" / f"03-02-03-01-01-01-{actor:02d}.wav", 0.01)  # song
    utts = load_corpus("ravdess", tmp_path)
    assert len(utts) == 24
    by_id = {u.id: u for u in utts}
    u = by_id["03-01-05-01-02-01-02"]
    assert (u.label, u.speaker, u.gender, u.text_id) == ("anger", "02", "female", "02")
    assert u.transcript == "Dogs are sitting by the door"
    assert by_id["03-01-01-01-02-01-01"].gender == "male"
    assert [u.label for u in utts if u.speaker == "01"] == label_names("ravdess")
    _wav(tmp_path / "ravdess" / "Actor_01" / "03-01-09-01-02-01-01.wav", 0.01)
    with pytest.raises(DataError, match="03-01-09-01-02-01-01.wav.*emotion code '09'"):
        load_corpus("ravdess", tmp_path)


def test_ravdess_download_checks_the_md5(tmp_path):
    archive = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for actor in (1, 2):
            wav = tmp_path / "src" / f"03-01-05-01-02-01-{actor:02d}.wav"
            _wav(wav, 0.01)
            zf.write(wav, f"Actor_{actor:02d}/{wav.name}")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    data = tmp_path / "data"
    with pytest.raises(DataError, match=f"download from .* failed: .*has md5 {md5}, not the expected file_hash "
                                        f"{ravdess.FILE_HASH}"):
        load_corpus("ravdess", data, url=archive.as_uri())      # Zenodo's MD5 is not this archive's
    assert not list((data / "ravdess").glob("Actor_*"))
    utts = load_corpus("ravdess", data, url=archive.as_uri(), file_hash=md5)
    assert [(u.speaker, u.label) for u in utts] == [("01", "anger"), ("02", "anger")]
    assert ravdess.URL.startswith("https://zenodo.org/records/1188976/") and ravdess.LICENSE == "CC BY-NC-SA 4.0"


def test_manifest(tmp_path):
    _wav(tmp_path / "audio" / "a.wav", 0.01)
    _wav(tmp_path / "audio" / "b.wav", 0.01)
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,label,speaker,gender,split\naudio/a.wav,happy,s1,F,train\n"
                        f"{tmp_path / 'audio' / 'b.wav'},sad,s2,m,val\n")
    by_label = {u.label: u for u in load_corpus(f"manifest:{csv_path}")}
    a, b = by_label["happy"], by_label["sad"]
    assert a.path == tmp_path / "audio" / "a.wav" and a.gender == "female" and a.split == "train"
    assert b.gender == "male" and b.split == "validation" and b.session is None
    assert label_names(f"manifest:{csv_path}") == ["happy", "sad"]
    csv_path.write_text("path,speaker\naudio/a.wav,s1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['label'\]"):
        load_corpus(f"manifest:{csv_path}")
    csv_path.write_text("path,label,speaker\naudio/zzz.wav,x,s1\n")
    with pytest.raises(DataError, match="line 2: audio file .*zzz.wav not found"):
        load_corpus(f"manifest:{csv_path}")


def test_registry_and_missing_corpora(tmp_path):
    names = available_corpora()
    assert {"emodb", "iemocap", "iemocap_dataset1", "iemocap_dataset2", "fau_aibo", "afew", "baum1s",
            "cheavd", "sewa", "ravdess"} <= set(names)
    for name in names:
        if name.startswith("emodb"):  # EMO-DB downloads itself when absent
            continue
        folder = name.split("_")[0] if name.startswith("iemocap") else name
        options = {"download_if_missing": False} if name == "ravdess" else {}
        with pytest.raises(DataError, match=f"corpus '{folder}' not found: expected {tmp_path}/{folder}"):
            load_corpus(name, tmp_path, **options)
        assert label_names(name)
    with pytest.raises(ParameterError, match="unknown corpus 'timit'"):
        load_corpus("timit")
    with pytest.raises(ParameterError):
        load_corpus("manifest:")
