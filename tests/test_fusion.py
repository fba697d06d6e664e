"""003 fusion layers (eqs. 4-7) against a NumPy reimplementation of the equations."""

import keras
import numpy as np
import pytest

from keras_ser.errors import ParameterError
from keras_ser.layers.fusion import DisentangledAttentionFusion, ScaledDotAttentionFusion


def np_attention(inputs, q):
    """003 eq. 5: alpha_i = softmax_i(x_i q / sqrt(d_u)); Attention = sum_i alpha_i x_i."""
    d = q.shape[0]
    scores = np.stack([x @ q for x in inputs], axis=-1) / np.sqrt(d)
    scores = scores - scores.max(-1, keepdims=True)
    alpha = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    return sum(alpha[..., i : i + 1] * x for i, x in enumerate(inputs)), alpha


def np_disentangled(x_s, x_p, w, activation=lambda v: v):
    """003 eqs. 4-7 with the layer's weights ``w`` (name -> arrays)."""
    xs = activation(x_s @ w["Ws"] + w["bs"])  # eq. 4
    xp = activation(x_p @ w["Wp"] + w["bp"])
    xsp, _ = np_attention([xs, xp], w["q1"])  # eq. 5
    a = xsp @ w["Wa"] + w["ba"]  # eq. 6
    v = xsp @ w["Wv"] + w["bv"]
    l = xsp @ w["Wl"] + w["bl"]
    z, _ = np_attention([a, l], w["q2"])  # eq. 7
    fused, _ = np_attention([z, v], w["q3"])
    return fused


def _randomise(layer, rng):
    for variable in layer.weights:
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))


def test_scaled_dot_attention_matches_numpy():
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(3, 4, 6)).astype("float32") for _ in range(3))
    layer = ScaledDotAttentionFusion(return_attention_weights=True)
    layer([a, b, c])
    _randomise(layer, rng)
    fused, weights = layer([a, b, c])
    expected, alpha = np_attention([a.astype(np.float64), b, c], layer.query.numpy().astype(np.float64))
    np.testing.assert_allclose(np.asarray(fused), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(weights), alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-6)


def test_disentangled_fusion_matches_numpy_eqs_4_to_7():
    rng = np.random.default_rng(1)
    x_s = rng.normal(size=(2, 5, 7)).astype("float32")
    x_p = rng.normal(size=(2, 5, 11)).astype("float32")
    layer = DisentangledAttentionFusion(units=6, branch_units=4)
    out = layer([x_s, x_p])
    assert out.shape == (2, 5, 4)
    _randomise(layer, rng)
    w = {
        "Ws": layer.semantic_projection.kernel, "bs": layer.semantic_projection.bias,
        "Wp": layer.paralinguistic_projection.kernel, "bp": layer.paralinguistic_projection.bias,
        "q1": layer.modality_attention.query,
        "Wa": layer.arousal_branch.kernel, "ba": layer.arousal_branch.bias,
        "Wv": layer.valence_branch.kernel, "bv": layer.valence_branch.bias,
        "Wl": layer.liking_branch.kernel, "bl": layer.liking_branch.bias,
        "q2": layer.arousal_liking_attention.query, "q3": layer.valence_attention.query,
    }
    w = {k: np.asarray(v.numpy(), np.float64) for k, v in w.items()}
    # 4 + 6 weights + 3 queries; d_u x d_s etc. as in eqs. 4 and 6.
    assert len(layer.weights) == 13
    assert layer.count_params() == (7 * 6 + 6) + (11 * 6 + 6) + 6 + 3 * (6 * 4 + 4) + 2 * 4
    expected = np_disentangled(x_s.astype(np.float64), x_p, w)
    np.testing.assert_allclose(np.asarray(layer([x_s, x_p])), expected, rtol=1e-4, atol=1e-5)

    # The authors' code setting: ReLU projections.
    relu_layer = DisentangledAttentionFusion(units=6, branch_units=4, projection_activation="relu",
                                             branch_activation="relu")
    relu_layer([x_s, x_p])
    _randomise(relu_layer, rng)
    relu = np.asarray(relu_layer([x_s, x_p]))
    assert relu.min() >= 0.0  # convex combinations of ReLU outputs


def test_fusion_round_trips_and_passes_mask(tmp_path):
    semantic = keras.Input((None, 7))
    paralinguistic = keras.Input((None, 11))
    masked_s = keras.layers.Masking()(semantic)
    fused = DisentangledAttentionFusion(units=6, name="fusion")([masked_s, paralinguistic])
    out = keras.layers.LSTM(3, return_sequences=True)(fused)
    model = keras.Model([semantic, paralinguistic], out)
    rng = np.random.default_rng(2)
    x_s, x_p = rng.normal(size=(1, 4, 7)).astype("float32"), rng.normal(size=(1, 4, 11)).astype("float32")
    padded_s = np.concatenate([x_s, np.zeros((1, 3, 7), "float32")], axis=1)
    padded_p = np.concatenate([x_p, rng.normal(size=(1, 3, 11)).astype("float32")], axis=1)
    short = np.asarray(model([x_s, x_p]))
    long = np.asarray(model([padded_s, padded_p]))
    np.testing.assert_allclose(long[:, :4], short, rtol=1e-5, atol=1e-6)
    # Masked steps repeat the last real output (the LSTM skipped them).
    np.testing.assert_allclose(long[:, 4:], np.repeat(short[:, -1:], 3, axis=1), rtol=1e-5, atol=1e-6)
    path = tmp_path / "fusion.keras"
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.models.load_model(path)([x_s, x_p])), short, atol=1e-6)


def test_fusion_rejects_bad_settings():
    with pytest.raises(ParameterError):
        DisentangledAttentionFusion(units=0)
    with pytest.raises(ParameterError):
        ScaledDotAttentionFusion()([np.ones((1, 3), "float32"), np.ones((1, 4), "float32")])
