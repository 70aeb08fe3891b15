"""The S2-100K file layout: its bands, files and readers.

Public, since the dataset, the packer and the builders share it.

Reading ``index.csv``, decoding one GeoTIFF patch with errors that name the
file, measuring nodata, atomic writes, and the reader of the packed layout
(see :mod:`torchgeo_satclip.datasets.pack` for the format and why).
"""

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError

from .._io import atomic_path
from ..geo import validate_lonlat

__all__ = [
    'ALL_BANDS',
    'NODATA_FILE',
    'PACKED_DIR',
    'PACKED_FORMAT',
    'PackedLayout',
    'nodata_fraction',
    'read_geotiff',
    'read_index',
    'read_nodata_file',
    'sha256_file',
    'write_nodata_file',
]

#: The 12 bands of S2-100K, in file order (Sentinel-2 L2A has no B10).
ALL_BANDS: tuple[str, ...] = (
    'B01',
    'B02',
    'B03',
    'B04',
    'B05',
    'B06',
    'B07',
    'B08',
    'B8A',
    'B09',
    'B11',
    'B12',
)

#: Folder (inside the dataset root) of the packed layout.
PACKED_DIR = 'packed'

#: ``format`` field of a packed layout's ``manifest.json``.
PACKED_FORMAT = 'torchgeo-satclip/s2-100k-packed'

#: Recorded nodata fractions (``fn, nodata_fraction``) inside the dataset root.
NODATA_FILE = 'nodata.csv'


def read_index(path: Path) -> tuple[list[str], NDArray[np.float64]]:
    """Read an S2-100K ``index.csv``.

    Args:
        path: the CSV file, with the columns ``fn``, ``lon`` and ``lat``.

    Returns:
        The file names and an ``(N, 2)`` array of (lon, lat) in degrees.

    Raises:
        ValueError: if a column is missing or a coordinate is not a finite
            (lon, lat) in degrees; the message names the file and line.
    """
    fns: list[str] = []
    coords: list[tuple[float, float]] = []
    lines: list[int] = []
    with open(path, newline='') as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        missing = {'fn', 'lon', 'lat'} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f'{path}: missing column(s) {sorted(missing)}')
        for line, row in enumerate(reader, start=2):
            try:
                coords.append((float(row['lon']), float(row['lat'])))
            except (TypeError, ValueError):
                raise ValueError(
                    f'{path}, line {line}: cannot read lon/lat from {row!r}'
                ) from None
            fns.append(row['fn'].strip())
            lines.append(line)
    lonlat = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    validate_lonlat(
        lonlat,
        where=lambda i: f'{path}, line {lines[i]}',
        columns=('lon', 'lat'),
        swap_hint='S2-100K stores lon before lat',
    )
    return fns, lonlat


def read_geotiff(
    path: Path, indexes: Sequence[int] | None = None
) -> NDArray[np.uint16]:
    """Decode one S2-100K patch.

    Args:
        path: the GeoTIFF file.
        indexes: zero-based band indexes to read (default: all 12).

    Returns:
        A ``(C, H, W)`` uint16 array.

    Raises:
        RuntimeError: if the file cannot be decoded or is not a 12-band uint16
            image; the message names the file.
    """
    try:
        with rasterio.open(path) as src:
            if src.count != len(ALL_BANDS) or src.dtypes[0] != 'uint16':
                raise RuntimeError(
                    f'{path}: expected {len(ALL_BANDS)} uint16 bands, found '
                    f'{src.count} {src.dtypes[0]} band(s)'
                )
            if indexes is None:
                array = src.read()
            else:
                array = src.read([i + 1 for i in indexes])
    except (RasterioError, OSError) as error:
        raise RuntimeError(f'{path}: cannot read the image ({error})') from error
    return np.asarray(array, dtype=np.uint16)


def nodata_fraction(image: NDArray[np.uint16]) -> float:
    """Fraction of pixels that are 0 in every band (Sentinel-2 L2A nodata).

    Args:
        image: a ``(C, H, W)`` patch.

    Returns:
        A number in [0, 1].
    """
    return float(np.mean(~np.any(image != 0, axis=0)))


def sha256_file(path: Path, chunk_size: int = 1 << 22) -> str:
    """Return the SHA-256 of a file, streamed (constant memory).

    Args:
        path: the file.
        chunk_size: bytes read at a time.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_nodata_file(
    path: Path, fns: Sequence[str], fractions: Sequence[float]
) -> None:
    """Write recorded nodata fractions atomically.

    Args:
        path: the CSV file to write (``fn, nodata_fraction``).
        fns: file names.
        fractions: the nodata fraction of each file.
    """
    with atomic_path(path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['fn', 'nodata_fraction'])
        for fn, fraction in zip(fns, fractions, strict=True):
            writer.writerow([fn, f'{fraction:.6f}'])


def read_nodata_file(path: Path) -> dict[str, float]:
    """Read recorded nodata fractions.

    A file with only an ``fn`` column is a plain list of nodata patches (each
    counts as fraction 1).

    Args:
        path: a CSV file with the columns ``fn`` and optionally ``nodata_fraction``.

    Returns:
        Nodata fraction by file name.
    """
    with open(path, newline='') as f:
        reader = csv.DictReader(f, skipinitialspace=True)
        return {
            row['fn'].strip(): float(row.get('nodata_fraction') or 1.0)
            for row in reader
        }


@dataclass
class PackedLayout:
    """A complete packed layout: what ``manifest.json`` and ``files.csv`` say.

    Samples are read through memory maps opened lazily (once per process, so
    DataLoader workers each open their own and nothing large is pickled).
    """

    directory: Path
    bands: tuple[str, ...]
    height: int
    width: int
    shards: list[str]
    #: file name -> (shard number, row in the shard)
    location: dict[str, tuple[int, int]]
    #: file name -> nodata fraction measured while packing
    nodata: dict[str, float]

    def __post_init__(self) -> None:
        """Start with no shard opened."""
        self._maps: dict[int, NDArray[np.uint16]] = {}

    @classmethod
    def open(cls, directory: Path) -> 'PackedLayout | None':
        """Read a packed layout.

        Args:
            directory: the ``packed`` folder.

        Returns:
            The layout, or None if there is no complete one (no manifest: packing
            never finished).

        Raises:
            ValueError: if the manifest is of another format or version.
        """
        manifest_path = directory / 'manifest.json'
        if not manifest_path.is_file():
            return None
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get('format') != PACKED_FORMAT or manifest.get('version') != 1:
            raise ValueError(
                f'{manifest_path}: not a version 1 {PACKED_FORMAT} manifest'
            )
        location: dict[str, tuple[int, int]] = {}
        nodata: dict[str, float] = {}
        with open(directory / 'files.csv', newline='') as f:
            for row in csv.DictReader(f):
                location[row['fn']] = (int(row['shard']), int(row['row']))
                nodata[row['fn']] = float(row['nodata_fraction'])
        return cls(
            directory=directory,
            bands=tuple(manifest['bands']),
            height=int(manifest['height']),
            width=int(manifest['width']),
            shards=list(manifest['shards']),
            location=location,
            nodata=nodata,
        )

    def _shard(self, number: int) -> NDArray[np.uint16]:
        """Return the memory map of one shard, opening it on first use."""
        array = self._maps.get(number)
        if array is None:
            path = self.directory / self.shards[number]
            try:
                array = np.load(path, mmap_mode='r')
            except (OSError, ValueError) as error:
                raise RuntimeError(
                    f'{path}: cannot open packed shard ({error})'
                ) from error
            self._maps[number] = array
        return array

    def read(self, fn: str, indexes: Sequence[int] | None = None) -> NDArray[np.uint16]:
        """Read one patch.

        Args:
            fn: its file name in ``index.csv``.
            indexes: zero-based band indexes (default: all).

        Returns:
            A ``(C, H, W)`` uint16 array (a copy, safe to modify).
        """
        shard, row = self.location[fn]
        array = self._shard(shard)
        if indexes is None:
            return np.array(array[row])
        return np.array(array[row, list(indexes)])

    def read_into(
        self,
        fns: Sequence[str],
        out: NDArray[np.uint16],
        indexes: Sequence[int] | None = None,
    ) -> None:
        """Read several patches into one preallocated array.

        Rows are read shard by shard in storage order, and a run of rows that
        is consecutive both in a shard and in *fns* is copied with one slice
        (a single contiguous read of the memory map), so an unshuffled batch
        is one or two large copies and a shuffled one a copy per patch,
        without any per-patch array allocation.

        Args:
            fns: file names in ``index.csv``, in the order wanted in *out*.
            out: ``(len(fns), C, H, W)`` uint16, written in place.
            indexes: zero-based band indexes (default: all bands).

        Raises:
            ValueError: if *out* has the wrong shape or dtype.
        """
        bands = len(self.bands) if indexes is None else len(indexes)
        expected = (len(fns), bands, self.height, self.width)
        if out.shape != expected or out.dtype != np.uint16:
            raise ValueError(
                f'out must be uint16 of shape {expected}, not {out.dtype} '
                f'{tuple(out.shape)}'
            )
        places = sorted(
            (*self.location[fn], position) for position, fn in enumerate(fns)
        )
        band_list = None if indexes is None else list(indexes)
        start = 0
        while start < len(places):
            shard, row, position = places[start]
            stop = start + 1
            while (
                stop < len(places)
                and places[stop][0] == shard
                and places[stop][1] == row + (stop - start)
                and places[stop][2] == position + (stop - start)
            ):
                stop += 1
            array = self._shard(shard)
            count = stop - start
            rows = array[row : row + count]
            if band_list is not None:
                rows = rows[:, band_list]
            out[position : position + count] = rows
            start = stop

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the open memory maps (which would copy the data)."""
        state = self.__dict__.copy()
        state['_maps'] = {}
        return state
