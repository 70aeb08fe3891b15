"""Setup refuses a crop larger than the patches and a batch larger than the data."""

from pathlib import Path

import pytest
import torch

from torchgeo_satclip.datamodules import CachedFeatureDataModule, S2100KDataModule

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'


@pytest.mark.parametrize(
    'datamodule_class', [S2100KDataModule, CachedFeatureDataModule]
)
def test_crop_larger_than_patches(datamodule_class: type, tmp_path: Path) -> None:
    dm = datamodule_class(batch_size=2, crop_size=10_000, root=str(DATA), patch_size=32)
    with pytest.raises(
        ValueError, match=r'crop_size 10000 is larger than the patches \(\d+ x \d+\)'
    ):
        dm.setup('fit')


@pytest.mark.parametrize(
    'datamodule_class', [S2100KDataModule, CachedFeatureDataModule]
)
def test_batch_larger_than_training_split(datamodule_class: type) -> None:
    dm = datamodule_class(batch_size=64, crop_size=None, root=str(DATA), patch_size=32)
    with pytest.raises(
        ValueError,
        match=r'batch_size 64 is larger than the training split \(7 samples\)',
    ):
        dm.setup('fit')
    # validation and prediction do not drop batches
    dm.setup('validate')
    dm.setup('predict')


def test_crop_that_fits() -> None:
    dm = S2100KDataModule(batch_size=2, crop_size=16, root=str(DATA), patch_size=32)
    dm.setup('fit')
    assert dm.train_dataset is not None


def test_b10_needs_the_12_bands() -> None:
    """A band subset with insert_b10: refused at setup, not at the first batch."""
    bands = ('B04', 'B03', 'B02')
    dm = S2100KDataModule(
        batch_size=2, crop_size=None, root=str(DATA), patch_size=32, bands=bands
    )
    with pytest.raises(
        ValueError,
        match=r'insert_b10 needs the 12 S2-100K bands, but the samples have 3 '
        r"\(bands=\('B04', 'B03', 'B02'\)\): pass insert_b10=False",
    ):
        dm.setup('fit')
    dm = S2100KDataModule(
        batch_size=2,
        crop_size=None,
        root=str(DATA),
        patch_size=32,
        bands=bands,
        insert_b10=False,
    )
    dm.setup('fit')
    # a user's own augmentations decide for themselves
    dm = S2100KDataModule(
        batch_size=2, crop_size=None, root=str(DATA), patch_size=32, bands=bands
    )
    dm.train_aug = dm.val_aug = dm.aug = torch.nn.Identity()
    dm.setup('fit')
