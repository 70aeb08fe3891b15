import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

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
    datamodule = EuroSATLocationDataModule(
        batch_size=2, root=str(ROOT), normalization='statistics'
    )
    image, raw = _first_sample(datamodule)
    expected = [EuroSAT.all_band_names.index(band) for band in SATCLIP_ORDER]
    assert torch.equal(image, raw[expected])
    assert torch.equal(image[8], raw[12])  # B8A
    # the normalization follows the bands
    assert torch.equal(datamodule.mean, torch.tensor([MEAN[b] for b in SATCLIP_ORDER]))
    assert torch.equal(datamodule.std, torch.tensor([STD[b] for b in SATCLIP_ORDER]))


@pytest.mark.parametrize('bands', [EuroSAT.all_band_names, ('B04', 'B03', 'B02')])
def test_bands_given_are_kept(bands: tuple[str, ...]) -> None:
    datamodule = EuroSATLocationDataModule(
        batch_size=2, root=str(ROOT), bands=bands, normalization='statistics'
    )
    image, raw = _first_sample(datamodule)
    expected = [EuroSAT.all_band_names.index(band) for band in bands]
    assert torch.equal(image, raw[expected])
    assert torch.equal(datamodule.mean, torch.tensor([MEAN[b] for b in bands]))


def _normalized_batch(datamodule: EuroSATLocationDataModule) -> tuple[Tensor, Tensor]:
    """A training batch as the task gets it, and the same images unnormalized."""
    datamodule.setup('fit')
    batch = next(iter(datamodule.train_dataloader()))
    raw = batch['image'].clone()
    datamodule.trainer = cast(Any, SimpleNamespace(training=True))  # read by the hook
    out = datamodule.on_after_batch_transfer(batch, 0)
    assert torch.equal(out['point'], batch['point'])
    return out['image'], raw


def test_default_normalization_is_the_backbones_reflectance() -> None:
    """The SENTINEL2_ALL_MOCO weights SatCLIP's image encoders start from were
    trained on reflectances divided by 10,000 (TorchGeo's own transforms of
    those weights, and SatCLIP's recipe); the datamodule gave them TorchGeo's
    EuroSAT per-band standardization, inputs of another scale entirely."""
    weights = ResNet18_Weights.SENTINEL2_ALL_MOCO
    reference = weights.transforms[-1]  # torchvision Normalize(mean=[0], std=[10000])
    assert (list(reference.mean), list(reference.std)) == ([0], [10000])
    datamodule = EuroSATLocationDataModule(batch_size=2, root=str(ROOT))
    image, raw = _normalized_batch(datamodule)
    torch.testing.assert_close(image, raw / 10000)
    assert torch.equal(datamodule.mean, torch.zeros(13))
    assert torch.equal(datamodule.std, torch.full((13,), 10000.0))
    explicit = EuroSATLocationDataModule(
        batch_size=2, root=str(ROOT), normalization='reflectance'
    )
    image, raw = _normalized_batch(explicit)
    torch.testing.assert_close(image, raw / 10000)


def test_band_statistics_normalization_on_request() -> None:
    bands = ('B04', 'B03', 'B02')
    datamodule = EuroSATLocationDataModule(
        batch_size=2, root=str(ROOT), bands=bands, normalization='statistics'
    )
    image, raw = _normalized_batch(datamodule)
    mean = torch.tensor([MEAN[b] for b in bands]).view(1, 3, 1, 1)
    std = torch.tensor([STD[b] for b in bands]).view(1, 3, 1, 1)
    torch.testing.assert_close(image, (raw - mean) / std)


@pytest.mark.parametrize('value', ['10000', 'per_band', None, 1])
def test_unknown_normalization_is_refused(value: Any) -> None:
    message = (
        "normalization must be 'reflectance' (divide by 10,000) or 'statistics' "
        f"(EuroSAT's per-band mean and std), got {value!r}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        EuroSATLocationDataModule(root=str(ROOT), normalization=value)


def test_shipped_config_states_its_normalization() -> None:
    """The recipe with SENTINEL2_ALL_MOCO weights names the matching input."""
    import yaml

    config = yaml.safe_load(
        Path('configs', 'eurosat_location.yaml').read_text(encoding='utf-8')
    )
    assert config['model']['init_args']['weights'].endswith('SENTINEL2_ALL_MOCO')
    assert config['data']['init_args']['normalization'] == 'reflectance'


def test_dataset_transforms_see_the_location() -> None:
    """EuroSAT applied a transforms= given to the datamodule before the
    location was added: a LocationEmbedding (docs/geodataset.md: 'as a dataset
    transforms= argument') failed at the first sample with 'the sample has no
    location'. It is applied once, after 'point' is added, in every split."""
    from torchgeo_satclip.datasets.located import file_centroid
    from torchgeo_satclip.transforms import LocationEmbedding

    embed = LocationEmbedding(None, allow_random=True)
    seen: list[set[str]] = []

    def transforms(sample: dict[str, Any]) -> dict[str, Any]:
        seen.append(set(sample))
        out: dict[str, Any] = embed(sample)
        return out

    datamodule = EuroSATLocationDataModule(
        batch_size=2, root=str(ROOT), transforms=transforms
    )
    datamodule.setup('fit')
    datamodule.setup('test')
    for name in ('train_dataset', 'val_dataset', 'test_dataset'):
        dataset = getattr(datamodule, name)
        assert isinstance(dataset, FileCentroids)
        for index in (0, len(dataset) - 1):
            seen.clear()
            sample = dataset[index]
            assert seen == [{'image', 'label', 'point'}]  # once, with the point
            point = torch.tensor(
                file_centroid(dataset.paths[index]), dtype=torch.float64
            )
            assert torch.equal(sample['point'], point)
            expected = embed({'point': point})['location_embedding']
            assert torch.equal(sample['location_embedding'], expected)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch['location_embedding'].shape == (2, embed.encoder.embed_dim)
