"""Reprojection of coordinates in any CRS to (longitude, latitude) degrees.

Also the ``crs`` member of GeoJSON (:func:`geojson_crs`): RFC 7946 GeoJSON is
always WGS84 longitude/latitude and has no such member, but GDAL (``ogr2ogr``)
and other tools of the 2008 GeoJSON specification write one, naming the CRS
of the coordinates; read as degrees, projected coordinates would be points
in the wrong place.
"""

import json
import math
import re
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    'geojson_crs',
    'not_reprojected',
    'reproject_checked',
    'reproject_to_lonlat',
]

#: What a GeoJSON ``crs`` member may be, as messages say it.
_ACCEPTED = (
    'expected {"type": "name", "properties": {"name": NAME}} with a NAME '
    'pyproj knows (EPSG:3857, urn:ogc:def:crs:EPSG::32631, '
    'urn:ogc:def:crs:OGC:1.3:CRS84, ...), or no "crs" member for WGS84 '
    'longitude/latitude (RFC 7946)'
)

#: The spellings of WGS84 longitude/latitude (OGC CRS84, EPSG:4326), some of
#: which pyproj does not read (``CRS84``, ``OGC:1.3:CRS84``, ``EPSG::4326``).
_LONLAT = re.compile(
    r'(?:urn:ogc:def:crs:)?(?:ogc:(?:1\.3)?:?)?crs84'
    r'|(?:urn:ogc:def:crs:)?epsg:(?:[0-9.]*:)?4326'
    r'|https?://www\.opengis\.net/def/crs/(?:ogc/(?:1\.3|0)/crs84|epsg/0/4326)',
    re.IGNORECASE,
)

#: Relative tolerance of the round trip of :func:`not_reprojected` (with a
#: floor of one unit of the CRS: metres, degrees); a wrapped point is off by
#: a whole turn of the globe.
_ROUND_TRIP = 1e-6


@lru_cache(maxsize=128)
def _to_lonlat(crs: str | int) -> Any:
    """A cached pyproj transformer from ``crs`` (WKT, EPSG code, ...) to EPSG:4326 (lon, lat)."""
    from pyproj import CRS, Transformer

    return Transformer.from_crs(CRS.from_user_input(crs), 'EPSG:4326', always_xy=True)


def _key(crs: Any) -> Any:
    """The cache key of a CRS: its WKT for a CRS object, else itself."""
    return crs.to_wkt() if hasattr(crs, 'to_wkt') else crs


def reproject_to_lonlat(x: np.ndarray, y: np.ndarray, crs: Any) -> np.ndarray:
    """Reproject coordinates to (longitude, latitude) in EPSG:4326.

    The pyproj transformer of each CRS is built once and cached (building one
    costs milliseconds; a GeoDataset batch reprojects one box per sample).

    Args:
        x: easting (or longitude) in ``crs``.
        y: northing (or latitude) in ``crs``.
        crs: source CRS: a rasterio or pyproj CRS, an EPSG code or any string
            pyproj understands.

    Returns:
        A float64 ``(N, 2)`` array of (lon, lat) in degrees, longitude in
        [-180, 180]: pyproj passes the longitudes of a geographic CRS through
        as they are, so those of a 0 to 360 degree grid (190) are wrapped
        here (to -170).
    """
    lon, lat = _to_lonlat(_key(crs)).transform(
        np.asarray(x, np.float64), np.asarray(y, np.float64)
    )
    lon = np.asarray(lon, np.float64)
    with np.errstate(invalid='ignore'):  # an infinite longitude stays bad
        wrapped = np.remainder(lon + 180.0, 360.0) - 180.0
        lon = np.where(np.abs(lon) > 180.0, wrapped, lon)
    return np.stack([lon, np.asarray(lat)], axis=-1).reshape(-1, 2)


def _longitude_turn(crs: Any) -> float | None:
    """A whole turn of longitude in the units of a geographic ``crs``, else None.

    360 for degrees (400 for grads): a longitude of a geographic CRS that
    comes back a whole turn away is the same place, wrapped into [-180, 180]
    by :func:`reproject_to_lonlat`.
    """
    source = _to_lonlat(_key(crs)).source_crs
    if source is None or not source.is_geographic:
        return None
    for axis in source.axis_info:
        if axis.direction in ('east', 'west') and axis.unit_conversion_factor > 0:
            return 2.0 * math.pi / float(axis.unit_conversion_factor)
    return None


def not_reprojected(
    x: np.ndarray, y: np.ndarray, crs: Any, lonlat: np.ndarray
) -> NDArray[np.bool_]:
    """Which points :func:`reproject_to_lonlat` did not map to their place.

    A point outside the domain of a projection (an easting of 10,000 km in
    Web Mercator, say) comes out of pyproj non-finite or, worse, wrapped
    around the globe to a plausible longitude. Such a point does not map
    back to where it came from: the (lon, lat) are projected back to
    ``crs`` by the same transformation and compared with (x, y). Nor does a
    latitude beyond the poles (95 degrees in a geographic CRS, which pyproj
    passes through as it is).

    Args:
        x: easting (or longitude) in ``crs``.
        y: northing (or latitude) in ``crs``.
        crs: the CRS given to :func:`reproject_to_lonlat`.
        lonlat: what :func:`reproject_to_lonlat` returned for them.

    Returns:
        A boolean mask, true for each point not reprojected faithfully.
    """
    from pyproj.enums import TransformDirection

    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    lonlat = np.asarray(lonlat, np.float64).reshape(-1, 2)
    back_x, back_y = _to_lonlat(_key(crs)).transform(
        lonlat[:, 0], lonlat[:, 1], direction=TransformDirection.INVERSE
    )
    turn = _longitude_turn(crs)
    with np.errstate(invalid='ignore', over='ignore'):
        bad = ~np.isfinite(lonlat).all(axis=1)
        # pyproj passes a geographic CRS's latitude through as it is (95)
        bad |= np.abs(lonlat[:, 1]) > 90
        for axis, (given, back) in enumerate(
            ((x, np.asarray(back_x)), (y, np.asarray(back_y)))
        ):
            tolerance = _ROUND_TRIP * np.maximum(1.0, np.abs(given))
            difference = back - given
            if axis == 0 and turn is not None:
                # a longitude wrapped by a whole turn is the same place
                difference = difference - turn * np.round(difference / turn)
            bad |= ~(np.abs(difference) <= tolerance)
    return np.asarray(bad, dtype=bool)


def reproject_checked(
    x: np.ndarray, y: np.ndarray, crs: Any
) -> tuple[np.ndarray, int | None]:
    """Reproject to (lon, lat) and find the first point that did not map.

    :func:`reproject_to_lonlat`, then :func:`not_reprojected` on its result:
    what a reader of coordinates in a named CRS needs before it names the
    offending point in its own words.

    Args:
        x: easting (or longitude) in ``crs``.
        y: northing (or latitude) in ``crs``.
        crs: the CRS of the coordinates.

    Returns:
        The float64 ``(N, 2)`` (lon, lat), and the index of the first point
        not reprojected faithfully (outside the domain of the CRS, or not
        finite), None if every point was.
    """
    lonlat = reproject_to_lonlat(x, y, crs)
    bad = np.flatnonzero(not_reprojected(x, y, crs, lonlat))
    return lonlat, int(bad[0]) if len(bad) else None


def _shown(member: Any) -> str:
    """A ``crs`` member as messages quote it: its JSON, cut at 100 characters."""
    text = json.dumps(member, default=repr)
    return text if len(text) <= 100 else f'{text[:97]}...'


def _pyproj_reason(error: Exception) -> str:
    """What pyproj says is wrong with a CRS name, without its preamble."""
    text = str(error)
    found = re.search(r'Internal Proj Error: \w+: (.+)\)$', text, re.DOTALL)
    return found.group(1) if found else text


def geojson_crs(member: Any) -> str | None:
    """The CRS that the ``crs`` member of a GeoJSON object names.

    The member of the 2008 GeoJSON specification, as GDAL writes it:
    ``{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}``.
    WGS84 longitude/latitude, whether named as OGC CRS84 or as EPSG:4326 (in
    any spelling: ``EPSG:4326``, ``urn:ogc:def:crs:EPSG::4326``,
    ``urn:ogc:def:crs:OGC:1.3:CRS84``, ``CRS84``, ...), means the coordinates
    are (longitude, latitude) as RFC 7946 has them. For EPSG:4326 too, whose
    official axis order is latitude first: GeoJSON writers, GDAL among them,
    write longitude first whatever the CRS, and so is it read here. Any other
    CRS is read in its (easting, northing) or (longitude, latitude) order,
    for :func:`reproject_to_lonlat`.

    Args:
        member: the value of the object's ``crs`` key.

    Returns:
        None for WGS84 longitude/latitude, else the CRS name, which
        :func:`reproject_to_lonlat` accepts.

    Raises:
        ValueError: if the member is not a named CRS (a ``link`` CRS, null,
            a name that is not a string), or names a CRS that pyproj does not
            know, that is not geographic or projected (a vertical CRS, a
            geocentric one) or that pyproj cannot transform to WGS84 (a CRS
            of Mars); the message quotes the member and says what is
            accepted, and the caller adds the file.
    """
    shown = _shown(member)
    properties = member.get('properties') if isinstance(member, dict) else None
    name = properties.get('name') if isinstance(properties, dict) else None
    if not isinstance(member, dict) or member.get('type') != 'name':
        kind = member.get('type') if isinstance(member, dict) else None
        what = (
            'a linked CRS, which is not supported'
            if kind == 'link'
            else 'not a named CRS'
        )
        raise ValueError(f'the "crs" member {shown} is {what}; {_ACCEPTED}')
    if not isinstance(name, str):
        raise ValueError(
            f'the "crs" member {shown} has no "name" string in its '
            f'"properties"; {_ACCEPTED}'
        )
    if _LONLAT.fullmatch(name.strip()):
        return None
    from pyproj import CRS
    from pyproj.exceptions import CRSError, ProjError

    try:
        crs = CRS.from_user_input(name)
    except CRSError as error:
        raise ValueError(
            f'the "crs" member names {name!r}, which pyproj does not know '
            f'({_pyproj_reason(error)}); {_ACCEPTED}'
        ) from None
    if not (crs.is_geographic or crs.is_projected):
        raise ValueError(
            f'the "crs" member names {name!r}, a {crs.type_name} ({crs.name}), '
            f'not a geographic or projected CRS; {_ACCEPTED}'
        )
    if crs.equals('OGC:CRS84', ignore_axis_order=True):
        return None
    try:
        _to_lonlat(name)
    except ProjError as error:
        raise ValueError(
            f'the "crs" member names {name!r} ({crs.name}), which pyproj cannot '
            f'transform to WGS84 longitude/latitude ({_pyproj_reason(error)}); '
            f'{_ACCEPTED}'
        ) from None
    return name
