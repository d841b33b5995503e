"""Bad input gives a clear error naming the layer's path, the expected and the actual shape or dtype."""

from __future__ import annotations

import ast
import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import layers as L
from functional_dl.errors import DTypeError, LabelError, LayerError, ParamsError, ShapeError


def _net() -> tuple[fdl.Layer[fdl.combinators.SerialCache], fdl.Params]:
    net = fdl.serial(L.dense(20), L.relu(), L.dense(7), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 30))
    return net, params


def test_wrong_width_names_layer_and_shapes() -> None:
    net, params = _net()
    with pytest.raises(ShapeError) as info:
        net.forward(params, np.zeros((16, 29), np.float32))
    assert str(info.value) == "0.dense: expected input of shape (batch, 30), got (16, 29)"
    assert info.value.path == "0.dense"


def test_wrong_rank() -> None:
    net, params = _net()
    with pytest.raises(ShapeError, match=r"0\.dense: expected input of shape \(batch, 30\), got \(30,\)"):
        net.forward(params, np.zeros(30, np.float32))


def test_mismatch_inside_the_network_names_the_inner_layer() -> None:
    net = fdl.serial(L.dense(4), L.relu(), L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 3))
    bad = {**params, "2.w": np.zeros((2, 5), np.float32)}
    with pytest.raises(ShapeError, match=r"^2\.dense: expected input of shape \(batch, 5\), got \(1, 4\)$"):
        net.forward(bad, np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, object])
def test_non_float_input_is_a_dtype_error(dtype: object) -> None:
    net, params = _net()
    x = np.zeros((2, 30), dtype=dtype)  # type: ignore[call-overload]
    with pytest.raises(DTypeError, match=r"^0\.dense: expected input of dtype float32") as info:
        net.forward(params, x)
    assert isinstance(info.value, TypeError)


def test_float64_input_to_float32_params_is_refused_not_upcast() -> None:
    net, params = _net()
    with pytest.raises(DTypeError, match=r"float32.*got float64"):
        net.forward(params, np.zeros((2, 30)))


def test_activation_refuses_integer_input() -> None:
    with pytest.raises(DTypeError, match=r"^relu: expected a floating-point input"):
        L.relu().forward({}, np.arange(3))  # type: ignore[arg-type]


def test_missing_and_extra_params() -> None:
    net, params = _net()
    x = np.zeros((2, 30), np.float32)
    missing = {k: v for k, v in params.items() if k != "2.b"}
    with pytest.raises(ParamsError, match=r"^2\.dense: parameter keys do not match: missing \['b'\]"):
        net.forward(missing, x)
    with pytest.raises(ParamsError, match=r"^2\.dense: .*unexpected \['c'\]"):
        net.forward({**params, "2.c": params["2.b"]}, x)
    with pytest.raises(ParamsError, match=r"^serial: unexpected key '9\.w'"):
        net.forward({**params, "9.w": params["0.w"]}, x)
    with pytest.raises(ParamsError, match=r"^1\.relu: parameter keys do not match: unexpected \['w'\]"):
        net.forward({**params, "1.w": params["0.w"]}, x)


def test_bias_of_wrong_shape_is_not_broadcast() -> None:
    layer = L.dense(3)
    _, params = layer.init(fdl.random.key(0), (None, 2))
    with pytest.raises(ShapeError, match=r"^dense: expected parameter 'b' of shape \(3,\), got \(1,\)"):
        layer.forward({**params, "b": np.zeros(1, np.float32)}, np.zeros((4, 2), np.float32))


def test_backward_checks_the_incoming_gradient() -> None:
    net, params = _net()
    _, cache = net.forward(params, np.zeros((4, 30), np.float32))
    with pytest.raises(ShapeError, match=r"^4\.dense: expected dy of shape \(4, 1\), got \(4,\)"):
        net.backward(params, cache, np.zeros(4, np.float32))


def test_nan_labels_and_mismatched_targets() -> None:
    logits = np.zeros((3, 1), np.float32)
    with pytest.raises(LabelError, match=r"^sigmoid_binary_cross_entropy: target contains NaN"):
        fdl.losses.sigmoid_binary_cross_entropy(logits, np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(ShapeError, match=r"expected target of shape \(3, 1\).*got \(3,\)"):
        fdl.losses.sigmoid_binary_cross_entropy(logits, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(LabelError, match=r"values must lie in \[0, 1\]"):
        fdl.losses.sigmoid_binary_cross_entropy(logits, np.array([[0.0], [2.0], [1.0]]))
    with pytest.raises(DTypeError):
        fdl.losses.mean_squared_error(np.zeros(3, np.int64), np.zeros(3))


def test_init_rejects_unknown_feature_size() -> None:
    with pytest.raises(ShapeError, match=r"^0\.dense: expected an input shape \(batch, \.\.\., n_in\)"):
        fdl.serial(L.dense(3)).init(fdl.random.key(0), (None,))


def test_serial_rejects_non_layers() -> None:
    with pytest.raises(TypeError, match=r"L\.relu\(\)"):
        fdl.serial(L.dense(3), L.relu)  # type: ignore[arg-type]


def test_layer_errors_pickle_and_subclass_builtins() -> None:
    err = ShapeError("0.dense", "bad")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == "0.dense: bad" and isinstance(clone, ValueError)
    assert isinstance(err.under("encoder"), ShapeError)
    assert err.under("encoder").path == "encoder.0.dense"
    assert issubclass(ParamsError, LayerError)


# The built-in exceptions library code may raise itself: the abstract-method and iterator
# protocols everywhere, and AssertionError in functional_dl.testing, whose checks fail the way a
# test does. Every other error is one of functional_dl.errors (which subclass the built-ins).
ALLOWED_BUILTIN_RAISES = frozenset({"NotImplementedError", "StopIteration", "StopAsyncIteration"})
ALLOWED_IN_TESTING = frozenset({"AssertionError"})


def _builtin_exception(node: ast.expr | None) -> str | None:
    """The built-in exception class a ``raise`` names (``raise ValueError(...)``), else ``None``."""
    target = node.func if isinstance(node, ast.Call) else node
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "builtins"
    ):
        name = target.attr
    elif isinstance(target, ast.Name):
        name = target.id
    else:
        return None
    found = getattr(builtins, name, None)
    return name if isinstance(found, type) and issubclass(found, BaseException) else None


def builtin_raises(source: str, in_testing: bool = False) -> list[tuple[int, str]]:
    """``(line, class)`` of every ``raise`` of a built-in exception outside the allowed ones."""
    allowed = ALLOWED_BUILTIN_RAISES | (ALLOWED_IN_TESTING if in_testing else frozenset())
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise):
            name = _builtin_exception(node.exc)
            if name is not None and name not in allowed:
                found.append((node.lineno, name))
    return found


def test_the_raise_scan_finds_what_it_must() -> None:
    source = (
        "import builtins\n"
        "def f(x):\n"
        "    if x: raise ValueError('plain')\n"
        "    if x: raise KeyError\n"
        "    if x: raise builtins.TypeError('qualified')\n"
        "    if x: raise RuntimeError('chained') from None\n"
        "    if x: raise NotImplementedError\n"
        "    if x: raise DomainError('f', 'fine')\n"
        "    if x: raise AssertionError('only in testing')\n"
        "    raise\n"
    )
    assert builtin_raises(source) == [
        (3, "ValueError"),
        (4, "KeyError"),
        (5, "TypeError"),
        (6, "RuntimeError"),
        (9, "AssertionError"),
    ]
    assert builtin_raises(source, in_testing=True)[-1] == (6, "RuntimeError")


def test_no_plain_builtin_exception_is_raised_anywhere_in_the_package() -> None:
    root = Path(fdl.__file__).parent
    offenders = [
        f"{path.relative_to(root.parent)}:{line}: raise {name}"
        for path in sorted(root.rglob("*.py"))
        for line, name in builtin_raises(path.read_text(), in_testing=path.parent.name == "testing")
    ]
    assert not offenders, "raise a functional_dl.errors class instead:\n" + "\n".join(offenders)
