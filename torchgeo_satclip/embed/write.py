"""Writers of embeddings: Parquet, CSV and ``.npy``, one batch at a time.

Each writer (a *sink*) is opened on the temporary file of
:func:`~torchgeo_satclip._io.atomic_path` with the output's whole schema, so
that an input without points still gives a valid file: a Parquet file with
every column and no rows, a CSV file with its header line, an ``.npy``
array of shape ``(0, D)``.

* Parquet: the input's other columns (types kept), then longitude and
  latitude (float64), then the embedding as float32 columns ``emb_0 ..
  emb_{D-1}`` (``layout='columns'``) or one fixed-size list column
  ``embedding`` (``layout='list'``); one row group per batch.
* CSV: the same columns; numbers as the shortest text that reads back to the
  same float32 (embedding) or float64 (coordinates) value, with a decimal
  point (``5.0``, not ``5``) so that pandas reads floats back.
* ``.npy``: the float32 ``(N, D)`` array, written sequentially (never through
  a memory map, so a full disk is an error, not a crash), with the space for
  the expected number of points reserved first where the file system can
  (:func:`os.posix_fallocate`), so that a disk too small is found before the
  work.
"""

import abc
import contextlib
import csv
import errno
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.lib.format as npy_format
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .points import PointBatch

__all__ = [
    'OUTPUT_FORMATS',
    'Embeddings',
    'Layout',
    'Orientation',
    'Sink',
    'SinkOptions',
    'embedding_columns',
    'make_sink',
    'output_columns',
]

#: Output suffixes understood by :func:`make_sink`.
OUTPUT_FORMATS = ('.parquet', '.pq', '.csv', '.npy')

#: The Arrow type of each NumPy float dtype that :func:`_float_array` shares.
_ARROW_FLOATS = {np.dtype(np.float32): pa.float32(), np.dtype(np.float64): pa.float64()}

#: Parquet embedding layouts.
Layout = Literal['columns', 'list']
#: How a writer wants the embeddings: ``(n, D)`` rows or ``(D, n)`` columns.
Orientation = Literal['rows', 'columns']


def _float_array(values: np.ndarray, kind: pa.DataType | None = None) -> pa.Array:
    """``pa.array(values, kind)`` for 1-D float values, without pandas.

    ``pa.array`` imports pandas on its first call, a third of a second of
    every run; float32 and float64 values are wrapped here as the buffer of
    an Arrow array instead (the same values, shared when contiguous).

    Args:
        values: a 1-D array.
        kind: the Arrow type; None: the values' own.

    Returns:
        The Arrow array.
    """
    own = _ARROW_FLOATS.get(values.dtype)
    if own is None or (kind is not None and kind != own):
        return pa.array(values, kind)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(own, len(values), [None, pa.py_buffer(values)])


@dataclass
class Embeddings:
    """A batch's float32 embeddings, in pieces laid out for a writer."""

    #: C-contiguous float32 pieces, in point order: ``(n_k, D)`` each for
    #: ``'rows'``, ``(D, n_k)`` each for ``'columns'``.
    pieces: list[np.ndarray]
    #: The layout of the pieces.
    orientation: Orientation

    def __len__(self) -> int:
        """The number of points."""
        axis = 0 if self.orientation == 'rows' else 1
        return sum(piece.shape[axis] for piece in self.pieces)

    def column(self, index: int) -> pa.ChunkedArray:
        """One dimension of the embedding, without a copy.

        Args:
            index: the dimension (``'columns'`` orientation).

        Returns:
            Its float32 values, one chunk per piece.
        """
        return pa.chunked_array(
            [_float_array(piece[index]) for piece in self.pieces], pa.float32()
        )

    def rows(self) -> np.ndarray:
        """The whole ``(n, D)`` array (a copy).

        Returns:
            The float32 embeddings, one row per point.
        """
        if self.orientation == 'rows':
            return np.concatenate(self.pieces) if self.pieces else np.empty((0, 0))
        return np.concatenate([piece.T for piece in self.pieces])


@dataclass(frozen=True)
class SinkOptions:
    """What every writer needs to know besides its file."""

    #: Size of one embedding.
    dim: int
    #: Name of the output's longitude column.
    lon_column: str
    #: Name of the output's latitude column.
    lat_column: str
    #: Parquet embedding layout.
    layout: Layout
    #: The input's other columns, kept in the output (not in ``.npy``).
    schema: pa.Schema
    #: Expected number of points (an upper bound), for reserving space.
    estimate: int


def embedding_columns(options: SinkOptions) -> list[str]:
    """Names of the embedding's columns in a table output.

    Args:
        options: the writer's options.

    Returns:
        ``['embedding']`` for the list layout, else ``['emb_0', ...]``.
    """
    if options.layout == 'list':
        return ['embedding']
    return [f'emb_{i}' for i in range(options.dim)]


def output_columns(suffix: str, options: SinkOptions) -> list[str]:
    """Names of the columns an output of this suffix will have.

    Args:
        suffix: the output's suffix.
        options: the writer's options.

    Returns:
        The names, input columns first; empty for ``.npy``.
    """
    if suffix == '.npy':
        return []
    layout = options if suffix != '.csv' else _with_columns(options)
    return [
        *options.schema.names,
        options.lon_column,
        options.lat_column,
        *embedding_columns(layout),
    ]


def _with_columns(options: SinkOptions) -> SinkOptions:
    return SinkOptions(
        options.dim,
        options.lon_column,
        options.lat_column,
        'columns',
        options.schema,
        options.estimate,
    )


class Sink(abc.ABC):
    """Writes embeddings batch by batch to one file."""

    #: Layout of the embeddings :meth:`write` takes.
    orientation: Orientation = 'rows'

    @abc.abstractmethod
    def write(self, batch: PointBatch, embedding: Embeddings) -> None:
        """Write one batch.

        Args:
            batch: the points.
            embedding: their embeddings, in :attr:`orientation`.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Complete the file (after the last batch) and close it."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Close the file without completing it (it is then deleted)."""


class NpySink(Sink):
    """A float32 ``(N, D)`` ``.npy`` array, written sequentially."""

    def __init__(self, path: Path, options: SinkOptions) -> None:
        """Open the file, write a provisional header and reserve the space.

        Args:
            path: the (temporary) file.
            options: the writer's options.

        Raises:
            OSError: with ``errno.ENOSPC`` if the space cannot be reserved.
        """
        self.dim = options.dim
        self.count = 0
        self.handle = path.open('wb')
        try:
            header = self._header(options.estimate)
            self.handle.write(header)
            self.offset = len(header)
            self._reserve(self.offset + options.estimate * self.dim * 4)
        except BaseException:
            self.handle.close()
            raise

    def _header(self, count: int) -> bytes:
        buffer = io.BytesIO()
        npy_format.write_array_header_1_0(
            buffer, {'descr': '<f4', 'fortran_order': False, 'shape': (count, self.dim)}
        )
        return buffer.getvalue()

    def _reserve(self, size: int) -> None:
        if not hasattr(os, 'posix_fallocate') or size <= self.offset:
            return
        try:
            os.posix_fallocate(self.handle.fileno(), 0, size)
        except OSError as error:
            if error.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                return  # the file system cannot reserve: write and see
            raise

    def write(self, batch: PointBatch, embedding: Embeddings) -> None:
        """Append one batch of embeddings.

        Args:
            batch: the points.
            embedding: ``(n, D)`` pieces.
        """
        for piece in embedding.pieces:
            data = np.ascontiguousarray(piece, dtype='<f4')
            self.handle.write(data.data)
            self.count += len(data)

    def close(self) -> None:
        """Cut the file to the points written and write the final header."""
        header = self._header(self.count)
        if len(header) != self.offset:  # numpy pads the header for this
            raise RuntimeError('the .npy header changed size')
        self.handle.truncate(self.offset + self.count * self.dim * 4)
        self.handle.seek(0)
        self.handle.write(header)
        self.handle.close()

    def abort(self) -> None:
        """Close the file, whatever state it is in."""
        with contextlib.suppress(OSError):
            self.handle.close()


_SPECIAL = '[,"\r\n]'

#: Most bytes of CSV lines joined (and written) at a time: Arrow text arrays
#: have 32-bit offsets, so one array holds under 2 GiB.
_CSV_CHUNK_BYTES = 1 << 30


def _csv_text(values: Any) -> Any:
    """A column as CSV fields: text, quoted where needed, nulls empty."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _csv_text(pc.cast(values, kind.value_type))
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        # pandas 3 writes large_string, Polars string_view: the same text,
        # as the plain strings that the quoting and the line join take.
        return _csv_text(pc.cast(values, pa.string()))
    if (
        pa.types.is_nested(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_binary_view(kind)
    ):
        items = [
            None
            if v is None
            else v.hex()
            if isinstance(v, bytes)
            else json.dumps(v, default=str, ensure_ascii=False)
            for v in values.to_pylist()
        ]
        return _csv_text(pa.array(items, pa.string()))
    if pa.types.is_string(kind):
        text = values
        special = pc.match_substring_regex(text, _SPECIAL)
        if pc.any(special).as_py():
            quoted = pc.binary_join_element_wise(
                '"', pc.replace_substring(text, '"', '""'), '"', ''
            )
            text = pc.if_else(special, quoted, text)
    else:
        try:
            text = pc.cast(values, pa.string())
        except pa.ArrowNotImplementedError:
            text = pa.array(
                [None if v is None else str(v) for v in values.to_pylist()], pa.string()
            )
        if pa.types.is_floating(kind):
            text = _float_text(values, text)
        return pc.fill_null(text, '')
    return pc.fill_null(text, '')


def _float_text(values: Any, text: Any) -> Any:
    """Float text that reads back as a float: ``'5'`` becomes ``'5.0'``.

    Arrow writes an integral float as an integer (``5``, ``-0``), which
    pandas and pyarrow read as int64 (and ``-0`` as 0) when a whole column
    is integral, as the longitudes and latitudes of a grid are.

    Args:
        values: the float column.
        text: its text, as Arrow writes it.

    Returns:
        The text, with ``.0`` after every integer.
    """
    try:
        whole = pc.any(pc.equal(pc.floor(values), values)).as_py()
    except pa.ArrowNotImplementedError:  # float16: look at the text
        whole = True
    if not whole:  # the usual embedding column: nothing to do, cheaply
        return text
    bare = pc.match_substring_regex(text, r'^[+-]?[0-9]+$')
    return pc.if_else(bare, pc.binary_join_element_wise(text, '.0', ''), text)


class CsvSink(Sink):
    """The input's other columns, the coordinates and ``emb_*`` as CSV.

    Every field is formatted by pyarrow, a whole batch at a time: numbers as
    the shortest text that reads back to the same value, text quoted (RFC
    4180) only where it holds a comma, a quote or a line break. The lines
    are joined and written in chunks of at most :data:`_CSV_CHUNK_BYTES`.
    """

    def __init__(self, path: Path, options: SinkOptions) -> None:
        """Open the file and write the header line.

        Args:
            path: the (temporary) file.
            options: the writer's options.
        """
        self.orientation = 'columns'
        self.options = options
        self.handle = path.open('wb')
        try:
            line = io.StringIO()
            csv.writer(line, lineterminator='\n').writerow(
                output_columns('.csv', options)
            )
            self.handle.write(line.getvalue().encode())
        except BaseException:
            self.handle.close()
            raise

    def write(self, batch: PointBatch, embedding: Embeddings) -> None:
        """Append one batch of rows.

        Args:
            batch: the points.
            embedding: ``(D, n)`` pieces.
        """
        if not len(batch.lonlat):
            return
        texts = [_csv_text(batch.columns[name]) for name in self.options.schema.names]
        texts += [_csv_text(_float_array(batch.lonlat[:, i])) for i in range(2)]
        texts += [_csv_text(embedding.column(i)) for i in range(self.options.dim)]
        # Arrow text has 32-bit offsets: the lines of a whole batch can pass
        # 2 GiB, so they are joined and written in chunks of rows of at most
        # _CSV_CHUNK_BYTES (a longer row alone).
        sizes = np.full(len(batch.lonlat), len(texts), dtype=np.int64)
        for text in texts:
            sizes += np.asarray(pc.binary_length(text), dtype=np.int64)
        ends = np.cumsum(sizes)
        start = 0
        while start < len(ends):
            done = int(ends[start - 1]) if start else 0
            stop = int(np.searchsorted(ends, done + _CSV_CHUNK_BYTES, side='right'))
            stop = max(stop, start + 1)
            self._write_lines([t.slice(start, stop - start) for t in texts])
            start = stop

    def _write_lines(self, texts: list[Any]) -> None:
        """Join the fields of some rows into lines and write them."""
        lines = pc.binary_join_element_wise(*texts, ',')
        lines = pc.binary_join_element_wise(lines, '', '\n')
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        start, stop = offsets[lines.offset], offsets[lines.offset + len(lines)]
        self.handle.write(memoryview(lines.buffers()[2])[start:stop])

    def close(self) -> None:
        """Close the file."""
        self.handle.close()

    def abort(self) -> None:
        """Close the file, whatever state it is in."""
        with contextlib.suppress(OSError):
            self.handle.close()


def _leaf_count(kind: pa.DataType) -> int:
    """How many Parquet columns (leaves) a field of this Arrow type is stored as."""
    if isinstance(kind, pa.ExtensionType):
        return _leaf_count(kind.storage_type)
    if pa.types.is_struct(kind):
        return sum(_leaf_count(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _leaf_count(kind.key_type) + _leaf_count(kind.item_type)
    value_type = getattr(kind, 'value_type', None)  # list types, not dictionary
    if value_type is not None and not pa.types.is_dictionary(kind):
        return _leaf_count(value_type)
    return 1


def _leaf_paths(schema: pa.Schema) -> list[list[str]]:
    """The Parquet column paths of each field of ``schema``, as pyarrow writes them.

    A flat field is one column named as the field; a nested one is one per
    leaf (``tags.list.element``, ``site.code``). Read from the metadata of an
    empty file of the schema, written in memory.

    Args:
        schema: the output's schema.

    Returns:
        One list of paths per field, in the schema's order.
    """
    buffer = pa.BufferOutputStream()
    pq.ParquetWriter(buffer, schema).close()  # not empty_table: imports pandas
    parquet = pq.read_metadata(pa.BufferReader(buffer.getvalue())).schema
    leaves = [parquet.column(i).path for i in range(len(parquet))]
    counts = [_leaf_count(field.type) for field in schema]
    if sum(counts) != len(leaves):  # a type this count does not know: by name
        return [[name] for name in schema.names]
    out, start = [], 0
    for count in counts:
        out.append(leaves[start : start + count])
        start += count
    return out


class ParquetSink(Sink):
    """A Parquet file, one row group per batch."""

    def __init__(self, path: Path, options: SinkOptions) -> None:
        """Open the file with the output's whole schema.

        Args:
            path: the (temporary) file.
            options: the writer's options.
        """
        self.options = options
        self.orientation = 'rows' if options.layout == 'list' else 'columns'
        fields = [
            *options.schema,
            pa.field(options.lon_column, pa.float64()),
            pa.field(options.lat_column, pa.float64()),
        ]
        if options.layout == 'list':
            fields.append(pa.field('embedding', pa.list_(pa.float32(), options.dim)))
        else:
            fields += [
                pa.field(name, pa.float32()) for name in embedding_columns(options)
            ]
        # the input's schema metadata: pandas' names the index columns
        self.schema = pa.schema(fields, metadata=options.schema.metadata)
        # Embedding values are continuous: dictionary encoding, min/max
        # statistics and compression cost time and buy nothing (float32 noise
        # does not compress); keep all three for the input's own columns.
        # The options name Parquet columns, the leaves of a nested field
        # (``tags.list.element``), not the fields.
        paths = _leaf_paths(self.schema)
        inputs = paths[: len(options.schema)]
        own = [leaf for leaves in paths[: len(options.schema) + 2] for leaf in leaves]
        compression = {leaf: 'none' for leaves in paths for leaf in leaves}
        compression.update({leaf: 'snappy' for leaf in own})
        self.writer = pq.ParquetWriter(
            str(path),
            self.schema,
            use_dictionary=[leaf for leaves in inputs for leaf in leaves],
            write_statistics=own,
            compression=compression,
        )

    def write(self, batch: PointBatch, embedding: Embeddings) -> None:
        """Append one row group.

        Args:
            batch: the points.
            embedding: ``(n, D)`` (list layout) or ``(D, n)`` pieces.
        """
        options = self.options
        arrays = [batch.columns[name] for name in options.schema.names]
        arrays += [_float_array(batch.lonlat[:, 0]), _float_array(batch.lonlat[:, 1])]
        if options.layout == 'list':
            lists = [
                pa.FixedSizeListArray.from_arrays(
                    _float_array(piece.reshape(-1), pa.float32()), options.dim
                )
                for piece in embedding.pieces
            ]
            arrays.append(pa.chunked_array(lists, self.schema.field('embedding').type))
        else:
            arrays += [embedding.column(i) for i in range(options.dim)]
        table = pa.Table.from_arrays(
            [
                a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a])
                for a in arrays
            ],
            schema=None,
            names=self.schema.names,
        )
        if not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        """Write the footer and close the file."""
        self.writer.close()

    def abort(self) -> None:
        """Close the file, whatever state it is in (its footer may not fit)."""
        with contextlib.suppress(OSError, pa.ArrowException):
            self.writer.close()


#: Writers by output suffix.
_SINKS: dict[str, Callable[[Path, SinkOptions], Sink]] = {
    '.npy': NpySink,
    '.csv': CsvSink,
    '.parquet': ParquetSink,
    '.pq': ParquetSink,
}


def make_sink(path: Path, suffix: str, options: SinkOptions) -> Sink:
    """Open the writer of an output suffix on ``path``.

    Args:
        path: the (temporary) file.
        suffix: the final output's suffix (lower case).
        options: the writer's options.

    Returns:
        The writer.
    """
    return _SINKS[suffix](path, options)
