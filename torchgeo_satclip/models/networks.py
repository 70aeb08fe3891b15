"""Trainable networks that turn positional encodings into location embeddings.

SatCLIP's released location encoders use :class:`SirenNet`. :class:`FCNet`
(the SINR network), :class:`SatCLIPMLP` and :class:`LinearNet` are the other
choices of the original code base; :class:`MultiScaleMLP` is GeoCLIP's network
(one :class:`MLP` per random-Fourier-feature scale, outputs summed). :func:`get_network`
builds any of them by the name used in SatCLIP's ``hyper_parameters['pe_type']``
(``'geoclip'`` for :class:`MultiScaleMLP`).
"""

import inspect
import itertools
import math
from typing import Literal

import torch
from torch import Tensor, nn

from .._checks import check_flag, check_int, check_real
from ._registry import lookup

__all__ = [
    'MLP',
    'NETWORKS',
    'FCNet',
    'LinearNet',
    'MultiScaleMLP',
    'SatCLIPMLP',
    'SirenLayer',
    'SirenNet',
    'get_network',
    'list_networks',
]


class SirenLayer(nn.Module):
    """One SIREN layer: ``sin(w0 * dropout(W x + b))``, or linear for the last.

    Initialisation follows SatCLIP (and Sitzmann et al., 2020): weights and
    biases of the first layer are drawn from ``U(-1/dim_in, 1/dim_in)``, those of
    every other layer from ``U(-sqrt(c/dim_in)/w0, sqrt(c/dim_in)/w0)``.
    Dropout, when enabled, acts on ``W x + b`` before the sine and only in
    training mode.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        w0: float = 1.0,
        c: float = 6.0,
        is_first: bool = False,
        use_bias: bool = True,
        activation: bool = True,
        dropout: float = 0.0,
    ) -> None:
        """Initialise the layer.

        Args:
            dim_in: input features.
            dim_out: output features.
            w0: frequency factor of the sine (30 for SatCLIP's first layer, 1
                for the others).
            c: constant of the uniform initialisation bound.
            is_first: use the first-layer initialisation.
            use_bias: learn an additive bias.
            activation: apply the sine (False for a linear output layer).
            dropout: dropout probability on ``W x + b`` in training (0: none).

        Raises:
            ValueError: if an argument is of the wrong type or out of range.
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_out=dim_out)
        w0 = check_real('w0', w0, positive=True)
        c = check_real('c', c, positive=True)
        for flag, value in (
            ('is_first', is_first),
            ('use_bias', use_bias),
            ('activation', activation),
        ):
            check_flag(flag, value)
        dropout = _check_dropout(dropout)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.w0 = w0
        self.activation = activation
        self.dropout = dropout
        bound = 1.0 / dim_in if is_first else math.sqrt(c / dim_in) / w0
        self.weight = nn.Parameter(torch.empty(dim_out, dim_in).uniform_(-bound, bound))
        self.bias = (
            nn.Parameter(torch.empty(dim_out).uniform_(-bound, bound))
            if use_bias
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Args:
            x: ``(N, dim_in)`` input.

        Returns:
            ``(N, dim_out)`` output.
        """
        out = nn.functional.linear(x, self.weight, self.bias)
        if self.dropout > 0:
            out = nn.functional.dropout(out, p=self.dropout, training=self.training)
        if self.activation:
            # w0 = 1 (every layer after the first): multiplying by 1.0 changes
            # no bit, so skip that pass over the activations.
            out = torch.sin(out if self.w0 == 1.0 else self.w0 * out)
        return out

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return (
            f'dim_in={self.dim_in}, dim_out={self.dim_out}, w0={self.w0}, '
            f'activation={self.activation}, dropout={self.dropout}'
        )


class SirenNet(nn.Module):
    """Sinusoidal representation network, as in SatCLIP's released encoders.

    ``num_layers`` sine layers then a linear output layer. For the released
    models: ``L^2 -> 512`` with ``sin(30 (W x + b))``, ``512 -> 512`` with
    ``sin(W x + b)``, ``512 -> 256`` linear; dropout 0.5 before each sine in
    training. Parameter names (``layers.<i>.weight``, ``last_layer.weight``)
    match the official checkpoints' ``model.location.nnet.*`` keys.
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 512,
        dim_out: int = 256,
        num_layers: int = 2,
        w0: float = 1.0,
        w0_initial: float = 30.0,
        use_bias: bool = True,
        dropout: float = 0.5,
    ) -> None:
        """Initialise the network.

        Args:
            dim_in: input features (``L^2`` after spherical harmonics).
            dim_hidden: width of the hidden layers (``capacity``).
            dim_out: embedding size (``embed_dim``).
            num_layers: number of sine layers (``num_hidden_layers``).
            w0: sine frequency of the layers after the first.
            w0_initial: sine frequency of the first layer.
            use_bias: learn biases.
            dropout: dropout probability before each sine in training.

        Raises:
            ValueError: if a size is not a positive integer, a frequency not
                finite and positive, or ``dropout`` not in [0, 1).
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_hidden=dim_hidden, dim_out=dim_out)
        check_int('num_layers', num_layers, minimum=1)
        check_real('w0', w0, positive=True)
        check_real('w0_initial', w0_initial, positive=True)
        check_flag('use_bias', use_bias)
        _check_dropout(dropout)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.layers = nn.ModuleList(
            SirenLayer(
                dim_in=dim_in if i == 0 else dim_hidden,
                dim_out=dim_hidden,
                w0=w0_initial if i == 0 else w0,
                is_first=i == 0,
                use_bias=use_bias,
                dropout=dropout,
            )
            for i in range(num_layers)
        )
        self.last_layer = SirenLayer(
            dim_in=dim_hidden,
            dim_out=dim_out,
            w0=w0,
            use_bias=use_bias,
            activation=False,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the network.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        for layer in self.layers:
            x = layer(x)
        out: Tensor = self.last_layer(x)
        return out


class _ResidualBlock(nn.Module):
    """``x + ReLU(Linear(Dropout(ReLU(Linear(x)))))``: a SINR residual block."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = x + self.block(x)
        return out


class FCNet(nn.Module):
    """The residual fully connected network of SINR (Cole et al., 2023).

    ``Linear + ReLU``, then ``num_blocks`` residual blocks of
    ``Linear, ReLU, Dropout, Linear, ReLU`` with a skip connection, then a
    bias-free linear output layer.
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 256,
        dim_out: int = 256,
        num_blocks: int = 4,
        dropout: float = 0.5,
    ) -> None:
        """Initialise the network.

        Args:
            dim_in: input features.
            dim_hidden: width of the hidden layers.
            dim_out: embedding size.
            num_blocks: number of residual blocks.
            dropout: dropout probability inside each block.

        Raises:
            ValueError: if a size is not a positive integer, ``num_blocks``
                not a non-negative integer or ``dropout`` not in [0, 1).
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_hidden=dim_hidden, dim_out=dim_out)
        check_int('num_blocks', num_blocks, minimum=0)
        _check_dropout(dropout)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.feats = nn.Sequential(
            nn.Linear(dim_in, dim_hidden),
            nn.ReLU(inplace=True),
            *(_ResidualBlock(dim_hidden, dropout) for _ in range(num_blocks)),
        )
        self.last_layer = nn.Linear(dim_hidden, dim_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the network.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        out: Tensor = self.last_layer(self.feats(x))
        return out


class MLP(nn.Module):
    """A ReLU multilayer perceptron with ``num_layers`` hidden layers.

    ``num_layers`` times ``Linear + ReLU`` (the first from ``dim_in``), then a
    linear output layer: the branches of :class:`MultiScaleMLP`. SatCLIP's
    ``'mlp'`` network is :class:`SatCLIPMLP`.
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 256,
        dim_out: int = 256,
        num_layers: int = 2,
    ) -> None:
        """Initialise the network.

        Args:
            dim_in: input features.
            dim_hidden: width of the hidden layers.
            dim_out: embedding size.
            num_layers: number of hidden layers (``Linear + ReLU``).

        Raises:
            ValueError: if a size is not a positive integer.
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_hidden=dim_hidden, dim_out=dim_out)
        check_int('num_layers', num_layers, minimum=1)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.layers = nn.Sequential(
            *(
                module
                for i in range(num_layers)
                for module in (
                    nn.Linear(dim_in if i == 0 else dim_hidden, dim_hidden),
                    nn.ReLU(inplace=True),
                )
            )
        )
        self.last_layer = nn.Linear(dim_hidden, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the network.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        out: Tensor = self.last_layer(self.layers(x))
        return out


class SatCLIPMLP(nn.Module):
    """SatCLIP's ``'mlp'`` network, with its depth and parameter names.

    An input layer ``Linear(dim_in, dim_hidden) + ReLU``, then ``num_layers``
    hidden layers ``Linear(dim_hidden, dim_hidden) + ReLU``, then a linear
    output layer, all in one ``features`` sequence, so that the state dict of
    the original code's ``MLP`` (``features.<0, 2, ..., 2 num_layers + 2>``)
    loads as it is. The original's hidden layers all share one module by
    accident (its state dict repeats the same weights under every hidden
    key); here every hidden layer has its own weights, so an original
    checkpoint computes the same function and training can make them differ.
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 256,
        dim_out: int = 256,
        num_layers: int = 2,
    ) -> None:
        """Initialise the network.

        Args:
            dim_in: input features.
            dim_hidden: width of the hidden layers.
            dim_out: embedding size.
            num_layers: number of hidden layers after the input layer
                (SatCLIP's ``num_hidden_layers``).

        Raises:
            ValueError: if a size is not a positive integer or ``num_layers``
                not a non-negative integer.
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_hidden=dim_hidden, dim_out=dim_out)
        check_int('num_layers', num_layers, minimum=0)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.num_layers = num_layers
        widths = [dim_in, *([dim_hidden] * (num_layers + 1))]
        self.features = nn.Sequential(
            *(
                module
                for width_in, width_out in itertools.pairwise(widths)
                for module in (nn.Linear(width_in, width_out), nn.ReLU())
            ),
            nn.Linear(dim_hidden, dim_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the network.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        out: Tensor = self.features(x)
        return out


class LinearNet(nn.Module):
    """A single linear layer from positional encoding to embedding."""

    def __init__(self, dim_in: int, dim_out: int = 256) -> None:
        """Initialise the network.

        Args:
            dim_in: input features.
            dim_out: embedding size.

        Raises:
            ValueError: if a size is not a positive integer.
        """
        super().__init__()
        _check_positive(dim_in=dim_in, dim_out=dim_out)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.last_layer = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        out: Tensor = self.last_layer(x)
        return out


class MultiScaleMLP(nn.Module):
    """GeoCLIP's location network: one ReLU MLP per scale, outputs summed.

    GeoCLIP (Vivanco Cepeda et al., NeurIPS 2023) encodes a point with
    random Fourier features at several scales and gives each scale its own
    network; the location embedding is the **sum** of their outputs. The
    input is split into ``num_branches`` equal consecutive blocks, the
    layout of :class:`~torchgeo_satclip.models.positional.RandomFourierFeatures`
    (``[cos, sin]`` of scale ``i`` in block ``i``), and block ``i`` goes
    through branch ``i``, an :class:`MLP` with ``num_layers`` hidden
    ``Linear + ReLU`` layers of width ``dim_hidden`` and a linear output layer
    of size ``dim_out``. GeoCLIP's released encoder: three branches of
    ``512 -> 1024 -> 1024 -> 1024 -> 512``.

    Parameter names: branch ``i``'s hidden layers are
    ``branches.<i>.layers.<0, 2, 4>`` (GeoCLIP's ``LocEnc<i>.capsule.<1, 3,
    5>``) and its output layer ``branches.<i>.last_layer`` (GeoCLIP's
    ``LocEnc<i>.head.0``).
    """

    def __init__(
        self,
        dim_in: int,
        dim_hidden: int = 1024,
        dim_out: int = 512,
        num_layers: int = 3,
        num_branches: int = 3,
    ) -> None:
        """Initialise the network.

        Args:
            dim_in: input features, all branches together (GeoCLIP: 3 x 512).
            dim_hidden: width of the hidden layers (GeoCLIP: 1024).
            dim_out: embedding size (GeoCLIP: 512).
            num_layers: hidden layers of each branch (GeoCLIP: 3).
            num_branches: number of branches, one per scale (GeoCLIP: 3).

        Raises:
            ValueError: if a size is not positive or ``dim_in`` does not split
                into ``num_branches`` equal blocks.
        """
        super().__init__()
        _check_positive(
            dim_in=dim_in,
            dim_hidden=dim_hidden,
            dim_out=dim_out,
            num_branches=num_branches,
        )
        if dim_in % num_branches:
            raise ValueError(
                f'dim_in={dim_in} does not split into {num_branches} equal '
                'blocks, one per branch (one per random-Fourier-feature scale)'
            )
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.num_layers = num_layers
        self.num_branches = num_branches
        self.branches = nn.ModuleList(
            MLP(dim_in // num_branches, dim_hidden, dim_out, num_layers)
            for _ in range(num_branches)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply every branch to its block and sum the outputs.

        Args:
            x: ``(N, dim_in)`` positional encoding.

        Returns:
            ``(N, dim_out)`` embedding.
        """
        blocks = x.chunk(self.num_branches, dim=-1)
        out: Tensor = self.branches[0](blocks[0])
        for branch, block in zip(self.branches[1:], blocks[1:], strict=True):
            out = out + branch(block)
        return out

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return f'num_branches={self.num_branches} (outputs summed)'


def _check_positive(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if check_int(name, value) < 1:
            raise ValueError(f'{name} must be a positive integer, got {value}')


def _check_dropout(dropout: float) -> float:
    """Return ``dropout`` if it is a probability in [0, 1), else raise ``ValueError``.

    1 would zero every activation in training; a negative or boolean value is
    a mistake that ``nn.functional.dropout`` would otherwise meet only at the
    first training step, or never (``dropout > 0`` is false for -0.1).
    """
    return check_real('dropout', dropout, minimum=0.0, below=1.0)


NetworkName = Literal['siren', 'fcnet', 'mlp', 'linear', 'geoclip']

#: Network classes by the name SatCLIP uses in ``hyper_parameters['pe_type']``.
NETWORKS: dict[str, type[nn.Module]] = {
    'siren': SirenNet,
    'fcnet': FCNet,
    'mlp': SatCLIPMLP,
    'linear': LinearNet,
    'geoclip': MultiScaleMLP,
}


def get_network(
    name: str,
    dim_in: int,
    dim_hidden: int = 512,
    dim_out: int = 256,
    num_layers: int = 2,
    dropout: float = 0.5,
) -> nn.Module:
    """Build a network by name.

    Args:
        name: one of ``'siren'``, ``'fcnet'``, ``'mlp'``, ``'linear'``,
            ``'geoclip'``.
        dim_in: input features (the positional encoding's size).
        dim_hidden: hidden width (SatCLIP's ``capacity``).
        dim_out: embedding size (SatCLIP's ``embed_dim``).
        num_layers: hidden layers (SatCLIP's ``num_hidden_layers``); ignored
            by ``fcnet`` (four residual blocks, as in SINR and SatCLIP) and by
            ``linear``.
        dropout: dropout probability (``siren`` and ``fcnet``).

    Returns:
        The network.

    Raises:
        ValueError: if ``name`` is unknown, or an argument is of the wrong
            type or out of range, including one that network ignores (a
            mistake in the caller's configuration all the same, as
            :func:`~torchgeo_satclip.models.build_location_encoder` refuses
            it); the message names the argument and the value.
    """
    cls = lookup(NETWORKS, name, 'network')
    offered = {
        'dim_in': dim_in,
        'dim_hidden': dim_hidden,
        'dim_out': dim_out,
        'num_layers': num_layers,
        'dropout': dropout,
    }
    # Each class takes the subset of the common arguments it has a use for,
    # and checks it; the others are checked here, or they would pass unseen.
    accepted = inspect.signature(cls).parameters
    ignored = set(offered) - set(accepted)
    if 'dim_hidden' in ignored:
        _check_positive(dim_hidden=dim_hidden)
    if 'num_layers' in ignored:
        _check_positive(num_layers=num_layers)
    if 'dropout' in ignored:
        _check_dropout(dropout)
    return cls(**{key: value for key, value in offered.items() if key in accepted})


def list_networks() -> list[str]:
    """Names accepted by :func:`get_network` (SatCLIP's ``pe_type`` values).

    Returns:
        The registered names of :data:`NETWORKS`, sorted.
    """
    return sorted(NETWORKS)
