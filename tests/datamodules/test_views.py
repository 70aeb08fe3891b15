"""Two views per sample and MoCo-v2's aug-plus in S2100KDataModule."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import kornia.augmentation as K
import pytest
import torch

from torchgeo_satclip.datamodules import S2100KAugmentation, S2100KDataModule
from torchgeo_satclip.datamodules.s2_100k import (
    RandomBandMean,
    RandomBrightnessContrast,
    moco_image_ops,
)

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
TRAIN = SimpleNamespace(training=True)
VAL = SimpleNamespace(training=False, validating=True, sanity_checking=False)


def datamodule(**kwargs: Any) -> S2100KDataModule:
    dm = S2100KDataModule(
        batch_size=4, crop_size=16, root=str(DATA), patch_size=32, **kwargs
    )
    dm.setup('fit')
    return dm


def test_views_2_duplicates_and_augments_each_view() -> None:
    dm = datamodule(views=2, augmentation='moco')
    batch = next(iter(dm.train_dataloader()))
    assert batch['image'].shape == (4, 12, 32, 32)  # copied on the device
    dm.trainer = TRAIN  # type: ignore[assignment]
    torch.manual_seed(0)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert out['image'].shape == (4, 2, 13, 16, 16)
    assert out['point'].shape == (4, 2)
    # independent random draws: the two views of a sample differ
    assert not torch.equal(out['image'][:, 0], out['image'][:, 1])
    # validation: centre crops of the same image, identical views
    dm.trainer = VAL  # type: ignore[assignment]
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert out['image'].shape == (4, 2, 13, 16, 16)
    assert torch.equal(out['image'][:, 0], out['image'][:, 1])
    assert dm.val_aug is not None
    center = dm.val_aug({'image': batch['image']})['image']
    assert torch.equal(out['image'][:, 0], center)


def test_views_1_keeps_single_images() -> None:
    dm = datamodule()
    batch = next(iter(dm.train_dataloader()))
    dm.trainer = TRAIN  # type: ignore[assignment]
    assert dm.on_after_batch_transfer(batch, 0)['image'].shape == (4, 13, 16, 16)


def test_view_batches_keep_each_view_in_place() -> None:
    """A (B, V, C, H, W) batch (two dates) is augmented view by view, unmixed."""
    values = torch.arange(6, dtype=torch.float32).reshape(3, 2, 1, 1, 1) * 100 + 100
    image = values.expand(3, 2, 12, 8, 8).to(torch.int32)
    aug = S2100KAugmentation(crop_size=4, random=False)
    out = aug({'image': image, 'date': torch.zeros(3, 2)})['image']
    assert out.shape == (3, 2, 13, 4, 4)
    for b in range(3):
        for v in range(2):
            view = out[b, v]
            assert torch.all(view[10] == 0)  # the inserted B10
            others = torch.cat([view[:10], view[11:]])
            assert torch.all(others == values[b, v].item() / 10000)
    # two views of one sample with one random pipeline get different draws
    torch.manual_seed(0)
    random_out = S2100KAugmentation(crop_size=4, augmentation='moco')(
        {'image': torch.rand(3, 2, 12, 8, 8) * 10000}
    )['image']
    assert random_out.shape == (3, 2, 13, 4, 4)


def test_moco_ops() -> None:
    ops = moco_image_ops(224)
    assert [type(op) for op in ops] == [
        K.RandomResizedCrop,
        RandomBrightnessContrast,
        RandomBandMean,
        K.RandomGaussianBlur,
        K.RandomHorizontalFlip,
    ]
    assert cast(K.RandomResizedCrop, ops[0]).flags['size'] == (224, 224)
    assert cast(K.RandomGaussianBlur, ops[3]).flags['kernel_size'] == (23, 23)
    blur = cast(K.RandomGaussianBlur, moco_image_ops(16)[3])
    assert blur.flags['kernel_size'] == (3, 3)
    aug = S2100KAugmentation(crop_size=16, augmentation='moco')
    assert [type(op) for op in aug.image_ops] == [type(op) for op in moco_image_ops(16)]
    # deterministic (validation) transforms centre-crop either way
    val = S2100KAugmentation(crop_size=16, augmentation='moco', random=False)
    assert [type(op) for op in val.image_ops] == [K.CenterCrop]


def test_band_mean() -> None:
    image = torch.rand(5, 13, 4, 4)
    gray = RandomBandMean(p=1.0)(image)
    assert torch.allclose(gray, image.mean(dim=1, keepdim=True).expand_as(image))
    assert torch.equal(RandomBandMean(p=0.0)(image), image)


def test_brightness_contrast() -> None:
    image = torch.rand(5, 13, 4, 4)
    assert torch.equal(RandomBrightnessContrast(0.4, 0.4, p=0.0)(image), image)
    assert torch.allclose(RandomBrightnessContrast(0.0, 0.0, p=1.0)(image), image)
    # contrast alone keeps each image's mean; brightness alone scales it
    contrast = RandomBrightnessContrast(0.0, 0.4, p=1.0)(image)
    torch.testing.assert_close(contrast.mean(dim=(1, 2, 3)), image.mean(dim=(1, 2, 3)))
    bright = RandomBrightnessContrast(0.4, 0.0, p=1.0)(image)
    ratio = bright / image
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-4)
    assert bool(((ratio[:, 0, 0, 0] >= 0.6) & (ratio[:, 0, 0, 0] <= 1.4)).all())
    # nothing is clipped: reflectances above 1 survive
    assert RandomBrightnessContrast(0.4, 0.4, p=1.0)(image + 5).max() > 1


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'views': 3}, 'views must be 1 or 2'),
        ({'augmentation': 'simclr'}, "augmentation must be 'satclip' or 'moco'"),
        ({'augmentation': 'moco', 'crop_size': None}, 'needs a crop_size'),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S2100KDataModule(root=str(DATA), **kwargs)  # type: ignore[arg-type]


def test_invalid_jitter_arguments() -> None:
    with pytest.raises(ValueError, match='in \\[0, 1\\]'):
        RandomBrightnessContrast(1.5)
    with pytest.raises(ValueError, match='in \\[0, 1\\]'):
        RandomBandMean(p=2.0)
