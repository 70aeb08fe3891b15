"""A user's own augmentation or dataset transform gets TorchGeo's float images.

The datamodule reads uint16 batches (the stored values) for speed, but that is
its own business: TorchGeo's datasets give float32 images, and a kornia
pipeline put in ``train_aug``/``aug`` (``K.Normalize``, arithmetic) or a
dataset ``transforms`` fails on uint16 tensors. Reported by a review: every
one of those raised on the first batch.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kornia.augmentation as K
import pytest
import torch
from torch import Tensor

from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.datasets import S2100K, pack_s2_100k

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
REAL = DATA / 'real'


@pytest.fixture(scope='module')
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three real 256 x 256 patches, packed."""
    root = tmp_path_factory.mktemp('user_aug') / 's2_100k'
    shutil.copytree(REAL, root, ignore=shutil.ignore_patterns('data.py'))
    pack_s2_100k(root, progress=False)
    return root


def training(dm: S2100KDataModule) -> None:
    dm.trainer = SimpleNamespace(training=True)  # type: ignore[assignment]


@pytest.mark.parametrize('layout', ['packed', 'geotiff'])
def test_user_train_aug_gets_float_images(root: Path, layout: str) -> None:
    dm = S2100KDataModule(
        batch_size=3, root=root, layout=layout, val_split_pct=0.0, num_workers=0
    )
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert batch['image'].dtype == torch.uint16  # read as stored
    seen: dict[str, Any] = {}
    normalize = K.AugmentationSequential(
        K.Normalize(mean=torch.full((12,), 1000.0), std=torch.full((12,), 500.0)),
        data_keys=None,
    )

    def own(sample: dict[str, Tensor]) -> dict[str, Tensor]:
        seen['dtype'] = sample['image'].dtype
        seen['mean'] = sample['image'].mean()  # fails on uint16
        return normalize(sample)  # type: ignore[no-any-return]

    dm.train_aug = own  # type: ignore[assignment]
    training(dm)
    out = dm.on_after_batch_transfer(batch, 0)
    assert seen['dtype'] == torch.float32
    reference = S2100K(root, layout='geotiff')  # TorchGeo's float32 samples
    expected = torch.stack([reference[i]['image'] for i in range(3)])
    order = [
        next(i for i in range(3) if torch.equal(reference[i]['point'], p))
        for p in batch['point']
    ]
    assert torch.equal(out['image'], (expected[order] - 1000.0) / 500.0)
    assert torch.isclose(seen['mean'], expected.mean(), rtol=1e-6)


def test_own_aug_of_two_views(root: Path) -> None:
    dm = S2100KDataModule(batch_size=3, root=root, views=2, val_split_pct=0.0)
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    dm.train_aug = lambda b: {**b, 'image': b['image'] - 5}  # type: ignore[assignment]
    training(dm)
    out = dm.on_after_batch_transfer(batch, 0)
    assert out['image'].dtype == torch.float32
    assert out['image'].shape == (3, 2, 12, 256, 256)
    assert torch.equal(out['image'][:, 0], batch['image'].float() - 5)


def test_the_default_augmentation_is_unchanged(root: Path) -> None:
    """Float32 first, then the package's own augmentation: the same values."""
    dm = S2100KDataModule(batch_size=3, root=root, val_split_pct=0.0)
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    dm.trainer = SimpleNamespace(  # type: ignore[assignment]
        training=False,
        validating=False,
        sanity_checking=False,
        testing=False,
        predicting=True,
    )
    out = dm.on_after_batch_transfer(batch, 0)
    direct = dm.aug(batch)  # type: ignore[misc]  # uint16 straight in
    assert torch.equal(out['image'], direct['image'])


def test_dataset_transforms_get_float_samples(root: Path) -> None:
    seen: list[torch.dtype] = []

    def transform(sample: dict[str, Tensor]) -> dict[str, Tensor]:
        seen.append(sample['image'].dtype)
        return {**sample, 'image': sample['image'] - 5}  # fails on uint16

    dm = S2100KDataModule(
        batch_size=3, root=root, val_split_pct=0.0, transforms=transform
    )
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert set(seen) == {torch.float32}
    assert batch['image'].dtype == torch.float32
    # Without transforms the fast uint16 path stays the default.
    plain = S2100KDataModule(batch_size=3, root=root, val_split_pct=0.0)
    plain.setup('fit')
    assert next(iter(plain.train_dataloader()))['image'].dtype == torch.uint16
