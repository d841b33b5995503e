"""The sweep over every loss and every metric: inputs wrong in one way at a time.

Every loss exported by ``fdl.losses`` (found from ``losses.__all__``, each needing a case in the
registry ``tests/losses/cases.py``) and every metric exported by ``fdl.metrics`` (from
``metrics.__all__``, each needing a case in :data:`METRIC_CASES` below) is fed a valid
hypothesis-drawn input changed in exactly one way: the prediction, the target or the weights as a
list, an integer, boolean, complex, object, string, masked array or ``np.matrix``, a scalar, the wrong shape,
holding NaN or ±infinity; a bad ``reduction`` or hyperparameter; an empty batch. Each call must
either raise one of the library's own exceptions, or, where the input is meaningful, give the
documented answer: a list gives exactly the array's result, a NaN prediction a NaN value, an
infinite one no warning. Any raw exception, any warning, any silent acceptance and any mutated
input fails the sweep. float32 in gives float32 out, float64 works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from functional_dl import losses, metrics
from tests.losses.cases import LOSS_CASES, LossCase
from tests.sweep import accepted, accepted_or_refused, masked, matrix, refused, snapshot, unchanged

SWEEP = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Arr = np.ndarray[Any, Any]


def _underlying(fn: Callable[..., object]) -> Callable[..., object]:
    return fn.func if isinstance(fn, partial) else fn


#: Every loss function exported by fdl.losses (``cross_entropy`` is an alias of ``softmax_cross_entropy``).
PUBLIC_LOSSES = {
    name: getattr(losses, name) for name in losses.__all__ if inspect.isfunction(getattr(losses, name))
}
#: Every metric function exported by fdl.metrics.
PUBLIC_METRICS = {
    name: getattr(metrics, name) for name in metrics.__all__ if inspect.isfunction(getattr(metrics, name))
}

# ---- wrong in one way: the shared kinds ---------------------------------------------------------


def _one_at(a: Arr, value: float, where: int = 0) -> Arr:
    out = a.astype(np.float64)  # a copy, so integer labels can hold NaN too
    out.flat[where] = value
    return out


#: Non-numeric or unsupported forms of an array: each must be refused wherever numbers are expected.
NOT_NUMBERS: dict[str, Callable[[Arr], object]] = {
    "complex": lambda a: a.astype(np.complex128) + 1j,
    "object": lambda a: a.astype(object),
    "numeric strings": lambda a: a.astype(str),
    "masked array": masked,
    "np.matrix": matrix,
    "a scalar": lambda a: a.flat[0],
    "None": lambda a: None,
}

BAD_REDUCTIONS: list[object] = ["avg", "MEAN", "", None, 1, ["mean"], np.array("mean")]

#: Bad values for every keyword hyperparameter a loss takes (a new keyword must be added here).
BAD_LOSS_KEYWORDS: dict[str, list[object]] = {
    "delta": [0.0, -1.0, float("nan"), "1", None, True, np.array([1.0, 2.0])],
    "label_smoothing": [-0.1, 1.5, float("nan"), "0.1", None, np.array([0.1, 0.2])],
    "margin": [float("nan"), float("inf"), "1", None, True],
    "log_target": ["yes", None, 1, np.array([True, False])],
}
GENERIC_LOSS_KEYWORDS = {"reduction", "weights"}


def _keywords(fn: Callable[..., object]) -> list[str]:
    params = inspect.signature(_underlying(fn)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def test_every_public_loss_has_a_case_in_the_registry() -> None:
    covered = {_underlying(c.fn) for c in LOSS_CASES}
    assert [name for name, fn in PUBLIC_LOSSES.items() if fn not in covered] == []


def test_every_loss_keyword_has_bad_values_in_the_sweep() -> None:
    for name, fn in PUBLIC_LOSSES.items():
        unknown = set(_keywords(fn)) - GENERIC_LOSS_KEYWORDS - BAD_LOSS_KEYWORDS.keys()
        assert not unknown, f"{name}: add bad values for {sorted(unknown)} to BAD_LOSS_KEYWORDS"


# ---- losses -------------------------------------------------------------------------------------


def _weights_shape(case: LossCase, pred: Arr) -> tuple[int, ...]:
    return (pred.shape[0], *pred.shape[2:]) if case.per_sample else pred.shape


def _valid(case: LossCase, data: st.DataObject) -> tuple[Arr, Arr, Arr]:
    pred, target = case.draw(data)
    weights = np.linspace(0.5, 2.0, int(np.prod(_weights_shape(case, pred)))).reshape(
        _weights_shape(case, pred)
    )
    return pred, target, weights


def _same(a: object, b: object) -> None:
    """Results equal bit for bit (NaN equal to NaN), dtypes included."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
        return
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_array_equal(a, b)
        return
    assert a == b or (np.isnan(a) and np.isnan(b)), (a, b)  # type: ignore[call-overload]  # floats


@dataclass(frozen=True)
class Loss:
    """A loss call with everything it is given, so the sweep can check that nothing changed."""

    fn: Callable[..., tuple[Arr, Arr]]
    pred: object
    target: object
    kwargs: dict[str, Any]

    def __call__(self) -> tuple[Arr, Arr]:
        return self.fn(self.pred, self.target, **self.kwargs)


def _loss_refused(call: Loss) -> None:
    before = snapshot([call.pred, call.target, call.kwargs.get("weights")])
    refused(call)
    unchanged(before, [call.pred, call.target, call.kwargs.get("weights")])


def _loss_accepted(call: Loss) -> tuple[Arr, Arr]:
    before = snapshot([call.pred, call.target, call.kwargs.get("weights")])
    out: tuple[Arr, Arr] = accepted(call)
    unchanged(before, [call.pred, call.target, call.kwargs.get("weights")])
    return out


def _refused_or_quiet(call: Loss) -> None:
    """An input a loss may refuse or compute with (an infinite prediction): never a raw error or a warning."""
    before = snapshot([call.pred, call.target, call.kwargs.get("weights")])
    accepted_or_refused(call)
    unchanged(before, [call.pred, call.target, call.kwargs.get("weights")])


LOSS_IDS = [c.id for c in LOSS_CASES]
CASE = {c.id: c for c in LOSS_CASES}
#: Cases whose target may be -inf (a log-probability of a zero probability).
NEG_INF_TARGET_OK = {"kl_log_target"}


def _nan_position(case: LossCase, target: Arr) -> int:
    """Where a NaN prediction must show: for KL, where the target probability is largest (p > 0)."""
    return int(np.argmax(target)) if case.id.startswith("kl") else 0


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_losses_take_only_floating_predictions(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, weights = _valid(case, data)
    kw = {"weights": weights}
    good = _loss_accepted(Loss(case.fn, pred, target, kw))
    _same(_loss_accepted(Loss(case.fn, pred.tolist(), target, kw)), good)  # a list is converted
    for kind in ("int", "bool"):
        _loss_refused(Loss(case.fn, pred.astype(kind), target, kw))
    for make in NOT_NUMBERS.values():
        _loss_refused(Loss(case.fn, make(pred), target, kw))


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_a_nan_prediction_gives_a_nan_loss_quietly(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, _ = _valid(case, data)
    at = _nan_position(case, target)
    value, grad = _loss_accepted(Loss(case.fn, _one_at(pred, np.nan, at), target, {"reduction": "sum"}))
    assert np.isnan(value), "a NaN prediction was hidden in the loss"
    if not case.id.startswith("kl"):  # KL is linear in log_pred: its gradient -p does not depend on it
        assert np.isnan(grad).any(), "a NaN prediction was hidden in the gradient"
    for extreme in (np.inf, -np.inf, 1e300):
        for reduction in ("sum", "none"):
            _refused_or_quiet(Loss(case.fn, _one_at(pred, extreme, at), target, {"reduction": reduction}))


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_losses_refuse_bad_targets(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, weights = _valid(case, data)
    kw = {"weights": weights}
    good = _loss_accepted(Loss(case.fn, pred, target, kw))
    _same(_loss_accepted(Loss(case.fn, pred, target.tolist(), kw)), good)
    _loss_refused(Loss(case.fn, pred, np.concatenate([target, target[:1]]), kw))  # one sample more
    _loss_refused(Loss(case.fn, pred, target[..., None], kw))  # an extra axis, never broadcast
    _loss_refused(Loss(case.fn, pred, _one_at(target, np.nan), kw))
    _loss_refused(Loss(case.fn, pred, _one_at(target, np.inf), kw))
    if case.id in NEG_INF_TARGET_OK:
        value, _ = _loss_accepted(Loss(case.fn, pred, _one_at(target, -np.inf), {"reduction": "sum"}))
        assert np.isfinite(value), "a zero probability (log-target -inf) must add 0, not NaN"
    else:
        _loss_refused(Loss(case.fn, pred, _one_at(target, -np.inf), kw))
    for make in NOT_NUMBERS.values():
        _loss_refused(Loss(case.fn, pred, make(target), kw))


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_losses_refuse_bad_weights(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, weights = _valid(case, data)
    good = _loss_accepted(Loss(case.fn, pred, target, {"weights": weights}))
    _same(_loss_accepted(Loss(case.fn, pred, target, {"weights": weights.tolist()})), good)
    bad: list[object] = [
        _one_at(weights, np.nan),
        _one_at(weights, np.inf),
        _one_at(weights, -np.inf),
        np.ones((*weights.shape[:-1], weights.shape[-1] + 1)),  # does not broadcast
        np.ones((2, *weights.shape)),  # would enlarge the loss
    ]
    bad += [make(weights) for name, make in NOT_NUMBERS.items() if name not in ("a scalar", "None")]
    for w in bad:
        _loss_refused(Loss(case.fn, pred, target, {"weights": w}))


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_losses_refuse_bad_reductions_and_hyperparameters(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, _ = _valid(case, data)
    for reduction in BAD_REDUCTIONS:
        err = refused(Loss(case.fn, pred, target, {"reduction": reduction}))
        assert "'mean', 'sum', 'none'" in str(err)  # the valid choices are listed
    for name in _keywords(case.fn):
        for value in BAD_LOSS_KEYWORDS.get(name, []):
            _loss_refused(Loss(case.fn, pred, target, {name: value}))


@pytest.mark.parametrize("case_id", LOSS_IDS)
@SWEEP
@given(data=st.data())
def test_losses_keep_the_prediction_dtype(case_id: str, data: st.DataObject) -> None:
    case = CASE[case_id]
    pred, target, weights = _valid(case, data)
    for dtype in (np.float32, np.float64):
        p = pred.astype(dtype)
        for reduction in ("mean", "sum", "none"):
            value, grad = _loss_accepted(
                Loss(case.fn, p, target, {"weights": weights, "reduction": reduction})
            )
            assert value.dtype == dtype and grad.dtype == dtype, (reduction, value.dtype, grad.dtype)
            assert grad.shape == p.shape
    p32 = pred.astype(np.float32)
    at = _nan_position(case, target)
    _loss_refused(Loss(case.fn, p32, _one_at(target, 1e300, at), {}))  # does not fit in float32
    _loss_refused(Loss(case.fn, p32, target, {"weights": _one_at(weights, 1e300)}))


# ---- metrics ------------------------------------------------------------------------------------


class MetricCase(NamedTuple):
    """One metric configuration: how to draw valid ``(pred, target)`` and what kind of metric it is.

    Attributes:
        id: test id.
        fn: the metric, ``(pred, target, **kw) -> float``, a tuple of floats, or an array.
        draw: draws valid ``(pred, target)`` (``target`` is ``None`` for :func:`metrics.predicted_labels`).
        labels: the target holds class labels (else regression targets).
        nan_is_nan: a NaN prediction gives a NaN score (else the metric refuses it: integer results).
    """

    id: str
    fn: Callable[..., Any]
    draw: Callable[[st.DataObject], tuple[Arr, Arr | None]]
    labels: bool = True
    nan_is_nan: bool = True


def _scores_and_labels(data: st.DataObject, onehot: bool = False) -> tuple[Arr, Arr]:
    n, k = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 4))
    scores = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-3, 3, width=32)))
    labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    return scores, (np.eye(k, dtype=np.int64)[labels] if onehot else labels)


def _binary(data: st.DataObject) -> tuple[Arr, Arr]:
    n = data.draw(st.integers(1, 6))
    logits = data.draw(hnp.arrays(np.float64, (n, 1), elements=st.floats(-3, 3, width=32)))
    return logits, data.draw(hnp.arrays(np.float64, (n, 1), elements=st.sampled_from([0.0, 1.0])))


def _label_pairs(data: st.DataObject) -> tuple[Arr, Arr]:
    n = data.draw(st.integers(1, 6))
    labels = hnp.arrays(np.int64, n, elements=st.integers(0, 3))
    return data.draw(labels), data.draw(labels)


def _scores_only(data: st.DataObject) -> tuple[Arr, None]:
    return _scores_and_labels(data)[0], None


def _regression(data: st.DataObject) -> tuple[Arr, Arr]:
    shape = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3)))
    values = st.floats(-3, 3, width=32)
    return data.draw(hnp.arrays(np.float64, shape, elements=values)), data.draw(
        hnp.arrays(np.float64, shape, elements=values)
    )


METRIC_CASES = [
    MetricCase("accuracy_scores", metrics.accuracy, _scores_and_labels),
    MetricCase("accuracy_onehot", metrics.accuracy, partial(_scores_and_labels, onehot=True)),
    MetricCase("accuracy_binary", metrics.accuracy, _binary),
    MetricCase("accuracy_labels", metrics.accuracy, _label_pairs),
    MetricCase("confusion_matrix", metrics.confusion_matrix, _scores_and_labels, nan_is_nan=False),
    MetricCase("precision_binary", metrics.precision, _binary),
    MetricCase("recall_binary", metrics.recall, _binary),
    MetricCase("f1_binary", metrics.f1_score, _binary),
    MetricCase("f1_macro", partial(metrics.f1_score, average="macro"), _scores_and_labels),
    MetricCase(
        "precision_recall_f1_macro", partial(metrics.precision_recall_f1, average="macro"), _label_pairs
    ),
    MetricCase("predicted_labels", metrics.predicted_labels, _scores_only, nan_is_nan=False),
    MetricCase("r2_score", metrics.r2_score, _regression, labels=False),
]
METRIC = {c.id: c for c in METRIC_CASES}

#: Bad values for every keyword argument a metric takes (a new keyword must be added here).
BAD_METRIC_KEYWORDS: dict[str, list[object]] = {
    "average": ["micro", "", None, 1],
    "pos_label": [-1, 1.5, "1", None, True],
    "num_classes": [0, -2, 2.5, "3", True],
    "from_logits": ["yes", None, 1],
}


def test_every_public_metric_has_a_case_and_its_keywords_bad_values() -> None:
    covered = {_underlying(c.fn) for c in METRIC_CASES}
    assert [name for name, fn in PUBLIC_METRICS.items() if fn not in covered] == []
    for name, fn in PUBLIC_METRICS.items():
        unknown = set(_keywords(fn)) - BAD_METRIC_KEYWORDS.keys()
        assert not unknown, f"{name}: add bad values for {sorted(unknown)} to BAD_METRIC_KEYWORDS"


@dataclass(frozen=True)
class Metric:
    """A metric call; ``unary`` when the metric takes the prediction alone (``predicted_labels``)."""

    fn: Callable[..., Any]
    pred: object
    target: object
    kwargs: dict[str, Any]
    unary: bool = False

    def __call__(self) -> Any:
        if self.unary:
            return self.fn(self.pred, **self.kwargs)
        return self.fn(self.pred, self.target, **self.kwargs)


def _metric(call: Metric, *, accept: bool) -> Any:
    before = snapshot([call.pred, call.target])
    out = accepted(call) if accept else refused(call)
    unchanged(before, [call.pred, call.target])
    return out


def _is_nan(out: object) -> bool:
    return all(np.isnan(v) for v in (out if isinstance(out, tuple) else (out,)))


@pytest.mark.parametrize("case_id", list(METRIC))
@SWEEP
@given(data=st.data())
def test_metrics_refuse_bad_predictions(case_id: str, data: st.DataObject) -> None:
    case = METRIC[case_id]
    pred, target = case.draw(data)
    unary = target is None
    good = _metric(Metric(case.fn, pred, target, {}, unary), accept=True)
    _same(_metric(Metric(case.fn, pred.tolist(), target, {}, unary), accept=True), good)
    for make in NOT_NUMBERS.values():
        _metric(Metric(case.fn, make(pred), target, {}, unary), accept=False)
    _metric(Metric(case.fn, pred[..., None, None], target, {}, unary), accept=False)  # three axes or more
    nan = Metric(case.fn, _one_at(pred, np.nan), target, {}, unary)
    if case.nan_is_nan:
        assert _is_nan(_metric(nan, accept=True)), "a NaN prediction was hidden in the score"
    else:
        _metric(nan, accept=False)
    for value in (np.inf, -np.inf):
        _metric(
            Metric(case.fn, _one_at(pred, value), target, {}, unary), accept=True
        )  # an infinite score wins


@pytest.mark.parametrize("case_id", list(METRIC))
@SWEEP
@given(data=st.data())
def test_metrics_refuse_bad_targets_and_shapes(case_id: str, data: st.DataObject) -> None:
    case = METRIC[case_id]
    pred, target = case.draw(data)
    unary = target is None
    if target is not None:
        good = _metric(Metric(case.fn, pred, target, {}, unary), accept=True)
        _same(_metric(Metric(case.fn, pred, target.tolist(), {}, unary), accept=True), good)
        bad = [make(target) for make in NOT_NUMBERS.values()]
        bad += [_one_at(target, v) for v in (np.nan, np.inf, -np.inf)]
        bad += [np.concatenate([target, target[:1]]), target[..., None, None]]
        if case.labels:
            bad += [_one_at(target, 0.5), _one_at(target, -1.0)]  # fractional, negative labels
            bad.append(np.full((target.shape[0], 3), 0.5))  # (batch, k) rows that are not one-hot
        for t in bad:
            _metric(Metric(case.fn, pred, t, {}, unary), accept=False)
        _metric(Metric(case.fn, pred[:0], target[:0], {}, unary), accept=False)  # no samples
    else:
        _metric(Metric(case.fn, pred[:, :0], None, {}, unary), accept=False)  # no class column
    for name in _keywords(case.fn):
        for value in BAD_METRIC_KEYWORDS[name]:
            _metric(Metric(case.fn, pred, target, {name: value}, unary), accept=False)


def test_precision_recall_f1_cost_nothing_for_huge_labels() -> None:
    # Counting the classes present, not a k x k matrix: a label of 10**12 must not allocate 10**24.
    y = np.array([0, 10**12, 10**12, 3])
    p = np.array([0, 10**12, 3, 3])
    assert accepted(lambda: metrics.precision_recall_f1(p, y, average="macro")) == pytest.approx(
        (5 / 6, 5 / 6, 7 / 9)
    )
    two = np.where(y == 3, 0, y), np.where(p == 3, 0, p)  # average="binary" takes two classes
    assert accepted(lambda: metrics.precision(two[1], two[0], pos_label=10**12)) == 1.0
    refused(lambda: metrics.confusion_matrix(p, y))  # a k x k matrix of 10**24 entries
