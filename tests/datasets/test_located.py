import os
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from tests.transforms.test_location import PARIS, write_utm_tif
from torchgeo_satclip.datasets import FileCentroids, file_centroid


def test_file_centroids(tmp_path: Path) -> None:
    places = [PARIS, (9.19, 45.46)]  # Paris (UTM 31N), Milan (UTM 32N)
    paths = []
    for i, (place, epsg) in enumerate(zip(places, (32631, 32632), strict=True)):
        path = tmp_path / f'{i}.tif'
        write_utm_tif(path, place, epsg)
        paths.append(path)
    np.testing.assert_allclose(file_centroid(paths[1]), places[1], atol=1e-6)

    class Files(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
        def __init__(self) -> None:
            self.samples = [(os.fspath(p), 0) for p in paths]

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            return {'label': torch.tensor(index)}

    wrapped = FileCentroids(Files())
    assert len(wrapped) == 2
    assert wrapped.samples[0][1] == 0  # attributes fall through
    np.testing.assert_allclose(wrapped[1]['point'].numpy(), places[1], atol=1e-4)
    # float64 as S2100K's points: float32 would move a point by up to 1.7 m
    assert wrapped[1]['point'].dtype == torch.float64
    np.testing.assert_array_equal(
        wrapped[1]['point'].numpy(), np.asarray(file_centroid(paths[1]))
    )
    with pytest.raises(
        ValueError, match='paths has 1 entries for a dataset of 2 samples'
    ):
        FileCentroids(Files(), paths=paths[:1])
    plain = tmp_path / 'plain.tif'
    with rasterio.open(
        plain, 'w', driver='GTiff', width=2, height=2, count=1, dtype='uint8'
    ) as dst:
        dst.write(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match='not georeferenced'):
        file_centroid(plain)


def write_two_by_two(
    path: Path, crs: str, left: float, top: float, size: float
) -> Path:
    """Write a 2 x 2 uint8 GeoTIFF whose top-left corner is (left, top)."""
    with rasterio.open(
        path,
        'w',
        driver='GTiff',
        width=2,
        height=2,
        count=1,
        dtype='uint8',
        crs=crs,
        transform=from_origin(left, top, size, size),
    ) as dst:
        dst.write(np.zeros((1, 2, 2), np.uint8))
    return path


@pytest.mark.parametrize(
    ('crs', 'left', 'centre'),
    [
        # a UTM file's header labelled EPSG:4326: its longitude was wrapped
        # to 170 and its latitude given as 5,419,990 degrees
        ('EPSG:4326', 448000.0, '(448010.0, 5419990.0)'),
        # far outside the projection's domain: (nan, inf)
        ('EPSG:32631', 4.48e8, '(448000010.0, 5419990.0)'),
    ],
    ids=['metres as degrees', 'outside the domain'],
)
def test_centre_that_is_no_place_names_the_file(
    tmp_path: Path, crs: str, left: float, centre: str
) -> None:
    """A file whose header puts its centre off the Earth gave a wrapped or
    non-finite point in silence; the task then named only a row of a
    (shuffled) batch, never the file."""
    path = write_two_by_two(tmp_path / 'bad.tif', crs, left, 5420000.0, 10.0)
    message = (
        f'{path}: the centre of its bounds, {centre} in {crs}, is not a place on Earth'
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        file_centroid(path)


@pytest.mark.parametrize(
    ('crs', 'left', 'top', 'expected'),
    [
        ('EPSG:4326', 179.5, -16.0, (-179.5, -17.0)),  # across the antimeridian
        ('EPSG:32733', 499000.0, 7001000.0, (15.0, -27.12)),  # UTM 33S
    ],
    ids=['antimeridian', 'utm south'],
)
def test_centroids_that_are_places(
    tmp_path: Path, crs: str, left: float, top: float, expected: tuple[float, float]
) -> None:
    """The check of the centre keeps a longitude a whole turn away (181.5 is
    -178.5) and a southern UTM zone's false northing."""
    size = 1.0 if crs == 'EPSG:4326' else 1000.0  # 2 px: 2 degrees or 2 km
    path = write_two_by_two(tmp_path / 'good.tif', crs, left, top, size)
    np.testing.assert_allclose(file_centroid(path), expected, atol=0.01)
