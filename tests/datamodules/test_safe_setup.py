"""Setup refuses a crop larger than the patches and a batch larger than the data."""

from pathlib import Path

import pytest

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
