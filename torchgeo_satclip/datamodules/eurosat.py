"""EuroSAT with each sample's location: TorchGeo's datamodule, wrapped."""

from typing import Any

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


class EuroSATLocationDataModule(EuroSATDataModule):  # type: ignore[misc]
    """TorchGeo's EuroSAT datamodule whose samples carry ``point`` (lon, lat).

    EuroSAT's GeoTIFFs are georeferenced, so each patch's centroid is read
    from its file (see :class:`FileCentroids`). Arguments are those of
    ``torchgeo.datamodules.EuroSATDataModule``, but *bands* defaults to
    :data:`SATCLIP_BANDS`: the 13 bands in the order SatCLIP's and TorchGeo's
    Sentinel-2 backbones take them, not the files' order, which puts B8A last
    (give ``bands=EuroSAT.all_band_names`` for that).
    """

    def __init__(
        self, batch_size: int = 64, num_workers: int = 0, **kwargs: Any
    ) -> None:
        """Initialize a new EuroSATLocationDataModule.

        Args:
            batch_size: size of each mini-batch.
            num_workers: number of workers for parallel data loading.
            **kwargs: passed to ``torchgeo.datasets.EuroSAT``; *bands*
                defaults to :data:`SATCLIP_BANDS`.
        """
        kwargs.setdefault('bands', SATCLIP_BANDS)
        super().__init__(batch_size, num_workers, **kwargs)

    def setup(self, stage: str) -> None:
        """Build the datasets, then wrap them.

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.
        """
        super().setup(stage)
        for name in ('train_dataset', 'val_dataset', 'test_dataset', 'predict_dataset'):
            dataset = getattr(self, name, None)
            if dataset is not None and not isinstance(dataset, FileCentroids):
                setattr(self, name, FileCentroids(dataset))
