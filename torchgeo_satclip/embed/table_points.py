"""Parquet and GeoJSON points.

**Parquet**: longitude and latitude columns of a numeric type (integers,
floating point or decimals; not booleans, not text), without nulls; the
other columns are kept with their types. Read in batches, so memory is
bounded by the batch size. Rows are numbered from 1 in messages.

A pandas index is kept (:func:`_pandas_index`): pandas stores a
``RangeIndex`` other than the default ``0 .. n-1`` (``df.iloc[100:200]``)
in its metadata only, so its labels become an int64 column (named as pandas
names a stored index: the index's name, else ``__index_level_0__``); and the
schema of the points carries pandas metadata naming the index columns, so
that ``pd.read_parquet`` reads a Parquet output with the input's index.

**GeoJSON** (RFC 7946): a ``FeatureCollection`` whose features are each a
``Feature`` with a ``Point`` geometry, ``coordinates`` ``[longitude,
latitude]`` (an altitude third is ignored) as JSON numbers (not strings, not
``true``/``false``); ``properties`` (an object, or null) become columns,
each of one JSON type (numbers mix freely), in order of first appearance. A
key given twice in one object is refused. The document is parsed whole, and
every feature checked before the first is embedded. Features are numbered
from 1 in messages.

A ``crs`` member of the ``FeatureCollection`` (GeoJSON 2008, as GDAL writes
it: ``{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}``)
is honoured (:func:`~torchgeo_satclip.geo.crs.geojson_crs`): WGS84
longitude/latitude (OGC CRS84, or EPSG:4326 in longitude-first order as
GDAL writes it) is read as it is, the coordinates of any other CRS are
``[easting, northing]`` (or ``[longitude, latitude]``) reprojected to
longitude and latitude, and a point that does not reproject (outside the
CRS's domain) is refused naming its feature. A malformed ``crs`` member, a
linked CRS or a name pyproj does not know is refused naming the member.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..geo.crs import geojson_crs, reproject_checked
from .csv_points import missing_column
from .points import InputError, PointBatch, PointSource, check_lonlat, float64_numpy

__all__ = ['GeoJsonPoints', 'ParquetPoints']


def _unique(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        if name in seen:
            raise InputError(
                f'{path}: column name {name!r} appears twice (columns {seen[name]} '
                f'and {number}); names must be unique'
            )
        seen[name] = number


def _numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
    )


@dataclass(frozen=True)
class _RangeLabels:
    """A pandas ``RangeIndex`` kept as a column: label ``start + step * row``."""

    name: str
    start: int
    step: int

    def labels(self, first: int, count: int) -> pa.Array:
        """The labels of ``count`` rows from row ``first`` (numbered from 0)."""
        values = self.start + self.step * np.arange(
            first, first + count, dtype=np.int64
        )
        return pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(values)])


def _pandas_index(
    schema: pa.Schema, rows: int, kept: list[str]
) -> tuple[list[_RangeLabels], bytes | None]:
    """The index a Parquet file written by pandas has, to keep in the output.

    Args:
        schema: the file's schema.
        rows: its number of rows.
        kept: the columns the output keeps (all but the coordinates).

    Returns:
        The ``RangeIndex`` to add as a column (none for the default ``0 ..
        n-1``, nor for a range of another length, which pandas reads as the
        default too), and pandas metadata naming the index columns the
        output keeps (None for none, or a file without valid metadata).
    """
    try:
        meta = schema.pandas_metadata
    except (ValueError, TypeError, UnicodeDecodeError):
        return [], None
    if not isinstance(meta, dict) or not isinstance(meta.get('index_columns'), list):
        return [], None
    described = {
        c.get('field_name'): c for c in meta.get('columns') or [] if isinstance(c, dict)
    }
    ranges: list[_RangeLabels] = []
    index: list[str] = []
    columns: list[dict[str, Any]] = []
    for level, entry in enumerate(meta['index_columns']):
        if isinstance(entry, str):
            if entry in kept and entry in described:
                index.append(entry)
                columns.append(described[entry])
            continue
        if not isinstance(entry, dict) or entry.get('kind') != 'range':
            continue
        name = entry.get('name')
        start, stop, step = entry.get('start'), entry.get('stop'), entry.get('step')
        if not (
            isinstance(start, int) and isinstance(stop, int) and isinstance(step, int)
        ):
            continue
        if step == 0 or len(range(start, stop, step)) != rows:
            continue
        if name is None and start == 0 and step == 1:
            continue  # the default index: nothing to keep
        # pandas' own name of a stored index: its name, unless a column has it
        field = str(name) if name is not None else ''
        if not field or field in schema.names or field in index:
            field = f'__index_level_{level}__'
        ranges.append(_RangeLabels(field, start, step))
        index.append(field)
        columns.append(
            {
                'name': name,
                'field_name': field,
                'pandas_type': 'int64',
                'numpy_type': 'int64',
                'metadata': None,
            }
        )
    if not index:
        return ranges, None
    kept_meta = {
        'index_columns': index,
        'column_indexes': meta.get('column_indexes') or [],
        'columns': columns,
    }
    return ranges, json.dumps(kept_meta).encode()


class ParquetPoints(PointSource):
    """The points of a Parquet file."""

    def __init__(
        self, path: Path, lon_column: str, lat_column: str, batch_size: int
    ) -> None:
        """Open a Parquet file and check its schema.

        Args:
            path: the Parquet file.
            lon_column: name of the longitude column.
            lat_column: name of the latitude column.
            batch_size: points per batch (at most).

        Raises:
            InputError: if it is not a Parquet file, a column name repeats,
                or a coordinate column is missing or not numeric.
        """
        self.path = path
        self.batch_size = batch_size
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as error:
            raise InputError(f'{path}: not a readable Parquet file ({error})') from None
        schema = self.file.schema_arrow
        names = list(schema.names)
        _unique(path, names)
        for name in (lon_column, lat_column):
            if name not in names:
                raise missing_column(path, names, name)
            kind = schema.field(name).type
            if not _numeric(kind):
                raise InputError(
                    f'{path}: column {name!r} holds {kind} values; coordinates '
                    'must be numbers (an integer, floating-point or decimal column)'
                )
        self.coordinate_columns = (lon_column, lat_column)
        self._names = (lon_column, lat_column)
        fields = [f for f in schema if f.name not in (lon_column, lat_column)]
        self.estimate = int(self.file.metadata.num_rows)
        self._ranges, pandas = _pandas_index(
            schema, self.estimate, [f.name for f in fields]
        )
        fields += [pa.field(r.name, pa.int64()) for r in self._ranges]
        _unique(path, [*names, *(r.name for r in self._ranges)])
        self.schema = pa.schema(
            fields, metadata=None if pandas is None else {b'pandas': pandas}
        )

    def batches(self) -> Iterator[PointBatch]:
        """Yield the points in batches of at most ``batch_size``.

        Yields:
            Batches in file order.

        Raises:
            InputError: for the first null or out-of-range coordinate, naming
                its row, or a file that cannot be read.
        """
        lon_column, lat_column = self._names
        path = self.path
        first = 0
        records = self.file.iter_batches(batch_size=self.batch_size)
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as error:
                raise InputError(
                    f'{path}: cannot read the rows after row {first} ({error})'
                ) from None

            def where(i: int, start: int = first) -> str:
                return f'{path}, row {start + i + 1}'

            lon, lat = record.column(lon_column), record.column(lat_column)
            bad = len(record)
            for column in (lon, lat):
                if column.null_count:
                    bad = min(bad, pc.index(column.is_null(), True).as_py())
            numbers = [
                float64_numpy(pc.cast(c.slice(0, bad), pa.float64(), safe=False))
                for c in (lon, lat)
            ]
            lonlat = np.column_stack(numbers).reshape(-1, 2)
            check_lonlat(path, lonlat, where, self.coordinate_columns)
            if bad < len(record):
                name, axis = (
                    (lon_column, 'longitude')
                    if not lon[bad].is_valid
                    else (lat_column, 'latitude')
                )
                raise InputError(f'{where(bad)}: no {axis} (null) in column {name!r}')
            columns = {
                name: record.column(name)
                for name in self.schema.names[: len(self.schema) - len(self._ranges)]
            }
            for labels in self._ranges:
                columns[labels.name] = labels.labels(first, len(record))
            yield PointBatch(columns, lonlat, first, where)
            first += len(record)


def _kind(value: Any) -> str:
    """The JSON type of a property value (ints and floats are one kind)."""
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, int | float):
        return 'number'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, list):
        return 'array'
    return 'object'


class _DuplicateKey(Exception):
    def __init__(self, key: str, features: int, collection: bool) -> None:
        super().__init__(key)
        self.key, self.features, self.collection = key, features, collection


def _load(path: Path) -> Any:
    """Parse a JSON file, refusing text that is not UTF-8 and repeated keys."""
    raw = path.read_bytes()
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as error:
        line = raw.count(b'\n', 0, error.start) + 1
        raise InputError(
            f'{path}, line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); '
            'GeoJSON must be UTF-8'
        ) from None
    features = 0

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal features
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                raise _DuplicateKey(
                    key, features, dict(items).get('type') == 'FeatureCollection'
                )
            found[key] = value
        if found.get('type') == 'Feature':
            features += 1
        return found

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        raise InputError(
            f'{path}, line {error.lineno}, column {error.colno}: not valid JSON '
            f'({error.msg})'
        ) from None
    except _DuplicateKey as error:
        where = (
            'the FeatureCollection'
            if error.collection
            else f'feature {error.features + 1}'
        )
        raise InputError(
            f'{path}: the key {error.key!r} appears twice in one object of {where}; '
            'keys must be unique'
        ) from None
    except RecursionError:
        raise InputError(f'{path}: JSON nested too deeply') from None


class GeoJsonPoints(PointSource):
    """The points of a GeoJSON FeatureCollection."""

    def __init__(self, path: Path, batch_size: int) -> None:
        """Parse and check the whole document.

        Args:
            path: the GeoJSON file.
            batch_size: points per batch.

        Raises:
            InputError: for text that is not JSON, a document that is not a
                FeatureCollection of Points, a bad ``crs`` member,
                coordinates that are not numbers, out of range or outside the
                domain of the ``crs``, or a property of mixed types, naming
                the feature.
        """
        self.path = path
        self.batch_size = batch_size
        self.coordinate_columns = None
        document = _load(path)
        if (
            not isinstance(document, dict)
            or document.get('type') != 'FeatureCollection'
        ):
            kind = document.get('type') if isinstance(document, dict) else None
            raise InputError(
                f'{path}: expected a GeoJSON FeatureCollection, got '
                + (
                    f'type {kind!r}'
                    if kind is not None
                    else f'a JSON {_kind(document)}'
                )
            )
        crs = None
        if 'crs' in document:
            try:
                crs = geojson_crs(document['crs'])
            except ValueError as error:
                raise InputError(f'{path}: {error}') from None
        features = document.get('features')
        if not isinstance(features, list):
            raise InputError(f'{path}: "features" must be an array of features')
        coords = np.empty((len(features), 2), dtype=np.float64)
        properties: list[dict[str, Any]] = []
        ids: list[Any] = []
        for index, feature in enumerate(features):
            coords[index] = self._point(index, feature)
            values = feature.get('properties')
            if values is not None and not isinstance(values, dict):
                raise InputError(
                    f'{path}, feature {index + 1}: "properties" must be an object '
                    f'or null, got a JSON {_kind(values)}'
                )
            properties.append(values or {})
            ids.append(self._feature_id(index, feature))
        if crs is not None:
            coords = self._reproject(coords, crs)
        check_lonlat(path, coords, self._where, None)
        self.lonlat = coords
        if any(i is not None for i in ids):
            # RFC 7946's identifier of a feature, kept as the first column
            clash = next((i for i, p in enumerate(properties) if 'id' in p), None)
            if clash is not None:
                raise InputError(
                    f'{self._where(clash)}: a property is named "id", like the '
                    'column of the features\' "id" members; rename the property'
                )
            properties = [{'id': i, **p} for i, p in zip(ids, properties, strict=True)]
        self.columns = self._columns(properties)
        self.schema = pa.schema([(k, v.type) for k, v in self.columns.items()])
        self.estimate = len(features)

    def _where(self, i: int) -> str:
        return f'{self.path}, feature {i + 1}'

    def _reproject(self, coords: np.ndarray, crs: str) -> np.ndarray:
        """The (lon, lat) of ``crs`` coordinates; refuse one that does not map."""
        x, y = coords[:, 0], coords[:, 1]
        lonlat, i = reproject_checked(x, y, crs)
        if i is not None:
            point = f'(x, y) = ({x[i]}, {y[i]}) in {crs}'
            if not np.isfinite(coords[i]).all():
                raise InputError(f'{self._where(i)}: non-finite coordinate {point}')
            raise InputError(
                f'{self._where(i)}: {point} does not map to a longitude and '
                'latitude (it lies outside the domain of the CRS); check the '
                'coordinates and the "crs" member'
            )
        return lonlat

    def _feature_id(self, index: int, feature: dict[str, Any]) -> Any:
        """A feature's ``id`` member (RFC 7946: a string or a number), or None."""
        value = feature.get('id')
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, str | int | float)
        ):
            raise InputError(
                f'{self._where(index)}: "id" must be a string or a number '
                f'(RFC 7946), got a JSON {_kind(value)}'
            )
        return value

    def _point(self, index: int, feature: Any) -> tuple[float, float]:
        where = self._where(index)
        if not isinstance(feature, dict) or feature.get('type') != 'Feature':
            got = (
                f'type {feature.get("type")!r}'
                if isinstance(feature, dict)
                else f'a JSON {_kind(feature)}'
            )
            raise InputError(f'{where}: expected a GeoJSON Feature, got {got}')
        geometry = feature.get('geometry')
        if not isinstance(geometry, dict) or geometry.get('type') != 'Point':
            got = (
                f'a {geometry.get("type")!r} geometry'
                if isinstance(geometry, dict)
                else 'no geometry'
                if geometry is None
                else f'a JSON {_kind(geometry)}'
            )
            raise InputError(f'{where}: expected a Point geometry, got {got}')
        point = geometry.get('coordinates')
        if not isinstance(point, list) or len(point) not in (2, 3):
            raise InputError(
                f'{where}: Point coordinates must be [longitude, latitude], got '
                f'{json.dumps(point)[:60]}'
            )
        values = []
        for axis, value in zip(('longitude', 'latitude'), point[:2], strict=True):
            if _kind(value) != 'number':
                raise InputError(
                    f'{where}: the {axis} must be a JSON number, got '
                    f'{json.dumps(value)[:40]} (a {_kind(value)})'
                )
            try:
                values.append(float(value))
            except OverflowError:
                values.append(math.inf if value > 0 else -math.inf)
        if len(point) == 3 and _kind(point[2]) != 'number':
            raise InputError(
                f'{where}: the altitude must be a JSON number, got '
                f'{json.dumps(point[2])[:40]}'
            )
        return values[0], values[1]

    def _columns(self, properties: list[dict[str, Any]]) -> dict[str, pa.Array]:
        keys = list(dict.fromkeys(k for p in properties for k in p))
        columns = {}
        for key in keys:
            values = [p.get(key) for p in properties]
            kinds = [_kind(v) for v in values]
            first = next((k for k in kinds if k != 'null'), 'null')
            for index, kind in enumerate(kinds):
                if kind not in ('null', first):
                    raise InputError(
                        f'{self._where(index)}: property {key!r} is a {kind}, but '
                        f'an earlier feature has a {first}; a property must keep '
                        'one type'
                    )
            try:
                columns[key] = pa.array(values)
            except (pa.ArrowException, OverflowError, TypeError) as error:
                raise InputError(
                    f'{self.path}: property {key!r} cannot be stored in a table '
                    f'({error})'
                ) from None
        return columns

    def batches(self) -> Iterator[PointBatch]:
        """Yield the points in batches of ``batch_size``.

        Yields:
            Batches in document order.
        """
        for start in range(0, len(self.lonlat), self.batch_size):
            stop = start + self.batch_size
            columns = {k: v.slice(start, stop - start) for k, v in self.columns.items()}

            def where(i: int, offset: int = start) -> str:
                return self._where(offset + i)

            yield PointBatch(columns, self.lonlat[start:stop], start, where)
