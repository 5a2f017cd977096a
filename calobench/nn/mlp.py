"""Multilayer perceptrons: the subnets of coupling blocks, the encoders and decoders of VAEs, critics.

One builder for every model plugin, so that a plugin states its architecture ("3 hidden layers of
256, LeakyReLU, last layer zero-initialized" as in CaloINN, arXiv 2312.09290) instead of writing
another MLP class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

#: Activation names accepted by :func:`mlp`.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (:data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}") from None


def mlp(
    in_features: int,
    out_features: int,
    hidden: Sequence[int],
    *,
    act: str = "relu",
    dropout: float = 0.0,
    layer_norm: bool = False,
    zero_last: bool = False,
    final_activation: str | None = None,
) -> nn.Sequential:
    """``Linear -> [LayerNorm] -> act -> [Dropout]`` for every hidden width, then a last ``Linear``.

    Args:
        in_features, out_features: input and output sizes.
        hidden: widths of the hidden layers (empty: a single linear map).
        act: activation after every hidden layer (:data:`ACTIVATIONS`).
        dropout: dropout probability after every hidden activation.
        layer_norm: layer normalization before every hidden activation.
        zero_last: initialize the last layer's weights and bias to 0, so that a coupling block
            starts as the identity (RealNVP/Glow practice, used by CaloINN).
        final_activation: optional activation after the last layer.
    """
    if in_features < 1 or out_features < 1 or any(width < 1 for width in hidden):
        raise ValueError(f"MLP sizes must be >= 1, got {in_features} -> {list(hidden)} -> {out_features}")
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if layer_norm:
            layers.append(nn.LayerNorm(size))
        layers.append(activation(act))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    last = nn.Linear(width, out_features)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    if final_activation is not None:
        layers.append(activation(final_activation))
    return nn.Sequential(*layers)
