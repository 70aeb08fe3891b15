"""Real spherical-harmonics positional encoding, computed by a stable recurrence.

SatCLIP's location encoders start from the real spherical harmonics of degrees
``l = 0 .. L-1``. The original implementation evaluates each ``(l, m)`` from a
generated closed-form polynomial, which loses precision at high degree near the
poles (float64) and overflows above ``L = 30`` (float32). This module evaluates
the same functions with the standard three-term recurrence for *normalised*
associated Legendre functions, vectorised over the order ``m``: one loop over
the degree ``l`` (``O(L)`` tensor operations), no per-``(l, m)`` expression,
exact to float rounding at every latitude including the poles.

Conventions (SatCLIP's, the default):

* angles: ``phi = radians(lon + 180)`` in ``[0, 2 pi]`` and
  ``theta = radians(lat + 90)`` in ``[0, pi]`` (theta is measured from the
  **south** pole, so ``cos(theta) = -sin(lat)`` and ``sin(theta) = cos(lat)``);
* column ``l * l + l + m`` holds ``Y(l, m)``, ``m = -l .. l``;
* no Condon-Shortley phase;
* ``m > 0``: ``sqrt(2) N(l, m) P_l^m(cos theta) cos(m phi)``;
  ``m < 0``: ``sqrt(2) N(l, |m|) P_l^|m|(cos theta) sin(|m| phi)``;
  ``m = 0``: ``pi N(l, 0) P_l(cos theta)``, with
  ``N(l, m) = sqrt((2l + 1) / (4 pi) (l - m)! / (l + m)!)``.

The factor ``pi`` on the ``m = 0`` columns comes from a missing bracket in the
original code generator; the released checkpoints were trained with it, so it
is the default here. ``normalization='orthonormal'`` drops it and gives the
orthonormal real basis (``integral of Y(l, m) Y(l', m') dOmega = delta``).
"""

import math
from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ['SphericalHarmonics', 'spherical_harmonics']

Normalization = Literal['satclip', 'orthonormal']

#: Largest number of degrees accepted (degrees ``0 .. 99``).
MAX_LEGENDRE_POLYS = 100


@lru_cache(maxsize=32)
def _tables(num_degrees: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Build the float64 coefficient and index tables for ``num_degrees`` degrees.

    The normalised associated Legendre functions
    ``Q(l, m) = N(l, m) P_l^m(x)`` (no Condon-Shortley phase) obey, for
    ``x = cos(theta)`` and ``s = sin(theta)``::

        Q(0, 0) = 1 / sqrt(4 pi)
        Q(l, l) = sqrt((2l + 1) / (2l)) * s * Q(l-1, l-1)
        Q(l, l-1) = sqrt(2l + 1) * x * Q(l-1, l-1)
        Q(l, m) = a(l, m) * x * Q(l-1, m) - a(l, m) b(l, m) * Q(l-2, m),  m <= l-2

    with ``a(l, m) = sqrt((4l^2 - 1) / (l^2 - m^2))`` and
    ``b(l, m) = sqrt(((l-1)^2 - m^2) / (4 (l-1)^2 - 1))``. Row ``l`` of the
    returned tables holds, for every order ``m = 0 .. L-1`` at once, the
    coefficient of ``x * Q(l-1, m)`` (``ax``), of ``Q(l-2, m)`` (``b``) and of
    ``s * Q(l-1, m-1)`` (``d``), zero where a term does not apply, so that one
    row of the recurrence is three fused tensor operations.

    Args:
        num_degrees: number of degrees ``L``.

    Returns:
        ``(ax, b, d, legendre_index, trig_index, scale)``: the three ``(L, L)``
        recurrence tables, then for each of the ``L^2`` output columns the flat
        index ``l * L + |m|`` into the Legendre table, the index ``m + L - 1``
        into the trigonometric table, and the column factor without the
        normalisation-dependent ``m = 0`` factor (``sqrt(2)`` for ``m != 0``,
        ``1`` for ``m = 0``).
    """
    size = num_degrees
    ax = torch.zeros(size, size, dtype=torch.float64)
    b = torch.zeros(size, size, dtype=torch.float64)
    d = torch.zeros(size, size, dtype=torch.float64)
    for degree in range(1, size):
        orders = torch.arange(degree - 1, dtype=torch.float64)
        if degree >= 2:
            a = torch.sqrt((4.0 * degree**2 - 1.0) / (degree**2 - orders**2))
            prev = degree - 1
            bb = torch.sqrt((prev**2 - orders**2) / (4.0 * prev**2 - 1.0))
            ax[degree, : degree - 1] = a
            b[degree, : degree - 1] = a * bb
        ax[degree, degree - 1] = math.sqrt(2.0 * degree + 1.0)
        d[degree, degree] = math.sqrt((2.0 * degree + 1.0) / (2.0 * degree))

    degrees = torch.arange(size).repeat_interleave(2 * torch.arange(size) + 1)
    orders = torch.cat([torch.arange(-deg, deg + 1) for deg in range(size)])
    legendre_index = degrees * size + orders.abs()
    trig_index = orders + size - 1
    scale = torch.full(orders.shape, math.sqrt(2.0), dtype=torch.float64)
    scale[orders == 0] = 1.0
    return ax, b, d, legendre_index, trig_index, scale


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Return the dtype the encoding is computed in for an input ``dtype``.

    float64 stays float64; every narrower floating type (float32, float16,
    bfloat16) is computed in float32: bf16 cannot even hold a longitude to
    better than one degree, so the narrow cast, if wanted, belongs after the
    encoding, in the network.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def spherical_harmonics(
    lonlat: Tensor,
    legendre_polys: int = 10,
    normalization: Normalization = 'satclip',
) -> Tensor:
    """Evaluate the real spherical harmonics at (lon, lat) points.

    Args:
        lonlat: ``(N, 2)`` floating tensor of **(longitude, latitude) in
            degrees**, longitude first, lon in [-180, 180], lat in [-90, 90].
            Ranges are not checked here (see
            :class:`~torchgeo_satclip.models.LocationEncoder`, which does).
        legendre_polys: number of degrees ``L`` (degrees ``0 .. L-1``), from 1
            to 100. The output has ``L * L`` columns.
        normalization: ``'satclip'`` (default) reproduces the released
            checkpoints' basis, with the factor ``pi`` on every ``m = 0``
            column; ``'orthonormal'`` gives the orthonormal real basis.

    Returns:
        ``(N, L * L)`` tensor on ``lonlat``'s device, float64 for float64
        input and float32 for any narrower floating input (float32, float16,
        bfloat16). Differentiable with respect to ``lonlat``.

    Raises:
        ValueError: if ``legendre_polys`` is out of range, ``normalization``
            is unknown, or ``lonlat`` is not a floating ``(N, 2)`` tensor.
    """
    if not 1 <= legendre_polys <= MAX_LEGENDRE_POLYS:
        raise ValueError(
            f'legendre_polys must be between 1 and {MAX_LEGENDRE_POLYS}, '
            f'got {legendre_polys}'
        )
    if normalization not in ('satclip', 'orthonormal'):
        raise ValueError(
            "normalization must be 'satclip' or 'orthonormal', "
            f'got {normalization!r}'
        )
    if lonlat.ndim != 2 or lonlat.shape[1] != 2:
        raise ValueError(
            f'lonlat must have shape (N, 2) (lon, lat), got {tuple(lonlat.shape)}'
        )
    if not lonlat.is_floating_point():
        raise ValueError(f'lonlat must be a floating tensor, got {lonlat.dtype}')

    dtype = _compute_dtype(lonlat.dtype)
    device = lonlat.device
    size = legendre_polys
    ax, b, d, legendre_index, trig_index, scale = (
        t.to(device=device, dtype=dtype if t.is_floating_point() else None)
        for t in _tables(size)
    )
    if normalization == 'satclip':
        scale = scale.masked_fill(trig_index == size - 1, math.pi)

    coords = lonlat.to(dtype)
    lon = torch.deg2rad(coords[:, 0:1])
    lat_deg = coords[:, 1:2]
    # theta = lat + 90 deg (from the south pole): cos(theta) = -sin(lat) and
    # sin(theta) = cos(lat). Near the poles (|lat| >= 45) both come from the
    # colatitude 90 - |lat|, which is exact in floating point there (Sterbenz),
    # so sin(theta) is exactly 0 at lat = +-90 even in float32, where
    # cos(deg2rad(90)) would be -4.4e-8. No clamping anywhere.
    lat = torch.deg2rad(lat_deg)
    colat = torch.deg2rad(90.0 - lat_deg.abs())
    polar = lat_deg.abs() >= 45.0
    x = torch.where(polar, -torch.sign(lat_deg) * torch.cos(colat), -torch.sin(lat))
    s = torch.where(polar, torch.sin(colat), torch.cos(lat))

    # Normalised associated Legendre functions, one row (all orders) per degree.
    first = torch.zeros(lonlat.shape[0], size, device=device, dtype=dtype)
    first[:, 0] = 0.5 / math.sqrt(math.pi)
    rows = [first]
    previous = torch.zeros_like(first)
    for degree in range(1, size):
        current = rows[-1]
        shifted = nn.functional.pad(current[:, :-1], (1, 0))
        nxt = ax[degree] * x * current - b[degree] * previous + d[degree] * s * shifted
        previous = current
        rows.append(nxt)
    legendre = torch.stack(rows, dim=1).reshape(lonlat.shape[0], size * size)

    # Trigonometric table, column m + L - 1 for m = -(L-1) .. L-1:
    # sin(|m| phi) for m < 0, cos(m phi) for m >= 0, with phi = lon + pi.
    # cos(m (lon + pi)) = (-1)^m cos(m lon): the small argument m * lon keeps
    # float32 accurate at high order.
    orders = torch.arange(size, device=device, dtype=dtype)
    angle = lon * orders
    sign = 1.0 - 2.0 * (torch.arange(size, device=device) % 2).to(dtype)
    cos = sign * torch.cos(angle)
    sin = sign * torch.sin(angle)
    trig = torch.cat([sin[:, 1:].flip(1), cos], dim=1)

    return legendre[:, legendre_index] * trig[:, trig_index] * scale


class SphericalHarmonics(nn.Module):
    """Spherical-harmonics positional encoding of (lon, lat) points.

    The positional encoding of SatCLIP's released location encoders: ``L * L``
    real spherical harmonics of degrees ``0 .. L-1``. It has no parameters.
    See :func:`spherical_harmonics` for the exact convention.

    .. code-block:: python

        encoding = SphericalHarmonics(legendre_polys=10)
        features = encoding(torch.tensor([[2.35, 48.86]], dtype=torch.float64))
        features.shape  # (1, 100)
    """

    def __init__(
        self, legendre_polys: int = 10, normalization: Normalization = 'satclip'
    ) -> None:
        """Initialise the encoding.

        Args:
            legendre_polys: number of degrees ``L`` (1 to 100); output size
                ``L * L``. The released checkpoints use 10 or 40.
            normalization: ``'satclip'`` (default, compatible with the released
                checkpoints) or ``'orthonormal'``.

        Raises:
            ValueError: if an argument is out of range.
        """
        super().__init__()
        if not 1 <= legendre_polys <= MAX_LEGENDRE_POLYS:
            raise ValueError(
                f'legendre_polys must be between 1 and {MAX_LEGENDRE_POLYS}, '
                f'got {legendre_polys}'
            )
        if normalization not in ('satclip', 'orthonormal'):
            raise ValueError(
                "normalization must be 'satclip' or 'orthonormal', "
                f'got {normalization!r}'
            )
        self.legendre_polys = legendre_polys
        self.normalization: Normalization = normalization
        self.embedding_dim = legendre_polys * legendre_polys

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, L * L)`` features (float64 for float64 input, else float32).
        """
        return spherical_harmonics(lonlat, self.legendre_polys, self.normalization)

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return (
            f'legendre_polys={self.legendre_polys}, '
            f'normalization={self.normalization!r}'
        )
