from pathlib import Path

import numpy as np
import pytest

from torchgeo_satclip.models import build_location_encoder
from torchgeo_satclip.workflows import embed_points, nearest_neighbours


@pytest.fixture
def points(tmp_path: Path) -> Path:
    path = tmp_path / 'points.csv'
    path.write_text(
        'name,lon,lat\nParis,2.35,48.86\nLondon,-0.13,51.51\nSydney,151.2,-33.87\n'
    )
    return path


def test_embed_points(points: Path, tmp_path: Path) -> None:
    out = tmp_path / 'emb.npy'
    result = embed_points(
        points, out, legendre_polys=3, seed=1, progress=False, neighbours=True
    )
    assert result.written.num_points == 3
    assert result.neighbours is not None
    assert [n.name for n in result.neighbours] == ['Paris', 'London', 'Sydney']
    assert result.neighbours[0].nearest == 'London'
    again = embed_points(points, out, legendre_polys=3, seed=1, overwrite=True)
    assert again.neighbours is None  # not asked for
    first = np.load(out)
    embed_points(points, out, legendre_polys=3, seed=1, overwrite=True)
    np.testing.assert_array_equal(np.load(out), first)  # seeded


def test_nearest_neighbours(points: Path, tmp_path: Path) -> None:
    encoder = build_location_encoder(legendre_polys=3)
    found = nearest_neighbours(encoder, points)
    assert found is not None
    assert all(-1 <= n.similarity <= 1 for n in found)
    assert nearest_neighbours(encoder, points, max_points=2) is None
    unnamed = tmp_path / 'unnamed.csv'
    unnamed.write_text('x,y\n1,2\n3,4\n')
    found = nearest_neighbours(encoder, unnamed, 'x', 'y')
    assert found is not None
    assert [(n.name, n.nearest) for n in found] == [('0', '1'), ('1', '0')]
