"""Regularisation terms added to the loss: pure ``(params) -> (value, grads)`` functions.

A term here is a function of the parameters alone. Its ``grads`` have exactly the keys, shapes and
dtypes of ``params`` (zeros where the term does not depend on a parameter), so they add to a
network's grads key by key. Bound with ``functools.partial`` it is a
:class:`functional_dl.train.Penalty`, the ``penalty=`` of :func:`functional_dl.train.fit` and
:func:`functional_dl.train.train_step`, which minimise ``loss + value``::

    penalty = partial(l2_penalty, strength=1e-4, mask=optim.weights_only)
    train.fit(net, loss, opt, train_state, data, key=key, epochs=10, batch_size=32, penalty=penalty)

**Loss-side L2 against decoupled weight decay.** ``l2_penalty`` adds ``strength * p`` to the
gradient before the optimizer sees it. For plain SGD that *is* weight decay:
``p <- p - lr * (g + strength * p)``, exactly what ``torch.optim.SGD(weight_decay=strength)`` and
``optim.add_decayed_weights(strength)`` placed before the learning rate compute (with momentum too,
since all three add the term before the momentum buffer). For adaptive optimizers the two differ:
the L2 gradient is divided by Adam's ``sqrt(v)`` like any other gradient (``torch.optim.Adam``'s
``weight_decay``), whereas decoupled weight decay (:func:`functional_dl.optim.adamw`, AdamW)
shrinks ``p`` by ``lr * wd * p`` outside the adaptive scaling. Use this module when the penalty
belongs to the objective (its value is logged and it is the same for every optimizer); use the
optimizer's decay for AdamW.
"""

from __future__ import annotations

import math

import numpy as np

from functional_dl.errors import DomainError
from functional_dl.optim.groups import Mask, selected_keys
from functional_dl.types import Array, Params

__all__ = ["l2_penalty"]


def l2_penalty(
    params: Params, /, strength: float, mask: Mask | None = None
) -> tuple[Array, dict[str, Array]]:
    """The classic L2 term ``(strength / 2) * sum_k ||p_k||^2`` and its gradient.

    Over the keys ``k`` that ``mask`` selects (every key when ``mask`` is ``None``)::

        value   = (strength / 2) * sum_k sum_i p_k[i]^2
        grads_k = strength * p_k      if the mask selects k
        grads_k = 0                   otherwise

    Args:
        params: the parameters, a mapping from dotted keys to float arrays of any shape.
        strength: the coefficient ``lambda >= 0``; ``torch.optim.SGD(weight_decay=lambda)`` adds
            the same ``lambda * p`` to the gradient.
        mask: which parameters are penalised, as for the optimizers' masks: a predicate on the
            key (:func:`functional_dl.optim.weights_only` spares biases and norm scales,
            :func:`functional_dl.optim.key_pattern`) or a mapping ``key -> bool`` naming every key.

    Returns:
        ``(value, grads)``: ``value`` a 0-d array, ``grads`` new arrays with exactly the keys,
        shapes and dtypes of ``params``. float32 params give a float32 value and float32 grads
        (``value`` has the dtype that all the params promote to). ``params`` is not modified.

    Raises:
        DomainError: (a ``ValueError``) when ``strength`` is negative or not finite.
        ParamsError: when a mapping ``mask`` leaves out a key of ``params``.

    Example:
        >>> from functools import partial
        >>> import numpy as np
        >>> from functional_dl.optim import weights_only
        >>> params = {"0.w": np.array([[1.0, -2.0]], np.float32), "0.b": np.array([3.0], np.float32)}
        >>> value, grads = l2_penalty(params, 0.5, mask=weights_only)   # 0.25 * (1 + 4)
        >>> float(value), value.dtype, grads["0.w"], grads["0.b"]
        (1.25, dtype('float32'), array([[ 0.5, -1. ]], dtype=float32), array([0.], dtype=float32))
        >>> penalty = partial(l2_penalty, strength=0.5, mask=weights_only)   # a train.Penalty
    """
    if not (math.isfinite(strength) and strength >= 0):
        raise DomainError("l2_penalty", f"strength must be finite and >= 0, got {strength!r}")
    # A NumPy float64 strength would promote float32 params; a Python float is weakly typed.
    strength = float(strength)
    chosen = frozenset(params) if mask is None else selected_keys(mask, params, "l2_penalty")
    dtype = np.result_type(*params.values()) if params else np.dtype(np.float64)
    total = np.zeros((), dtype)
    for k, p in params.items():
        if k in chosen:
            total = total + np.vdot(p, p)
    value = np.asarray(total * (strength / 2), dtype=dtype)
    grads = {k: p * strength if k in chosen else np.zeros_like(p) for k, p in params.items()}
    return value, grads
