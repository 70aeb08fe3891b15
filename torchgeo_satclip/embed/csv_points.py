"""CSV points: one strict reading of a CSV file, fast where the file allows it.

What a points CSV must be (anything else is an :class:`~.points.InputError`
naming the file and the line, counting physical lines from 1, the header
included):

* UTF-8 text (a byte-order mark is skipped), checked for the whole file
  before any point is read;
* comma-separated, with RFC 4180 quoting (``"a, b"``; a quote inside a
  quoted value is written twice);
  text after a closing quote or a quote that never closes is an error;
  there is no option for another delimiter, and a header line that looks
  separated by ``;`` (as Excel writes CSV where the decimal separator is a
  comma) or by tabs is refused saying so;
* a header line of unique, non-empty column names; one trailing comma on
  every line (``id,lon,lat,``) is allowed and makes no column, as long as the
  values after it are empty on every line; there are no comment lines (a
  header that starts with ``#`` or looks like a row of numbers is refused
  saying so, and so is a row that starts with ``#``);
* every other line has exactly as many fields as the header; blank lines
  (empty, or only spaces and tabs) are skipped, wherever they are;
* no field longer than :data:`FIELD_LIMIT` characters;
* longitude and latitude are plain decimal numbers
  (:func:`~.points.parse_numbers`); other columns are kept as text, exactly
  as written.

Two readers give this one reading. The *reference reader* is Python's
:mod:`csv` in strict mode, line by line; it knows every line number. The
*fast reader* is pyarrow's streaming CSV reader, for files without a quote
character (where splitting on commas and line breaks is the whole of the
syntax). When the fast reader meets anything unusual (a parse error, a bad
number, a point out of range, a long field), it hands over to the reference
reader at the first point it has not yet yielded, which either reports the
error with its line or reads on. Files with quotes are read by the reference
reader from the start.
"""

import codecs
import csv
import gc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .points import (
    InputError,
    PointBatch,
    PointSource,
    check_lonlat,
    number_error,
    parse_numbers,
)

__all__ = [
    'FIELD_LIMIT',
    'CsvHeader',
    'CsvPoints',
    'count_records',
    'delimiter_hint',
    'missing_column',
    'read_csv_header',
]

#: Longest field, in characters (Python's :func:`csv.field_size_limit` default).
FIELD_LIMIT = 131_072
#: Bytes the fast reader parses at a time (a row must fit in one).
_BLOCK = 1 << 22
#: Bytes read at a time by the scans of the raw file.
_CHUNK = 1 << 22
_BLANK = frozenset(' \t')
#: Delimiters of files that are not comma-separated, as messages name them.
_OTHER_DELIMITERS = {';': "';'-separated", '\t': 'tab-separated'}
_NUMBERS = (
    'plain decimal numbers only, such as 12.5, -3 or 1.5e-3 (no spaces, '
    'underscores, thousands separators or decimal commas)'
)


@dataclass(frozen=True)
class _Scan:
    """What one pass over the raw bytes tells before anything is parsed."""

    #: Number of line breaks, plus one for a last line without one.
    lines: int
    #: Whether a quote character appears anywhere.
    quoted: bool


def _count(data: bytes, byte: int) -> int:
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == byte))


def _line_breaks(data: bytes, after_cr: bool) -> int:
    """Line breaks (CR LF, CR or LF) in ``data``.

    Args:
        data: a chunk of the file.
        after_cr: whether the byte before the chunk was a CR (so that an LF
            first in the chunk ends the same line).
    """
    count = _count(data, 10)
    if b'\r' in data:
        count += _count(data, 13) - data.count(b'\r\n')
    if after_cr and data[:1] == b'\n':
        count -= 1
    return count


def _line_at(path: Path, offset: int) -> int:
    """The line number (from 1) of the byte at ``offset``."""
    breaks, after_cr, done = 0, False, 0
    with path.open('rb') as handle:
        while done < offset:
            data = handle.read(min(_CHUNK, offset - done))
            if not data:
                break
            breaks += _line_breaks(data, after_cr)
            after_cr = data[-1:] == b'\r'
            done += len(data)
    return breaks + 1


def _scan(path: Path) -> _Scan:
    """Check that ``path`` is UTF-8 and count its lines, in one streaming pass.

    Raises:
        InputError: naming the line of the first byte that is not UTF-8.
    """
    decoder = codecs.getincrementaldecoder('utf-8')()
    breaks, quoted, after_cr, done, last = 0, False, False, 0, b''
    with path.open('rb') as handle:
        while data := handle.read(_CHUNK):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(data)
            except UnicodeDecodeError as error:
                offset = done - pending + error.start
                _not_utf8(path, offset, bytes(error.object[error.start : error.end]))
            breaks += _line_breaks(data, after_cr)
            after_cr = data[-1:] == b'\r'
            quoted = quoted or b'"' in data
            done += len(data)
            last = data[-1:]
    try:
        decoder.decode(b'', final=True)
    except UnicodeDecodeError:
        _not_utf8(path, done - len(decoder.getstate()[0]), b'')
    return _Scan(
        lines=breaks + (1 if last not in (b'', b'\n', b'\r') else 0), quoted=quoted
    )


def _not_utf8(path: Path, offset: int, found: bytes) -> None:
    with path.open('rb') as handle:
        head = handle.read(2)
    what = (
        f' (byte 0x{found[0]:02x})' if found else ' (the file ends inside a character)'
    )
    hint = (
        '; the file looks like UTF-16: save it as UTF-8'
        if head in (b'\xff\xfe', b'\xfe\xff')
        else '; save the file as UTF-8'
    )
    line = _line_at(path, offset)
    raise InputError(f'{path}, line {line}: not UTF-8 text{what}{hint}')


def _is_blank(row: list[str], line: str) -> bool:
    """An empty line, or one of only spaces and tabs.

    Args:
        row: a record as the csv module splits it.
        line: the physical line it was read from (the last, for a record
            over several lines).

    Returns:
        Whether the record is a blank line. A quoted value (``""``, ``" "``)
        is a field, so a line of one is a record of one field, not blank
        (the csv module gives the line ``" "`` the row of the line ``' '``:
        only the line tells them apart).
    """
    return not row or (len(row) == 1 and set(row[0]) <= _BLANK and '"' not in line)


def _other_delimiter(header: str) -> str | None:
    """How a header line without a comma looks separated: by ';' or tabs.

    Returns:
        ``"';'-separated"``, ``'tab-separated'`` (whichever occurs more), or
        None for a header with a comma or with neither.
    """
    if ',' in header:
        return None
    counts = {looks: header.count(sep) for sep, looks in _OTHER_DELIMITERS.items()}
    looks = max(counts, key=counts.__getitem__)
    return looks if counts[looks] else None


def delimiter_hint(columns: Sequence[str]) -> str | None:
    """The hint for a CSV header that reads as one column separated otherwise.

    Args:
        columns: the header's columns, as a comma-separated reader splits it.

    Returns:
        What to do when it is one column that looks separated by ';' or
        tabs, else None.
    """
    looks = _other_delimiter(columns[0]) if len(columns) == 1 else None
    return None if looks is None else _delimiter_hint(looks)


def _delimiter_hint(looks: str) -> str:
    """What to do with a file whose header looks separated by ``looks``."""
    decimals = ' and decimal points: 12.5, not 12,5' if ';' in looks else ''
    return (
        f'the header looks {looks}, but the reader expects comma-separated '
        'values and has no option for another delimiter: save the file with '
        f'commas between columns{decimals}'
    )


def _header_hint(names: Sequence[str]) -> str | None:
    """Why a header line looks like no header at all: a comment, or data.

    Args:
        names: the header's column names.

    Returns:
        What to do when the first name starts with ``#`` (a comment line) or
        two names or more are numbers (a first row of data), else None.
    """
    if names and names[0].lstrip(' \t').startswith('#'):
        return (
            "the header line starts with '#': comment lines are not supported; "
            'remove them, so that the first line names the columns'
        )
    if sum(number_error(name) is None for name in names) >= 2:
        return (
            'the header line looks like data, not column names: the first line '
            'must name the columns, for example id,lon,lat'
        )
    return None


def _first_line(path: Path) -> tuple[int, str]:
    """The first line that is not blank, and its number (``(0, '')`` if none)."""
    with path.open(encoding='utf-8-sig', errors='replace', newline='') as f:
        for number, line in enumerate(f, 1):
            text = line.rstrip('\r\n')
            if text.strip(' \t'):
                return number, text
    return 0, ''


def _csv_error(path: Path, line: int, error: csv.Error) -> InputError:
    text = str(error)
    if 'field larger than field limit' in text:
        return InputError(
            f'{path}, line {line}: a field is longer than {FIELD_LIMIT:,} '
            'characters; is this a CSV file with a comma between columns?'
        )
    if 'unexpected end of data' in text:
        return InputError(
            f'{path}, line {line}: a quoted value starts on this line and never '
            'ends (a missing closing quote?)'
        )
    if 'expected after' in text:
        return InputError(
            f'{path}, line {line}: text after the closing quote of a value; '
            'write a quote inside a quoted value as two quotes ("")'
        )
    return InputError(f'{path}, line {line}: not valid CSV ({text})')


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records of a CSV file, each with the line it starts on.

    Raises:
        InputError: for malformed CSV, naming the line.
    """
    with path.open(encoding='utf-8-sig', errors='surrogateescape', newline='') as f:
        last = ''

        def lines() -> Iterator[str]:
            nonlocal last
            for text in f:
                last = text
                yield text

        reader = csv.reader(lines(), strict=True)
        start = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise _csv_error(path, start, error) from None
            line, start = start, reader.line_num + 1
            if not _is_blank(row, last):
                yield line, row


def count_records(path: Path) -> int:
    """The number of non-blank records of a CSV file, its header included.

    Args:
        path: the CSV file.

    Returns:
        The count.

    Raises:
        InputError: for malformed CSV, naming the line.
    """
    return sum(1 for _ in _rows(path))


@dataclass(frozen=True)
class CsvHeader:
    """The header line of a CSV file, checked."""

    #: Every column name in the file, in order (a trailing ``''`` included).
    names: tuple[str, ...]
    #: Whether the last column is the empty one of a trailing comma.
    trailing_comma: bool
    #: The line the header is on.
    line: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The named columns (without the trailing comma's)."""
        return self.names[:-1] if self.trailing_comma else self.names


def read_csv_header(path: Path) -> CsvHeader:
    """Read and check the header line of a CSV file.

    Args:
        path: the CSV file.

    Returns:
        The header.

    Raises:
        InputError: for an empty file, an empty or duplicated column name,
            or a header that is not valid CSV (with a hint when it looks
            separated by ';' or tabs).
    """
    rows = _rows(path)
    try:
        first = next(rows, None)
    except InputError:
        line, text = _first_line(path)
        looks = _other_delimiter(text)
        if looks is None:
            raise
        raise InputError(
            f'{path}, line {line}: not valid CSV ({text[:60]!r}); '
            + _delimiter_hint(looks)
        ) from None
    if first is None:
        raise InputError(
            f'{path}: the file is empty; its first line must name the columns, '
            'for example id,lon,lat'
        )
    line, names = first
    trailing = len(names) > 1 and names[-1] == ''
    columns = names[:-1] if trailing else names
    seen: dict[str, int] = {}
    for number, name in enumerate(columns, 1):
        problem = None
        if not name.strip():
            problem = f'column {number} of the header has no name'
        elif name in seen:
            problem = (
                f'column name {name!r} appears twice in the header (columns '
                f'{seen[name]} and {number}); names must be unique'
            )
        if problem is not None:
            hint = _header_hint(columns)
            raise InputError(
                f'{path}, line {line}: {problem}' + (f' ({hint})' if hint else '')
            )
        seen[name] = number
    return CsvHeader(tuple(names), trailing, line)


def missing_column(
    path: Path,
    columns: tuple[str, ...] | list[str],
    name: str,
    *,
    comma_separated: bool = False,
) -> InputError:
    """The error for a column that is not there, with a hint when one is close.

    Args:
        path: the input file.
        columns: the columns it has.
        name: the column asked for.
        comma_separated: whether the file is read as comma-separated values
            (a CSV file): a single column whose name looks separated by ';'
            or tabs then gets a hint about the delimiter.

    Returns:
        The error to raise.
    """
    hint = ''
    for column in columns:
        if column.strip() == name:
            hint = f' ({column!r} has spaces around it: remove them from the header)'
            break
        if column.strip().lower() == name.lower():
            hint = f' (did you mean {column!r}? names are case-sensitive)'
            break
    else:
        other = (
            delimiter_hint(columns) or _header_hint(columns)
            if comma_separated
            else None
        )
        if other is not None:
            hint = f' ({other})'
    return InputError(f'{path}: no column {name!r}; columns are {list(columns)}{hint}')


class CsvPoints(PointSource):
    """The points of a CSV file (see the module's rules)."""

    def __init__(
        self, path: Path, lon_column: str, lat_column: str, batch_size: int
    ) -> None:
        """Open a CSV file: check its text and its header.

        Args:
            path: the CSV file.
            lon_column: name of the longitude column.
            lat_column: name of the latitude column.
            batch_size: points per batch.

        Raises:
            InputError: if the file is not UTF-8, has no header, a bad header,
                or lacks a coordinate column.
        """
        self.path = path
        self.batch_size = batch_size
        scan = _scan(path)
        self.header = read_csv_header(path)
        columns = self.header.columns
        for name in (lon_column, lat_column):
            if name not in columns:
                raise missing_column(path, columns, name, comma_separated=True)
        self.coordinate_columns = (lon_column, lat_column)
        self._names = (lon_column, lat_column)
        self.kept = [c for c in columns if c not in (lon_column, lat_column)]
        self.schema = pa.schema([(name, pa.string()) for name in self.kept])
        self.estimate = max(scan.lines - self.header.line, 0)
        self.quoted = scan.quoted
        self._lon = columns.index(lon_column)
        self._lat = columns.index(lat_column)

    def batches(self) -> Iterator[PointBatch]:
        """Yield the points in batches of ``batch_size``.

        Yields:
            Batches in file order.

        Raises:
            InputError: for the first bad line, naming it.
        """
        done = 0
        if not self.quoted:
            for batch in self._fast_batches():
                if batch is None:
                    break
                yield batch
                done += len(batch.lonlat)
            else:
                return
        yield from self._reference_batches(skip=done)

    # ------------------------------------------------------------------ fast

    def _arrow_reader(self) -> pa.RecordBatchReader:
        return pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=_BLOCK, use_threads=True),
            parse_options=pa_csv.ParseOptions(
                delimiter=',',
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in self.header.names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _usual(self, record: pa.RecordBatch) -> bool:
        """Whether a block of the fast reader holds nothing the rules refuse."""
        if record.num_columns != len(self.header.names):
            return False
        for column in record.columns:
            if len(column) and pc.max(pc.utf8_length(column)).as_py() > FIELD_LIMIT:
                return False
        if self.header.trailing_comma:
            last = record.column(record.num_columns - 1)
            if len(last) and pc.max(pc.binary_length(last)).as_py() > 0:
                return False
        return True

    def _fast_batches(self) -> Iterator[PointBatch | None]:
        """Batches of the fast reader; None where the reference must take over."""
        try:
            reader = self._arrow_reader()
        except (pa.ArrowException, OSError):
            yield None
            return
        if tuple(reader.schema.names) != self.header.names:
            yield None
            return
        pending: list[pa.RecordBatch] = []
        count = first = 0
        while True:
            try:
                record = reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowException, OSError):
                yield None
                return
            if not self._usual(record):
                yield None
                return
            while len(record):
                take = min(self.batch_size - count, len(record))
                pending.append(record.slice(0, take))
                record = record.slice(take)
                count += take
                if count == self.batch_size:
                    batch = self._fast_batch(pending, first)
                    yield batch
                    if batch is None:
                        return
                    first += count
                    pending, count = [], 0
        if count:
            yield self._fast_batch(pending, first)

    def _fast_batch(
        self, records: list[pa.RecordBatch], first: int
    ) -> PointBatch | None:
        table = pa.Table.from_batches(records)
        lon = parse_numbers(table.column(self._lon))
        lat = parse_numbers(table.column(self._lat))
        if lon is None or lat is None:
            return None
        lonlat = np.column_stack([lon, lat])
        try:
            check_lonlat(self.path, lonlat, str, self.coordinate_columns)
        except InputError:
            return None
        columns = {name: table.column(name) for name in self.kept}
        return PointBatch(columns, lonlat, first)

    # ------------------------------------------------------------- reference

    def _reference_batches(self, skip: int = 0) -> Iterator[PointBatch]:
        """Batches of the reference reader, from the point numbered ``skip``.

        Python's cyclic garbage collector is paused while a batch's rows are
        collected (a list per row, a million lists that hold no cycles: the
        collector would scan them again and again, most of the time spent);
        it runs again between batches, whatever happens.
        """
        collecting = gc.isenabled()
        try:
            if collecting:
                gc.disable()
            for batch in self._collect(skip):
                if collecting:
                    gc.enable()
                yield batch
                if collecting:
                    gc.disable()
        finally:
            if collecting:
                gc.enable()

    def _collect(self, skip: int) -> Iterator[PointBatch]:
        width = len(self.header.names)
        trailing = self.header.trailing_comma
        rows: list[list[str]] = []
        lines: list[int] = []
        record = -1
        first = skip
        for line, row in _rows(self.path):
            if record < 0:
                record = 0  # the header
                continue
            record += 1
            if record <= skip:
                continue
            usual = (
                len(row) == width
                and max(map(len, row)) <= FIELD_LIMIT
                and not (trailing and row[-1])
            )
            if not usual:
                problem = self._row_problem(row, width)
                if problem is not None:
                    self._convert(rows, lines, first)  # an earlier bad row first
                    raise InputError(f'{self.path}, line {line}: {problem}')
            rows.append(row)
            lines.append(line)
            if len(rows) == self.batch_size:
                yield self._convert(rows, lines, first)
                first += len(rows)
                rows, lines = [], []
        if rows:
            yield self._convert(rows, lines, first)

    def _row_problem(self, row: list[str], width: int) -> str | None:
        if len(row) != width:
            hint = ''
            if len(row) > width:
                hint = (
                    '; a value with a comma must be quoted ("12,5" is not a '
                    'number: write 12.5)'
                )
                if len(row) == width + 1 and row[-1] == '':
                    hint = (
                        '; the line ends with two commas, the header with one'
                        if self.header.trailing_comma
                        else '; a trailing comma on this line but not on the header?'
                    )
            elif len(row) == width - 1 and self.header.trailing_comma:
                hint = '; the header ends with a comma but this line does not'
            if row[0].lstrip(' \t').startswith('#'):
                hint = (
                    "; the line starts with '#': comment lines are not supported, "
                    'remove it'
                )
            fields = 'field' if len(row) == 1 else 'fields'
            return f'{len(row)} {fields} where the header has {width}{hint}'
        if max(map(len, row)) > FIELD_LIMIT:
            return (
                f'a field is longer than {FIELD_LIMIT:,} characters; is this a '
                'CSV file with a comma between columns?'
            )
        if self.header.trailing_comma and row[-1] != '':
            return (
                f'a value ({row[-1][:40]!r}) after the last column; the header '
                'ends with a comma, so every line must end with an empty value'
            )
        return None

    def _convert(
        self, rows: list[list[str]], lines: list[int], first: int
    ) -> PointBatch:
        """Turn checked rows into a batch; raise for the first bad point."""
        lon_text = [row[self._lon] for row in rows]
        lat_text = [row[self._lat] for row in rows]
        bad = len(rows)
        lon = parse_numbers(pa.array(lon_text, pa.string()))
        lat = parse_numbers(pa.array(lat_text, pa.string()))
        if lon is None or lat is None:
            bad = next(
                i
                for i in range(len(rows))
                if number_error(lon_text[i]) is not None
                or number_error(lat_text[i]) is not None
            )
            lon = parse_numbers(pa.array(lon_text[:bad], pa.string()))
            lat = parse_numbers(pa.array(lat_text[:bad], pa.string()))
        assert lon is not None
        assert lat is not None
        lonlat = np.column_stack([lon, lat]).reshape(-1, 2)
        where = self._where(lines)
        check_lonlat(self.path, lonlat, where, self.coordinate_columns)
        if bad < len(rows):
            name, text = (
                (self._names[0], lon_text[bad])
                if number_error(lon_text[bad]) is not None
                else (self._names[1], lat_text[bad])
            )
            raise InputError(
                f'{where(bad)}: cannot read a number from {name}={text!r} '
                f'({number_error(text)}); {_NUMBERS}'
            )
        columns = {
            name: pa.array([row[index] for row in rows], pa.string())
            for index, name in enumerate(self.header.names)
            if name in self.kept
        }
        return PointBatch(columns, lonlat, first, where)

    def _where(self, lines: list[int]) -> Callable[[int], str]:
        path = self.path

        def where(i: int) -> str:
            return f'{path}, line {lines[i]}'

        return where
