"""How much of a STAC API's answer the search reads, by what the API declares.

Scene E has ten cloudy items that the fake server answers first, then the
good one. An API that declares the query and sort extensions is trusted to
filter and sort, and only the first items of its answer are read; another is
read to its last page, so the good item is never cut off.
"""

import warnings
from pathlib import Path
from typing import Any

import pytest
import rasterio
from pystac_client.warnings import DoesNotConformTo

from .fake_stac import ITEMS, FakeStacServer
from .test_planetary_computer import build, index_rows

#: Items of scene E over any of its points: ten cloudy, then S2_E_GOOD.
SCENE_E = [item_id for item_id, (scene, _, _) in ITEMS.items() if scene == 'E']


def searches(server: FakeStacServer) -> list[dict[str, Any]]:
    """The bodies of the searches the server was sent."""
    return [body for m, p, body in server.requests if p == '/stac/search']


def stac_items(root: Path) -> list[str]:
    """The STAC item of every indexed patch."""
    found = []
    for fn, _, _ in index_rows(root):
        with rasterio.open(root / 'images' / fn) as src:
            found.append(src.tags()['stac_item'])
    return found


@pytest.mark.parametrize(
    ('declared', 'pages'),
    [
        (set(), 3),  # 11 items in pages of 4, in the server's order
        ({'query'}, 1),  # the server keeps the good item only
        ({'sort'}, 3),  # sorted, but the cloudy ones still come along
    ],
)
def test_non_conforming_api_read_to_the_last_page(
    tmp_path: Path, server: FakeStacServer, declared: set[str], pages: int
) -> None:
    assert SCENE_E[-1] == 'S2_E_GOOD'
    assert len(SCENE_E) == 11
    server.conforms = set(declared)
    server.honoured = set(declared)  # what the server declares, it does
    server.page_size = 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = build(tmp_path, server, 1, 'E', max_candidates=1)
    assert result.complete, result.rejected
    assert stac_items(tmp_path) == ['S2_E_GOOD']
    bodies = searches(server)
    assert len(bodies) == pages
    assert [body.get('token') for body in bodies] == [None, '4', '8'][:pages]
    for body in bodies:
        assert body['limit'] == 100
        # Only what the API declares is sent, so pystac-client has no warning.
        assert ('query' in body) == ('query' in declared)
        assert ('sortby' in body) == ('sort' in declared)
    assert not [w for w in caught if issubclass(w.category, DoesNotConformTo)]


def test_conforming_api_search_bounded(tmp_path: Path, server: FakeStacServer) -> None:
    # The API declares both extensions (the fake sorts, but keeps the cloudy
    # items): the search stops at its 10 items, though an 11th is on the
    # next page.
    server.honoured = {'sort'}
    server.page_size = 5
    result = build(tmp_path, server, 1, 'E', max_candidates=1)
    assert result.complete, result.rejected
    assert stac_items(tmp_path) == ['S2_E_GOOD']
    bodies = searches(server)
    assert [body.get('token') for body in bodies] == [None, '5']
    for body in bodies:
        assert body['limit'] == 10
        assert body['query'] == {'eo:cloud_cover': {'lt': 20.0}}
        assert body['sortby'] == [{'field': 'eo:cloud_cover', 'direction': 'asc'}]


@pytest.mark.parametrize('honoured', [set(), {'query'}])
def test_declaring_api_that_ignores_its_extensions(
    tmp_path: Path,
    server: FakeStacServer,
    honoured: set[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An API that declares query and sort but ignores them is read to the end.

    Ignoring both, the fake answers ten cloudy items (all above the cloud
    maximum) before the good one: the bounded answer shows it, so the search
    is made again without a bound and the good item is found (it was
    ``no_item`` before). Honouring only the query, the answer is the good item
    alone, not cut: nothing is suspect and nothing is searched again.
    """
    server.honoured = set(honoured)
    server.page_size = 5
    with caplog.at_level('WARNING', logger='torchgeo_satclip'):
        result = build(tmp_path, server, 1, 'E', max_candidates=1)
    assert result.complete, result.rejected
    assert stac_items(tmp_path) == ['S2_E_GOOD']
    bodies = searches(server)
    warned = [r for r in caplog.records if 'read to its last page' in r.message]
    if honoured:
        assert [body['limit'] for body in bodies] == [10]
        assert not warned
    else:
        # two bounded pages of 5, then the whole answer in pages of 5
        assert [body['limit'] for body in bodies] == [10, 10, 100, 100, 100]
        assert [body.get('token') for body in bodies] == [None, '5', None, '5', '10']
        for body in bodies:  # what the API declares is still sent
            assert 'query' in body
            assert 'sortby' in body
        assert len(warned) == 1


def _item(cloud: float | None, index: int = 0) -> Any:
    import datetime as dt

    import pystac

    properties = {} if cloud is None else {'eo:cloud_cover': cloud}
    return pystac.Item(f'i{index}', None, None, dt.datetime(2023, 1, 1), properties)


@pytest.mark.parametrize(
    ('clouds', 'suspect'),
    [
        ([1.0, 2.0, 3.0], False),  # ordered, below the maximum
        ([1.0, 1.0, 30.0], False),  # ordered: the items below all came first
        ([2.0, 1.0, 3.0], True),  # not ordered
        ([25.0, 26.0, 27.0], True),  # none below the maximum
        ([1.0, None, 2.0], True),  # no cloud cover sorts last, not in between
        ([3.0, 2.0], False),  # not cut at the limit: the whole answer
    ],
)
def test_answer_suspect(clouds: list[float | None], suspect: bool) -> None:
    from torchgeo_satclip.builders.stac import _answer_suspect

    items = [_item(cloud, i) for i, cloud in enumerate(clouds)]
    assert _answer_suspect(items, limit=3, max_cloud_cover=20.0) is suspect


@pytest.mark.parametrize('items_per_point', [501, 10_000])
def test_items_per_point_above_a_page_refused(
    tmp_path: Path, server: FakeStacServer, items_per_point: int
) -> None:
    """The search asks for twice items_per_point items in one page.

    The Planetary Computer answers HTTP 400 to a limit above 1000: every
    point failed, logged and skipped, and the run ended incomplete. The
    parameter is refused before any request, naming the bound and why.
    """
    server.max_limit = 1000
    with pytest.raises(
        ValueError, match='items_per_point must be at most 500, got'
    ) as raised:
        build(tmp_path, server, 1, 'E', items_per_point=items_per_point)
    assert f'got {items_per_point}' in str(raised.value)
    assert '1000' in str(raised.value)
    assert not server.requests
    assert not (tmp_path / 'build.json').exists()


def test_most_items_per_point_in_one_page(
    tmp_path: Path, server: FakeStacServer
) -> None:
    server.max_limit = 1000
    server.honoured = {'query', 'sort'}
    result = build(tmp_path, server, 1, 'E', items_per_point=500, max_candidates=1)
    assert result.complete, (result.rejected, result.failures)
    assert [body['limit'] for body in searches(server)] == [1000]
