"""What a recurrent cell is: one step forward and one step back, as PyTorch lays out the gates.

A cell maps the input projection of one step and the previous state to the new state::

    xw_t = x_t @ weight_ih.T + bias_ih          (batch, gates * hidden), for all t in one product
    state_t, saved_t = step(xw_t, state_{t-1}, weight_hh, bias_hh)

``state`` is a tuple: ``(h,)`` for the Elman RNN and the GRU, ``(h, c)`` for the LSTM, each
``(batch, hidden)``; ``h`` is always first and is the step's output. ``saved_t`` is whatever the
step back needs (gate activations, the previous state's parts it multiplies).

The step back turns the gradient of the new state into the gradients of the two pre-activations
and of the previous state::

    dstate_{t-1} = step_back(saved_t, weight_hh, dstate_t, da_x_t, da_h_t)

writing ``dL/d xw_t`` into ``da_x_t`` and ``dL/d (h_{t-1} @ weight_hh.T + bias_hh)`` into
``da_h_t``: rows of buffers the driver allocated for all steps (NumPy's ``out=`` convention: the
step writes only there and into arrays it makes). They are one buffer for cells whose recurrent
term is added straight to the input term (Elman, LSTM) and two for the GRU, whose candidate gate
multiplies the recurrent term by the reset gate. The driver
(:mod:`functional_dl.layers.recurrent._time`) then forms every weight gradient as one matrix
product after the loop::

    d weight_ih = sum_t da_x_t.T @ x_t      d weight_hh = sum_t da_h_t.T @ h_{t-1}
    d bias_ih   = sum_t da_x_t              d bias_hh   = sum_t da_h_t

The same cells fold ``bias_hh`` into the input projection (``folds_bias``): it is added once for
all steps instead of once per step, and the step is given ``None`` for it.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypeAlias

from functional_dl.types import Array

__all__ = ["Cell", "Saved", "State", "StepBackFn", "StepFn"]

#: A cell's state: ``(h,)`` or ``(h, c)``, each ``(batch, hidden)``.
State: TypeAlias = tuple[Array, ...]
#: What one step keeps for its step back.
Saved: TypeAlias = tuple[Array, ...]


class StepFn(Protocol):
    """``(xw_t, state, weight_hh, bias_hh) -> (new_state, saved)``: one step forward."""

    def __call__(
        self, xw: Array, state: State, w_hh: Array, b_hh: Array | None, /
    ) -> tuple[State, Saved]: ...


class StepBackFn(Protocol):
    """``(saved, weight_hh, dstate, da_x, da_h) -> dstate_prev``, filling ``da_x`` and ``da_h``."""

    def __call__(self, saved: Saved, w_hh: Array, dstate: State, da_x: Array, da_h: Array, /) -> State: ...


class Cell(NamedTuple):
    """A recurrent cell: its gate count, state size and the two step functions.

    Attributes:
        name: the layer kind for messages (``"rnn"``, ``"gru"``, ``"lstm"``).
        gates: how many ``hidden``-sized blocks the weights stack (1, 3 or 4).
        states: how many arrays the state holds (1, or 2 for the LSTM's ``(h, c)``).
        step: one step forward.
        step_back: one step back.
        separate_grads: whether ``da_x`` and ``da_h`` differ (the GRU); when not, the driver
            keeps one buffer for both and passes it twice.
        folds_bias: whether ``bias_hh`` may be added to the input projection instead.
    """

    name: str
    gates: int
    states: int
    step: StepFn
    step_back: StepBackFn
    separate_grads: bool = False
    folds_bias: bool = False
