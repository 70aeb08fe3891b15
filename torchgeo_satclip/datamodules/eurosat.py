"""EuroSAT with each sample's location: TorchGeo's datamodule, wrapped."""

from typing import Any, Literal

import kornia.augmentation as K
import torch
from torchgeo.datamodules import EuroSATDataModule

from ..datasets.located import FileCentroids

__all__ = ['SATCLIP_BANDS', 'EuroSATLocationDataModule']

#: SatCLIP's 13 bands in the order its backbones take them (the SSL4EO-S12 L1C
#: layout of TorchGeo's ``SENTINEL2_ALL_MOCO`` weights): B8A after B08.
#: EuroSAT's files keep B8A last (TorchGeo's ``EuroSAT.all_band_names``).
SATCLIP_BANDS = (
    'B01', 'B02', 'B03', 'B04', 'B05', 'B06', 'B07',
    'B08', 'B8A', 'B09', 'B10', 'B11', 'B12',
)  # fmt: skip

#: The choices of ``EuroSATLocationDataModule(normalization=...)``, each with
#: what it does (for messages).
_NORMALIZATIONS = {
    'reflectance': 'divide by 10,000',
    'statistics': "EuroSAT's per-band mean and std",
}

#: What Sentinel-2 digital numbers are divided by to give reflectances.
_REFLECTANCE_SCALE = 10000.0


class EuroSATLocationDataModule(EuroSATDataModule):  # type: ignore[misc]
    """TorchGeo's EuroSAT datamodule whose samples carry ``point`` (lon, lat).

    EuroSAT's GeoTIFFs are georeferenced, so each patch's centroid is read
    from its file (see :class:`FileCentroids`). Arguments are those of
    ``torchgeo.datamodules.EuroSATDataModule``, but *bands* defaults to
    :data:`SATCLIP_BANDS`: the 13 bands in the order SatCLIP's and TorchGeo's
    Sentinel-2 backbones take them, not the files' order, which puts B8A last
    (give ``bands=EuroSAT.all_band_names`` for that).

    The images are normalized, on the device, by dividing them by 10,000
    (``normalization='reflectance'``, the default), not by TorchGeo's EuroSAT
    per-band mean and std (``normalization='statistics'``, what
    ``EuroSATDataModule`` does). The backbones this datamodule is meant for,
    TorchGeo's ``SENTINEL2_ALL_MOCO`` weights (SSL4EO-S12) that SatCLIP's image
    encoders start from, were trained on reflectances divided by 10,000 (the
    ``transforms`` of those weights in TorchGeo, and SatCLIP's own S2-100K
    recipe): values mostly in [0, 0.5], where standardized inputs are centred
    on 0 with unit spread (and B10, whose spread is tiny, is stretched about
    2,000 times), a scale the pretrained features never saw. Choose
    ``'statistics'`` for a backbone trained from scratch or on standardized
    inputs.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        normalization: Literal['reflectance', 'statistics'] = 'reflectance',
        **kwargs: Any,
    ) -> None:
        """Initialize a new EuroSATLocationDataModule.

        Args:
            batch_size: size of each mini-batch.
            num_workers: number of workers for parallel data loading.
            normalization: 'reflectance' (divide by 10,000: the input of the
                ``SENTINEL2_ALL_MOCO`` backbones) or 'statistics' (TorchGeo's
                EuroSAT per-band mean and std); see the class docstring.
            **kwargs: passed to ``torchgeo.datasets.EuroSAT``; *bands*
                defaults to :data:`SATCLIP_BANDS`, and *transforms* is
                applied by the :class:`FileCentroids` wrapper instead, after
                ``point`` is added (so that a
                :class:`~torchgeo_satclip.transforms.LocationEmbedding` can
                read it).

        Raises:
            ValueError: if *normalization* is none of its choices.
        """
        if not isinstance(normalization, str) or normalization not in _NORMALIZATIONS:
            choices = ' or '.join(
                f'{name!r} ({what})' for name, what in _NORMALIZATIONS.items()
            )
            raise ValueError(f'normalization must be {choices}, got {normalization!r}')
        kwargs.setdefault('bands', SATCLIP_BANDS)
        # EuroSAT would apply them before the wrapper adds the location
        self.sample_transforms = kwargs.pop('transforms', None)
        super().__init__(batch_size, num_workers, **kwargs)
        self.normalization = normalization
        if normalization == 'reflectance':
            self.mean = torch.zeros_like(self.mean)
            self.std = torch.full_like(self.std, _REFLECTANCE_SCALE)
            self.aug = K.AugmentationSequential(
                K.Normalize(mean=self.mean, std=self.std), data_keys=None, keepdim=True
            )

    def setup(self, stage: str) -> None:
        """Build the datasets, then wrap them (the wrapper applies *transforms*).

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.
        """
        super().setup(stage)
        for name in ('train_dataset', 'val_dataset', 'test_dataset', 'predict_dataset'):
            dataset = getattr(self, name, None)
            if dataset is not None and not isinstance(dataset, FileCentroids):
                setattr(
                    self,
                    name,
                    FileCentroids(dataset, transforms=self.sample_transforms),
                )
