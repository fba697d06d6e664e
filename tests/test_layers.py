"""keras_ser.layers against small NumPy reimplementations of the papers' equations, and every
custom layer through the shared layer helper (tests/layer_helper.py)."""

import numpy as np
import keras
import pytest

from keras_ser.errors import ParameterError
from keras_ser.layers import (
    BLSTM,
    ApplyPaddingMask,
    AttentionPooling,
    CellStateLSTMCell,
    CycleChannels,
    DimensionShuffle,
    DisentangledAttentionFusion,
    FoldSegments,
    GroupedConv2D,
    ImagePreprocessing,
    LocalResponseNormalization,
    MaskedGlobalPooling,
    MaskedMaxPooling2D,
    PaddingMask,
    ScaledAttentionPooling,
    ScaledDotAttentionFusion,
    UnfoldSegments,
)
from layer_helper import run_layer_test

RNG = np.random.default_rng(0)


def _softmax(z):
    z = z - z.max()
    return np.exp(z) / np.exp(z).sum()


def _np_linear_attention(x, w, length):
    """zhao2019 eqs. 5-6 for one sequence of ``length`` real steps."""
    x = x[:length]
    alpha = _softmax(x @ w)
    return alpha @ x, alpha


def _np_scaled_attention(grid, w, b, u, lam, valid_t):
    """zhao2019 eqs. 7-10 for one [T, F, C] grid whose first ``valid_t`` frames are real."""
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


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_lstm(x, kernel, recurrent, bias):
    """Keras-convention LSTM (gates i, f, c, o) over ``x`` [T, d]; returns (h, c) sequences."""
    units = recurrent.shape[0]
    h, c = np.zeros(units), np.zeros(units)
    hs, cs = [], []
    for x_t in x:
        z = x_t @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.array(hs), np.array(cs)


class TestBLSTM:
    @pytest.mark.parametrize("states", ["hidden", "cell"])
    def test_matches_numpy_eq3_eq4_with_padding(self, states):
        units, d, proj = 3, 4, 5
        x = RNG.normal(size=(2, 6, d)).astype("float32")
        lengths = [6, 4]
        mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
        layer = BLSTM(units, states=states, output_units=proj)
        layer.build((None, 6, d))
        weights = [RNG.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
        layer.set_weights(weights)
        fk, fr, fb, bk, br, bb, wy, by = weights
        out = np.asarray(layer(x, mask=mask))
        pick = 0 if states == "hidden" else 1
        for i, n in enumerate(lengths):
            fwd = _np_lstm(x[i, :n], fk, fr, fb)[pick]
            bwd = _np_lstm(x[i, :n][::-1], bk, br, bb)[pick][::-1]
            ref = np.concatenate([fwd, bwd], axis=1) @ wy + by  # eq. 3 / eq. 4
            np.testing.assert_allclose(out[i, :n], ref, rtol=1e-4, atol=1e-5)
            assert np.all(out[i, n:] == 0.0)

    def test_concat_output_without_projection(self):
        layer = BLSTM(2)
        x = RNG.normal(size=(1, 3, 2)).astype("float32")
        out = np.asarray(layer(x))
        fk, fr, fb, bk, br, bb = layer.get_weights()
        np.testing.assert_allclose(out[0, :, :2], _np_lstm(x[0], fk, fr, fb)[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out[0, :, 2:], _np_lstm(x[0][::-1], bk, br, bb)[0][::-1], rtol=1e-4, atol=1e-5)

    def test_cell_state_cell_inside_keras_rnn(self):
        x = RNG.normal(size=(1, 4, 3)).astype("float32")
        rnn = keras.layers.RNN(CellStateLSTMCell(2), return_sequences=True)
        out = np.asarray(rnn(x))
        np.testing.assert_allclose(out[0], _np_lstm(x[0], *rnn.get_weights())[1], rtol=1e-4, atol=1e-5)

    def test_roundtrip_and_mask_propagation(self, tmp_path):
        inputs = keras.Input((None, 3))
        hidden = BLSTM(2, states="cell", output_units=4)(keras.layers.Masking()(inputs))
        model = keras.Model(inputs, AttentionPooling()(hidden))
        x = RNG.normal(size=(2, 5, 3)).astype("float32")
        padded = np.concatenate([x, np.zeros((2, 2, 3), "float32")], axis=1)
        np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(padded)), atol=1e-5)
        _roundtrip(model, tmp_path, padded)

    @pytest.mark.parametrize("kwargs", [{"units": 0}, {"units": 2, "states": "carry"}, {"units": 2, "output_units": 0}])
    def test_rejects_bad_settings(self, kwargs):
        with pytest.raises(ParameterError):
            BLSTM(**kwargs)


class TestDimensionShuffle:
    def test_transposes_and_roundtrips(self, tmp_path):
        x = RNG.normal(size=(2, 5, 3)).astype("float32")
        np.testing.assert_array_equal(np.asarray(DimensionShuffle()(x)), x.transpose(0, 2, 1))
        inputs = keras.Input((5, 3))
        _roundtrip(keras.Model(inputs, DimensionShuffle()(inputs)), tmp_path, x)

    def test_fixed_frames_crop_and_pad(self, tmp_path):
        x = RNG.normal(size=(2, 5, 3)).astype("float32")
        padded = np.asarray(DimensionShuffle(num_frames=7)(x))
        np.testing.assert_array_equal(padded[:, :, :5], x.transpose(0, 2, 1))
        assert np.all(padded[:, :, 5:] == 0.0)
        np.testing.assert_array_equal(np.asarray(DimensionShuffle(num_frames=2)(x)), x[:, :2].transpose(0, 2, 1))
        inputs = keras.Input((None, 3))
        model = keras.Model(inputs, DimensionShuffle(num_frames=4, name="shuffle")(inputs))
        assert model.output.shape == (None, 3, 4)
        _roundtrip(model, tmp_path, x)

    def test_drops_time_mask(self):
        inputs = keras.Input((5, 3))
        shuffled = DimensionShuffle()(keras.layers.Masking()(inputs))
        assert getattr(shuffled, "_keras_mask", None) is None

    def test_rejects_bad_input(self):
        with pytest.raises(ParameterError, match="DimensionShuffle"):
            DimensionShuffle()(np.zeros((2, 5, 3, 1), "float32"))
        with pytest.raises(ParameterError, match="num_frames"):
            DimensionShuffle(num_frames=0)


class TestMasking:
    def test_padding_mask(self):
        x = np.zeros((2, 4, 3), "float32")
        x[0, :3] = 1.0
        x[1, :1, 1] = -2.0
        np.testing.assert_array_equal(np.asarray(PaddingMask()(x)), [[1, 1, 1, 0], [1, 0, 0, 0]])
        np.testing.assert_array_equal(np.asarray(PaddingMask(None)(x)), np.ones((2, 4), bool))
        np.testing.assert_array_equal(np.asarray(PaddingMask(1.0)(x)), [[0, 0, 0, 1], [1, 1, 1, 1]])

    def test_masked_max_pooling_matches_unpadded(self):
        x = RNG.normal(size=(1, 7, 4, 2)).astype("float32")
        padded = np.concatenate([x, RNG.normal(size=(1, 3, 4, 2)).astype("float32")], axis=1)
        mask = np.array([[True] * 7 + [False] * 3])
        pooled, pooled_mask = MaskedMaxPooling2D((2, 2))([padded, mask])
        ref = x[:, :6].reshape(1, 3, 2, 2, 2, 2).max(axis=(2, 4))  # 'valid' pooling of the real frames
        np.testing.assert_allclose(np.asarray(pooled)[:, :3], ref)
        np.testing.assert_array_equal(np.asarray(pooled_mask), [[True, True, True, False, False]])
        assert np.all(np.asarray(pooled)[:, 3:] == 0.0)

    @pytest.mark.parametrize("mode", ["average", "max"])
    def test_masked_global_pooling(self, mode):
        x = RNG.normal(size=(2, 5, 3, 4)).astype("float32")
        mask = np.array([[True] * 5, [True, True, False, False, False]])
        out = np.asarray(MaskedGlobalPooling(mode)([x, mask]))
        reduce = np.mean if mode == "average" else np.max
        np.testing.assert_allclose(out[0], reduce(x[0], axis=(0, 1)), rtol=1e-5)
        np.testing.assert_allclose(out[1], reduce(x[1, :2], axis=(0, 1)), rtol=1e-5)
        empty = np.asarray(MaskedGlobalPooling(mode)([x, np.zeros((2, 5), bool)]))
        assert np.all(empty == 0.0)

    def test_apply_padding_mask(self):
        x = np.ones((1, 3, 2, 2), "float32")
        out = np.asarray(ApplyPaddingMask()([x, np.array([[True, False, True]])]))
        assert out[0, 1].sum() == 0.0 and out[0, 0].sum() == 4.0

    @pytest.mark.parametrize(
        "make", [lambda: PaddingMask("x"), lambda: MaskedMaxPooling2D(0), lambda: MaskedGlobalPooling("median")]
    )
    def test_rejects_bad_settings(self, make):
        with pytest.raises(ParameterError):
            make()


# ------------------------------------------------------------------------------ shared layer test
def _floats(*shape):
    return np.random.default_rng(sum(shape)).normal(size=shape).astype("float32")


def _lengths_mask(steps, lengths):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


#: Every custom layer of keras_ser.layers: (class, fresh layer, tiny input).
LAYER_CASES = [
    (AttentionPooling, lambda: AttentionPooling(), lambda: _floats(2, 5, 4)),
    (ScaledAttentionPooling, lambda: ScaledAttentionPooling(units=3, scale=0.5), lambda: _floats(2, 4, 3, 5)),
    (BLSTM, lambda: BLSTM(3, states="cell", output_units=4), lambda: _floats(2, 5, 4)),
    (CellStateLSTMCell, lambda: keras.layers.RNN(CellStateLSTMCell(3), return_sequences=True),
     lambda: _floats(2, 5, 4)),
    (DimensionShuffle, lambda: DimensionShuffle(num_frames=4), lambda: _floats(2, 5, 3)),
    (PaddingMask, lambda: PaddingMask(0.0),
     lambda: np.concatenate([_floats(2, 3, 4), np.zeros((2, 2, 4), "float32")], 1)),
    (ApplyPaddingMask, lambda: ApplyPaddingMask(), lambda: [_floats(2, 3, 2, 2), _lengths_mask(3, [3, 1])]),
    (MaskedMaxPooling2D, lambda: MaskedMaxPooling2D((2, 2)), lambda: [_floats(2, 6, 4, 2), _lengths_mask(6, [6, 3])]),
    (MaskedGlobalPooling, lambda: MaskedGlobalPooling("average"),
     lambda: [_floats(2, 5, 3), _lengths_mask(5, [5, 2])]),
    (DisentangledAttentionFusion, lambda: DisentangledAttentionFusion(units=6, branch_units=4),
     lambda: [_floats(2, 5, 7), _floats(2, 5, 11)]),
    (ScaledDotAttentionFusion, lambda: ScaledDotAttentionFusion(), lambda: [_floats(3, 4, 6), _floats(3, 4, 6)]),
    (FoldSegments, lambda: FoldSegments(), lambda: _floats(2, 3, 5, 1)),
    (UnfoldSegments, lambda: UnfoldSegments(), lambda: [_floats(6, 4), _floats(2, 3, 5)]),
    (CycleChannels, lambda: CycleChannels(3), lambda: _floats(1, 2, 2, 2)),
    (LocalResponseNormalization, lambda: LocalResponseNormalization(), lambda: np.abs(_floats(1, 2, 2, 8)) * 30),
    (GroupedConv2D, lambda: GroupedConv2D(8, 3, groups=2, padding="same"), lambda: _floats(1, 5, 5, 4)),
    (ImagePreprocessing, lambda: ImagePreprocessing("torch"),
     lambda: np.random.default_rng(0).uniform(0, 255, (1, 2, 2, 3)).astype("float32")),
]


@pytest.mark.parametrize("cls, make, inputs", LAYER_CASES, ids=[case[0].__name__ for case in LAYER_CASES])
def test_layer_contract(cls, make, inputs, tmp_path):
    layer = make()
    run_layer_test(layer, inputs(), tmp_path=tmp_path, registered_class=cls)


def test_every_custom_layer_runs_the_shared_layer_test():
    import keras_ser.layers

    registered = {obj for obj in keras.saving.get_custom_objects().values()
                  if isinstance(obj, type) and issubclass(obj, keras.layers.Layer)
                  and obj.__module__.startswith("keras_ser.layers.")}
    assert {cls for cls in vars(keras_ser.layers).values() if isinstance(cls, type)} <= registered
    assert registered == {case[0] for case in LAYER_CASES}


def test_fold_and_unfold_are_inverse():
    x = _floats(2, 3, 5, 1)
    folded = np.asarray(FoldSegments()(x))
    np.testing.assert_array_equal(folded, x.reshape(6, 5, 1))
    np.testing.assert_array_equal(np.asarray(UnfoldSegments()([folded, x])), x)


def test_cycle_channels_repeats_cyclically():
    x = _floats(1, 2, 2, 2)
    np.testing.assert_array_equal(np.asarray(CycleChannels(3)(x)), x[..., [0, 1, 0]])
    with pytest.raises(ParameterError, match="CycleChannels"):
        CycleChannels(0)
