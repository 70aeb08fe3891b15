"""Positional encodings: fixed (parameter-free) features of (lon, lat) points.

Every encoding takes an ``(N, 2)`` tensor of **(longitude, latitude) in
degrees**, longitude first, and returns ``(N, embedding_dim)`` features on the
input's device, differentiable with respect to the input. Input validation
(shape, dtype, finiteness, ranges) happens once, in
:class:`~torchgeo_satclip.models.LocationEncoder`, not here.

:func:`get_positional_encoding` builds an encoding by the name SatCLIP uses in
``hyper_parameters['le_type']``.
"""

from typing import Any

from torch import nn

from .spherical_harmonics import SphericalHarmonics

__all__ = ['POSITIONAL_ENCODINGS', 'SphericalHarmonics', 'get_positional_encoding']

#: Positional-encoding classes by the name SatCLIP uses in ``le_type``.
POSITIONAL_ENCODINGS: dict[str, type[nn.Module]] = {
    'sphericalharmonics': SphericalHarmonics,
}


def get_positional_encoding(name: str, **kwargs: Any) -> nn.Module:
    """Build a positional encoding by name.

    Args:
        name: a key of :data:`POSITIONAL_ENCODINGS`, for example
            ``'sphericalharmonics'``.
        **kwargs: arguments of that encoding's class (for spherical harmonics:
            ``legendre_polys``, ``normalization``).

    Returns:
        The encoding; its ``embedding_dim`` attribute is its output size.

    Raises:
        ValueError: if ``name`` is unknown.
    """
    try:
        cls = POSITIONAL_ENCODINGS[name]
    except KeyError:
        raise ValueError(
            f'unknown positional encoding {name!r}; '
            f'expected one of {sorted(POSITIONAL_ENCODINGS)}'
        ) from None
    return cls(**kwargs)
