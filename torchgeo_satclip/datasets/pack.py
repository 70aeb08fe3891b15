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

Layout (``root/packed/``), version 2::

    manifest.json         format, version, dtype, bands, height, width,
                          num_samples, shard_size, checksum ("sha256"),
                          files_csv {bytes, sha256}, and per shard: name,
                          num_samples, bytes, sha256, sample_sha256, json_sha256
    files.csv             fn, shard, row, nodata_fraction, source_bytes,
                          source_mtime_ns, source_sha256
    shard_00000.npy       uint16 (n, 12, H, W), n <= shard_size
    shard_00000.json      that shard's files, nodata fractions, source
                          fingerprints, size, SHA-256 and sampled SHA-256

Packing is resumable: a shard is written to a temporary name and renamed when
complete, then its ``.json`` record (an earlier record of that shard is deleted
before the rename, so a record always describes the shard beside it), so after
an interruption the next run keeps
every finished shard whose file list still matches ``index.csv``, whose size,
array shape, sampled content (:func:`~.s2_100k_files.sampled_sha256`) and
SHA-256 (hashed whole, about a second per 1.6 GB shard) are those its ``.json``
records, and whose source GeoTIFFs are unchanged (same
size and modification time, or same SHA-256 when only the time changed: the
new time is then recorded); it redoes the rest. ``manifest.json`` is written
last: a layout without it is incomplete and the dataset ignores it. Once it is
written, the shards of an earlier pack that it does not list (left by a pack
with a larger ``shard_size`` or a shorter ``index.csv``) are deleted. The nodata
fraction of every patch (pixels that are 0 in all bands) is measured on the
way and also recorded in ``root/nodata.csv``. Every patch must be 12 uint16
bands of *patch_size* (S2-100K's 256 x 256 by default).

A multi-temporal dataset (``root/dates.csv``) has every image it lists
packed: first those of ``index.csv`` in its order (so single-date reads are
packed as they would be without dates), then the other dates, point by point
in the order of ``index.csv``, each point's by date.

Integrity. The manifest pins ``files.csv`` and every shard ``.json`` by
SHA-256, and every shard by size, SHA-256 and a sampled SHA-256 (16 blocks of
4 KiB); ``files.csv`` records a fingerprint of each source GeoTIFF (size,
modification time in ns, SHA-256 of the content; 100,000 of them would make a
10 MB manifest, so they live in the table the manifest pins). SHA-256 rather
than BLAKE2b: hashlib's SHA-256 runs at 1.7 GB/s on CPUs with SHA extensions
(BLAKE2b 0.7 GB/s on the development machine), so hashing a 1.6 GB shard
after writing it costs about a second, against ~20 s to decode its patches.
Every open of the layout (:meth:`~.s2_100k_files.PackedLayout.open`) checks
cheaply: the three kinds of record against each other (when ``files.csv``
and a shard's record are the ones the manifest pins, only their summaries),
each shard's size, ``.npy`` header (the manifest's height and width) and
sampled hash, and the size and modification time of each source GeoTIFF still
present (hashing only those whose time changed). On a synthetic layout of
100,000 patches on the shared 2-core development machine (load average 5),
``index.csv`` took 0.5 s to read as before, the records 0.8 s and the 100,000
source ``stat`` calls another 0.6 to 1 s; the 16 sampled 4 KiB reads per
shard (about 1,600 for the full set) come on top, from the page cache or the
disk. A full
check (``S2100K(..., verify=True)`` or ``torchgeo-satclip pack --verify
ROOT``, :func:`verify_packed`) also hashes every shard and every source, which
a bit flip inside a shard needs, and reports (without failing) the files
named as shards that the manifest does not list: an earlier pack's, never
read, taking disk space until a pack deletes them. A version 1 layout (written before these
records existed) is refused with a request to pack again.
"""

import csv
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import numbers
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from .._checks import check_flag
from .._io import atomic_path, parse_temporary_name, remove_stale_temporaries
from .s2_100k_files import (
    ALL_BANDS,
    DATES_FILE,
    FILES_COLUMNS,
    NODATA_FILE,
    PACKED_DIR,
    PACKED_FORMAT,
    PACKED_VERSION,
    DatasetTableError,
    GeoTIFFError,
    MissingFilesError,
    PackedLayout,
    PackedLayoutError,
    PackedShard,
    SourceFingerprint,
    as_patch_size,
    check_geotiff,
    nodata_fraction,
    npy_header,
    pack_command,
    read_dates_file,
    read_geotiff,
    read_index,
    sampled_sha256,
    sha256_file,
    shard_name,
    write_nodata_file,
)

__all__ = ['PackResult', 'VerifyResult', 'pack_s2_100k', 'verify_packed']

#: What decoding one source gives: the patch, its nodata fraction, its fingerprint.
_Decoded = tuple[NDArray[np.uint16], float, SourceFingerprint]


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


@dataclass
class VerifyResult:
    """What :func:`verify_packed` checked."""

    #: the packed folder
    directory: Path
    #: number of patches
    num_samples: int
    #: number of shards (each hashed whole)
    num_shards: int
    #: total size of the shards in bytes
    num_bytes: int
    #: source GeoTIFFs hashed and found as they were when packed
    num_sources_checked: int
    #: source GeoTIFFs absent (deleted after packing), not checked
    num_sources_missing: int
    #: files in the packed folder named as a shard or its ``.json`` record
    #: (``shard_00012.npy``, ``shard_00012.json``) that ``manifest.json``
    #: does not list, sorted: left by an earlier pack of more shards (a
    #: smaller ``shard_size``, a longer ``index.csv``) written by a version
    #: of this package that did not delete them, or that could not. Never
    #: read, so harmless to the layout, but each takes its disk space (1.6 GB
    #: at the default shard size). Delete them, or run ``torchgeo-satclip
    #: pack ROOT`` (with the dataset's ``--patch-size``), which deletes them
    #: and keeps the layout's shards (it needs the source GeoTIFFs).
    stray_files: list[Path] = field(default_factory=list)
    #: total size of :attr:`stray_files` in bytes
    stray_bytes: int = 0


def _decode(path: Path, size: tuple[int, int]) -> _Decoded:
    """Fingerprint and decode one patch, measure its nodata (picklable)."""
    fingerprint = SourceFingerprint.of(path)
    image = read_geotiff(path, size=size)
    return image, nodata_fraction(image), fingerprint


def _current_sources(
    images: Path, files: Sequence[str], recorded: Sequence[SourceFingerprint]
) -> tuple[SourceFingerprint, ...] | None:
    """The sources' fingerprints now, or None if a content changed.

    A source whose size and time are the recorded ones is unchanged; one whose
    time alone changed is hashed, and kept (with its new time) if its content
    is the recorded one.
    """
    current = []
    for fn, fingerprint in zip(files, recorded, strict=True):
        path = images / fn
        try:
            stat = os.stat(path)
            if not fingerprint.same_stat(stat) and (
                stat.st_size != fingerprint.size
                or sha256_file(path) != fingerprint.sha256
            ):
                return None
        except OSError:
            return None
        current.append(
            SourceFingerprint(stat.st_size, stat.st_mtime_ns, fingerprint.sha256)
        )
    return tuple(current)


def _shard_done(
    out: Path,
    number: int,
    files: Sequence[str],
    images: Path,
    size: tuple[int, int],
    previous: dict[str, dict[str, Any]],
) -> PackedShard | None:
    """The record of a finished shard holding *files*, or None to redo it.

    A shard is kept when its ``.json`` is valid and lists *files*, the
    ``.npy`` has the recorded size, shape, sampled content and, hashed whole
    last (about a second for a 1.6 GB shard, against some 20 s to decode its
    patches again), SHA-256, its sources are unchanged, and (when an earlier
    complete layout listed it) both are the ones that layout's manifest
    pinned. The new manifest pins the recorded SHA-256: a shard kept on its
    sampled blocks alone would carry damage between them into a layout that
    :func:`verify_packed` refuses.
    """
    npy = out / shard_name(number)
    meta = npy.with_suffix('.json')
    try:
        raw = meta.read_bytes()
        record = PackedShard.from_json(json.loads(raw))
        shape, fortran, dtype = npy_header(npy)
        num_bytes = npy.stat().st_size
        if (
            record.files != tuple(files)
            or shape != (len(files), len(ALL_BANDS), *size)
            or fortran
            or dtype != np.dtype(np.uint16)
            or num_bytes != record.num_bytes
            or sampled_sha256(npy) != record.sample_sha256
        ):
            return None
    except (OSError, ValueError):
        return None
    pinned = previous.get(npy.name)
    if pinned is not None and (
        pinned.get('json_sha256') != hashlib.sha256(raw).hexdigest()
        or pinned.get('sha256') != record.sha256
    ):
        return None
    sources = _current_sources(images, files, record.sources)
    if sources is None:
        return None
    try:
        if sha256_file(npy) != record.sha256:
            return None
    except OSError:
        return None
    if sources != record.sources:  # only modification times changed
        record = dataclasses.replace(record, sources=sources)
        with atomic_path(meta) as tmp:
            tmp.write_text(json.dumps(record.to_json()), encoding='utf-8')
    return record


def _previous_shards(out: Path) -> dict[str, dict[str, Any]]:
    """The shards the manifest of an earlier complete layout lists, by name."""
    try:
        manifest = json.loads((out / 'manifest.json').read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get('version') != PACKED_VERSION:
        return {}
    shards = manifest.get('shards')
    if not isinstance(shards, list):
        return {}
    return {
        s['name']: s
        for s in shards
        if isinstance(s, dict) and isinstance(s.get('name'), str)
    }


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete what killed packing runs left in *folder* (never a live run's).

    A run killed by SIGKILL leaves the shard it was writing under its
    temporary name (1.6 GB at the default shard size); the next run finds
    every such file by its name, whatever shard size the killed run used,
    and deletes those whose process is gone (see
    :func:`~torchgeo_satclip._io.remove_stale_temporaries`).
    """
    finals = {
        parsed[0]
        for entry in os.scandir(folder)
        if (parsed := parse_temporary_name(entry.name)) is not None
    }
    for final in sorted(finals):
        remove_stale_temporaries(folder / final)


#: The name of a shard or of its record, as :func:`shard_name` writes it.
_SHARD = re.compile(r'shard_(?P<number>[0-9]{5,})\.(?:npy|json)', re.ASCII)


def _unlisted_shard_files(out: Path, num_shards: int) -> list[os.DirEntry[str]]:
    """The files of *out* named as a shard the manifest does not list.

    Those named as :func:`shard_name` names a shard (or its ``.json``
    record) numbered *num_shards* or more, sorted by name; anything else
    (folders, temporaries, other names, ``shard_7.npy`` which
    :func:`shard_name` never writes) is not one.

    Args:
        out: the packed folder.
        num_shards: the number of shards the manifest lists.

    Returns:
        Their directory entries.
    """
    unlisted = []
    for entry in sorted(os.scandir(out), key=lambda e: e.name):
        match = _SHARD.fullmatch(entry.name)
        if match is None or entry.is_dir(follow_symlinks=False):
            continue
        number = int(match['number'])
        stem = entry.name.rpartition('.')[0]
        if number >= num_shards and shard_name(number) == f'{stem}.npy':
            unlisted.append(entry)
    return unlisted


#: The files of a layout besides its shards and their records.
_LAYOUT_FILES = frozenset({'manifest.json', 'files.csv'})


def _delete_layout(out: Path) -> None:
    """Delete an existing packed layout (*overwrite*).

    A plain folder goes with everything in it. A folder kept on another file
    system (``root/packed`` a symbolic link to it, or a mount point) stays, as
    do the link and any file packing does not write: only the manifest,
    ``files.csv``, the shards, their records and the temporaries of those are
    deleted.

    Args:
        out: the packed folder.
    """
    if not out.is_symlink() and not os.path.ismount(out):
        shutil.rmtree(out)
        return
    for entry in os.scandir(out):
        temporary = parse_temporary_name(entry.name)
        name = entry.name if temporary is None else temporary[0]
        if entry.is_dir(follow_symlinks=False) or not (
            name in _LAYOUT_FILES or _SHARD.fullmatch(name)
        ):
            continue
        Path(entry.path).unlink(missing_ok=True)


def _remove_orphan_shards(out: Path, num_shards: int) -> list[Path]:
    """Delete the shards of an earlier pack that the new manifest does not list.

    Called once the new ``manifest.json`` is in place: a pack with fewer
    shards (a larger *shard_size*, a shorter ``index.csv``) leaves the
    earlier pack's last shards behind (1.6 GB each at the default shard
    size). Only files named as :func:`shard_name` names a shard (and its
    ``.json`` record) numbered *num_shards* or more are removed; anything
    else in *out*, folders and other names included, is left alone.

    Args:
        out: the packed folder.
        num_shards: the number of shards the new manifest lists.

    Returns:
        The files deleted.

    Warns:
        UserWarning: for an orphan that cannot be deleted (the layout is
            complete and correct all the same), naming it and why.
    """
    removed: list[Path] = []
    for entry in _unlisted_shard_files(out, num_shards):
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # another run removed it first
        except OSError as error:
            warnings.warn(
                f'{entry.path}: cannot delete this shard of an earlier pack, '
                f'which {out / "manifest.json"} does not list ({error}); '
                'delete it by hand to free its space',
                stacklevel=3,
            )
            continue
        removed.append(Path(entry.path))
    return removed


def pack_s2_100k(
    root: str | os.PathLike[str],
    *,
    patch_size: int | tuple[int, int] = 256,
    shard_size: int = 1024,
    num_workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> PackResult:
    """Pack the GeoTIFFs of an S2-100K root into ``root/packed`` (see module doc).

    Shards of an earlier pack that the new manifest does not list are deleted
    once it is written.

    Args:
        root: the dataset root (``index.csv`` and ``images/``; with a
            ``dates.csv``, every image it lists is packed too).
        patch_size: ``(height, width)`` in pixels of every patch, or one side
            of a square patch (S2-100K: 256); the manifest records it.
        shard_size: patches per shard (1,024 x 1.5 MiB = 1.6 GB).
        num_workers: decoding processes (0: decode in this process); at
            most one per CPU and per patch left to decode are started.
        overwrite: delete an existing (complete or partial) packed layout
            first (of a ``packed`` folder linked to or mounted from another
            file system, only the layout's files: the folder stays).
        progress: show a progress bar.

    Returns:
        What was written.

    Raises:
        ValueError: on an invalid argument, or if the first patch has another
            size than *patch_size* (nothing is written).
        DatasetTableError: if ``index.csv`` or ``dates.csv`` is malformed
            (the message names the line) or ``index.csv`` lists no file.
        FileNotFoundError: if there is no ``index.csv``.
        MissingFilesError: if files ``index.csv`` (or ``dates.csv``) lists
            are missing from ``images/``.
        RuntimeError: if a patch cannot be decoded or a later one is not 12
            uint16 bands of *patch_size* (the message names it).
    """
    for name, value in (('shard_size', shard_size), ('num_workers', num_workers)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f'{name} must be an integer, not {value!r}')
    shard_size, num_workers = int(shard_size), int(num_workers)
    size = as_patch_size(patch_size)
    if shard_size < 1:
        raise ValueError(f'shard_size must be positive, not {shard_size}')
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0, not {num_workers}')
    overwrite = check_flag('overwrite', overwrite)  # 'false' would delete
    progress = check_flag('progress', progress)
    root = Path(root)
    fns = _listed_files(root)
    images = root / 'images'
    _check_first_patch(images / fns[0], size)
    out = root / PACKED_DIR
    if overwrite and out.exists():
        _delete_layout(out)
    previous = _previous_shards(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'manifest.json').unlink(missing_ok=True)  # incomplete until rewritten
    _remove_stale_temporaries(out)
    _remove_stale_temporaries(root)

    groups = [fns[i : i + shard_size] for i in range(0, len(fns), shard_size)]
    records: list[PackedShard | None] = [
        _shard_done(out, k, group, images, size, previous)
        for k, group in enumerate(groups)
    ]
    resumed = sum(r is not None for r in records)
    done = sum(len(g) for g, r in zip(groups, records, strict=True) if r is not None)
    with tqdm(
        total=len(fns),
        initial=done,
        desc='packing S2-100K',
        unit='patch',
        disable=not progress,
    ) as bar:
        _pack_shards(out, images, groups, records, size, num_workers, bar)

    shards = [r for r in records if r is not None]
    _write_index(out, shards)
    write_nodata_file(
        root / NODATA_FILE, fns, [f for r in shards for f in r.nodata_fraction]
    )
    _write_manifest(out, shards, size, shard_size)
    _remove_orphan_shards(out, len(shards))
    return PackResult(
        directory=out,
        num_samples=len(fns),
        num_shards=len(groups),
        num_resumed_shards=resumed,
        num_bytes=sum(r.num_bytes for r in shards),
    )


def verify_packed(
    root: str | os.PathLike[str],
    *,
    patch_size: int | tuple[int, int] = 256,
    progress: bool = True,
) -> VerifyResult:
    """Check a packed layout fully: every file against its record.

    On top of the checks of every open (see
    :meth:`~torchgeo_satclip.datasets.s2_100k_files.PackedLayout.open`),
    hashes every shard and every source GeoTIFF still present, and checks
    that every file ``index.csv`` (and ``dates.csv``, if any) lists is
    packed. Writes nothing.

    Files in the packed folder named as shards that ``manifest.json`` does
    not list (an earlier pack's) are no damage: the layout never reads them.
    They are reported in :attr:`VerifyResult.stray_files`, not raised.

    Args:
        root: the dataset root (``packed/``, ``index.csv``, ``images/``).
        patch_size: ``(height, width)`` in pixels of every patch, or one side
            of a square one, as given to :func:`pack_s2_100k`: the layout must
            have been packed at this size, and repair commands name it.
        progress: show progress bars.

    Returns:
        What was checked, and the stray shard files found.

    Raises:
        FileNotFoundError: if there is no complete packed layout, or no
            ``index.csv`` (so no check that every file it lists is packed).
        PackedLayoutError: if the layout is damaged or stale; the message
            names the file, what differs and how to repair it.
        ValueError: if ``index.csv`` or ``dates.csv`` is malformed, or the
            intact layout holds patches of another size than *patch_size*.
    """
    root = Path(root)
    size = as_patch_size(patch_size)
    progress = check_flag('progress', progress)
    command = pack_command(root, size)
    directory = root / PACKED_DIR
    layout = PackedLayout.open(
        directory,
        sources=root / 'images',
        verify=True,
        progress=progress,
        patch_size=size,
        check_size=True,
    )
    if layout is None:
        raise FileNotFoundError(
            f'no complete packed layout in {directory} (no manifest.json): run '
            f'{command} first'
        )
    index = root / 'index.csv'
    if not index.is_file():
        found = 'is a directory, not a file' if index.is_dir() else 'not found'
        raise FileNotFoundError(
            f'{index} {found}: verify checks that every file it lists is packed '
            '(and S2100K reads it); restore the index.csv the layout was packed from'
        )
    fns, _ = read_index(index)
    listed = [(index, fns)]
    if (root / DATES_FILE).is_file():
        listed.append((root / DATES_FILE, _dated_files(root, fns)))
    for source, names in listed:
        missing = [fn for fn in names if fn not in layout.location]
        if missing:
            raise PackedLayoutError(
                f'{directory}: {len(missing)} of the {len(names)} files '
                f'listed in {source} are not packed '
                f'({", ".join(missing[:5])}); run {command} to pack them'
            )
    strays = _unlisted_shard_files(directory, len(layout.shards))
    stray_bytes = 0
    for entry in strays:
        try:
            stray_bytes += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # deleted meanwhile (a pack running)
            continue
    return VerifyResult(
        directory=directory,
        num_samples=len(layout.location),
        num_shards=len(layout.shards),
        num_bytes=layout.num_bytes,
        num_sources_checked=layout.num_sources_checked,
        num_sources_missing=layout.num_sources_missing,
        stray_files=[Path(entry.path) for entry in strays],
        stray_bytes=stray_bytes,
    )


def _check_first_patch(path: Path, size: tuple[int, int]) -> None:
    """Refuse now, writing nothing, a dataset whose first patch has another size.

    A mistake in the arguments (``ValueError``: exit status 2 on the command
    line); a first patch that is no readable 12-band uint16 GeoTIFF stays a
    :class:`~.s2_100k_files.GeoTIFFError` (exit status 1).
    """
    try:
        check_geotiff(path, size)
    except RuntimeError as error:
        found = check_geotiff(path)  # 12 readable uint16 bands, other size?
        option = f' (--patch-size {found[0]})' if found[0] == found[1] else ''
        raise ValueError(
            f'{error} (patch_size); if every patch of the dataset has that size, '
            f'pass patch_size={found}{option}'
        ) from None


def _dated_files(root: Path, points: Sequence[str]) -> list[str]:
    """The images of ``root/dates.csv`` that ``index.csv`` does not list.

    Point by point in the order of *points*, each point's by date.
    """
    dates = read_dates_file(root / DATES_FILE, points=points)
    return [fn for point in points for _, fn in dates[point] if fn != point]


def _listed_files(root: Path) -> list[str]:
    """The files to pack, all present in ``root/images``.

    Those ``root/index.csv`` lists, then the other dates of ``dates.csv``.
    """
    index_path = root / 'index.csv'
    if not index_path.is_file():
        raise FileNotFoundError(f'{index_path} not found')
    fns, _ = read_index(index_path)
    if not fns:
        raise DatasetTableError(f'{index_path} lists no files (only a header)')
    listed = [(index_path, fns)]
    if (root / DATES_FILE).is_file():
        listed.append((root / DATES_FILE, _dated_files(root, fns)))
    images = root / 'images'
    present = set(os.listdir(images)) if images.is_dir() else set()
    for source, names in listed:
        missing = [fn for fn in names if fn not in present]
        if missing:
            raise MissingFilesError(
                f'{len(missing)} files listed in {source} are missing from '
                f'{images}: ' + ', '.join(missing[:5])
            )
    return [fn for _, names in listed for fn in names]


def _pack_shards(
    out: Path,
    images: Path,
    groups: Sequence[Sequence[str]],
    records: list[PackedShard | None],
    size: tuple[int, int],
    num_workers: int,
    bar: 'tqdm[object]',
) -> None:
    """Write the shards not done yet, filling in their ``records``.

    At most one decoding process per CPU and per patch left to decode: more
    would only cost start-up time and memory.
    """
    left = sum(len(g) for g, r in zip(groups, records, strict=True) if r is None)
    processes = min(num_workers, left, os.cpu_count() or 1)
    pool = (
        multiprocessing.get_context('spawn').Pool(processes) if processes > 0 else None
    )
    decode = functools.partial(_decode, size=size)
    try:
        for k, group in enumerate(groups):
            if records[k] is not None:
                continue
            paths = [images / fn for fn in group]
            decoded: Iterator[_Decoded] = (
                pool.imap(decode, paths, chunksize=4) if pool else map(decode, paths)
            )
            records[k] = _write_shard(out, k, group, paths, decoded, size, bar)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _write_index(out: Path, shards: Sequence[PackedShard]) -> None:
    """Write ``files.csv``: each file's shard, row, nodata and source fingerprint."""
    with (
        atomic_path(out / 'files.csv') as tmp,
        open(tmp, 'w', encoding='utf-8', newline='') as f,
    ):
        writer = csv.writer(f)
        writer.writerow(FILES_COLUMNS)
        for k, shard in enumerate(shards):
            rows = zip(shard.files, shard.nodata_fraction, shard.sources, strict=True)
            for row, (fn, fraction, source) in enumerate(rows):
                fingerprint = (source.size, source.mtime_ns, source.sha256)
                writer.writerow([fn, k, row, repr(fraction), *fingerprint])


def _write_manifest(
    out: Path, shards: Sequence[PackedShard], size: tuple[int, int], shard_size: int
) -> None:
    """Write ``manifest.json`` last: it pins every other file of the layout."""
    files_csv = out / 'files.csv'
    manifest = {
        'format': PACKED_FORMAT,
        'version': PACKED_VERSION,
        'dtype': 'uint16',
        'bands': list(ALL_BANDS),
        'height': size[0],
        'width': size[1],
        'num_samples': sum(len(shard.files) for shard in shards),
        'shard_size': shard_size,
        'checksum': 'sha256',
        'files_csv': {
            'bytes': files_csv.stat().st_size,
            'sha256': sha256_file(files_csv),
        },
        'shards': [
            {
                'name': shard_name(k),
                'num_samples': len(shard.files),
                'bytes': shard.num_bytes,
                'sha256': shard.sha256,
                'sample_sha256': shard.sample_sha256,
                'json_sha256': sha256_file((out / shard_name(k)).with_suffix('.json')),
            }
            for k, shard in enumerate(shards)
        ],
    }
    with atomic_path(out / 'manifest.json') as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + '\n', encoding='utf-8')


def _write_shard(
    out: Path,
    number: int,
    files: Sequence[str],
    paths: Sequence[Path],
    decoded: Iterator[_Decoded],
    size: tuple[int, int],
    bar: 'tqdm[object]',
) -> PackedShard:
    """Write one shard and its record atomically; return the record.

    The record of an earlier shard of that name is deleted before the shard
    takes its name, and the new one written after: a run killed in between
    leaves a shard without a record (redone by the next run), never a record
    beside a shard it does not describe.
    """
    npy = out / shard_name(number)
    meta = npy.with_suffix('.json')
    shape = (len(files), len(ALL_BANDS), *size)
    fractions: list[float] = []
    sources: list[SourceFingerprint] = []
    with atomic_path(npy) as tmp:
        array = np.lib.format.open_memmap(tmp, mode='w+', dtype=np.uint16, shape=shape)
        for row, (path, (image, fraction, source)) in enumerate(
            zip(paths, decoded, strict=True)
        ):
            if image.shape != shape[1:]:
                raise GeoTIFFError(
                    f'{path}: patch of shape {image.shape}, expected {shape[1:]}'
                )
            array[row] = image
            fractions.append(fraction)
            sources.append(source)
            bar.update(1)
        array.flush()
        del array
        record = PackedShard(
            files=tuple(files),
            nodata_fraction=tuple(fractions),
            sources=tuple(sources),
            num_bytes=tmp.stat().st_size,
            sha256=sha256_file(tmp),
            sample_sha256=sampled_sha256(tmp),
        )
        meta.unlink(missing_ok=True)
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(record.to_json()), encoding='utf-8')
    return record
