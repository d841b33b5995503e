"""Every registry case that PyTorch has, compared with PyTorch in float64 via ``torch.autograd``.

Forward values, ``dx``, every parameter gradient and (for batch norm) the new running statistics
must agree to 1e-10 relative (``max |ours - torch| / max |torch|`` per array), on the same
hypothesis-drawn inputs as the contract tests, with params copied across by key. Gradients that pass
through a saturated ``tanh`` or ``sigmoid`` are compared relative to the scale of the terms their
derivative cancels (``torch_refs.TERM_SCALES``), since both libraries round them at that scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_dl as fdl
from tests.layers.cases import LAYER_CASES, LayerCase
from tests.layers.inputs import draw_case

torch = pytest.importorskip("torch")
from tests.layers.torch_refs import NORMALISED, TERM_SCALES, TORCH_REFS, rel_diff, to_torch  # noqa: E402

pytestmark = pytest.mark.torch

RTOL = 1e-10
CASES = [c for c in LAYER_CASES if c.id in TORCH_REFS]


def test_every_reference_names_a_case() -> None:
    assert set(TORCH_REFS) <= {c.id for c in LAYER_CASES}
    assert set(TERM_SCALES) <= set(TORCH_REFS)


def _term_scales(
    case: LayerCase, params: fdl.Params, x: np.ndarray, state: fdl.Buffers, dy: np.ndarray
) -> dict[str, float]:
    """``max |grad|`` of ``dx`` and each param with saturating slopes set to 1 (empty for other cases)."""
    ref = TERM_SCALES.get(case.id)
    if ref is None:
        return {}
    p_t = to_torch(params, requires_grad=True)
    x_t = torch.tensor(x, requires_grad=True)
    y_t = ref(p_t, x_t, to_torch(state, requires_grad=False), case.train)
    y_t.backward(torch.tensor(dy))  # type: ignore[no-untyped-call]
    grads = {"dx": x_t.grad, **{k: t.grad for k, t in p_t.items()}}
    return {k: float(g.abs().max()) for k, g in grads.items() if g is not None}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@given(data=st.data())
def test_matches_torch(case: LayerCase, data: st.DataObject) -> None:
    layer, params, x, ctx, _ = draw_case(case, data, np.float64)
    y, cache = layer.forward(params, x, ctx)
    dy = fdl.random.normal(fdl.random.key(5), y.shape, np.float64)
    dx, grads = layer.backward(params, cache, dy)

    p_t = to_torch(params, requires_grad=True)
    s_t = to_torch(ctx.buffers, requires_grad=False)
    x_t = torch.tensor(x, requires_grad=True)
    y_t = TORCH_REFS[case.id](p_t, x_t, s_t, case.train)
    y_t.backward(torch.tensor(dy))  # type: ignore[no-untyped-call]

    floor = 1.0 if case.id in NORMALISED else 0.0
    terms = _term_scales(case, params, x, ctx.buffers, dy)
    assert rel_diff(y, y_t.detach().numpy(), floor) <= RTOL
    assert x_t.grad is not None
    assert rel_diff(dx, x_t.grad.numpy(), max(floor, terms.get("dx", 0.0))) <= RTOL
    assert grads.keys() == p_t.keys()
    for k, g in grads.items():
        g_t = p_t[k].grad
        assert g_t is not None, k
        assert rel_diff(g, g_t.numpy(), max(floor, terms.get(k, 0.0))) <= RTOL, k
    new_state = layer.buffers_of(cache)
    assert new_state.keys() == s_t.keys()
    for k, s in new_state.items():
        assert rel_diff(s, s_t[k].numpy()) <= RTOL, k
