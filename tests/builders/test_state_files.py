"""What the state says of the files of a root it cannot use.

Every file of the root is created whole (its header included, under a
temporary name, then renamed), so an empty or re-headed ``index.csv``,
``rejected.csv`` or ``dates.csv`` never comes from a killed build: it is
refused, naming the file, what it starts with and the header expected.
A root built with other parameters is refused naming what differs, compactly.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from torchgeo_satclip.builders import BuildConfig
from torchgeo_satclip.builders._state import BuildState

MULTI = BuildConfig(start='2022-01-01', end='2022-12-31', dates=2)


@pytest.mark.parametrize('name', ['index.csv', 'rejected.csv', 'dates.csv'])
@pytest.mark.parametrize(
    ('text', 'found'),
    [
        (b'file,x,y\npatch_0.tif,1,2\n', "starts with 'file,x,y'"),
        (b'', 'is empty'),
        (b'\n', "starts with ''"),
        (b'\xff\xfefn,lon,lat\n', "is not text ('utf-8' codec can't decode"),
    ],
)
def test_bad_header_names_file_and_what_it_found(
    tmp_path: Path, name: str, text: bytes, found: str
) -> None:
    config = MULTI if name == 'dates.csv' else BuildConfig()
    with BuildState(tmp_path, config):
        pass
    path = tmp_path / name
    path.write_bytes(text)
    with pytest.raises(ValueError, match='expected the header') as raised:
        BuildState(tmp_path, config).open()
    message = str(raised.value)
    assert str(path) in message
    assert found in message
    assert path.read_bytes() == text  # left as it was
    # The lock was released: the repaired root opens.
    path.unlink()
    with BuildState(tmp_path, config):
        pass


def polygon(vertices: int, west: float = 10.0) -> dict[str, Any]:
    """A polygon of *vertices* vertices (its ring closed), near (west, 45)."""
    # a zigzag top edge above 45.0001, then one vertex at (east, 45): a simple
    # polygon (BuildConfig refuses a self-intersecting one)
    top = [[west + 0.001 * i, 45.0001 + 0.0001 * (i % 6)] for i in range(vertices - 1)]
    ring = [*top, [west + 0.001 * (vertices - 1), 45.0]]
    return {'type': 'Polygon', 'coordinates': [[*ring, ring[0]]]}


def test_other_region_described_compactly(tmp_path: Path) -> None:
    saved = BuildConfig(region=polygon(2000), land=False)
    with BuildState(tmp_path, saved):
        pass
    other = BuildConfig(region=polygon(3000, west=11.0), land=False)
    with pytest.raises(ValueError, match='other parameters') as raised:
        BuildState(tmp_path, other).open()
    message = str(raised.value)
    assert len(message) < 600, message
    assert 'region: Polygon of 2001 vertices' in message
    assert '-> Polygon of 3001 vertices' in message
    assert 'bounds (10, 45, 11.999, 45.0006)' in message
    assert 'bounds (11, 45, 13.999, 45.0006)' in message


def test_regions_alike_but_one_vertex_told_apart(tmp_path: Path) -> None:
    region = polygon(50)
    with BuildState(tmp_path, BuildConfig(region=region, land=False)):
        pass
    moved = json.loads(json.dumps(region))
    moved['coordinates'][0][20][1] += 1e-7  # same type, count and bounds
    with pytest.raises(ValueError, match='other parameters') as raised:
        BuildState(tmp_path, BuildConfig(region=moved, land=False)).open()
    message = str(raised.value)
    assert message.count('Polygon of 51 vertices') == 2
    assert message.count('sha256 ') == 2
    hashes = [part.split()[0] for part in message.split('sha256 ')[1:]]
    assert hashes[0] != hashes[1]


def test_region_against_none_and_hand_edited(tmp_path: Path) -> None:
    with BuildState(tmp_path, BuildConfig(region=polygon(500), land=False)):
        pass
    with pytest.raises(ValueError, match='other parameters') as raised:
        BuildState(tmp_path, BuildConfig(land=False)).open()
    message = str(raised.value)
    assert 'region: Polygon of 501 vertices' in message
    assert message.endswith(
        '-> None); resume with the same ones, or build into another directory'
    )
    # A build.json whose region was edited by hand into something else.
    data = json.loads((tmp_path / 'build.json').read_text())
    data['region'] = {'type': 'Polygon', 'coordinates': 'x' * 5000}
    (tmp_path / 'build.json').write_text(json.dumps(data))
    with pytest.raises(ValueError, match='other parameters') as raised:
        BuildState(tmp_path, BuildConfig(land=False)).open()
    assert len(str(raised.value)) < 600
