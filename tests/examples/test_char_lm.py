"""The character-level language model: smoke run, a fixed corpus, exact gradients, stateful sampling."""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import _stdlib_docs
import char_lm as example
import numpy as np
import pytest

import functional_dl as fdl

ROOT = Path(__file__).resolve().parents[2]


def _tiny(kind: str, vocab: int = 7) -> tuple[example.LanguageModel[Any], fdl.Params]:
    """A tiny model of the table in float64 (params cast; the inputs then decide nothing else)."""
    model = example.MODELS[kind](example.Sizes(vocab, embed=3, hidden=8, window=6))
    _, params = model.net.init(fdl.random.key(3), (None, 6))
    return model, fdl.params.cast(params, np.float64)


def _ids(key: fdl.Key, shape: tuple[int, ...], vocab: int = 7) -> fdl.IntArray:
    ids: fdl.IntArray = fdl.random.generator(key).integers(0, vocab, size=shape)
    return ids


def test_smoke_run_prints_finite_bits_per_char_and_a_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["char_lm.py", "--smoke", "--out", str(tmp_path)])
    example.main()
    out = capsys.readouterr().out
    bits = float(out.split("final validation ")[1].split(" bits/char")[0])
    corpus = example.load_corpus()
    assert math.isfinite(bits) and 0.0 < bits < math.log2(len(corpus.chars)) + 0.5
    sample = out.split("--- sample at step 12 (temperature 0.8) ---\n")[1].split("\n---")[0]
    assert sample.startswith(example.PROMPT)
    assert len(sample) == len(example.PROMPT) + example.SMOKE.sample_chars
    assert set(sample) <= set(corpus.chars)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _joined_in_a_new_process(hash_seed: str) -> str:
    """The digest of ``join_docstrings(MODULES)`` in a plain (not isolated) interpreter."""
    code = "import char_lm, _stdlib_docs; print(_stdlib_docs.join_docstrings(char_lm.MODULES), end='')"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "examples")])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, cwd=ROOT)
    return _digest(done.stdout.decode("utf-8"))


def test_the_corpus_is_deterministic_and_of_the_stated_size() -> None:
    assert list(example.MODULES) == sorted(set(example.MODULES))
    text = example.load_text()
    assert example.load_text() == text  # another fresh process, another random string-hash seed
    # Plain interpreters with chosen string-hash seeds (so other set and dict orders) agree too.
    assert _joined_in_a_new_process("1") == _joined_in_a_new_process("12345") == _digest(text)
    assert 100_000 < len(text) < 500_000
    corpus = example.load_corpus(text)
    assert corpus.chars == "".join(sorted(set(text)))
    both = np.concatenate([corpus.train, corpus.valid])
    assert example.decode(both, corpus.chars) == text  # the split is by position, nothing dropped
    assert len(corpus.valid) == round(0.1 * len(text))


def _not_dedent(text: str) -> str:
    """A stand-in with another docstring."""
    return text


def test_what_this_process_patched_does_not_reach_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    text = example.load_text(["textwrap"])
    assert textwrap.dedent.__doc__ is not None and inspect.cleandoc(textwrap.dedent.__doc__) in text
    monkeypatch.setattr(textwrap, "dedent", _not_dedent)
    _not_dedent.__module__ = "textwrap"  # as a patch made to look like the module's own
    try:
        assert "A stand-in" in _stdlib_docs.join_docstrings(["textwrap"])  # read here: patched
        assert example.load_text(["textwrap"]) == text  # read in a fresh interpreter: as shipped
    finally:
        _not_dedent.__module__ = __name__


def test_module_docstrings_are_the_modules_own() -> None:
    docs = _stdlib_docs.module_docstrings("textwrap")
    assert docs[0] == inspect.getdoc(textwrap)
    assert inspect.getdoc(textwrap.TextWrapper.wrap) in docs  # a method of a class of the module
    assert not any("Return a copy of the string" in doc for doc in docs)  # str's, not textwrap's


def test_random_windows_are_shifted_pairs_from_the_key() -> None:
    ids = np.arange(1000, dtype=np.int64)  # each id is its own position
    key = fdl.random.key(5)
    x, y = example.random_windows(key, ids, 16, 20)
    assert x.shape == y.shape == (16, 20)
    np.testing.assert_array_equal(x, x[:, :1] + np.arange(20))  # consecutive text
    np.testing.assert_array_equal(y, x + 1)  # the next character at every position
    assert y.max() < 1000 and len(set(x[:, 0].tolist())) > 1
    x2, y2 = example.random_windows(key, ids, 16, 20)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert not np.array_equal(x, example.random_windows(fdl.random.key(6), ids, 16, 20)[0])
    with pytest.raises(ValueError, match="no window"):
        example.random_windows(key, ids[:20], 1, 20)


@pytest.mark.parametrize("kind", sorted(example.MODELS))
def test_model_gradients_are_exact_in_float64(kind: str) -> None:
    model, params = _tiny(kind)
    ids = _ids(fdl.random.key(4), (2, 6))
    report = fdl.testing.check_gradients(model.net, params, ids)  # every param; ids get None
    assert report.passed and report.checked == fdl.params.num_params(params)
    logits, _ = example.forward_any(model.net, params, ids)
    targets = _ids(fdl.random.key(5), (2, 6))
    assert fdl.testing.check_loss_gradients(example.next_char_loss, logits, targets).passed


def test_next_char_loss_is_the_mean_over_positions() -> None:
    logits = fdl.random.normal(fdl.random.key(0), (3, 4, 5), np.float64)
    targets = _ids(fdl.random.key(1), (3, 4), 5)
    value, dlogits = example.next_char_loss(logits, targets)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)
    assert float(value) == pytest.approx(-picked.mean(), rel=1e-12)
    assert dlogits.shape == logits.shape


@pytest.mark.parametrize("kind", sorted(example.MODELS))
def test_stateful_steps_equal_reading_the_whole_sequence(kind: str) -> None:
    model, params = _tiny(kind)
    ids = _ids(fdl.random.key(7), (3, 6))
    full, _ = example.forward_any(model.net, params, ids)
    rereading = example.context_model(lambda sizes: model.net, example.Sizes(7, window=6))
    carry, context = model.start(3), rereading.start(3)
    for t in range(6):
        logits, carry = model.step(params, ids[:, t], carry)
        again, context = rereading.step(params, ids[:, t], context)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(again, full[:, t], rtol=1e-12, atol=1e-14)


def test_draw_follows_the_tempered_softmax() -> None:
    z = np.array([[2.0, 0.0, -1.0, 0.5]])
    rows = np.repeat(z, 40_000, axis=0)
    for temperature in (0.5, 1.0, 2.0):
        ids = example.draw(fdl.random.key(1), rows, temperature)
        p = np.exp(z[0] / temperature) / np.exp(z[0] / temperature).sum()
        np.testing.assert_allclose(np.bincount(ids, minlength=4) / len(ids), p, atol=0.01)
    assert set(example.draw(fdl.random.key(2), rows, 1e-3).tolist()) == {0}  # cold: the arg max
    with pytest.raises(ValueError, match="temperature"):
        example.draw(fdl.random.key(0), z, 0.0)


def test_sampling_is_reproducible_from_the_key() -> None:
    model, params = _tiny("lstm")
    prompt = np.array([1, 2, 3])
    a = example.sample(model, params, fdl.random.key(0), prompt, 30)
    assert np.array_equal(a, example.sample(model, params, fdl.random.key(0), prompt, 30))
    assert not np.array_equal(a, example.sample(model, params, fdl.random.key(1), prompt, 30))
    assert a.shape == (30,) and a.min() >= 0 and a.max() < 7


def test_a_model_that_predicts_nothing_pays_log2_vocab_bits() -> None:
    model, params = _tiny("gru")
    blank = {**params, "head.w": np.zeros_like(params["head.w"]), "head.b": np.zeros_like(params["head.b"])}
    ids = _ids(fdl.random.key(8), (200,))
    assert example.bits_per_char(model.net, blank, ids, 6, batch=7) == pytest.approx(math.log2(7), rel=1e-12)
    assert example.bits_per_char(model.net, params, ids, 6) != pytest.approx(math.log2(7), rel=1e-6)
