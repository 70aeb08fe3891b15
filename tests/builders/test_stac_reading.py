import threading
from datetime import datetime
from typing import Any

import pystac
import pytest
import requests
from pystac_client.exceptions import APIError
from rasterio._err import CPLE_HttpResponseError
from rasterio.errors import RasterioIOError

from torchgeo_satclip.builders.reading import (
    _Cancelled,
    _gdal_env,
    _is_transient,
    _Rejected,
    _Retry,
)
from torchgeo_satclip.builders.stac import _covering, _signed

SQUARE = {
    'type': 'Polygon',
    'coordinates': [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]],
}
FAR = {
    'type': 'Polygon',
    'coordinates': [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
}


def item(name: str, cloud: float | None, geometry: Any = SQUARE) -> pystac.Item:
    properties = {} if cloud is None else {'eo:cloud_cover': cloud}
    return pystac.Item(name, geometry, None, datetime(2022, 1, 1), properties)


def test_covering_keeps_least_cloudy_covering_items_first() -> None:
    items = [
        item('cloudy', 30.0),
        item('b', 5.0),
        item('a', 5.0),
        item('clear', 1.0),
        item('elsewhere', 0.0, FAR),
        item('unknown', None),
        item('no-geometry', 2.0, None),
    ]
    kept = _covering(items, 1.0, 1.0, max_cloud_cover=20.0)
    assert [i.id for i in kept] == ['clear', 'no-geometry', 'a', 'b']


def test_cloud_maximum_is_strict() -> None:
    # "below the cloud maximum": an item exactly at it is not kept
    items = [item('at', 20.0), item('below', 19.999)]
    assert [i.id for i in _covering(items, 1.0, 1.0, max_cloud_cover=20.0)] == ['below']


def test_signed_signs_a_copy() -> None:
    original = item('x', 1.0)

    def sign(copy: pystac.Item) -> pystac.Item:
        copy.properties['signed'] = True
        return copy

    assert _signed(original, None) is original
    signed = _signed(original, sign)
    assert signed.properties['signed'] is True
    assert 'signed' not in original.properties


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(response=response)


@pytest.mark.parametrize(
    ('error', 'transient'),
    [
        (APIError('boom'), True),
        (RasterioIOError('HTTP response code: 503'), True),
        # an asset that is not there stays away; an expired signature (403)
        # is signed again on the retry
        (RasterioIOError('HTTP response code: 404'), False),
        (RasterioIOError('HTTP response code on https://x/B02.tif: 410'), False),
        (RasterioIOError('HTTP response code: 403'), True),
        (CPLE_HttpResponseError(11, 1, 'HTTP response code: 404'), False),
        (CPLE_HttpResponseError(11, 1, 'HTTP response code: 502'), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (http_error(503), True),
        (http_error(429), True),
        (http_error(404), False),
        (requests.ConnectionError(), True),
        (ValueError('bad'), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert _is_transient(error) is transient


def test_retry_transient_then_succeed() -> None:
    calls: list[int] = []
    retries: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError('slow')
        return 'ok'

    retry = _Retry(max_retries=3, backoff=0.001, max_backoff=0.001)
    assert retry('flaky', flaky, lambda: retries.append(1)) == 'ok'
    assert len(calls) == 3
    assert len(retries) == 2


def test_retry_gives_up() -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise TimeoutError('slow')

    with pytest.raises(TimeoutError):
        _Retry(max_retries=2, backoff=0.001, max_backoff=0.001)('x', failing)
    assert len(calls) == 3


@pytest.mark.parametrize('error', [ValueError('bad'), _Rejected('nodata')])
def test_retry_final_errors_at_once(error: Exception) -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        _Retry(max_retries=5, backoff=0.001, max_backoff=0.001)('x', failing)
    assert len(calls) == 1


def test_retry_cancelled() -> None:
    stop = threading.Event()
    stop.set()
    retry = _Retry(max_retries=5, backoff=0.001, max_backoff=0.001, stop=stop)
    with pytest.raises(_Cancelled):
        retry('x', lambda: 1)


def test_gdal_env() -> None:
    env = _gdal_env(0.2, {'VSI_CACHE': 'TRUE'})
    assert env['GDAL_HTTP_TIMEOUT'] == '1'
    assert env['VSI_CACHE'] == 'TRUE'
    assert env['GDAL_DISABLE_READDIR_ON_OPEN'] == 'EMPTY_DIR'
    assert _gdal_env(60.4, None)['GDAL_HTTP_TIMEOUT'] == '60'
