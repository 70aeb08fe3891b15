"""(longitude, latitude) points in degrees: validation and sphere geometry.

Every point in this package is ``(longitude, latitude)`` in degrees,
longitude first. :func:`validate_lonlat` is the one check of that contract:
the location encoders, ``embed``, the probes' CSV tasks and the datasets all
call it, so a bad point gets the same message everywhere (which row, which
value, and a hint when the two columns look swapped).
"""

import contextlib
import math
import numbers
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'EARTH_RADIUS_KM',
    'LonLatArray',
    'check_lonlat_shape',
    'compute_dtype',
    'great_circle_km',
    'jitter_points',
    'lonlat_to_unit',
    'validate_lonlat',
]

#: Mean Earth radius (IUGG), in kilometres.
EARTH_RADIUS_KM = 6371.0088

#: An ``(N, 2)`` array of (longitude, latitude) in degrees.
LonLatArray: TypeAlias = Tensor | np.ndarray


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The floating dtype coordinates are computed in for a given dtype.

    float64 stays float64; every other dtype (float32, float16, bfloat16,
    integers) computes in float32, since trigonometry of degrees in half
    precision loses whole kilometres.

    Args:
        dtype: the dtype of the input or of the network that follows.

    Returns:
        ``torch.float64`` or ``torch.float32``.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def _row_label(row: int) -> str:
    return f'lonlat row {row}'


def check_lonlat_shape(
    lonlat: LonLatArray, error: type[Exception] = ValueError
) -> None:
    """Check that ``lonlat`` is a floating ``(N, 2)`` tensor or array.

    The cheap part of :func:`validate_lonlat` (no look at the values), for
    code that receives points already validated upstream, such as the
    positional encodings inside a location encoder.

    Args:
        lonlat: the points.
        error: the exception class raised.

    Raises:
        Exception: of class ``error``, naming the type, shape or dtype found.
    """
    if isinstance(lonlat, Tensor):
        floating = lonlat.is_floating_point()
    elif isinstance(lonlat, np.ndarray):
        floating = bool(np.issubdtype(lonlat.dtype, np.floating))
    else:
        raise error(
            f'lonlat must be a torch.Tensor or numpy array, got {type(lonlat).__name__}'
        )
    if lonlat.ndim != 2 or lonlat.shape[1] != 2:
        raise error(
            'lonlat must have shape (N, 2) holding (longitude, latitude) in degrees, '
            f'got shape {tuple(lonlat.shape)}'
        )
    if not floating:
        raise error(
            f'lonlat must have a floating dtype (float32 or float64), got {lonlat.dtype}'
        )


def validate_lonlat(
    lonlat: LonLatArray,
    *,
    where: Callable[[int], str] = _row_label,
    columns: tuple[str, str] | None = None,
    swap_hint: str = 'SatCLIP takes (longitude, latitude), longitude first',
    error: type[Exception] = ValueError,
) -> None:
    """Check that ``lonlat`` is a valid ``(N, 2)`` batch of (lon, lat) degrees.

    Works on torch tensors (on any device: one host synchronisation when the
    points are valid) and on numpy arrays.

    Args:
        lonlat: ``(N, 2)`` floating values: **longitude first** in
            [-180, 180], latitude second in [-90, 90], all finite.
        where: describes a row for messages (default ``'lonlat row 3'``; a file
            reader passes ``'points.csv, line 5'``).
        columns: names of the longitude and latitude columns the values came
            from, quoted in messages (``latitude 95.0 in column 'y'``).
        swap_hint: the advice added when a point looks like (lat, lon).
        error: the exception class raised.

    Raises:
        Exception: of class ``error``, naming the shape or dtype found, or the
            first offending row and its values.
    """
    check_lonlat_shape(lonlat, error)
    if lonlat.shape[0] == 0:
        return
    if isinstance(lonlat, Tensor):
        finite = torch.isfinite(lonlat).all(dim=1)
        bad = ~finite | (lonlat[:, 0].abs() > 180) | (lonlat[:, 1].abs() > 90)
        if not bool(bad.any()):  # the one synchronisation on the happy path
            return
        row = int(torch.nonzero(bad)[0, 0])
    else:
        with np.errstate(invalid='ignore'):
            invalid = (
                ~np.isfinite(lonlat).all(axis=1)
                | (np.abs(lonlat[:, 0]) > 180)
                | (np.abs(lonlat[:, 1]) > 90)
            )
        if not invalid.any():
            return
        row = int(np.flatnonzero(invalid)[0])
    lon, lat = (float(v) for v in lonlat[row].tolist())
    lon_column, lat_column = (
        (f' in column {name!r}' for name in columns) if columns else ('', '')
    )
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise error(f'{where(row)}: non-finite coordinate (lon, lat) = ({lon}, {lat})')
    if abs(lon) > 180:
        raise error(f'{where(row)}: longitude {lon}{lon_column} is outside [-180, 180]')
    swapped = abs(lat) <= 180 and abs(lon) <= 90
    hint = (
        f'; the values look swapped, they look like (latitude, longitude): {swap_hint}'
        if swapped
        else '; coordinates must be (longitude, latitude) in degrees'
    )
    raise error(f'{where(row)}: latitude {lat}{lat_column} is outside [-90, 90]{hint}')


def _check_pairs(name: str, points: Tensor) -> None:
    """Check that the last dimension of ``points`` is (longitude, latitude).

    Raises:
        ValueError: naming ``name`` and the shape found.
    """
    if points.ndim == 0 or points.shape[-1] != 2:
        raise ValueError(
            f'{name} must be (..., 2) (lon, lat) in degrees, its last dimension '
            f'(longitude, latitude), got shape {tuple(points.shape)}'
        )


def great_circle_km(a: Tensor, b: Tensor) -> Tensor:
    """Great-circle (haversine) distance between (lon, lat) points in degrees.

    Args:
        a: ``(..., 2)`` (longitude, latitude) in degrees.
        b: ``(..., 2)`` (longitude, latitude) in degrees, broadcastable to ``a``.

    Returns:
        float64 distances in kilometres on a sphere of radius
        :data:`EARTH_RADIUS_KM`.

    Raises:
        ValueError: if the last dimension of ``a`` or ``b`` is not 2.
    """
    _check_pairs('a', a)
    _check_pairs('b', b)
    a = torch.deg2rad(a.double())
    b = torch.deg2rad(b.double())
    dlon = b[..., 0] - a[..., 0]
    dlat = b[..., 1] - a[..., 1]
    h = (
        torch.sin(dlat / 2) ** 2
        + torch.cos(a[..., 1]) * torch.cos(b[..., 1]) * torch.sin(dlon / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * torch.asin(torch.sqrt(h.clamp(0, 1)))


def lonlat_to_unit(lonlat: Tensor) -> Tensor:
    """Unit vectors on the sphere of (lon, lat) points in degrees.

    Args:
        lonlat: ``(..., 2)`` (longitude, latitude) in degrees.

    Returns:
        ``(..., 3)`` float64 unit vectors (x towards lon 0, z to the north pole).

    Raises:
        ValueError: if the last dimension of ``lonlat`` is not 2.
    """
    _check_pairs('lonlat', lonlat)
    lon, lat = torch.deg2rad(lonlat.double()).unbind(-1)
    return torch.stack(
        [
            torch.cos(lat) * torch.cos(lon),
            torch.cos(lat) * torch.sin(lon),
            torch.sin(lat),
        ],
        dim=-1,
    )


def jitter_points(point: Tensor, amount: float, symmetric: bool = False) -> Tensor:
    """Jitter (lon, lat) in degrees, keeping them valid.

    Longitude wraps into [-180, 180), latitude is clamped to [-90, 90]. The
    arithmetic is done in :func:`compute_dtype` of the points' dtype (the
    wrap of a half-precision longitude near 180 would otherwise round it by
    a degree); the result has the points' dtype.

    Args:
        point: ``(..., 2)`` floating tensor of (lon, lat).
        amount: maximum jitter in degrees, a finite number >= 0.
        symmetric: U(-amount, amount) instead of SatCLIP's U(0, amount).

    Returns:
        The jittered points (a new tensor).

    Raises:
        ValueError: if *amount* is not a finite real number >= 0, or
            *point* is not a floating tensor whose last dimension is 2 (a
            ``(N, 3)`` one would lose its third column in silence).
    """
    degrees = None
    if not isinstance(amount, bool) and isinstance(amount, numbers.Real):
        with contextlib.suppress(OverflowError):
            degrees = float(amount)
    if degrees is None or not math.isfinite(degrees) or degrees < 0:
        raise ValueError(
            f'amount must be a finite number of degrees >= 0, got {amount!r}'
        )
    amount = degrees
    if not point.is_floating_point():
        raise ValueError(
            f'point must be a floating tensor of (lon, lat) degrees, got {point.dtype}'
        )
    _check_pairs('point', point)
    work = point.to(compute_dtype(point.dtype))
    noise = torch.rand_like(work) * amount
    if symmetric:
        noise = 2 * noise - amount
    moved = work + noise
    lon = torch.remainder(moved[..., 0] + 180.0, 360.0) - 180.0
    lat = moved[..., 1].clamp(-90.0, 90.0)
    out = torch.stack([lon, lat], dim=-1).to(point.dtype)
    # A longitude a hair west of -180 rounds to a remainder of exactly 360
    # (in float32, up to half an ulp of 360 away), which would give 180; so
    # may one a hair west of 180 in half precision.
    out[..., 0] = torch.where(out[..., 0] >= 180.0, out[..., 0] - 360.0, out[..., 0])
    return out
