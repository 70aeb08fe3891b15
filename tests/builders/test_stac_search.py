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
