"""rnn, gru and lstm: gradients through time, padding, causality, chunks, shapes and bad input.

PyTorch agreement is in ``test_recurrent_torch.py``; the contract tests (dtypes, purity, pickling)
run on the registry's recurrent cases in ``cases.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from functional_dl import errors
from functional_dl import layers as L
from functional_dl.layers.recurrent import RecurrentInput
from functional_dl.testing import check_gradients, check_purity
from tests.layers.multi_io import backward_flow, forward_flow, init_flow
from tests.layers.recurrent_cases import (
    RecurrentConfig,
    draw_inputs,
    make_layer,
    recurrent_configs,
    state_of,
)


def _parts(cfg: RecurrentConfig, state: Any) -> tuple[Any, ...]:
    """An LSTM state's ``(h, c)``, another layer's state as ``(h,)``."""
    return tuple(state) if cfg.kind == "lstm" else (state,)


def _setup(cfg: RecurrentConfig, return_state: bool) -> tuple[fdl.Layer[Any], fdl.Params, tuple[Any, ...]]:
    """The layer, float64 params, and ``(x, state, lengths)`` of a configuration."""
    layer = make_layer(cfg, return_state=return_state)
    _, params = layer.init(fdl.random.key(cfg.seed + 2), (None, cfg.steps, cfg.features))
    return layer, fdl.params.cast(params, np.float64), draw_inputs(cfg)


@given(cfg=recurrent_configs(), return_state=st.booleans())
def test_finite_differences_through_time(cfg: RecurrentConfig, return_state: bool) -> None:
    """Every parameter, the input sequence and the initial state, with and without the final state."""
    layer, params, (x, state, lengths) = _setup(cfg, return_state)
    report = check_gradients(layer, params, (x, state, lengths))
    assert report.passed, report.describe()
    n_state = 0 if state is None else cfg.num_layers * cfg.directions * cfg.batch * cfg.hidden
    n_state *= 2 if cfg.kind == "lstm" and state is not None else 1
    assert report.checked == x.size + n_state + fdl.params.num_params(params)


@given(cfg=recurrent_configs())
def test_a_bare_sequence_is_the_one_entry_tuple(cfg: RecurrentConfig) -> None:
    layer, params, (x, _, _) = _setup(cfg, False)
    y, cache = layer.forward(params, x)
    y1, cache1 = forward_flow(layer, params, (x,))
    assert y.tobytes() == y1.tobytes()
    dy = fdl.random.normal(fdl.random.key(3), y.shape, np.float64)
    dx, grads = layer.backward(params, cache, dy)
    (dx1,), grads1 = backward_flow(layer, params, cache1, dy)
    assert isinstance(dx, np.ndarray) and dx.tobytes() == dx1.tobytes()
    assert all(grads[k].tobytes() == grads1[k].tobytes() for k in grads)


def _padded_cfg(cfg: RecurrentConfig) -> RecurrentConfig:
    """``cfg`` with uneven lengths (the last sample the shortest) unless it has some already."""
    uneven = tuple(max(cfg.steps - b, 0) for b in range(cfg.batch))
    return cfg if cfg.lengths is not None else cfg._replace(lengths=uneven)


@given(cfg=recurrent_configs())
def test_padded_steps_output_zero_and_get_exactly_zero_gradient(cfg: RecurrentConfig) -> None:
    cfg = _padded_cfg(cfg)
    layer, params, (x, state, lengths) = _setup(cfg, True)
    (y, _), cache = forward_flow(layer, params, (x, state, lengths))
    padded = np.arange(cfg.steps)[None, :] >= lengths[:, None]  # (batch, time)
    assert np.all(y[padded] == 0)
    dy = fdl.random.normal(fdl.random.key(4), y.shape, np.float64)
    (dx, _, dlengths), _ = backward_flow(layer, params, cache, (dy, None))
    assert dlengths is None
    assert np.all(dx[padded] == 0)


@given(cfg=recurrent_configs(), data=st.data())
def test_padding_values_change_nothing(cfg: RecurrentConfig, data: st.DataObject) -> None:
    """Whatever sits in the padded steps, the outputs, final state and gradients are the same."""
    cfg = _padded_cfg(cfg)
    layer, params, (x, state, lengths) = _setup(cfg, True)
    padded = np.arange(cfg.steps)[None, :] >= lengths[:, None]
    other = np.where(padded[:, :, None], 100.0 * np.sign(x) + 7.0, x)
    out_a, cache_a = forward_flow(layer, params, (x, state, lengths))
    out_b, cache_b = forward_flow(layer, params, (other, state, lengths))
    dy = fdl.random.normal(fdl.random.key(5), out_a[0].shape, np.float64)
    _, grads_a = backward_flow(layer, params, cache_a, (dy, None))
    _, grads_b = backward_flow(layer, params, cache_b, (dy, None))
    np.testing.assert_array_equal(out_a[0], out_b[0])
    for a, b in zip(_parts(cfg, out_a[1]), _parts(cfg, out_b[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    for k in grads_a:
        np.testing.assert_array_equal(grads_a[k], grads_b[k])


@given(cfg=recurrent_configs())
def test_a_mask_is_the_same_as_lengths(cfg: RecurrentConfig) -> None:
    cfg = _padded_cfg(cfg)
    layer, params, (x, state, lengths) = _setup(cfg, True)
    mask = np.arange(cfg.steps)[None, :] < lengths[:, None]
    (y_l, h_l), cache_l = forward_flow(layer, params, (x, state, lengths))
    (y_m, h_m), cache_m = forward_flow(layer, params, RecurrentInput(x, state, mask=mask))
    assert y_l.tobytes() == y_m.tobytes()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(_parts(cfg, h_l), _parts(cfg, h_m), strict=True))
    dy = fdl.random.normal(fdl.random.key(6), y_l.shape, np.float64)
    dx_l, g_l = backward_flow(layer, params, cache_l, (dy, None))
    dx_m, g_m = backward_flow(layer, params, cache_m, (dy, None))
    assert dx_l[0].tobytes() == dx_m[0].tobytes() and dx_m[2:] == (None, None)
    assert all(g_l[k].tobytes() == g_m[k].tobytes() for k in g_l)


@given(cfg=recurrent_configs(), data=st.data())
def test_a_general_mask_holds_the_state_over_gaps(cfg: RecurrentConfig, data: st.DataObject) -> None:
    """Masked steps anywhere (not only at the end): the finite-difference check still holds."""
    layer, params, (x, state, _) = _setup(cfg, True)
    size = x.shape[0] * x.shape[1]
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=size, max_size=size))).reshape(x.shape[:2])
    report = check_gradients(layer, params, (x, state, None, mask))
    assert report.passed, report.describe()


@given(cfg=recurrent_configs(), cut=st.integers(0, 3))
def test_unidirectional_layers_are_causal(cfg: RecurrentConfig, cut: int) -> None:
    """Changing the inputs after step t leaves every output up to t bit-identical."""
    cfg = cfg._replace(bidirectional=False)
    t = min(cut, cfg.steps - 1)
    layer, params, (x, state, lengths) = _setup(cfg, False)
    later = x.copy()
    later[:, t + 1 :] += 1.0 + np.abs(later[:, t + 1 :])
    y_a, _ = forward_flow(layer, params, (x, state, lengths))
    y_b, _ = forward_flow(layer, params, (later, state, lengths))
    assert y_a[:, : t + 1].tobytes() == y_b[:, : t + 1].tobytes()


@given(cfg=recurrent_configs(max_steps=5), split_at=st.integers(1, 4))
def test_the_final_state_seeds_the_next_chunk(cfg: RecurrentConfig, split_at: int) -> None:
    """Two chunks, the second started from the first's final state, give the whole sequence's outputs.

    And the chunked backward is truncated backpropagation through time: the second chunk's
    gradient with respect to its initial state is what flows into the first chunk's final state.
    """
    cfg = cfg._replace(bidirectional=False, lengths=None, steps=max(cfg.steps, 2))
    cut = min(split_at, cfg.steps - 1)
    layer, params, (x, state, _) = _setup(cfg, True)
    (y, final), whole = forward_flow(layer, params, (x, state))
    (y1, mid), c1 = forward_flow(layer, params, (x[:, :cut], state))
    (y2, end), c2 = forward_flow(layer, params, (x[:, cut:], mid))
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, rtol=1e-12, atol=1e-14)
    for a, b in zip(_parts(cfg, final), _parts(cfg, end), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    dy = fdl.random.normal(fdl.random.key(7), y.shape, np.float64)
    dx, g = backward_flow(layer, params, whole, (dy, None))
    (dx2, dmid), g2 = backward_flow(layer, params, c2, (dy[:, cut:], None))
    (dx1, _), g1 = backward_flow(layer, params, c1, (dy[:, :cut], dmid))
    np.testing.assert_allclose(np.concatenate([dx1, dx2], axis=1), dx[0], rtol=1e-10, atol=1e-12)
    for k in g:
        np.testing.assert_allclose(g1[k] + g2[k], g[k], rtol=1e-10, atol=1e-12)


@given(cfg=recurrent_configs())
def test_unused_outputs_may_have_none_gradient(cfg: RecurrentConfig) -> None:
    layer, params, (x, state, lengths) = _setup(cfg, True)
    (y, final), cache = forward_flow(layer, params, (x, state, lengths))
    zeros = tuple(np.zeros_like(f) for f in final) if cfg.kind == "lstm" else np.zeros_like(final)
    dy = fdl.random.normal(fdl.random.key(8), y.shape, np.float64)
    a, ga = backward_flow(layer, params, cache, (dy, None))
    b, gb = backward_flow(layer, params, cache, (dy, zeros))
    assert a[0].tobytes() == b[0].tobytes()
    assert all(ga[k].tobytes() == gb[k].tobytes() for k in ga)


def test_keys_and_shapes_follow_pytorch() -> None:
    layer = L.lstm(5, num_layers=2, bidirectional=True)
    out_shape, params = layer.init(fdl.random.key(0), (None, 7, 3))
    assert out_shape == (None, 7, 10)
    assert list(params) == [
        f"{w}_l{k}{sfx}"
        for k in range(2)
        for sfx in ("", "_reverse")
        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]
    assert params["weight_ih_l0"].shape == (20, 3) and params["weight_ih_l1_reverse"].shape == (20, 10)
    assert params["weight_hh_l1"].shape == (20, 5) and params["bias_hh_l0"].shape == (20,)
    assert all(np.abs(v).max() <= 1 / np.sqrt(5) for v in params.values())  # U(-1/sqrt(H), 1/sqrt(H))
    no_bias = L.gru(2, bias=False).init(fdl.random.key(0), (None, 3, 1))[1]
    assert sorted(no_bias) == ["weight_hh_l0", "weight_ih_l0"]
    stacked = L.gru(4, num_layers=3, return_state=True)
    shape, _ = init_flow(stacked, fdl.random.key(0), ((None, 6, 2), None, (None,)))
    assert shape == ((None, 6, 4), (3, None, 4))


@pytest.mark.parametrize("kind", ["rnn_tanh", "gru", "lstm"])
def test_float32_stays_float32_and_is_pure(kind: str) -> None:
    cfg = RecurrentConfig(kind, 3, 2, True, True, 2, 4, 3, (4, 2), True, 0)
    layer = make_layer(cfg, return_state=True, dtype=np.float32)
    _, params = layer.init(fdl.random.key(0), (None, 4, 3))
    x, state, lengths = draw_inputs(cfg, np.float32)
    (y, final), cache = forward_flow(layer, params, (x, state, lengths))
    dx, grads = backward_flow(layer, params, cache, (np.ones_like(y), None))
    finals = final if kind == "lstm" else (final,)
    states = dx[1] if kind == "lstm" else (dx[1],)
    assert {a.dtype for a in (y, dx[0], *finals, *states, *grads.values())} == {np.dtype(np.float32)}
    check_purity(layer, params, (x, state, lengths))


def test_gates_fast_path_agrees_with_the_formula() -> None:
    from functional_dl.layers.recurrent.lstm import _gates_fast, _gates_plain

    for dtype, ulps in ((np.float32, 4), (np.float64, 4)):
        a = fdl.random.normal(fdl.random.key(0), (64, 4 * 7), dtype) * 8
        plain = _gates_plain(a)
        fast = _gates_fast(a.copy())
        assert fast.dtype == dtype
        assert np.max(np.abs(fast - plain)) <= ulps * np.finfo(dtype).eps


# --- bad input ---------------------------------------------------------------------------------------


def _lstm_net() -> tuple[fdl.Layer[Any], fdl.Params]:
    net = fdl.serial(L.lstm(4, num_layers=2), L.dense(3))
    _, params = net.init(fdl.random.key(0), (None, 3, 2))
    return net, params


def test_wrong_feature_size_names_the_layer() -> None:
    layer = L.gru(4)
    _, params = layer.init(fdl.random.key(0), (None, 5, 3))
    expected = r"^gru: expected input of shape \(batch, time, 3\), got "
    with pytest.raises(errors.ShapeError, match=expected + r"\(2, 5, 4\)"):
        layer.forward(params, np.zeros((2, 5, 4), np.float32))
    with pytest.raises(errors.ShapeError, match=expected + r"\(2, 3\)"):
        layer.forward(params, np.zeros((2, 3), np.float32))
    net = fdl.serial(L.relu(), fdl.serial(L.dense(3), L.lstm(4)))
    _, p = net.init(fdl.random.key(0), (None, 5, 2))
    wrong = {**p, "1.1.weight_ih_l0": np.zeros((16, 4), np.float32)}  # an LSTM for 4 features after dense(3)
    path = r"^1\.1\.lstm: expected input of shape \(batch, time, 4\), got \(2, 5, 3\)"
    with pytest.raises(errors.ShapeError, match=path):
        net.forward(wrong, np.zeros((2, 5, 2), np.float32))


def test_wrong_dtypes_are_refused() -> None:
    layer = L.rnn(2)
    _, params = layer.init(fdl.random.key(0), (None, 3, 2))
    with pytest.raises(errors.DTypeError, match=r"^rnn: expected input of dtype float32"):
        layer.forward(params, np.zeros((1, 3, 2), np.float64))
    with pytest.raises(errors.DTypeError, match=r"^rnn: expected a floating-point input"):
        layer.forward(params, np.zeros((1, 3, 2), np.int64))
    with pytest.raises(errors.DTypeError, match=r"^rnn: expected initial state of dtype float32"):
        forward_flow(layer, params, (np.zeros((1, 3, 2), np.float32), np.zeros((1, 1, 2))))


@pytest.mark.parametrize(
    ("lengths", "error", "message"),
    [
        (np.array([3, 1.0]), errors.DTypeError, "expected integer lengths, got float64"),
        (np.array([True, False]), errors.DTypeError, "expected integer lengths, got bool"),
        ([3, 1], errors.DTypeError, "expected integer lengths, got list"),
        (np.array([3, 1, 2]), errors.ShapeError, r"expected lengths of shape \(2,\), got \(3,\)"),
        (np.array([[3, 1]]), errors.ShapeError, r"expected lengths of shape \(2,\), got \(1, 2\)"),
        (np.array([4, 1]), errors.DomainError, r"lengths must lie in \[0, 3\]"),
        (np.array([-1, 1]), errors.DomainError, r"lengths must lie in \[0, 3\]"),
    ],
)
def test_bad_lengths_are_refused(lengths: Any, error: type[Exception], message: str) -> None:
    net, params = _lstm_net()
    x = np.zeros((2, 3, 2), np.float32)
    with pytest.raises(error, match=rf"^0\.lstm: {message}"):
        forward_flow(net, params, (x, None, lengths))


def test_bad_masks_and_states_are_refused() -> None:
    layer = L.lstm(4, bidirectional=True)
    _, params = layer.init(fdl.random.key(0), (None, 3, 2))
    x = np.zeros((2, 3, 2), np.float32)
    h = np.zeros((2, 2, 4), np.float32)
    ones = np.ones((2, 3), bool)
    cases: list[tuple[Any, type[Exception], str]] = [
        ((x, None, None, np.ones((2, 3), np.int64)), errors.DTypeError, "expected a boolean mask, got int64"),
        ((x, None, None, ones.T), errors.ShapeError, r"expected a mask of shape \(2, 3\), got \(3, 2\)"),
        ((x, None, np.array([1, 2]), ones), errors.ShapeError, "give the lengths or a mask, not both"),
        ((x, h), errors.ShapeError, r"expected the initial state as a pair \(h0, c0\)"),
        ((x, (h, h[:1])), errors.ShapeError, r"expected an initial state of shape \(2, 2, 4\), got \(1, 2, "),
        ((x, None, None, None, None), errors.ShapeError, "expected x or a tuple"),
        ((np.zeros((2, 3)),), errors.ShapeError, r"expected input of shape \(batch, time, 2\)"),
    ]
    for inputs, error, message in cases:
        with pytest.raises(error, match=rf"^lstm: {message}"):
            forward_flow(layer, params, inputs)


def test_bad_cotangents_are_refused() -> None:
    layer = L.gru(4, return_state=True)
    _, params = layer.init(fdl.random.key(0), (None, 3, 2))
    (y, h), cache = forward_flow(layer, params, (np.zeros((2, 3, 2), np.float32),))
    with pytest.raises(errors.ShapeError, match=r"^gru: expected the gradient as a pair"):
        backward_flow(layer, params, cache, y)
    with pytest.raises(errors.ShapeError, match=r"^gru: expected dy of shape \(2, 3, 4\), got \(2, 3, 3\)"):
        backward_flow(layer, params, cache, (y[:, :, :3], None))
    with pytest.raises(errors.ShapeError, match=r"^gru: expected the final state's gradient of shape \(1,"):
        backward_flow(layer, params, cache, (y, h[:, :1]))


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ValueError, match="gru: hidden_size must be a positive int"):
        L.gru(0)
    with pytest.raises(ValueError, match="lstm: num_layers must be a positive int"):
        L.lstm(3, num_layers=0)
    with pytest.raises(ValueError, match="rnn: nonlinearity must be 'tanh' or 'relu'"):
        L.rnn(3, nonlinearity="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(errors.ShapeError, match=r"^lstm: expected an input shape \(batch, time, features\)"):
        L.lstm(3).init(fdl.random.key(0), (None, 4))


def test_state_rows_are_layer_major() -> None:
    """Row ``l * directions + d`` of the initial state belongs to layer ``l``, direction ``d``."""
    cfg = RecurrentConfig("gru", 2, 2, True, True, 2, 3, 2, None, True, 0)
    layer, params, (x, state, _) = _setup(cfg, True)
    (_, h_n), _ = forward_flow(layer, params, (x, state))
    # Only the top layer's forward direction sees row 2: changing it changes h_n row 2 alone among rows 0, 1.
    bumped = state.copy()
    bumped[2] += 1
    (_, h_b), _ = forward_flow(layer, params, (x, bumped))
    assert h_n[:2].tobytes() == h_b[:2].tobytes() and not np.array_equal(h_n[2], h_b[2])
    assert state_of(cfg).shape == (4, 2, 2)
