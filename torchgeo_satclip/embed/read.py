"""Open a file of points by its suffix: CSV, Parquet or GeoJSON."""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .csv_points import CsvPoints, count_records
from .points import InputError, PointBatch, PointSource
from .table_points import GeoJsonPoints, ParquetPoints

__all__ = [
    'INPUT_FORMATS',
    'count_points',
    'open_points',
    'read_points',
    'read_points_csv',
]

#: Input suffixes understood by :func:`read_points`.
INPUT_FORMATS = ('.csv', '.parquet', '.pq', '.geojson', '.json')


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ValueError(f'batch_size must be an integer, got {batch_size!r}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')


def check_input(path: str | os.PathLike[str]) -> Path:
    """Check that an input file can be opened as points.

    Args:
        path: the input file.

    Returns:
        The path.

    Raises:
        ValueError: for an unsupported suffix or a path that is not a file.
        FileNotFoundError: if it does not exist.
    """
    path = Path(path)
    if path.suffix.lower() not in INPUT_FORMATS:
        raise ValueError(f'input must end in {", ".join(INPUT_FORMATS)}, got {path}')
    if not path.exists():
        raise FileNotFoundError(f'{path} does not exist')
    if not path.is_file():
        raise ValueError(f'{path} is not a file')
    return path


def open_points(
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
) -> PointSource:
    """Open a file of points, checking its header or schema.

    Args:
        path: ``.csv`` (see :mod:`~torchgeo_satclip.embed.csv_points`),
            ``.parquet``/``.pq`` or ``.geojson``/``.json`` (see
            :mod:`~torchgeo_satclip.embed.table_points`).
        lon_column: longitude column (CSV, Parquet; for GeoJSON, the name of
            the output's longitude column).
        lat_column: latitude column (CSV, Parquet; for GeoJSON, the name of
            the output's latitude column).
        batch_size: points per batch.

    Returns:
        The source; its ``batches()`` reads the points.

    Raises:
        InputError: for a bad header or schema, naming the file.
        ValueError: for an unsupported suffix, a path that is not a file, the
            same column for longitude and latitude, or a bad batch size.
        FileNotFoundError: if the file does not exist.
    """
    path = check_input(path)
    _check_batch_size(batch_size)
    suffix = path.suffix.lower()
    if lon_column == lat_column:
        # GeoJSON too: the columns name the output's coordinates
        raise ValueError(
            f'the longitude and latitude columns are both {lon_column!r}; '
            'pass two different columns (--lon-column, --lat-column)'
        )
    if suffix in ('.geojson', '.json'):
        return GeoJsonPoints(path, batch_size)
    if suffix == '.csv':
        return CsvPoints(path, lon_column, lat_column, batch_size)
    return ParquetPoints(path, lon_column, lat_column, batch_size)


def read_points(
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
) -> Iterator[PointBatch]:
    """Read points from CSV, Parquet or GeoJSON in batches.

    Args:
        path: ``.csv`` (header line), ``.parquet``/``.pq`` or
            ``.geojson``/``.json`` (a FeatureCollection of Points, properties
            kept as columns; coordinates are (lon, lat) by the GeoJSON standard,
            or in the CRS a ``crs`` member names, reprojected).
        lon_column: longitude column (CSV, Parquet).
        lat_column: latitude column (CSV, Parquet).
        batch_size: points per batch.

    Yields:
        Batches of points with their other columns.

    Raises:
        InputError: for a missing column or a bad row (naming its line, row
            or feature number), including latitudes outside [-90, 90], with a
            hint when the columns look swapped.
        ValueError: for an unsupported suffix.
    """
    yield from open_points(path, lon_column, lat_column, batch_size).batches()


def read_points_csv(
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
) -> Iterator[tuple[list[dict[str, str]], np.ndarray]]:
    """Read a CSV of points in batches, as rows.

    Args:
        path: CSV file with a header line.
        lon_column: name of the longitude column (degrees).
        lat_column: name of the latitude column (degrees).
        batch_size: rows per batch.

    Yields:
        ``(rows, lonlat)``: the other columns of each row, as text, and a
        float64 ``(n, 2)`` array of (lon, lat).

    Raises:
        InputError: if a column is missing or a row is malformed or out of
            range (naming the line number, counting the header as line 1).
    """
    if Path(path).suffix.lower() != '.csv':
        raise ValueError(f'expected a .csv file, got {path}')
    for batch in read_points(path, lon_column, lat_column, batch_size):
        columns = {k: v.to_pylist() for k, v in batch.columns.items()}
        rows = [
            {k: values[i] for k, values in columns.items()}
            for i in range(len(batch.lonlat))
        ]
        yield rows, batch.lonlat


def count_points(path: str | os.PathLike[str]) -> int:
    """Count the points of an input file without holding it in memory.

    Args:
        path: an input file (see :func:`read_points`).

    Returns:
        The number of data rows (CSV lines that are neither the header nor
        blank), Parquet rows or GeoJSON features.

    Raises:
        InputError: for a file that cannot be read.
    """
    path = check_input(path)
    suffix = path.suffix.lower()
    if suffix in ('.parquet', '.pq'):
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception as error:
            raise InputError(f'{path}: not a readable Parquet file ({error})') from None
    if suffix in ('.geojson', '.json'):
        return len(GeoJsonPoints(path, 1).lonlat)
    return max(count_records(path) - 1, 0)
