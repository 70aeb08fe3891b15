"""Every start and end the configuration accepts is a date range STAC searches take.

``BuildConfig`` accepts the ISO 8601 dates Python reads (``20210101``,
``2021-01-01T10:00``, ``2021-01-01 10:00:00``, week dates); pystac-client
takes only ``YYYY-MM-DD`` or a date and a time to the second, and refused
every search of a build given another form (``invalid datetime component``),
so each point was skipped as a failure. The searches now send the same
moments in the forms it takes.
"""

from pathlib import Path

import pytest
from pystac_client.item_search import ItemSearch

from torchgeo_satclip.builders import BuildConfig

from .fake_stac import FakeStacServer
from .test_planetary_computer import build, index_rows


def sent(config: BuildConfig) -> str:
    """The ``datetime`` pystac-client sends for a single-date build's search."""
    search = ItemSearch(
        url='http://127.0.0.1:9/search', datetime=config.stac_datetime(), client=None
    )
    return str(search.get_parameters()['datetime'])


@pytest.mark.parametrize(
    ('start', 'end', 'interval'),
    [
        # the forms pystac-client takes, as they were
        ('2021-01-01', '2023-05-17', '2021-01-01T00:00:00Z/2023-05-17T23:59:59Z'),
        (
            '2021-01-01T10:00:00Z',
            '2021-01-02T10:00:00.5Z',
            '2021-01-01T10:00:00Z/2021-01-02T10:00:00.500000Z',
        ),
        # other ISO 8601 forms: the same days, the same moments
        ('20210101', '20230517', '2021-01-01T00:00:00Z/2023-05-17T23:59:59Z'),
        ('2021-W01-1', '2021-W02-7', '2021-01-04T00:00:00Z/2021-01-17T23:59:59Z'),
        (
            '2021-01-01T10:00',
            '2021-01-01 12:30:00',
            '2021-01-01T10:00:00Z/2021-01-01T12:30:00Z',
        ),
        (
            '2021-06-01T02:00:00+02:00',
            '2021-06-01T10+0100',
            '2021-06-01T00:00:00Z/2021-06-01T09:00:00Z',
        ),
    ],
)
def test_search_takes_every_accepted_date(start: str, end: str, interval: str) -> None:
    config = BuildConfig(start=start, end=end)
    assert sent(config) == interval
    # build.json keeps the dates as given
    assert (config.to_dict()['start'], config.to_dict()['end']) == (start, end)


def test_build_with_a_compact_date(tmp_path: Path, server: FakeStacServer) -> None:
    result = build(tmp_path, server, 2, 'A', start='20210101', end='20230517')
    assert not result.failures
    assert result.complete
    assert len(index_rows(tmp_path)) == 2
    searches = [body for m, p, body in server.requests if p == '/stac/search']
    assert searches
    assert all(
        body['datetime'] == '2021-01-01T00:00:00Z/2023-05-17T23:59:59Z'
        for body in searches
    )
