"""keras_ser.layers against small NumPy reimplementations of the papers' equations."""

import numpy as np
import keras
import pytest

from keras_ser.errors import ParameterError
from keras_ser.layers import AttentionPooling, ScaledAttentionPooling

RNG = np.random.default_rng(0)


def _softmax(z):
    z = z - z.max()
    return np.exp(z) / np.exp(z).sum()


def _np_linear_attention(x, w, length):
    """000 eqs. 5-6 for one sequence of ``length`` real steps."""
    x = x[:length]
    alpha = _softmax(x @ w)
    return alpha @ x, alpha


def _np_scaled_attention(grid, w, b, u, lam, valid_t):
    """000 eqs. 7-10 for one [T, F, C] grid whose first ``valid_t`` frames are real."""
    annotations = grid[:valid_t].reshape(-1, grid.shape[-1])
    e = np.tanh(annotations @ w + b) @ u
    alpha = _softmax(lam * e)
    return alpha @ annotations, alpha


def _roundtrip(model, tmp_path, inputs):
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(reloaded(inputs)), atol=1e-6)


class TestAttentionPooling:
    def test_matches_numpy_with_padding(self):
        x = RNG.normal(size=(3, 7, 5)).astype("float32")
        lengths = [7, 4, 1]
        mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
        w = RNG.normal(size=(5,)).astype("float32")
        layer = AttentionPooling(return_attention_weights=True)
        layer.build((None, 7, 5))
        layer.set_weights([w])
        pooled, weights = layer(x, mask=mask)
        for i, n in enumerate(lengths):
            ref, alpha = _np_linear_attention(x[i], w, n)
            np.testing.assert_allclose(np.asarray(pooled)[i], ref, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(weights)[i, :n], alpha, rtol=1e-5, atol=1e-7)
            assert np.all(np.asarray(weights)[i, n:] == 0.0)

    def test_no_mask_is_full_softmax(self):
        x = RNG.normal(size=(2, 6, 3)).astype("float32")
        layer = AttentionPooling()
        out = np.asarray(layer(x))
        w = layer.get_weights()[0]
        for i in range(2):
            np.testing.assert_allclose(out[i], _np_linear_attention(x[i], w, 6)[0], rtol=1e-5, atol=1e-6)

    def test_fully_masked_row_is_zero(self):
        x = RNG.normal(size=(2, 4, 3)).astype("float32")
        mask = np.array([[True, True, False, False], [False] * 4])
        out = np.asarray(AttentionPooling()(x, mask=mask))
        assert np.all(np.isfinite(out)) and np.all(out[1] == 0.0)

    def test_implicit_keras_mask_and_roundtrip(self, tmp_path):
        inputs = keras.Input((None, 4))
        masked = keras.layers.Masking(mask_value=0.0)(inputs)
        model = keras.Model(inputs, AttentionPooling(name="att")(masked))
        x = RNG.normal(size=(2, 5, 4)).astype("float32")
        padded = np.concatenate([x, np.zeros((2, 3, 4), "float32")], axis=1)
        np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(padded)), atol=1e-6)
        _roundtrip(model, tmp_path, padded)

    def test_rejects_wrong_rank(self):
        with pytest.raises(ParameterError, match="AttentionPooling"):
            AttentionPooling()(np.zeros((2, 3, 4, 5), "float32"))


class TestScaledAttentionPooling:
    @pytest.mark.parametrize("lam", [0.3, 1.0, 0.0])
    def test_matches_numpy_with_time_padding(self, lam):
        grid = RNG.normal(size=(2, 5, 3, 4)).astype("float32")
        valid_t = [5, 2]
        mask = np.arange(5)[None, :] < np.array(valid_t)[:, None]
        w = RNG.normal(size=(4, 6)).astype("float32")
        b = RNG.normal(size=(6,)).astype("float32")
        u = RNG.normal(size=(6,)).astype("float32")
        layer = ScaledAttentionPooling(units=6, scale=lam, return_attention_weights=True)
        layer.build((None, 5, 3, 4))
        layer.set_weights([w, b, u])
        pooled, weights = layer(grid, mask=mask)
        for i, n in enumerate(valid_t):
            ref, alpha = _np_scaled_attention(grid[i], w, b, u, lam, n)
            np.testing.assert_allclose(np.asarray(pooled)[i], ref, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(np.asarray(weights)[i, : n * 3], alpha, rtol=1e-5, atol=1e-7)
            assert np.all(np.asarray(weights)[i, n * 3 :] == 0.0)

    def test_zero_scale_is_average_pooling(self):
        grid = RNG.normal(size=(2, 4, 3, 5)).astype("float32")
        out = np.asarray(ScaledAttentionPooling(scale=0.0)(grid))
        np.testing.assert_allclose(out, grid.reshape(2, -1, 5).mean(axis=1), rtol=1e-5, atol=1e-6)

    def test_full_grid_mask_and_default_units(self):
        grid = RNG.normal(size=(1, 3, 2, 4)).astype("float32")
        mask = np.array([[[True, False], [True, True], [False, False]]])
        layer = ScaledAttentionPooling()
        out = np.asarray(layer(grid, mask=mask))
        w, b, u = layer.get_weights()
        assert w.shape == (4, 4)
        kept = grid[0][mask[0]]
        alpha = _softmax(0.3 * (np.tanh(kept @ w + b) @ u))
        np.testing.assert_allclose(out[0], alpha @ kept, rtol=1e-5, atol=1e-6)

    def test_roundtrip(self, tmp_path):
        inputs = keras.Input((None, 3, 4))
        model = keras.Model(inputs, ScaledAttentionPooling(units=5, scale=0.5)(inputs))
        _roundtrip(model, tmp_path, RNG.normal(size=(2, 6, 3, 4)).astype("float32"))
        assert model.layers[-1].get_config()["scale"] == 0.5

    @pytest.mark.parametrize("kwargs", [{"scale": 1.5}, {"scale": -0.1}, {"units": 0}, {"units": 2.5}])
    def test_rejects_bad_settings(self, kwargs):
        with pytest.raises(ParameterError):
            ScaledAttentionPooling(**kwargs)
