import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

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
