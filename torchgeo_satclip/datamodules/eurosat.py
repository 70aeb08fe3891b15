"""EuroSAT with each sample's location: TorchGeo's datamodule, wrapped."""

from torchgeo.datamodules import EuroSATDataModule

from ..datasets.located import FileCentroids

__all__ = ['EuroSATLocationDataModule']


class EuroSATLocationDataModule(EuroSATDataModule):  # type: ignore[misc]
    """TorchGeo's EuroSAT datamodule whose samples carry ``point`` (lon, lat).

    EuroSAT's GeoTIFFs are georeferenced, so each patch's centroid is read
    from its file (see :class:`FileCentroids`). Arguments are those of
    ``torchgeo.datamodules.EuroSATDataModule``.
    """

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
