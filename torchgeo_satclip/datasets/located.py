"""Make file-backed datasets location-aware: each sample gets its file's centroid.

Many TorchGeo datasets read one georeferenced GeoTIFF per sample (EuroSAT's
files, for instance, are Sentinel-2 tiles in their UTM zone) but return only
``image`` and ``label``. :class:`FileCentroids` wraps such a dataset and adds
``point``: the centre of the file's bounds reprojected to EPSG:4326, read
from the file header once per file. :class:`EuroSATLocationDataModule` is
TorchGeo's ``EuroSATDataModule`` with its datasets wrapped, for YAML configs.
"""

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..geo.crs import reproject_checked

__all__ = ['FileCentroids', 'file_centroid', 'file_paths']


def file_centroid(path: str | os.PathLike[str]) -> tuple[float, float]:
    """Return the (longitude, latitude) of a raster file's centre.

    Args:
        path: a georeferenced raster that rasterio can open.

    Returns:
        The centre of the file's bounds in EPSG:4326 degrees.

    Raises:
        ValueError: if the file has no CRS or no geotransform, or the centre
            of its bounds is no place on Earth in its CRS (outside the
            CRS's domain, or a latitude beyond the poles: metres labelled
            as degrees, say); the message names the file and the centre.
    """
    import rasterio

    with rasterio.open(path) as src:
        if src.crs is None or src.transform.is_identity:
            raise ValueError(f'{path} is not georeferenced (no CRS or geotransform)')
        left, bottom, right, top = src.bounds
        crs = src.crs
    x, y = (left + right) / 2, (bottom + top) / 2
    lonlat, bad = reproject_checked(np.array([x]), np.array([y]), crs)
    if bad is not None:
        raise ValueError(
            f'{path}: the centre of its bounds, ({x}, {y}) in {crs}, is not a '
            f'place on Earth (it reprojects to lon/lat ({lonlat[0, 0]}, '
            f'{lonlat[0, 1]})): expected a file whose CRS and geotransform put '
            'it inside that CRS; check its header'
        )
    return float(lonlat[0, 0]), float(lonlat[0, 1])


def file_paths(dataset: Any) -> list[str]:
    """Return the file behind each index of a file-backed dataset.

    Understands ``ImageFolder``-style ``samples``/``imgs`` (``(path, label)``
    pairs, as TorchGeo's ``NonGeoClassificationDataset`` and EuroSAT), and
    ``files`` as a list of paths or of dicts with an ``image`` entry.

    Args:
        dataset: the dataset.

    Returns:
        One path per index.

    Raises:
        TypeError: if the dataset exposes no such list.
    """
    for name in ('samples', 'imgs'):
        items = getattr(dataset, name, None)
        if isinstance(items, Sequence) and items and isinstance(items[0], tuple):
            return [str(item[0]) for item in items]
    files = getattr(dataset, 'files', None)
    if isinstance(files, Sequence) and files:
        first = files[0]
        if isinstance(first, dict) and 'image' in first:
            return [str(item['image']) for item in files]
        if isinstance(first, str | os.PathLike):
            return [str(item) for item in files]
    raise TypeError(
        f'{type(dataset).__name__} exposes no per-index file list '
        "('samples', 'imgs' or 'files'); pass paths= explicitly"
    )


class FileCentroids(Dataset[dict[str, Any]]):
    """A dataset wrapper that adds each sample's file centroid as ``point``.

    Attribute access falls through to the wrapped dataset (``plot``,
    ``classes``, ...), so datamodules and tasks keep working.
    """

    def __init__(
        self,
        dataset: Dataset[dict[str, Any]],
        paths: Sequence[str | os.PathLike[str]] | None = None,
        transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        key: str = 'point',
    ) -> None:
        """Wrap a dataset.

        Args:
            dataset: a map-style dataset returning dict samples.
            paths: the file of each index (default: :func:`file_paths`).
            transforms: applied to each sample after ``point`` is added (for
                example a :class:`~torchgeo_satclip.transforms.LocationEmbedding`).
            key: sample key for the (lon, lat) tensor.

        Raises:
            ValueError: if ``paths`` and the dataset differ in length.
        """
        self.dataset = dataset
        self.paths = [
            str(p) for p in (paths if paths is not None else file_paths(dataset))
        ]
        if len(self.paths) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(
                f'paths has {len(self.paths)} entries for a dataset of '
                f'{len(dataset)} samples: give one file per sample'  # type: ignore[arg-type]
            )
        self.transforms = transforms
        self.key = key
        self._cache: dict[str, tuple[float, float]] = {}

    def centroid(self, index: int) -> Tensor:
        """Return the float64 (lon, lat) of one index (cached per file).

        float64, as :class:`~torchgeo_satclip.datasets.S2100K`'s points:
        float32 would move a point by up to 1.7 m.

        Args:
            index: the sample index.

        Returns:
            A ``(2,)`` tensor.
        """
        path = self.paths[index]
        if path not in self._cache:
            self._cache[path] = file_centroid(path)
        return torch.tensor(self._cache[path], dtype=torch.float64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Return the wrapped sample with ``point`` added.

        Args:
            index: the sample index.

        Returns:
            The sample.
        """
        sample = dict(self.dataset[index])
        sample[self.key] = self.centroid(index)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.paths)

    def __getattr__(self, name: str) -> Any:
        """Fall through to the wrapped dataset."""
        if name == 'dataset':  # not yet set: avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)
