"""Seeded sampling of points uniformly on the sphere, restricted to land or a region.

A point is uniform on the sphere when its longitude is uniform and the sine of
its latitude is uniform. Restricting such a stream by rejection (keep the
points on land, or inside a polygon) keeps it uniform over what remains, which
is how S2-100K was sampled. For a region the stream is drawn only inside the
region's bounding box (still uniform in area there), so small regions cost
no more than large ones.

The stream is deterministic: the k-th point of a seed is always the same,
however many points are asked for, so a resumed build names the same sample
``k`` the same place.
"""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import shapely  # type: ignore[import-untyped]
from numpy.typing import NDArray
from shapely.geometry import shape  # type: ignore[import-untyped]
from shapely.geometry.base import BaseGeometry  # type: ignore[import-untyped]

__all__ = ['Region', 'iter_points', 'sample_points']

#: Candidate points drawn per batch of the rejection sampler.
_BATCH = 4096

#: Consecutive batches without a single kept point before giving up.
_MAX_EMPTY_BATCHES = 64


class Region:
    """A polygonal region in (lon, lat) degrees, read from GeoJSON.

    Polygons crossing the antimeridian are not supported: split them in two
    (a ``MultiPolygon``) at 180 degrees.
    """

    def __init__(self, geojson: Mapping[str, Any]) -> None:
        """Initialize a new Region.

        Args:
            geojson: a GeoJSON ``FeatureCollection``, ``Feature`` or geometry
                (``Polygon`` or ``MultiPolygon``) in EPSG:4326.

        Raises:
            ValueError: if the GeoJSON holds no polygon, or lies outside
                [-180, 180] x [-90, 90].
        """
        kind = geojson.get('type')
        if kind == 'FeatureCollection':
            geometries = [f['geometry'] for f in geojson.get('features', [])]
        elif kind == 'Feature':
            geometries = [geojson['geometry']]
        else:
            geometries = [geojson]
        shapes: list[BaseGeometry] = [shape(g) for g in geometries if g]
        polygons = [s for s in shapes if s.geom_type in ('Polygon', 'MultiPolygon')]
        if not polygons or len(polygons) != len(shapes):
            raise ValueError('the region must be made of Polygons or MultiPolygons')
        self.geometry: BaseGeometry = shapely.union_all(polygons)
        if self.geometry.is_empty or self.geometry.area == 0:
            raise ValueError('the region is empty')
        west, south, east, north = self.geometry.bounds
        if west < -180 or east > 180 or south < -90 or north > 90:
            raise ValueError(
                'the region must lie within [-180, 180] x [-90, 90] degrees '
                '(split polygons crossing the antimeridian)'
            )
        self.bounds: tuple[float, float, float, float] = (west, south, east, north)
        shapely.prepare(self.geometry)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> 'Region':
        """Read a region from a GeoJSON file.

        Args:
            path: the GeoJSON file.

        Returns:
            The region.
        """
        with open(path) as f:
            return cls(json.load(f))

    def contains(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> NDArray[np.bool_]:
        """Which points lie inside the region.

        Args:
            lon: longitudes in degrees.
            lat: latitudes in degrees.

        Returns:
            A boolean mask.
        """
        return np.asarray(shapely.contains_xy(self.geometry, lon, lat), dtype=bool)


def _is_land(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Land mask of global-land-mask (1 km grid, offline)."""
    from global_land_mask import globe

    # The package's grid covers latitudes up to, but excluding, 90 degrees.
    return np.asarray(globe.is_land(np.clip(lat, -89.999, 89.999), lon), dtype=bool)


def iter_points(
    seed: int = 0, *, region: Region | None = None, land: bool = True
) -> Iterator[tuple[float, float]]:
    """Yield (lon, lat) points uniform on the sphere, restricted, forever.

    Args:
        seed: seed of the random stream; the same seed gives the same points.
        region: keep only points inside this region (default: the whole globe).
        land: keep only points on land (global-land-mask).

    Yields:
        ``(lon, lat)`` in degrees.
    """
    west, south, east, north = region.bounds if region else (-180, -90, 180, 90)
    sin_south, sin_north = np.sin(np.radians([south, north]))
    rng = np.random.default_rng(seed)
    empty_batches = 0
    while True:
        lon = rng.uniform(west, east, _BATCH)
        lat = np.degrees(np.arcsin(rng.uniform(sin_south, sin_north, _BATCH)))
        keep = np.ones(_BATCH, dtype=bool)
        if region is not None:
            keep &= region.contains(lon, lat)
        if land:
            keep &= _is_land(lon, lat)
        empty_batches = 0 if keep.any() else empty_batches + 1
        if empty_batches > _MAX_EMPTY_BATCHES:
            raise ValueError(
                f'no point found in {_MAX_EMPTY_BATCHES * _BATCH} draws: is there '
                'land in the region? (see land=False)'
            )
        for x, y in zip(lon[keep], lat[keep], strict=True):
            yield float(x), float(y)


def sample_points(
    num_points: int,
    seed: int = 0,
    *,
    region: Region | None = None,
    land: bool = True,
) -> NDArray[np.float64]:
    """Sample points uniformly on the sphere, restricted to land and/or a region.

    Args:
        num_points: how many points.
        seed: seed of the random stream.
        region: keep only points inside this region.
        land: keep only points on land.

    Returns:
        An ``(num_points, 2)`` array of (lon, lat) in degrees; the first *k*
        rows are the same for any *num_points* >= *k*.

    Raises:
        ValueError: if *num_points* is negative.
    """
    if num_points < 0:
        raise ValueError(f'num_points must be >= 0, not {num_points}')
    points = iter_points(seed, region=region, land=land)
    out = np.empty((num_points, 2), dtype=np.float64)
    for i in range(num_points):
        out[i] = next(points)
    return out
