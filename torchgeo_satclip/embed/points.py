"""What every reader of points shares: the batch, the errors, the number rules.

A reader (:mod:`.csv_points`, :mod:`.table_points`) opens a file as a
:class:`PointSource`: the input's other columns and their types are known
before the first point is read (so that an empty input still gets an output
with the full schema), and :meth:`PointSource.batches` yields
:class:`PointBatch` es of at most ``batch_size`` points, in input order, each
checked with :func:`~torchgeo_satclip.geo.validate_lonlat`.

Numbers are read by one rule everywhere (:func:`parse_numbers`): plain
decimal numbers in ASCII (``12``, ``-0.5``, ``+.5``, ``1.5e-3``), nothing
else: no ``1_0``, no digits of other scripts, no surrounding spaces, no
empty values. ``nan`` and ``inf`` are read, and then refused as non-finite.
"""

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import DataError
from ..geo import validate_lonlat

__all__ = [
    'EmbedError',
    'InputError',
    'PointBatch',
    'PointSource',
    'check_lonlat',
    'float64_numpy',
    'number_error',
    'parse_numbers',
]


class InputError(ValueError):
    """An input table is malformed: the message names the file and line."""


class EmbedError(DataError):
    """Embedding failed at run time (for example a non-finite embedding)."""


@dataclass
class PointBatch:
    """A batch of input points."""

    #: Other input columns (identifiers), one pyarrow array per column.
    columns: dict[str, Any]
    #: float64 ``(n, 2)`` (lon, lat) in degrees.
    lonlat: np.ndarray
    #: Index of the batch's first point in the input (0 for the first point).
    first: int = 0
    #: Describes point ``i`` of the batch in messages, e.g. ``'a.csv, line 7'``.
    where: Callable[[int], str] | None = field(default=None, repr=False)

    def describe(self, i: int) -> str:
        """Where point ``i`` of the batch is in the input, for messages.

        Args:
            i: index within the batch.

        Returns:
            For example ``'points.csv, line 12'`` or ``'point 11'``.
        """
        if self.where is not None:
            return self.where(i)
        return f'point {self.first + i + 1}'


class PointSource(abc.ABC):
    """An opened input file of points.

    Opening one reads the header or schema and refuses a bad one, so the
    work starts only when the columns are known to be right.
    """

    #: The input file.
    path: Path
    #: Names of the longitude and latitude columns (None for GeoJSON).
    coordinate_columns: tuple[str, str] | None
    #: The input's other columns, in order, with their types.
    schema: pa.Schema
    #: Number of points: exact, or an upper bound where only a scan would
    #: tell (CSV: the number of lines).
    estimate: int

    @abc.abstractmethod
    def batches(self) -> Iterator[PointBatch]:
        """Yield the points in batches.

        Yields:
            Batches in input order, each checked.

        Raises:
            InputError: for the first bad row, naming its line, row or feature.
        """


def check_lonlat(
    path: Path,
    lonlat: np.ndarray,
    where: Callable[[int], str],
    columns: tuple[str, str] | None,
) -> None:
    """Raise :class:`InputError` naming the first bad row of a batch.

    Args:
        path: the input file.
        lonlat: ``(n, 2)`` float64 (lon, lat) of the batch.
        where: maps a row index of the batch to a description such as
            ``'data.csv, line 12'``.
        columns: the longitude and latitude column names (None for GeoJSON).
    """
    hint = (
        f'is {columns[1]!r} the longitude? Pass --lon-column/--lat-column'
        if columns
        else 'GeoJSON coordinates are [longitude, latitude]'
    )
    validate_lonlat(
        lonlat, where=where, columns=columns, swap_hint=hint, error=InputError
    )


def parse_numbers(values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Read a column of text as float64 numbers, by the one number rule.

    Args:
        values: strings.

    Returns:
        The numbers, or None if some value is not a number (find which with
        :func:`number_error`).
    """
    try:
        numbers = pc.cast(values, pa.float64(), safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return float64_numpy(numbers)


def float64_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A float64 array without nulls as numpy, read from its buffer.

    (pyarrow's ``to_numpy`` imports pandas, a fifth of a second.)

    Args:
        values: float64 values, no nulls.

    Returns:
        The values (read-only when not copied).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.float64() or values.null_count:
        raise ValueError(f'expected float64 values without nulls, got {values.type}')
    buffer = values.buffers()[1]
    if buffer is None:
        return np.empty(0, np.float64)
    return np.frombuffer(buffer, np.float64, len(values), values.offset * 8)


def number_error(text: str) -> str | None:
    """Why ``text`` is not a number under :func:`parse_numbers`' rule.

    Args:
        text: one value.

    Returns:
        None if it is a number, else the reason.
    """
    if parse_numbers(pa.array([text], pa.string())) is not None:
        return None
    if not text:
        return 'an empty value'
    if text != text.strip():
        return 'spaces around the number'
    if not text.isascii():
        return 'characters other than ASCII digits'
    if '_' in text:
        return 'an underscore'
    if text.count(',') == 1 and text.replace(',', '.', 1) != text:
        return 'a decimal comma'
    return 'not a number'
