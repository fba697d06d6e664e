"""Unsupervised alignment of a speech embedding space onto a text space (tzirakis2021 eqs. 1-3).

tzirakis2021 (Sec. 3.1) maps Speech2Vec vectors ``s`` onto Word2Vec vectors ``t`` with
a linear map ``W`` learned without any paired words, following its reference [15]
(Chung, Weng, Tong, Glass, "Unsupervised cross-modal alignment of speech and text
embedding spaces", NeurIPS 2018), which applies the method of Conneau, Lample,
Ranzato, Denoyer, Jégou, "Word translation without parallel data" (ICLR 2018, the
MUSE code):

1. **Adversarial training.** A discriminator (an MLP) learns to tell mapped speech
   vectors ``W s`` from text vectors ``t`` (eq. 1); ``W`` learns to fool it (eq. 2,
   the same cross-entropy with the labels swapped). The two are updated in turn.
   After every update of ``W`` it is pulled back towards the orthogonal matrices
   with ``W <- (1 + beta) W - beta (W W^T) W`` (Conneau et al. Sec. 3.3).
2. **Procrustes refinement** (eq. 3). A dictionary of mutual nearest neighbours
   under CSLS among the most frequent words of both spaces gives pairs
   ``(S_r, T_r)``; the orthogonal ``W* = argmin ||W S_r - T_r||_F`` is ``V U^T``
   from ``SVD(S_r T_r^T) = U Sigma V^T``. Dictionary and map are recomputed in turn.

CSLS (cross-domain similarity local scaling, Conneau et al. eq. 6) is
``2 cos(W s, t) - r_T(W s) - r_S(t)``, ``r`` being the mean cosine to the ``k``
nearest neighbours in the other space; it penalises "hub" vectors that are near
everything. The map with the best unsupervised criterion (Conneau et al. Sec. 3.5:
mean cosine between the most frequent speech words and their CSLS translations) is
kept, after every adversarial epoch and every refinement step.

Vectors are rows here: ``aligned = speech @ W.T``. Both spaces must have the same
dimension (an orthogonal map is square). Normalise both with :func:`normalize` first
(unit length, centred, unit length, the MUSE option ``renorm,center,renorm``); ``W``
then applies to normalised speech vectors (:func:`map_vectors`).

The defaults are Conneau et al.'s (the MUSE code's): a discriminator of two hidden
layers of 2048 units with LeakyReLU 0.2, input dropout 0.1, label smoothing 0.1,
5 discriminator steps per map step, batches of 32, plain SGD with rate 0.1 for both,
decayed by 0.98 per epoch and halved when the criterion drops, beta 0.001, the
75 000 most frequent words for the discriminator, 5 epochs of 1 000 000 samples,
5 refinement iterations with dictionaries from the 15 000 most frequent words,
``k = 10`` for CSLS and the 10 000 most frequent words for the criterion.
tzirakis2021 gives none of these. One addition: ``restarts`` plays several
adversarial games from different initial maps at once and keeps the map the
criterion prefers (default 1, Conneau et al.'s single game). In a small problem a
game often does not move from where it starts or settles with some axes wrong; the
tests (``tests/test_semantic_alignment.py``) use 6-d vectors, 16 restarts of 2000
steps, no input dropout, rates of 1.0 (map) and 0.5 (discriminator) and beta 0.01.

Examples
--------
>>> import numpy as np
>>> from keras_ser.semantic import align, normalize, map_vectors
>>> text = normalize(np.random.default_rng(0).normal(size=(500, 8)))  # doctest: +SKIP
>>> W = align(speech, text, epochs=2, epoch_size=20000)  # doctest: +SKIP
>>> aligned = map_vectors(W, speech)  # doctest: +SKIP

One module on purpose: the adversarial stage, CSLS, Procrustes refinement and the retrieval
evaluation are the one method of Conneau et al.
"""

import numpy as np

from keras_ser.errors import ParameterError

_CHUNK = 1024  # rows of a similarity matrix computed at once


def normalize(vectors, center=True, mean=None):
    """Unit length, then (``center``) minus the mean, then unit length again.

    Parameters
    ----------
    vectors : array-like, shape (n, d), or gensim KeyedVectors
    center : bool, default True
    mean : array-like, shape (d,), optional
        The mean to subtract, e.g. that of the unit-length training vectors
        (``normalize(train, center=False).mean(axis=0)``) when new vectors are
        mapped with a ``W`` learned on the training ones; by default the mean
        of ``vectors`` themselves.

    Returns
    -------
    numpy.ndarray, shape (n, d), float32
    """
    matrix = _unit(_matrix(vectors, "vectors"))
    if center:
        offset = matrix.mean(axis=0) if mean is None else np.asarray(mean, dtype=np.float32)
        if offset.shape != (matrix.shape[1],):
            raise ParameterError(f"normalize: mean has shape {offset.shape}, expected ({matrix.shape[1]},)")
        matrix = _unit(matrix - offset)
    return matrix


def map_vectors(W, speech_vectors):
    """Map (normalised) speech vectors into the text space: ``speech @ W.T``."""
    W = np.asarray(W, dtype=np.float32)
    matrix = _matrix(speech_vectors, "speech_vectors")
    if W.shape != (matrix.shape[1], matrix.shape[1]):
        raise ParameterError(f"map_vectors: W has shape {W.shape}, the vectors dimension {matrix.shape[1]}")
    return matrix @ W.T


def align(speech_vectors, text_vectors, *, speech_frequencies=None, text_frequencies=None,
          epochs=5, epoch_size=1_000_000, batch_size=32, discriminator_steps=5,
          discriminator_units=2048, discriminator_layers=2, discriminator_dropout=0.1,
          smoothing=0.1, map_learning_rate=0.1, discriminator_learning_rate=0.1, lr_decay=0.98,
          lr_shrink=0.5, beta=0.001, restarts=1, most_frequent=75_000, refinement_iterations=5,
          dictionary_max_rank=15_000, csls_k=10, criterion_words=10_000, seed=0, return_history=False):
    """Learn the orthogonal map of speech vectors onto text vectors without paired words.

    Parameters
    ----------
    speech_vectors, text_vectors : array-like (n, d) or gensim KeyedVectors
        The two spaces (normalise them with :func:`normalize` first). Rows are
        taken as ordered from the most to the least frequent word (gensim's order)
        unless frequencies are given.
    speech_frequencies, text_frequencies : array-like (n,), optional
        Word counts; the most frequent words drive the discriminator, the
        dictionaries and the criterion.
    epochs, epoch_size : int
        Adversarial epochs and samples per epoch (Conneau et al.: 5, 1 000 000).
    batch_size, discriminator_steps : int
        32 and 5 discriminator updates per map update.
    discriminator_units, discriminator_layers, discriminator_dropout : int, int, float
        2 hidden layers of 2048 with LeakyReLU 0.2; dropout 0.1 on the input.
    smoothing : float
        Label smoothing of the discriminator's targets (0.1).
    map_learning_rate, discriminator_learning_rate : float
        Plain SGD rates of the two players (0.1 each).
    lr_decay, lr_shrink : float
        Rate factor after every epoch (0.98), and the further factor when the
        criterion dropped during the epoch (0.5).
    beta : float
        Orthogonalisation step after each map update (0.001).
    restarts : int
        Independent adversarial games from different initial maps (the identity,
        as in Conneau et al., then random orthogonal matrices), run together; the
        criterion picks the map. Conneau et al. run one; the game can settle in a
        poor equilibrium (partly flipped axes), and in small problems several
        cheap restarts make success likely (the tests use 16).
    most_frequent : int
        The discriminator sees only the most frequent words of each space (75 000).
    refinement_iterations : int
        Procrustes steps (5); 0 keeps the adversarial map.
    dictionary_max_rank : int
        Dictionaries pair words among the most frequent of each space (15 000).
    csls_k : int
        Neighbours in CSLS (10).
    criterion_words : int
        Speech words in the selection criterion (10 000).
    seed : int
        Seeds the discriminator's initial weights and the batches.
    return_history : bool
        Also return the history: one dict per stage (``"stage"``: ``"start"``,
        ``"adversarial"`` per epoch, ``"refinement"`` per iteration) with the
        ``"criterion"``; adversarial epochs add each game's criterion
        (``"restart_criteria"``), the games' mean eq. 1 loss
        (``"discriminator_loss"``) and speech term of eq. 2 (``"map_loss"``,
        the only term that depends on W) and the number of ``"diverged"`` games;
        refinement adds the ``"dictionary"`` size.

    Returns
    -------
    W : numpy.ndarray, shape (d, d)
        ``speech @ W.T`` is in the text space.
    history : list of dict
        Only with ``return_history``.
    """
    speech = _ordered(speech_vectors, speech_frequencies, "speech")
    text = _ordered(text_vectors, text_frequencies, "text")
    if speech.shape[1] != text.shape[1]:
        raise ParameterError(f"align: speech vectors have dimension {speech.shape[1]}, text vectors "
                             f"{text.shape[1]}; an orthogonal map needs equal dimensions")
    for name, value in (("epochs", epochs), ("refinement_iterations", refinement_iterations)):
        if not isinstance(value, int) or value < 0:
            raise ParameterError(f"align: {name} must be an integer >= 0, got {value!r}")
    for name, value in (("epoch_size", epoch_size), ("batch_size", batch_size), ("restarts", restarts),
                        ("discriminator_steps", discriminator_steps), ("most_frequent", most_frequent),
                        ("dictionary_max_rank", dictionary_max_rank), ("csls_k", csls_k),
                        ("criterion_words", criterion_words), ("discriminator_units", discriminator_units)):
        if not isinstance(value, int) or value < 1:
            raise ParameterError(f"align: {name} must be a positive integer, got {value!r}")
    if not 0 <= smoothing < 0.5:
        raise ParameterError(f"align: smoothing must be in [0, 0.5), got {smoothing!r}")
    if not isinstance(discriminator_layers, int) or discriminator_layers < 0:
        raise ParameterError(f"align: discriminator_layers must be an integer >= 0, got {discriminator_layers!r}")
    if not 0 <= discriminator_dropout < 1:
        raise ParameterError(f"align: discriminator_dropout must be in [0, 1), got {discriminator_dropout!r}")
    for name, value in (("map_learning_rate", map_learning_rate),
                        ("discriminator_learning_rate", discriminator_learning_rate),
                        ("lr_decay", lr_decay), ("lr_shrink", lr_shrink)):
        if not value > 0:
            raise ParameterError(f"align: {name} must be > 0, got {value!r}")
    if not 0 <= beta < 0.5:
        raise ParameterError(f"align: beta must be in [0, 0.5), got {beta!r}")

    history = []
    dim = speech.shape[1]
    W = np.eye(dim, dtype=np.float32)
    best_W, best_criterion = W, _criterion(W, speech, text, csls_k, criterion_words, dictionary_max_rank)
    history.append({"stage": "start", "criterion": best_criterion})
    if epochs:
        best_W, best_criterion = _adversarial(
            speech[:most_frequent], text[:most_frequent], speech, text, history,
            epochs=epochs, epoch_size=epoch_size, batch_size=batch_size,
            discriminator_steps=discriminator_steps, units=discriminator_units,
            layers=discriminator_layers, dropout=discriminator_dropout, smoothing=smoothing,
            map_learning_rate=map_learning_rate, discriminator_learning_rate=discriminator_learning_rate,
            lr_decay=lr_decay, lr_shrink=lr_shrink, beta=beta, restarts=restarts, csls_k=csls_k,
            criterion_words=criterion_words, max_rank=dictionary_max_rank, seed=seed,
            best=(best_W, best_criterion))
    W = best_W
    for iteration in range(refinement_iterations):
        pairs = mutual_csls_dictionary(W, speech, text, k=csls_k, max_rank=dictionary_max_rank)
        if len(pairs) < 2:
            break
        W = procrustes(speech[pairs[:, 0]], text[pairs[:, 1]])
        criterion = _criterion(W, speech, text, csls_k, criterion_words, dictionary_max_rank)
        history.append({"stage": "refinement", "iteration": iteration + 1, "criterion": criterion,
                        "dictionary": len(pairs)})
        if criterion > best_criterion:
            best_W, best_criterion = W, criterion
    if return_history:
        return best_W, history
    return best_W


def procrustes(source, target):
    """Orthogonal ``W`` minimising ``||source @ W.T - target||_F`` (tzirakis2021 eq. 3).

    With the paper's column convention ``S_r = source.T``, ``T_r = target.T`` and
    ``SVD(S_r T_r^T) = U Sigma V^T``, the solution is ``W = V U^T``.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2:
        raise ParameterError(f"procrustes: source {source.shape} and target {target.shape} must be equal (k, d)")
    U, _, Vt = np.linalg.svd(source.T @ target)
    return (Vt.T @ U.T).astype(np.float32)


def orthogonalize(W, beta):
    """One step of ``W <- (1 + beta) W - beta (W W^T) W`` (Conneau et al. Sec. 3.3).

    Moves every singular value ``sigma`` of ``W`` to ``sigma + beta sigma (1 - sigma^2)``,
    towards 1, so repeated steps pull ``W`` towards the orthogonal matrices.
    ``W`` may be a batch ``[..., d, d]``; returns a TensorFlow tensor.
    """
    import tensorflow as tf

    W = tf.convert_to_tensor(W, dtype=tf.float32)
    return (1.0 + beta) * W - beta * tf.matmul(tf.matmul(W, W, transpose_b=True), W)


def csls_neighbourhood(queries, keys, k):
    """Mean cosine of each query to its ``k`` nearest keys (``r`` of CSLS)."""
    k = min(k, len(keys))
    out = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), _CHUNK):
        sims = queries[start:start + _CHUNK] @ keys.T
        out[start:start + _CHUNK] = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def _csls_best(queries, keys, r_queries, r_keys, top=1):
    """Indices of the ``top`` keys of highest CSLS for every query (best first)."""
    best = np.empty((len(queries), top), dtype=np.int64)
    for start in range(0, len(queries), _CHUNK):
        scores = 2 * (queries[start:start + _CHUNK] @ keys.T) - r_queries[start:start + _CHUNK, None] - r_keys
        part = np.argpartition(-scores, top - 1, axis=1)[:, :top] if top < keys.shape[0] else \
            np.tile(np.arange(keys.shape[0]), (len(scores), 1))
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        best[start:start + _CHUNK] = np.take_along_axis(part, order, axis=1)[:, :top]
    return best


def mutual_csls_dictionary(W, speech, text, *, k=10, max_rank=15_000):
    """Pairs ``(speech row, text row)`` that are each other's CSLS nearest neighbour.

    Only the ``max_rank`` first (most frequent) rows of each space take part.
    """
    mapped = _unit(speech[:max_rank] @ np.asarray(W, dtype=np.float32).T)
    text = _unit(text[:max_rank])
    r_mapped = csls_neighbourhood(mapped, text, k)
    r_text = csls_neighbourhood(text, mapped, k)
    speech_to_text = _csls_best(mapped, text, r_mapped, r_text)[:, 0]
    text_to_speech = _csls_best(text, mapped, r_text, r_mapped)[:, 0]
    rows = np.arange(len(mapped))
    mutual = text_to_speech[speech_to_text] == rows
    return np.stack([rows[mutual], speech_to_text[mutual]], axis=1)


def evaluate_alignment(W, speech_vectors, text_vectors, pairs, *, ks=(1, 5), method="csls", csls_k=10):
    """Precision@k of retrieving the text word of each speech word (Conneau et al. Sec. 4.1).

    Every mapped speech word in ``pairs`` is compared with all text vectors; a hit
    at ``k`` is a correct text word among the ``k`` best.

    Parameters
    ----------
    W : array-like (d, d)
    speech_vectors, text_vectors : array-like (n, d) or gensim KeyedVectors
        Normalised as for :func:`align`: the vectors given are used as they
        are, so pass ``normalize(kv)`` (with row indices, ``kv.key_to_index``)
        rather than a KeyedVectors whose vectors were not normalised.
    pairs : iterable of (speech key, text key)
        Ground-truth translations, as row indices (arrays) or words
        (KeyedVectors); evaluate on words held out of the alignment's dictionary.
        A speech word with several correct text words counts as a hit on any.
    ks : tuple of int
    method : {"csls", "nn"}
        CSLS retrieval or plain cosine nearest neighbour.
    csls_k : int

    Returns
    -------
    dict
        ``"precision@k"`` (fractions in [0, 1]) for each ``k`` and ``"words"``,
        the number of distinct speech words evaluated.
    """
    if method not in ("csls", "nn"):
        raise ParameterError(f"evaluate_alignment: method must be 'csls' or 'nn', got {method!r}")
    speech = _matrix(speech_vectors, "speech_vectors")
    text = _matrix(text_vectors, "text_vectors")
    gold = {}
    for speech_key, text_key in pairs:
        gold.setdefault(_row(speech_vectors, speech_key, "speech"), set()).add(
            _row(text_vectors, text_key, "text"))
    if not gold:
        raise ParameterError("evaluate_alignment: no pairs to evaluate")
    ks = tuple(sorted(set(ks)))
    if ks[0] < 1:
        raise ParameterError(f"evaluate_alignment: ks must be >= 1, got {ks}")
    rows = np.array(sorted(gold))
    mapped_all = _unit(map_vectors(W, speech))
    text = _unit(text)
    if method == "csls":
        r_mapped = csls_neighbourhood(mapped_all[rows], text, csls_k)
        r_text = csls_neighbourhood(text, mapped_all, csls_k)
    else:
        r_mapped = np.zeros(len(rows), dtype=np.float32)
        r_text = np.zeros(len(text), dtype=np.float32)
    top = _csls_best(mapped_all[rows], text, r_mapped, r_text, top=min(ks[-1], len(text)))
    result = {}
    for k in ks:
        hits = [bool(gold[row] & set(top[i, :k].tolist())) for i, row in enumerate(rows)]
        result[f"precision@{k}"] = float(np.mean(hits))
    result["words"] = len(rows)
    return result


def _criterion(W, speech, text, k, words, max_rank):
    """Mean cosine of the most frequent mapped speech words to their CSLS translations."""
    mapped = _unit(speech[:words] @ W.T)
    text = _unit(text[:max_rank])
    r_mapped = csls_neighbourhood(mapped, text, k)
    r_text = csls_neighbourhood(text, _unit(speech[:max_rank] @ W.T), k)
    best = _csls_best(mapped, text, r_mapped, r_text)[:, 0]
    return float(np.mean(np.sum(mapped * text[best], axis=1)))


def _adversarial(speech_top, text_top, speech, text, history, *, epochs, epoch_size, batch_size,
                 discriminator_steps, units, layers, dropout, smoothing, map_learning_rate,
                 discriminator_learning_rate, lr_decay, lr_shrink, beta, restarts, csls_k,
                 criterion_words, max_rank, seed, best):
    """Eqs. 1-2 with alternating SGD updates; returns the best (W, criterion) seen.

    The ``restarts`` runs are independent games (own ``W`` and discriminator)
    computed together as one batched TensorFlow graph: the matrices are small, so
    one step of many games costs little more than one.
    """
    import tensorflow as tf

    dim = speech.shape[1]
    rng = np.random.default_rng(seed)
    initial = [np.eye(dim)] + [np.linalg.qr(rng.normal(size=(dim, dim)))[0] for _ in range(restarts - 1)]
    W = tf.Variable(np.stack(initial).astype(np.float32), name="W")  # [restarts, d, d]
    sizes = [dim] + [units] * layers + [1]
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform, Keras' Dense default
        weights.append(tf.Variable(rng.uniform(-limit, limit, (restarts, fan_in, fan_out)).astype(np.float32)))
        weights.append(tf.Variable(np.zeros((restarts, 1, fan_out), np.float32)))
    map_rate = tf.Variable(np.full((restarts, 1, 1), map_learning_rate, np.float32))
    disc_rate = tf.Variable(np.full((restarts, 1, 1), discriminator_learning_rate, np.float32))
    speech_top = tf.constant(speech_top, dtype=tf.float32)
    text_top = tf.constant(text_top, dtype=tf.float32)
    n_speech, n_text = int(speech_top.shape[0]), int(text_top.shape[0])
    generator = tf.random.Generator.from_seed(seed)
    speech_label, text_label = 1.0 - smoothing, smoothing

    def discriminator(z):
        """Logit of P(speech | z) per game; LeakyReLU 0.2 hidden layers, input dropout."""
        if dropout:
            keep = tf.cast(generator.uniform(tf.shape(z)) >= dropout, z.dtype)
            z = z * keep / (1.0 - dropout)
        for index in range(0, len(weights), 2):
            z = tf.matmul(z, weights[index]) + weights[index + 1]
            if index + 2 < len(weights):
                z = tf.nn.leaky_relu(z, alpha=0.2)
        return z

    def cross_entropy(logits, label):
        """Mean over each game's batch, summed over games (the games are independent)."""
        targets = tf.fill(tf.shape(logits), label)
        per_game = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits),
                                  axis=[1, 2])
        return tf.reduce_sum(per_game)

    def batch():
        s = tf.gather(speech_top, generator.uniform([restarts, batch_size], 0, n_speech, dtype=tf.int32))
        t = tf.gather(text_top, generator.uniform([restarts, batch_size], 0, n_text, dtype=tf.int32))
        return s, t

    @tf.function
    def run(iterations):
        d_loss = w_loss = tf.constant(0.0)
        for _ in tf.range(iterations):
            for _ in range(discriminator_steps):
                s, t = batch()
                mapped = tf.stop_gradient(tf.matmul(s, W, transpose_b=True))
                with tf.GradientTape() as tape:
                    # eq. 1: mapped speech is "speech", text is "not speech".
                    d_loss = (cross_entropy(discriminator(mapped), speech_label)
                              + cross_entropy(discriminator(t), text_label))
                for variable, grad in zip(weights, tape.gradient(d_loss, weights)):
                    variable.assign_sub(disc_rate * grad)
            s, t = batch()
            with tf.GradientTape() as tape:
                # eq. 2: the labels swapped; only W moves (the text term has no gradient in W).
                w_loss = cross_entropy(discriminator(tf.matmul(s, W, transpose_b=True)), text_label)
            W.assign_sub(map_rate * tape.gradient(w_loss, W))
            W.assign(orthogonalize(W, beta))
        return d_loss / restarts, w_loss / restarts

    best_W, best_criterion = best
    iterations = max(1, epoch_size // batch_size)
    previous = np.full(restarts, -np.inf)
    for epoch in range(epochs):
        d_loss, w_loss = run(tf.constant(iterations))
        maps = W.numpy()
        # A game whose map diverged (too high a rate) drops out of the selection.
        criteria = np.array([_criterion(m, speech, text, csls_k, criterion_words, max_rank)
                             if np.all(np.isfinite(m)) else -np.inf for m in maps])
        history.append({"stage": "adversarial", "epoch": epoch + 1, "criterion": float(criteria.max()),
                        "restart_criteria": criteria.tolist(), "discriminator_loss": float(d_loss),
                        "map_loss": float(w_loss), "diverged": int(np.sum(~np.isfinite(criteria)))})
        winner = int(np.argmax(criteria))
        if criteria[winner] > best_criterion:
            best_W, best_criterion = maps[winner].copy(), float(criteria[winner])
        factor = np.where(criteria < previous, lr_decay * lr_shrink, lr_decay).astype(np.float32)[:, None, None]
        map_rate.assign(map_rate.numpy() * factor)
        disc_rate.assign(disc_rate.numpy() * factor)
        previous = criteria
    return best_W, best_criterion


def _unit(matrix):
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def _matrix(vectors, name):
    matrix = getattr(vectors, "vectors", vectors)  # gensim KeyedVectors
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 1:
        raise ParameterError(f"{name} must be a matrix of at least 2 vectors, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ParameterError(f"{name} holds NaN or infinite values")
    return matrix


def _ordered(vectors, frequencies, name):
    """Rows from the most to the least frequent word."""
    matrix = _matrix(vectors, f"{name}_vectors")
    if frequencies is None:
        return matrix
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.shape != (matrix.shape[0],):
        raise ParameterError(f"align: {name}_frequencies has shape {frequencies.shape}, expected "
                             f"({matrix.shape[0]},), one count per vector")
    return matrix[np.argsort(-frequencies, kind="stable")]


def _row(vectors, key, name):
    if hasattr(vectors, "key_to_index") and not isinstance(key, (int, np.integer)):
        if key not in vectors.key_to_index:
            raise ParameterError(f"evaluate_alignment: {name} word {key!r} is not in the vocabulary")
        return vectors.key_to_index[key]
    n = len(getattr(vectors, "vectors", vectors))
    if not isinstance(key, (int, np.integer)) or not 0 <= key < n:
        raise ParameterError(f"evaluate_alignment: {name} key {key!r} is not a row index below {n}")
    return int(key)
