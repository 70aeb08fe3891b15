import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_satclip.builders import BuildConfig, build_dataset
from torchgeo_satclip.builders._state import region_record
from torchgeo_satclip.geo import Region

from .fake_stac import SCENES, FakeStacServer
from .test_planetary_computer import index_rows, run_options

REGION = {
    'type': 'Polygon',
    'coordinates': (((10.0, 45.0), (11.0, 45.0), (11.0, 46.0), (10.0, 45.0)),),
}


def test_round_trip() -> None:
    config = BuildConfig(seed=3, region=REGION, land=False, resampling='cubic')
    assert isinstance(config.region, dict)
    assert config.region['coordinates'][0][0] == [10.0, 45.0]  # JSON form
    assert BuildConfig.from_dict(config.to_dict()) == config
    assert BuildConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json()) == config.to_dict()
    assert BuildConfig.from_json(BuildConfig().to_json()) == BuildConfig()
    assert hash(config) == hash(BuildConfig.from_json(config.to_json()))


def test_to_dict_is_build_json_layout() -> None:
    data = BuildConfig().to_dict()
    assert list(data) == [
        'format',
        'version',
        'seed',
        'start',
        'end',
        'max_cloud_cover',
        'region',
        'land',
        'collection',
        'size',
        'max_nodata_fraction',
        'items_per_point',
        'resampling',
    ]
    assert data['format'] == 'torchgeo-satclip/s2-100k-build'
    assert data['version'] == 1
    assert BuildConfig().to_json().endswith('}\n')


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BuildConfig().seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ('data', 'match'),
    [
        ({'version': 1}, 'configuration'),
        ({'format': 'torchgeo-satclip/s2-100k-build', 'version': 2}, 'version 1'),
        (
            {'format': 'torchgeo-satclip/s2-100k-build', 'version': 1, 'workers': 2},
            'workers',
        ),
    ],
)
def test_from_dict_refuses(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BuildConfig.from_dict(data)


def test_from_json_refuses_non_object() -> None:
    with pytest.raises(ValueError, match='JSON object'):
        BuildConfig.from_json('[]')


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'max_nodata_fraction': 1.0}, 'max_nodata_fraction'),
        ({'max_nodata_fraction': -0.1}, 'max_nodata_fraction'),
        ({'size': 0}, 'size'),
        ({'items_per_point': 0}, 'items_per_point'),
        ({'resampling': 'mode'}, 'resampling'),
        ({'start': '2021-13-01'}, 'start'),
        ({'end': 'yesterday'}, 'end'),
        ({'region': {'type': 'Feature', 'geometry': REGION}}, 'region'),
    ],
)
def test_invalid(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BuildConfig(**kwargs)


def test_build_dataset_defaults_are_the_config_defaults() -> None:
    parameters = inspect.signature(build_dataset).parameters
    for field in dataclasses.fields(BuildConfig):
        assert parameters[field.name].default == field.default, field.name


def test_build_json_is_the_config(tmp_path: Path, server: FakeStacServer) -> None:
    region = SCENES['A'].box(300)
    options = run_options(server)
    build_dataset(tmp_path / 'a', 2, region=region, land=False, **options)
    text = (tmp_path / 'a' / 'build.json').read_text()
    config = BuildConfig.from_json(text)
    # The region as sampled (shapely's normal form of the region's geometry).
    assert config == BuildConfig(region=region_record(Region(region)), land=False)
    assert config.to_json() == text
    # The same dataset from the config alone.
    result = build_dataset(tmp_path / 'b', 2, config=config, **options)
    assert result.complete
    assert (tmp_path / 'b' / 'build.json').read_text() == text
    assert sorted(index_rows(tmp_path / 'b')) == sorted(index_rows(tmp_path / 'a'))
    # Resuming with the config is resuming with the same arguments.
    result = build_dataset(tmp_path / 'a', 2, config=config, **options)
    assert result.num_resumed == 2
    assert result.num_candidates == 0


def test_config_and_arguments_refused(tmp_path: Path, server: FakeStacServer) -> None:
    with pytest.raises(ValueError, match='not both'):
        build_dataset(tmp_path, 1, seed=1, config=BuildConfig(), **run_options(server))
    assert not (tmp_path / 'build.json').exists()


def test_other_config_refused(tmp_path: Path, server: FakeStacServer) -> None:
    options = run_options(server)
    config = BuildConfig(region=SCENES['A'].box(300), land=False)
    build_dataset(tmp_path, 1, config=config, **options)
    other = dataclasses.replace(config, size=128)
    with pytest.raises(ValueError, match=r'size: 256 -> 128'):
        build_dataset(tmp_path, 1, config=other, **options)


@pytest.mark.parametrize(
    ('text', 'found'),
    [
        (b'', 'is not JSON (Expecting value'),
        (b'{"format": ', 'is not JSON (Expecting value'),
        (b'\xff\xfe{}', 'is not JSON ('),
        (b'[1, 2]', 'is a JSON list'),
        (b'"torchgeo-satclip/s2-100k-build"', 'is a JSON str'),
        (b'null', 'is a JSON NoneType'),
    ],
)
def test_unreadable_build_json_named(tmp_path: Path, text: bytes, found: str) -> None:
    """A build.json that is not a JSON object is refused, naming the file."""
    (tmp_path / 'build.json').write_bytes(text)
    path = tmp_path / 'build.json'
    with pytest.raises(ValueError, match='expected the JSON object') as raised:
        build_dataset(
            tmp_path, 1, api_url='http://127.0.0.1:9', sign=None, progress=False
        )
    message = str(raised.value)
    assert message.startswith(f'{path} {found}')
    assert 'expected the JSON object of the build parameters' in message
    assert path.read_bytes() == text
    assert not (tmp_path / 'index.csv').exists()


@pytest.mark.parametrize(
    ('data', 'found'),
    [
        ({'version': 1}, 'format None, version 1'),
        (
            {'format': 'torchgeo-satclip/s2-100k-build', 'version': 2},
            "format 'torchgeo-satclip/s2-100k-build', version 2",
        ),
        (
            {'format': 'other/builder', 'version': '1'},
            "format 'other/builder', version '1'",
        ),
    ],
)
def test_from_dict_names_what_it_found(data: dict[str, Any], found: str) -> None:
    """The refusal named what was expected but not the format and version found."""
    with pytest.raises(ValueError, match='configuration') as raised:
        BuildConfig.from_dict(data)
    assert found in str(raised.value)


@pytest.mark.parametrize(
    ('region', 'found'),
    [
        ({'type': 'Feature', 'geometry': REGION}, "a GeoJSON 'Feature'"),
        ({'coordinates': []}, 'a mapping without a GeoJSON type'),
        ('alps.geojson', "'alps.geojson' (type str)"),
    ],
)
def test_region_refusal_names_what_it_found(region: Any, found: str) -> None:
    with pytest.raises(ValueError, match='region must be a GeoJSON') as raised:
        BuildConfig(region=region)
    assert f'not {found}' in str(raised.value)


NAN = float('nan')
SQUARE = [[10.0, 45.0], [11.0, 45.0], [11.0, 46.0], [10.0, 45.0]]


@pytest.mark.parametrize(
    ('region', 'named'),
    [
        ({'type': 'Polygon'}, 'region has no coordinates'),
        ({'type': 'Polygon', 'coordinates': []}, "region's coordinates list no ring"),
        (
            {'type': 'Polygon', 'coordinates': 'x'},
            "region's coordinates must be a list of rings, not 'x'",
        ),
        ({'type': 'Polygon', 'coordinates': [[]]}, 'ring 0 has 0 vertices'),
        (
            {'type': 'Polygon', 'coordinates': [SQUARE, SQUARE[:2]]},
            'ring 1 has 2 vertices',
        ),
        ({'type': 'MultiPolygon', 'coordinates': []}, 'list no polygon'),
        ({'type': 'MultiPolygon', 'coordinates': [[]]}, 'polygon 0 lists no ring'),
        (
            {'type': 'Polygon', 'coordinates': [[*SQUARE[:2], [11.0, NAN], SQUARE[0]]]},
            'ring 0, vertex 2: its latitude is nan',
        ),
        (
            {
                'type': 'MultiPolygon',
                'coordinates': [[SQUARE], [[*SQUARE[:3], [math.inf, 45.0]]]],
            },
            'polygon 1, ring 0, vertex 3: its longitude is inf',
        ),
        (
            {'type': 'Polygon', 'coordinates': [[*SQUARE[:3], ['10', 45.0]]]},
            "ring 0, vertex 3: its longitude is '10'",
        ),
        (
            {'type': 'Polygon', 'coordinates': [[*SQUARE[:3], [True, 45.0]]]},
            'ring 0, vertex 3: its longitude is True',
        ),
        (
            {'type': 'Polygon', 'coordinates': [[*SQUARE[:3], [10.0]]]},
            'ring 0, vertex 3 is [10.0]',
        ),
    ],
)
def test_region_coordinates_checked(region: dict[str, Any], named: str) -> None:
    """Empty or non-finite coordinates are refused when the config is made.

    They were accepted (NaN written to build.json as ``NaN``, not JSON), and
    only building the region refused some of them, without naming the vertex.
    """
    with pytest.raises(ValueError, match='region') as raised:
        BuildConfig(region=region)
    assert named in str(raised.value)


@pytest.mark.parametrize(
    ('ring', 'named'),
    [
        ([[0, 0], [1, 0], [1, 100], [0, 0]], 'lie within'),  # beyond the pole
        ([[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]], 'Self-intersection'),  # bow tie
        ([[-200, 0], [200, 0], [200, 1], [-200, 1], [-200, 0]], 'region:'),
    ],
)
def test_region_geometry_checked_when_the_config_is_made(
    ring: list[Any], named: str
) -> None:
    """A latitude of 100, a bow tie or a polygon wider than 360 degrees
    passed BuildConfig (only the structure and the numbers were checked)
    and failed only when build_dataset read the region."""
    with pytest.raises(ValueError, match=r'^region: ') as raised:
        BuildConfig(region={'type': 'Polygon', 'coordinates': [ring]})
    assert named in str(raised.value)


def test_region_coordinates_kept() -> None:
    """Altitudes, unclosed rings and NumPy numbers are valid coordinates."""
    ring = [[10, 45, 100.0], [np.float32(11.0), 45], [11, np.int64(46)]]
    config = BuildConfig(region={'type': 'Polygon', 'coordinates': [ring]})
    assert config.region is not None
    assert config.region['coordinates'][0][1] == [11.0, 45]
