import re

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


def named(name: object) -> dict[str, object]:
    """A GeoJSON 2008 ``crs`` member naming ``name``."""
    return {'type': 'name', 'properties': {'name': name}}


@pytest.mark.parametrize(
    'name',
    [
        'urn:ogc:def:crs:OGC:1.3:CRS84',
        'urn:ogc:def:crs:OGC::CRS84',
        'OGC:CRS84',
        'OGC:1.3:CRS84',
        'CRS84',
        'crs84',
        'http://www.opengis.net/def/crs/OGC/1.3/CRS84',
        'EPSG:4326',
        'epsg:4326',
        'EPSG::4326',
        'urn:ogc:def:crs:EPSG::4326',
        'urn:ogc:def:crs:EPSG:6.6:4326',
        'http://www.opengis.net/def/crs/EPSG/0/4326',
        'WGS84',
        '+proj=longlat +datum=WGS84 +no_defs',
    ],
)
def test_geojson_crs_lonlat_spellings(name: str) -> None:
    """WGS84 longitude/latitude, however named: read as it is (None)."""
    from torchgeo_satclip.geo.crs import geojson_crs

    assert geojson_crs(named(name)) is None


@pytest.mark.parametrize(
    'name', ['urn:ogc:def:crs:EPSG::3857', 'EPSG:32631', 'EPSG:4269', 'EPSG:2154']
)
def test_geojson_crs_other_crs_is_named(name: str) -> None:
    from torchgeo_satclip.geo.crs import geojson_crs

    assert geojson_crs(named(name)) == name


ACCEPTED = re.escape(
    'expected {"type": "name", "properties": {"name": NAME}} with a NAME pyproj knows'
)


@pytest.mark.parametrize(
    ('member', 'message'),
    [
        (
            {'type': 'link', 'properties': {'href': 'http://x/crs', 'type': 'proj4'}},
            r'the "crs" member \{"type": "link", "properties": \{"href": '
            r'"http://x/crs", "type": "proj4"\}\} is a linked CRS, which is not '
            r'supported; ' + ACCEPTED,
        ),
        (None, r'the "crs" member null is not a named CRS; ' + ACCEPTED),
        ('EPSG:3857', r'the "crs" member "EPSG:3857" is not a named CRS; ' + ACCEPTED),
        (
            {'name': 'EPSG:3857'},
            r'the "crs" member \{"name": "EPSG:3857"\} is not a named CRS',
        ),
        (
            {'type': 'name', 'properties': {}},
            r'the "crs" member \{"type": "name", "properties": \{\}\} has no '
            r'"name" string in its "properties"; ' + ACCEPTED,
        ),
        (named(3857), r'has no "name" string in its "properties"'),
        ({'type': 'name', 'properties': 'EPSG:3857'}, r'has no "name" string'),
        (
            named('EPSG:99999'),
            r"the \"crs\" member names 'EPSG:99999', which pyproj does not know "
            r'\(crs not found: EPSG:99999\); ' + ACCEPTED,
        ),
        (
            named('Mercator'),
            r"names 'Mercator', which pyproj does not know \(Input is not a CRS",
        ),
        (
            named('Lambert'),
            r"names 'Lambert', which pyproj does not know \(several objects matching",
        ),
        (named(''), r"names '', which pyproj does not know"),
        (
            named('EPSG:5703'),
            r"names 'EPSG:5703', a Vertical CRS \(NAVD88 height\), not a geographic "
            r'or projected CRS; ' + ACCEPTED,
        ),
        (named('EPSG:4978'), r"names 'EPSG:4978', a Geocentric CRS"),
        (
            named('IAU_2015:49900'),
            r"names 'IAU_2015:49900' \(Mars \(2015\) - Sphere / Ocentric\), which "
            r'pyproj cannot transform to WGS84 longitude/latitude \(Source and '
            r'target ellipsoid do not belong to the same celestial body',
        ),
    ],
)
def test_geojson_crs_refused(member: object, message: str) -> None:
    from torchgeo_satclip.geo.crs import geojson_crs

    with pytest.raises(ValueError, match=message):
        geojson_crs(member)


def test_not_reprojected_finds_wrapped_and_non_finite_points() -> None:
    """Web Mercator eastings beyond half the equator wrap to a plausible longitude."""
    from torchgeo_satclip.geo.crs import not_reprojected

    x = np.array([0.0, 20037508.0, 1e9, 3e7, 0.0, np.inf, 0.0])
    y = np.array([0.0, 19e6, 0.0, 0.0, 1e9, 0.0, np.nan])
    lonlat = reproject_to_lonlat(x, y, 'EPSG:3857')
    assert np.isfinite(lonlat[2]).all()  # 1e9 m east: silently wrapped
    bad = not_reprojected(x, y, 'EPSG:3857', lonlat)
    assert bad.tolist() == [False, False, True, True, True, True, True]
    utm = reproject_to_lonlat(np.array([500000.0]), np.array([5e6]), 32631)
    assert not not_reprojected(np.array([500000.0]), np.array([5e6]), 32631, utm).any()


def test_reproject_checked_names_the_first_point_that_did_not_map() -> None:
    from torchgeo_satclip.geo.crs import reproject_checked

    x = np.array([0.0, 1e6, 1e9, np.inf])
    y = np.zeros(4)
    lonlat, first = reproject_checked(x, y, 'EPSG:3857')
    np.testing.assert_array_equal(lonlat, reproject_to_lonlat(x, y, 'EPSG:3857'))
    assert first == 2
    assert reproject_checked(x[:2], y[:2], 'EPSG:3857')[1] is None


@pytest.mark.parametrize('crs', ['EPSG:4326', 'EPSG:4269', CRS.from_epsg(4326)])
def test_geographic_longitudes_beyond_180_are_wrapped(crs: object) -> None:
    # A raster on a 0..360 longitude grid (climate data) has bounds east of
    # 180 degrees: pyproj passes them through unchanged from a geographic
    # CRS, and the encoders then refused 190 as out of range.
    from torchgeo_satclip.geo.crs import reproject_checked

    x = np.array([190.0, 359.5, -190.0, 180.0, -180.0, 10.0])
    y = np.array([0.0, 45.0, -10.0, 5.0, 5.0, 50.0])
    lonlat = reproject_to_lonlat(x, y, crs)
    np.testing.assert_allclose(
        lonlat,
        np.array(
            [[-170, 0], [-0.5, 45], [170, -10], [180, 5], [-180, 5], [10, 50]],
            dtype=np.float64,
        ),
        atol=1e-9,
    )
    assert np.abs(lonlat[:, 0]).max() <= 180
    # the same place, a whole turn away: faithfully reprojected
    assert reproject_checked(x, y, crs)[1] is None


@pytest.mark.parametrize('crs', ['EPSG:4326', 'EPSG:4269'])
def test_a_latitude_beyond_the_poles_did_not_map(crs: str) -> None:
    """pyproj passes a geographic CRS's latitude 95 through as it is, and it
    came back (10, 95) from reproject_checked as faithfully reprojected."""
    from torchgeo_satclip.geo.crs import not_reprojected, reproject_checked

    x = np.array([10.0, 10.0, 10.0, 10.0])
    y = np.array([90.0, -90.0, 95.0, -90.5])
    lonlat, first = reproject_checked(x, y, crs)
    assert first == 2
    bad = not_reprojected(x, y, crs, lonlat)
    assert bad.tolist() == [False, False, True, True]
