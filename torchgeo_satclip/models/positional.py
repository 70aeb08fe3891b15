"""Positional encodings: fixed (parameter-free) features of (lon, lat) points.

Every encoding takes an ``(N, 2)`` tensor of **(longitude, latitude) in
degrees**, longitude first, and returns ``(N, embedding_dim)`` features on the
input's device, differentiable with respect to the input. Input validation
(shape, dtype, finiteness, ranges) happens once, in
:class:`~torchgeo_satclip.models.LocationEncoder`, not here; the encodings
only check the shape and that the dtype is floating (no host synchronisation).

Precision: float64 input is encoded in float64; any narrower floating input
(float32, float16, bfloat16) is encoded in float32 and returned as float32.

The encodings, by the name SatCLIP uses in ``hyper_parameters['le_type']``:

* ``'sphericalharmonics'``: :class:`SphericalHarmonics` (the released models);
* ``'direct'``, ``'cartesian3d'``, ``'wrap'``: :class:`Direct`,
  :class:`Cartesian3D`, :class:`Wrap`, 2, 3 and 4 features;
* ``'grid'``, ``'theory'``: :class:`Grid`, :class:`Theory`, the multi-scale
  sinusoidal encodings of Space2Vec (Mai et al., ICLR 2020), 4F and 6F features;
* ``'spherec'``, ``'spherecplus'``, ``'spherem'``, ``'spheremplus'``:
  :class:`SphereC`, :class:`SphereCPlus`, :class:`SphereM`,
  :class:`SphereMPlus`, the multi-scale encodings of Sphere2Vec (Mai et al.,
  ISPRS J. 2023), 6F, 12F, 10F and 16F features in SatCLIP's layout;
* ``'rff'``: :class:`RandomFourierFeatures`, GeoCLIP's (Vivanco Cepeda et al.,
  NeurIPS 2023) Equal Earth projection and multi-scale Gaussian random Fourier
  features (not in the original SatCLIP code base).

By default the six multi-scale encodings reproduce the computation of
SatCLIP's ``satclip/positional_encoding/{grid_and_sphere,theory}.py`` column
for column (to float rounding), but in torch, on the input's device, with
autograd (the original computes them in numpy on the CPU). The four Sphere2Vec
classes also offer ``convention='sphere2vec'``: the paper's and Sphere2Vec
code's version (angles in radians, no duplicated columns). Their ``F = frequency_num`` scales use the timescales
(SatCLIP's ``_cal_freq_list``, ``freq_init='geometric'``)::

    r_s = min_radius * (max_radius / min_radius) ** (s / (F - 1)),  s = 0 .. F-1
    f_s = 1 / r_s

(``F = 1``, where the original divides by zero, gives the single timescale
``min_radius``.) The defaults ``frequency_num=10``, ``min_radius=1``,
``max_radius=360`` are those of the original's ``get_positional_encoding``,
through which SatCLIP builds every one of these encodings.

:func:`get_positional_encoding` builds an encoding by the name SatCLIP uses in
``hyper_parameters['le_type']``.
"""

import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_int, check_real
from ..geo import check_lonlat_shape, compute_dtype
from ._registry import lookup
from .spherical_harmonics import SphericalHarmonics

__all__ = [
    'GEOCLIP_SCALE_FACTOR',
    'POSITIONAL_ENCODINGS',
    'Cartesian3D',
    'Direct',
    'Grid',
    'RandomFourierFeatures',
    'SphereC',
    'SphereCPlus',
    'SphereM',
    'SphereMPlus',
    'SphericalHarmonics',
    'Theory',
    'Wrap',
    'equal_earth_projection',
    'get_positional_encoding',
    'list_positional_encodings',
]

Convention = Literal['satclip', 'sphere2vec']

#: Equal Earth polynomial coefficients (Šavrič, Patterson and Jenny, 2018).
_EQUAL_EARTH_A1 = 1.340264
_EQUAL_EARTH_A2 = -0.081106
_EQUAL_EARTH_A3 = 0.000893
_EQUAL_EARTH_A4 = 0.003796

#: GeoCLIP's scale factor ``SF``: it feeds ``equal_earth_projection * SF / 180``
#: to its random Fourier features. ``180 / SF = 2.70663`` is the half-width of
#: the unit-sphere projection (``x`` at lon = 180, lat = 0), so the scaled ``x``
#: lies in ``[-1, 1]`` and ``y`` in ``[-0.487, 0.487]``.
GEOCLIP_SCALE_FACTOR = 66.50336


def _prepare(lonlat: Tensor) -> Tensor:
    """Check the shape and dtype of ``lonlat`` and cast it to the compute dtype.

    Args:
        lonlat: ``(N, 2)`` floating tensor of (longitude, latitude) in degrees.

    Returns:
        ``lonlat`` in float64 if it is float64, else in float32.

    Raises:
        ValueError: if ``lonlat`` is not a floating ``(N, 2)`` tensor.
    """
    check_lonlat_shape(lonlat)
    return lonlat.to(compute_dtype(lonlat.dtype))


def _repeat_columns(values: Tensor) -> Tensor:
    """Repeat every entry of the last dimension twice, side by side.

    ``[a, b] -> [a, a, b, b]`` along the last dimension: a view by
    ``expand``, then one copy (no device synchronisation).

    Args:
        values: tensor of shape ``(..., K)``.

    Returns:
        Tensor of shape ``(..., 2 K)``.
    """
    doubled = values.unsqueeze(-1).expand(*values.shape, 2)
    return doubled.reshape(*values.shape[:-1], 2 * values.shape[-1])


class Direct(nn.Module):
    """SatCLIP's ``direct`` encoding: the coordinates in radians, minus pi.

    Formula (as in the original, applied to both columns)::

        PE(lon, lat) = [radians(lon) - pi, radians(lat) - pi]

    Output columns: ``[lon, lat]``, 2 features. Note that, as in the original,
    longitude ends up in ``[-2 pi, 0]`` and latitude in ``[-3 pi/2, -pi/2]``
    (the original's comment "place lon lat coordinates in a -pi, pi range" does
    not describe what it computes).
    """

    def __init__(self) -> None:
        """Initialise the encoding (no arguments, no parameters)."""
        super().__init__()
        self.embedding_dim = 2

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, 2)`` features (float64 for float64 input, else float32).
        """
        return torch.deg2rad(_prepare(lonlat)) - math.pi


class Cartesian3D(nn.Module):
    """SatCLIP's ``cartesian3d`` encoding: the point on the unit sphere.

    Formula, with ``lambda = radians(lon)`` and ``phi = radians(lat)``::

        PE(lon, lat) = [cos(phi) cos(lambda), cos(phi) sin(lambda), sin(phi)]

    Output columns ``[x, y, z]`` as in the original, 3 features.
    """

    def __init__(self) -> None:
        """Initialise the encoding (no arguments, no parameters)."""
        super().__init__()
        self.embedding_dim = 3

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, 3)`` unit vectors (float64 for float64 input, else float32).
        """
        coords = torch.deg2rad(_prepare(lonlat))
        lon, lat = coords[:, 0], coords[:, 1]
        cos_lat = torch.cos(lat)
        return torch.stack(
            [cos_lat * torch.cos(lon), cos_lat * torch.sin(lon), torch.sin(lat)], dim=1
        )


class Wrap(nn.Module):
    """SatCLIP's ``wrap`` encoding (Mac Aodha et al., ICCV 2019).

    Formula, with ``lambda = radians(lon)`` and ``phi = radians(lat)``::

        PE(lon, lat) = [cos(lambda), sin(lambda), cos(phi), sin(phi)]

    Output columns in that order, as in the original, 4 features.
    """

    def __init__(self) -> None:
        """Initialise the encoding (no arguments, no parameters)."""
        super().__init__()
        self.embedding_dim = 4

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, 4)`` features (float64 for float64 input, else float32).
        """
        coords = torch.deg2rad(_prepare(lonlat))
        lon, lat = coords[:, 0], coords[:, 1]
        return torch.stack(
            [torch.cos(lon), torch.sin(lon), torch.cos(lat), torch.sin(lat)], dim=1
        )


class _MultiScale(nn.Module):
    """Base of the Space2Vec / Sphere2Vec encodings: the geometric scales."""

    #: Output features per scale; ``embedding_dim = features_per_scale * F``.
    features_per_scale: ClassVar[int] = 0
    embedding_dim: int

    def __init__(
        self,
        frequency_num: int = 10,
        min_radius: float = 1.0,
        max_radius: float = 360.0,
    ) -> None:
        """Initialise the scales.

        Args:
            frequency_num: number of scales ``F`` (at least 1).
            min_radius: smallest timescale ``r_0`` (finest scale), > 0.
            max_radius: largest timescale ``r_{F-1}`` (coarsest scale), > 0,
                not below ``min_radius``.

        Raises:
            ValueError: if an argument is of the wrong type or out of range.
        """
        super().__init__()
        frequency_num = check_int('frequency_num', frequency_num, minimum=1)
        smallest = check_real('min_radius', min_radius, positive=True)
        largest = check_real('max_radius', max_radius, positive=True)
        if smallest > largest:
            raise ValueError(
                f'min_radius ({smallest:g}) must not exceed max_radius '
                f'({largest:g}): they are the finest and the coarsest timescale'
            )
        self.frequency_num = frequency_num
        self.min_radius = smallest
        self.max_radius = largest
        self.embedding_dim = self.features_per_scale * frequency_num

    def frequencies(
        self,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Return the ``F`` frequencies ``f_s = 1 / r_s``, finest first.

        Computed on ``device`` (no host-to-device copy), in ``dtype``.

        Args:
            dtype: floating dtype of the result.
            device: device of the result.

        Returns:
            ``(F,)`` tensor ``1 / (min_radius * (max_radius / min_radius) **
            (s / (F - 1)))``, or ``[1 / min_radius]`` for ``F = 1``.
        """
        steps = torch.arange(self.frequency_num, dtype=dtype, device=device)
        if self.frequency_num == 1:
            timescales = torch.full_like(steps, self.min_radius)
        else:
            increment = math.log(self.max_radius / self.min_radius) / (
                self.frequency_num - 1
            )
            timescales = self.min_radius * torch.exp(steps * increment)
        return 1.0 / timescales

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return (
            f'frequency_num={self.frequency_num}, min_radius={self.min_radius}, '
            f'max_radius={self.max_radius}'
        )


class Grid(_MultiScale):
    """Space2Vec's ``grid`` encoding (Mai et al., ICLR 2020), SatCLIP's ``grid``.

    Formula: each coordinate ``c`` in (lon, lat), **in degrees** (the original
    applies no conversion), at every scale ``s``::

        PE(lon, lat) = concat over c in (lon, lat), s = 0 .. F-1 of
                       [sin(c * f_s), cos(c * f_s)]

    with ``f_s = 1 / r_s`` (see the module docstring). The paper writes the
    pair as ``[cos, sin]``; the code of Space2Vec and SatCLIP puts ``sin``
    first, and so does this class.

    Output layout (the original's): column ``2 F c + 2 s + k`` with ``c = 0``
    for longitude, ``1`` for latitude and ``k = 0`` for sin, ``1`` for cos;
    ``4 F`` features.
    """

    features_per_scale = 4

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, 4 F)`` features (float64 for float64 input, else float32).
        """
        coords = _prepare(lonlat)
        angles = coords.unsqueeze(-1) * self.frequencies(coords.dtype, coords.device)
        features = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)
        return features.reshape(coords.shape[0], self.embedding_dim)


class Theory(_MultiScale):
    """Space2Vec's ``theory`` encoding (Mai et al., ICLR 2020), SatCLIP's ``theory``.

    Formula: the (lon, lat) vector **in degrees** (no conversion, as in the
    original) is projected on three unit vectors 120 degrees apart,
    ``a_1 = (1, 0)``, ``a_2 = (-1/2, sqrt(3)/2)``, ``a_3 = (-1/2, -sqrt(3)/2)``,
    and at every scale ``s``::

        PE(lon, lat) = concat over s = 0 .. F-1, j = 1 .. 3 of
                       [sin(<x, a_j> f_s), cos(<x, a_j> f_s)]

    (the paper writes ``[cos, sin]``; the code puts ``sin`` first).

    Output layout (the original's): column ``6 s + 2 (j - 1) + k``, ``6 F``
    features. For even ``F`` (the defaults, and every configuration SatCLIP
    ships), ``k = 0`` is the sine and ``k = 1`` the cosine. The original
    applies sine and cosine after reshaping the ``6 F`` columns into two halves
    of ``3 F``, to the even and odd positions *within each half*; for odd ``F``
    this swaps sine and cosine in the second half, and at the middle scale one
    projection gets two sines and no cosine. This class reproduces that exactly
    (column ``i`` is a sine iff ``(i mod 3 F)`` is even), so its output matches
    the original for every ``F``; prefer an even ``F``.
    """

    features_per_scale = 6

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, 6 F)`` features (float64 for float64 input, else float32).
        """
        coords = _prepare(lonlat)
        lon, lat = coords[:, 0], coords[:, 1]
        half_sqrt3 = math.sqrt(3.0) / 2.0
        # <x, a_j> for the three unit vectors.
        projections = torch.stack(
            [lon, -0.5 * lon + half_sqrt3 * lat, -0.5 * lon - half_sqrt3 * lat], dim=-1
        )
        freqs = self.frequencies(coords.dtype, coords.device)
        # (N, F, 3) angles, each repeated for its sine and cosine column.
        angles = projections.unsqueeze(1) * freqs.unsqueeze(-1)
        angles = _repeat_columns(angles).reshape(coords.shape[0], self.embedding_dim)
        column = torch.arange(self.embedding_dim, device=coords.device)
        is_sine = (column % (3 * self.frequency_num)) % 2 == 0
        return torch.where(is_sine, torch.sin(angles), torch.cos(angles))


class _Sphere(_MultiScale):
    """Base of the Sphere2Vec encodings (sphereC, sphereC+, sphereM, sphereM+)."""

    #: Number of distinct terms per scale.
    terms_per_scale: ClassVar[int]

    def __init__(
        self,
        frequency_num: int = 10,
        min_radius: float = 1.0,
        max_radius: float = 360.0,
        convention: Convention = 'satclip',
    ) -> None:
        """Initialise the encoding.

        Args:
            frequency_num: number of scales ``F``.
            min_radius: smallest timescale (finest scale), > 0, in degrees
                (``'satclip'``) or radians (``'sphere2vec'``).
            max_radius: largest timescale (coarsest scale), > 0, same unit.
            convention: ``'satclip'`` (default) reproduces SatCLIP's
                computation: angles in **degrees** (no conversion) and every
                term in two adjacent columns; ``'sphere2vec'`` follows the
                Sphere2Vec paper and its reference code: angles in radians,
                each term once (half the columns).

        Raises:
            ValueError: if an argument is out of range.
        """
        super().__init__(frequency_num, min_radius, max_radius)
        if convention not in ('satclip', 'sphere2vec'):
            raise ValueError(
                f"convention must be 'satclip' or 'sphere2vec', got {convention!r}"
            )
        self.convention: Convention = convention
        copies = 2 if convention == 'satclip' else 1
        self.embedding_dim = copies * self.terms_per_scale * frequency_num

    def _terms(
        self, lam: Tensor, phi: Tensor, lam_s: Tensor, phi_s: Tensor
    ) -> list[Tensor]:
        """Return the per-scale terms, each ``(N, F)``.

        Args:
            lam: ``(N, 1)`` longitude (unscaled).
            phi: ``(N, 1)`` latitude (unscaled).
            lam_s: ``(N, F)`` longitude times each frequency.
            phi_s: ``(N, F)`` latitude times each frequency.

        Returns:
            ``terms_per_scale`` tensors of shape ``(N, F)``, in column order.
        """
        raise NotImplementedError

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, embedding_dim)`` features (float64 for float64 input, else
            float32).
        """
        coords = _prepare(lonlat)
        if self.convention == 'sphere2vec':
            coords = torch.deg2rad(coords)
        scaled = coords.unsqueeze(-1) * self.frequencies(coords.dtype, coords.device)
        terms = self._terms(coords[:, 0:1], coords[:, 1:2], scaled[:, 0], scaled[:, 1])
        # (N, F, terms): all terms of scale s are contiguous, scale by scale.
        features = torch.stack(terms, dim=-1)
        if self.convention == 'satclip':
            features = _repeat_columns(features)
        return features.reshape(coords.shape[0], self.embedding_dim)

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return f'{super().extra_repr()}, convention={self.convention!r}'


class SphereC(_Sphere):
    """Sphere2Vec's ``sphereC`` encoding (Mai et al., ISPRS J. 2023).

    Formula, with ``lambda``, ``phi`` the longitude and latitude and
    ``lambda_s = lambda f_s``, ``phi_s = phi f_s``::

        PE(lambda, phi) = concat over s = 0 .. F-1 of
            [sin(phi_s), cos(phi_s) cos(lambda_s), cos(phi_s) sin(lambda_s)]

    Output layout (the original's): the three terms of scale ``s`` in that
    order. With ``convention='satclip'`` (default), as in SatCLIP's
    ``grid_and_sphere.py``, angles are in **degrees** and each term fills two
    adjacent columns (an artefact of the original's ``(F, 2)`` frequency
    matrix): column ``6 s + 2 q + d``, ``q`` the term, ``d`` in {0, 1}, ``6 F``
    features. With ``convention='sphere2vec'``: radians, column ``3 s + q``,
    ``3 F`` features.
    """

    terms_per_scale = 3

    def _terms(
        self, lam: Tensor, phi: Tensor, lam_s: Tensor, phi_s: Tensor
    ) -> list[Tensor]:
        """Return ``[sin phi_s, cos phi_s cos lam_s, cos phi_s sin lam_s]``."""
        cos_phi_s = torch.cos(phi_s)
        return [
            torch.sin(phi_s),
            cos_phi_s * torch.cos(lam_s),
            cos_phi_s * torch.sin(lam_s),
        ]


class SphereCPlus(_Sphere):
    """Sphere2Vec's ``sphereC+`` encoding (Mai et al., ISPRS J. 2023).

    sphereC plus the Space2Vec grid terms. With ``lambda_s = lambda f_s`` and
    ``phi_s = phi f_s``::

        PE(lambda, phi) = concat over s = 0 .. F-1 of
            [sin(phi_s), cos(phi_s), sin(lambda_s), cos(lambda_s),
             cos(phi_s) cos(lambda_s), cos(phi_s) sin(lambda_s)]

    Output layout (the original's): the six terms of scale ``s`` in that order.
    With ``convention='satclip'`` (default): angles in **degrees**, each term in
    two adjacent columns, column ``12 s + 2 q + d``, ``12 F`` features. With
    ``convention='sphere2vec'``: radians, column ``6 s + q``, ``6 F`` features.
    """

    terms_per_scale = 6

    def _terms(
        self, lam: Tensor, phi: Tensor, lam_s: Tensor, phi_s: Tensor
    ) -> list[Tensor]:
        """Return the six sphereC+ terms."""
        sin_phi_s, cos_phi_s = torch.sin(phi_s), torch.cos(phi_s)
        sin_lam_s, cos_lam_s = torch.sin(lam_s), torch.cos(lam_s)
        return [
            sin_phi_s,
            cos_phi_s,
            sin_lam_s,
            cos_lam_s,
            cos_phi_s * cos_lam_s,
            cos_phi_s * sin_lam_s,
        ]


class SphereM(_Sphere):
    """Sphere2Vec's ``sphereM`` encoding (Mai et al., ISPRS J. 2023).

    Mixes each scaled angle with the unscaled other one. With
    ``lambda_s = lambda f_s`` and ``phi_s = phi f_s``::

        PE(lambda, phi) = concat over s = 0 .. F-1 of
            [sin(phi_s), cos(phi_s) cos(lambda), cos(phi) cos(lambda_s),
             cos(phi_s) sin(lambda), cos(phi) sin(lambda_s)]

    Output layout (the original's): the five terms of scale ``s`` in that
    order. With ``convention='satclip'`` (default), as SatCLIP computes it, the
    angles are in **degrees**, including the unscaled ``lambda`` and ``phi``
    (so ``cos(lambda)`` is the cosine of the longitude's value in degrees taken
    as radians; the Sphere2Vec paper and code use radians there), and each term
    fills two adjacent columns: column ``10 s + 2 q + d``, ``10 F`` features.
    With ``convention='sphere2vec'``: radians, column ``5 s + q``, ``5 F``
    features.
    """

    terms_per_scale = 5

    def _terms(
        self, lam: Tensor, phi: Tensor, lam_s: Tensor, phi_s: Tensor
    ) -> list[Tensor]:
        """Return the five sphereM terms."""
        cos_phi_s, cos_phi = torch.cos(phi_s), torch.cos(phi)
        return [
            torch.sin(phi_s),
            cos_phi_s * torch.cos(lam),
            cos_phi * torch.cos(lam_s),
            cos_phi_s * torch.sin(lam),
            cos_phi * torch.sin(lam_s),
        ]


class SphereMPlus(_Sphere):
    """Sphere2Vec's ``sphereM+`` encoding (Mai et al., ISPRS J. 2023).

    sphereM plus the Space2Vec grid terms. With ``lambda_s = lambda f_s`` and
    ``phi_s = phi f_s``::

        PE(lambda, phi) = concat over s = 0 .. F-1 of
            [sin(phi_s), cos(phi_s), sin(lambda_s), cos(lambda_s),
             cos(phi_s) cos(lambda), cos(phi) cos(lambda_s),
             cos(phi_s) sin(lambda), cos(phi) sin(lambda_s)]

    Output layout (the original's): the eight terms of scale ``s`` in that
    order. With ``convention='satclip'`` (default): angles in **degrees**
    (unscaled ones included, as in :class:`SphereM`), each term in two adjacent
    columns, column ``16 s + 2 q + d``, ``16 F`` features. With
    ``convention='sphere2vec'``: radians, column ``8 s + q``, ``8 F`` features.
    """

    terms_per_scale = 8

    def _terms(
        self, lam: Tensor, phi: Tensor, lam_s: Tensor, phi_s: Tensor
    ) -> list[Tensor]:
        """Return the eight sphereM+ terms."""
        sin_phi_s, cos_phi_s = torch.sin(phi_s), torch.cos(phi_s)
        sin_lam_s, cos_lam_s = torch.sin(lam_s), torch.cos(lam_s)
        cos_phi = torch.cos(phi)
        return [
            sin_phi_s,
            cos_phi_s,
            sin_lam_s,
            cos_lam_s,
            cos_phi_s * torch.cos(lam),
            cos_phi * cos_lam_s,
            cos_phi_s * torch.sin(lam),
            cos_phi * sin_lam_s,
        ]


def equal_earth_projection(lonlat: Tensor) -> Tensor:
    """Project (lon, lat) points with the Equal Earth projection, unit sphere.

    Equal Earth (Šavrič, Patterson and Jenny, 2018), spherical form, central
    meridian 0, radius 1, with ``lambda = radians(lon)``, ``phi = radians(lat)``::

        sin(theta) = sqrt(3) / 2 * sin(phi)
        x = 2 sqrt(3) lambda cos(theta)
            / (3 (9 A4 theta^8 + 7 A3 theta^6 + 3 A2 theta^2 + A1))
        y = A4 theta^9 + A3 theta^7 + A2 theta^3 + A1 theta

    with ``A1 = 1.340264``, ``A2 = -0.081106``, ``A3 = 0.000893``,
    ``A4 = 0.003796``. Equals PROJ's ``+proj=eqearth +R=1``; ``x`` spans
    ``[-2.70663, 2.70663]`` and ``y`` ``[-1.31736, 1.31736]``.

    Args:
        lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**
            (GeoCLIP's own function takes (lat, lon); this one does not).

    Returns:
        ``(N, 2)`` projected ``(x, y)`` (float64 for float64 input, else
        float32), differentiable everywhere including the poles.

    Raises:
        ValueError: if ``lonlat`` is not a floating ``(N, 2)`` tensor.
    """
    coords = torch.deg2rad(_prepare(lonlat))
    lon, lat = coords[:, 0], coords[:, 1]
    theta = torch.asin(math.sqrt(3.0) / 2.0 * torch.sin(lat))
    theta2 = theta * theta
    theta6 = theta2 * theta2 * theta2
    denominator = 3.0 * (
        9.0 * _EQUAL_EARTH_A4 * theta6 * theta2
        + 7.0 * _EQUAL_EARTH_A3 * theta6
        + 3.0 * _EQUAL_EARTH_A2 * theta2
        + _EQUAL_EARTH_A1
    )
    x = 2.0 * math.sqrt(3.0) * lon * torch.cos(theta) / denominator
    y = theta * (
        _EQUAL_EARTH_A1
        + theta2
        * (
            _EQUAL_EARTH_A2
            + theta2 * theta2 * (_EQUAL_EARTH_A3 + _EQUAL_EARTH_A4 * theta2)
        )
    )
    return torch.stack([x, y], dim=1)


#: Dtypes that would round the frequency matrices of random Fourier features.
_HALF_DTYPES = (torch.float16, torch.bfloat16)


@contextmanager
def _buffers_kept_unrounded(module: nn.Module) -> Iterator[None]:
    """Keep *module*'s floating buffers out of half dtypes while it is converted.

    Around ``nn.Module._apply`` (``.to``, ``.half()``, ``.bfloat16()``): a
    buffer the conversion gives float16 or bfloat16 is converted instead from
    its value before, to float32 (:func:`~torchgeo_satclip.geo.compute_dtype`
    of a half dtype), on the device the conversion chose. Other conversions
    (a device, float32, float64) are left as they are.

    Args:
        module: the module converted inside the ``with`` block.

    Yields:
        Nothing.
    """
    before = {
        name: buffer
        for name, buffer in module.named_buffers()
        if buffer.is_floating_point() and buffer.dtype not in _HALF_DTYPES
    }
    yield
    for name, kept in before.items():
        owner, _, key = name.rpartition('.')
        holder = module.get_submodule(owner)
        after = holder._buffers[key]
        if after is not None and after.dtype in _HALF_DTYPES:
            holder._buffers[key] = kept.to(
                device=after.device, dtype=compute_dtype(after.dtype)
            )


class RandomFourierFeatures(nn.Module):
    """GeoCLIP's location features: Equal Earth, then Gaussian random Fourier features.

    Following GeoCLIP (Vivanco Cepeda et al., NeurIPS 2023), the point is
    projected with :func:`equal_earth_projection` and scaled by GeoCLIP's
    factor, ``v = (x, y) * 66.50336 / 180`` (so ``x`` is in ``[-1, 1]``); then,
    for every scale ``sigma_i`` (GeoCLIP: ``2^0, 2^4, 2^8``), Gaussian random
    Fourier features (Tancik et al., NeurIPS 2020)::

        gamma_i(v) = [cos(2 pi B_i v), sin(2 pi B_i v)],  B_i ~ N(0, sigma_i^2)

    with ``B_i`` of shape ``(encoded_size, 2)``. The features of all scales are
    concatenated in the order of ``sigmas``: column
    ``2 E i + k E + e`` (``k = 0`` cosine, ``1`` sine, ``E = encoded_size``),
    ``len(sigmas) * 2 * encoded_size`` features. (GeoCLIP itself feeds each
    ``gamma_i`` to its own MLP and sums the outputs; concatenating them is what
    a single downstream network needs.)

    GeoCLIP takes (lat, lon); this class, like every encoding here, takes
    **(lon, lat)** and converts inside: ``x`` comes from the longitude, ``y``
    from the latitude, exactly as in GeoCLIP.

    The matrices are drawn once, at construction, in float64 from a
    ``torch.Generator`` seeded with ``seed`` (so the same seed gives the same
    matrices on every machine), and stored in the buffer ``b`` of shape
    ``(len(sigmas), encoded_size, 2)``, which is part of the state dict. They
    have GeoCLIP's layout: GeoCLIP's pretrained ``LocEnc{i}.capsule.0.b`` can be
    copied into ``b[i]``. Converting the module (``.to(torch.float32)``) also
    converts ``b``, except to a half dtype (``.to(torch.bfloat16)``,
    ``.half()``): ``b`` is then kept in float32, since rounding its entries
    (up to about 1,000 at the scale 2^8) to bfloat16 would move them by up
    to 2, and the phases ``2 pi B_i v`` by radians.

    Precision: the phases ``2 pi B_i v`` reach about 10^4 radians at the scale
    2^8, where float32 keeps only about 1e-3 radian, enough to move GeoCLIP's
    embeddings by 3e-5. So the projection and the phases are always computed
    in float64, and only the features are cast to the input's compute dtype
    (float32 for float32 input, as every encoding here); the cost is
    ``len(sigmas) * encoded_size`` float64 sines and cosines per point.
    """

    b: Tensor

    def __init__(
        self,
        sigmas: Sequence[float] = (2.0**0, 2.0**4, 2.0**8),
        encoded_size: int = 256,
        seed: int = 0,
    ) -> None:
        """Initialise the encoding and draw its random matrices.

        Args:
            sigmas: standard deviations of the Gaussian frequency matrices, one
                per scale (GeoCLIP: ``(1, 16, 256)``).
            encoded_size: rows of each matrix (GeoCLIP: 256); each scale gives
                ``2 * encoded_size`` features.
            seed: seed of the generator that draws the matrices.

        Raises:
            ValueError: if an argument is of the wrong type or out of range.
        """
        super().__init__()
        if isinstance(sigmas, Tensor | np.ndarray):
            sigmas = sigmas.tolist()
        if isinstance(sigmas, str | bytes) or not isinstance(sigmas, Iterable):
            raise ValueError(
                f'sigmas must be a sequence of numbers, got {sigmas!r} '
                f'(type {type(sigmas).__name__})'
            )
        scales = tuple(
            check_real(f'sigmas[{i}]', sigma, positive=True)
            for i, sigma in enumerate(sigmas)
        )
        if not scales:
            raise ValueError('sigmas must not be empty')
        encoded_size = check_int('encoded_size', encoded_size, minimum=1)
        seed = check_int('seed', seed, minimum=0, maximum=2**64 - 1)
        self.sigmas = scales
        self.encoded_size = encoded_size
        self.seed = seed
        self.embedding_dim = len(scales) * 2 * encoded_size
        generator = torch.Generator().manual_seed(seed)
        normal = torch.randn(
            len(scales), encoded_size, 2, generator=generator, dtype=torch.float64
        )
        sigma = torch.tensor(scales, dtype=torch.float64).view(-1, 1, 1)
        self.register_buffer('b', normal * sigma)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Self:
        """Convert the module, keeping ``b`` in float32 or wider.

        ``.to(torch.bfloat16)``, ``.half()`` and Lightning's ``bf16-true``
        would round the frequency matrices; they are converted to float32
        instead (``forward`` computes the phases in float64 anyway).
        """
        with _buffers_kept_unrounded(self):
            super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        return self

    def forward(self, lonlat: Tensor) -> Tensor:
        """Encode points.

        Args:
            lonlat: ``(N, 2)`` tensor of **(longitude, latitude) in degrees**.

        Returns:
            ``(N, len(sigmas) * 2 * encoded_size)`` features (float64 for
            float64 input, else float32).
        """
        coords = _prepare(lonlat)
        exact = coords.to(torch.float64)  # see "Precision" in the class docstring
        v = equal_earth_projection(exact) * (GEOCLIP_SCALE_FACTOR / 180.0)
        v = 2.0 * math.pi * v
        b = self.b.to(device=coords.device, dtype=torch.float64)
        # (N, scales, E): 2 pi B_i v for every scale, as v_x B[..., 0] + v_y B[..., 1].
        angles = v[:, None, None, 0] * b[..., 0] + v[:, None, None, 1] * b[..., 1]
        features = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        return features.reshape(coords.shape[0], self.embedding_dim).to(coords.dtype)

    def extra_repr(self) -> str:
        """Return the summary shown by ``repr``."""
        return (
            f'sigmas={self.sigmas}, encoded_size={self.encoded_size}, seed={self.seed}'
        )


#: Positional-encoding classes by the name SatCLIP uses in ``le_type``.
POSITIONAL_ENCODINGS: dict[str, type[nn.Module]] = {
    'sphericalharmonics': SphericalHarmonics,
    'direct': Direct,
    'cartesian3d': Cartesian3D,
    'wrap': Wrap,
    'grid': Grid,
    'theory': Theory,
    'spherec': SphereC,
    'spherecplus': SphereCPlus,
    'spherem': SphereM,
    'spheremplus': SphereMPlus,
    'rff': RandomFourierFeatures,
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
        ValueError: if ``name`` is unknown, ``kwargs`` holds an argument that
            encoding does not take (the message names it and lists those it
            takes), or an argument is of the wrong type or out of range.
    """
    encoding = lookup(POSITIONAL_ENCODINGS, name, 'positional encoding')
    accepted = inspect.signature(encoding).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f'positional encoding {name!r} takes no argument {unknown[0]!r}; '
            f'it takes {", ".join(accepted) or "no arguments"}'
        )
    return encoding(**kwargs)


def list_positional_encodings() -> list[str]:
    """Names accepted by :func:`get_positional_encoding` (SatCLIP's ``le_type`` values).

    Returns:
        The registered names of :data:`POSITIONAL_ENCODINGS`, sorted.
    """
    return sorted(POSITIONAL_ENCODINGS)
