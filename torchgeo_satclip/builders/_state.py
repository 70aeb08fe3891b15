"""On-disk state of a dataset build: crash-safe, resumable, duplicate-free.

Layout under the dataset root::

    index.csv        fn, lon, lat: one row per finished patch (what S2100K reads)
    images/          patch_<k>.tif, k the sample number of the point stream
                     (multi-temporal builds: also patch_<k>_t<w>.tif, the
                     point's image of window w when it is not its first)
    dates.csv        point, fn, date: every image of every indexed point
                     (multi-temporal builds only)
    build.json       the parameters that define the dataset (checked on resume)
    rejected.csv     sample, lon, lat, reason: points that gave no patch, for good
    .build.lock      held (flock) while a build runs

The invariants, whatever moment a build is killed at (SIGKILL included):

* an image exists under its final name only when complete (it is written under
  a temporary name, then renamed);
* every row of ``index.csv`` names a complete image: the row is appended, in a
  single ``write`` on an ``O_APPEND`` descriptor (its rest by more, should the
  system write it short), only after the rename;
* a sample is in ``index.csv`` at most once.

The one state a kill can leave behind is an image renamed but not yet indexed.
:meth:`BuildState.open` adopts such an image (its row is rebuilt from the file
itself) and removes stale temporary files, so a re-run continues exactly where
the killed run stopped.

A multi-temporal build (:attr:`BuildConfig.multi_temporal`) also keeps
``dates.csv``. A point's other images are renamed before its first image, so
a ``patch_<k>.tif`` under its final name always has all of its images beside
it. Its ``dates.csv`` rows are appended in one ``write`` just before its
``index.csv`` row, and the file is rewritten sorted (atomically, with
:func:`~torchgeo_satclip.datasets.s2_100k_files.write_dates_file`) when the
state closes. A kill between the two appends leaves ``dates.csv`` with the
rows of at most one point more than ``index.csv`` (which ``S2100K`` refuses
with dates, naming the fix: run the build again); :meth:`BuildState.open`
repairs that before anything else happens: it keeps exactly the rows of the
indexed points (rebuilt from the images' ``date`` tags for an adopted point or
rows that are missing), removes the other images of points that are not
indexed, and rewrites ``dates.csv`` when anything changed.
"""

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely  # type: ignore[import-untyped]
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform as warp_transform

from .._errors import DataError
from .._io import atomic_path, remove_stale_temporaries
from ..datasets.s2_100k_files import (
    ALL_BANDS,
    BUILD_FILE,
    DATES_FILE,
    write_dates_file,
)
from ..geo import Region
from .config import BuildConfig, _quiet_region

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    'CONFIG_FILE',
    'DATES_FILE',
    'INDEX_FILE',
    'REJECTED_FILE',
    'BuildLockedError',
    'BuildState',
    'date_of',
    'patch_centroid',
    'patch_name',
    'region_record',
    'sample_of',
    'temporal_name',
]

INDEX_FILE = 'index.csv'
CONFIG_FILE = BUILD_FILE
REJECTED_FILE = 'rejected.csv'
LOCK_FILE = '.build.lock'

logger = logging.getLogger(__name__)

_INDEX_HEADER = 'fn,lon,lat\n'
_REJECTED_HEADER = 'sample,lon,lat,reason\n'
_DATES_HEADER = 'point,fn,date'
_PATCH_RE = re.compile(r'patch_(\d+)\.tif')
_TEMPORAL_RE = re.compile(r'patch_(\d+)_t(\d+)\.tif')
#: The files of the root that are rewritten atomically (temporary, rename).
_ROOT_FILES = (INDEX_FILE, DATES_FILE, REJECTED_FILE, CONFIG_FILE)


class BuildLockedError(DataError):
    """Another build is running in the same dataset root."""


def patch_name(sample: int) -> str:
    """File name of a sample's patch.

    Args:
        sample: the sample number.

    Returns:
        ``patch_<sample>.tif``.
    """
    return f'patch_{sample}.tif'


def temporal_name(sample: int, window: int) -> str:
    """File name of a sample's image of another window than its first.

    Args:
        sample: the sample number.
        window: the window's number, from 0.

    Returns:
        ``patch_<sample>_t<window>.tif``.
    """
    return f'patch_{sample}_t{window}.tif'


def date_of(tags: dict[str, str]) -> dt.date | None:
    """Acquisition date (UTC) of a built image, from its GeoTIFF tags.

    Args:
        tags: the tags of the image (``date``, else ``datetime``).

    Returns:
        The date, or None when the tags give none.
    """
    text = tags.get('date')
    try:
        if text is not None:
            return dt.date.fromisoformat(text)
        moment = dt.datetime.fromisoformat(
            tags.get('datetime', '').replace('Z', '+00:00')
        )
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date()


def sample_of(fn: str) -> int | None:
    """Sample number of a patch file name.

    Args:
        fn: a file name.

    Returns:
        The number, or None if *fn* is not ``patch_<k>.tif``.
    """
    match = _PATCH_RE.fullmatch(fn)
    return int(match.group(1)) if match else None


def region_record(region: Region | None) -> dict[str, Any] | None:
    """The geometry ``build.json`` records of a region: the region as sampled.

    The region's geometry (unioned, split at the antimeridian) in shapely's
    normal form, as JSON gives it back, so that a region given as a mapping,
    a file, a :class:`~torchgeo_satclip.geo.Region` or the ``region`` of a
    :class:`~.config.BuildConfig` (this record included: the normal form of
    a record is itself) is recorded alike.

    Args:
        region: the region, or None for the whole globe.

    Returns:
        A GeoJSON ``Polygon`` or ``MultiPolygon``, or None.
    """
    if region is None:
        return None
    geometry = shapely.geometry.mapping(shapely.normalize(region.geometry))
    record: dict[str, Any] = json.loads(json.dumps(geometry))
    return record


def _same_region(saved: object, current: object) -> bool:
    """Whether two recorded regions are one region, in any of their forms.

    ``build.json`` files written before :func:`region_record` recorded a
    region given to ``BuildConfig`` as it was written, and one given to
    ``build_dataset`` unioned but not normalised: both are compared by
    their :func:`region_record`. A record that is no region (edited by hand)
    is another region.
    """
    if saved == current:
        return True
    if not isinstance(saved, dict) or not isinstance(current, dict):
        return False
    try:  # warned of long edges when the build began: not again
        return region_record(_quiet_region(saved)) == region_record(
            _quiet_region(current)
        )
    except Exception:  # whatever a hand-edited record makes fail
        return False


def patch_centroid(
    crs: CRS, transform: Affine, width: int, height: int
) -> tuple[float, float]:
    """Centre of a patch in (lon, lat) degrees.

    Args:
        crs: the patch CRS.
        transform: its affine transform.
        width: its width in pixels.
        height: its height in pixels.

    Returns:
        ``(lon, lat)`` of the centre, EPSG:4326.
    """
    col, row = width / 2, height / 2
    x = transform.c + transform.a * col + transform.b * row
    y = transform.f + transform.d * col + transform.e * row
    xs, ys = warp_transform(crs, 'EPSG:4326', [x], [y])
    return float(xs[0]), float(ys[0])


def _format_row(*values: object) -> bytes:
    """One CSV line (values are plain names and numbers)."""
    return (','.join(str(v) for v in values) + '\n').encode()


def _format_dates_row(point: str, fn: str, date: dt.date) -> bytes:
    """One line of ``dates.csv``, ended as ``write_dates_file`` ends them."""
    return f'{point},{fn},{date.isoformat()}\r\n'.encode()


def _read_lines(path: Path, header: str) -> tuple[list[list[str]], bool]:
    """Rows of one of our append-only CSV files, tolerating a torn last line.

    Read in universal newline mode, so the CRLF line ends of ``dates.csv``
    (which :mod:`csv` writes) read as plain newlines.

    Returns:
        The complete rows (header excluded) and whether the file needs a
        rewrite (a missing newline at the end).

    Raises:
        ValueError: if the file is not text, or does not start with
            *header*, naming the file and what it starts with. Each file is
            created whole, its header included (written under a temporary
            name, then renamed), so an empty file or another header never
            comes from a killed build: the file is another's, or was edited.
    """
    try:
        text = path.read_text(encoding='utf-8')
    except UnicodeDecodeError as error:
        text, found = '', f'is not text ({error})'
    else:
        first = text.splitlines()[0] if text else ''
        found = 'is empty' if not text else f'starts with {first[:100]!r}'
    dirty = False
    if text and not text.endswith('\n'):
        # A line without its newline was never completely written: drop it.
        text = text[: text.rfind('\n') + 1]
        dirty = True
    lines = text.splitlines(keepends=True)
    if not lines or lines[0] != header:
        raise ValueError(
            f'{path} {found}, expected the header {header.strip()!r}: not a '
            'file of this builder (every one is created with its header); put '
            'back the file the build wrote, or build into another directory'
        )
    rows = list(csv.reader(io.StringIO(''.join(lines[1:]))))
    return rows, dirty


def _positions(coordinates: object) -> Iterator[list[float]]:
    """The positions of GeoJSON coordinates, at any depth (malformed: skipped)."""
    if isinstance(coordinates, list) and coordinates:
        if all(isinstance(v, int | float) for v in coordinates):
            yield coordinates
        else:
            for part in coordinates:
                yield from _positions(part)


def _describe_setting(key: str, value: object) -> str:
    """A build parameter as a mismatch names it, a region compactly.

    A region is told by its type, vertex count, bounds and a hash of its
    JSON (regions alike but for a vertex differ in the hash), not by its
    coordinates (kilobytes); any other value by its ``repr``, cut at 200
    characters (a hand-edited ``build.json`` may hold anything).
    """
    if key != 'region' or not isinstance(value, dict):
        text = repr(value)
        return text if len(text) <= 200 else f'{text[:200]}... ({len(text)} chars)'
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    positions: list[Any] = [
        p[:2] for p in _positions(value.get('coordinates')) if len(p) >= 2
    ]
    kind = str(value.get('type'))[:40]
    if not positions:
        return f'{kind} without coordinates, sha256 {digest[:12]}'
    xs, ys = zip(*positions, strict=True)
    bounds = ', '.join(f'{v:g}' for v in (min(xs), min(ys), max(xs), max(ys)))
    return (
        f'{kind} of {len(positions)} vertices, bounds ({bounds}), sha256 {digest[:12]}'
    )


def _append(fd: int, data: bytes) -> None:
    """Append *data* to an ``O_APPEND`` descriptor, all of it.

    One ``write`` almost always takes it all; the rest of a short write (a
    file system nearly full) follows, or the error that stopped it is raised.
    """
    while data:
        data = data[os.write(fd, data) :]


def _lock_holder(fd: int) -> str:
    """`` (process <pid> on <host>)`` as the holder of a lock file wrote it.

    Returns:
        The words, or an empty string when the file does not say.
    """
    try:
        words = os.pread(fd, 300, 0).decode(errors='replace').split()
    except OSError:
        return ''
    if len(words) != 2 or not words[0].isdecimal():
        return ''  # an older build's empty lock, or one being written
    return f' (process {words[0]} on {words[1]})'


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file under a temporary name, then rename it."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class BuildState:
    """The files of one dataset root during a build; use as a context manager.

    Only the thread that opened it may call :meth:`add` and :meth:`reject`
    (workers only write images, under temporary names, then rename them).
    """

    def __init__(self, root: Path, config: BuildConfig) -> None:
        """Prepare a state (nothing happens until :meth:`open`).

        Args:
            root: the dataset root.
            config: the parameters that define the dataset (``build.json``).
        """
        self.root = root
        self.images = root / 'images'
        self.config = config
        #: file name -> (lon, lat) of the rows of index.csv
        self.rows: dict[str, tuple[float, float]] = {}
        #: sample number -> reason, of rejected.csv
        self.rejected: dict[int, str] = {}
        #: Rows that were present when opened.
        self.num_resumed = 0
        #: Finished images found without a row, given one when opened.
        self.num_adopted = 0
        self._adopted: set[str] = set()
        #: point -> its ``(fn, date)``, of dates.csv (multi-temporal builds)
        self.dates: dict[str, list[tuple[str, dt.date]]] = {}
        self._lock_fd: int | None = None
        self._index_fd: int | None = None
        self._rejected_fd: int | None = None
        self._dates_fd: int | None = None
        self._dates_sorted = True

    def __enter__(self) -> 'BuildState':
        """Open the state."""
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the state."""
        self.close()

    @property
    def done(self) -> set[int]:
        """Sample numbers with a patch."""
        samples = (sample_of(fn) for fn in self.rows)
        return {s for s in samples if s is not None}

    def open(self) -> None:
        """Lock the root, check its parameters and repair what a kill left.

        Raises:
            BuildLockedError: if another build holds the root.
            ValueError: if the root holds another build's dataset, or a dataset
                that this builder did not make, or a ``build.json`` that is
                not the JSON object of a build's parameters (naming it).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self._check_config()
            for name in _ROOT_FILES:
                # A rewrite a killed run never finished (see _io).
                remove_stale_temporaries(self.root / name)
            self.images.mkdir(exist_ok=True)
            for entry in os.scandir(self.images):
                if entry.name.startswith('.') and entry.name.endswith('.tmp'):
                    os.unlink(entry.path)  # an image a killed run never finished
            self._load_index()
            self._load_rejected()
            self._adopt_orphans()
            flags = os.O_WRONLY | os.O_APPEND
            if self.config.multi_temporal:
                self._load_dates()
                self._dates_fd = os.open(self.root / DATES_FILE, flags)
            self._index_fd = os.open(self.root / INDEX_FILE, flags)
            self._rejected_fd = os.open(self.root / REJECTED_FILE, flags)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the files, sort ``dates.csv`` and release the lock."""
        for name in ('_dates_fd', '_index_fd', '_rejected_fd'):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        if self._lock_fd is not None:
            try:
                if not self._dates_sorted:
                    self._write_dates()
            finally:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    def add(
        self,
        fn: str,
        lon: float,
        lat: float,
        images: Sequence[tuple[str, dt.date]] | None = None,
    ) -> None:
        """Record a finished point (its images already renamed to their names).

        Args:
            fn: its (first) image's file name under ``images/``.
            lon: centroid longitude.
            lat: centroid latitude.
            images: in a multi-temporal build, ``(fn, date)`` of every image
                of the point, its first (*fn*) included.

        Raises:
            ValueError: if *images* is given in a single-date build or
                missing in a multi-temporal one, or does not list *fn*.
        """
        assert self._index_fd is not None, 'the state is not open'
        if (images is not None) != self.config.multi_temporal:
            raise ValueError(
                'images (fn, date) are given for the points of multi-temporal '
                'builds, and only for them'
            )
        if fn in self.rows:
            return
        if images is not None:
            assert self._dates_fd is not None
            if fn not in {name for name, _ in images}:
                raise ValueError(f'the images of point {fn} do not list {fn} itself')
            lines = b''.join(_format_dates_row(fn, name, date) for name, date in images)
            _append(self._dates_fd, lines)  # before the index row: see the module
            self.dates[fn] = list(images)
            self._dates_sorted = False
        _append(self._index_fd, _format_row(fn, f'{lon:.6f}', f'{lat:.6f}'))
        self.rows[fn] = (lon, lat)

    def reject(self, sample: int, lon: float, lat: float, reason: str) -> None:
        """Record that a point gives no patch (it is not tried again).

        Args:
            sample: the sample number.
            lon: the point's longitude.
            lat: the point's latitude.
            reason: a word, e.g. ``no_item`` or ``nodata``.
        """
        assert self._rejected_fd is not None, 'the state is not open'
        line = _format_row(sample, f'{lon:.6f}', f'{lat:.6f}', reason)
        _append(self._rejected_fd, line)
        self.rejected[sample] = reason

    def _lock(self) -> None:
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # EWOULDBLOCK: another descriptor holds it
                holder = _lock_holder(fd)
                os.close(fd)
                raise BuildLockedError(
                    f'another build{holder} is running in {self.root}: it holds '
                    f'the lock {path}, released when that build ends (killed or '
                    'not); wait for it, or stop it, then run this build again'
                ) from None
            except OSError as error:
                # ENOLCK, EOPNOTSUPP, ...: a file system without locks (some
                # network and FUSE mounts) cannot tell that a build runs, as
                # on a platform without flock.
                logger.warning(
                    'cannot lock %s (%s): nothing keeps another build out of '
                    '%s; run one build there at a time',
                    path,
                    error.strerror or error,
                    self.root,
                )
            else:
                # Who holds it, for the message of a build refused (of this
                # host or another that shares the file system). Written in
                # place: the lock is on this file, so it cannot be replaced.
                os.ftruncate(fd, 0)
                os.pwrite(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode(), 0)
        self._lock_fd = fd

    def _check_config(self) -> None:
        path = self.root / CONFIG_FILE
        if not path.is_file():
            if (self.root / INDEX_FILE).exists():
                raise ValueError(
                    f'{self.root} holds a dataset without {CONFIG_FILE}: not one '
                    'this builder made; choose an empty directory'
                )
            _write_atomic(path, self.config.to_json().encode())
            return
        # Compared as JSON, key by key, so that build.json files of any
        # version, or edited by hand, are told apart by what differs.
        try:
            saved = json.loads(path.read_text(encoding='utf-8'))
            found = f'a JSON {type(saved).__name__}'
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
            saved, found = None, f'not JSON ({error})'
        if not isinstance(saved, dict):
            raise ValueError(
                f'{path} is {found}, expected the JSON object of the build '
                f"parameters ({BuildConfig.FORMAT}): {self.root} is not a build's "
                'dataset root as it is; build into another directory, or put back '
                f'the {CONFIG_FILE} the build wrote'
            )
        current = self.config.to_dict()
        changed = sorted(
            key
            for key in set(saved) | set(current)
            if saved.get(key) != current.get(key)
            and not (key == 'region' and _same_region(saved.get(key), current.get(key)))
        )
        if changed:
            details = ', '.join(
                f'{k}: {_describe_setting(k, saved.get(k))} -> '
                f'{_describe_setting(k, current.get(k))}'
                for k in changed
            )
            raise ValueError(
                f'{self.root} was built with other parameters ({details}); resume '
                'with the same ones, or build into another directory'
            )

    def _load_index(self) -> None:
        path = self.root / INDEX_FILE
        if not path.exists():
            _write_atomic(path, _INDEX_HEADER.encode())
            return
        raw_rows, dirty = _read_lines(path, _INDEX_HEADER)
        present = {e.name for e in os.scandir(self.images)}
        for row in raw_rows:
            if len(row) != 3 or row[0] not in present or row[0] in self.rows:
                dirty = True  # torn, orphaned or duplicated: cannot come from us
                continue
            try:
                self.rows[row[0]] = (float(row[1]), float(row[2]))
            except ValueError:
                dirty = True
        if dirty:
            data = _INDEX_HEADER + ''.join(
                f'{fn},{lon:.6f},{lat:.6f}\n' for fn, (lon, lat) in self.rows.items()
            )
            _write_atomic(path, data.encode())
        self.num_resumed = len(self.rows)

    def _load_rejected(self) -> None:
        path = self.root / REJECTED_FILE
        if not path.exists():
            _write_atomic(path, _REJECTED_HEADER.encode())
            return
        raw_rows, dirty = _read_lines(path, _REJECTED_HEADER)
        kept = []
        for row in raw_rows:
            if len(row) == 4 and row[0].isascii() and row[0].isdigit():
                self.rejected[int(row[0])] = row[3]
                kept.append(row)
            else:
                dirty = True
        if dirty:
            data = _REJECTED_HEADER + ''.join(','.join(r) + '\n' for r in kept)
            _write_atomic(path, data.encode())

    def _adopt_orphans(self) -> None:
        """Index finished images a killed run renamed but did not index."""
        orphans = sorted(
            e.name
            for e in os.scandir(self.images)
            if sample_of(e.name) is not None and e.name not in self.rows
        )
        if not orphans:
            return
        flags = os.O_WRONLY | os.O_APPEND
        fd = os.open(self.root / INDEX_FILE, flags)
        try:
            for fn in orphans:
                path = self.images / fn
                try:
                    with rasterio.open(path) as src:
                        valid = (
                            src.count == len(ALL_BANDS) and src.dtypes[0] == 'uint16'
                        )
                        src.read(1, window=((0, 1), (0, 1)))
                        lon, lat = patch_centroid(
                            src.crs, src.transform, src.width, src.height
                        )
                except (RasterioError, OSError):
                    valid = False
                if not valid or not (np.isfinite(lon) and np.isfinite(lat)):
                    os.unlink(path)
                    continue
                _append(fd, _format_row(fn, f'{lon:.6f}', f'{lat:.6f}'))
                self.rows[fn] = (lon, lat)
                self._adopted.add(fn)
                self.num_adopted += 1
        finally:
            os.close(fd)

    # ------------------------------------------------------------- dates.csv

    def _image_date(self, fn: str) -> dt.date | None:
        """The date of a complete image of this build, None if it is not one."""
        try:
            with rasterio.open(self.images / fn) as src:
                if src.count != len(ALL_BANDS) or src.dtypes[0] != 'uint16':
                    return None
                return date_of(src.tags())
        except (RasterioError, OSError):
            return None

    def _load_dates(self) -> None:
        """Make ``dates.csv`` list exactly the images of the indexed points."""
        path = self.root / DATES_FILE
        listed: dict[str, list[tuple[str, dt.date]]] = {}
        dirty = not path.exists()
        if not dirty:
            raw_rows, dirty = _read_lines(path, _DATES_HEADER + '\n')
            for row in raw_rows:
                try:
                    point, fn, text = row
                    listed.setdefault(point, []).append(
                        (fn, dt.date.fromisoformat(text))
                    )
                except ValueError:
                    dirty = True
        present = {e.name for e in os.scandir(self.images)}
        others: dict[str, set[str]] = {}
        for name in present:
            match = _TEMPORAL_RE.fullmatch(name)
            if match is None:
                continue
            point = patch_name(int(match.group(1)))
            if point in self.rows:
                others.setdefault(point, set()).add(name)
            else:
                os.unlink(self.images / name)  # a point a killed run never indexed
        dropped = []
        for point in self.rows:
            files = {point} | others.get(point, set())
            rows = listed.get(point, [])
            if (
                {fn for fn, _ in rows} == files
                and len(rows) == len(files)
                and len({date for _, date in rows}) == len(rows)
            ):
                self.dates[point] = rows
                continue
            dirty = True
            dates = [(fn, self._image_date(fn)) for fn in sorted(files)]
            known = [(fn, date) for fn, date in dates if date is not None]
            if len(known) < len(dates) or len({d for _, d in known}) < len(known):
                dropped.append(point)  # cannot come from us: build it again
            else:
                self.dates[point] = known
        dirty = dirty or len(listed) != len(self.dates)
        for point in dropped:
            del self.rows[point]
            # Neither resumed nor adopted: it is built again.
            if point in self._adopted:
                self.num_adopted -= 1
            else:
                self.num_resumed -= 1
        if dropped:
            # Their rows go first, then their files: index.csv never lists
            # a point without its images.
            data = _INDEX_HEADER + ''.join(
                f'{fn},{lon:.6f},{lat:.6f}\n' for fn, (lon, lat) in self.rows.items()
            )
            _write_atomic(self.root / INDEX_FILE, data.encode())
        if dirty:
            self._write_dates()
        for point in dropped:
            for fn in {point} | others.get(point, set()):
                os.unlink(self.images / fn)

    def _write_dates(self) -> None:
        """Rewrite ``dates.csv`` from :attr:`dates`, sorted, atomically."""
        write_dates_file(
            self.root / DATES_FILE,
            [
                (point, fn, date)
                for point, images in self.dates.items()
                if point in self.rows
                for fn, date in images
            ],
        )
        self._dates_sorted = True
