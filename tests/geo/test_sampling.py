import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from global_land_mask import globe

from torchgeo_satclip.geo import Region, iter_points, sample_points

BOX: dict[str, Any] = {
    'type': 'Polygon',
    'coordinates': [
        [[5.0, 45.0], [10.0, 45.0], [10.0, 48.0], [5.0, 48.0], [5.0, 45.0]]
    ],
}


def test_seeded_and_prefix_stable() -> None:
    a = sample_points(50, seed=3)
    np.testing.assert_array_equal(a, sample_points(50, seed=3))
    np.testing.assert_array_equal(a[:20], sample_points(20, seed=3))
    assert not np.array_equal(a, sample_points(50, seed=4))


def test_land() -> None:
    points = sample_points(300, seed=0)
    assert points.shape == (300, 2)
    assert globe.is_land(points[:, 1], points[:, 0]).all()
    assert (np.abs(points[:, 0]) <= 180).all()
    assert (np.abs(points[:, 1]) <= 90).all()


def test_uniform_on_the_sphere() -> None:
    points = sample_points(4000, seed=0, land=False)
    sin_lat = np.sin(np.radians(points[:, 1]))
    # Uniform on the sphere: sin(lat) and lon are uniform.
    assert abs(sin_lat.mean()) < 0.05
    assert abs(np.mean(np.abs(sin_lat) < 0.5) - 0.5) < 0.05
    assert abs(np.mean(points[:, 0] > 0) - 0.5) < 0.05


def test_region() -> None:
    region = Region(
        {
            'type': 'FeatureCollection',
            'features': [{'type': 'Feature', 'geometry': BOX, 'properties': {}}],
        }
    )
    points = sample_points(200, seed=1, region=region)
    assert region.contains(points[:, 0], points[:, 1]).all()
    assert (points[:, 0] >= 5).all()
    assert (points[:, 0] <= 10).all()
    assert globe.is_land(points[:, 1], points[:, 0]).all()


def test_region_file(tmp_path: Path) -> None:
    import json

    path = tmp_path / 'r.geojson'
    path.write_text(json.dumps({'type': 'Feature', 'geometry': BOX}))
    assert Region.from_file(path).bounds == (5.0, 45.0, 10.0, 48.0)


def test_a_polygon_drawn_across_the_antimeridian_is_warned_of() -> None:
    """Fiji drawn across 180 degrees (177 to -179) is, as RFC 7946 reads it,
    a band 356 degrees wide round the other side of the world: points were
    drawn there in silence. An edge longer than 180 degrees of longitude is
    warned of, naming it; a region drawn wide on purpose still works."""
    fiji = {
        'type': 'Polygon',
        'coordinates': [[[177, -18], [-179, -18], [-179, -16], [177, -16], [177, -18]]],
    }
    with pytest.warns(
        UserWarning, match=r'\(177.*-18.*\) to \(-179.*-18.*\).*antimeridian'
    ):
        region = Region(fiji)
    assert region.bounds == (-179.0, -18.0, 177.0, -16.0)  # read as it is
    split = {
        'type': 'MultiPolygon',
        'coordinates': [
            [[[177, -18], [180, -18], [180, -16], [177, -16], [177, -18]]],
            [[[-180, -18], [-179, -18], [-179, -16], [-180, -16], [-180, -18]]],
        ],
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter('error')
        Region(split)
        Region(BOX)


@pytest.mark.parametrize(
    'ring',
    [
        # the whole globe: its edges along the poles are points on the sphere
        [[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]],
        # Antarctica as a cap: an edge along the pole, one full turn at -60
        [[-180, -90], [180, -90], [180, -60], [-180, -60], [-180, -90]],
        # the Arctic written the other way round
        [[180, 60], [-180, 60], [-180, 90], [180, 90], [180, 60]],
    ],
)
def test_a_band_or_a_cap_round_the_globe_is_not_warned_of(
    ring: list[list[float]],
) -> None:
    """The whole globe, or a polar cap, can only be written with edges from
    -180 to 180 (a full turn, both ends on the antimeridian) and edges along
    a pole (one point on the sphere); each was warned of as 'the long way
    round the world ... write its longitudes continuous or split it in two
    at 180', which is no repair of it. An edge that crosses 180 from
    anywhere else still is (test_a_polygon_drawn_across_the_antimeridian_...)."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        region = Region({'type': 'Polygon', 'coordinates': [ring]})
    lat = sample_points(2000, region=region, land=False)[:, 1]
    south, north = region.bounds[1], region.bounds[3]
    assert ((lat >= south) & (lat <= north)).all()
    with pytest.warns(UserWarning, match=r'\(170, 0\) to \(-170, 0\)'):
        Region(
            {
                'type': 'Polygon',
                'coordinates': [[[170, 0], [-170, 0], [-170, 5], [170, 5], [170, 0]]],
            }
        )


def test_invalid() -> None:
    with pytest.raises(ValueError, match='Polygons'):
        Region({'type': 'Point', 'coordinates': [0, 0]})
    with pytest.raises(ValueError, match='at most 360 degrees'):
        Region(
            {
                'type': 'Polygon',
                'coordinates': [[[170, 0], [540, 0], [540, 5], [170, 0]]],
            }
        )
    with pytest.raises(ValueError, match='num_points'):
        sample_points(-1)
    ocean = Region(
        {
            'type': 'Polygon',
            'coordinates': [[[-30, -10], [-29, -10], [-29, -9], [-30, -10]]],
        }
    )
    with pytest.raises(ValueError, match='land'):
        sample_points(1, region=ocean)


def _square(lon: float, lat: float, side: float) -> list[list[list[float]]]:
    return [
        [
            [lon, lat],
            [lon + side, lat],
            [lon + side, lat + side],
            [lon, lat + side],
            [lon, lat],
        ]
    ]


def test_single_polygon_stream_is_the_builders() -> None:
    """One polygon (or none) draws exactly the stream S2-100K builds resume on."""
    from torchgeo_satclip.geo.sampling import _BATCH

    region = Region(BOX)
    rng = np.random.default_rng(7)
    west, south, east, north = 5.0, 45.0, 10.0, 48.0
    lon = rng.uniform(west, east, _BATCH)
    low, high = np.sin(np.radians([south, north]))
    sin_lat = rng.uniform(low, high, _BATCH)
    lat = np.degrees(np.arcsin(sin_lat))
    keep = region.contains(lon, lat)
    expected = np.stack([lon[keep], lat[keep]], axis=1)[:100]
    np.testing.assert_array_equal(
        sample_points(100, seed=7, region=region, land=False), expected
    )


def test_many_small_polygons() -> None:
    """Hundreds of tiny islands scattered over the globe: sampled polygon by polygon."""
    rng = np.random.default_rng(0)
    corners = np.stack(
        [rng.uniform(-179, 178, 400), rng.uniform(-80, 79, 400)], axis=1
    ).round(1)
    region = Region(
        {
            'type': 'MultiPolygon',
            'coordinates': [_square(lon, lat, 0.05) for lon, lat in corners],
        }
    )
    # The region covers about 1e-6 of its bounding box: drawing in that box
    # would find nothing in 64 x 4096 draws.
    points = sample_points(500, seed=1, region=region, land=False)
    assert region.contains(points[:, 0], points[:, 1]).all()
    # The points spread over many islands, not a few.
    hit = {(round(lon // 0.05), round(lat // 0.05)) for lon, lat in points}
    assert len(hit) > 250


def test_uniform_over_polygons_of_different_area() -> None:
    # Equal boxes in degrees, but at 60 degrees latitude a degree box has
    # half the area of one at the equator: it must get half the points.
    region = Region(
        {
            'type': 'MultiPolygon',
            'coordinates': [_square(0, -0.5, 1.0), _square(20, 59.5, 1.0)],
        }
    )
    points = sample_points(6000, seed=2, region=region, land=False)
    share = np.mean(points[:, 1] > 30)
    expected = (np.sin(np.radians(60.5)) - np.sin(np.radians(59.5))) / (
        2 * np.sin(np.radians(0.5))
        + np.sin(np.radians(60.5))
        - np.sin(np.radians(59.5))
    )
    assert share == pytest.approx(expected, abs=0.02)


def test_overlapping_polygons_are_not_counted_twice() -> None:
    # A small box inside a big one: the union is the big box, uniform.
    region = Region(
        {
            'type': 'FeatureCollection',
            'features': [
                {
                    'type': 'Feature',
                    'geometry': {'type': 'Polygon', 'coordinates': _square(0, 0, 10)},
                },
                {
                    'type': 'Feature',
                    'geometry': {'type': 'Polygon', 'coordinates': _square(0, 0, 1)},
                },
            ],
        }
    )
    points = sample_points(5000, seed=3, region=region, land=False)
    inner = np.mean((points[:, 0] < 1) & (points[:, 1] < 1))
    assert inner == pytest.approx(0.01, abs=0.006)


def test_where_filter() -> None:
    east = lambda lon, lat: lon > 0  # noqa: E731
    points = sample_points(300, seed=0, land=False, where=east)
    assert (points[:, 0] > 0).all()
    # The filter keeps the stream's order: the kept points of the plain stream.
    plain = sample_points(1000, seed=0, land=False)
    np.testing.assert_array_equal(points, plain[plain[:, 0] > 0][:300])


def _crs(name: str) -> dict[str, object]:
    """The ``crs`` member GDAL writes (GeoJSON 2008)."""
    return {'type': 'name', 'properties': {'name': name}}


def _mercator(ring: list[list[float]]) -> list[list[float]]:
    from pyproj import Transformer

    forward = Transformer.from_crs('EPSG:4326', 'EPSG:3857', always_xy=True)
    return [list(forward.transform(lon, lat)) for lon, lat in ring]


@pytest.mark.parametrize('name', ['EPSG:3857', 'urn:ogc:def:crs:EPSG::3857'])
def test_region_in_web_mercator(name: str) -> None:
    """A region GDAL wrote in EPSG:3857 is the region in lon/lat, not metres
    read as degrees (which lie far outside the globe)."""
    ring: list[list[float]] = BOX['coordinates'][0]
    region = Region(
        {
            'type': 'FeatureCollection',
            'crs': _crs(name),
            'features': [
                {
                    'type': 'Feature',
                    'geometry': {'type': 'Polygon', 'coordinates': [_mercator(ring)]},
                    'properties': {},
                }
            ],
        }
    )
    np.testing.assert_allclose(region.bounds, (5.0, 45.0, 10.0, 48.0), atol=1e-9)
    lonlat = np.asarray(region.geometry.exterior.coords)
    np.testing.assert_allclose(lonlat, ring, atol=1e-9)
    points = sample_points(50, seed=1, region=region, land=False)
    assert region.contains(points[:, 0], points[:, 1]).all()


def test_region_file_with_a_bad_crs_names_the_file(tmp_path: Path) -> None:
    import json

    path = tmp_path / 'r.geojson'
    for member, message in [
        (
            {'type': 'link', 'properties': {'href': 'x'}},
            'the "crs" member {"type": "link", "properties": {"href": "x"}} is a '
            'linked CRS, which is not supported',
        ),
        (
            _crs('EPSG:99999'),
            'the "crs" member names \'EPSG:99999\', which pyproj does not know',
        ),
        (None, 'the "crs" member null is not a named CRS'),
    ]:
        path.write_text(json.dumps({'type': 'Feature', 'geometry': BOX, 'crs': member}))
        with pytest.raises(ValueError, match=re.escape(f'{path}: {message}')):
            Region.from_file(path)


def test_region_vertex_outside_the_crs_is_refused() -> None:
    """An easting of 10^9 m in Web Mercator would wrap to a plausible longitude."""
    ring = [[0.0, 0.0], [1e9, 0.0], [1e9, 1e6], [0.0, 1e6], [0.0, 0.0]]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "the region's vertex (x, y) = (1000000000.0, 0.0) in EPSG:3857 does not "
            'map to a longitude and latitude'
        ),
    ):
        Region({'type': 'Polygon', 'coordinates': [ring], 'crs': _crs('EPSG:3857')})


def _projected(crs: str, ring: list[tuple[float, float]]) -> list[list[float]]:
    from pyproj import Transformer

    forward = Transformer.from_crs('EPSG:4326', crs, always_xy=True)
    return [list(forward.transform(lon, lat)) for lon, lat in ring]


def test_projected_ring_round_a_pole_is_refused() -> None:
    """A square round the South Pole in Antarctic polar stereographic: with
    straight edges in lon/lat it would be an empty region or the rest of the
    world."""
    xy = [[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6], [-1e6, -1e6]]
    with pytest.raises(
        ValueError,
        match=r'ring of the region in EPSG:3031 goes from longitude -135 to 135 '
        r'.*round a pole',
    ):
        Region({'type': 'Polygon', 'coordinates': [xy], 'crs': _crs('EPSG:3031')})


@pytest.mark.parametrize('hole', [False, True])
def test_projected_ring_across_180_is_split_at_the_antimeridian(hole: bool) -> None:
    """Fiji in its own CRS, one ring across 180 degrees, was refused (its
    longitudes jump from 179.9 to -179.5 once reprojected): the ring is made
    continuous (179.9 to 180.5) and split at the antimeridian like any other."""
    ring = [(177.0, -19.0), (179.9, -19.0), (-179.5, -17.0), (177.0, -17.0)]
    rings = [_projected('EPSG:3460', [*ring, ring[0]])]
    if hole:  # a hole across 180 too, starting east of it
        inner = [(-179.9, -18.2), (-179.9, -17.8), (179.5, -17.8), (179.5, -18.2)]
        rings.append(_projected('EPSG:3460', [*inner, inner[0]]))
    region = Region({'type': 'Polygon', 'coordinates': rings, 'crs': _crs('EPSG:3460')})
    assert region.geometry.geom_type == 'MultiPolygon'
    assert region.bounds[0] == -180.0
    assert region.bounds[2] == 180.0
    lon = np.array([178.0, 179.95, -179.9, -179.95, 179.7, 0.0, -170.0])
    lat = np.array([-18.0, -18.5, -17.5, -18.0, -18.0, -18.0, -18.0])
    expected = [True, True, True, not hole, not hole, False, False]
    assert region.contains(lon, lat).tolist() == expected
    points = sample_points(500, seed=0, region=region, land=False)
    assert (points[:, 0] > 0).any()
    assert (points[:, 0] < 0).any()
    assert region.contains(points[:, 0], points[:, 1]).all()


def test_projected_region_split_at_180_is_kept() -> None:
    west = [(177.0, -19.0), (180.0, -19.0), (180.0, -17.0), (177.0, -17.0)]
    east = [(-180.0, -19.0), (-179.5, -19.0), (-179.5, -17.0), (-180.0, -17.0)]
    region = Region(
        {
            'type': 'MultiPolygon',
            'coordinates': [
                [_projected('EPSG:3460', [*part, part[0]])] for part in (west, east)
            ],
            'crs': _crs('EPSG:3460'),
        }
    )
    inside = region.contains(np.array([179.5, -179.7, 0.0]), np.full(3, -18.0))
    assert inside.tolist() == [True, True, False]
    assert region.geometry.area == pytest.approx(2 * 3.5, rel=1e-6)


@pytest.mark.parametrize('num_points', [True, 2.0, 2.5, '3', None])
def test_num_points_must_be_an_integer(num_points: object) -> None:
    # A bool used to draw one point silently, a float failed inside numpy
    # with a message that named no argument.
    with pytest.raises(
        ValueError, match=f'num_points must be an integer, got {num_points!r}'
    ):
        sample_points(num_points, land=False)  # type: ignore[arg-type]


@pytest.mark.parametrize('seed', [True, 1.5, -1, 'a'])
def test_seed_must_be_a_non_negative_integer(seed: object) -> None:
    with pytest.raises(
        ValueError, match=f'seed must be a non-negative integer, got {seed!r}'
    ):
        sample_points(1, seed=seed, land=False)  # type: ignore[arg-type]


@pytest.mark.parametrize('land', ['False', 'no', None, 0, 1, 2.0])
def test_land_must_be_a_bool(land: object) -> None:
    """land was read as truthiness: land='False' (a YAML or CLI string) kept
    only the points on land, land=None or 0 every point, in silence. Both
    sampling functions refuse it at once, naming it."""
    message = rf'land must be True or False, got {re.escape(repr(land))} \(type '
    with pytest.raises(ValueError, match=message):
        sample_points(1, land=land)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        iter_points(land=land)  # type: ignore[arg-type]


def test_a_numpy_bool_is_a_bool() -> None:
    flag: Any = np.bool_(False)
    np.testing.assert_array_equal(
        sample_points(3, land=flag), sample_points(3, land=False)
    )


def test_numpy_integers_are_integers() -> None:
    count: Any = np.int64(3)
    seed: Any = np.int64(2)
    np.testing.assert_array_equal(
        sample_points(count, seed=seed, land=False),
        sample_points(3, seed=2, land=False),
    )


def _box_with(vertex: int, value: Any) -> dict[str, Any]:
    """BOX with one coordinate of one vertex replaced."""
    ring = [list(point) for point in BOX['coordinates'][0]]
    ring[vertex][1] = value
    return {'type': 'Polygon', 'coordinates': [ring]}


@pytest.mark.parametrize(
    ('geometry', 'message'),
    [
        (_box_with(2, float('nan')), r'geometry 1, vertex 3: \(10\.0, nan\)'),
        (_box_with(1, float('inf')), r'geometry 1, vertex 2: \(10\.0, inf\)'),
        ({'type': 'Polygon'}, r"geometry 1 \(Polygon\): .*'coordinates'"),
        (_box_with(1, 'x'), r'geometry 1 \(Polygon\): '),
        (
            {'type': 'Polygon', 'coordinates': [[[0.0, 0.0], [1.0]]]},
            r'geometry 1 \(Polygon\): ',
        ),
    ],
)
def test_region_with_a_malformed_vertex_names_it(
    geometry: dict[str, Any], message: str
) -> None:
    """A NaN vertex made a region with only shapely's RuntimeWarnings (its
    bounds NaN, so the [-180, 180] check passed); a missing or malformed
    'coordinates' escaped as a bare KeyError or numpy's message."""
    collection = {
        'type': 'FeatureCollection',
        'features': [{'type': 'Feature', 'geometry': geometry}],
    }
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no shapely RuntimeWarning first
        with pytest.raises(ValueError, match=message):
            Region(collection)


#: Fiji's box, 177 to 182 degrees east with continuous longitudes (182 is
#: -178): the convention of a polygon crossing the antimeridian.
FIJI_UNWRAPPED = {
    'type': 'Polygon',
    'coordinates': [[[177, -19], [182, -19], [182, -16], [177, -16], [177, -19]]],
}


@pytest.mark.parametrize(
    ('geometry', 'west_part', 'east_part'),
    [
        # past 180: 177..180 stays, 180..182 becomes -180..-178
        (FIJI_UNWRAPPED, (177.0, 180.0), (-180.0, -178.0)),
        # before -180: -185..-180 becomes 175..180, -180..-175 stays
        (
            {
                'type': 'Polygon',
                'coordinates': [
                    [[-185, -19], [-175, -19], [-175, -16], [-185, -16], [-185, -19]]
                ],
            },
            (175.0, 180.0),
            (-180.0, -175.0),
        ),
    ],
)
def test_a_polygon_with_continuous_longitudes_is_split_at_the_antimeridian(
    geometry: dict[str, Any],
    west_part: tuple[float, float],
    east_part: tuple[float, float],
) -> None:
    """A polygon written with longitudes past 180 (or before -180) was refused:
    it is split at 180 degrees and the part outside shifted by 360, a
    MultiPolygon inside [-180, 180] of the same places and area."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no long edge: nothing to warn of
        region = Region(geometry)
    assert region.geometry.geom_type == 'MultiPolygon'
    assert region.bounds == (-180.0, -19.0, 180.0, -16.0)
    parts = sorted(tuple(p.bounds) for p in region.parts)
    assert parts == [
        (east_part[0], -19.0, east_part[1], -16.0),
        (west_part[0], -19.0, west_part[1], -16.0),
    ]
    ring = np.asarray(geometry['coordinates'][0], dtype=np.float64)
    width = ring[:, 0].max() - ring[:, 0].min()
    assert region.geometry.area == pytest.approx(width * 3.0, rel=1e-12)
    # Points on both sides of 180, each as the intended region has it.
    lon = np.array([179.5, -179.5, 178.5, -178.5, -176.0, 176.0, 0.0, 179.5])
    lat = np.array([-17.0, -17.0, -17.0, -17.0, -17.0, -17.0, -17.0, -20.0])
    unwrapped = np.where(lon < ring[:, 0].min(), lon + 360, lon)
    unwrapped = np.where(unwrapped > ring[:, 0].max(), unwrapped - 360, unwrapped)
    expected = (
        (unwrapped > ring[:, 0].min())
        & (unwrapped < ring[:, 0].max())
        & (lat > -19)
        & (lat < -16)
    )
    assert region.contains(lon, lat).tolist() == expected.tolist()
    assert expected[:2].all()  # both sides of 180 are in


def test_sampling_a_region_across_the_antimeridian() -> None:
    """Points drawn from it lie on both sides of 180 degrees, none outside the
    region or outside [-180, 180], in proportion to the two parts' areas."""
    region = Region(FIJI_UNWRAPPED)
    points = sample_points(3000, seed=4, region=region, land=False)
    lon, lat = points[:, 0], points[:, 1]
    assert (np.abs(lon) <= 180).all()
    assert region.contains(lon, lat).all()
    assert ((lon >= 177) | (lon <= -178)).all()
    assert ((lat > -19) & (lat < -16)).all()
    # 3 of the 5 degrees lie west of 180, 2 east of it.
    assert np.mean(lon > 0) == pytest.approx(0.6, abs=0.03)
    # Fiji's islands lie on both sides of 180: land points there too.
    land = sample_points(200, seed=4, region=region)
    assert region.contains(land[:, 0], land[:, 1]).all()
    assert (land[:, 0] > 0).any()
    assert (land[:, 0] < 0).any()


def test_a_feature_collection_across_the_antimeridian_is_one_region() -> None:
    """Features past 180 and inside [-180, 180] are shifted and unioned as one."""
    region = Region(
        {
            'type': 'FeatureCollection',
            'features': [
                {'type': 'Feature', 'geometry': FIJI_UNWRAPPED},
                {
                    'type': 'Feature',
                    'geometry': {
                        'type': 'Polygon',
                        'coordinates': _square(-179, -18, 2),
                    },
                },
            ],
        }
    )
    # -179..-178 x -18..-16 lies in both (Fiji shifted): counted once.
    assert region.geometry.area == pytest.approx(5 * 3 + 2 * 2 - 1 * 2)
    assert region.contains(np.array([-177.5, 179.0]), np.array([-17.0, -17.0])).all()


@pytest.mark.parametrize(
    ('ring', 'message'),
    [
        # wider than the globe
        (
            [[-170, 0], [200, 0], [200, 5], [-170, 5], [-170, 0]],
            r'geometry 1, polygon 1 spans longitudes -170 to 200, 370 degrees wide: '
            'a polygon spans at most 360',
        ),
        # latitude out of range (lon and lat swapped)
        (
            [[10, 100], [12, 100], [12, 102], [10, 102], [10, 100]],
            r'geometry 1 spans latitudes 100 to 102.*\[-90, 90\]',
        ),
        # more than a turn past 180: projected metres read as degrees
        (
            [[600, 10], [620, 10], [620, 20], [600, 20], [600, 10]],
            r'geometry 1 spans longitudes 600 to 620.*\[-540, 540\]',
        ),
    ],
)
def test_a_region_outside_the_globe_is_refused_naming_its_bounds(
    ring: list[list[float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Region({'type': 'Polygon', 'coordinates': [ring]})


#: A ring that crosses itself (a bow tie): not a valid polygon.
BOW_TIE = [[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]


@pytest.mark.parametrize(
    'geojson',
    [
        {'type': 'Polygon', 'coordinates': [BOW_TIE]},
        {
            'type': 'FeatureCollection',
            'features': [
                {
                    'type': 'Feature',
                    'geometry': {'type': 'Polygon', 'coordinates': _square(20, 0, 1)},
                },
                {
                    'type': 'Feature',
                    'geometry': {
                        'type': 'MultiPolygon',
                        'coordinates': [[BOW_TIE], _square(0, 0, 1)],
                    },
                },
            ],
        },
    ],
)
def test_a_self_intersecting_polygon_is_refused_naming_it(
    geojson: dict[str, Any],
) -> None:
    """A bow tie was 'the region is empty' (its two lobes' signed areas
    cancel), or, beside another polygon, shapely's bare GEOSException
    ('TopologyException: side location conflict')."""
    number = 1 if geojson['type'] == 'Polygon' else 2
    with pytest.raises(
        ValueError,
        match=rf'geometry {number} \((Multi)?Polygon\), polygon 1 is not a valid '
        r'polygon: Self-intersection\[5 5\]',
    ):
        Region(geojson)


def test_overlapping_polygons_of_a_multipolygon_are_unioned() -> None:
    """Not valid as one MultiPolygon by OGC's rules, but not refused either."""
    region = Region(
        {'type': 'MultiPolygon', 'coordinates': [_square(0, 0, 2), _square(1, 1, 2)]}
    )
    assert region.geometry.area == pytest.approx(7.0)


@pytest.mark.parametrize(
    ('geojson', 'message'),
    [
        ([[0, 0], [1, 1]], 'a GeoJSON object (a mapping), not list [[0, 0], [1, 1]]'),
        ('alps.geojson', "a GeoJSON object (a mapping), not str 'alps.geojson'"),
        ({'type': 'Feature'}, 'the Feature has no "geometry" member'),
        (
            {'type': 'FeatureCollection', 'features': [{'type': 'Feature'}]},
            'feature 1 of the FeatureCollection has no "geometry" member',
        ),
        (
            {'type': 'FeatureCollection', 'features': [1]},
            'feature 1 of the FeatureCollection must be a GeoJSON object (a '
            'mapping), not int 1',
        ),
        (
            {'type': 'FeatureCollection', 'features': {'type': 'Feature'}},
            'the FeatureCollection\'s "features" must be a list of Features, not dict',
        ),
    ],
)
def test_a_malformed_geojson_object_is_refused_naming_what_is_wrong(
    geojson: Any, message: str
) -> None:
    """These escaped as a bare AttributeError ('list' object has no attribute
    'get'), KeyError ('geometry') or TypeError, without the file's name."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Region(geojson)


def test_a_geojson_file_that_is_not_an_object_names_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / 'r.geojson'
    path.write_text('[1, 2]')
    with pytest.raises(
        ValueError, match=re.escape(f'{path}: a region (FeatureCollection')
    ):
        Region.from_file(path)


def test_a_region_that_is_not_a_region_is_refused_at_once() -> None:
    """A GeoJSON mapping passed as region failed on the first point drawn,
    with AttributeError: 'dict' object has no attribute 'part_bounds'."""
    message = (
        r'region must be a Region \(Region\(geojson\) or Region.from_file\(path\)\) '
        r"or None, not dict \{'type': 'Polygon'"
    )
    with pytest.raises(ValueError, match=message):
        iter_points(region=BOX)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        sample_points(1, region=BOX, land=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='where must be a function'):
        iter_points(where=np.ones(3, dtype=bool))  # type: ignore[arg-type]


def test_no_point_found_names_the_restrictions_in_force() -> None:
    """With land=False the message still asked 'is there land in the
    region? (see land=False)', which was not the cause."""
    region = Region({'type': 'Polygon', 'coordinates': _square(-30, -10, 1)})
    with pytest.raises(ValueError, match=r'on land.*land=False'):
        sample_points(1, region=region)
    never = lambda lon, lat: np.zeros(lon.shape, dtype=bool)  # noqa: E731
    with pytest.raises(ValueError, match='no point found') as info:
        sample_points(1, region=region, land=False, where=never)
    assert 'land' not in str(info.value)
    assert 'where' in str(info.value)


def test_contains_refuses_points_outside_the_globe() -> None:
    """Asked whether (181, -17) lies in Fiji written as 177 to 182, contains
    said False in silence (the region is stored inside [-180, 180]); a point
    out of range is named, as everywhere else, and shapes must agree."""
    region = Region(FIJI_UNWRAPPED)
    with pytest.raises(ValueError, match=r'longitude 181\.0 is outside \[-180, 180\]'):
        region.contains(np.array([179.0, 181.0]), np.array([-17.0, -17.0]))
    with pytest.raises(ValueError, match=r'same shape, got \(2,\) and \(3,\)'):
        region.contains(np.zeros(2), np.zeros(3))
    assert region.contains(
        np.array([[179.0, -179.0]]), np.full((1, 2), -17.0)
    ).shape == (
        1,
        2,
    )


def test_a_ring_mixing_positions_with_and_without_altitude() -> None:
    """RFC 7946 positions may carry an altitude; a ring mixing them with
    plain (x, y) positions was 'cannot read it as GeoJSON (... inhomogeneous
    shape ...)', although BuildConfig takes such a region: the build then
    failed on it. A region is flat: the altitude is dropped."""
    ring: list[list[float]] = [[10, 45, 100.0], [11.0, 45], [11, 46, 3], [10, 45]]
    mixed = Region({'type': 'Polygon', 'coordinates': [ring]})
    flat = Region({'type': 'Polygon', 'coordinates': [[p[:2] for p in ring]]})
    assert mixed.geometry.equals(flat.geometry)
    assert mixed.bounds == (10.0, 45.0, 11.0, 46.0)


@pytest.mark.parametrize(
    ('mask', 'returned'),
    [
        (lambda lon, lat: lat, 'ndarray of dtype float64 and shape (4096,)'),
        (
            lambda lon, lat: np.where(lat > 0, 'north', ''),
            'ndarray of dtype <U5 and shape (4096,)',
        ),
        (
            lambda lon, lat: (lat > 0).astype(np.uint8),
            'ndarray of dtype uint8 and shape (4096,)',
        ),
        (lambda lon, lat: (lat > 0)[:-1], 'ndarray of dtype bool and shape (4095,)'),
        (
            lambda lon, lat: (lat > 0)[:, None],
            'ndarray of dtype bool and shape (4096, 1)',
        ),
        (lambda lon, lat: True, 'bool of dtype bool and shape ()'),
        (lambda lon, lat: None, 'None'),
    ],
)
def test_where_must_return_one_bool_a_point(
    mask: Callable[[Any, Any], Any], returned: str
) -> None:
    """A mask of latitudes (or zone names, or 0/1) was read as truthiness:
    every point off the equator (every named zone) was kept, in silence; a
    mask of another shape failed with numpy's 'operands could not be
    broadcast together', and None with 'no point found ... is there such a
    place?'."""
    with pytest.raises(ValueError, match=r'^where must return a boolean mask') as info:
        sample_points(3, land=False, where=mask)
    message = str(info.value)
    assert '((4096,), dtype bool)' in message
    assert f'got {returned}:' in message


def test_where_may_return_a_list_or_tensor_of_bools() -> None:
    north = sample_points(5, seed=2, land=False, where=lambda lon, lat: lat > 0)
    listed = sample_points(
        5, seed=2, land=False, where=lambda lon, lat: (lat > 0).tolist()
    )
    np.testing.assert_array_equal(north, listed)
    assert (north[:, 1] > 0).all()
