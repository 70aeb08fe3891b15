"""The location encoder: input validation, positional encoding, then a network."""

from collections.abc import Callable
from typing import Any, Literal, Self

import torch
from torch import Tensor, nn

from .._checks import check_dtype, check_flag, check_int, check_real
from ..geo import compute_dtype, validate_lonlat
from ._registry import lookup
from .networks import (
    MLP,
    NETWORKS,
    FCNet,
    LinearNet,
    MultiScaleMLP,
    SatCLIPMLP,
    SirenNet,
    get_network,
)
from .positional import (
    _buffers_kept_unrounded,
    get_positional_encoding,
)
from .spherical_harmonics import SphericalHarmonics

__all__ = ['LocationEncoder', 'build_location_encoder']

#: Networks whose first operation is a linear layer of the features: under
#: autocast that layer reads them in the autocast dtype, whatever they are
#: handed in.
_LINEAR_FIRST = (SirenNet, FCNet, MLP, SatCLIPMLP, LinearNet)


class LocationEncoder(nn.Module):
    """A SatCLIP location encoder: positional encoding, then network.

    ``forward(lonlat)`` maps an ``(N, 2)`` tensor of **(longitude, latitude) in
    degrees** to ``(N, embed_dim)`` embeddings (not L2-normalised).

    Attribute names match TorchGeo 0.10's ``torchgeo.models.SatCLIP``
    (``posenc`` and ``nnet``), so state dicts move between the two unchanged.

    Precision: the positional encoding is computed in float64 when the network
    is float64 (the default, as in the original and its float64 checkpoints)
    and in float32 otherwise; its output is then cast to the network's dtype.
    ``encoder.to(torch.float32)`` or ``encoder.to(torch.bfloat16)`` trades
    fidelity for speed (the positional encoding's buffers, the frequencies of
    random Fourier features, stay in float32 in a bfloat16 or float16
    encoder) (the difference is measured in
    ``tests/models/test_location_encoder.py`` and documented in the README).
    A float32 network under autocast (``bf16-mixed``) gets its spherical
    harmonics already rounded to the autocast dtype, which is what its first
    linear layer would round them to: the same numbers, and on CUDA the fused
    kernel writes half the bytes.
    """

    def __init__(
        self, posenc: nn.Module, nnet: nn.Module, validate: bool = True
    ) -> None:
        """Initialise the encoder.

        Args:
            posenc: positional encoding with an ``embedding_dim`` attribute.
            nnet: network whose input size is ``posenc.embedding_dim``
                (checked where it can be read: the network's ``dim_in``, or
                the ``in_features`` of a plain ``nn.Linear`` or of the first
                layer of an ``nn.Sequential``).
            validate: check every input with
                :func:`~torchgeo_satclip.geo.validate_lonlat` (one host
                synchronisation per call; turn off in hot training loops whose
                inputs are known to be valid). The check branches on the
                values, so ``torch.compile`` breaks the graph there, and
                ``torch.compile(..., fullgraph=True)`` and ``torch.export``
                need ``validate=False``.

        Raises:
            ValueError: if the two parts do not fit together, or ``validate``
                is not a bool.
        """
        super().__init__()
        check_flag('validate', validate)
        dim = getattr(posenc, 'embedding_dim', None)
        dim_in = _network_width(nnet, 'in')
        if dim is not None and dim_in is not None and dim_in != dim:
            raise ValueError(
                f'network expects {dim_in} input features but the positional '
                f'encoding produces {dim}'
            )
        self.posenc = posenc
        self.nnet = nnet
        self.validate = validate

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Self:
        """Convert the encoder, keeping the encoding's buffers unrounded.

        ``encoder.to(torch.bfloat16)`` (``.half()``, Lightning's
        ``bf16-true``) would round the positional encoding's floating buffers
        (the frequency matrices of ``'rff'``, up to about 1,000 at GeoCLIP's
        scale 2^8) to the half dtype, moving their phases by radians: they
        are kept in float32 instead, as :func:`build_location_encoder` keeps
        them (see :func:`_to_dtype`).
        """
        with _buffers_kept_unrounded(self.posenc):
            super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        return self

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the network's parameters (the compute dtype)."""
        for param in self.nnet.parameters():
            return param.dtype
        return torch.get_default_dtype()

    @property
    def embed_dim(self) -> int:
        """Size of the output embedding.

        The network's ``dim_out``, else the output width of a network that is,
        or ends with, an ``nn.Linear``.

        Raises:
            TypeError: if the network has neither (not an ``AttributeError``,
                which ``nn.Module`` would turn into "no attribute
                'embed_dim'").
        """
        width = _network_width(self.nnet, 'out')
        if width is None:
            raise TypeError(
                f'cannot tell the embedding size of the network '
                f'{type(self.nnet).__name__}: give it a dim_out attribute (the '
                'width of its output), or end it with an nn.Linear'
            )
        return width

    def forward(self, lonlat: Tensor) -> Tensor:
        """Embed points.

        Args:
            lonlat: ``(N, 2)`` floating tensor of **(longitude, latitude) in
                degrees**, lon in [-180, 180], lat in [-90, 90].

        Returns:
            ``(N, embed_dim)`` embeddings in the network's dtype.

        Raises:
            TypeError: if ``lonlat`` is not a tensor (a NumPy array: wrap it in
                ``torch.as_tensor``).
            ValueError: if ``lonlat`` is invalid (see
                :func:`~torchgeo_satclip.geo.validate_lonlat`).
        """
        if not isinstance(lonlat, Tensor):
            raise TypeError(
                f'lonlat must be a torch.Tensor of (longitude, latitude) in '
                f'degrees, got a {type(lonlat).__name__}: pass '
                'torch.as_tensor(lonlat)'
            )
        if self.validate:
            validate_lonlat(lonlat)
        dtype = self.dtype
        coords = lonlat.to(compute_dtype(dtype))
        if isinstance(self.posenc, SphericalHarmonics):
            features = self.posenc(coords, dtype=self._features_dtype(lonlat, dtype))
        else:
            features = self.posenc(coords).to(dtype)
        out: Tensor = self.nnet(features)
        return out

    def _features_dtype(self, lonlat: Tensor, dtype: torch.dtype) -> torch.dtype:
        """The dtype the positional features are computed into.

        The network's dtype, or the autocast dtype where the network's first
        linear layer would cast the features to it anyway.
        """
        device = lonlat.device.type
        if (
            dtype == torch.float32
            and device in ('cuda', 'cpu')
            # Not subclasses: their forward may start otherwise.
            and type(self.nnet) in _LINEAR_FIRST
            and torch.is_autocast_enabled(device)
        ):
            return torch.get_autocast_dtype(device)
        return dtype


def _network_width(nnet: nn.Module, side: Literal['in', 'out']) -> int | None:
    """The input (``'in'``) or output (``'out'``) width of *nnet*, if known.

    The network's ``dim_in`` or ``dim_out`` (every network of this package
    has both); else, for a plain ``nn.Linear`` or an ``nn.Sequential`` that
    starts (``'in'``) or ends (``'out'``) with one, that layer's
    ``in_features`` or ``out_features``; else None.
    """
    own = getattr(nnet, f'dim_{side}', None)
    if own is not None:
        return int(own)
    if isinstance(nnet, nn.Sequential) and len(nnet):
        nnet = nnet[0 if side == 'in' else -1]
    if isinstance(nnet, nn.Linear):
        return nnet.in_features if side == 'in' else nnet.out_features
    return None


def build_location_encoder(
    positional_encoding: str = 'sphericalharmonics',
    network: str = 'siren',
    legendre_polys: int = 10,
    embed_dim: int = 256,
    capacity: int = 512,
    num_hidden_layers: int = 2,
    dropout: float = 0.5,
    dtype: torch.dtype = torch.float64,
    validate: bool = True,
    **posenc_kwargs: Any,
) -> LocationEncoder:
    """Build a location encoder from SatCLIP's configuration names.

    Args:
        positional_encoding: SatCLIP's ``le_type`` (``'sphericalharmonics'``,
            ``'wrap'``, ``'spherec'``, ...).
        network: SatCLIP's ``pe_type`` (``'siren'``, ``'fcnet'``, ``'mlp'``,
            ``'linear'``), or ``'geoclip'`` (GeoCLIP's ReLU MLPs, outputs
            summed: one branch per scale of ``'rff'``).
        legendre_polys: number of spherical-harmonic degrees ``L`` (only for
            ``'sphericalharmonics'``).
        embed_dim: embedding size.
        capacity: hidden width of the network.
        num_hidden_layers: hidden layers of the network (0 only for
            ``'mlp'``, whose input layer is hidden already, as in SatCLIP).
        dropout: dropout probability of the network in training.
        dtype: parameter and compute dtype (float64 by default, as SatCLIP).
            The positional encoding's buffers (the frequencies of ``'rff'``)
            are kept in float32 in a bfloat16 or float16 encoder.
        validate: validate inputs (see :class:`LocationEncoder`).
        **posenc_kwargs: further arguments of the positional encoding (for
            example ``frequency_num``, ``min_radius``, ``max_radius``).

    Returns:
        The location encoder.

    Raises:
        ValueError: for an unknown encoding or network name, an argument of
            the wrong type (a bool where a number belongs, a float where an
            integer belongs), a size below 1, ``dropout`` outside [0, 1), a
            ``dtype`` that is not a floating torch dtype, or an argument the
            positional encoding does not take. The message names it.
    """
    _check_architecture(
        legendre_polys, embed_dim, capacity, num_hidden_layers, dropout, validate
    )
    if num_hidden_layers < 0 or (
        num_hidden_layers == 0
        and lookup(NETWORKS, network, 'network') is not SatCLIPMLP
    ):
        raise ValueError(
            f'num_hidden_layers must be a positive integer, got {num_hidden_layers}'
            + (
                " (of the networks, only 'mlp' takes 0)"
                if num_hidden_layers == 0
                else ''
            )
        )
    check_dtype('dtype', dtype)
    # get_positional_encoding names an unknown encoding or argument.
    if positional_encoding == 'sphericalharmonics':
        posenc_kwargs = {'legendre_polys': legendre_polys, **posenc_kwargs}
    posenc = get_positional_encoding(positional_encoding, **posenc_kwargs)
    dim_in = int(posenc.embedding_dim)  # type: ignore[arg-type]
    scales = getattr(posenc, 'sigmas', None)
    if lookup(NETWORKS, network, 'network') is MultiScaleMLP and scales is not None:
        # One branch per scale of the random Fourier features, as in GeoCLIP
        # (get_network's default of three would mix scales in a branch).
        nnet: nn.Module = MultiScaleMLP(
            dim_in=dim_in,
            dim_hidden=capacity,
            dim_out=embed_dim,
            num_layers=num_hidden_layers,
            num_branches=len(scales),
        )
    else:
        nnet = get_network(
            network,
            dim_in=dim_in,
            dim_hidden=capacity,
            dim_out=embed_dim,
            num_layers=num_hidden_layers,
            dropout=dropout,
        )
    return _to_dtype(LocationEncoder(posenc, nnet, validate=validate), dtype)


def _to_dtype(encoder: LocationEncoder, dtype: torch.dtype) -> LocationEncoder:
    """Give ``encoder`` the compute dtype ``dtype`` without rounding its encoding.

    The network is converted to ``dtype``; the positional encoding (whose only
    state is the frequency matrices of random Fourier features) to the dtype
    the coordinates are computed in, :func:`~torchgeo_satclip.geo.compute_dtype`
    (float64 for float64, else float32). Converting the whole module to
    bfloat16 or float16 would round GeoCLIP's frequencies (up to about 1,000
    at the scale 2^8) by up to 2 or 0.25, and so their phases ``2 pi B v``
    by radians: the features of that scale would be noise.

    Args:
        encoder: the encoder, converted in place.
        dtype: the compute dtype (that of the network's parameters).

    Returns:
        ``encoder``.
    """
    encoder.posenc.to(compute_dtype(dtype))
    encoder.nnet.to(dtype)
    return encoder


def _check_architecture(
    legendre_polys: int,
    embed_dim: int,
    capacity: int,
    num_hidden_layers: int,
    dropout: float,
    validate: bool,
) -> None:
    """Check the arguments every encoder has, even those its parts ignore.

    ``legendre_polys`` matters to spherical harmonics only, and
    ``num_hidden_layers`` not to ``fcnet`` or ``linear``; a wrong value there
    is still a mistake in the caller's configuration, so it is refused too.

    Raises:
        ValueError: naming the first argument of the wrong type or out of range.
    """
    check_int('legendre_polys', legendre_polys, minimum=1)
    for name, value in (('embed_dim', embed_dim), ('capacity', capacity)):
        if check_int(name, value) < 1:
            raise ValueError(f'{name} must be a positive integer, got {value}')
    # 0 only for SatCLIP's MLP, as the original code allows (checked by the caller)
    check_int('num_hidden_layers', num_hidden_layers)
    check_real('dropout', dropout, minimum=0.0, below=1.0)
    check_flag('validate', validate)
