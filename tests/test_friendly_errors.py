"""The common slips get the library's own errors, saying what to do instead."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import functional_dl as fdl
from functional_dl import checkpoint
from functional_dl import layers as L
from functional_dl.errors import ArgumentError, FunctionalDLError, KeyTypeError, LayerError
from tests.layers.cases import LAYER_CASES, LayerCase
from tests.layers.inputs import example_case
from tests.test_sweep_combinators import CASES as COMBINATOR_CASES
from tests.test_sweep_combinators import Case as CombinatorCase


@pytest.mark.parametrize(
    "net",
    [
        L.dense(3),
        L.conv2d(2, 3),
        fdl.serial(L.relu(), L.dense(2)),
        fdl.residual(L.dense(4)),
    ],
    ids=["dense", "conv2d", "serial", "residual"],
)
@pytest.mark.parametrize("seed", [0, 7, None, "0"], ids=["int0", "int7", "None", "str"])
def test_a_seed_where_a_key_belongs(net: fdl.Layer[Any], seed: Any) -> None:
    shape: fdl.Shape = (None, 3, 4, 4) if net.name == "conv2d" else (None, 4)
    with pytest.raises(
        KeyTypeError, match=rf"expected a Key from fdl.random.key\(seed\), got {type(seed).__name__} {seed!r}"
    ):
        net.init(seed, shape)


def test_the_key_error_is_a_type_error_of_the_library() -> None:
    assert issubclass(KeyTypeError, TypeError)
    assert issubclass(KeyTypeError, FunctionalDLError)
    with pytest.raises(TypeError):
        fdl.random.split(0)  # type: ignore[arg-type]


# --- an int (or None) where a key belongs, in layers that draw nothing -----------------------------


@pytest.mark.parametrize(
    ("net", "in_shape"),
    [
        (L.relu(), (None, 3)),
        (L.flatten(), (None, 2, 3)),
        (L.max_pool2d(2), (None, 1, 4, 4)),
        (L.dropout(0.5), (None, 3)),
        (L.global_max_pool(), (None, 2, 3, 3)),
        (fdl.serial(L.relu(), L.tanh()), (None, 3)),
        (fdl.residual(L.relu()), (None, 3)),
        (fdl.named("block", L.relu()), (None, 3)),
        (fdl.fan_out(2), (None, 3)),
        (fdl.fan_in_sum(), ((None, 3), (None, 3))),
        (fdl.fan_in_concat(), ((None, 3), (None, 3))),
        (L.batch_norm1d(), (None, 3)),  # buffers only: nothing trained to draw
    ],
    ids=lambda v: v.name if isinstance(v, fdl.Layer) else None,
)
@pytest.mark.parametrize("seed", [3, None], ids=["int", "None"])
@pytest.mark.parametrize("method", ["init", "init_with_buffers"])
def test_a_seed_where_a_key_belongs_in_a_layer_without_params(
    net: fdl.Layer[Any], in_shape: Any, seed: Any, method: str
) -> None:
    with pytest.raises(
        KeyTypeError, match=rf"expected a Key from fdl.random.key\(seed\), got {type(seed).__name__}"
    ):
        getattr(net, method)(seed, in_shape)
    getattr(net, method)(fdl.random.key(0), in_shape)  # a key is still fine


# --- everywhere else a key goes: the samplers, the initializers, the context, the training loop -----

_X, _Y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)


def _dropout_net() -> tuple[fdl.Layer[Any], fdl.Params]:
    net = fdl.serial(L.dense(2), L.dropout(0.5))
    return net, net.init(fdl.random.key(0), (None, 3))[1]


def _serial_forward(key: Any) -> object:
    net, params = _dropout_net()
    return net.forward(params, _X, fdl.Context(train=True, key=key))


def _attention_forward(key: Any) -> object:
    layer = L.multi_head_attention(4, 2, dropout=0.3)
    _, params = layer.init(fdl.random.key(0), (None, 2, 4))
    return layer.forward(params, np.ones((1, 2, 4), np.float32), fdl.Context(train=True, key=key))


def _train_step(key: Any) -> object:
    net = fdl.serial(L.dense(2), L.relu())  # draws nothing: the step refuses the key all the same
    _, params = net.init(fdl.random.key(0), (None, 3))
    opt = fdl.optim.sgd(0.1)
    step = fdl.train.train_step(net, fdl.losses.mean_squared_error, opt)
    return step(fdl.train.init_train_state(opt, params), (_X, _Y), key)


def _fit(key: Any) -> object:
    net, params = _dropout_net()
    opt = fdl.optim.sgd(0.1)
    start = fdl.train.init_train_state(opt, params)
    loss = fdl.losses.mean_squared_error
    return fdl.train.fit(net, loss, opt, start, (_X, _Y), key=key, epochs=1, batch_size=2, progress="none")


#: Every public initializer, made with its default arguments.
_INITIALIZERS = {
    name: getattr(fdl.initializers, name)(*([0.5] if name == "constant" else []))
    for name in fdl.initializers.__all__
    if name not in {"Initializer", "fans", "variance_scaling"}
}

#: ``{what: (key) -> anything}``: each call takes a key, and only a key.
_TAKES_A_KEY: dict[str, Callable[[Any], object]] = {
    "random.split": fdl.random.split,
    "random.fold_in": lambda k: fdl.random.fold_in(k, 3),
    "random.generator": fdl.random.generator,
    "random.normal": lambda k: fdl.random.normal(k, (2,)),
    "random.uniform": lambda k: fdl.random.uniform(k, (2,)),
    "random.truncated_normal": lambda k: fdl.random.truncated_normal(k, (2,)),
    "random.bernoulli": lambda k: fdl.random.bernoulli(k, 0.5, (2,)),
    "random.permutation": lambda k: fdl.random.permutation(k, 3),
    **{
        f"initializers.{name}": partial(lambda init, k: init(k, (3, 2), np.float32), init)
        for name, init in _INITIALIZERS.items()
    },
    "init": lambda k: L.dense(2).init(k, (None, 3)),
    "dropout, Context(train=True, key=...)": lambda k: L.dropout(0.5).forward({}, _X, fdl.Context(True, k)),
    "multi_head_attention, Context(train=True, key=...)": _attention_forward,
    "serial, Context(train=True, key=...)": _serial_forward,
    "train.minibatches": lambda k: list(fdl.train.minibatches(k, (_X, _Y), 2)),
    "train.train_step": _train_step,
    "train.fit": _fit,
}


@pytest.mark.parametrize("what", sorted(_TAKES_A_KEY))
@pytest.mark.parametrize("seed", [0, np.int64(7), 2.5, None], ids=["int", "int64", "float", "None"])
def test_a_seed_where_a_key_belongs_anywhere_says_to_make_a_key(what: str, seed: Any) -> None:
    takes_a_key = _TAKES_A_KEY[what]
    if seed is None and "Context" in what:
        # Context(train=True) without a key: the layer's own message, which names the layer
        with pytest.raises(
            LayerError, match=r"training mode needs a random key: pass Context\(train=True, key="
        ):
            takes_a_key(seed)
    else:
        with pytest.raises(KeyTypeError, match=r"expected a Key from fdl\.random\.key\(seed\), got"):
            takes_a_key(seed)
    takes_a_key(fdl.random.key(0))  # and a key works


# --- forward(params, x, train=True): the context is the third argument ------------------------------


def _built(net: fdl.Layer[Any], in_shape: fdl.Shape) -> tuple[fdl.Layer[Any], fdl.Params, np.ndarray]:
    _, params = net.init(fdl.random.key(0), in_shape)
    return net, params, np.ones((2, *(s for s in in_shape[1:] if s is not None)), np.float32)


_NETWORKS = {
    "serial": lambda: _built(fdl.serial(L.dense(3), L.dropout(0.5), L.dense(1)), (None, 4)),
    "serial_context_free": lambda: _built(fdl.serial(L.dense(3), L.relu()), (None, 4)),
    "residual": lambda: _built(fdl.residual(L.dense(4)), (None, 4)),
    "named": lambda: _built(fdl.named("encoder", L.dense(2)), (None, 4)),
    "dropout": lambda: _built(L.dropout(0.5), (None, 4)),
    "batch_norm1d": lambda: _built(L.batch_norm1d(), (None, 4)),
    "fan_out": lambda: _built(fdl.fan_out(2), (None, 4)),
    "inspect.debug": lambda: _built(fdl.inspect.debug(fdl.serial(L.dense(3), L.relu())), (None, 4)),
}


@pytest.mark.parametrize("which", sorted(_NETWORKS))
@pytest.mark.parametrize(
    "keywords",
    [{"train": True}, {"training": True}, {"key": fdl.random.key(1)}, {"deterministic": False}],
    ids=["train", "training", "key", "deterministic"],
)
def test_keywords_to_forward_say_to_pass_a_context(which: str, keywords: dict[str, Any]) -> None:
    net, params, x = _NETWORKS[which]()
    with pytest.raises(ArgumentError) as info:
        net.forward(params, x, **keywords)
    message = str(info.value)
    assert message.startswith(f"{net.name}: forward takes (params, x, ctx) by position and no keywords, got ")
    assert "fdl.Context(train=True, key=key, buffers=buffers)" in message
    assert f"{next(iter(keywords))}=" in message
    assert isinstance(info.value, TypeError)  # what Python's own error was


def test_ctx_by_keyword_says_to_pass_it_by_position() -> None:
    net, params, x = _NETWORKS["serial"]()
    with pytest.raises(ArgumentError, match=r"^serial: .* got ctx=Context\(.*pass the context by position"):
        net.forward(params, x, ctx=fdl.Context(train=True, key=fdl.random.key(0)))  # type: ignore[call-arg]


def test_the_context_itself_still_works() -> None:
    net, params, x = _NETWORKS["serial"]()
    y_train, _ = net.forward(params, x, fdl.Context(train=True, key=fdl.random.key(1)))
    y_eval, _ = net.forward(params, x)
    assert y_train.shape == y_eval.shape == (2, 1)
    assert not np.array_equal(y_train, y_eval)  # dropout did something in training mode


def test_the_slip_is_refused_inside_a_network_too() -> None:
    """A combinator hands its children the context by position, so only the outer call can slip."""
    net = fdl.serial(fdl.named("block", fdl.serial(L.dense(2), L.dropout(0.5))))
    _, params = net.init(fdl.random.key(0), (None, 3))
    with pytest.raises(ArgumentError, match=r"^serial: "):
        net.forward(params, np.ones((1, 3), np.float32), train=True)  # type: ignore[call-arg]


def test_a_bound_network_refuses_a_mode_keyword_saying_the_context_is_bound() -> None:
    net, params, x = _NETWORKS["serial"]()
    predict = fdl.bind(net, params)
    with pytest.raises(
        ArgumentError, match=r"^bind: the bound function takes the input only, got train=True; .*ctx="
    ):
        predict(x, train=True)  # type: ignore[call-arg]
    assert np.array_equal(predict(x), net.forward(params, x)[0])


# --- the same slip in every layer of every registry case, each called as its network calls it ---------


class _Call(NamedTuple):
    """What a layer's forward was given when its network ran: a valid call to slip into."""

    params: fdl.Params
    x: Any
    ctx: fdl.Context


def _noting_forward(
    params: fdl.Params,
    x: Any,
    ctx: fdl.Context,
    /,
    *,
    layer: fdl.Layer[Any],
    i: int,
    calls: dict[int, _Call],
) -> tuple[Any, object]:
    calls.setdefault(i, _Call(params, x, ctx))
    return layer.forward(params, x, ctx)


def _noting(layer: fdl.Layer[Any], layers: list[fdl.Layer[Any]], calls: dict[int, _Call]) -> fdl.Layer[Any]:
    """``layer`` computing the same, with it and every layer inside it noting its forward's arguments.

    The layers are appended to ``layers`` as they are (unwrapped), and ``calls[i]`` is what
    ``layers[i]`` was given; a combinator is rebuilt over noting children (``Layer.rebuild``).
    """
    i = len(layers)
    layers.append(layer)
    if layer.children:
        assert layer.rebuild is not None, layer.name
        layer = layer.rebuild(tuple(_noting(child.layer, layers, calls) for child in layer.children))
    return layer._replace(forward=partial(_noting_forward, layer=layer, i=i, calls=calls))


def _every_layer_call(net: fdl.Layer[Any], params: fdl.Params, x: Any, ctx: fdl.Context) -> list[Any]:
    """``[(layer, call), ...]`` for ``net`` and every layer inside it, from one forward pass."""
    layers: list[fdl.Layer[Any]] = []
    calls: dict[int, _Call] = {}
    _noting(net, layers, calls).forward(params, x, ctx)
    assert sorted(calls) == list(range(len(layers))), "a layer that the forward pass did not reach"
    return [(layer, calls[i]) for i, layer in enumerate(layers)]


def _assert_every_layer_refuses_keywords(
    net: fdl.Layer[Any], params: fdl.Params, x: Any, ctx: fdl.Context
) -> None:
    """Each layer in ``net``, given its own valid arguments plus a keyword, names itself and the keyword."""
    for layer, (p, xi, c) in _every_layer_call(net, params, x, ctx):
        slips: list[tuple[Callable[[], object], str]] = [
            (partial(layer.forward, p, xi, train=True), "train=True"),
            (partial(layer.forward, p, xi, c, training=False), "training=False"),
            (partial(layer.forward, p, xi, ctx=c), "ctx=Context("),
        ]
        for slip, given in slips:
            with pytest.raises(ArgumentError) as info:
                slip()
            message = str(info.value)
            assert message.startswith(
                f"{layer.name}: forward takes (params, x, ctx) by position and no keywords, got {given}"
            ), message
            fix = "pass the context by position" if given.startswith("ctx=") else "fdl.Context(train=True"
            assert fix in message, message


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c.id for c in LAYER_CASES])
def test_every_layer_of_every_case_refuses_keywords_to_forward(case: LayerCase) -> None:
    _assert_every_layer_refuses_keywords(*example_case(case))


@pytest.mark.parametrize("case", COMBINATOR_CASES, ids=[c.id for c in COMBINATOR_CASES])
def test_every_combinator_case_refuses_keywords_to_forward(case: CombinatorCase) -> None:
    net = case.make(np.float32, 2, 3)
    _, params, buffers = net.layer.init_with_buffers(fdl.random.key(0), net.in_shape)
    _assert_every_layer_refuses_keywords(net.layer, params, net.x, fdl.Context(buffers=buffers))


def test_the_walk_reaches_the_leaves_inside_a_network() -> None:
    """The registry test above sees every layer, nested ones included, with its own arguments."""
    net = fdl.serial(L.dense(3), fdl.residual(fdl.serial(L.relu(), L.dense(3))))
    _, params = net.init(fdl.random.key(0), (None, 2))
    seen = _every_layer_call(net, params, np.ones((4, 2), np.float32), fdl.EVAL)
    assert [layer.name for layer, _ in seen] == ["serial", "dense", "residual", "serial", "relu", "dense"]
    last, call = seen[-1]
    assert sorted(call.params) == ["b", "w"] and call.x.shape == (4, 3)
    y, _ = last.forward(*call)
    assert y.shape == (4, 3)


# --- save_checkpoints into a directory that does not exist yet --------------------------------------


def _tiny_fit(callbacks: list[fdl.train.Callback], epochs: int) -> tuple[Any, Any]:
    """``(start, result)`` of a tiny regression trained with ``callbacks``."""
    net = fdl.serial(L.dense(2), L.relu(), L.dense(1))
    _, params = net.init(fdl.random.key(0), (None, 3))
    opt = fdl.optim.sgd(0.1)
    x = fdl.random.normal(fdl.random.key(1), (8, 3), np.float32)
    start = fdl.train.init_train_state(opt, params)
    result = fdl.train.fit(
        net, fdl.losses.mean_squared_error, opt, start, (x, x[:, :1]), key=fdl.random.key(2),
        epochs=epochs, batch_size=4, callbacks=callbacks, progress="none",
    )  # fmt: skip
    return start, result


@pytest.mark.parametrize("pattern", ["new/deeper/run.npz", "runs/epoch{epoch}/state.npz"])
def test_save_checkpoints_creates_missing_directories(tmp_path: Path, pattern: str) -> None:
    callbacks = [fdl.train.save_checkpoints(str(tmp_path / pattern))]
    start, result = _tiny_fit(callbacks, epochs=2)
    saved_path = tmp_path / pattern.format(epoch=2)
    assert saved_path.is_file()
    saved = checkpoint.load(saved_path, template=fdl.train.init_fit_checkpoint(start, callbacks))
    assert saved.train_state.epoch == 2
    assert fdl.params.allclose(saved.train_state.params, result.train_state.params, rtol=0)
    if "{epoch}" in pattern:
        assert (tmp_path / pattern.format(epoch=1)).is_file()


def test_save_checkpoints_into_a_path_that_cannot_be_a_directory_still_fails(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a directory")
    with pytest.raises(OSError):
        _tiny_fit([fdl.train.save_checkpoints(str(tmp_path / "taken" / "run.npz"))], epochs=1)


@pytest.mark.parametrize("entry", ["init_train_state", "train_step", "fit"])
def test_a_bare_transformation_where_an_optimizer_belongs_says_how_to_wrap_it(entry: str) -> None:
    net = fdl.serial(L.dense(2))
    _, params = net.init(fdl.random.key(0), (None, 3))
    transform = fdl.optim.chain(fdl.optim.clip_by_global_norm(1.0), fdl.optim.scale(-0.1))
    good = fdl.optim.optimizer(transform)
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    calls: dict[str, Callable[[object], object]] = {
        "init_train_state": lambda opt: fdl.train.init_train_state(opt, params),  # type: ignore[arg-type]
        "train_step": lambda opt: fdl.train.train_step(net, fdl.losses.mean_squared_error, opt),  # type: ignore[arg-type]
        "fit": lambda opt: fdl.train.fit(
            net,
            fdl.losses.mean_squared_error,
            opt,  # type: ignore[arg-type]
            fdl.train.init_train_state(good, params),
            (x, y),
            key=fdl.random.key(1),
            epochs=1,
            batch_size=2,
        ),
    }
    with pytest.raises(ArgumentError, match=rf"^{entry}: .*GradientTransformation.*optim.optimizer"):
        calls[entry](transform)
    with pytest.raises(ArgumentError, match=rf"^{entry}: expected an Optimizer .*got str"):
        calls[entry]("adam")
    calls[entry](good)  # the wrapped transformation is accepted
