import numpy as np
import pytest
from rasterio.crs import CRS

from torchgeo_satclip.geo import reproject_to_lonlat
from torchgeo_satclip.geo.crs import _to_lonlat


@pytest.mark.parametrize('crs', ['EPSG:3857', 3857, CRS.from_epsg(3857)])
def test_web_mercator(crs: object) -> None:
    x = np.array([0.0, 20037508.342789244])
    y = np.array([0.0, 0.0])
    lonlat = reproject_to_lonlat(x, y, crs)
    assert lonlat.shape == (2, 2)
    assert lonlat.dtype == np.float64
    np.testing.assert_allclose(lonlat, [[0.0, 0.0], [180.0, 0.0]], atol=1e-9)


def test_utm_is_lon_first() -> None:
    # UTM zone 31N: easting 500 km on the central meridian, 3 degrees east.
    lonlat = reproject_to_lonlat(np.array([500000.0]), np.array([5_000_000.0]), 32631)
    assert lonlat[0, 0] == pytest.approx(3.0)
    assert 45 < lonlat[0, 1] < 45.2


def test_transformer_is_cached() -> None:
    _to_lonlat.cache_clear()
    for _ in range(5):
        reproject_to_lonlat(np.array([1.0]), np.array([2.0]), 'EPSG:32632')
    info = _to_lonlat.cache_info()
    assert info.misses == 1
    assert info.hits == 4
