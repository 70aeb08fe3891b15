"""S2-100K: the SatCLIP pretraining dataset as a TorchGeo ``NonGeoDataset``.

100,000 Sentinel-2 L2A patches (12 bands, 256 x 256 px, uint16 reflectance
x 10000) with the (lon, lat) of each patch centre. Samples have the keys of
TorchGeo 0.10's ``S2100k`` (``image``, ``point``), so datamodules and tasks
accept either class.

Beyond TorchGeo's class this one adds: band selection; a packed layout read
transparently (:func:`~torchgeo_satclip.datasets.pack_s2_100k`, several times
faster to decode than the GeoTIFFs); explicit nodata exclusion by content with
a count of what was excluded; errors naming the file for unreadable patches
and for patches that are not 12 uint16 bands of the declared size; a strict
``index.csv`` and ``nodata.csv`` (a malformed row is refused at construction,
naming its line); a construction-time check that every row of ``index.csv``
has its file and that the packed layout is intact (:attr:`S2100K.patch_size`,
``verify``); atomic, checksummed, per-shard resumable downloads; and
multi-temporal datasets (``dates.csv``, see
:func:`~torchgeo_satclip.datasets.s2_100k_files.write_dates_file`), read as
one image per point as ever, as a random pair of dates of a point, or as all
the dates of a point (the *dates* argument).
"""

import datetime
import json
import operator
import os
import warnings
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Literal, cast
from urllib.parse import urlparse

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, NonGeoDataset, RGBBandsMissingError
from torchgeo.datasets.utils import download_url
from tqdm import tqdm

from .._checks import check_flag, check_real
from .._io import atomic_path
from ._archive import extract_safely
from .s2_100k_files import (
    ALL_BANDS,
    BUILD_FILE,
    DATES_FILE,
    NODATA_FILE,
    PACKED_DIR,
    PATCH_SIZE,
    DatasetTableError,
    MissingFilesError,
    PackedLayout,
    _PointsMismatchError,
    as_patch_size,
    check_geotiff,
    nodata_fraction,
    pack_command,
    read_dates_file,
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


#: ``format`` of the marker recording what an archive's extraction gave.
_MARKER_FORMAT = 'torchgeo-satclip/extracted-archive'

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

    #: ``{'image': (B, C, H, W), 'point': (B, 2)}`` (pairs of dates:
    #: ``image`` ``(B, 2, C, H, W)`` and ``date`` ``(B, 2)``): the samples,
    #: stacked.
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


#: The day that ``date`` counts from.
_EPOCH = datetime.date(1970, 1, 1)


def _filename(url: str) -> str:
    """Local file name of a download: the last component of the URL path."""
    return os.path.basename(urlparse(url).path) or os.path.basename(url)


def _check_seed(name: str, seed: object, expected: str) -> None:
    """Raise ``ValueError`` unless *seed* is an int >= 0 (a bool is not)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'{name} must be {expected}, not {seed!r}')


def _check_out(out: NDArray[Any], shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless *out* is a uint16 array of *shape*."""
    if out.shape != shape or out.dtype != np.uint16:
        raise ValueError(
            f'out must be uint16 of shape {shape}, not {out.dtype} {tuple(out.shape)}'
        )


def _rows(indices: Sequence[int], length: int) -> list[int]:
    """Sample indices as plain ints in ``[0, length)`` (negative: from the end).

    Raises:
        TypeError: for an index that is not an integer (a bool, a float, a
            string, a bool tensor).
        IndexError: for an index outside ``[-length, length)``.
    """
    rows = []
    for index in indices:
        boolean = isinstance(index, bool | np.bool_) or (
            isinstance(index, Tensor) and index.dtype == torch.bool
        )
        try:
            if boolean:
                raise TypeError
            row = operator.index(index)
        except TypeError:
            raise TypeError(
                f'S2100K index {index!r} (type {type(index).__name__}) is not an '
                f'integer: expected an int from {-length} to {length - 1}'
            ) from None
        if not -length <= row < length:
            raise IndexError(
                f'S2100K index {row} is out of range for {length} samples '
                f'({-length} to {length - 1})'
            )
        rows.append(row % length)
    return rows


def _pair_draws(seed: int, num_points: int) -> NDArray[np.float64]:
    """Each point's two uniform draws of its fixed pair of dates."""
    return np.random.default_rng(seed).random((num_points, 2))


class S2100K(NonGeoDataset):
    """S2-100K dataset (SatCLIP pretraining).

    Layout under *root*::

        index.csv            fn, lon, lat (patch centre, degrees)
        images/<fn>          12-band uint16 LZW GeoTIFF, 256 x 256
        packed/              optional, written by ``torchgeo-satclip pack``
        nodata.csv           optional, recorded nodata fractions (fn, nodata_fraction)
        dates.csv            optional, multi-temporal: every image of every
                             point with its date (point, fn, date)

    Dataset features:

    * 100,000 Sentinel-2 L2A patches sampled over land, 2021-01 to 2023-05,
      < 20 % cloud cover, 10 m resolution
    * 12 bands: B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12 (no B10)

    Dataset format: ``{'image': float32 (C, H, W), 'point': float64 [lon, lat]}``
    (``mode='points'``: only ``point``, no image is read). The points are
    ``index.csv``'s values exactly, as TorchGeo's ``S2100k`` and SatCLIP's
    own dataset give them (float32 would move a point by up to 1.7 m). A multi-temporal
    dataset read with ``dates='pair'`` gives ``image`` ``(2, C, H, W)`` (two
    different dates of the point) and ``date`` int64 ``(2,)`` (days since
    1970-01-01); with ``dates='all'``, ``image`` ``(T, C, H, W)`` and ``date``
    ``(T,)``, every date of the point in date order.

    If you use this dataset in your research, please cite:

    * https://doi.org/10.1609/aaai.v39i4.32457
    """

    all_bands: tuple[str, ...] = ALL_BANDS
    rgb_bands: tuple[str, ...] = ('B04', 'B03', 'B02')
    #: ``(height, width)`` in pixels every patch must have: S2-100K's 256 x
    #: 256. A dataset built with another size (``torchgeo-satclip build
    #: --size``, ``demo-data``) declares it with the ``patch_size`` argument.
    patch_size: tuple[int, int] = PATCH_SIZE
    #: Reflectance x 10,000 shown as white by :meth:`plot` (0.3: bright
    #: land surfaces are visible, snow and clouds saturate).
    RGB_SCALE: ClassVar[float] = 3000.0
    #: A floating-point sample whose RGB values are all at most this is taken
    #: by :meth:`plot` as reflectance (divided by 10,000, as the datamodule's
    #: augmentation gives it); a raw patch that dark is black either way.
    REFLECTANCE_MAX: ClassVar[float] = 2.0

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
        patch_size: int | tuple[int, int] | None = None,
        image_dtype: Literal['float32', 'uint16'] = 'float32',
        exclude_nodata: bool = False,
        max_nodata_fraction: float = 0.1,
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        download: bool = False,
        checksum: bool = True,
        verify: bool = False,
        dates: Literal['index', 'pair', 'all'] = 'index',
        pair_seed: int | None = None,
        progress: bool = True,
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
            patch_size: ``(height, width)`` in pixels of every patch, or the
                side of a square one (default: :attr:`patch_size`, S2-100K's
                256 x 256). A patch of another size (or band count) is an
                error naming its file, at construction for the first patch
                listed (or every patch, with *verify*), else when it is read;
                a packed layout's manifest must declare the same size.
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
                ``root/nodata.csv`` (a warning when the root is read-only).
                The count is :attr:`num_excluded`.
            max_nodata_fraction: threshold of *exclude_nodata*, in [0, 1)
                (S2-100K was built rejecting patches with > 10 % nodata).
            transforms: a function/transform that takes a sample and returns a
                transformed version.
            download: if True, download the index and the archive(s) to *root*.
            checksum: if True, verify the SHA-256 of downloaded (or already
                present, not yet extracted) files.
            verify: check every patch now rather than when it is read:
                decode every GeoTIFF (as long as packing takes), or, for the
                packed layout, compare the SHA-256 of every shard and of every
                source GeoTIFF still present with the recorded ones (every
                open runs the cheap checks of
                :meth:`~torchgeo_satclip.datasets.s2_100k_files.PackedLayout.open`:
                records, sizes, sampled content, source fingerprints).
            dates: which images of a point a sample holds. ``'index'``: the
                one ``index.csv`` lists (``dates.csv`` is ignored). The others
                need a multi-temporal dataset (``root/dates.csv``, checked
                against ``index.csv``; every image it lists must exist, in
                ``images/`` or packed). ``'pair'``: two different dates of
                the point, drawn uniformly at random on every access with
                torch's global RNG (so a DataLoader's worker seeding applies):
                ``image`` ``(2, C, H, W)`` and ``date`` ``(2,)``; points with
                a single date are left out (:attr:`num_single_date`).
                ``'all'``: every date, sorted: ``image`` ``(T, C, H, W)``,
                ``date`` ``(T,)``. ``date`` is int64, days since 1970-01-01.
                *exclude_nodata* judges a point by its ``index.csv`` image.
            pair_seed: with ``dates='pair'``, fix each point's pair once,
                from this seed (the same pairs at every access, say for
                validation; torch's RNG is not used). None: a new pair at
                every access.
            progress: show progress bars (on stderr) while *verify* checks
                every patch and while *exclude_nodata* measures nodata; False
                for none (a command's ``--quiet``).

        Raises:
            ValueError: on an invalid argument, a packed layout or first
                GeoTIFF of another patch size, or, with ``dates='pair'``, a
                dataset where no point has two dates.
            DatasetTableError: a malformed ``index.csv``, ``nodata.csv`` or
                ``dates.csv`` (the message names the line), or an
                ``index.csv`` that lists no patch (a ValueError too).
            DatasetNotFoundError: if the dataset is not found and *download* is False.
            MissingFilesError: if rows of ``index.csv`` (or, with *dates*
                ``'pair'`` or ``'all'``, of ``dates.csv``) have no image
                file (a FileNotFoundError too).
            FileNotFoundError: if *dates* needs a ``dates.csv`` that is missing.
            RuntimeError: if a checksum does not match, or a patch checked at
                construction is unreadable or not 12 uint16 bands (with
                *verify*, a later patch of another size too).
            PackedLayoutError: if the packed layout is damaged or stale
                (:class:`~torchgeo_satclip.datasets.s2_100k_files.PackedLayoutError`,
                a RuntimeError naming the file and how to repair it).
        """
        if mode not in ('both', 'points'):
            raise ValueError(f"mode must be 'both' or 'points', not {mode!r}")
        if layout not in ('auto', 'geotiff', 'packed'):
            raise ValueError(
                f"layout must be 'auto', 'geotiff' or 'packed', not {layout!r}"
            )
        if dates not in ('index', 'pair', 'all'):
            raise ValueError(f"dates must be 'index', 'pair' or 'all', not {dates!r}")
        if pair_seed is not None:
            _check_seed('pair_seed', pair_seed, 'None or an integer >= 0')
        if image_dtype not in ('float32', 'uint16'):
            raise ValueError(
                f"image_dtype must be 'float32' or 'uint16', not {image_dtype!r}"
            )
        unknown = [band for band in bands if band not in self.all_bands]
        if unknown or not bands:
            raise ValueError(
                f'invalid bands {list(bands)!r}; choose from {self.all_bands}'
            )
        # a string is truthy: exclude_nodata='false' would drop patches
        exclude_nodata = check_flag('exclude_nodata', exclude_nodata)
        download = check_flag('download', download)
        checksum = check_flag('checksum', checksum)
        verify = check_flag('verify', verify)
        self.progress = check_flag('progress', progress)
        # a string or None failed in the comparison, naming nothing
        max_nodata_fraction = check_real(
            'max_nodata_fraction', max_nodata_fraction, minimum=0, below=1
        )

        self.patch_size = as_patch_size(
            self.patch_size if patch_size is None else patch_size
        )
        self.root = Path(root)
        self.mode = mode
        self.image_dtype = image_dtype
        self.dates = dates
        self.bands = tuple(bands)
        self.band_indexes = [self.all_bands.index(band) for band in self.bands]
        self.transforms = transforms
        self.download = download
        self.checksum = checksum
        self.images_dir = self.root / 'images'

        fns, coords, listing = self._verify(layout)

        self.packed: PackedLayout | None = None
        if layout != 'geotiff':
            self.packed = PackedLayout.open(
                self.root / PACKED_DIR,
                sources=self.images_dir,
                verify=verify and mode == 'both',
                progress=verify and self.progress,
                patch_size=self.patch_size,
                check_size=mode != 'points',
            )
            if layout == 'packed' and self.packed is None:
                raise FileNotFoundError(
                    f'no complete packed layout in {self.root / PACKED_DIR}: run '
                    f'{pack_command(self.root, self.patch_size)} first'
                )
        #: The layout images are read from: 'packed' or 'geotiff'.
        self.layout: Literal['geotiff', 'packed'] = (
            'packed' if self.packed else 'geotiff'
        )

        dated = None if dates == 'index' else self._read_dates(fns)
        self._check_files(fns, dated, listing)
        self._check_size(fns, verify, dated)

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
        #: Points left out by ``dates='pair'`` for having a single date.
        self.num_single_date = 0
        #: Each point's ``(date, fn)``, sorted by date (``dates='index'``: None).
        self.dated: list[list[tuple[datetime.date, str]]] | None = None
        self._days: list[NDArray[np.int64]] = []
        #: With *pair_seed*: each point's two uniform draws, fixed.
        self._pair_draws: NDArray[np.float64] | None = None
        if dated is not None:
            listed = [dated[fn] for fn in fns]
            if dates == 'pair':
                keep = np.array([len(d) >= 2 for d in listed], dtype=bool)
                self.num_single_date = int((~keep).sum())
                listed = [d for d, k in zip(listed, keep, strict=True) if k]
                fns = [fn for fn, k in zip(fns, keep, strict=True) if k]
                coords = coords[keep]
                if not fns:
                    raise ValueError(
                        f'{self.root / DATES_FILE}: no point has two dates, so '
                        "there are no pairs (dates='pair')"
                    )
            if dates == 'pair' and pair_seed is not None:
                self._pair_draws = _pair_draws(pair_seed, len(listed))
            self.dated = listed
            self._days = [
                np.array([(d - _EPOCH).days for d, _ in point], dtype=np.int64)
                for point in listed
            ]
        self.files = fns
        self.points = coords.astype(np.float64)

    def _read_dates(
        self, fns: Sequence[str]
    ) -> dict[str, list[tuple[datetime.date, str]]]:
        """Read ``root/dates.csv`` against the points of ``index.csv``."""
        path = self.root / DATES_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f'{self.root} is not a multi-temporal dataset: no {DATES_FILE}; '
                'build it with `torchgeo-satclip build --dates K` or '
                '`torchgeo-satclip demo-data --dates K`'
            )
        try:
            return read_dates_file(path, points=fns)
        except _PointsMismatchError as error:
            killed = not error.missing and len(error.extra) == 1
            if not killed or not (self.root / BUILD_FILE).is_file():
                raise
            raise DatasetTableError(
                f'{error}. {self.root} was made by `torchgeo-satclip build` '
                f'({BUILD_FILE}): a build killed between appending a point to '
                f'{DATES_FILE} and to index.csv leaves {DATES_FILE} ahead; run '
                'the same build again, which repairs that first'
            ) from None

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
            ``{'image': (C, H, W), 'point': float64 [lon, lat]}`` (no image in
            points mode), the image in :attr:`image_dtype`; with *dates*
            ``'pair'`` or ``'all'``, ``image`` ``(T, C, H, W)`` and ``date``
            int64 ``(T,)`` (see :meth:`draw`).

        Raises:
            TypeError: if *index* is not an integer (a bool is not).
            IndexError: if *index* is out of range.
            RuntimeError: if the image cannot be read; the message names the file.
        """
        fns, fields = self.draw([index])
        sample = {key: value[0] for key, value in fields.items()}
        if self.mode == 'both':
            images = [self._read(fn) for fn in fns]
            image = images[0] if self.dates == 'index' else np.stack(images)
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
        without copying. Pairs of dates too: the ``2B`` images of the batch
        are read as one ``(B, 2, C, H, W)`` tensor. With *transforms*, or
        ``dates='all'`` (points have different numbers of dates), samples are
        read one by one.

        Args:
            indices: indices of the samples.

        Returns:
            The samples, equal to ``[self[i] for i in indices]`` (pairs: from
            the same state of torch's RNG).

        Raises:
            TypeError: if an index is not an integer (a bool is not).
            IndexError: if an index is out of range.
            RuntimeError: if an image cannot be read; the message names the file.
        """
        if self.transforms is not None or len(indices) == 0 or self.dates == 'all':
            return [self[i] for i in indices]
        fns, stacked = self.draw(indices)
        if self.mode == 'both':
            shape = self.batch_shape(len(indices))
            raw = _batch_buffer(shape, torch.uint16)
            self.read_files(fns, raw.view(len(fns), *shape[-3:]).numpy())
            if self.image_dtype == 'float32':
                image = _batch_buffer(tuple(raw.shape), torch.float32)
                image.copy_(raw)
                raw = image
            stacked = {'image': raw, **stacked}
        return SampleBatch(stacked)

    @property
    def fixed_pairs(self) -> bool:
        """Whether each point's pair of dates is fixed (``dates='pair'``).

        True with *pair_seed* and for copies made by :meth:`with_fixed_pairs`.
        """
        return self._pair_draws is not None

    def with_fixed_pairs(self, seed: int) -> 'S2100K':
        """A copy of this dataset whose pairs of dates are fixed.

        For validation: a split whose pairs change at every epoch gives a
        loss that moves from the draw alone. The copy shares everything else
        (files, points, layout, transforms) and draws exactly the pairs that
        ``pair_seed=seed`` would.

        Args:
            seed: the pair seed, an integer >= 0.

        Returns:
            The copy (this dataset is unchanged).

        Raises:
            ValueError: unless ``dates='pair'``, or for a bad *seed*.
        """
        if self.dates != 'pair' or self.dated is None:
            raise ValueError(
                f"with_fixed_pairs needs dates='pair', not dates={self.dates!r}"
            )
        _check_seed('seed', seed, 'an integer >= 0')
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._pair_draws = _pair_draws(seed, len(self.dated))
        return copy

    def draw(self, indices: Sequence[int]) -> tuple[list[str], dict[str, Tensor]]:
        """Choose the images of samples: what to read, and the other tensors.

        ``dates='index'``: each sample's ``index.csv`` image. ``'pair'``: two
        different dates of the point, uniformly at random (one
        ``torch.rand((len(indices), 2), dtype=torch.float64)`` call on the
        global RNG: the same draws whether samples are drawn one by one or
        together; with *pair_seed*, each point's fixed pair). ``'all'``: every date of the point, sorted (the samples
        must then have the same number of dates).

        Args:
            indices: indices of the samples.

        Returns:
            ``(fns, fields)``: the image files, ``T`` per sample one sample
            after the other (``T`` = 1, 2 or the number of dates), and
            ``point`` ``(B, 2)`` float64 with, unless ``dates='index'``,
            ``date`` ``(B, T)`` int64 (days since 1970-01-01) of each image.

        Raises:
            TypeError: if an index is not an integer (a bool is not).
            IndexError: if an index is out of range.
            ValueError: with ``dates='all'``, if the samples have different
                numbers of dates.
        """
        indices = _rows(indices, len(self.files))
        rows = np.asarray(indices, dtype=np.int64)
        fields = {'point': torch.from_numpy(self.points[rows])}
        if self.dated is None:
            return [self.files[i] for i in indices], fields
        if self.dates == 'pair':
            size = len(indices)
            if self._pair_draws is None:
                uniform = torch.rand((size, 2), dtype=torch.float64).numpy()
            else:
                uniform = self._pair_draws[np.asarray(indices, dtype=np.int64)]
            chosen = np.empty((size, 2), dtype=np.int64)
            for k, i in enumerate(indices):
                n = len(self.dated[i])
                first = min(int(uniform[k, 0] * n), n - 1)
                second = min(int(uniform[k, 1] * (n - 1)), n - 2)
                chosen[k] = first, second + (second >= first)
        else:
            counts = {len(self.dated[i]) for i in indices}
            if len(counts) > 1:
                raise ValueError(
                    "dates='all': the samples have different numbers of dates "
                    f'({sorted(counts)}); read them one by one'
                )
            chosen = np.tile(np.arange(counts.pop()), (len(indices), 1))
        fns = [
            self.dated[i][t][1]
            for i, row in zip(indices, chosen, strict=True)
            for t in row
        ]
        days = np.stack(
            [self._days[i][row] for i, row in zip(indices, chosen, strict=True)]
        )
        fields['date'] = torch.from_numpy(days.reshape(len(indices), -1))
        return fns, fields

    def batch_shape(self, size: int) -> tuple[int, ...]:
        """Shape of a batch of *size* samples' images.

        Args:
            size: number of samples.

        Returns:
            ``(size, C, H, W)``, or with ``dates='pair'`` ``(size, 2, C, H,
            W)``: the shape :meth:`read_images` fills (``H, W``:
            :attr:`patch_size`).

        Raises:
            ValueError: with ``dates='all'`` (points have different numbers of
                dates).
        """
        if self.dates == 'all':
            raise ValueError(
                "dates='all' has no batch shape: points have different numbers "
                'of dates; read the samples one by one'
            )
        images = (size, 2) if self.dates == 'pair' else (size,)
        return (*images, len(self.bands), *self.patch_size)

    def read_images(
        self, indices: Sequence[int], out: NDArray[np.uint16]
    ) -> dict[str, Tensor]:
        """Read the images of several samples into a preallocated array.

        The images :meth:`draw` chooses (pairs of dates: drawn now), then
        :meth:`read_files`. To read one batch from several threads, draw
        once and split the files instead, as
        :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader` does.

        Args:
            indices: indices of the samples.
            out: uint16 of shape :meth:`batch_shape` ``(len(indices))``.

        Returns:
            The samples' other tensors (``point``, and ``date`` unless
            ``dates='index'``; see :meth:`draw`).

        Raises:
            RuntimeError: if an image cannot be read or is not 12 uint16 bands
                of :attr:`patch_size`; the message names the file.
            ValueError: if *out* is not uint16 of that shape.
        """
        shape = self.batch_shape(len(indices))
        _check_out(out, shape)
        fns, fields = self.draw(indices)
        flat = out.view()
        flat.shape = (len(fns), *shape[-3:])  # a view, or AttributeError
        self.read_files(fns, flat)
        return fields

    def read_files(self, fns: Sequence[str], out: NDArray[np.uint16]) -> None:
        """Read images by file name into a preallocated array.

        The stored values, uint16, without *transforms*. From the packed
        layout by contiguous runs of its memory maps
        (:meth:`PackedLayout.read_into`); safe to call from several threads
        at once on disjoint parts of *out* (the copies release the GIL), which
        is what :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader` does.

        Args:
            fns: image files under ``images/`` (from :meth:`draw`).
            out: ``(len(fns), C, H, W)`` uint16.

        Raises:
            RuntimeError: if an image cannot be read or is not 12 uint16 bands
                of :attr:`patch_size`; the message names the file.
            ValueError: if *out* is not uint16 of that shape (nothing is read).
        """
        _check_out(out, (len(fns), len(self.bands), *self.patch_size))
        indexes = None if self.bands == self.all_bands else self.band_indexes
        if self.packed is not None:
            self.packed.read_into(fns, out, indexes)
            return
        for i, fn in enumerate(fns):
            out[i] = read_geotiff(self.images_dir / fn, indexes, self.patch_size)

    def _read(self, fn: str) -> NDArray[np.uint16]:
        """Read the selected bands of one patch from the active layout."""
        indexes = None if self.bands == self.all_bands else self.band_indexes
        if self.packed is not None:
            return self.packed.read(fn, indexes)
        return read_geotiff(self.images_dir / fn, indexes, self.patch_size)

    def _check_files(
        self,
        fns: Sequence[str],
        dated: dict[str, list[tuple[datetime.date, str]]] | None,
        listing: set[str] | None = None,
    ) -> None:
        """Fail now, not mid-training, if rows of the index (or dates) have no data.

        Args:
            fns: the files of ``index.csv``.
            dated: each point's dates and files (``dates='index'``: None).
            listing: the names in ``images/`` if already listed since the last
                change (by :meth:`_verify`), else None to list them now.
        """
        if self.mode == 'points':
            return
        if self.packed is not None:
            present: Container[str] = self.packed.location
            where = f'the packed layout in {self.packed.directory}'
        else:
            present = self._image_files() if listing is None else listing
            where = str(self.images_dir)
        listed = [(self.root / 'index.csv', fns)]
        if dated is not None:
            others = [fn for point in dated.values() for _, fn in point]
            listed.append((self.root / DATES_FILE, others))
        for source, names in listed:
            missing = [fn for fn in names if fn not in present]
            if missing:
                shown = ', '.join(missing[:5]) + (', ...' if len(missing) > 5 else '')
                repair = (
                    f'; run {pack_command(self.root, self.patch_size)} again to '
                    'pack them'
                    if self.packed is not None and source.name == DATES_FILE
                    else ''
                )
                raise MissingFilesError(
                    f'{len(missing)} of {len(names)} files listed in '
                    f'{source} are missing from {where}: {shown}{repair}'
                )

    def _check_size(
        self,
        fns: Sequence[str],
        verify: bool,
        dated: dict[str, list[tuple[datetime.date, str]]] | None,
    ) -> None:
        """Fail now if the patches are not of the declared size.

        The packed layout's size was checked when it was opened
        (``check_size``, before any hashing). Of the GeoTIFFs, the header of
        the first is read, or, with *verify*, every one is decoded. Every read
        checks its patch too.
        """
        if self.mode == 'points' or self.packed is not None:
            return
        first = self.images_dir / fns[0]
        try:
            check_geotiff(first, self.patch_size)
        except RuntimeError as error:
            found = check_geotiff(first)  # 12 readable uint16 bands, other size?
            # a readable patch of another size: the argument is wrong (or
            # this one patch is, which the message leaves to the user); the
            # option too, for a command line (probe-images --patch-size)
            option = f' (--patch-size {found[0]})' if found[0] == found[1] else ''
            raise ValueError(
                f"{error} (the dataset's patch_size); pass patch_size={found}"
                f'{option} if every patch of this dataset has that size'
            ) from None
        if verify:
            if dated is not None:
                fns = [fn for point in dated.values() for _, fn in point]
            bar = tqdm(
                fns,
                desc='verifying GeoTIFFs',
                unit='patch',
                disable=not self.progress,
            )
            for fn in bar:
                read_geotiff(self.images_dir / fn, size=self.patch_size)

    def _nodata_fractions(self, fns: Sequence[str]) -> list[float]:
        """Nodata fraction of each file: packed record, nodata.csv, or measured."""
        if self.packed is not None:
            return [self.packed.nodata[fn] for fn in fns]
        record_path = self.root / NODATA_FILE
        record = read_nodata_file(record_path) if record_path.is_file() else {}
        if all(fn in record for fn in fns):
            return [record[fn] for fn in fns]
        fractions = []
        bar = tqdm(
            fns,
            desc='measuring nodata (once; recorded in nodata.csv)',
            disable=not self.progress,
        )
        for fn in bar:
            if fn in record:
                fractions.append(record[fn])
            else:
                image = read_geotiff(self.images_dir / fn, size=self.patch_size)
                fractions.append(nodata_fraction(image))
        try:
            write_nodata_file(record_path, fns, fractions)
        except OSError as error:  # a read-only root (shared data): still usable
            warnings.warn(
                f'{record_path}: cannot record the nodata fractions just '
                f'measured ({error}); they are measured again at every '
                'construction until this file can be written',
                stacklevel=3,
            )
        return fractions

    def _image_files(self) -> set[str]:
        """The names in ``images/`` (none when it is missing)."""
        if not self.images_dir.is_dir():
            return set()
        return set(os.listdir(self.images_dir))

    def _verify(
        self, layout: Literal['auto', 'geotiff', 'packed']
    ) -> tuple[list[str], NDArray[np.float64], set[str] | None]:
        """Find, extract or download the dataset, and read its index.

        ``index.csv`` is downloaded if it is missing. The images are left
        alone when none is read (``mode='points'``) or when they are read
        from a packed layout (*layout* ``'auto'`` or ``'packed'`` with a
        ``packed/manifest.json``: the GeoTIFFs may be deleted after packing).
        Otherwise an archive counts as extracted only while its marker
        (:meth:`_marker`, which records the files the extraction gave)
        exists and every file ``index.csv`` lists that the archive gave is
        in ``images/`` (:meth:`_extracted`). One that is not is extracted from
        the root, where it is (its SHA-256 checked first, with *checksum*), or
        else downloaded and extracted (with *download*): so images lost after
        an extraction come back from the archive, or from a new download,
        while a file ``index.csv`` lists but no archive holds costs one
        extraction, not one per construction (:meth:`_check_files` names it).
        An archive extracted once and deleted since is not needed without
        *download*; nor are archives at all when ``images/`` holds files
        (extracted by hand): :meth:`_check_files` then names any file still
        missing. When ``images/`` holds every file ``index.csv`` lists
        (extracted by hand, or by TorchGeo's ``S2100k``, which writes no
        marker), nothing is downloaded, even with *download*; an archive in
        the root without a marker is still extracted (once).

        ``images/`` is listed once; after an extraction, the listing is
        stale and :meth:`_check_files` lists it again.

        Args:
            layout: the *layout* argument of the dataset.

        Returns:
            The file names and ``(N, 2)`` (lon, lat) of ``index.csv``, and the
            names in ``images/`` (None if it was not listed, or has changed
            since: an archive was extracted).

        Raises:
            DatasetNotFoundError: if the dataset is not found and *download* is False.
            RuntimeError: if a checksum does not match.
            DatasetTableError: if ``index.csv`` is malformed or lists no patches.
        """
        index = self.root / 'index.csv'
        if not index.is_file():
            if not self.download:
                raise self._not_found()
            self._fetch(*self.index_remote)
        fns, coords = read_index(index)
        if not fns:
            raise DatasetTableError(f'{index} lists no patches (only a header)')

        packed = (self.root / PACKED_DIR / 'manifest.json').is_file()
        if self.mode == 'points' or (packed and layout != 'geotiff'):
            return fns, coords, None
        present = self._image_files()
        missing = {fn for fn in fns if fn not in present}
        pending = [
            remote
            for remote in self.archive_remotes
            if not self._extracted(remote, missing)
        ]
        local = [r for r in pending if (self.root / _filename(r[0])).is_file()]
        if not missing:
            # every image is here (extracted by hand, or by TorchGeo's S2100k,
            # which writes no marker): extract the archives at hand, which
            # rewrites an extraction killed before its marker, but download none
            pending = local
        if not pending:
            return fns, coords, present
        if not local and not self.download:
            if present or all(self._marker(r).exists() for r in pending):
                # nothing to extract: _check_files says more
                return fns, coords, present
            raise self._not_found()
        extracted = False
        for remote in pending:
            path = self.root / _filename(remote[0])
            if not path.is_file():
                if not self.download:
                    if self._marker(remote).exists():
                        continue  # extracted once; nothing to extract again from
                    raise self._not_found()
                self._fetch(*remote)
            elif self.checksum and (actual := sha256_file(path)) != remote[1]:
                raise RuntimeError(
                    f'{path}: SHA-256 mismatch (expected {remote[1]}, got '
                    f'{actual}); delete it and download again (download=True)'
                )
            files = extract_safely(path, self.images_dir)
            extracted = True
            self._write_marker(remote, files)
        return fns, coords, None if extracted else present

    def _not_found(self) -> DatasetNotFoundError:
        """TorchGeo's error, naming the root as a plain path."""
        shown = SimpleNamespace(root=_PlainText(self.root), download=self.download)
        return DatasetNotFoundError(cast(NonGeoDataset, shown))

    def _marker(self, remote: tuple[str, str]) -> Path:
        """File recording that an archive was extracted, and what it gave.

        JSON, ``{"format": ..., "archive": name, "files": [...]}``: the files
        the extraction wrote, relative to ``images/``. Earlier versions of
        this package wrote it empty (what the archive gave is then unknown).
        """
        return self.root / f'.{_filename(remote[0])}.extracted'

    def _write_marker(self, remote: tuple[str, str], files: Sequence[str]) -> None:
        """Record, atomically, that an archive was extracted and gave *files*."""
        record = {
            'format': _MARKER_FORMAT,
            'archive': _filename(remote[0]),
            'files': list(files),
        }
        with atomic_path(self._marker(remote)) as tmp:
            tmp.write_text(json.dumps(record, indent=0) + '\n', encoding='utf-8')

    def _given(self, remote: tuple[str, str]) -> set[str] | None:
        """The files an archive gave when extracted, from its marker.

        Returns:
            Their names relative to ``images/``, or None when unknown: no
            marker, one written empty by an earlier version, or one that is
            not a record of this kind.
        """
        try:
            record = json.loads(self._marker(remote).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get('format') != _MARKER_FORMAT:
            return None
        files = record.get('files')
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            return None
        return set(files)

    def _extracted(self, remote: tuple[str, str], missing: set[str]) -> bool:
        """Whether an archive counts as extracted.

        It does while its marker exists and none of the *missing* files (of
        ``index.csv``, absent from ``images/``) is one it gave. A marker that
        does not say what the archive gave (an earlier version's) counts only
        while nothing is missing; the extraction that follows records it.

        Args:
            remote: the archive's ``(url, sha256)``.
            missing: the files of ``index.csv`` not in ``images/``.
        """
        if not self._marker(remote).exists():
            return False
        if not missing:
            return True
        given = self._given(remote)
        return given is not None and missing.isdisjoint(given)

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

        A sample of several dates (``image`` ``(T, C, H, W)``) is shown as
        a row of ``T`` images, each titled by its date.

        A sample in reflectance (as the datamodule's augmentation gives it,
        divided by 10,000: floating point, no RGB value above
        :attr:`REFLECTANCE_MAX`) is shown on the same scale, in the same
        colours.

        A sample without ``image`` (``mode='points'``) is shown as its point
        on a longitude/latitude frame of the whole world; one without
        ``point`` as its image, without the (lon, lat) title.

        Args:
            sample: a sample returned by :meth:`__getitem__`.
            show_titles: show the (lon, lat) above the image (and the dates;
                with several dates, the (lon, lat) goes under *suptitle*).
            suptitle: optional figure title.

        Returns:
            A matplotlib Figure with the rendered sample.

        Raises:
            RGBBandsMissingError: if the sample has an image and the dataset
                lacks B04, B03 or B02.
            ValueError: if the sample has neither ``image`` nor ``point``, or
                an image whose bands are not the dataset's (their number).
        """
        where = None
        if 'point' in sample:
            lon, lat = (float(v) for v in sample['point'])
            where = f'lon {lon:.4f}, lat {lat:.4f}'
        if 'image' not in sample:
            if where is None:
                raise ValueError(
                    "S2100K.plot: the sample has neither 'image' nor 'point' "
                    f'(its keys: {sorted(sample)}); nothing to plot'
                )
            fig, ax = plt.subplots(figsize=(8, 4))
            ax.plot([lon], [lat], marker='o', color='tab:red', linestyle='none')
            ax.set_xlim(-180.0, 180.0)
            ax.set_ylim(-90.0, 90.0)
            ax.set_aspect('equal')
            ax.set_xlabel('longitude (degrees)')
            ax.set_ylabel('latitude (degrees)')
            if show_titles:
                ax.set_title(where)
            if suptitle is not None:
                fig.suptitle(suptitle)
            return fig
        if not all(band in self.bands for band in self.rgb_bands):
            raise RGBBandsMissingError()
        rgb_index = [self.bands.index(b) for b in self.rgb_bands]
        images = sample['image']
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != len(self.bands):
            raise ValueError(
                f"S2100K.plot: the sample's image has {images.shape[-3]} bands, "
                f'but this dataset gives {len(self.bands)} {self.bands} (image '
                f'shape {tuple(sample["image"].shape)}, expected (C, H, W) or '
                '(T, C, H, W)); plot a sample with the bands of this dataset'
            )
        count = len(images)
        scale = self.RGB_SCALE
        rgb_values = images[:, rgb_index]
        if (
            rgb_values.is_floating_point()
            and rgb_values.numel()
            and float(rgb_values.abs().max()) <= self.REFLECTANCE_MAX
        ):
            scale = self.RGB_SCALE / 10000  # already reflectance
        fig, axes = plt.subplots(1, count, figsize=(4 * count, 4), squeeze=False)
        days = sample.get('date')
        for t, ax in enumerate(axes[0]):
            rgb = rgb_values[t].double()
            image = (rgb / scale).clamp(0, 1)
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.axis('off')
            if show_titles and days is not None:
                day = _EPOCH + datetime.timedelta(days=int(days.reshape(-1)[t]))
                ax.set_title(day.isoformat())
        if show_titles and where is not None:
            if days is None:
                axes[0, 0].set_title(where)
            else:  # the axes hold the dates: the point goes in the figure title
                suptitle = where if suptitle is None else f'{suptitle}\n{where}'
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig
