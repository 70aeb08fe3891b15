"""Embed a table of points with a location encoder, streaming in batches.

The library side of ``torchgeo-satclip embed``: :func:`embed_file` reads
points from CSV, Parquet or GeoJSON in batches, embeds each batch (on the GPU
when there is one) and writes Parquet (identifier columns kept, the embedding
as ``emb_*`` columns or one fixed-size list column), CSV or ``.npy``, to a
temporary file in the output's folder that is renamed when complete. Only one
batch of points and embeddings is in memory at a time, whatever the number of
points (GeoJSON, a single JSON document, is the exception: it is parsed whole).
"""

import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ._io import atomic_path
from .geo import validate_lonlat
from .models import LocationEncoder, satclip_location_encoder

__all__ = [
    'INPUT_FORMATS',
    'OUTPUT_FORMATS',
    'DtypeName',
    'EmbedOptions',
    'EmbedPointsResult',
    'EmbedResult',
    'InputError',
    'Neighbour',
    'PointBatch',
    'count_points',
    'embed_csv',
    'embed_file',
    'embed_points',
    'nearest_neighbours',
    'read_points',
    'read_points_csv',
]

#: Input suffixes understood by :func:`read_points`.
INPUT_FORMATS = ('.csv', '.parquet', '.pq', '.geojson', '.json')
#: Output suffixes understood by :func:`embed_file`.
OUTPUT_FORMATS = ('.parquet', '.pq', '.csv', '.npy')


class InputError(ValueError):
    """An input table is malformed: the message names the file and line."""


@dataclass
class EmbedResult:
    """What :func:`embed_file` wrote."""

    path: Path
    num_points: int
    embed_dim: int


@dataclass
class PointBatch:
    """A batch of input points."""

    #: Other input columns (identifiers), one list or array per column.
    columns: dict[str, Any]
    #: float64 ``(n, 2)`` (lon, lat) in degrees.
    lonlat: np.ndarray


def _check_values(
    lonlat: np.ndarray, where: Callable[[int], str], columns: tuple[str, str] | None
) -> None:
    """Raise :class:`InputError` naming the first bad row of a batch.

    Args:
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


def read_points_csv(
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
) -> Iterator[tuple[list[dict[str, str]], np.ndarray]]:
    """Read a CSV of points in batches.

    Args:
        path: CSV file with a header line.
        lon_column: name of the longitude column (degrees).
        lat_column: name of the latitude column (degrees).
        batch_size: rows per batch.

    Yields:
        ``(rows, lonlat)``: the raw rows and a float64 ``(n, 2)`` array of
        (lon, lat).

    Raises:
        InputError: if a column is missing or a row is malformed or out of
            range (naming the line number, counting the header as line 1).
    """
    path = Path(path)
    with path.open(newline='') as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        for column in (lon_column, lat_column):
            if column not in fields:
                raise InputError(f'{path}: no column {column!r}; columns are {fields}')
        rows: list[dict[str, str]] = []
        coords: list[tuple[float, float]] = []
        lines: list[int] = []

        def flush() -> tuple[list[dict[str, str]], np.ndarray]:
            lonlat = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
            _check_values(
                lonlat, lambda i: f'{path}, line {lines[i]}', (lon_column, lat_column)
            )
            return rows, lonlat

        for row in reader:
            try:
                lon, lat = float(row[lon_column]), float(row[lat_column])
            except (TypeError, ValueError):
                raise InputError(
                    f'{path}, line {reader.line_num}: cannot read a number from '
                    f'{lon_column}={row.get(lon_column)!r}, '
                    f'{lat_column}={row.get(lat_column)!r}'
                ) from None
            coords.append((lon, lat))
            rows.append(row)
            lines.append(reader.line_num)
            if len(rows) == batch_size:
                yield flush()
                rows, coords, lines = [], [], []
        if rows:
            yield flush()


def _csv_batches(
    path: Path, lon_column: str, lat_column: str, batch_size: int
) -> Iterator[PointBatch]:
    for rows, lonlat in read_points_csv(path, lon_column, lat_column, batch_size):
        keep = [c for c in rows[0] if c not in (lon_column, lat_column)]
        yield PointBatch({c: [row[c] for row in rows] for c in keep}, lonlat)


def _parquet_batches(
    path: Path, lon_column: str, lat_column: str, batch_size: int
) -> Iterator[PointBatch]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    for column in (lon_column, lat_column):
        if column not in names:
            raise InputError(f'{path}: no column {column!r}; columns are {names}')
    start = 0
    for record in parquet.iter_batches(batch_size=batch_size):
        columns = {name: record.column(name) for name in record.schema.names}
        try:
            lon = (
                columns.pop(lon_column)
                .to_numpy(zero_copy_only=False)
                .astype(np.float64)
            )
            lat = (
                columns.pop(lat_column)
                .to_numpy(zero_copy_only=False)
                .astype(np.float64)
            )
        except (TypeError, ValueError) as error:
            raise InputError(
                f'{path}: columns {lon_column!r}/{lat_column!r} are not numeric ({error})'
            ) from None
        lonlat = np.stack([lon, lat], axis=1)

        def row(i: int, first: int = start) -> str:
            return f'{path}, row {first + i + 1}'

        _check_values(lonlat, row, (lon_column, lat_column))
        start += len(lon)
        yield PointBatch(columns, lonlat)


def _geojson_batches(path: Path, batch_size: int) -> Iterator[PointBatch]:
    with path.open() as handle:
        document = json.load(handle)
    features = document.get('features') if isinstance(document, dict) else None
    if not isinstance(features, list):
        raise InputError(f'{path}: not a GeoJSON FeatureCollection')
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        coords = []
        properties: list[dict[str, Any]] = []
        for offset, feature in enumerate(chunk):
            geometry = (feature or {}).get('geometry') or {}
            point = geometry.get('coordinates')
            if (
                geometry.get('type') != 'Point'
                or not isinstance(point, list)
                or len(point) < 2
            ):
                raise InputError(
                    f'{path}, feature {start + offset + 1}: expected a Point geometry, '
                    f'got {geometry.get("type")!r}'
                )
            try:
                coords.append((float(point[0]), float(point[1])))
            except (TypeError, ValueError):
                raise InputError(
                    f'{path}, feature {start + offset + 1}: cannot read coordinates {point!r}'
                ) from None
            properties.append(feature.get('properties') or {})
        lonlat = np.asarray(coords, dtype=np.float64).reshape(-1, 2)

        def feature(i: int, first: int = start) -> str:
            return f'{path}, feature {first + i + 1}'

        _check_values(lonlat, feature, None)
        keys = list(dict.fromkeys(k for p in properties for k in p))
        yield PointBatch({k: [p.get(k) for p in properties] for k in keys}, lonlat)


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
            kept as columns; coordinates are (lon, lat) by the GeoJSON standard).
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
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == '.csv':
        yield from _csv_batches(path, lon_column, lat_column, batch_size)
    elif suffix in ('.parquet', '.pq'):
        yield from _parquet_batches(path, lon_column, lat_column, batch_size)
    elif suffix in ('.geojson', '.json'):
        yield from _geojson_batches(path, batch_size)
    else:
        raise ValueError(f'input must be one of {", ".join(INPUT_FORMATS)}, got {path}')


def count_points(path: str | os.PathLike[str]) -> int:
    """Count the points of an input file without holding it in memory.

    Args:
        path: an input file (see :func:`read_points`).

    Returns:
        The number of data rows or features.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ('.parquet', '.pq'):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if suffix in ('.geojson', '.json'):
        with path.open() as handle:
            return len(json.load(handle).get('features', []))
    with path.open(newline='') as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


@torch.no_grad()
def _embed(
    encoder: LocationEncoder, lonlat: np.ndarray, device: torch.device
) -> np.ndarray:
    coords = torch.from_numpy(lonlat).to(device)
    out: Tensor = encoder(coords)
    array: np.ndarray = out.float().cpu().numpy()
    return array


@dataclass(frozen=True)
class _SinkOptions:
    """What every output writer needs to know besides its file."""

    num_points: int
    dim: int
    lon_column: str
    lat_column: str
    layout: Literal['columns', 'list']


class _NpySink:
    """Writes a float32 ``(N, D)`` array, in input order, through a memory map."""

    def __init__(self, path: Path, options: _SinkOptions) -> None:
        self.array = np.lib.format.open_memmap(
            path, mode='w+', dtype=np.float32, shape=(options.num_points, options.dim)
        )
        self.written = 0

    def write(self, batch: PointBatch, embedding: np.ndarray) -> None:
        n = len(embedding)
        self.array[self.written : self.written + n] = embedding
        self.written += n

    def close(self) -> None:
        self.array.flush()
        del self.array


class _CsvSink:
    """Writes the input columns, lon, lat and ``emb_0 .. emb_{D-1}`` as CSV."""

    def __init__(self, path: Path, options: _SinkOptions) -> None:
        self.handle = path.open('w', newline='')
        self.writer = csv.writer(self.handle)
        self.options = options
        self.header: list[str] | None = None

    def write(self, batch: PointBatch, embedding: np.ndarray) -> None:
        options = self.options
        if self.header is None:
            self.header = list(batch.columns)
            self.writer.writerow(
                [
                    *self.header,
                    options.lon_column,
                    options.lat_column,
                    *(f'emb_{i}' for i in range(options.dim)),
                ]
            )
        n = len(embedding)
        columns = [batch.columns.get(c, [''] * n) for c in self.header]
        for j, ((lon, lat), vec) in enumerate(
            zip(batch.lonlat, embedding, strict=True)
        ):
            self.writer.writerow(
                [
                    *(_cell(values[j]) for values in columns),
                    repr(float(lon)),
                    repr(float(lat)),
                    *(f'{v:.7g}' for v in vec),
                ]
            )

    def close(self) -> None:
        self.handle.close()


class _ParquetSink:
    """Writes batches to a Parquet file, one row group per batch."""

    def __init__(self, path: Path, options: _SinkOptions) -> None:
        self.path, self.dim, self.layout = path, options.dim, options.layout
        self.lon, self.lat = options.lon_column, options.lat_column
        self.writer: Any = None

    def write(self, batch: PointBatch, embedding: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays: dict[str, Any] = {}
        for name, values in batch.columns.items():
            arrays[name] = (
                values
                if isinstance(values, pa.Array | pa.ChunkedArray)
                else pa.array(values)
            )
        arrays[self.lon] = pa.array(batch.lonlat[:, 0])
        arrays[self.lat] = pa.array(batch.lonlat[:, 1])
        if self.layout == 'list':
            flat = pa.array(embedding.reshape(-1), type=pa.float32())
            arrays['embedding'] = pa.FixedSizeListArray.from_arrays(flat, self.dim)
        else:
            # One contiguous transpose, then each column is a zero-copy view
            # (slicing a column out of a row-major array would copy 256 times).
            columns = np.ascontiguousarray(embedding.T, dtype=np.float32)
            for i in range(self.dim):
                arrays[f'emb_{i}'] = pa.array(columns[i])
        table = pa.table(arrays)
        if self.writer is None:
            # Embedding values are continuous: dictionary encoding and min/max
            # statistics cost time and buy nothing; keep both for the input's
            # own columns (ids, labels).
            own = [name for name in batch.columns if name in table.schema.names]
            own += [self.lon, self.lat]
            self.writer = pq.ParquetWriter(
                self.path,
                table.schema,
                use_dictionary=[n for n in own if n in batch.columns],
                write_statistics=own,
            )
        elif not table.schema.equals(self.writer.schema):
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


#: Output writers by file suffix.
_SINKS: dict[str, type[_NpySink | _CsvSink | _ParquetSink]] = {
    '.npy': _NpySink,
    '.csv': _CsvSink,
    '.parquet': _ParquetSink,
    '.pq': _ParquetSink,
}


def _check_paths(
    input_path: Path, output_path: Path, overwrite: bool, layout: str
) -> None:
    """Refuse unsupported suffixes, a missing input and an unwanted overwrite."""
    if output_path.suffix.lower() not in OUTPUT_FORMATS:
        raise ValueError(
            f'output must end in {", ".join(OUTPUT_FORMATS)}, got {output_path}'
        )
    if input_path.suffix.lower() not in INPUT_FORMATS:
        raise ValueError(
            f'input must end in {", ".join(INPUT_FORMATS)}, got {input_path}'
        )
    if not input_path.exists():
        raise FileNotFoundError(f'{input_path} does not exist')
    if output_path.exists() and not overwrite:
        raise FileExistsError(
            f'{output_path} exists; pass overwrite=True (--overwrite)'
        )
    if layout not in ('columns', 'list'):
        raise ValueError(f"layout must be 'columns' or 'list', got {layout!r}")


def embed_file(
    encoder: LocationEncoder,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    batch_size: int = 65536,
    device: str | torch.device | None = None,
    overwrite: bool = False,
    progress: bool = True,
    layout: Literal['columns', 'list'] = 'columns',
) -> EmbedResult:
    """Embed every point of an input file and write the embeddings.

    Args:
        encoder: the location encoder (put in eval mode here).
        input_path: CSV, Parquet or GeoJSON points (see :func:`read_points`).
        output_path: ``.parquet``/``.pq`` (input columns kept, then lon, lat
            and the embedding as float32 ``emb_0 .. emb_{D-1}`` columns or one
            ``embedding`` fixed-size list column), ``.csv`` (same columns) or
            ``.npy`` (a float32 ``(N, D)`` array in input order).
        lon_column: longitude column name.
        lat_column: latitude column name.
        batch_size: points per batch (bounds memory).
        device: where to run the encoder; default CUDA when available.
        overwrite: replace an existing output file.
        progress: show a progress bar.
        layout: Parquet embedding layout, 'columns' or 'list'.

    Returns:
        What was written.

    Raises:
        FileExistsError: if the output exists and ``overwrite`` is False.
        FileNotFoundError: if the input does not exist.
        InputError: for a malformed input row (naming its line).
        ValueError: for an unsupported suffix.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    _check_paths(input_path, output_path, overwrite, layout)
    dev = (
        torch.device(device)
        if device is not None
        else torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    )
    encoder = encoder.to(dev).eval()
    total = count_points(input_path)
    suffix = output_path.suffix.lower()
    options = _SinkOptions(total, encoder.embed_dim, lon_column, lat_column, layout)
    written = 0
    with (
        atomic_path(output_path, f'.tmp{suffix}') as tmp,
        tqdm(total=total, unit='pt', disable=not progress, desc='embedding') as bar,
    ):
        sink = _SINKS[suffix](tmp, options)
        try:
            for batch in read_points(input_path, lon_column, lat_column, batch_size):
                embedding = _embed(encoder, batch.lonlat, dev)
                sink.write(batch, embedding)
                written += len(embedding)
                bar.update(len(embedding))
        finally:
            sink.close()
        if written != total:
            raise InputError(f'{input_path}: read {written} points, expected {total}')
    return EmbedResult(path=output_path, num_points=written, embed_dim=options.dim)


def _cell(value: Any) -> str:
    """Format one identifier value for CSV output."""
    if value is None:
        return ''
    if hasattr(value, 'as_py'):
        value = value.as_py()
    if isinstance(value, float) and math.isnan(value):
        return ''
    return str(value)


#: Backwards-compatible name of :func:`embed_file` (CSV input).
embed_csv = embed_file


#: Compute dtypes of :func:`embed_points`, by name.
DtypeName = Literal['float64', 'float32', 'bfloat16']


class EmbedOptions(TypedDict, total=False):
    """Options of :func:`~torchgeo_satclip.embed.embed_file` (its defaults)."""

    batch_size: int
    device: str | torch.device | None
    overwrite: bool
    progress: bool
    layout: Literal['columns', 'list']


@dataclass(frozen=True)
class Neighbour:
    """A point and its nearest other point in embedding space."""

    #: The point's name: its first non-coordinate column, else its row number.
    name: str
    #: The nearest point's name.
    nearest: str
    #: Cosine similarity of the two embeddings.
    similarity: float


@dataclass
class EmbedPointsResult:
    """What :func:`embed_points` did."""

    #: The file written.
    written: EmbedResult
    #: Each point's nearest neighbour; None if not asked for, or too many points.
    neighbours: list[Neighbour] | None = None


def embed_points(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    weights: str = 'random',
    legendre_polys: int | None = None,
    seed: int = 0,
    dtype: DtypeName = 'float64',
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    neighbours: bool = False,
    max_neighbour_points: int = 1000,
    **options: Unpack[EmbedOptions],
) -> EmbedPointsResult:
    """Embed the points of a file with a new or pretrained location encoder.

    Args:
        input_path: CSV, Parquet or GeoJSON points (see
            :func:`~torchgeo_satclip.embed.read_points`).
        output_path: ``.parquet``, ``.csv`` or ``.npy`` (see
            :func:`~torchgeo_satclip.embed.embed_file`).
        weights: ``'random'`` for a new, randomly initialised encoder, else
            anything :func:`~torchgeo_satclip.models.load_location_encoder`
            accepts (a checkpoint path, a ``SatCLIPWeights`` name).
        legendre_polys: spherical-harmonic degrees of a random encoder
            (default: :func:`~torchgeo_satclip.models.build_location_encoder`'s).
        seed: torch seed set before initialising a random encoder.
        dtype: compute dtype of the encoder (float64: the checkpoints' own).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        neighbours: also find each point's nearest neighbour in embedding
            space (see :func:`nearest_neighbours`).
        max_neighbour_points: skip the neighbours for larger inputs.
        **options: further options of :func:`~torchgeo_satclip.embed.embed_file`.

    Returns:
        The file written and, if asked for, the neighbours.
    """
    torch_dtype = getattr(torch, dtype)
    if weights == 'random':
        torch.manual_seed(seed)
        architecture = (
            {} if legendre_polys is None else {'legendre_polys': legendre_polys}
        )
        encoder = satclip_location_encoder(dtype=torch_dtype, **architecture)
    else:
        encoder = satclip_location_encoder(weights, dtype=torch_dtype)
    written = embed_file(
        encoder,
        input_path,
        output_path,
        lon_column=lon_column,
        lat_column=lat_column,
        **options,
    )
    found = None
    if neighbours:
        found = nearest_neighbours(
            encoder, input_path, lon_column, lat_column, max_neighbour_points
        )
    return EmbedPointsResult(written, found)


def nearest_neighbours(
    encoder: nn.Module,
    path: str | os.PathLike[str],
    lon_column: str = 'lon',
    lat_column: str = 'lat',
    max_points: int = 1000,
) -> list[Neighbour] | None:
    """Each point's nearest other point by cosine similarity of embeddings.

    Args:
        encoder: the location encoder.
        path: the points (see :func:`~torchgeo_satclip.embed.read_points`).
        lon_column: longitude column (degrees).
        lat_column: latitude column (degrees).
        max_points: the similarity matrix is ``N x N``: None for larger inputs.

    Returns:
        One neighbour per point, in input order; None if there are more than
        ``max_points`` points.
    """
    names: list[str] = []
    coords = []
    for batch in read_points(path, lon_column, lat_column):
        others = [k for k in batch.columns if k not in (lon_column, lat_column)]
        for i in range(len(batch.lonlat)):
            label = batch.columns[others[0]][i] if others else len(names)
            names.append(str(label))
        coords.append(torch.from_numpy(batch.lonlat))
        if len(names) > max_points:
            return None
    with torch.no_grad():
        device = next(encoder.parameters()).device
        emb = encoder(torch.cat(coords).to(device)).double().cpu()
    emb = nn.functional.normalize(emb, dim=1)
    similarity = emb @ emb.T
    similarity.fill_diagonal_(-2.0)
    nearest = similarity.argmax(dim=1).tolist()
    return [
        Neighbour(name, names[j], float(similarity[i, j]))
        for i, (name, j) in enumerate(zip(names, nearest, strict=True))
    ]
