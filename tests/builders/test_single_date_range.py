"""A single-date build keeps only the items of its date range, whatever the API does.

The searches send *start* and *end*, and the answer was filtered again here
for the footprint and the cloud maximum, but not for the dates: an API that
ignored (or widened) the range gave a build its least cloudy item of any
time, written into a dataset whose ``build.json`` says *start* to *end*. The
windows of a multi-temporal build were filtered already; a single-date
build's range now is too (a date alone is the whole UTC day, as the search
reads it).
"""

import datetime as dt
from pathlib import Path

import pystac
import pytest

from torchgeo_satclip.builders.stac import _period, _within

from .fake_stac import FakeStacServer
from .test_multi_temporal import build_d, item_of
from .test_planetary_computer import index_rows


@pytest.mark.parametrize('honour_datetime', [True, False])
def test_single_date_build_keeps_its_range(
    tmp_path: Path, server: FakeStacServer, honour_datetime: bool
) -> None:
    # Scene D's least cloudy item is S2_D_MAY1 (0.5 %); from mid-June on,
    # the least cloudy below 20 % is S2_D_JUL (12 %).
    server.honour_datetime = honour_datetime
    result = build_d(tmp_path, server, 2, start='2022-06-15', end='2022-12-31')
    assert result.complete
    assert not result.failures
    fns = [row[0] for row in index_rows(tmp_path)]
    assert len(fns) == 2
    assert [item_of(tmp_path, fn) for fn in fns] == ['S2_D_JUL', 'S2_D_JUL']


def dated(name: str, moment: str) -> pystac.Item:
    when = dt.datetime.fromisoformat(moment)
    return pystac.Item(name, None, None, when, {'eo:cloud_cover': 1.0})


def test_range_bounds_are_inclusive_and_in_utc() -> None:
    first = dt.datetime(2022, 6, 1, tzinfo=dt.UTC)
    last = dt.datetime(2022, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
    inside = [
        dated('first', '2022-06-01T00:00:00+00:00'),
        dated('last', '2022-06-30T23:59:59.5+00:00'),
        # 1 July in Paris, 30 June in UTC
        dated('paris', '2022-07-01T01:30:00+02:00'),
    ]
    outside = [
        dated('before', '2022-05-31T23:59:59+00:00'),
        dated('after', '2022-07-01T00:00:00+00:00'),
        # 30 June in New York, 1 July in UTC
        dated('new-york', '2022-06-30T22:00:00-04:00'),
    ]
    for item in inside:
        assert _within(item, first, last), item.id
    for item in outside:
        assert not _within(item, first, last), item.id
    undated = pystac.Item(
        'range',
        None,
        None,
        None,
        {
            'start_datetime': '2022-05-20T00:00:00Z',
            'end_datetime': '2022-06-02T00:00:00Z',
        },
    )
    assert _within(undated, first, last)  # its range overlaps
    undated.properties['end_datetime'] = '2022-05-25T00:00:00Z'
    assert not _within(undated, first, last)


def test_period_of_a_search() -> None:
    assert _period('2022-06-01/2022-06-30') == (
        dt.datetime(2022, 6, 1, tzinfo=dt.UTC),
        dt.datetime(2022, 6, 30, 23, 59, 59, 999999, tzinfo=dt.UTC),
    )
    assert _period('2022-06-01T10:00:00Z/2022-06-02T10:00:00.500000Z') == (
        dt.datetime(2022, 6, 1, 10, tzinfo=dt.UTC),
        dt.datetime(2022, 6, 2, 10, 0, 0, 500000, tzinfo=dt.UTC),
    )
