"""The tf.data pipeline of keras_ser.frontend.dataset."""

import dataclasses

import librosa
import numpy as np
import pytest

from keras_ser import audio
from keras_ser.errors import DataError, ParameterError
from keras_ser.frontend import FrontEnd, array_dataset, label_indices, make_dataset, pool_by_id

LABELS = ["W", "L", "E", "A", "F", "T", "N"]


@dataclasses.dataclass(frozen=True)
class Record:
    """Local stand-in for keras_ser.data.Utterance (the pipeline duck-types .path/.label/.id)."""

    id: str
    path: str
    label: str


@pytest.fixture(scope="module")
def records(emodb_wavs):
    return [Record(p.stem, str(p), p.stem[5]) for p in emodb_wavs[:6]]


def _collect(ds):
    parts = [list(map(lambda t: t.numpy(), el)) for el in ds]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def test_labels_and_unknown_label(records):
    assert label_indices(records, LABELS) == [LABELS.index(r.label) for r in records]
    bad = records[:2] + [Record("x01", "x01.wav", "Z")]
    with pytest.raises(DataError, match="'x01'"):
        make_dataset(bad, LABELS, "zhao2019")


def test_unreadable_file_fails_early_naming_utterance(records, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF1234")
    with pytest.raises(DataError, match="broken_utt") as info:
        make_dataset(records[:1] + [Record("broken_utt", str(broken), "W")], LABELS, "zhao2019")
    assert "broken.wav" in str(info.value)
    with pytest.raises(ParameterError):
        make_dataset(records, LABELS, "zhao2019", segments=True)


def test_utterance_batches_match_librosa(records):
    x, y, ids = _collect(make_dataset(records, LABELS, "zhao2019", batch_size=4, with_ids=True))
    assert x.shape == (6, 500, 40)
    assert [i.decode() for i in ids] == [r.id for r in records]
    np.testing.assert_array_equal(y, label_indices(records, LABELS))
    for k, rec in enumerate(records[:2]):
        wave, _ = librosa.load(rec.path, sr=16000)
        ref = librosa.power_to_db(librosa.feature.melspectrogram(
            y=wave, sr=16000, n_fft=400, hop_length=160, window="hamming", n_mels=40, htk=True)).T
        assert np.abs(x[k, :200] - ref[:200]).max() <= 0.01


def test_seeded_shuffle_is_deterministic(records):
    def run(seed):
        ds = make_dataset(records, LABELS, "zhao2019", batch_size=4, shuffle=True, seed=seed, with_ids=True)
        return [_collect(ds) for _ in range(2)]  # two epochs

    first, again, other = run(7), run(7), run(8)
    for a, b in zip(first, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    order = lambda run_: [list(epoch[2]) for epoch in run_]  # noqa: E731
    assert order(first) != order(other)
    assert sorted(first[0][2]) == sorted(r.id.encode() for r in records)


def test_segments_carry_ids_and_pool_back(records):
    fe = FrontEnd("zhang2021_dcnn", image_size=None)
    x, y, ids = _collect(make_dataset(records, LABELS, fe, batch_size=5, segments=True, with_ids=True,
                                      shuffle=True, seed=3))
    assert x.shape == (6 * 8, 64, 64, 3)
    # a stand-in "model": per-segment score = mean of channel 0, one score column per channel
    scores = x.mean(axis=(1, 2))
    names, pooled = pool_by_id(ids, scores)
    assert sorted(names) == sorted(r.id for r in records)
    by_id = {r.id: r for r in records}
    for name, row in zip(names, pooled):
        direct = fe(audio.load(by_id[name].path)[None]).numpy()[0]  # [8, 64, 64, 3]
        np.testing.assert_allclose(row, direct.mean(axis=(0, 1, 2)), rtol=1e-3)
        np.testing.assert_array_equal(y[ids == name.encode()], LABELS.index(by_id[name].label))


def test_pool_by_id_numpy():
    names, pooled = pool_by_id([b"a", b"b", b"a", b"c"], [[1, 3], [2, 2], [3, 5], [0, 1]])
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(pooled, [[2, 4], [2, 2], [0, 1]])
    with pytest.raises(ParameterError):
        pool_by_id(["a"], [[1.0], [2.0]])


def test_speed_perturbation_expands_every_utterance(records):
    ds = make_dataset(records[:2], LABELS, None, batch_size=10, speed_factors=audio.SPEED_FACTORS, with_ids=True)
    x, y, ids = _collect(ds)
    assert x.shape[0] == 10
    assert [i.decode() for i in ids] == [r.id for r in records[:2] for _ in audio.SPEED_FACTORS]
    wave = audio.load(records[0].path)
    for row, factor in zip(x[:5], audio.SPEED_FACTORS):
        ref = audio.speed_perturb(wave, factor, 16000)
        assert ref.size == int(np.ceil(32000 / factor))
        np.testing.assert_allclose(row[: ref.size], ref, atol=1e-6)
        np.testing.assert_array_equal(row[ref.size :], 0.0)  # batch padding


def test_bucketing_and_cache(records, tmp_path):
    ds = make_dataset(records, LABELS, "zhao2018", batch_size=4, bucket_boundaries=[20000, 40000],
                      cache=tmp_path / "cache", with_ids=True)
    first = _collect(ds)
    second = _collect(ds)
    assert first[0].shape == (6, 63, 120)
    assert sorted(first[2]) == sorted(r.id.encode() for r in records)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_array_dataset_reshuffles_each_epoch_in_a_seeded_order():
    x = np.arange(10, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    words = np.arange(10, dtype="float32")[:, None] + 100
    y = np.arange(10)

    def epochs(ds, n=3):
        return [np.concatenate([batch[1].numpy() for batch in ds]) for _ in range(n)]

    ds = array_dataset((x, words), y, 4, shuffle_seed=7)
    orders = epochs(ds)
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3
    assert [tuple(o) for o in epochs(array_dataset((x, words), y, 4, shuffle_seed=7))] == [tuple(o) for o in orders]
    assert tuple(epochs(array_dataset((x, words), y, 4, shuffle_seed=8), 1)[0]) != tuple(orders[0])
    for (rows, extra), target in ds:
        # the inputs of a multi-input model stay aligned with their target through the shuffle
        assert np.array_equal(rows.numpy()[:, 0], target.numpy()) and np.array_equal(extra.numpy()[:, 0], target + 100)
    for named, target in array_dataset({"audio": x, "words": words}, y, 4, shuffle_seed=7):
        assert np.array_equal(named["words"].numpy()[:, 0], target + 100)
    assert [len(b[1]) for b in ds] == [4, 4, 2]
    assert np.array_equal(epochs(array_dataset(x, y, 3), 1)[0], y)
    # A resumed fit's dataset starts where the dropped orders leave it.
    later = epochs(array_dataset((x, words), y, 4, shuffle_seed=7, skip_orders=1), 2)
    assert [tuple(o) for o in later] == [tuple(o) for o in orders[1:]]


def test_array_dataset_does_not_autotune_so_ending_an_epoch_does_not_wait_for_the_tuner():
    # An autotuned iterator's destruction waits out its tuning thread's sleep: seconds of idle
    # CPU at every epoch's end (benchmarks/epoch_overhead.py measures it).
    x, y = np.zeros((10, 3), "float32"), np.arange(10)
    for ds in (array_dataset(x, y, 4, shuffle_seed=1), array_dataset(x, None, 4, prefetch=False)):
        assert ds.options().autotune.enabled is False


def test_array_dataset_without_targets_yields_the_inputs_in_order():
    x = np.arange(10, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    words = x + 100
    batches = list(array_dataset((x, words), None, 4))
    assert all(len(batch) == 1 for batch in batches)  # (inputs,): Keras cannot take them for (x, y)
    np.testing.assert_array_equal(np.concatenate([b[0][0].numpy() for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[0][1].numpy() for b in batches]), words)
    with pytest.raises(ParameterError, match="rows"):
        array_dataset((x, words[:9]), None, 4)


def test_array_dataset_bad_input():
    with pytest.raises(ParameterError, match="rows"):
        array_dataset(np.zeros((4, 2)), np.zeros(3), 2)
    with pytest.raises(ParameterError, match="no rows"):
        array_dataset(np.zeros((0, 2)), np.zeros(0), 2)
    with pytest.raises(ParameterError, match="batch_size"):
        array_dataset(np.zeros((4, 2)), np.zeros(4), 0)
    for bad in (-1, 1.0, True):
        with pytest.raises(ParameterError, match="skip_orders"):
            array_dataset(np.zeros((4, 2)), np.zeros(4), 2, shuffle_seed=1, skip_orders=bad)
