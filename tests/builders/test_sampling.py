import numpy as np
import pytest
from global_land_mask import globe

from torchgeo_satclip.builders import Region, sample_points

BOX = {
    'type': 'Polygon',
    'coordinates': [
        [[5.0, 45.0], [10.0, 45.0], [10.0, 48.0], [5.0, 48.0], [5.0, 45.0]]
    ],
}


def test_seeded_and_prefix_stable() -> None:
    a = sample_points(50, seed=3)
    np.testing.assert_array_equal(a, sample_points(50, seed=3))
    np.testing.assert_array_equal(a[:20], sample_points(20, seed=3))
    assert not np.array_equal(a, sample_points(50, seed=4))


def test_land() -> None:
    points = sample_points(300, seed=0)
    assert points.shape == (300, 2)
    assert globe.is_land(points[:, 1], points[:, 0]).all()
    assert (np.abs(points[:, 0]) <= 180).all()
    assert (np.abs(points[:, 1]) <= 90).all()


def test_uniform_on_the_sphere() -> None:
    points = sample_points(4000, seed=0, land=False)
    sin_lat = np.sin(np.radians(points[:, 1]))
    # Uniform on the sphere: sin(lat) and lon are uniform.
    assert abs(sin_lat.mean()) < 0.05
    assert abs(np.mean(np.abs(sin_lat) < 0.5) - 0.5) < 0.05
    assert abs(np.mean(points[:, 0] > 0) - 0.5) < 0.05


def test_region() -> None:
    region = Region(
        {
            'type': 'FeatureCollection',
            'features': [{'type': 'Feature', 'geometry': BOX, 'properties': {}}],
        }
    )
    points = sample_points(200, seed=1, region=region)
    assert region.contains(points[:, 0], points[:, 1]).all()
    assert (points[:, 0] >= 5).all()
    assert (points[:, 0] <= 10).all()
    assert globe.is_land(points[:, 1], points[:, 0]).all()


def test_region_file(tmp_path) -> None:
    import json

    path = tmp_path / 'r.geojson'
    path.write_text(json.dumps({'type': 'Feature', 'geometry': BOX}))
    assert Region.from_file(path).bounds == (5.0, 45.0, 10.0, 48.0)


def test_invalid() -> None:
    with pytest.raises(ValueError, match='Polygons'):
        Region({'type': 'Point', 'coordinates': [0, 0]})
    with pytest.raises(ValueError, match='antimeridian'):
        Region(
            {
                'type': 'Polygon',
                'coordinates': [[[170, 0], [190, 0], [190, 5], [170, 0]]],
            }
        )
    with pytest.raises(ValueError, match='num_points'):
        sample_points(-1)
    ocean = Region(
        {
            'type': 'Polygon',
            'coordinates': [[[-30, -10], [-29, -10], [-29, -9], [-30, -10]]],
        }
    )
    with pytest.raises(ValueError, match='land'):
        sample_points(1, region=ocean)
