from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch import Tensor
from torchgeo.datamodules.eurosat import MEAN, STD
from torchgeo.datasets import EuroSAT
from torchgeo.models import ResNet18_Weights

from torchgeo_satclip.datamodules import EuroSATLocationDataModule
from torchgeo_satclip.datasets.located import FileCentroids

ROOT = Path(__file__).parents[1] / 'data' / 'eurosat'

#: SatCLIP's 13-band layout (SSL4EO-S12 L1C, which its backbones expect).
SATCLIP_ORDER = (
    'B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07',
    'B08', 'B8A', 'B09', 'B10', 'B11', 'B12',
)  # fmt: skip


def _first_sample(datamodule: EuroSATLocationDataModule) -> tuple[Tensor, Tensor]:
    """The first training image, and its file's bands in the file's order."""
    datamodule.setup('fit')
    dataset = datamodule.train_dataset
    assert isinstance(dataset, FileCentroids)
    with rasterio.open(dataset.paths[0]) as src:
        raw = torch.from_numpy(src.read().astype(np.float32))
    return dataset[0]['image'], raw


def test_bands_in_satclip_order() -> None:
    """EuroSAT's files keep B8A last; SatCLIP's backbones want it after B08."""
    assert EuroSAT.all_band_names[-1] == 'B8A'  # the files' order
    weights = ResNet18_Weights.SENTINEL2_ALL_MOCO.meta['bands']
    assert tuple(f'B{band[1:].upper():0>2}' for band in weights) == SATCLIP_ORDER
    datamodule = EuroSATLocationDataModule(batch_size=2, root=str(ROOT))
    image, raw = _first_sample(datamodule)
    expected = [EuroSAT.all_band_names.index(band) for band in SATCLIP_ORDER]
    assert torch.equal(image, raw[expected])
    assert torch.equal(image[8], raw[12])  # B8A
    # the normalization follows the bands
    assert torch.equal(datamodule.mean, torch.tensor([MEAN[b] for b in SATCLIP_ORDER]))
    assert torch.equal(datamodule.std, torch.tensor([STD[b] for b in SATCLIP_ORDER]))


@pytest.mark.parametrize('bands', [EuroSAT.all_band_names, ('B04', 'B03', 'B02')])
def test_bands_given_are_kept(bands: tuple[str, ...]) -> None:
    datamodule = EuroSATLocationDataModule(batch_size=2, root=str(ROOT), bands=bands)
    image, raw = _first_sample(datamodule)
    expected = [EuroSAT.all_band_names.index(band) for band in bands]
    assert torch.equal(image, raw[expected])
    assert torch.equal(datamodule.mean, torch.tensor([MEAN[b] for b in bands]))
