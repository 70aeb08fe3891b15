"""Seeded points uniform on the sphere, restricted to land, a region or a mask.

A point is uniform on the sphere when its longitude is uniform and the sine of
its latitude is uniform. Keeping only the points of such a stream that fall on
land, inside a polygon or where a mask says so (rejection) keeps it uniform
over what remains, which is how S2-100K was sampled.

A region is drawn polygon by polygon: each candidate first picks one of the
region's polygons with probability proportional to the spherical area of its
bounding box, then a point uniform in that box, kept only if it lies in that
polygon. The kept points are uniform over the whole region, and a region made
of many small polygons scattered over the globe (islands, parcels) costs no
more than one polygon, where drawing in the region's overall bounding box
would almost never hit.

The stream is deterministic: the k-th point of a seed is always the same,
however many points are asked for, so a resumed build names sample ``k`` the
same place.
"""

import json
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .crs import geojson_crs, reproject_checked
from .maps import _checked, is_land

__all__ = ['PointMask', 'Region', 'iter_points', 'sample_points']

#: A filter of points: ``(lon, lat) -> bool mask``, degrees in, one bool a point.
PointMask: TypeAlias = Callable[
    [NDArray[np.float64], NDArray[np.float64]], NDArray[np.bool_]
]

#: Candidate points drawn per batch of the rejection sampler.
_BATCH = 4096

#: Consecutive batches without a single kept point before giving up.
_MAX_EMPTY_BATCHES = 64


def _shapely() -> Any:
    try:
        import shapely  # type: ignore[import-untyped]
    except ModuleNotFoundError as error:
        raise ImportError(
            'regions need shapely: pip install "torchgeo-satclip[build]"'
        ) from error
    return shapely


def _flat(coordinates: Any) -> Any:
    """GeoJSON coordinates with every position cut to (x, y); others as given."""
    if not isinstance(coordinates, list | tuple):
        return coordinates
    if coordinates and not isinstance(coordinates[0], list | tuple):
        return list(coordinates[:2])  # a position
    return [_flat(c) for c in coordinates]


def _shape(shape: Callable[[Any], Any], geometry: Any, number: int) -> Any:
    """The shapely shape of a GeoJSON geometry, its vertices checked.

    Args:
        shape: ``shapely.geometry.shape``.
        geometry: the GeoJSON geometry.
        number: its number in the region (from 1), for messages.

    Returns:
        The shape.

    Raises:
        ValueError: naming the geometry, for one shapely cannot read (no
            ``coordinates``, a vertex that is not a pair of numbers) or a
            vertex that is not finite (NaN made a region whose bounds are
            NaN, with only shapely's warnings).
    """
    kind = geometry.get('type') if isinstance(geometry, Mapping) else None
    if isinstance(geometry, Mapping) and 'coordinates' in geometry:
        # A region is flat: an altitude is dropped (shapely cannot read a
        # ring whose positions mix two and three numbers).
        geometry = {**geometry, 'coordinates': _flat(geometry['coordinates'])}
    try:
        with warnings.catch_warnings():
            # shapely's "invalid value encountered": told below, by vertex
            warnings.simplefilter('ignore', RuntimeWarning)
            made = shape(geometry)
            coordinates = _shapely().get_coordinates(made)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        what = f'no {error}' if isinstance(error, KeyError) else str(error)
        raise ValueError(
            f'geometry {number} ({kind}): cannot read it as GeoJSON ({what})'
        ) from None
    bad = ~np.isfinite(coordinates).all(axis=1)
    if bad.any():
        vertex = int(np.flatnonzero(bad)[0])
        lon, lat = (float(v) for v in coordinates[vertex])
        raise ValueError(
            f'geometry {number}, vertex {vertex + 1}: ({lon}, {lat}) is not '
            'finite; every vertex must be a pair of finite numbers'
        )
    return made


def _warn_of_long_edges(polygons: list[Any]) -> None:
    """Warn of an edge longer than 180 degrees of longitude (the first one).

    RFC 7946 draws an edge straight in longitude and latitude, so a polygon
    drawn across the antimeridian (177 to -179) goes the long way round the
    world. That is kept (a band drawn wide on purpose is valid), but it is
    the usual mistake, so it is said. Two long edges are no mistake and are
    not warned of: one along a pole (a single point on the sphere) and one
    from -180 to 180 (a full turn, both ends on the antimeridian), the only
    ways to write the whole globe, a band round it or a polar cap.
    """
    for polygon in polygons:
        parts = getattr(polygon, 'geoms', [polygon])
        for part in parts:
            for ring in (part.exterior, *part.interiors):
                lonlat = np.asarray(ring.coords, dtype=np.float64)[:, :2]
                lon, lat = lonlat[:, 0], lonlat[:, 1]
                jumps = np.abs(np.diff(lon))
                on_a_pole = (np.abs(lat[:-1]) == 90) & (lat[:-1] == lat[1:])
                full_turn = (np.abs(lon[:-1]) == 180) & (jumps == 360)
                jumps[on_a_pole | full_turn] = 0
                if len(jumps) and jumps.max() > 180:
                    i = int(np.argmax(jumps))
                    (lon1, lat1), (lon2, lat2) = lonlat[i], lonlat[i + 1]
                    warnings.warn(
                        f'the region has an edge from ({lon1:g}, {lat1:g}) to '
                        f'({lon2:g}, {lat2:g}), {jumps[i]:g} degrees of longitude '
                        'long: as GeoJSON draws it (RFC 7946), it goes the long '
                        'way round the world; if the polygon crosses the '
                        'antimeridian, write its longitudes continuous (177 to '
                        '181, past 180) or split it in two at 180 degrees (a '
                        'MultiPolygon)',
                        UserWarning,
                        stacklevel=3,
                    )
                    return


def _short_repr(value: Any) -> str:
    """``repr(value)``, cut to 80 characters (a GeoJSON mapping may be long)."""
    shown = repr(value)
    return shown if len(shown) <= 80 else f'{shown[:77]}...'


def _object(value: Any, what: str) -> Mapping[str, Any]:
    """``value``, checked to be a GeoJSON object (a mapping).

    Raises:
        ValueError: naming *what* it is and the type and value found.
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            f'{what} must be a GeoJSON object (a mapping), not '
            f'{type(value).__name__} {_short_repr(value)}'
        )
    return value


def _geometries(geojson: Any) -> list[Any]:
    """The geometries of a ``FeatureCollection``, a ``Feature`` or a geometry.

    Raises:
        ValueError: naming what is wrong, for a value or a feature that is
            not a mapping, ``features`` that are not a list, or a feature
            without a ``geometry`` member (RFC 7946 has it, null if none).
    """
    _object(geojson, 'a region (FeatureCollection, Feature, Polygon or MultiPolygon)')
    kind = geojson.get('type')
    if kind == 'FeatureCollection':
        features = geojson.get('features', [])
        if not isinstance(features, list | tuple):
            raise ValueError(
                'the FeatureCollection\'s "features" must be a list of Features, '
                f'not {type(features).__name__}'
            )
        geometries = []
        for i, feature in enumerate(features, 1):
            where = f'feature {i} of the FeatureCollection'
            if 'geometry' not in _object(feature, where):
                raise ValueError(f'{where} has no "geometry" member (null if none)')
            geometries.append(feature['geometry'])
        return geometries
    if kind == 'Feature':
        if 'geometry' not in geojson:
            raise ValueError('the Feature has no "geometry" member (null if none)')
        return [geojson['geometry']]
    return [geojson]


def _check_valid(geometry: Any, number: int) -> None:
    """Check that each polygon of one geometry of a region is valid (OGC rules).

    A ring that crosses itself (a bow tie) has lobes of opposite signed
    areas, which union and containment do not treat as the places inside:
    the region came out empty, or shapely failed with a bare
    ``GEOSException``. Polygons of a ``MultiPolygon`` may overlap: they are
    unioned, as the geometries of a region are.

    Args:
        geometry: the shapely ``Polygon`` or ``MultiPolygon``, in (lon, lat).
        number: its number in the region (from 1), for messages.

    Raises:
        ValueError: naming the geometry and what shapely finds wrong with it
            (``Self-intersection[5 5]``), and how to repair it.
    """
    shapely = _shapely()
    for k, polygon in enumerate(shapely.get_parts(geometry), 1):
        if not shapely.is_valid(polygon):
            raise ValueError(
                f'geometry {number} ({geometry.geom_type}), polygon {k} is not a '
                f'valid polygon: {shapely.is_valid_reason(polygon)}; its rings must '
                'not cross themselves or each other (shapely.make_valid or '
                '"ogr2ogr -makevalid" repairs it)'
            )


def _check_bounds(geometry: Any, number: int) -> None:
    """Check the longitudes and latitudes of one geometry of a region.

    Args:
        geometry: the shapely ``Polygon`` or ``MultiPolygon``, in (lon, lat).
        number: its number in the region (from 1), for messages.

    Raises:
        ValueError: naming the geometry and the bounds found, for a latitude
            outside [-90, 90], a longitude outside [-540, 540] (more than one
            turn past the antimeridian: not a polygon written with continuous
            longitudes, but, say, projected coordinates read as degrees) or a
            polygon spanning more than 360 degrees of longitude.
    """
    west, south, east, north = geometry.bounds
    if south < -90 or north > 90:
        raise ValueError(
            f'geometry {number} spans latitudes {south:g} to {north:g}: they must '
            'lie within [-90, 90] degrees (GeoJSON positions are [longitude, '
            'latitude], longitude first)'
        )
    if west < -540 or east > 540:
        raise ValueError(
            f'geometry {number} spans longitudes {west:g} to {east:g}: they must '
            'lie within [-180, 180] degrees, or within [-540, 540] for a polygon '
            'that crosses the antimeridian with continuous longitudes (177 to '
            '182); are the coordinates in another CRS without a "crs" member?'
        )
    for k, part in enumerate(_shapely().get_parts(geometry), 1):
        west, _, east, _ = part.bounds
        if east - west > 360:
            raise ValueError(
                f'geometry {number}, polygon {k} spans longitudes {west:g} to '
                f'{east:g}, {east - west:g} degrees wide: a polygon spans at most '
                '360 degrees of longitude (once round the world)'
            )


def _wrapped(geometry: Any) -> Any:
    """A region inside [-180, 180]: the parts past the antimeridian shifted.

    A polygon written with continuous longitudes across the antimeridian
    (177 to 182) is cut at 180 (and -180) degrees, and each part outside
    [-180, 180] is moved by a whole turn (182 becomes -178); the parts are
    then unioned into one ``Polygon`` or ``MultiPolygon`` of the same places.
    A geometry already inside [-180, 180] is returned as it is.
    """
    west, _, east, _ = geometry.bounds
    if west >= -180 and east <= 180:
        return geometry
    shapely = _shapely()
    from shapely.affinity import translate  # type: ignore[import-untyped]

    parts = []
    for polygon in shapely.get_parts(geometry):
        for turn in (-1, 0, 1):
            window = shapely.box(-180 + 360 * turn, -90, 180 + 360 * turn, 90)
            for part in shapely.get_parts(shapely.intersection(polygon, window)):
                # the cut may leave edges and points along 180 degrees: no area
                if part.geom_type == 'Polygon' and part.area > 0:
                    parts.append(translate(part, xoff=-360.0 * turn))
    return shapely.union_all(parts)


class Region:
    """A polygonal region in (lon, lat) degrees, read from GeoJSON.

    A polygon crossing the antimeridian is written either split in two at
    180 degrees (a ``MultiPolygon``, as RFC 7946 asks) or with continuous
    longitudes that pass 180 or -180 (Fiji as 177 to 182, or -183 to
    -178): the region is then split at 180 degrees and the part outside
    [-180, 180] shifted by 360 degrees, a ``MultiPolygon`` of the same
    places and area inside [-180, 180]. Longitudes must lie within
    [-540, 540] (one turn past either side) and span at most 360 degrees.
    An edge longer than 180 degrees of longitude (a polygon drawn across the
    antimeridian from 177 to -179, which RFC 7946 reads as going the long
    way round) is kept as drawn, with a warning; an edge along a pole or
    from -180 to 180 (the whole globe, a band round it, a polar cap) is not
    warned of.

    The coordinates are WGS84 (longitude, latitude), as RFC 7946 has them,
    unless the GeoJSON has a ``crs`` member (GeoJSON 2008, as GDAL writes
    it): WGS84 longitude/latitude (OGC CRS84, or EPSG:4326 in
    longitude-first order as GDAL writes it) is read as it is, and the
    vertices of any other CRS are reprojected to longitude and latitude (the
    edges between them stay straight in longitude and latitude; see
    :func:`~torchgeo_satclip.geo.crs.geojson_crs`): a ring that then crosses
    the antimeridian is made continuous and split there, one that goes round
    a pole is refused.
    """

    def __init__(self, geojson: Mapping[str, Any]) -> None:
        """Initialize a new Region.

        Args:
            geojson: a GeoJSON ``FeatureCollection``, ``Feature`` or geometry
                (``Polygon`` or ``MultiPolygon``), in (longitude, latitude)
                or in the CRS its ``crs`` member names.

        Raises:
            ValueError: if the GeoJSON is malformed (not a mapping, a feature
                without a ``geometry``), holds no polygon or an invalid one (a
                ring that crosses itself, naming where), has a bad ``crs``
                member (malformed, linked, or naming a CRS pyproj does not
                know), a vertex outside the domain of its CRS or a ring
                that goes round a pole once reprojected, a latitude
                outside [-90, 90], a longitude outside [-540, 540] or
                longitudes spanning more than 360 degrees (naming the bounds
                found).
        """
        shapely = _shapely()
        from shapely.geometry import shape  # type: ignore[import-untyped]

        geometries = _geometries(geojson)
        crs = geojson_crs(geojson['crs']) if 'crs' in geojson else None
        numbers = [i for i, g in enumerate(geometries, 1) if g]
        shapes = [_shape(shape, geometries[i - 1], i) for i in numbers]
        polygons = [s for s in shapes if s.geom_type in ('Polygon', 'MultiPolygon')]
        if not polygons or len(polygons) != len(shapes):
            raise ValueError('the region must be made of Polygons or MultiPolygons')
        if crs is not None:
            polygons = list(_reprojected(np.asarray(polygons, dtype=object), crs))
        for number, polygon in zip(numbers, polygons, strict=True):
            _check_valid(polygon, number)
            _check_bounds(polygon, number)
        _warn_of_long_edges(polygons)
        self.geometry: Any = shapely.union_all([_wrapped(p) for p in polygons])
        if self.geometry.is_empty or self.geometry.area == 0:
            raise ValueError('the region is empty')
        west, south, east, north = self.geometry.bounds
        self.bounds: tuple[float, float, float, float] = (west, south, east, north)
        shapely.prepare(self.geometry)
        # The disjoint polygons of the union, and their bounding boxes.
        parts = shapely.get_parts(self.geometry)
        self.parts: NDArray[Any] = np.asarray(
            [p for p in parts if p.area > 0], dtype=object
        )
        shapely.prepare(self.parts)
        self.part_bounds: NDArray[np.float64] = np.asarray(
            shapely.bounds(self.parts), dtype=np.float64
        ).reshape(-1, 4)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> 'Region':
        """Read a region from a GeoJSON file.

        Args:
            path: the GeoJSON file.

        Returns:
            The region.

        Raises:
            ValueError: if the file is not JSON, or for any reason of
                :class:`Region`, the message starting with the file.
        """
        with open(path, encoding='utf-8') as f:
            try:
                return cls(json.load(f))
            except ValueError as error:
                raise ValueError(f'{path}: {error}') from None

    def contains(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Which points lie inside the region.

        Args:
            lon: longitudes in degrees, in [-180, 180] (where the region is
                kept, also when it was written with continuous longitudes
                past 180).
            lat: latitudes in degrees (same shape as ``lon``).

        Returns:
            A boolean mask of the shape of ``lon``.

        Raises:
            ValueError: if the shapes differ or a point is not finite or out
                of range (naming the first one), rather than False for it.
        """
        lon, lat = _checked(lon, lat)
        return np.asarray(_shapely().contains_xy(self.geometry, lon, lat), dtype=bool)


def _reprojected(polygons: NDArray[Any], crs: str) -> NDArray[Any]:
    """Polygons with their vertices reprojected from ``crs`` to (lon, lat).

    A ring that crosses the antimeridian once reprojected (its longitudes
    jump from 179.9 to -179.5 between two vertices) is made continuous
    (179.9 to 180.5), and its holes placed beside it, so that
    :class:`Region` splits it at 180 degrees as it does a polygon written
    with continuous longitudes.

    Raises:
        ValueError: naming the first vertex that does not reproject (outside
            the domain of the CRS, or not finite), or a ring that, once in
            longitude and latitude, goes round a pole (its longitudes turn by
            360 degrees): drawn with straight edges in longitude and
            latitude, it would cover the rest of the world instead.
    """

    def transform(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = xy[:, 0], xy[:, 1]
        lonlat, i = reproject_checked(x, y, crs)
        if i is not None:
            raise ValueError(
                f"the region's vertex (x, y) = ({x[i]}, {y[i]}) in {crs} does not "
                'map to a longitude and latitude (it lies outside the domain of '
                'the CRS, or is not finite); check the coordinates and the "crs" '
                'member'
            )
        return lonlat

    shapely = _shapely()
    reprojected = shapely.transform(polygons, transform)
    return np.asarray([_continuous(g, crs) for g in reprojected], dtype=object)


def _continuous(geometry: Any, crs: str) -> Any:
    """A reprojected polygon or multipolygon, each ring's longitudes continuous.

    Raises:
        ValueError: for a ring that goes round a pole, naming its first jump
            of longitude.
    """
    shapely = _shapely()
    polygons = []
    for polygon in shapely.get_parts(geometry):
        shell = _continuous_ring(polygon.exterior, crs)
        middle = shell[:, 0].mean()
        holes = []
        for interior in polygon.interiors:
            hole = _continuous_ring(interior, crs)
            # a hole lies inside its shell: the same turn of longitude
            hole[:, 0] += 360.0 * np.round((middle - hole[:, 0].mean()) / 360.0)
            holes.append(hole)
        polygons.append(shapely.Polygon(shell, holes))
    if geometry.geom_type == 'MultiPolygon':
        return shapely.MultiPolygon(polygons)
    return polygons[0]


def _continuous_ring(ring: Any, crs: str) -> NDArray[np.float64]:
    """The (lon, lat) vertices of a reprojected ring, longitudes unwrapped.

    Raises:
        ValueError: for a ring whose longitudes, made continuous, do not
            come back to where they started (it goes round a pole).
    """
    lonlat = np.array(_shapely().get_coordinates(ring), dtype=np.float64)
    lon = lonlat[:, 0]
    continuous = np.unwrap(lon, period=360.0)
    if abs(continuous[-1] - continuous[0]) > 180:
        i = int(np.flatnonzero(np.abs(np.diff(lon)) > 180)[0])
        raise ValueError(
            f'a ring of the region in {crs} goes from longitude {lon[i]:.6g} to '
            f'{lon[i + 1]:.6g} between two vertices once reprojected, and in all '
            'round a pole (its longitudes turn by 360 degrees), which a region '
            'drawn with straight edges in longitude and latitude cannot hold; '
            'split it into polygons that do not go round the pole'
        )
    lonlat[:, 0] = continuous
    return lonlat


def _box_weights(bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    """Spherical areas (up to a constant) of (west, south, east, north) boxes."""
    west, south, east, north = bounds.T
    sine = np.sin(np.radians(north)) - np.sin(np.radians(south))
    area = (east - west) * sine
    return np.asarray(area / area.sum(), dtype=np.float64)


def _draw_in_boxes(
    rng: np.random.Generator, boxes: NDArray[np.float64], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points uniform on the sphere inside the ``(n, 4)`` boxes, one each."""
    west, south, east, north = boxes.T
    lon = rng.uniform(west, east, n)
    sin_lat = rng.uniform(np.sin(np.radians(south)), np.sin(np.radians(north)), n)
    return lon, np.degrees(np.arcsin(sin_lat))


def iter_points(
    seed: int = 0,
    *,
    region: Region | None = None,
    land: bool = True,
    where: PointMask | None = None,
) -> Iterator[tuple[float, float]]:
    """Yield (lon, lat) points uniform on the sphere, restricted, forever.

    Args:
        seed: seed of the random stream; the same seed gives the same points.
        region: keep only points inside this region (default: the whole globe).
        land: keep only points on land (:func:`~torchgeo_satclip.geo.is_land`).
        where: keep only points where this mask is true as well (for example
            :func:`~torchgeo_satclip.geo.is_koppen_land`).

    Returns:
        An endless iterator of ``(lon, lat)`` in degrees.

    Raises:
        ValueError: if ``seed`` is not a non-negative integer, ``land`` not
            a bool (``'False'`` would be true), ``region`` not a
            :class:`Region` or ``where`` not callable (at once), if
            ``where`` returns anything but a boolean array of the shape of
            its ``lon`` (while iterating, naming what it returned), or if no
            point survives the restrictions for many batches (while
            iterating, naming the restrictions in force).
    """
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if not isinstance(land, bool | np.bool_):
        kind = type(land)
        module = '' if kind.__module__ == 'builtins' else f'{kind.__module__}.'
        raise ValueError(
            f'land must be True or False, got {land!r} (type '
            f'{module}{kind.__qualname__}): True keeps only the points on land'
        )
    if region is not None and not isinstance(region, Region):
        raise ValueError(
            'region must be a Region (Region(geojson) or Region.from_file(path)) '
            f'or None, not {type(region).__name__} {_short_repr(region)}'
        )
    if where is not None and not callable(where):
        raise ValueError(
            'where must be a function (lon, lat) -> bool mask, or None, not '
            f'{type(where).__name__}'
        )
    return _points(int(seed), region, bool(land), where)


def _is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(
        value, bool | np.bool_
    )


def _points(
    seed: int, region: Region | None, land: bool, where: PointMask | None
) -> Iterator[tuple[float, float]]:
    """The generator of :func:`iter_points`, its arguments checked."""
    rng = np.random.default_rng(seed)
    if region is None:
        boxes = np.array([[-180.0, -90.0, 180.0, 90.0]])
    else:
        boxes = region.part_bounds
    weights = _box_weights(boxes)
    empty_batches = 0
    while True:
        if len(boxes) == 1:
            part = np.zeros(_BATCH, dtype=np.intp)
        else:
            part = rng.choice(len(boxes), size=_BATCH, p=weights)
        lon, lat = _draw_in_boxes(rng, boxes[part], _BATCH)
        keep = np.ones(_BATCH, dtype=bool)
        if region is not None:
            # Each point counts only in the polygon whose box it was drawn in.
            keep &= np.asarray(
                _shapely().contains_xy(region.parts[part], lon, lat), dtype=bool
            )
        if land:
            keep &= is_land(lon, lat)
        if where is not None:
            keep &= _mask(where, lon, lat)
        empty_batches = 0 if keep.any() else empty_batches + 1
        if empty_batches > _MAX_EMPTY_BATCHES:
            wanted = [
                what
                for what, used in (
                    ('inside the region', region is not None),
                    ('on land', land),
                    ('where the mask `where` is true', where is not None),
                )
                if used
            ]
            hint = ' (land=False keeps the points at sea)' if land else ''
            raise ValueError(
                f'no point found in {_MAX_EMPTY_BATCHES * _BATCH} draws '
                f'{", ".join(wanted)}: is there such a place?{hint}'
            )
        for x, y in zip(lon[keep], lat[keep], strict=True):
            yield float(x), float(y)


def _mask(
    where: PointMask, lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """What the mask ``where`` says of the points, checked to be one bool each.

    Raises:
        ValueError: naming what ``where`` returned, for anything but a
            boolean array of the points' shape: latitudes, zone names or
            0/1 values were each read as true or false (any nonzero number,
            any non-empty string is true), and a mask of another shape
            failed with numpy's broadcasting error, naming no argument.
    """
    returned = where(lon, lat)
    mask = np.asarray(returned)
    if mask.dtype != np.bool_ or mask.shape != lon.shape:
        what = (
            'None'
            if returned is None
            else f'{type(returned).__name__} of dtype {mask.dtype} and shape '
            f'{mask.shape}'
        )
        raise ValueError(
            f'where must return a boolean mask of the shape of lon and lat, '
            f'one bool a point ({lon.shape}, dtype bool), got {what}: compare '
            'the values it looks up (lat > 0, zone != 0)'
        )
    return np.asarray(mask, dtype=np.bool_)


def sample_points(
    num_points: int,
    seed: int = 0,
    *,
    region: Region | None = None,
    land: bool = True,
    where: PointMask | None = None,
) -> NDArray[np.float64]:
    """Sample points uniformly on the sphere, restricted to land and/or a region.

    Args:
        num_points: how many points.
        seed: seed of the random stream.
        region: keep only points inside this region.
        land: keep only points on land.
        where: keep only points where this mask is true as well.

    Returns:
        An ``(num_points, 2)`` float64 array of (lon, lat) in degrees; the
        first *k* rows are the same for any *num_points* >= *k*.

    Raises:
        ValueError: if *num_points* is not an integer or is negative, or for
            any reason of :func:`iter_points`.
    """
    if not _is_integer(num_points):
        raise ValueError(f'num_points must be an integer, got {num_points!r}')
    if num_points < 0:
        raise ValueError(f'num_points must be >= 0, not {num_points}')
    points = iter_points(seed, region=region, land=land, where=where)
    out = np.empty((num_points, 2), dtype=np.float64)
    for i in range(num_points):
        out[i] = next(points)
    return out
