"""EMO-DB reader on the real corpus (../shared/data/emodb) and on fake trees."""

import collections
import hashlib
import logging
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf

from keras_ser.data import clip_words, label_names, load_corpus
from keras_ser.data import emodb
from keras_ser.errors import DataError, ParameterError

# From the corpus README, independent of the reader.
README_CLASS_COUNTS = {"W": 127, "L": 81, "N": 79, "F": 71, "A": 69, "T": 62, "E": 46}
README_SPEAKER_COUNTS = {"03": 49, "08": 58, "09": 43, "10": 38, "11": 55, "12": 35, "13": 61,
                         "14": 69, "15": 56, "16": 71}
README_MALE = {"03", "10", "11", "12", "15"}
GERMAN_TO_ENGLISH = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                     "T": "sadness", "N": "neutral"}


@pytest.fixture(scope="module")
def utterances(emodb_dir):
    return load_corpus("emodb", emodb_dir.parent, download_if_missing=False)


def test_counts_speakers_genders(utterances):
    assert len(utterances) == 535
    assert len({u.id for u in utterances}) == 535
    counts = collections.Counter(u.label for u in utterances)
    assert counts == {GERMAN_TO_ENGLISH[c]: n for c, n in README_CLASS_COUNTS.items()}
    assert collections.Counter(u.speaker for u in utterances) == README_SPEAKER_COUNTS
    for u in utterances:
        assert u.gender == ("male" if u.speaker in README_MALE else "female")
        assert u.corpus == "emodb" and u.path.is_file()
        assert u.path.stem == u.id
        assert u.session is None and u.split is None
    assert set(label_names("emodb")) == set(GERMAN_TO_ENGLISH.values())
    assert len(label_names("emodb")) == 7


def test_text_codes_and_transcripts(utterances):
    assert {u.text_id for u in utterances} == {"a01", "a02", "a04", "a05", "a07",
                                              "b01", "b02", "b03", "b09", "b10"}
    by_id = {u.id: u for u in utterances}
    assert by_id["03a01Fa"].transcript == "Der Lappen liegt auf dem Eisschrank."
    assert by_id["03a01Fa"].label == "happiness"
    assert by_id["16b10Wb"].text_id == "b10"
    for u in utterances:
        assert u.id[2:5] == u.text_id
        if u.words is not None:
            # A prefix of the sentence: words after the 2-s cut are dropped.
            spoken = [w for w, _, _ in u.words]
            assert spoken and spoken == emodb.sentence_words(u.text_id)[: len(spoken)]


def test_word_timings_by_hand(utterances):
    by_id = {u.id: u for u in utterances}
    # silb/03a01Fa.silb: der .080080, la .244195, pen .427094, liegt .643428, auf .865570,
    # dem .981748, eis 1.146357, schrank 1.404778, "." 1.841390 (start times, "." = end).
    expected = [("Der", 0.080080, 0.244195), ("Lappen", 0.244195, 0.643428),
                ("liegt", 0.643428, 0.865570), ("auf", 0.865570, 0.981748),
                ("dem", 0.981748, 1.146357), ("Eisschrank", 1.146357, 1.841390)]
    np.testing.assert_allclose([w[1:] for w in by_id["03a01Fa"].words], [w[1:] for w in expected])
    # silb/03b09La.silb: "... das .387115, e .556618, ben .697344, weg .822430, bring 1.004774,
    # gn 1.234149, und 1.309109 ...": "gn" is the reduced ending of wegbringen.
    words = dict((w, (s, e)) for w, s, e in by_id["03b09La"].words)
    np.testing.assert_allclose(words["eben"], (0.556618, 0.822430))
    np.testing.assert_allclose(words["wegbringen"], (0.822430, 1.309109))
    # 13a01Wb.silb is empty in the release.
    assert by_id["13a01Wb"].words is None
    assert sum(u.words is None for u in utterances) == 1


def test_word_times_are_start_times_matching_speech(utterances):
    """The first word starts at the speech onset (energy), the last ends at its offset."""
    onset_gap, offset_gap = [], []
    for u in utterances[::3]:
        if u.words is None:
            continue
        audio, sr = sf.read(u.path)
        hop = int(0.01 * sr)
        energy = np.sqrt(np.mean(audio[: len(audio) // hop * hop].reshape(-1, hop) ** 2, axis=1))
        active = np.flatnonzero(energy > 0.02 * energy.max())
        onset_gap.append(abs(active[0] * 0.01 - u.words[0][1]))
        if (np.flatnonzero(audio)[-1] + 1) / sr < 1.95:  # zero-padded: whole utterance present
            offset_gap.append(abs((active[-1] + 1) * 0.01 - u.words[-1][2]))
    assert np.median(onset_gap) < 0.03
    assert len(offset_gap) > 20 and np.median(offset_gap) < 0.06
    for u in utterances:
        if u.words:
            starts = [s for _, s, _ in u.words]
            assert starts == sorted(starts)
            assert all(e > s for _, s, e in u.words)


def test_word_lists_of_irregular_segmentations(utterances):
    """Hand-read silb/ files whose syllables do not spell the words one by one."""
    by_id = {u.id: u for u in utterances}
    # 09a04Fd.silb: heu .050732, te, abend .273712, md, könnte .484155, t, ich .658525,
    # s .748648 (all of "es"), ihm .812064, sa .932423, gen, "." 1.356001.
    assert by_id["09a04Fd"].words == (
        ("Heute", 0.050732, 0.273712), ("abend", 0.273712, 0.484155), ("könnte", 0.484155, 0.658525),
        ("ich", 0.658525, 0.748648), ("es", 0.748648, 0.812064), ("ihm", 0.812064, 0.932423),
        ("sagen", 0.932423, 1.356001))
    # 11b02Ab.silb repeats "haben haben", "gera gera de", "gehen gehen": the word starts at the
    # first of the pair (sie .077159, haben .237313, es .417566, gera .491483, ... gehen 1.551625,
    # sie 1.727348, wie 1.823959, der 1.905656, run 2.015235, ter, "." 2.399738): "wieder" (to
    # 2.015235) is cut at 2 s and "runter", starting after the cut, is dropped.
    words = by_id["11b02Ab"].words
    assert [w for w, _, _ in words] == ["Sie", "haben", "es", "gerade", "hochgetragen", "und",
                                        "jetzt", "gehen", "sie", "wieder"]
    starts = {w: s for w, s, _ in words}
    np.testing.assert_allclose([starts["haben"], starts["gerade"], starts["gehen"]],
                               [0.237313, 0.491483, 1.551625])
    assert words[-1] == ("wieder", 1.823959, 2.0)


def test_every_word_starts_on_a_syllable_spelling_its_beginning(utterances, emodb_dir):
    """The grouping rule, checked on every file: each word starts at a silb syllable (its start
    time) whose first letter is the word's. The only exceptions are three reduced "es" spoken
    as "s"."""
    exceptions = []
    for u in utterances:
        if not u.words:
            continue
        lines = (emodb_dir / "silb" / f"{u.id}.silb").read_bytes().decode("latin-1").split("\n")
        syllable_at = {round(float(f[0]), 6): f[1].lower() for f in map(str.split, lines) if len(f) == 2}
        for word, start, _ in u.words:
            syllable = syllable_at[round(start, 6)]
            if syllable[0] != word[0].lower():
                exceptions.append((u.id, word, syllable))
    assert sorted(exceptions) == [("09a04Fd", "es", "s"), ("09a04La", "es", "s"), ("11a04Ac", "es", "s")]


def test_words_past_the_cut_are_dropped_and_counted(emodb_dir, caplog):
    # silb/03b03Nb.silb: ... hau 1.714167, se 1.836854, ge 1.924710, fahren 2.027714, rn 2.311150,
    # und 2.332181, ha, be, ag, nes, be, sucht, "." 3.616920: "gefahren" starts before the 2-s
    # cut and is cut at 2.0; "und habe Agnes besucht" are lost.
    words, dropped = emodb.utterance_words(emodb_dir / "silb" / "03b03Nb.silb", "b03", 2.0)
    assert dropped == 4
    assert words[-2:] == (("Hause", 1.714167, 1.92471), ("gefahren", 1.92471, 2.0))
    full, none_dropped = emodb.utterance_words(emodb_dir / "silb" / "03b03Nb.silb", "b03", 3.7)
    assert none_dropped == 0 and full[-1] == ("besucht", 3.062297, 3.61692)
    # The loader's count equals the words of each sentence missing from its record.
    with caplog.at_level("INFO", logger="keras_ser.data.emodb"):
        utts = load_corpus("emodb", emodb_dir.parent, download_if_missing=False)
    lost = {u.id: len(emodb.sentence_words(u.text_id)) - len(u.words) for u in utts if u.words}
    assert lost["03b03Nb"] == 4
    total, files = sum(lost.values()), sum(n > 0 for n in lost.values())
    assert total > 0
    assert f"{total} words in {files} utterances start after the end of the audio" in caplog.text


def test_words_lie_within_the_audio(utterances):
    checked = 0
    for u in utterances:
        if not u.words:
            continue
        duration = sf.info(u.path).duration
        times = np.array([(s, e) for _, s, e in u.words])
        assert np.all(times[:, 0] >= 0) and np.all(times[:, 1] <= duration + 1e-9), u.id
        assert np.all(times[:, 1] > times[:, 0]), u.id
        # Consecutive words: each starts where (or, after a pause, after) the previous ends.
        assert np.all(np.diff(times[:, 0]) > 0) and np.all(times[1:, 0] >= times[:-1, 1] - 1e-9), u.id
        checked += 1
    assert checked == 534


def test_clip_words():
    words = (("a", 0.1, 0.5), ("b", 1.8, 2.3), ("c", 2.3, 2.9))
    assert clip_words(words, 2.0) == (("a", 0.1, 0.5), ("b", 1.8, 2.0))
    assert clip_words(None, 2.0) is None
    with pytest.raises(ParameterError):
        clip_words(words, 0)


def _fake_tree(root, names):
    wav = root / "emodb" / "wav"
    wav.mkdir(parents=True)
    for name in names:
        sf.write(wav / name, np.full(160, 0.01, dtype=np.float32), 16000)
    return root


def test_unknown_emotion_code_names_file(tmp_path):
    root = _fake_tree(tmp_path, ["03a01Fa.wav", "03a01Xa.wav"])
    with pytest.raises(DataError, match="03a01Xa.wav.*emotion code 'X'"):
        load_corpus("emodb", root, download_if_missing=False)


def test_fake_tree_without_silb(tmp_path):
    root = _fake_tree(tmp_path, ["08b10Lb.wav"])
    (u,) = load_corpus("emodb", root, download_if_missing=False)
    assert (u.label, u.speaker, u.gender, u.text_id, u.words) == ("boredom", "08", "female", "b10", None)


def test_missing_corpus_error_names_folder(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "emodb" / "wav")) as info:
        load_corpus("emodb", tmp_path, download_if_missing=False)
    assert "KERAS_SER_DATA" in str(info.value) and emodb.URL in str(info.value)


def test_failed_download_gives_clear_error(tmp_path):
    calls = []

    def offline(target, **options):
        calls.append((target, options))
        raise OSError("network unreachable")

    with pytest.raises(DataError, match="download .* failed: network unreachable"):
        emodb.load(tmp_path, downloader=offline)
    assert calls == [(tmp_path / "emodb", {"url": emodb.URL, "file_hash": None})]


def _release_zip(path, names, wrapped=False):
    """A tiny stand-in for the EMO-DB release zip: wav/ (and silb/) at its top, or in one folder."""
    source = path.parent / "release"
    prefix = "download/" if wrapped else ""
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            wav = source / name
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, np.full(160, 0.01, dtype=np.float32), 16000)
            zf.write(wav, f"{prefix}wav/{name}")
        zf.writestr(f"{prefix}silb/readme.txt", "segmentations")
    return path


@pytest.mark.parametrize("wrapped", [False, True])
def test_download_checks_the_file_hash(tmp_path, wrapped):
    archive = _release_zip(tmp_path / "download.zip", ["03a01Fa.wav", "16b10Tb.wav"], wrapped=wrapped)
    url = archive.as_uri()
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    data = tmp_path / "data"
    with pytest.raises(DataError, match=f"has sha256 {good}, not the expected file_hash {'0' * 64}"):
        load_corpus("emodb", data, url=url, file_hash="0" * 64)
    assert not (data / "emodb" / "wav").exists()
    assert list((data / "emodb").iterdir()) == []          # the refused archive is deleted
    utterances = load_corpus("emodb", data, url=url, file_hash=good)
    assert [u.id for u in utterances] == ["03a01Fa", "16b10Tb"]
    assert (data / "emodb" / "silb").is_dir() and not (data / "emodb" / "emodb_download.zip").exists()


def test_download_without_hash_logs_the_archive_hash(tmp_path, caplog):
    archive = _release_zip(tmp_path / "download.zip", ["03a01Fa.wav"])
    with caplog.at_level(logging.WARNING, logger="keras_ser.data._common"):
        (utterance,) = emodb.load(tmp_path / "data", url=archive.as_uri())
    assert utterance.id == "03a01Fa"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() in caplog.text


def test_importable_without_tensorflow():
    code = ("import sys, keras_ser.data, keras_ser.data.splits, keras_ser.data.emodb;"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, message", [
    ("03a01F.wav", "7 characters"),
    ("99a01Fa.wav", "unknown speaker '99'"),
    ("03z01Fa.wav", "unknown text code 'z01'"),
])
def test_malformed_names(name, message):
    with pytest.raises(DataError, match=f"{name}.*{message}"):
        emodb.parse_name(name)
