"""Geography, the bottom floor: points, reprojection, sampling and global maps.

Everything here is about where a point is, and nothing here knows about
models, datasets or training: this package imports no other part of
``torchgeo_satclip``, and every other part may import it.

* :mod:`~torchgeo_satclip.geo.lonlat`: the (lon, lat) validator, the compute
  dtype rule, great-circle distance, unit vectors, jitter;
* :mod:`~torchgeo_satclip.geo.crs`: reprojection from any CRS to lon/lat;
* :mod:`~torchgeo_satclip.geo.sampling`: seeded points uniform on the sphere,
  on land, in a region or under a mask;
* :mod:`~torchgeo_satclip.geo.maps`: the land mask and Köppen-Geiger zones.
"""

from .crs import reproject_to_lonlat
from .lonlat import (
    EARTH_RADIUS_KM,
    LonLatArray,
    check_lonlat_shape,
    compute_dtype,
    great_circle_km,
    jitter_points,
    lonlat_to_unit,
    validate_lonlat,
)
from .maps import is_koppen_land, is_land, koppen_zone
from .sampling import PointMask, Region, iter_points, sample_points

__all__ = [
    'EARTH_RADIUS_KM',
    'LonLatArray',
    'PointMask',
    'Region',
    'check_lonlat_shape',
    'compute_dtype',
    'great_circle_km',
    'is_koppen_land',
    'is_land',
    'iter_points',
    'jitter_points',
    'koppen_zone',
    'lonlat_to_unit',
    'reproject_to_lonlat',
    'sample_points',
    'validate_lonlat',
]
