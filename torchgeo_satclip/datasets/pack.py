"""Pack S2-100K GeoTIFFs once into a layout that is fast to read.

Decoding the LZW GeoTIFFs is the data-loading bottleneck of SatCLIP
pretraining: the real patches are tiled 512 x 512 with pixel interleave, so
every read inflates a whole 12-band 512 x 512 LZW tile to return 256 x 256,
about 47 patches per second per core on a fast machine (33/s on the shared
2-core development box). An H100 training a ViT-S/16 wants several thousand
images per second.

The packed format is deliberately the simplest thing that removes decoding:
**uncompressed uint16 shards in NumPy's ``.npy`` format, read through memory
maps**. Reading a patch is then a page-cache copy of 1.5 MiB, no decoding at
all. Measured on the shared 2-core development machine (other jobs running,
load average about 3) with
``python benchmarks/data_pipeline.py --num-patches 300`` (300 real-shaped
patches: the 3 real ones plus rotated/offset copies):

=====================================  =======  ======  =====
images/s                               GeoTIFF  packed  ratio
=====================================  =======  ======  =====
``__getitem__`` in-process, 1 core        38.3  1870.7  48.9x
DataLoader, 1 worker, per worker          26.2   154.8   5.9x
DataLoader, 2 workers, per worker         14.5    83.8   5.8x
=====================================  =======  ======  =====

Decoding per core is ~50x faster; through a DataLoader the packed rate is
bounded by collating and passing float32 batches between processes (3 MiB per
image), not by reading, and on this oversubscribed machine by CPU contention.
Compression codecs from the standard library were measured and rejected: on
a real patch zlib level 1 decodes 92 patches/s per core (40 % of the raw
size) and lzma 14/s (32 %), i.e. only 2x, or less than, LZW GeoTIFF. A fast
codec (Blosc/Zstd/LZ4 via numcodecs or imagecodecs) would roughly halve the
disk footprint but adds a dependency and still costs CPU per
sample, which is the scarce resource here. The price is disk: 12 x 256 x 256
x 2 B = 1.5 MiB per patch, 157 GB for the full 100,000 patches (the GeoTIFFs
are about 100 GB), split into shards of ``shard_size`` patches (default 1,024,
1.6 GB) so that packing can resume and shards can live on any file system
that supports memory maps. At 157 GB the set does not fit in the page cache
of most machines; reads then come from disk (1.5 MiB sequential-ish reads:
an NVMe drive at 3 GB/s serves ~2,000 patches/s, still far above LZW).

Layout (``root/packed/``)::

    manifest.json         format, version, bands, height, width, shard names
    files.csv             fn, shard, row, nodata_fraction
    shard_00000.npy       uint16 (n, 12, H, W), n <= shard_size
    shard_00000.json      the files of that shard and their nodata fractions

Packing is resumable: a shard is written to a temporary name and renamed when
complete (after its ``.json``), so after an interruption the next run keeps
every finished shard whose file list still matches ``index.csv`` and redoes
the rest. ``manifest.json`` is written last: a layout without it is
incomplete and the dataset ignores it. The nodata fraction of every patch
(pixels that are 0 in all bands) is measured on the way and also recorded in
``root/nodata.csv``.
"""

import csv
import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from .._io import atomic_path
from .s2_100k_files import (
    ALL_BANDS,
    NODATA_FILE,
    PACKED_DIR,
    PACKED_FORMAT,
    nodata_fraction,
    read_geotiff,
    read_index,
    write_nodata_file,
)

__all__ = ['PackResult', 'pack_s2_100k']


@dataclass
class PackResult:
    """What :func:`pack_s2_100k` wrote."""

    #: the packed folder
    directory: Path
    #: number of patches packed
    num_samples: int
    #: number of shards
    num_shards: int
    #: shards kept from an earlier, interrupted run
    num_resumed_shards: int
    #: total size of the shards in bytes
    num_bytes: int


def _decode(path: Path) -> tuple[NDArray[np.uint16], float]:
    """Decode one patch and measure its nodata (a top-level function: picklable)."""
    image = read_geotiff(path)
    return image, nodata_fraction(image)


def _shard_name(number: int) -> str:
    """File name of shard *number*."""
    return f'shard_{number:05d}.npy'


def _shard_done(
    directory: Path, number: int, files: Sequence[str]
) -> list[float] | None:
    """Nodata fractions of a finished shard holding *files*, or None if not done."""
    npy = directory / _shard_name(number)
    meta = npy.with_suffix('.json')
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        record = json.loads(meta.read_text())
        header = np.load(npy, mmap_mode='r')
    except (OSError, ValueError):
        return None
    if record.get('files') != list(files) or header.shape[0] != len(files):
        return None
    return [float(v) for v in record['nodata_fraction']]


def pack_s2_100k(
    root: str | os.PathLike[str],
    *,
    shard_size: int = 1024,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> PackResult:
    """Pack the GeoTIFFs of an S2-100K root into ``root/packed`` (see module doc).

    Args:
        root: the dataset root (``index.csv`` and ``images/``).
        shard_size: patches per shard (1,024 x 1.5 MiB = 1.6 GB).
        num_workers: decoding processes (0: decode in this process).
        overwrite: delete an existing (complete or partial) packed layout first.
        progress: show a progress bar.

    Returns:
        What was written.

    Raises:
        ValueError: on an invalid argument or if the patches differ in shape.
        FileNotFoundError: if ``index.csv`` or files it lists are missing.
        RuntimeError: if a patch cannot be decoded (the message names it).
    """
    for name, value in (('shard_size', shard_size), ('num_workers', num_workers)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{name} must be an integer, not {value!r}')
    if shard_size < 1:
        raise ValueError(f'shard_size must be positive, not {shard_size}')
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, not {num_workers}')
    root = Path(root)
    fns = _listed_files(root)
    images = root / 'images'
    out = root / PACKED_DIR
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'manifest.json').unlink(missing_ok=True)  # incomplete until rewritten

    height, width = read_geotiff(images / fns[0]).shape[1:]
    groups = [fns[i : i + shard_size] for i in range(0, len(fns), shard_size)]
    fractions: list[list[float] | None] = [
        _shard_done(out, k, group) for k, group in enumerate(groups)
    ]
    resumed = sum(f is not None for f in fractions)
    done = sum(len(g) for g, f in zip(groups, fractions, strict=True) if f is not None)
    with tqdm(
        total=len(fns),
        initial=done,
        desc='packing S2-100K',
        unit='patch',
        disable=not progress,
    ) as bar:
        _pack_shards(out, images, groups, fractions, (height, width), num_workers, bar)

    all_fractions = [f for shard in fractions if shard is not None for f in shard]
    _write_index(out, fns, all_fractions, shard_size)
    write_nodata_file(root / NODATA_FILE, fns, all_fractions)
    manifest = {
        'format': PACKED_FORMAT,
        'version': 1,
        'dtype': 'uint16',
        'bands': list(ALL_BANDS),
        'height': int(height),
        'width': int(width),
        'num_samples': len(fns),
        'shard_size': shard_size,
        'shards': [_shard_name(k) for k in range(len(groups))],
    }
    with atomic_path(out / 'manifest.json') as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + '\n')
    return PackResult(
        directory=out,
        num_samples=len(fns),
        num_shards=len(groups),
        num_resumed_shards=resumed,
        num_bytes=sum(
            (out / _shard_name(k)).stat().st_size for k in range(len(groups))
        ),
    )


def _listed_files(root: Path) -> list[str]:
    """The files ``root/index.csv`` lists, all present in ``root/images``."""
    index_path = root / 'index.csv'
    if not index_path.is_file():
        raise FileNotFoundError(f'{index_path} not found')
    fns, _ = read_index(index_path)
    images = root / 'images'
    present = set(os.listdir(images)) if images.is_dir() else set()
    missing = [fn for fn in fns if fn not in present]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} files listed in {index_path} are missing from {images}: '
            + ', '.join(missing[:5])
        )
    if not fns:
        raise ValueError(f'{index_path} lists no files')
    return fns


def _pack_shards(
    out: Path,
    images: Path,
    groups: Sequence[Sequence[str]],
    fractions: list[list[float] | None],
    size: tuple[int, int],
    num_workers: int,
    bar: 'tqdm[object]',
) -> None:
    """Write the shards not done yet, filling in their ``fractions``."""
    pool = (
        multiprocessing.get_context('spawn').Pool(num_workers)
        if num_workers > 0
        else None
    )
    try:
        for k, group in enumerate(groups):
            if fractions[k] is not None:
                continue
            paths = [images / fn for fn in group]
            decoded: Iterator[tuple[NDArray[np.uint16], float]] = (
                pool.imap(_decode, paths, chunksize=4) if pool else map(_decode, paths)
            )
            fractions[k] = _write_shard(out, k, group, paths, decoded, size, bar)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _write_index(
    out: Path, fns: Sequence[str], fractions: Sequence[float], shard_size: int
) -> None:
    """Write ``files.csv``: each file's shard, row and nodata fraction."""
    with atomic_path(out / 'files.csv') as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['fn', 'shard', 'row', 'nodata_fraction'])
        for i, (fn, fraction) in enumerate(zip(fns, fractions, strict=True)):
            writer.writerow([fn, i // shard_size, i % shard_size, f'{fraction:.6f}'])


def _write_shard(
    out: Path,
    number: int,
    files: Sequence[str],
    paths: Sequence[Path],
    decoded: Iterator[tuple[NDArray[np.uint16], float]],
    size: tuple[int, int],
    bar: 'tqdm[object]',
) -> list[float]:
    """Write one shard atomically and return the nodata fractions of its patches."""
    npy = out / _shard_name(number)
    shape = (len(files), len(ALL_BANDS), *size)
    fractions: list[float] = []
    with atomic_path(npy) as tmp:
        array = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.uint16, shape=shape)
        for row, (path, (image, fraction)) in enumerate(
            zip(paths, decoded, strict=True)
        ):
            if image.shape != shape[1:]:
                raise ValueError(f'{path}: shape {image.shape}, expected {shape[1:]}')
            array[row] = image
            fractions.append(fraction)
            bar.update(1)
        array.flush()
        del array
        with atomic_path(npy.with_suffix('.json')) as meta:
            meta.write_text(
                json.dumps({'files': list(files), 'nodata_fraction': fractions})
            )
    return fractions
