"""A causal decoder-only transformer (GPT style): token ids to next-token logits.

Input ``ids`` ``(batch, time)`` integers in ``[0, vocab)``; output ``logits``
``(batch, time, vocab)``, position ``t`` predicting token ``t + 1`` from tokens ``0..t`` only. It
is a ``serial`` of the library's layers, by name::

    embed   embedding(vocab, d_model)                            (b, t) -> (b, t, d_model)
    pos     learned_positional_encoding(max_len) or sinusoidal   + PE[:t]
    drop    dropout(dropout)
    blocks  serial of num_layers transformer_encoder_layer(..., norm_first=True, causal=True)
    norm    layer_norm()                                         the final norm of pre-norm stacks
    head    dense(vocab, use_bias=False)                         (b, t, d_model) -> (b, t, vocab)

With ``tie_weights`` (GPT-2's choice) the output projection is the embedding's weight:
:func:`functional_dl.combinators.tie` stores it once under ``embed.weight`` (there is no
``head.w``) and sums its two gradients (untied, the same wrapper ties nothing). The embedding,
the learned positions and the head start ``N(0, 0.02^2)`` (GPT-2's initialisation;
``nn.Embedding``'s ``N(0, 1)`` would give tied logits of size ``sqrt(d_model)``). Keys:
``embed.weight``, ``pos.weight``, ``blocks.0.self_attn.in_proj_weight``, ..., ``norm.scale``,
``norm.bias`` (and ``head.w`` untied).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from functional_dl.combinators.serial import serial
from functional_dl.combinators.tie import TieCache, tie
from functional_dl.errors import DomainError
from functional_dl.initializers import normal
from functional_dl.layers._args import flag, positive_int
from functional_dl.layers.dense import dense
from functional_dl.layers.dropout import dropout as dropout_layer
from functional_dl.layers.embedding import embedding
from functional_dl.layers.norm import layer_norm
from functional_dl.layers.positional import learned_positional_encoding, sinusoidal_positional_encoding
from functional_dl.layers.transformer import transformer_encoder_layer
from functional_dl.types import Layer

__all__ = ["decoder_only_transformer"]

_NAME = "decoder_only_transformer"
_INIT_STD = 0.02


def decoder_only_transformer(
    vocab_size: int,
    d_model: int,
    heads: int,
    num_layers: int,
    *,
    max_len: int | None = None,
    dim_feedforward: int | None = None,
    dropout: float = 0.1,
    activation: Literal["relu", "gelu"] = "gelu",
    positional: Literal["learned", "sinusoidal"] = "learned",
    tie_weights: bool = True,
    layer_norm_eps: float = 1e-5,
    dtype: npt.DTypeLike = np.float32,
) -> Layer[TieCache]:
    """A GPT-style language model: ``(batch, time)`` ids to ``(batch, time, vocab_size)`` logits.

    Args:
        vocab_size: the number of token ids.
        d_model: the width of the residual stream; a multiple of ``heads``.
        heads: attention heads per block.
        num_layers: the number of transformer blocks.
        max_len: the longest sequence (needed by ``positional="learned"``).
        dim_feedforward: the blocks' feed-forward width (``4 * d_model`` by default).
        dropout: the drop probability of every dropout (embeddings, attention, blocks).
        activation: the blocks' activation.
        positional: ``"learned"`` (GPT's) or ``"sinusoidal"`` (fixed, any length).
        tie_weights: make the output projection the embedding's weight (with
            :func:`~functional_dl.combinators.tie`).
        layer_norm_eps: every layer norm's ``eps``.
        dtype: dtype of the parameters.

    Example:
        >>> import numpy as np
        >>> import functional_dl as fdl
        >>> lm = decoder_only_transformer(50, 16, 2, 2, max_len=32)
        >>> _, params = lm.init(fdl.random.key(0), (None, 8))
        >>> "head.w" in params, params["embed.weight"].shape     # tied: the head reads embed.weight
        (False, (50, 16))
        >>> logits, _ = lm.forward(params, np.zeros((3, 8), np.int64))
        >>> logits.shape
        (3, 8, 50)
    """
    vocab = positive_int(vocab_size, "vocab_size", _NAME)
    n = positive_int(num_layers, "num_layers", _NAME)
    ff = 4 * d_model if dim_feedforward is None else dim_feedforward
    if positional == "learned":
        if max_len is None:
            raise DomainError(_NAME, "positional='learned' needs max_len")
        pos = learned_positional_encoding(max_len, w_init=normal(_INIT_STD), dtype=dtype)
    elif positional == "sinusoidal":
        pos = sinusoidal_positional_encoding()
    else:
        raise DomainError(_NAME, f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
    block = [
        transformer_encoder_layer(
            d_model,
            heads,
            ff,
            dropout,
            activation=activation,
            norm_first=True,
            layer_norm_eps=layer_norm_eps,
            causal=True,
            dtype=dtype,
        )
        for _ in range(n)
    ]
    net = serial(
        embed=embedding(vocab, d_model, w_init=normal(_INIT_STD), dtype=dtype),
        pos=pos,
        drop=dropout_layer(dropout),
        blocks=serial(*block),
        norm=layer_norm(eps=layer_norm_eps, dtype=dtype),
        head=dense(vocab, use_bias=False, w_init=normal(_INIT_STD), dtype=dtype),
    )
    tied = flag(tie_weights, "tie_weights", _NAME)
    return tie(net, {"head.w": "embed.weight"} if tied else {})  # one type either way
