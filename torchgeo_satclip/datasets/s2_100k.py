"""S2-100K: the SatCLIP pretraining dataset as a TorchGeo ``NonGeoDataset``.

100,000 Sentinel-2 L2A patches (12 bands, 256 x 256 px, uint16 reflectance
x 10000) with the (lon, lat) of each patch centre. Samples have the keys of
TorchGeo 0.10's ``S2100k`` (``image``, ``point``), so datamodules and tasks
accept either class.

Beyond TorchGeo's class this one adds: band selection; a packed layout read
transparently (:func:`~torchgeo_satclip.datasets.pack_s2_100k`, several times
faster to decode than the GeoTIFFs); explicit nodata exclusion by content with
a count of what was excluded; errors naming the file for unreadable patches;
a construction-time check that every row of ``index.csv`` has its file; and
atomic, checksummed, per-shard resumable downloads.
"""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar, Literal, cast
from urllib.parse import urlparse

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset, RGBBandsMissingError
from torchgeo.datasets.utils import download_url, extract_archive
from tqdm import tqdm

from .s2_100k_files import (
    ALL_BANDS,
    NODATA_FILE,
    PACKED_DIR,
    PackedLayout,
    nodata_fraction,
    read_geotiff,
    read_index,
    read_nodata_file,
    sha256_file,
    write_nodata_file,
)

__all__ = ['S2100K', 'SampleBatch']


class _PlainText(str):
    """A string whose repr is itself (a path in a message, without quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


#: Hugging Face revision pinned by TorchGeo 0.10.1.
_BASE_URL = (
    'https://hf.co/datasets/torchgeo/s2-100k/resolve/'
    'fbdbb78ba57d22d5b6be203913f1e6020c2b4e0a'
)


class SampleBatch(list[dict[str, Tensor]]):
    """Samples read together, with the batch they are views of.

    :meth:`S2100K.__getitems__` returns one: a plain list of samples for any
    ``collate_fn`` (``default_collate`` stacks them as usual), and in
    :attr:`stacked` the same samples already stacked, which
    :func:`collate_sample_batch` hands on without another copy.
    """

    #: ``{'image': (B, C, H, W), 'point': (B, 2)}``: the samples, stacked.
    stacked: dict[str, Tensor]

    def __init__(self, stacked: dict[str, Tensor]) -> None:
        """Initialize a new SampleBatch from stacked tensors.

        Args:
            stacked: tensors whose first dimension is the batch.
        """
        size = len(next(iter(stacked.values())))
        super().__init__(
            {key: value[i] for key, value in stacked.items()} for i in range(size)
        )
        self.stacked = stacked


def _batch_buffer(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised tensor, in shared memory inside a DataLoader worker.

    A batch made in a worker travels to the main process through shared
    memory; allocating it there from the start saves the copy into shared
    memory that sending an ordinary tensor costs (``default_collate`` does
    the same).
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(  # type: ignore[no-untyped-call]
        numel * dtype.itemsize
    )
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def _filename(url: str) -> str:
    """Local file name of a download: the last component of the URL path."""
    return os.path.basename(urlparse(url).path) or os.path.basename(url)


class S2100K(NonGeoDataset):
    """S2-100K dataset (SatCLIP pretraining).

    Layout under *root*::

        index.csv            fn, lon, lat (patch centre, degrees)
        images/<fn>          12-band uint16 LZW GeoTIFF, 256 x 256
        packed/              optional, written by ``torchgeo-satclip pack``
        nodata.csv           optional, recorded nodata fractions (fn, nodata_fraction)

    Dataset features:

    * 100,000 Sentinel-2 L2A patches sampled over land, 2021-01 to 2023-05,
      < 20 % cloud cover, 10 m resolution
    * 12 bands: B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12 (no B10)

    Dataset format: ``{'image': float32 (C, H, W), 'point': float32 [lon, lat]}``
    (``mode='points'``: only ``point``, no image is read).

    If you use this dataset in your research, please cite:

    * https://doi.org/10.1609/aaai.v39i4.32457
    """

    all_bands: tuple[str, ...] = ALL_BANDS
    rgb_bands: tuple[str, ...] = ('B04', 'B03', 'B02')
    #: Reflectance x 10,000 shown as white by :meth:`plot` (0.3: bright
    #: land surfaces are visible, snow and clouds saturate).
    RGB_SCALE: ClassVar[float] = 3000.0

    #: ``(url, sha256)`` of the index.
    index_remote: ClassVar[tuple[str, str]] = (
        f'{_BASE_URL}/index.csv',
        '9fdcdec776b331fcc2d9ab5af18355efc5bd0716df33ab78e1ff03f60cf343ad',
    )
    #: ``(url, sha256)`` of each image archive, extracted into ``root/images``. A
    #: sharded revision is simply a longer list; each shard is downloaded,
    #: verified and extracted on its own, so an interrupted download resumes at
    #: the first shard not yet extracted.
    archive_remotes: ClassVar[list[tuple[str, str]]] = [
        (
            f'{_BASE_URL}/satclip.tar',
            'da1bae4e9dd44fb00e5f1fc537b752f5025ac908a73b5a9e24ff90bcbdd56edb',
        )
    ]

    def __init__(
        self,
        root: str | os.PathLike[str] = 'data',
        *,
        mode: Literal['both', 'points'] = 'both',
        bands: Sequence[str] = ALL_BANDS,
        layout: Literal['auto', 'geotiff', 'packed'] = 'auto',
        image_dtype: Literal['float32', 'uint16'] = 'float32',
        exclude_nodata: bool = False,
        max_nodata_fraction: float = 0.1,
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        download: bool = False,
        checksum: bool = True,
    ) -> None:
        """Initialize a new S2100K instance.

        Args:
            root: root directory of the dataset.
            mode: ``'both'`` (image and point) or ``'points'`` (no image IO).
            bands: band names to return, in this order (default: all 12).
            layout: where images are read from: ``'packed'`` (``root/packed``,
                written by ``torchgeo-satclip pack``), ``'geotiff'``
                (``root/images``) or ``'auto'`` (packed when complete, else
                GeoTIFF). Both give bit-for-bit identical samples.
            image_dtype: dtype of ``image``: ``'float32'`` (TorchGeo's
                convention) or ``'uint16'``, the stored reflectance x 10,000
                as it is, a quarter of the bytes to collate, send between
                processes and copy to the GPU; convert on the device (as
                :class:`~torchgeo_satclip.datamodules.S2100KDataModule` does,
                with identical values: every uint16 is exact in float32).
            exclude_nodata: drop patches whose nodata fraction (pixels that are 0
                in every band) exceeds *max_nodata_fraction*. Fractions come from
                the packed layout, else from ``root/nodata.csv``, else are
                measured now (every image decoded once) and recorded in
                ``root/nodata.csv``. The count is :attr:`num_excluded`.
            max_nodata_fraction: threshold of *exclude_nodata*, in [0, 1)
                (S2-100K was built rejecting patches with > 10 % nodata).
            transforms: a function/transform that takes a sample and returns a
                transformed version.
            download: if True, download the index and the archive(s) to *root*.
            checksum: if True, verify the SHA-256 of downloaded (or already
                present, not yet extracted) files.

        Raises:
            ValueError: on an invalid argument.
            DatasetNotFoundError: if the dataset is not found and *download* is False.
            FileNotFoundError: if rows of ``index.csv`` have no image file.
            RuntimeError: if a checksum does not match.
        """
        if mode not in ('both', 'points'):
            raise ValueError(f"mode must be 'both' or 'points', not {mode!r}")
        if layout not in ('auto', 'geotiff', 'packed'):
            raise ValueError(
                f"layout must be 'auto', 'geotiff' or 'packed', not {layout!r}"
            )
        if image_dtype not in ('float32', 'uint16'):
            raise ValueError(
                f"image_dtype must be 'float32' or 'uint16', not {image_dtype!r}"
            )
        unknown = [band for band in bands if band not in self.all_bands]
        if unknown or not bands:
            raise ValueError(
                f'invalid bands {list(bands)!r}; choose from {self.all_bands}'
            )
        if not 0 <= max_nodata_fraction < 1:
            raise ValueError(
                f'max_nodata_fraction must be in [0, 1), not {max_nodata_fraction}'
            )

        self.root = Path(root)
        self.mode = mode
        self.image_dtype = image_dtype
        self.bands = tuple(bands)
        self.band_indexes = [self.all_bands.index(band) for band in self.bands]
        self.transforms = transforms
        self.download = download
        self.checksum = checksum
        self.images_dir = self.root / 'images'
        self._geotiff_shape: tuple[int, int] | None = None

        self._verify()

        self.packed: PackedLayout | None = None
        if layout != 'geotiff':
            self.packed = PackedLayout.open(self.root / PACKED_DIR)
            if layout == 'packed' and self.packed is None:
                raise FileNotFoundError(
                    f'no complete packed layout in {self.root / PACKED_DIR}: run '
                    f'`torchgeo-satclip pack {self.root}` first'
                )
        #: The layout images are read from: 'packed' or 'geotiff'.
        self.layout: Literal['geotiff', 'packed'] = (
            'packed' if self.packed else 'geotiff'
        )

        fns, coords = read_index(self.root / 'index.csv')
        self._check_files(fns)

        #: Number of patches dropped by *exclude_nodata*.
        self.num_excluded = 0
        #: File names dropped by *exclude_nodata*.
        self.excluded: list[str] = []
        if exclude_nodata:
            fractions = self._nodata_fractions(fns)
            keep = np.array([f <= max_nodata_fraction for f in fractions], dtype=bool)
            self.excluded = [fn for fn, k in zip(fns, keep, strict=True) if not k]
            self.num_excluded = len(self.excluded)
            fns = [fn for fn, k in zip(fns, keep, strict=True) if k]
            coords = coords[keep]
        self.files = fns
        self.points = coords.astype(np.float32)

    def __len__(self) -> int:
        """Return the number of samples.

        Returns:
            Length of the dataset.
        """
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Return one sample.

        Args:
            index: index of the sample.

        Returns:
            ``{'image': (C, H, W), 'point': float32 [lon, lat]}`` (no image in
            points mode), the image in :attr:`image_dtype`.

        Raises:
            RuntimeError: if the image cannot be read; the message names the file.
        """
        sample = {'point': torch.from_numpy(self.points[index].copy())}
        if self.mode == 'both':
            image = self._read(self.files[index])
            if self.image_dtype == 'float32':
                image = image.astype(np.float32)
            sample['image'] = torch.from_numpy(image)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Tensor]]:
        """Return several samples, read as one batch.

        :class:`torch.utils.data.DataLoader` calls this (through
        :class:`~torch.utils.data.Subset` too) with the indices of a whole
        batch. Without *transforms* the samples are read straight into one
        batch tensor (from the packed layout by contiguous runs of the memory
        maps, see :meth:`PackedLayout.read_into`; inside a worker, in shared
        memory) and returned as a :class:`SampleBatch`: views of that tensor,
        which any ``collate_fn`` accepts and
        :func:`~torchgeo_satclip.datamodules.collate_sample_batch` passes on
        without copying. With *transforms*, samples are read one by one.

        Args:
            indices: indices of the samples.

        Returns:
            The samples, equal to ``[self[i] for i in indices]``.

        Raises:
            RuntimeError: if an image cannot be read; the message names the file.
        """
        if self.transforms is not None or not indices:
            return [self[i] for i in indices]
        rows = np.asarray(indices, dtype=np.int64)
        stacked = {'point': torch.from_numpy(self.points[rows])}
        if self.mode == 'both':
            raw = _batch_buffer(self.batch_shape(len(indices)), torch.uint16)
            self.read_images(indices, raw.numpy())
            if self.image_dtype == 'float32':
                image = _batch_buffer(tuple(raw.shape), torch.float32)
                image.copy_(raw)
                raw = image
            stacked['image'] = raw
        return SampleBatch(stacked)

    def batch_shape(self, size: int) -> tuple[int, int, int, int]:
        """Shape of a batch of *size* images: ``(size, C, H, W)``.

        Args:
            size: number of images.

        Returns:
            The shape :meth:`read_images` fills.
        """
        if self.packed is not None:
            height, width = self.packed.height, self.packed.width
        else:
            if self._geotiff_shape is None:
                first = self.images_dir / self.files[0]
                h, w = read_geotiff(first, [0]).shape[-2:]
                self._geotiff_shape = (int(h), int(w))
            height, width = self._geotiff_shape
        return (size, len(self.bands), height, width)

    def read_images(self, indices: Sequence[int], out: NDArray[np.uint16]) -> None:
        """Read the images of several samples into a preallocated array.

        The stored values, uint16, without *transforms*. From the packed
        layout by contiguous runs of its memory maps
        (:meth:`PackedLayout.read_into`); safe to call from several threads
        at once on disjoint parts of *out* (the copies release the GIL), which
        is what :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader` does.

        Args:
            indices: indices of the samples.
            out: ``(len(indices), C, H, W)`` uint16 (see :meth:`batch_shape`).

        Raises:
            RuntimeError: if an image cannot be read or has another shape; the
                message names the file.
        """
        fns = [self.files[i] for i in indices]
        indexes = None if self.bands == self.all_bands else self.band_indexes
        if self.packed is not None:
            self.packed.read_into(fns, out, indexes)
            return
        for i, fn in enumerate(fns):
            patch = read_geotiff(self.images_dir / fn, indexes)
            if patch.shape != out.shape[1:]:
                raise RuntimeError(
                    f'{self.images_dir / fn}: patch of shape {patch.shape}, '
                    f'expected {out.shape[1:]} like the others'
                )
            out[i] = patch

    def _read(self, fn: str) -> NDArray[np.uint16]:
        """Read the selected bands of one patch from the active layout."""
        indexes = None if self.bands == self.all_bands else self.band_indexes
        if self.packed is not None:
            return self.packed.read(fn, indexes)
        return read_geotiff(self.images_dir / fn, indexes)

    def _check_files(self, fns: Sequence[str]) -> None:
        """Fail now, not mid-training, if rows of the index have no data."""
        if self.mode == 'points':
            return
        if self.packed is not None:
            missing = [fn for fn in fns if fn not in self.packed.location]
            where = f'the packed layout in {self.packed.directory}'
        else:
            present = (
                set(os.listdir(self.images_dir)) if self.images_dir.is_dir() else set()
            )
            missing = [fn for fn in fns if fn not in present]
            where = str(self.images_dir)
        if missing:
            shown = ', '.join(missing[:5]) + (', ...' if len(missing) > 5 else '')
            raise FileNotFoundError(
                f'{len(missing)} of {len(fns)} files listed in '
                f'{self.root / "index.csv"} are missing from {where}: {shown}'
            )

    def _nodata_fractions(self, fns: Sequence[str]) -> list[float]:
        """Nodata fraction of each file: packed record, nodata.csv, or measured."""
        if self.packed is not None:
            return [self.packed.nodata[fn] for fn in fns]
        record_path = self.root / NODATA_FILE
        record = read_nodata_file(record_path) if record_path.is_file() else {}
        if all(fn in record for fn in fns):
            return [record[fn] for fn in fns]
        fractions = []
        for fn in tqdm(fns, desc='measuring nodata (once; recorded in nodata.csv)'):
            if fn in record:
                fractions.append(record[fn])
            else:
                fractions.append(nodata_fraction(read_geotiff(self.images_dir / fn)))
        write_nodata_file(record_path, fns, fractions)
        return fractions

    def _verify(self) -> None:
        """Find, extract or download the dataset.

        Raises:
            DatasetNotFoundError: if the dataset is not found and *download* is False.
            RuntimeError: if a checksum does not match.
        """
        if not (self.root / 'index.csv').is_file():
            if not self.download:
                raise self._not_found()
            self._fetch(*self.index_remote)

        if (
            self.root / PACKED_DIR / 'manifest.json'
        ).is_file() or self.mode == 'points':
            return
        pending = [
            remote
            for remote in self.archive_remotes
            if not self._marker(remote).exists()
        ]
        if not pending:
            return
        have_images = self.images_dir.is_dir() and any(os.scandir(self.images_dir))
        local = [r for r in pending if (self.root / _filename(r[0])).is_file()]
        if not local and not self.download:
            if have_images:  # extracted by hand; _check_files checks completeness
                return
            raise self._not_found()
        for remote in pending:
            path = self.root / _filename(remote[0])
            if not path.is_file():
                if not self.download:
                    raise self._not_found()
                self._fetch(*remote)
            elif self.checksum and sha256_file(path) != remote[1]:
                raise RuntimeError(
                    f'{path}: SHA-256 mismatch (expected {remote[1]}); delete it and '
                    'download again'
                )
            extract_archive(path, self.images_dir)
            self._marker(remote).touch()

    def _not_found(self) -> DatasetNotFoundError:
        """TorchGeo's error, naming the root as a plain path."""
        shown = SimpleNamespace(root=_PlainText(self.root), download=self.download)
        return DatasetNotFoundError(cast(NonGeoDataset, shown))

    def _marker(self, remote: tuple[str, str]) -> Path:
        """Empty file recording that an archive was extracted."""
        return self.root / f'.{_filename(remote[0])}.extracted'

    def _fetch(self, url: str, sha256: str) -> None:
        """Download one file atomically: temporary name, verify, rename.

        Args:
            url: where to download from.
            sha256: the expected SHA-256 (checked when :attr:`checksum`).

        Raises:
            RuntimeError: if the checksum does not match (the download is removed).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        name = _filename(url)
        part = self.root / f'{name}.part'
        part.unlink(missing_ok=True)  # a stale partial download
        try:
            download_url(url, self.root, filename=part.name)
            if self.checksum:
                actual = sha256_file(part)
                if actual != sha256:
                    raise RuntimeError(
                        f'{url}: SHA-256 mismatch (expected {sha256}, got {actual})'
                    )
            os.replace(part, self.root / name)
        finally:
            part.unlink(missing_ok=True)

    def plot(
        self,
        sample: dict[str, Tensor],
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Plot a sample in true colour (B04, B03, B02 on one fixed scale).

        The three bands share one scale, :attr:`RGB_SCALE` (surface reflectance
        x 10,000 shown as white), so colours stay true: a desert stays
        yellow-brown and snow white, where a per-band stretch would turn both
        grey.

        Args:
            sample: a sample returned by :meth:`__getitem__`.
            show_titles: show the (lon, lat) above the image.
            suptitle: optional figure title.

        Returns:
            A matplotlib Figure with the rendered sample.

        Raises:
            RGBBandsMissingError: if the dataset lacks B04, B03 or B02.
        """
        if not all(band in self.bands for band in self.rgb_bands):
            raise RGBBandsMissingError()
        rgb = sample['image'][[self.bands.index(b) for b in self.rgb_bands]].double()
        image = (rgb / self.RGB_SCALE).clamp(0, 1)

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(image.permute(1, 2, 0).numpy())
        ax.axis('off')
        if show_titles:
            lon, lat = (float(v) for v in sample['point'])
            ax.set_title(f'lon {lon:.4f}, lat {lat:.4f}')
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
