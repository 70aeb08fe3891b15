"""The S2-100K file layout: its bands, files and readers.

Public, since the dataset, the packer and the builders share it.

Reading ``index.csv`` and ``nodata.csv`` strictly (every malformed row is
refused with its file and line), decoding one GeoTIFF patch with errors that
name the file, measuring nodata, fingerprints of files, and the reader of the
packed layout with its integrity checks (see
:mod:`torchgeo_satclip.datasets.pack` for the format and why).
"""

import csv
import datetime
import gc
import hashlib
import io
import json
import numbers
import os
import re
import shlex
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from tqdm import tqdm

from .._errors import DataError
from .._io import atomic_path
from ..geo import validate_lonlat

__all__ = [
    'ALL_BANDS',
    'BUILD_FILE',
    'DATES_FILE',
    'FILES_COLUMNS',
    'NODATA_FILE',
    'PACKED_DIR',
    'PACKED_FORMAT',
    'PACKED_VERSION',
    'PATCH_SIZE',
    'DatasetTableError',
    'GeoTIFFError',
    'MissingFilesError',
    'PackedLayout',
    'PackedLayoutError',
    'PackedShard',
    'SourceFingerprint',
    'as_patch_size',
    'check_geotiff',
    'check_packed_size',
    'nodata_fraction',
    'npy_header',
    'pack_command',
    'parse_decimal',
    'read_dates_file',
    'read_geotiff',
    'read_index',
    'read_nodata_file',
    'sampled_sha256',
    'sha256_file',
    'shard_name',
    'write_dates_file',
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

#: (height, width) of an S2-100K patch in pixels.
PATCH_SIZE: tuple[int, int] = (256, 256)

#: Folder (inside the dataset root) of the packed layout.
PACKED_DIR = 'packed'

#: ``format`` field of a packed layout's ``manifest.json``.
PACKED_FORMAT = 'torchgeo-satclip/s2-100k-packed'

#: ``version`` field of the packed layouts this package writes and reads.
PACKED_VERSION = 2

#: Columns of a packed layout's ``files.csv``.
FILES_COLUMNS: tuple[str, ...] = (
    'fn',
    'shard',
    'row',
    'nodata_fraction',
    'source_bytes',
    'source_mtime_ns',
    'source_sha256',
)

#: Recorded nodata fractions (``fn, nodata_fraction``) inside the dataset root.
NODATA_FILE = 'nodata.csv'

#: The dates of a multi-temporal dataset (``point, fn, date``) inside the root.
DATES_FILE = 'dates.csv'

#: The parameters of a dataset made by ``torchgeo-satclip build``, in the root.
BUILD_FILE = 'build.json'

#: :func:`sampled_sha256` reads this many blocks ...
SAMPLE_BLOCKS = 16
#: ... of this many bytes, spread evenly over the file.
SAMPLE_BLOCK_BYTES = 4096

_SHA256 = re.compile(r'[0-9a-f]{64}')
_NOT_IN_A_NAME = re.compile(r'[/\\\x00-\x1f\x7f]')


# ------------------------------------------------------------------ CSV files


class DatasetTableError(DataError, ValueError):
    """A table of a dataset (``index.csv``, ``dates.csv``, ``nodata.csv``) unfit to read.

    Malformed, breaking a rule of its format, or listing no file: a fault of
    the data, not of the call (the command line's exit status 1). The message
    names the file (and line) and what was expected. Also a
    :class:`ValueError`, what it was before, so ``except ValueError`` keeps
    catching it.
    """


class MissingFilesError(DataError, FileNotFoundError):
    """Files a table of the dataset lists that are not there to read.

    Images of ``index.csv`` or ``dates.csv`` missing from ``images/`` (or
    from the packed layout): a fault of the data, not of the call (the
    command line's exit status 1). The message names the table, how many are
    missing and the first of them. Also a :class:`FileNotFoundError`, what it
    was before, so ``except FileNotFoundError`` keeps catching it.
    """


def parse_decimal(text: str) -> float | None:
    """Read a plain decimal number, as written by a program.

    ``12``, ``-0.5``, ``.5``, ``1e-3`` and the spelled-out ``nan``/``inf`` (so
    that a non-finite value gets its own message downstream) are numbers;
    ``1_0``, ``0x10``, ``١٢``, ``1,5``, ``True`` and the empty string are not,
    although Python's :class:`float` reads some of them.

    Args:
        text: the field, surrounding whitespace allowed.

    Returns:
        The number, or None if *text* is not a plain decimal number.
    """
    text = text.strip()
    # float() reads exactly the plain decimals plus digit-group underscores
    # and non-ASCII digits: refusing those two is all it takes.
    if not text.isascii() or '_' in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class _Table:
    """A CSV file read strictly: its header, then its rows one by one.

    Accepted: UTF-8 (with or without a byte-order mark), any line ending,
    quoted fields, blank lines (skipped) and spaces around fields. Refused,
    naming the file and line: other encodings, broken quoting, a header
    column without a name or named twice, a required column missing, and a
    row with more or fewer fields than the header. Rows are streamed, not
    kept: 100,000 retained row lists would keep the garbage collector busy
    for seconds.
    """

    def __init__(
        self, path: Path, data: bytes, required: Sequence[str], expected: str
    ) -> None:
        """Decode *data* and read the header.

        Args:
            path: the CSV file, for messages.
            data: its content.
            required: columns that must be in the header.
            expected: what the file should hold, for messages
                (``'the columns fn, lon, lat'``).

        Raises:
            ValueError: if the file is not UTF-8, has no header or a bad one.
        """
        self.path = path
        try:
            text = data.decode('utf-8-sig')
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b'\n') + 1
            raise DatasetTableError(
                f'{path}, line {line}: not UTF-8 text (byte '
                f'0x{data[error.start]:02x}); expected a UTF-8 CSV file with '
                f'{expected}'
            ) from None
        self._reader = csv.reader(
            io.StringIO(text, newline=''), strict=True, skipinitialspace=True
        )
        self._previous = 0
        for line, fields in self._lines():
            self.header, self.header_line = fields, line
            _check_header(path, line, fields, required, expected)
            return
        raise DatasetTableError(
            f'{path}: empty file; expected a CSV file with {expected}'
        )

    def _lines(self) -> Iterator[tuple[int, list[str]]]:
        """The non-blank rows and the line each starts on, fields stripped."""
        reader = self._reader
        try:
            for fields in reader:
                line, self._previous = self._previous + 1, reader.line_num
                if len(fields) <= 1 and not ''.join(fields).strip():  # blank
                    continue
                yield line, [value.strip() for value in fields]
        except csv.Error as error:  # the failing row starts after the last read
            raise DatasetTableError(
                f'{self.path}, line {self._previous + 1}: not a readable CSV '
                f'row ({error})'
            ) from None

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(line, fields)`` of each row after the header.

        Raises:
            ValueError: on a row that is not readable or ragged.
        """
        width = len(self.header)
        for line, fields in self._lines():
            if len(fields) != width:
                count = len(fields)
                raise DatasetTableError(
                    f'{self.path}, line {line}: {count} field{"s" * (count != 1)}, '
                    f'but the header has {width} ({", ".join(self.header)}); '
                    'quote values that contain commas and write decimals with '
                    'a dot'
                )
            yield line, fields


def _read_table(path: Path, required: Sequence[str], expected: str) -> _Table:
    """Read a CSV file strictly (see :class:`_Table`)."""
    return _Table(path, path.read_bytes(), required, expected)


def _check_header(
    path: Path, line: int, header: list[str], required: Sequence[str], expected: str
) -> None:
    """Refuse unnamed, duplicated and missing columns."""
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if not name:
            raise DatasetTableError(
                f'{path}, line {line}: column {number} of the header has no name '
                f'(a trailing comma?); expected {expected}'
            )
        if name in seen:
            raise DatasetTableError(
                f'{path}, line {line}: column {name!r} appears twice in the header '
                f'(columns {seen[name]} and {number}); expected {expected}'
            )
        seen[name] = number
    missing = [name for name in required if name not in seen]
    if missing:
        raise DatasetTableError(
            f'{path}, line {line}: missing column(s) {", ".join(missing)} in the '
            f'header {",".join(header)}; expected {expected}'
        )


def _file_name(path: Path, line: int, value: str, column: str = 'fn') -> str:
    """A patch's file name from a table: not empty, no folders."""
    if not value:
        raise DatasetTableError(
            f'{path}, line {line}: empty file name in column {column!r}'
        )
    if value in ('.', '..') or _NOT_IN_A_NAME.search(value):
        raise DatasetTableError(
            f'{path}, line {line}: {value!r} in column {column!r} is not a plain '
            'file name (no folders, no control characters): patches are '
            'images/<fn> under the dataset root'
        )
    return value


def _decimal(path: Path, line: int, column: str, value: str) -> float:
    """A plain decimal number from a table."""
    number = parse_decimal(value)
    if number is None:
        what = f'{value!r} is not a plain decimal number' if value else 'is empty'
        raise DatasetTableError(f'{path}, line {line}: {column} {what}')
    return number


def _fraction(path: Path, line: int, column: str, value: str) -> float:
    """A fraction in [0, 1] from a table."""
    number = _decimal(path, line, column, value)
    if not 0 <= number <= 1:  # NaN fails too
        raise DatasetTableError(
            f'{path}, line {line}: {column} {value!r} is not a number in [0, 1]'
        )
    return number


def _unique(path: Path, line: int, fn: str, first: dict[str, int]) -> None:
    """Refuse a file name listed twice; remember its line."""
    if fn in first:
        raise DatasetTableError(
            f'{path}, line {line}: file name {fn!r} is listed twice '
            f'(lines {first[fn]} and {line})'
        )
    first[fn] = line


def read_index(path: Path) -> tuple[list[str], NDArray[np.float64]]:
    """Read an S2-100K ``index.csv``.

    Every row must have exactly the header's fields, a plain file name listed
    once, and a finite (lon, lat) in degrees written as plain decimal numbers;
    other columns are ignored.

    Args:
        path: the CSV file, with the columns ``fn``, ``lon`` and ``lat``.

    Returns:
        The file names and an ``(N, 2)`` array of (lon, lat) in degrees.

    Raises:
        ValueError: if the file is malformed, a column is missing or
            duplicated, a row is ragged, a file name is empty, not plain or
            listed twice, or a coordinate is not a finite (lon, lat) in
            degrees; the message names the file and line.
    """
    table = _read_table(path, ('fn', 'lon', 'lat'), 'the columns fn, lon, lat')
    fn_column, lon_column, lat_column = (
        table.header.index(name) for name in ('fn', 'lon', 'lat')
    )
    fns: list[str] = []
    coords: list[tuple[float, float]] = []
    lines: list[int] = []
    first: dict[str, int] = {}
    for line, fields in table:
        fn = fields[fn_column]
        if fn in first or not fn or _NOT_IN_A_NAME.search(fn) or fn in ('.', '..'):
            _unique(path, line, _file_name(path, line, fn), first)
        first[fn] = line
        lon = parse_decimal(fields[lon_column])
        lat = parse_decimal(fields[lat_column])
        if lon is None or lat is None:
            lon = _decimal(path, line, 'lon', fields[lon_column])
            lat = _decimal(path, line, 'lat', fields[lat_column])
        coords.append((lon, lat))
        fns.append(fn)
        lines.append(line)
    lonlat = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    validate_lonlat(
        lonlat,
        where=lambda i: f'{path}, line {lines[i]}',
        columns=('lon', 'lat'),
        swap_hint='S2-100K stores lon before lat',
        error=DatasetTableError,
    )
    return fns, lonlat


def write_nodata_file(
    path: Path, fns: Sequence[str], fractions: Sequence[float]
) -> None:
    """Write recorded nodata fractions atomically.

    Each fraction is written exactly (the shortest decimal that reads back
    as the same float, as ``files.csv`` of the packed layout records it), so
    that a threshold judges a patch the same whether its fraction was just
    measured or comes from this file or from the packed layout.

    Args:
        path: the CSV file to write (``fn, nodata_fraction``).
        fns: file names.
        fractions: the nodata fraction of each file, in [0, 1].

    Raises:
        ValueError: if a fraction is not in [0, 1].
    """
    bad = [(fn, f) for fn, f in zip(fns, fractions, strict=True) if not 0 <= f <= 1]
    if bad:
        raise ValueError(
            f'{path}: nodata fraction {bad[0][1]} of {bad[0][0]} not in [0, 1]; '
            'nothing written'
        )
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['fn', 'nodata_fraction'])
        for fn, fraction in zip(fns, fractions, strict=True):
            writer.writerow([fn, repr(float(fraction))])


def read_nodata_file(path: Path) -> dict[str, float]:
    """Read recorded nodata fractions.

    A file with only an ``fn`` column is a plain list of nodata patches (each
    counts as fraction 1). Fractions are read as written: exactly as
    :func:`write_nodata_file` writes them, and, in files written before it
    wrote them exactly, rounded to 6 decimals (delete such a file to have
    the fractions measured again).

    Args:
        path: a CSV file with the columns ``fn`` and optionally ``nodata_fraction``.

    Returns:
        Nodata fraction by file name.

    Raises:
        ValueError: if the file is malformed, a row is ragged, a file name is
            empty or listed twice, or a fraction is not a number in [0, 1];
            the message names the file and line.
    """
    table = _read_table(path, ('fn',), 'the columns fn and nodata_fraction')
    fn_column = table.header.index('fn')
    fraction_column = (
        table.header.index('nodata_fraction')
        if 'nodata_fraction' in table.header
        else None
    )
    fractions: dict[str, float] = {}
    first: dict[str, int] = {}
    for line, fields in table:
        fn = _file_name(path, line, fields[fn_column])
        _unique(path, line, fn, first)
        fractions[fn] = (
            1.0
            if fraction_column is None
            else _fraction(path, line, 'nodata_fraction', fields[fraction_column])
        )
    return fractions


def write_dates_file(
    path: Path, rows: Sequence[tuple[str, str, datetime.date]]
) -> None:
    """Write the ``dates.csv`` of a multi-temporal dataset atomically.

    A multi-temporal dataset is an S2-100K dataset whose ``index.csv`` lists
    one image per point, as ever (single-date readers, TorchGeo's ``S2100k``
    included, load it unchanged), and whose ``dates.csv`` lists every image
    of every point with its acquisition date; the other dates' images sit in
    ``images/`` beside the first. Columns: ``point`` (the point's ``fn`` in
    ``index.csv``), ``fn`` (an image file under ``images/``; the point's own
    row has ``fn == point``) and ``date`` (``YYYY-MM-DD``, UTC). Rows are
    written sorted by point, then date.

    Args:
        path: the CSV file to write.
        rows: ``(point, fn, date)`` of every image.

    Raises:
        ValueError: if the rows break a rule of :func:`read_dates_file`.
    """
    ordered = sorted(rows, key=lambda row: (row[0], row[2], row[1]))
    _check_dates(path, [(i + 2, *row) for i, row in enumerate(ordered)], None)
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['point', 'fn', 'date'])
        for point, fn, date in ordered:
            writer.writerow([point, fn, date.isoformat()])


def read_dates_file(
    path: Path, points: Sequence[str] | None = None
) -> dict[str, list[tuple[datetime.date, str]]]:
    """Read the ``dates.csv`` of a multi-temporal dataset.

    See :func:`write_dates_file` for the format. Every row must have a plain
    ``point`` and ``fn`` and an ISO ``YYYY-MM-DD`` date; an image file is
    listed once; a point has each date once and lists its own image
    (``fn == point``). With *points* (the file names of ``index.csv``), each
    of them must be listed and no other.

    Args:
        path: the CSV file, with the columns ``point``, ``fn`` and ``date``.
        points: the points of ``index.csv``, to check the file against.

    Returns:
        For each point, its ``(date, fn)`` sorted by date.

    Raises:
        ValueError: if the file is malformed or breaks a rule above; the
            message names the file and line (or the point).
    """
    table = _read_table(path, ('point', 'fn', 'date'), 'the columns point, fn, date')
    columns = [table.header.index(name) for name in ('point', 'fn', 'date')]
    rows: list[tuple[int, str, str, datetime.date]] = []
    for line, fields in table:
        point, fn, text = (fields[i] for i in columns)
        point = _file_name(path, line, point, 'point')
        fn = _file_name(path, line, fn)
        try:
            if not re.fullmatch(r'\d{4}-\d{2}-\d{2}', text):
                raise ValueError(text)
            date = datetime.date.fromisoformat(text)
        except ValueError:
            raise DatasetTableError(
                f'{path}, line {line}: date {text!r} is not a date written YYYY-MM-DD'
            ) from None
        rows.append((line, point, fn, date))
    return _check_dates(path, rows, points)


class _PointsMismatchError(DatasetTableError):
    """``dates.csv`` and ``index.csv`` list different points.

    Attributes:
        missing: points of ``index.csv`` without rows in ``dates.csv``.
        extra: points of ``dates.csv`` not in ``index.csv``.
    """

    def __init__(self, message: str, missing: list[str], extra: list[str]) -> None:
        """Record which points differ.

        Args:
            message: the error message.
            missing: points of ``index.csv`` without rows in ``dates.csv``.
            extra: points of ``dates.csv`` not in ``index.csv``.
        """
        super().__init__(message)
        self.missing = missing
        self.extra = extra


def _check_dates(
    path: Path,
    rows: Sequence[tuple[int, str, str, datetime.date]],
    points: Sequence[str] | None,
) -> dict[str, list[tuple[datetime.date, str]]]:
    """Group ``(line, point, fn, date)`` rows by point, enforcing the rules."""
    first: dict[str, int] = {}
    seen: dict[tuple[str, datetime.date], int] = {}
    dates: dict[str, list[tuple[datetime.date, str]]] = {}
    for line, point, fn, date in rows:
        _unique(path, line, fn, first)
        if (point, date) in seen:
            raise DatasetTableError(
                f'{path}, line {line}: point {point!r} has two images dated '
                f'{date.isoformat()} (lines {seen[point, date]} and {line})'
            )
        seen[point, date] = line
        dates.setdefault(point, []).append((date, fn))
    for point, listed in dates.items():
        listed.sort()
        if not any(fn == point for _, fn in listed):
            raise DatasetTableError(
                f'{path}: point {point!r} does not list its own image (a row '
                f'with point and fn both {point!r})'
            )
    if points is not None:
        known = set(points)
        missing = [p for p in points if p not in dates]
        extra = [p for p in dates if p not in known]
        for names, problem in (
            (missing, f'of index.csv have no rows in {path}'),
            (extra, f'of {path} are not in index.csv'),
        ):
            if names:
                shown = ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')
                raise _PointsMismatchError(
                    f'{len(names)} point(s) {problem}: {shown}; every point of '
                    'index.csv lists its images in dates.csv, and no other point',
                    missing,
                    extra,
                )
    return dates


# ------------------------------------------------------------------- patches


def as_patch_size(value: object, name: str = 'patch_size') -> tuple[int, int]:
    """Read a patch size: a side in pixels or a ``(height, width)`` pair.

    Args:
        value: a positive integer, or a pair of them.
        name: the argument's name, for messages.

    Returns:
        ``(height, width)``.

    Raises:
        ValueError: if *value* is anything else.
    """

    def integer(v: object) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    size: tuple[int, int] | None = None
    if integer(value):
        size = (int(value), int(value))  # type: ignore[call-overload]
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(integer(v) for v in value)
    ):
        size = (int(value[0]), int(value[1]))
    if size is None or min(size) < 1:
        raise ValueError(
            f'{name} must be a positive integer or a (height, width) pair of '
            f'them, not {value!r}'
        )
    return size


def pack_command(root: Path | str, patch_size: tuple[int, int] = PATCH_SIZE) -> str:
    """The command that packs (or re-packs) a dataset, quoted for a message.

    Args:
        root: the dataset root.
        patch_size: ``(height, width)`` of its patches, as the caller declared
            it (never read from the layout being complained about, which may
            be the damaged file).

    Returns:
        ``torchgeo-satclip pack ROOT``, with ``--patch-size`` for another
        square size; a non-square size, which the command line cannot give,
        as the :func:`~torchgeo_satclip.datasets.pack_s2_100k` call. In
        backticks.
    """
    height, width = patch_size
    quoted = shlex.quote(str(root))  # a root with spaces, pasted into a shell
    if (height, width) == PATCH_SIZE:
        return f'`torchgeo-satclip pack {quoted}`'
    if height == width:
        return f'`torchgeo-satclip pack {quoted} --patch-size {height}`'
    return f'`pack_s2_100k({str(root)!r}, patch_size=({height}, {width}))`'


def check_packed_size(
    manifest: Path, found: tuple[int, int], expected: tuple[int, int]
) -> None:
    """Refuse a packed layout of patches of another size than declared.

    Args:
        manifest: the layout's ``manifest.json``, named in the message.
        found: ``(height, width)`` of its patches.
        expected: the size the caller declared (``patch_size``).

    Raises:
        ValueError: if they differ; the message names both and the argument
            (and command-line option) that declares the packed size.
    """
    if found == expected:
        return
    option = f' (--patch-size {found[0]})' if found[0] == found[1] else ''
    raise ValueError(
        f'{manifest}: packed patches are {_size_text(found)} pixels, but the '
        f'dataset expects {_size_text(expected)} (patch_size); pass '
        f'patch_size={found}{option} if every patch of this dataset has that size'
    )


def _size_text(size: Sequence[int]) -> str:
    return f'{size[0]} x {size[1]}'


class GeoTIFFError(DataError):
    """A patch file that cannot be read, or is not 12 uint16 bands of its size.

    The message names the file and what is wrong with it.
    """


def _check_header_of(path: Path, src: Any, size: tuple[int, int] | None) -> None:
    """Refuse a GeoTIFF that is not 12 uint16 bands of the given size."""
    dtypes = sorted(set(src.dtypes))
    if src.count != len(ALL_BANDS) or dtypes != ['uint16']:
        raise GeoTIFFError(
            f'{path}: expected {len(ALL_BANDS)} uint16 bands, found '
            f'{src.count} {"/".join(dtypes)} band(s)'
        )
    if size is not None and (src.height, src.width) != size:
        raise GeoTIFFError(
            f'{path}: patch of {_size_text((src.height, src.width))} pixels, '
            f'expected {_size_text(size)}'
        )


def check_geotiff(path: Path, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Check one patch's header without decoding it.

    Args:
        path: the GeoTIFF file.
        size: the ``(height, width)`` it must have (None: any).

    Returns:
        Its ``(height, width)``.

    Raises:
        GeoTIFFError: if the file cannot be opened, is not a 12-band uint16
            image or not of *size*; the message names the file.
    """
    try:
        with rasterio.open(path) as src:
            _check_header_of(path, src, size)
            return int(src.height), int(src.width)
    except (RasterioError, OSError) as error:
        raise GeoTIFFError(f'{path}: cannot read the image ({error})') from error


def read_geotiff(
    path: Path,
    indexes: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
) -> NDArray[np.uint16]:
    """Decode one S2-100K patch.

    Args:
        path: the GeoTIFF file.
        indexes: zero-based band indexes to read (default: all 12).
        size: the ``(height, width)`` the patch must have, checked before it
            is decoded (None: any).

    Returns:
        A ``(C, H, W)`` uint16 array.

    Raises:
        GeoTIFFError: if the file cannot be decoded, is not a 12-band uint16
            image or not of *size*; the message names the file.
    """
    try:
        with rasterio.open(path) as src:
            _check_header_of(path, src, size)
            if indexes is None:
                array = src.read()
            else:
                array = src.read([i + 1 for i in indexes])
    except (RasterioError, OSError) as error:
        raise GeoTIFFError(f'{path}: cannot read the image ({error})') from error
    return np.asarray(array, dtype=np.uint16)


def nodata_fraction(image: NDArray[np.uint16]) -> float:
    """Fraction of pixels that are 0 in every band (Sentinel-2 L2A nodata).

    Args:
        image: a ``(C, H, W)`` patch.

    Returns:
        A number in [0, 1].
    """
    return float(np.mean(~np.any(image != 0, axis=0)))


# --------------------------------------------------------------- fingerprints


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


def sampled_sha256(path: Path) -> str:
    """SHA-256 of a few blocks spread over a file: a cheap content fingerprint.

    :data:`SAMPLE_BLOCKS` blocks of :data:`SAMPLE_BLOCK_BYTES`, the first at
    the start (a ``.npy`` header), the last at the end, the others evenly in
    between; a file of at most that many bytes is hashed whole. It tells apart
    two files of the same size with other content (a shard overwritten by
    another one) without reading them; a change between the blocks (a bit
    flip) needs the full :func:`sha256_file`.

    Args:
        path: the file.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        digest.update(size.to_bytes(8, 'little'))
        if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
            digest.update(f.read())
        else:
            span = size - SAMPLE_BLOCK_BYTES
            for block in range(SAMPLE_BLOCKS):
                f.seek(block * span // (SAMPLE_BLOCKS - 1))
                digest.update(f.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


class SourceFingerprint(NamedTuple):
    """What a source GeoTIFF was when it was packed.

    A named tuple: 100,000 of them are built on every open of a packed
    layout, and tuples of plain values cost the garbage collector nothing.
    """

    #: size in bytes
    size: int
    #: modification time in nanoseconds
    mtime_ns: int
    #: SHA-256 of the content
    sha256: str

    @classmethod
    def of(cls, path: Path) -> 'SourceFingerprint':
        """Fingerprint a file now (reads it whole).

        Args:
            path: the file.

        Returns:
            Its fingerprint.
        """
        stat = os.stat(path)
        return cls(stat.st_size, stat.st_mtime_ns, sha256_file(path))

    def same_stat(self, stat: os.stat_result) -> bool:
        """Whether a file's size and modification time are the recorded ones.

        Args:
            stat: the file's status.

        Returns:
            True if both match.
        """
        return (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns)


def npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Read a ``.npy`` file's header, not its data.

    Args:
        path: the file.

    Returns:
        ``(shape, fortran_order, dtype)``.

    Raises:
        OSError: if the file cannot be read.
        ValueError: if it is not a ``.npy`` file.
    """
    with open(path, 'rb') as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f'unsupported .npy format version {version}')
    return tuple(int(n) for n in shape), bool(fortran), dtype


def shard_name(number: int) -> str:
    """File name of packed shard *number* (its record is the ``.json`` sibling).

    Args:
        number: the shard's number, from 0.

    Returns:
        ``shard_<number, 5 digits>.npy``.
    """
    return f'shard_{number:05d}.npy'


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


@dataclass(frozen=True)
class PackedShard:
    """What a shard's ``.json`` records: written with the shard, before it.

    The packer keeps a shard on a later run only when this record still
    matches the shard file and the sources; the dataset checks it against
    ``files.csv`` and ``manifest.json``.
    """

    #: file names, in row order
    files: tuple[str, ...]
    #: nodata fraction of each row
    nodata_fraction: tuple[float, ...]
    #: fingerprint of each row's source GeoTIFF
    sources: tuple[SourceFingerprint, ...]
    #: size of the ``.npy`` file in bytes
    num_bytes: int
    #: SHA-256 of the ``.npy`` file
    sha256: str
    #: :func:`sampled_sha256` of the ``.npy`` file
    sample_sha256: str

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data.

        Returns:
            A dict for :func:`json.dumps`.
        """
        return {
            'version': PACKED_VERSION,
            'files': list(self.files),
            'nodata_fraction': list(self.nodata_fraction),
            'sources': [[s.size, s.mtime_ns, s.sha256] for s in self.sources],
            'bytes': self.num_bytes,
            'sha256': self.sha256,
            'sample_sha256': self.sample_sha256,
        }

    @classmethod
    def from_json(cls, value: object) -> 'PackedShard':
        """Read a record from JSON data, checking every field.

        Args:
            value: what :func:`json.loads` returned.

        Returns:
            The record.

        Raises:
            ValueError: naming the first field that is missing or invalid.
        """
        if not isinstance(value, dict) or value.get('version') != PACKED_VERSION:
            raise ValueError(f'not a version {PACKED_VERSION} shard record')
        files, fractions, sources = (
            value.get(key) for key in ('files', 'nodata_fraction', 'sources')
        )
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("'files' is not a list of file names")
        count = len(files)
        if (
            not isinstance(fractions, list)
            or len(fractions) != count
            or not all(
                isinstance(f, int | float) and not isinstance(f, bool) and 0 <= f <= 1
                for f in fractions
            )
        ):
            raise ValueError(f"'nodata_fraction' is not {count} numbers in [0, 1]")
        if (
            not isinstance(sources, list)
            or len(sources) != count
            or not all(
                isinstance(s, list)
                and len(s) == 3
                and _is_int(s[0])
                and _is_int(s[1])
                and _is_sha256(s[2])
                for s in sources
            )
        ):
            raise ValueError(f"'sources' is not {count} [bytes, mtime_ns, sha256]")
        if not _is_int(value.get('bytes')):
            raise ValueError("'bytes' is not an integer")
        for key in ('sha256', 'sample_sha256'):
            if not _is_sha256(value.get(key)):
                raise ValueError(f'{key!r} is not a SHA-256 hex digest')
        return cls(
            files=tuple(files),
            nodata_fraction=tuple(float(f) for f in fractions),
            sources=tuple(SourceFingerprint(*s) for s in sources),
            num_bytes=value['bytes'],
            sha256=value['sha256'],
            sample_sha256=value['sample_sha256'],
        )


# ------------------------------------------------------------- packed layout


class PackedLayoutError(DataError):
    """A packed layout that does not match its manifest, itself or its sources.

    The message names the file, says what differs and how to repair it
    (usually: run ``torchgeo-satclip pack ROOT`` again, which keeps every
    shard that still checks out and redoes the rest).
    """


@dataclass(frozen=True)
class _ShardEntry:
    """One shard as ``manifest.json`` lists it."""

    name: str
    num_samples: int
    num_bytes: int
    sha256: str
    sample_sha256: str
    json_sha256: str


@dataclass(frozen=True)
class _Manifest:
    """The fields of ``manifest.json`` that the reader uses."""

    height: int
    width: int
    num_samples: int
    files_bytes: int
    files_sha256: str
    shards: tuple[_ShardEntry, ...]


class _Checker:
    """Reads a packed layout, checking each file against the others.

    The cheap checks (every open) cover everything but a change inside a
    shard that leaves its size and sampled blocks alone; *full* also hashes
    every shard and every source GeoTIFF that is present.
    """

    def __init__(
        self, directory: Path, progress: bool, patch_size: tuple[int, int]
    ) -> None:
        self.directory = directory
        self.root = directory.parent
        self.progress = progress
        self.command = pack_command(self.root, patch_size)
        self.repack = (
            f're-pack: {self.command} (it keeps the shards that check out and '
            'redoes the rest)'
        )

    def fail(self, where: Path | str, what: str, fix: str | None = None) -> NoReturn:
        """Raise the error about *where* (a file, or a file and line)."""
        raise PackedLayoutError(f'{where}: {what}; {fix or self.repack}')

    def manifest(self) -> _Manifest:
        """Read and check ``manifest.json``."""
        path = self.directory / 'manifest.json'
        try:
            data = json.loads(path.read_bytes())
        except ValueError as error:  # UnicodeDecodeError is a ValueError
            self.fail(path, f'not valid JSON ({error})')
        if not isinstance(data, dict) or data.get('format') != PACKED_FORMAT:
            self.fail(path, f'not a {PACKED_FORMAT} manifest')
        version = data.get('version')
        if version == 1:
            self.fail(
                path,
                'a version 1 packed layout: it has no checksums or source '
                'fingerprints, so it cannot be checked',
                f'pack it again: {self.command} (meanwhile, '
                "layout='geotiff' reads the GeoTIFFs)",
            )
        if version != PACKED_VERSION:
            self.fail(
                path,
                f'version {version!r}; this torchgeo-satclip reads version '
                f'{PACKED_VERSION}',
                'upgrade torchgeo-satclip, or ' + self.repack,
            )
        expected = {'dtype': 'uint16', 'bands': list(ALL_BANDS), 'checksum': 'sha256'}
        for key, value in expected.items():
            if data.get(key) != value:
                self.fail(path, f'{key} is {data.get(key)!r}, expected {value!r}')
        for key in ('height', 'width', 'num_samples'):
            if not _is_int(data.get(key)) or data[key] < 1:
                self.fail(path, f'{key} is {data.get(key)!r}, not a positive integer')
        files = data.get('files_csv')
        if not (
            isinstance(files, dict)
            and _is_int(files.get('bytes'))
            and _is_sha256(files.get('sha256'))
        ):
            self.fail(path, "'files_csv' is not {'bytes': int, 'sha256': hex}")
        shards = data.get('shards')
        if not isinstance(shards, list) or not shards:
            self.fail(path, "'shards' is not a non-empty list")
        entries = tuple(self.shard_entry(path, k, s) for k, s in enumerate(shards))
        total = sum(entry.num_samples for entry in entries)
        if total != data['num_samples']:
            self.fail(
                path,
                f'num_samples is {data["num_samples"]}, but its shards hold {total}',
            )
        return _Manifest(
            height=data['height'],
            width=data['width'],
            num_samples=data['num_samples'],
            files_bytes=files['bytes'],
            files_sha256=files['sha256'],
            shards=entries,
        )

    def shard_entry(self, path: Path, number: int, value: object) -> _ShardEntry:
        """Check one entry of the manifest's ``shards``."""
        name = shard_name(number)
        if not (
            isinstance(value, dict)
            and value.get('name') == name
            and _is_int(value.get('num_samples'))
            and value['num_samples'] >= 1
            and _is_int(value.get('bytes'))
            and all(
                _is_sha256(value.get(key))
                for key in ('sha256', 'sample_sha256', 'json_sha256')
            )
        ):
            self.fail(
                path,
                f'shards[{number}] is not a record of {name} (name, num_samples, '
                'bytes, sha256, sample_sha256, json_sha256)',
            )
        return _ShardEntry(
            name=name,
            num_samples=value['num_samples'],
            num_bytes=value['bytes'],
            sha256=value['sha256'],
            sample_sha256=value['sample_sha256'],
            json_sha256=value['json_sha256'],
        )

    def files(self, manifest: _Manifest) -> '_Files':
        """Read ``files.csv`` and check it against the manifest.

        When its SHA-256 is the manifest's, it is the packer's own output and
        is read quickly; otherwise every field is checked, so that the error
        names the line and what is wrong with it.
        """
        path = self.directory / 'files.csv'
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.fail(path, 'missing')
        digest = hashlib.sha256(data).hexdigest()
        files = (
            _files_as_packed(data, manifest)
            if digest == manifest.files_sha256
            else None
        )
        if files is None:
            try:
                files = _parse_files(path, data, manifest)
            except ValueError as error:
                raise PackedLayoutError(f'{error}; {self.repack}') from None
        files.sha256 = digest
        return files

    def shard_records(self, manifest: _Manifest, files: '_Files') -> None:
        """Check every shard's ``.json`` against ``files.csv`` and the manifest.

        A record and a ``files.csv`` both as the manifest pins them were
        written together, from the same data, by the packer: only their
        summary fields are compared then. Otherwise every row is compared, so
        that the error says which row of which file differs.
        """
        files_csv = self.directory / 'files.csv'
        as_packed = files.sha256 == manifest.files_sha256
        for k, entry in enumerate(manifest.shards):
            path = (self.directory / entry.name).with_suffix('.json')
            try:
                raw = path.read_bytes()
                data = json.loads(raw)
            except FileNotFoundError:
                self.fail(path, 'missing')
            except (OSError, ValueError) as error:
                self.fail(path, f'not a valid shard record ({error})')
            summary = (entry.num_bytes, entry.sha256, entry.sample_sha256)
            if (
                as_packed
                and hashlib.sha256(raw).hexdigest() == entry.json_sha256
                and isinstance(data, dict)
                and (data.get('bytes'), data.get('sha256'), data.get('sample_sha256'))
                == summary
            ):
                continue
            try:
                record = PackedShard.from_json(data)
            except ValueError as error:
                self.fail(path, f'not a valid shard record ({error})')
            if len(record.files) != entry.num_samples:
                self.fail(
                    path,
                    f'lists {len(record.files)} files, but manifest.json gives '
                    f'{entry.name} {entry.num_samples}',
                )
            for row, fn in enumerate(record.files):
                listed, line = files.places[k][row]
                where = f'{files_csv}, line {line}'
                if fn != listed:
                    self.fail(
                        where,
                        f'puts {listed!r} at row {row} of {entry.name}, but '
                        f'{path.name} has {fn!r} there (rows swapped or edited)',
                    )
                if files.nodata[fn] != record.nodata_fraction[row]:
                    self.fail(
                        where,
                        f'nodata_fraction {files.nodata[fn]!r} of {fn!r}, but '
                        f'{path.name} records {record.nodata_fraction[row]!r}',
                    )
                if files.sources[fn] != record.sources[row]:
                    self.fail(
                        where,
                        f'the source fingerprint of {fn!r} differs from the one '
                        f'in {path.name}',
                    )
            if hashlib.sha256(raw).hexdigest() != entry.json_sha256:
                self.fail(path, 'differs from the record written when packing')
            if (record.num_bytes, record.sha256, record.sample_sha256) != summary:
                self.fail(path, f'describes another {entry.name} than manifest.json')
        if not as_packed:
            self.fail(
                files_csv,
                'differs from the one written when packing (edited, reordered or '
                'damaged: its SHA-256 is not the one in manifest.json)',
            )

    def shards(self, manifest: _Manifest, full: bool) -> int:
        """Check every shard's size, header and sampled content; hash if *full*."""
        manifest_path = self.directory / 'manifest.json'
        for entry in manifest.shards:
            path = self.directory / entry.name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                self.fail(path, 'missing')
            if size != entry.num_bytes:
                self.fail(
                    path,
                    f'{size} bytes, {entry.num_bytes} when packed (truncated, '
                    'extended or replaced)',
                )
            try:
                shape, fortran, dtype = npy_header(path)
            except (OSError, ValueError) as error:
                self.fail(path, f'not a readable .npy file ({error})')
            expected = (
                entry.num_samples,
                len(ALL_BANDS),
                manifest.height,
                manifest.width,
            )
            if len(shape) == 4 and shape[:2] == expected[:2] and shape != expected:
                self.fail(
                    manifest_path,
                    f'height x width is {_size_text(expected[2:])}, but {entry.name} '
                    f'holds patches of {_size_text(shape[2:])}',
                )
            if shape != expected or dtype != np.dtype(np.uint16) or fortran:
                order = 'Fortran-order ' if fortran else ''
                self.fail(
                    path,
                    f'holds a {order}{dtype} array of shape {shape}, but '
                    f'manifest.json says uint16 {expected}',
                )
            if sampled_sha256(path) != entry.sample_sha256:
                self.fail(
                    path,
                    'content differs from the shard that was packed (overwritten '
                    'by another file of the same size?)',
                )
        if full:
            self.hash_shards(manifest)
        return sum(entry.num_bytes for entry in manifest.shards)

    def hash_shards(self, manifest: _Manifest) -> None:
        """Compare the SHA-256 of every shard with the manifest's."""
        total = sum(entry.num_bytes for entry in manifest.shards)
        with tqdm(
            total=total,
            unit='B',
            unit_scale=True,
            desc='verifying shards',
            disable=not self.progress,
        ) as bar:
            for entry in manifest.shards:
                path = self.directory / entry.name
                digest = hashlib.sha256()
                with open(path, 'rb') as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        bar.update(len(chunk))
                if digest.hexdigest() != entry.sha256:
                    self.fail(
                        path,
                        'damaged: its SHA-256 is not the one recorded when it '
                        'was packed',
                        self.redo(entry.name),
                    )

    def stale(self, path: str, fn: str, files: '_Files', what: str) -> NoReturn:
        """Raise the error for a source that changed after packing."""
        shard = shard_name(files.location[fn][0])
        self.fail(path, f'{what}, so its packed patch is stale', self.redo(shard))

    def redo(self, shard: str) -> str:
        """The advice for a shard the packer would keep: delete it, re-pack."""
        return (
            f'delete {self.directory / shard} and run {self.command}, which '
            'redoes that shard only'
        )

    def sources(self, images: Path, files: '_Files', full: bool) -> tuple[int, int]:
        """Check the source GeoTIFFs that are present against their fingerprints.

        Cheap: sizes and modification times, hashing only the files whose time
        changed (a copy without ``-p``); *full* hashes every file. A changed
        source is refused with the advice to redo its shard (the packer
        itself notices a new size or time, but not new content under the old
        size and time).

        Returns:
            The number of sources checked and missing.
        """
        sources = files.sources
        if not images.is_dir():
            return 0, len(sources)
        touched: list[str] = []
        checked = missing = 0
        folder = os.fspath(images)
        for fn, recorded in tqdm(
            sources.items(),
            desc='verifying sources',
            unit='file',
            disable=not (full and self.progress),
        ):
            path = os.path.join(folder, fn)  # not pathlib: 100,000 of them
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                missing += 1
                continue
            checked += 1
            same = recorded.same_stat(stat)
            if same and not full:
                continue
            if stat.st_size != recorded.size:
                self.stale(
                    path,
                    fn,
                    files,
                    f'{stat.st_size} bytes, {recorded.size} when it was packed: '
                    'the GeoTIFF changed after packing',
                )
            if sha256_file(Path(path)) != recorded.sha256:
                self.stale(
                    path,
                    fn,
                    files,
                    'content differs from when it was packed (replaced or '
                    'modified after packing)',
                )
            if not same:
                touched.append(fn)
        if touched:
            warnings.warn(
                f'{len(touched)} source GeoTIFF(s) in {images} have other '
                'modification times than when they were packed, but the same '
                f'content (first: {touched[0]}); run {self.command} to record '
                'the new times (nothing is decoded again) and skip reading them '
                'on every open',
                stacklevel=4,
            )
        return checked, missing


@dataclass
class _Files:
    """``files.csv``, parsed."""

    location: dict[str, tuple[int, int]]
    nodata: dict[str, float]
    sources: dict[str, SourceFingerprint]
    #: per shard, per row: (file name, line in files.csv)
    places: list[list[tuple[str, int]]]
    sha256: str = ''


def _files_as_packed(data: bytes, manifest: _Manifest) -> _Files | None:
    """Read ``files.csv`` as the packer writes it, or None if it is not so.

    For a file whose SHA-256 the manifest pins: plain comma-separated lines
    without quoting, parsed without the per-field checks of
    :func:`_parse_files` (several times faster on 100,000 rows). Anything
    unexpected (a quoted name, a hole) gives None, and the careful parser.
    """
    try:
        lines = data.decode('utf-8').splitlines()
        if lines[0] != ','.join(FILES_COLUMNS):
            return None
        location: dict[str, tuple[int, int]] = {}
        nodata: dict[str, float] = {}
        sources: dict[str, SourceFingerprint] = {}
        placed: list[list[tuple[str, int] | None]] = [
            [None] * entry.num_samples for entry in manifest.shards
        ]
        for line, text in enumerate(lines[1:], start=2):
            fn, shard, row, fraction, size, mtime, digest = text.split(',')
            k, r = int(shard), int(row)
            if k < 0 or r < 0 or placed[k][r] is not None or fn in location:
                return None
            placed[k][r] = (fn, line)
            location[fn] = (k, r)
            nodata[fn] = float(fraction)
            sources[fn] = SourceFingerprint(int(size), int(mtime), digest)
    except (UnicodeDecodeError, ValueError, IndexError):
        return None
    places = [[p for p in shard if p is not None] for shard in placed]
    if len(location) != manifest.num_samples or b'"' in data:
        return None
    return _Files(location, nodata, sources, places)


@contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building big tables.

    Reading the records of 100,000 patches allocates a few hundred thousand
    small containers, each allocation burst triggering a collection that
    scans the growing tables: half the time of an open. Nothing read here
    forms cycles, so nothing is lost; the collector's state is restored.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _integer(path: Path, line: int, column: str, value: str) -> int:
    """An integer from a table."""
    digits = value[1:] if value.startswith('-') else value
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f'{path}, line {line}: {column} {value!r} is not an integer')
    return int(value)


def _parse_files(path: Path, data: bytes, manifest: _Manifest) -> _Files:
    """Parse ``files.csv`` and check that it fills every row of every shard once."""
    expected = 'the columns ' + ', '.join(FILES_COLUMNS)
    table = _Table(path, data, FILES_COLUMNS, expected)
    if table.header != list(FILES_COLUMNS):
        raise ValueError(
            f'{path}, line {table.header_line}: header {",".join(table.header)}, '
            'expected ' + ','.join(FILES_COLUMNS)
        )
    location: dict[str, tuple[int, int]] = {}
    nodata: dict[str, float] = {}
    sources: dict[str, SourceFingerprint] = {}
    placed: list[list[tuple[str, int] | None]] = [
        [None] * entry.num_samples for entry in manifest.shards
    ]
    first: dict[str, int] = {}
    for line, fields in table:
        fn = _file_name(path, line, fields[0])
        _unique(path, line, fn, first)
        shard = _integer(path, line, 'shard', fields[1])
        row = _integer(path, line, 'row', fields[2])
        if not 0 <= shard < len(manifest.shards):
            raise ValueError(
                f'{path}, line {line}: shard {shard} of {fn!r} does not exist '
                f'(manifest.json lists {len(manifest.shards)})'
            )
        entry = manifest.shards[shard]
        if not 0 <= row < entry.num_samples:
            raise ValueError(
                f'{path}, line {line}: row {row} of {fn!r} is outside '
                f'{entry.name} ({entry.num_samples} rows)'
            )
        other = placed[shard][row]
        if other is not None:
            raise ValueError(
                f'{path}, line {line}: {fn!r} and {other[0]!r} (line {other[1]}) '
                f'are both at row {row} of {entry.name}'
            )
        placed[shard][row] = (fn, line)
        location[fn] = (shard, row)
        nodata[fn] = _fraction(path, line, 'nodata_fraction', fields[3])
        size = _integer(path, line, 'source_bytes', fields[4])
        mtime = _integer(path, line, 'source_mtime_ns', fields[5])
        if not _is_sha256(fields[6]):
            raise ValueError(
                f'{path}, line {line}: source_sha256 {fields[6]!r} is not a '
                'SHA-256 hex digest'
            )
        sources[fn] = SourceFingerprint(size, mtime, fields[6])
    if len(location) != manifest.num_samples:
        raise ValueError(
            f'{path}: lists {len(location)} files, manifest.json {manifest.num_samples}'
        )
    places = [[place for place in shard if place is not None] for shard in placed]
    return _Files(location, nodata, sources, places)


#: Held while a shard is opened (see :meth:`PackedLayout._shard`).
_SHARD_OPEN_LOCK = threading.Lock()


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
    #: file name -> fingerprint of its source GeoTIFF when it was packed
    sources: dict[str, SourceFingerprint] = field(default_factory=dict)
    #: total size of the shards in bytes
    num_bytes: int = 0
    #: source GeoTIFFs compared with their fingerprints when opened
    num_sources_checked: int = 0
    #: source GeoTIFFs absent when opened (deleted after packing: not checked)
    num_sources_missing: int = 0

    def __post_init__(self) -> None:
        """Start with no shard opened."""
        self._maps: dict[int, NDArray[np.uint16]] = {}

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        sources: Path | None = None,
        verify: bool = False,
        progress: bool = False,
        patch_size: tuple[int, int] = PATCH_SIZE,
        check_size: bool = False,
    ) -> 'PackedLayout | None':
        """Read a packed layout, checking it.

        Every open checks, cheaply, that ``manifest.json``, ``files.csv`` and
        the shards' ``.json`` records agree, that every shard has the size,
        array shape and sampled content (:func:`sampled_sha256`) recorded when
        it was packed, and that every source GeoTIFF still present in
        *sources* has its recorded size and modification time (or, if only
        the time changed, its recorded content). *verify* also compares the
        SHA-256 of every shard and of every source present.

        Args:
            directory: the ``packed`` folder.
            sources: the folder of the source GeoTIFFs (``root/images``), or
                None to skip the sources.
            verify: also hash every shard and source (reads all of them).
            progress: show progress bars while hashing.
            patch_size: ``(height, width)`` the caller declared for the
                dataset, named in the repair commands (:func:`pack_command`).
            check_size: refuse a layout of patches of another size than
                *patch_size* (:func:`check_packed_size`), once its files are
                found consistent (a damaged ``manifest.json`` is reported as
                damage) and before any hashing.

        Returns:
            The layout, or None if there is no complete one (no manifest: packing
            never finished).

        Raises:
            PackedLayoutError: if any file of the layout is missing, malformed
                or differs from what was packed, or a source GeoTIFF changed
                after packing; the message names the file, what differs and
                how to repair it.
            ValueError: with *check_size*, for patches of another size.
        """
        if not (directory / 'manifest.json').is_file():
            return None
        checker = _Checker(directory, progress, patch_size)
        with _garbage_collector_paused():
            manifest = checker.manifest()
            files = checker.files(manifest)
            checker.shard_records(manifest, files)
        num_bytes = checker.shards(manifest, full=False)
        if check_size:  # the layout is consistent: its size is the packed one
            check_packed_size(
                directory / 'manifest.json',
                (manifest.height, manifest.width),
                patch_size,
            )
        if verify:
            checker.hash_shards(manifest)
        checked = missing = 0
        if sources is not None:
            checked, missing = checker.sources(sources, files, verify)
        return cls(
            directory=directory,
            bands=ALL_BANDS,
            height=manifest.height,
            width=manifest.width,
            shards=[entry.name for entry in manifest.shards],
            location=files.location,
            nodata=files.nodata,
            sources=files.sources,
            num_bytes=num_bytes,
            num_sources_checked=checked,
            num_sources_missing=missing,
        )

    def _shard(self, number: int) -> NDArray[np.uint16]:
        """Return the memory map of one shard, opening it on first use.

        Safe from several threads (:class:`~torchgeo_satclip.datamodules.
        ThreadedBatchLoader`): a shard is opened under a lock, so it is mapped
        once, and no two ``np.load`` calls parse a header at the same time
        (that parse goes through ``ast.literal_eval``, which CPython 3.11.7
        can fail from concurrent threads with "SystemError: AST constructor
        recursion depth mismatch").
        """
        array = self._maps.get(number)
        if array is not None:
            return array
        with _SHARD_OPEN_LOCK:
            array = self._maps.get(number)
            if array is None:
                path = self.directory / self.shards[number]
                try:
                    array = np.load(path, mmap_mode='r')
                except ValueError as error:  # no longer a .npy file (OSError:
                    # permission, descriptors, a vanished file: as it is)
                    command = pack_command(
                        self.directory.parent, (self.height, self.width)
                    )
                    raise PackedLayoutError(
                        f'{path}: cannot open packed shard ({error}); delete it '
                        f'and run {command}, which redoes that shard only'
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
