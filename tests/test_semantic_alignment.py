"""Unsupervised alignment of embedding spaces (tzirakis2021 eqs. 1-3, Conneau et al. 2018)."""

import numpy as np
import pytest
from gensim.test.utils import datapath

from keras_ser.errors import ParameterError
from keras_ser.semantic import align, evaluate_alignment, map_vectors, normalize, train_word2vec
from keras_ser.semantic.alignment import mutual_csls_dictionary, orthogonalize, procrustes

# A small, fast setting of the method (the defaults are Conneau et al.'s full-size ones):
# 6-d vectors, the 1000 most frequent words, 16 adversarial games of 2 x 1000 steps, a small
# discriminator without input dropout (in 6 dimensions it would hide most of the signal) and faster
# rates. With Conneau et al.'s rates and dropout, most of the 16 games stay where they start.
DIM = 6
SMALL = dict(epochs=2, epoch_size=32_000, batch_size=32, discriminator_units=64, discriminator_steps=2,
             discriminator_dropout=0.0, map_learning_rate=1.0, discriminator_learning_rate=0.5, beta=0.01,
             restarts=16, most_frequent=1000, dictionary_max_rank=1000, criterion_words=1000,
             refinement_iterations=5)
RANK = SMALL["dictionary_max_rank"]


def _rotation(rng, dim):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def lee_space():
    """Word2Vec on gensim's bundled Lee news corpus (real English text, 300 documents)."""
    model = train_word2vec(datapath("lee_background.cor"), dim=DIM, min_count=5, epochs=5, seed=1)
    counts = np.array([model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key], float)
    return normalize(model.wv), counts


def _rotated_copy(text, counts, seed, noise=0.02):
    """Rotated + noisy copy of ``text`` with the vocabulary shuffled and frequencies perturbed.

    Returns the copy, its word counts, the truth (copy row -> text row) and the rotation.
    """
    rng = np.random.default_rng(seed)
    dim = text.shape[1]
    rotation = _rotation(rng, dim)
    order = rng.permutation(len(text))
    noisy = text @ rotation.T + noise / np.sqrt(dim) * rng.normal(size=text.shape)
    speech = normalize(noisy, center=False)[order]
    return speech, counts[order] * rng.lognormal(0.0, 0.3, len(text)), order, rotation


def _held_out(counts, truth):
    """Speech rows whose text word is outside the words the dictionaries may use."""
    text_rank = np.argsort(np.argsort(-counts, kind="stable"), kind="stable")
    return [(row, int(word)) for row, word in enumerate(truth) if text_rank[word] >= RANK]


def test_unsupervised_alignment_recovers_a_rotation(lee_space):
    text, counts = lee_space
    speech, speech_counts, truth, rotation = _rotated_copy(text, counts, seed=0)
    held_out = _held_out(counts, truth)
    assert len(held_out) > 500
    # The true map retrieves every held-out word: the task is solvable at this noise.
    assert evaluate_alignment(rotation.T, speech, text, held_out)["precision@1"] == 1.0
    # Without alignment (W = I) retrieval is at chance.
    assert evaluate_alignment(np.eye(DIM), speech, text, held_out)["precision@1"] < 0.05

    W, history = align(speech, text, speech_frequencies=speech_counts, text_frequencies=counts,
                       return_history=True, seed=0, **SMALL)
    scores = evaluate_alignment(W, speech, text, held_out)
    assert scores["precision@1"] >= 0.9 and scores["precision@5"] >= scores["precision@1"]
    np.testing.assert_allclose(W @ W.T, np.eye(DIM), atol=1e-4)
    np.testing.assert_allclose(W, rotation.T, atol=0.05)
    stages = [h["stage"] for h in history]
    assert stages == ["start"] + ["adversarial"] * 2 + ["refinement"] * 5
    # The criterion (mean cosine to CSLS translations) rises from the identity to the solution.
    assert history[-1]["criterion"] > history[0]["criterion"] + 0.05


def test_alignment_fails_on_an_unrelated_space(lee_space):
    text, counts = lee_space
    rng = np.random.default_rng(7)
    noise = normalize(rng.normal(size=text.shape))
    truth = rng.permutation(len(text))  # an arbitrary "translation": there is none to find
    W = align(noise, text, speech_frequencies=counts[truth], text_frequencies=counts, seed=0, **SMALL)
    scores = evaluate_alignment(W, noise, text, _held_out(counts, truth))
    assert scores["precision@1"] < 0.05


def test_procrustes_is_the_closed_form_of_eq3():
    rng = np.random.default_rng(1)
    rotation = _rotation(rng, 5)
    source = rng.normal(size=(40, 5))
    W = procrustes(source, source @ rotation.T)
    np.testing.assert_allclose(W, rotation, atol=1e-5)
    # With noise, no other orthogonal map fits better (eq. 3 is a minimum).
    target = source @ rotation.T + 0.1 * rng.normal(size=source.shape)
    W = procrustes(source, target)
    best = np.linalg.norm(source @ W.T - target)
    for _ in range(20):
        other = _rotation(rng, 5) @ W if rng.random() < 0.5 else W @ _rotation(np.random.default_rng(0), 5)
        assert np.linalg.norm(source @ other.T - target) >= best - 1e-6
    with pytest.raises(ParameterError):
        procrustes(source, target[:, :3])


def _unit_at(angle, axis, dim=4):
    vector = np.zeros(dim)
    vector[0], vector[axis] = np.cos(angle), np.sin(angle)
    return vector


def test_csls_removes_a_hub_that_nearest_neighbour_picks():
    # Text word 0 (along axis 0) is a hub: cosine 0.9 to every speech word. Speech word 0's
    # translation, text word 1, is only at cosine 0.8, so the plain nearest neighbour is the hub;
    # CSLS discounts the hub's crowded neighbourhood and finds it (Conneau et al. Sec. 2.3).
    a, b, c = np.arccos(0.9), np.arccos(0.8), np.arccos(0.99)
    text = np.stack([_unit_at(0, 1), _unit_at(a + b, 1), _unit_at(a + c, 2), _unit_at(a + c, 3)])
    speech = np.stack([_unit_at(a, 1), _unit_at(a, 2), _unit_at(a, 3)])
    pairs = [(0, 1), (1, 2), (2, 3)]
    nn = evaluate_alignment(np.eye(4), speech, text, pairs, method="nn", csls_k=2)
    csls = evaluate_alignment(np.eye(4), speech, text, pairs, method="csls", csls_k=2)
    assert nn["precision@1"] == pytest.approx(2 / 3) and csls["precision@1"] == 1.0
    assert nn["precision@5"] == 1.0 and nn["words"] == 3


def test_mutual_dictionary_and_word_keys(lee_space):
    text, counts = lee_space
    speech, _, truth, rotation = _rotated_copy(text, counts, seed=3, noise=0.0)
    pairs = mutual_csls_dictionary(rotation.T, speech, text, k=10, max_rank=len(text))
    assert len(pairs) == len(text) and np.all(truth[pairs[:, 0]] == pairs[:, 1])
    few = mutual_csls_dictionary(rotation.T, speech, text, k=10, max_rank=100)
    assert len(few) <= 100 and np.all(few < 100)


def test_evaluation_with_gensim_word_keys_and_bad_input():
    model = train_word2vec([["a", "b", "c", "d"], ["b", "c", "e", "a"]] * 10, dim=3, min_count=1, epochs=1)
    kv = model.wv
    result = evaluate_alignment(np.eye(3), kv, kv, [("a", "a"), ("b", "b"), ("e", "e")], method="nn")
    assert result == {"precision@1": 1.0, "precision@5": 1.0, "words": 3}
    with pytest.raises(ParameterError, match="'zz' is not in the vocabulary"):
        evaluate_alignment(np.eye(3), kv, kv, [("zz", "a")])
    with pytest.raises(ParameterError, match="equal dimensions"):
        align(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(ParameterError, match="speech_frequencies"):
        align(np.ones((5, 3)), np.ones((5, 3)), speech_frequencies=[1, 2])
    with pytest.raises(ParameterError, match="W has shape"):
        map_vectors(np.eye(2), np.ones((5, 3)))


def test_orthogonalization_update():
    rng = np.random.default_rng(4)
    rotation = _rotation(rng, 5)
    np.testing.assert_allclose(orthogonalize(rotation, 0.01).numpy(), rotation, atol=1e-6)
    W = rotation + 0.2 * rng.normal(size=(5, 5))
    start = np.abs(np.linalg.svd(W)[1] - 1).max()
    for _ in range(300):
        W = orthogonalize(W, 0.01).numpy()
    singular = np.linalg.svd(W)[1]
    assert start > 0.2 and np.abs(singular - 1).max() < 0.01


def test_adversarial_map_is_seeded_and_pulled_to_orthogonal(lee_space):
    text, counts = lee_space
    speech, _, _, _ = _rotated_copy(text, counts, seed=5)
    quick = dict(SMALL, epochs=1, epoch_size=3200, restarts=3, refinement_iterations=0, beta=0.1)
    first, history = align(speech, text, seed=11, return_history=True, **quick)
    np.testing.assert_array_equal(first, align(speech, text, seed=11, **quick))
    assert len(history[1]["restart_criteria"]) == 3 and history[1]["diverged"] == 0
    # 100 steps of eq. 2 at the test's high map rate: the orthogonalisation keeps W much closer to
    # the orthogonal matrices than the same steps without it (beta = 0).
    single = dict(quick, restarts=1)
    kept, free = (align(speech, text, seed=11, **dict(single, beta=beta)) for beta in (0.1, 0.0))
    kept_error, free_error = (np.abs(w @ w.T - np.eye(DIM)).max() for w in (kept, free))
    assert not np.allclose(kept, np.eye(DIM)) and not np.allclose(free, np.eye(DIM))  # both moved
    assert kept_error < free_error / 2


def test_normalize_with_a_given_mean():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(50, 4)) + 3.0
    unit_mean = normalize(train, center=False).mean(axis=0)
    np.testing.assert_allclose(normalize(train), normalize(train, mean=unit_mean), atol=1e-6)
    new = normalize(train[:5], mean=unit_mean)
    np.testing.assert_allclose(new, normalize(train)[:5], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ParameterError, match="mean has shape"):
        normalize(train, mean=[0.0, 1.0])
