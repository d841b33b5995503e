"""Named optimizers. Each is a :func:`~functional_dl.optim.transforms.chain` and nothing more.

The chain is fused (:func:`~functional_dl.optim.fuse.fuse`: one flat vector per dtype,
far fewer NumPy calls, and large arrays updated block by block) exactly when every part of it
declares itself elementwise, so a mask or a trust ratio keeps its meaning; read the state per
parameter with
:func:`~functional_dl.optim.fuse.find_state`. A named optimizer is also a part like any other:
``chain(clip_by_global_norm(1.0), adam(1e-3))`` takes its transformation, as in optax.

Defaults and the meaning of every argument follow ``torch.optim`` where PyTorch has the optimizer
(``weight_decay`` of ``sgd``/``adam``/... is L2 added to the gradient, AdamW's is decoupled), so a
PyTorch user gets the same trajectory with the same numbers. Each ``learning_rate`` is a number or a
schedule (:mod:`functional_dl.optim.schedules`). In the update rules ``g`` is the gradient, ``p``
the parameter, ``lr`` the learning rate and ``wd`` the weight decay.

Every factory checks its hyperparameters when it is called (a NaN, a negative rate or decay, a beta
outside its range, a bool where a number belongs, a string, ``None``): it raises
:class:`~functional_dl.errors.DomainError` whose path names the optimizer and the part that refused
the value (``"adam.scale_by_adam: b1 must be in [0, 1), got 1.5"``).

float16 params: the adaptive optimizers (Adam, AdamW, AMSGrad, NAdam, RAdam, RMSprop, Adagrad,
Adadelta) keep their moments in float32 (:func:`~functional_dl.optim.base.moment_zeros`), so a
zero or tiny gradient gives a zero or tiny step rather than NaN; the step is cast back to float16.
"""

from __future__ import annotations

from typing import Any

from functional_dl._argcheck import bounded, flag, within
from functional_dl.errors import DomainError
from functional_dl.optim.adam import scale_by_adam, scale_by_nadam, scale_by_radam
from functional_dl.optim.adamax_adafactor import scale_by_adafactor, scale_by_adamax
from functional_dl.optim.adaptive import scale_by_adadelta, scale_by_adagrad, scale_by_rms
from functional_dl.optim.base import GradientTransformation, Optimizer, Schedule, optimizer
from functional_dl.optim.fuse import _fused_optimizer
from functional_dl.optim.groups import Mask
from functional_dl.optim.lion import scale_by_lion
from functional_dl.optim.schedules import inverse_time_decay
from functional_dl.optim.transforms import add_decayed_weights, chain, scale_by_learning_rate, trace
from functional_dl.optim.trust_ratio import scale_by_trust_ratio

__all__ = [
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "amsgrad",
    "lamb",
    "lars",
    "lion",
    "nadam",
    "radam",
    "rmsprop",
    "sgd",
]

LR = float | Schedule


def _named_optimizer(*parts: GradientTransformation[Any] | None) -> Optimizer[object]:
    # Elementwise chains run on one flat vector per dtype: same numbers, far fewer NumPy calls.
    whole = chain(*(p for p in parts if p is not None))
    made: Optimizer[Any] = _fused_optimizer(whole) if whole.elementwise else optimizer(whole)
    return made


def _decay(weight_decay: float, mask: Mask | None = None) -> GradientTransformation[Any] | None:
    # Zero decay adds no transformation at all: plain optimizers pay nothing for the option. It is
    # built anyway, so that its arguments are checked whatever their value.
    decay = add_decayed_weights(weight_decay, mask)
    return decay if weight_decay else None


def _momentum(
    momentum: float, nesterov: bool = False, dampening: float = 0.0
) -> GradientTransformation[Any] | None:
    # Zero momentum adds no transformation (its arguments are checked all the same, as in _decay).
    made = trace(momentum, nesterov, dampening)
    return made if momentum else None


def _decay_around(
    scaling: GradientTransformation[Any], weight_decay: float, *, decoupled: bool
) -> tuple[GradientTransformation[Any] | None, ...]:
    # L2 decay goes before the adaptive scaling (it is scaled too); decoupled decay after it.
    if flag(decoupled, "decoupled_weight_decay", "add_decayed_weights"):
        return (scaling, _decay(weight_decay))
    return (_decay(weight_decay), scaling)


def sgd(
    learning_rate: LR,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer[object]:
    """Stochastic gradient descent, with momentum as ``torch.optim.SGD`` defines it.

    Update rule::

        d_t = g_t + wd p_{t-1}
        m_1 = d_1                                        (momentum > 0 only; never dampened)
        m_t = momentum m_{t-1} + (1 - dampening) d_t     (t > 1)
        p_t = p_{t-1} - lr (m_t, or d_t + momentum m_t with nesterov, or d_t without momentum)

    ``dampening`` acts only with momentum (as in PyTorch) and must be 0 with ``nesterov``.

    Raises:
        DomainError: for ``nesterov`` without momentum or with dampening, and for any bad
            hyperparameter (see the module docstring).

    Example:
        >>> import numpy as np
        >>> opt = sgd(0.1, momentum=0.9)
        >>> state = opt.init({"w": np.array([1.0])})
        >>> state, params = opt.update(state, {"w": np.array([1.0])})
        >>> params["w"]
        array([0.9])
    """
    momentum = bounded(momentum, "momentum", "sgd", 0.0)
    dampening = bounded(dampening, "dampening", "sgd", 0.0, 1.0)
    if flag(nesterov, "nesterov", "sgd") and (not momentum or dampening):
        raise DomainError(
            "sgd",
            "Nesterov momentum requires a momentum and zero dampening, "
            f"got momentum={momentum}, dampening={dampening}",
        )
    with within("sgd"):
        return _named_optimizer(
            _decay(weight_decay),
            _momentum(momentum, nesterov, dampening),
            scale_by_learning_rate(learning_rate),
        )


def adam(
    learning_rate: LR = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> Optimizer[object]:
    """Adam (Kingma and Ba, 2015), as ``torch.optim.Adam``.

    Update rule (``d_t = g_t + wd p_{t-1}``, ``m_0 = v_0 = 0``)::

        m_t = b1 m_{t-1} + (1 - b1) d_t          v_t = b2 v_{t-1} + (1 - b2) d_t^2
        p_t = p_{t-1} - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)

    With ``amsgrad``, ``v_t`` in the denominator is ``max(v_1, ..., v_t)``.
    """
    with within("adam"):
        return _named_optimizer(
            _decay(weight_decay),
            scale_by_adam(b1, b2, eps, eps_root, amsgrad),
            scale_by_learning_rate(learning_rate),
        )


def amsgrad(
    learning_rate: LR = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer[object]:
    """AMSGrad (Reddi et al., 2018): :func:`adam` with ``amsgrad=True``.

    Update rule: Adam's, with ``v_t`` in the denominator replaced by ``max(v_1, ..., v_t)``.
    """
    with within("amsgrad"):
        return adam(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, amsgrad=True)


def adamw(
    learning_rate: LR = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    mask: Mask | None = None,
    amsgrad: bool = False,
) -> Optimizer[object]:
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Update rule (Adam's ``m_t``, ``v_t`` on the raw gradient)::

        p_t = p_{t-1} - lr (m_hat_t / (sqrt(v_hat_t) + eps) + wd p_{t-1})

    ``mask`` chooses the parameters that decay (``weights_only`` spares biases and norm scales);
    ``None`` decays all of them, as PyTorch does.
    """
    with within("adamw"):
        return _named_optimizer(
            scale_by_adam(b1, b2, eps, 0.0, amsgrad),
            _decay(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )


def nadam(
    learning_rate: LR = 2e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
) -> Optimizer[object]:
    """NAdam (Dozat, 2016), as ``torch.optim.NAdam`` (with its momentum decay).

    Update rule (``d_t = g_t + wd p_{t-1}``; ``m_t``, ``v_t`` as in Adam on ``d_t``)::

        mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay))          P_t = mu_1 ... mu_t
        p_t = p_{t-1} - lr [(1 - mu_t) / (1 - P_t) d_t + mu_{t+1} / (1 - P_t mu_{t+1}) m_t]
                        / (sqrt(v_t / (1 - b2^t)) + eps)

    With ``decoupled_weight_decay`` (PyTorch's NAdamW), ``d_t = g_t`` and ``lr wd p_{t-1}`` is
    subtracted from the parameter instead, as in AdamW.
    """
    with within("nadam"):
        return _named_optimizer(
            *_decay_around(
                scale_by_nadam(b1, b2, eps, momentum_decay), weight_decay, decoupled=decoupled_weight_decay
            ),
            scale_by_learning_rate(learning_rate),
        )


def radam(
    learning_rate: LR = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
) -> Optimizer[object]:
    """RAdam (Liu et al., 2020), as ``torch.optim.RAdam``.

    Update rule (``m_t``, ``v_t`` as in Adam on ``d_t = g_t + wd p_{t-1}``)::

        rho_inf = 2 / (1 - b2) - 1        rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        p_t = p_{t-1} - lr m_t / (1 - b1^t)                                        if rho_t <= 5
        p_t = p_{t-1} - lr r_t m_t / (1 - b1^t) sqrt(1 - b2^t) / (sqrt(v_t) + eps)  otherwise
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

    With ``decoupled_weight_decay``, ``d_t = g_t`` and ``lr wd p_{t-1}`` is subtracted from the
    parameter instead, as in AdamW.
    """
    with within("radam"):
        return _named_optimizer(
            *_decay_around(scale_by_radam(b1, b2, eps), weight_decay, decoupled=decoupled_weight_decay),
            scale_by_learning_rate(learning_rate),
        )


def rmsprop(
    learning_rate: LR = 1e-2,
    *,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> Optimizer[object]:
    """RMSprop (Hinton, 2012), as ``torch.optim.RMSprop``.

    Update rule (``d_t = g_t + wd p_{t-1}``, ``v_0 = a_0 = b_0 = 0``)::

        v_t = alpha v_{t-1} + (1 - alpha) d_t^2
        a_t = alpha a_{t-1} + (1 - alpha) d_t                 (centered only)
        s_t = d_t / (sqrt(v_t - a_t^2 if centered else v_t) + eps)
        b_t = momentum b_{t-1} + s_t                         (momentum > 0 only, else b_t = s_t)
        p_t = p_{t-1} - lr b_t
    """
    with within("rmsprop"):
        return _named_optimizer(
            _decay(weight_decay),
            scale_by_rms(alpha, eps, centered),
            _momentum(momentum),
            scale_by_learning_rate(learning_rate),
        )


def adagrad(
    learning_rate: LR = 1e-2,
    *,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Optimizer[object]:
    """Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    Update rule (``d_t = g_t + wd p_{t-1}``, ``s_0 = initial_accumulator_value``)::

        s_t = s_{t-1} + d_t^2
        p_t = p_{t-1} - lr / (1 + (t - 1) lr_decay) * d_t / (sqrt(s_t) + eps)

    ``lr_decay`` needs a numeric ``learning_rate`` (it is :func:`inverse_time_decay`).
    """
    lr: LR = learning_rate
    if bounded(lr_decay, "lr_decay", "adagrad", 0.0):
        if callable(learning_rate):
            raise DomainError(
                "adagrad", "lr_decay needs a numeric learning_rate; compose the schedule yourself"
            )
        with within("adagrad"):
            lr = inverse_time_decay(learning_rate, lr_decay)
    with within("adagrad"):
        return _named_optimizer(
            _decay(weight_decay), scale_by_adagrad(initial_accumulator_value, eps), scale_by_learning_rate(lr)
        )


def adadelta(
    learning_rate: LR = 1.0, *, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0
) -> Optimizer[object]:
    """Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    Update rule (``d_t = g_t + wd p_{t-1}``, ``v_0 = a_0 = 0``)::

        v_t = rho v_{t-1} + (1 - rho) d_t^2
        s_t = sqrt(a_{t-1} + eps) / sqrt(v_t + eps) * d_t
        a_t = rho a_{t-1} + (1 - rho) s_t^2
        p_t = p_{t-1} - lr s_t
    """
    with within("adadelta"):
        return _named_optimizer(
            _decay(weight_decay), scale_by_adadelta(rho, eps), scale_by_learning_rate(learning_rate)
        )


def lion(
    learning_rate: LR = 1e-4,
    *,
    b1: float = 0.9,
    b2: float = 0.99,
    weight_decay: float = 0.0,
    mask: Mask | None = None,
) -> Optimizer[object]:
    """Lion (Chen et al., 2023), with decoupled weight decay.

    Update rule (``m_0 = 0``)::

        p_t = p_{t-1} - lr (sign(b1 m_{t-1} + (1 - b1) g_t) + wd p_{t-1})
        m_t = b2 m_{t-1} + (1 - b2) g_t
    """
    with within("lion"):
        return _named_optimizer(
            scale_by_lion(b1, b2),
            _decay(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        )


def lamb(
    learning_rate: LR = 1e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    mask: Mask | None = None,
) -> Optimizer[object]:
    """LAMB (You et al., 2020): Adam's step with decoupled decay, rescaled per layer by a trust ratio.

    Update rule, per parameter array (``m_hat``, ``v_hat`` Adam's bias-corrected moments)::

        r_t = m_hat_t / (sqrt(v_hat_t) + eps) + wd p_{t-1}
        p_t = p_{t-1} - lr ||p_{t-1}|| / ||r_t|| r_t          (ratio 1 when either norm is 0)
    """
    with within("lamb"):
        return _named_optimizer(
            scale_by_adam(b1, b2, eps),
            _decay(weight_decay, mask),
            scale_by_trust_ratio(),
            scale_by_learning_rate(learning_rate),
        )


def lars(
    learning_rate: LR,
    *,
    weight_decay: float = 0.0,
    mask: Mask | None = None,
    trust_coefficient: float = 1e-3,
    eps: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> Optimizer[object]:
    """LARS (You et al., 2017): momentum SGD on per-layer trust-ratio-scaled gradients.

    Update rule, per parameter array (``eta = trust_coefficient``)::

        d_t = g_t + wd p_{t-1}
        s_t = eta ||p_{t-1}|| / (||d_t|| + eps) d_t            (ratio 1 when either norm is 0)
        m_t = momentum m_{t-1} + s_t                           (m_0 = 0; nesterov as in sgd)
        p_t = p_{t-1} - lr m_t
    """
    with within("lars"):
        return _named_optimizer(
            _decay(weight_decay, mask),
            scale_by_trust_ratio(trust_coefficient, eps),
            _momentum(momentum, nesterov),
            scale_by_learning_rate(learning_rate),
        )


def adamax(
    learning_rate: LR = 2e-3,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer[object]:
    """Adamax (Kingma and Ba, 2015), as ``torch.optim.Adamax``.

    Update rule (``d_t = g_t + wd p_{t-1}``, ``m_0 = u_0 = 0``)::

        m_t = b1 m_{t-1} + (1 - b1) d_t
        u_t = max(b2 u_{t-1}, |d_t| + eps)
        p_t = p_{t-1} - lr m_t / ((1 - b1^t) u_t)
    """
    with within("adamax"):
        return _named_optimizer(
            _decay(weight_decay), scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate)
        )


def adafactor(
    learning_rate: float = 1e-2,
    *,
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    eps2: float = 1e-3,
    d: float = 1.0,
    weight_decay: float = 0.0,
) -> Optimizer[object]:
    """Adafactor (Shazeer and Stern, 2018), as ``torch.optim.Adafactor`` (not optax's variant).

    Update rule (``R``, ``C``, ``V`` the factored or full second moments of
    :mod:`functional_dl.optim.adamax_adafactor`)::

        U_t = g_t / sqrt(max(V_t, eps1^2))
        p_t = p_{t-1} (1 - lr wd) - max(eps2, rms(p_{t-1})) min(lr, 1 / sqrt(t)) U_t / max(1, rms(U_t) / d)

    ``learning_rate`` is a positive number: it caps the relative step size ``min(lr, 1 / sqrt(t))``
    (PyTorch's meaning), and the decoupled weight decay is ``lr wd p``.
    """
    if callable(learning_rate):
        raise DomainError("adafactor", "learning_rate must be a number (it caps the relative step size)")
    with within("adafactor"):
        return _named_optimizer(
            scale_by_adafactor(learning_rate, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d),
            _decay(weight_decay),
            scale_by_learning_rate(learning_rate),
        )
