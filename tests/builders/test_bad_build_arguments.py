"""Bad build parameters: refused by BuildConfig and build_dataset, before any work.

Generated, table-driven: every parameter gets values of the wrong type and
out of range, as an argument, as a ``build.json`` value (``from_dict``) and
through ``build_dataset``, which must refuse them before it creates the root
or reaches a STAC API.
"""

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_satclip.builders import BuildConfig, build_dataset

#: (parameter, bad value, fragment of the message)
CONFIG: list[tuple[str, Any, str]] = [
    *(('seed', v, 'seed must be an integer') for v in (True, 1.5, '0', None)),
    *(('seed', v, 'seed must be at least 0, got') for v in (-1, -(2**40))),
    *(
        ('max_cloud_cover', v, 'max_cloud_cover must be a percentage in (0, 100]')
        for v in (-5, -5.0, 0, 0.0, 100.5, 1000)
    ),
    *(
        ('max_cloud_cover', v, 'max_cloud_cover must be a real number, got')
        for v in (True, '20', None, [20])
    ),
    *(
        ('max_cloud_cover', v, 'max_cloud_cover must be finite')
        for v in (math.nan, math.inf, 10**400, -(10**400))
    ),
    *(
        ('max_nodata_fraction', v, 'max_nodata_fraction must be in [0, 1)')
        for v in (1, 1.0, -0.1, 5)
    ),
    *(
        ('max_nodata_fraction', v, 'max_nodata_fraction must be')
        for v in (True, '0.1', math.nan, None, 10**400)
    ),
    *(('size', v, 'size must be an integer') for v in (True, 2.5, '256', None)),
    *(('size', v, 'size must be at least 1, got') for v in (0, -256)),
    *(
        ('items_per_point', v, 'items_per_point must be an integer')
        for v in (False, 1.0, '1')
    ),
    *(('items_per_point', v, 'items_per_point must be at least 1') for v in (0, -1)),
    *(
        ('land', v, f'land must be True or False, got {v!r} (type {t})')
        for v, t in ((1, 'int'), (0, 'int'), ('yes', 'str'), (None, 'NoneType'))
    ),
    ('land', np.True_, 'land must be True or False, got np.True_ (type numpy.bool)'),
    *(
        ('collection', v, 'collection must be a STAC collection name')
        for v in ('', None, 3)
    ),
    *(('resampling', v, 'resampling must be') for v in ('mode', 'Nearest', None, 1)),
    *(
        (name, v, f'{name} must be an ISO date like 2021-01-01')
        for name in ('start', 'end')
        for v in (
            '2021-13-01',
            '2021-02-30',
            'yesterday',
            '',
            '01/02/2021',
            None,
            20210101,
        )
    ),
    *(
        ('region', v, 'region must be a GeoJSON Polygon or MultiPolygon geometry')
        for v in (
            {'type': 'Point', 'coordinates': [0, 0]},
            {'type': 'Feature'},
            {},
            [1, 2],
            'x',
        )
    ),
]

#: (start, end): the end before the start.
REVERSED = [
    ('2023-01-01', '2021-01-01'),
    ('2021-01-02', '2021-01-01'),
    ('2021-01-01T12:00:00', '2021-01-01T11:59:59'),
    ('2021-06-01T00:00:00Z', '2021-05-31T23:00:00+00:00'),
    ('2021-06-01T02:00:00+02:00', '2021-05-31T23:00:00Z'),
    ('2021-06-01', '2021-05-31T23:59:59Z'),
    ('2021-01-02T00:00:00Z', '2021-01-01'),
]


def _ids(cases: list[tuple[str, Any, str]]) -> list[str]:
    return [f'{name}={value!r:.40}' for name, value, _ in cases]


@pytest.mark.parametrize(('name', 'value', 'fragment'), CONFIG, ids=_ids(CONFIG))
def test_config_refuses(name: str, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        BuildConfig(**{name: value})


@pytest.mark.parametrize(('name', 'value', 'fragment'), CONFIG, ids=_ids(CONFIG))
def test_build_json_refuses(name: str, value: Any, fragment: str) -> None:
    data = {**BuildConfig().to_dict(), name: value}
    with pytest.raises(ValueError, match=re.escape(fragment)):
        BuildConfig.from_dict(data)


@pytest.mark.parametrize(('start', 'end'), REVERSED)
def test_end_before_start(start: str, end: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f'end {end} is before start {start}')
    ):
        BuildConfig(start=start, end=end)


def test_edges_are_accepted() -> None:
    """The same day, 100 % cloud cover and mixed time zones are valid."""
    BuildConfig(start='2021-01-01', end='2021-01-01', max_cloud_cover=100)
    BuildConfig(start='2021-06-01T02:00:00+02:00', end='2021-06-01T00:00:00Z')
    # an end date alone is the whole day, as the STAC search reads it
    BuildConfig(start='2021-01-01T12:00:00Z', end='2021-01-01')
    BuildConfig(start='2021-01-01T23:59:59.999999', end='2021-01-01')
    BuildConfig(max_nodata_fraction=0, size=1, seed=0)


#: build_dataset's run options: (option, bad value, fragment)
RUN: list[tuple[str, Any, str]] = [
    *(
        ('num_samples', v, 'num_samples must be an integer')
        for v in (True, 2.5, '10', None)
    ),
    ('num_samples', -1, 'num_samples must be at least 0'),
    *(('workers', v, 'workers must be an integer') for v in (True, 1.5, '8')),
    *(('workers', v, 'workers must be at least 1') for v in (0, -2)),
    *(('max_retries', v, 'max_retries must be an integer') for v in (False, 1.5)),
    ('max_retries', -1, 'max_retries must be at least 0'),
    *(
        ('max_candidates', v, 'max_candidates must be an integer')
        for v in (True, 2.5, '4')
    ),
    ('max_candidates', -1, 'max_candidates must be at least 0'),
    *(
        (name, v, f'{name} must be a finite number of seconds >= 0')
        for name in ('backoff', 'max_backoff')
        for v in (-1.0, math.nan, math.inf, True, '1', 10**400)
    ),
    *(
        ('timeout', v, 'timeout must be a finite number of seconds > 0')
        for v in (0, 0.0, -1.0, math.nan, math.inf, True, '60', 10**400)
    ),
    # and the dataset's parameters, through build_dataset
    ('max_cloud_cover', -5.0, 'max_cloud_cover must be a percentage in (0, 100]'),
    ('end', '2020-01-01', 'end 2020-01-01 is before start 2021-01-01'),
    ('size', 0, 'size must be at least 1, got 0'),
    ('seed', -3, 'seed must be at least 0, got -3'),
    # every point failed with a TypeError, logged, and the run ended incomplete
    *(
        ('sign', v, 'sign must be a function that signs an item')
        for v in (True, 'planetary_computer.sign')
    ),
    # failed with AttributeError: 'dict' object has no attribute 'region'
    *(
        ('config', v, 'config must be a BuildConfig')
        for v in (BuildConfig().to_dict(), BuildConfig().to_json(), 'build.json')
    ),
]


@pytest.mark.parametrize(('name', 'value', 'fragment'), RUN, ids=_ids(RUN))
def test_build_dataset_refuses_before_any_work(
    tmp_path: Path, name: str, value: Any, fragment: str
) -> None:
    root = tmp_path / 'dataset'
    kwargs: dict[str, Any] = {'num_samples': 2, name: value}
    num_samples = kwargs.pop('num_samples')
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build_dataset(root, num_samples, api_url='http://127.0.0.1:9', **kwargs)
    assert not root.exists()


#: STAC API URLs that are none: pystac-client read one without a scheme as
#: a local file (every point skipped: FileNotFoundError), and retried another
#: scheme's as a transient error (a minute per point), until max_candidates.
BAD_URLS = [
    'planetarycomputer.microsoft.com/api/stac/v1',
    'ftp://example.com/stac',
    '/tmp/catalog.json',
    '',
    None,
    b'https://planetarycomputer.microsoft.com/api/stac/v1',
]


@pytest.mark.parametrize('url', BAD_URLS, ids=[repr(u) for u in BAD_URLS])
def test_api_url_must_be_http(tmp_path: Path, url: Any) -> None:
    root = tmp_path / 'dataset'
    with pytest.raises(ValueError, match=r'^api_url must be') as raised:
        # no candidate: a regression fails at once instead of retrying
        build_dataset(root, 2, api_url=url, max_candidates=0)
    message = str(raised.value)
    assert message.startswith(
        f'api_url must be an http:// or https:// URL, not {url!r}'
    )
    assert 'https://planetarycomputer.microsoft.com/api/stac/v1' in message
    assert not root.exists()


#: GDAL options that are none: a sequence failed with 'dictionary update
#: sequence element #0 has length 19; 2 is required', a name that is not a
#: string in every read (after the search), naming neither.
BAD_GDAL_ENV = [['GDAL_HTTP_TIMEOUT=5'], 'GDAL_HTTP_TIMEOUT=5', {5: 'x'}]


@pytest.mark.parametrize('options', BAD_GDAL_ENV, ids=[repr(o) for o in BAD_GDAL_ENV])
def test_gdal_env_must_be_a_mapping(tmp_path: Path, options: Any) -> None:
    root = tmp_path / 'dataset'
    with pytest.raises(ValueError, match=r'^gdal_env must be') as raised:
        build_dataset(
            root, 2, api_url='http://127.0.0.1:9', gdal_env=options, max_candidates=0
        )
    assert str(raised.value).startswith(
        'gdal_env must be a mapping of GDAL configuration options (names to '
        f'values, e.g. {{"GDAL_HTTP_TIMEOUT": "30"}}), not {options!r}'
    )
    assert not root.exists()


#: NumPy scalars: accepted as the numbers they hold (from an array, a
#: DataFrame row), and written to build.json as plain JSON numbers.
NUMPY: list[tuple[str, Any]] = [
    ('seed', np.int64(3)),
    ('size', np.int32(128)),
    ('items_per_point', np.uint8(2)),
    ('max_cloud_cover', np.float32(12.5)),
    ('max_nodata_fraction', np.float16(0.25)),
    ('dates', np.int64(2)),
    ('min_dates', np.int64(1)),
]


@pytest.mark.parametrize(('name', 'value'), NUMPY, ids=[n for n, _ in NUMPY])
def test_numpy_numbers_accepted(name: str, value: Any) -> None:
    """A NumPy number was accepted, then build.json could not be written.

    ``json.dumps`` refused it (``TypeError: Object of type int64 is not JSON
    serializable``) once the root was created and locked, and ``dates`` failed
    in ``timedelta`` with a TypeError before any check named it.
    """
    kwargs: dict[str, Any] = {name: value}
    if name in ('dates', 'min_dates'):
        kwargs.update(start='2022-01-01', end='2022-12-31', dates=2)
        kwargs[name] = value
    config = BuildConfig(**kwargs)
    assert type(getattr(config, name)) is type(value.item())
    assert getattr(config, name) == value
    assert BuildConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())[name] == value.item()
