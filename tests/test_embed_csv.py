"""The CSV reader: what it accepts, exactly, and that its two readers agree."""

import csv
import gc
import io
import math
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from torchgeo_satclip.embed import InputError, count_points, read_points
from torchgeo_satclip.embed.csv_points import FIELD_LIMIT, CsvPoints
from torchgeo_satclip.embed.points import number_error, parse_numbers

#: The documented number rule, as a regular expression (ASCII digits only).
PLAIN = re.compile(r'[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?')


def read_all(
    path: Path, **kwargs: object
) -> tuple[list[dict[str, list[object]]], np.ndarray]:
    columns: list[dict[str, list[object]]] = []
    coords = []
    for batch in read_points(path, **kwargs):  # type: ignore[arg-type]
        columns.append({k: v.to_pylist() for k, v in batch.columns.items()})
        coords.append(batch.lonlat)
    return columns, np.concatenate(coords) if coords else np.empty((0, 2))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='0123456789.+-eE_ x,١５', max_size=8))
def test_number_rule(text: str) -> None:
    """A value is read as a finite number exactly when it is a plain decimal."""
    numbers = parse_numbers(pa.array([text], pa.string()))
    finite = numbers is not None and bool(np.isfinite(numbers).all())
    plain = PLAIN.fullmatch(text) is not None
    # a plain decimal beyond float64's range (1E400) is read as infinite
    assert finite == (plain and math.isfinite(float(text)))
    if finite:
        assert numbers is not None
        assert numbers[0] == float(text)  # correctly rounded, as Python
    assert (number_error(text) is None) == (numbers is not None)


@pytest.mark.parametrize(
    ('text', 'value'),
    [
        ('12', 12.0),
        ('-0.5', -0.5),
        ('+.5', 0.5),
        ('5.', 5.0),
        ('1.5e-3', 1.5e-3),
        ('1E+2', 100.0),
        ('007', 7.0),
        ('-180', -180.0),
        ('0.1', 0.1),
        ('4.35', 4.35),
        ('179.99999999999997', 179.99999999999997),
    ],
)
def test_plain_numbers(text: str, value: float) -> None:
    numbers = parse_numbers(pa.array([text]))
    assert numbers is not None
    assert numbers[0] == value


ACCEPTED = {
    'bom': b'\xef\xbb\xbfid,lon,lat\na,1,2\nb,3,4\n',
    'crlf': b'id,lon,lat\r\na,1,2\r\nb,3,4\r\n',
    'cr': b'id,lon,lat\ra,1,2\rb,3,4\r',
    'no final newline': b'id,lon,lat\na,1,2\nb,3,4',
    'trailing comma': b'id,lon,lat,\na,1,2,\nb,3,4,\n',
    'trailing comma crlf': b'id,lon,lat,\r\na,1,2,\r\nb,3,4,\r\n',
    'blank lines': b'\nid,lon,lat\n\na,1,2\n\n\nb,3,4\n\n',
    'space lines': b'id,lon,lat\n  \na,1,2\n\t\nb,3,4\n \t \n',
    'trailing blank crlf': b'id,lon,lat\r\na,1,2\r\nb,3,4\r\n\r\n\r\n',
    'quoted': b'"id","lon","lat"\n"a","1","2"\n"b",3,"4"\n',
    'quoted bom': b'\xef\xbb\xbf"id","lon","lat"\n"a",1,2\n"b",3,4\n',
    'reordered': b'lat,id,lon\n2,a,1\n4,b,3\n',
}


@pytest.mark.parametrize('name', list(ACCEPTED))
def test_accepted_variants(name: str, tmp_path: Path) -> None:
    path = tmp_path / 'points.csv'
    path.write_bytes(ACCEPTED[name])
    columns, coords = read_all(path, batch_size=1)
    assert [c['id'] for c in columns] == [['a'], ['b']]  # no '' or '\ufeffid' column
    np.testing.assert_array_equal(coords, [[1, 2], [3, 4]])
    assert count_points(path) == 2


@pytest.mark.parametrize(
    'content',
    [
        b'id,lon,lat\n',
        b'id,lon,lat',
        b'\xef\xbb\xbfid,lon,lat\r\n\r\n',
        b'id,lon,lat,\n\n',
    ],
)
def test_header_only_has_no_points(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / 'points.csv'
    path.write_bytes(content)
    columns, coords = read_all(path)
    assert columns == []
    assert coords.shape == (0, 2)


def test_values_kept_as_written(tmp_path: Path) -> None:
    """Identifiers are text, exactly: no type guessing, no trimming."""
    ids = ['007', ' padded ', 'é', 'a"b', '1e5', 'nan', 'TRUE', '', 'x\x00y', 'a;b']
    path = tmp_path / 'points.csv'
    text = 'id,lon,lat\n' + ''.join(f'{i},1,2\n' for i in ids if '"' not in i)
    path.write_text(text, encoding='utf-8')
    columns, _ = read_all(path)
    assert columns[0]['id'] == [i for i in ids if '"' not in i]
    path.write_text(
        'id,lon,lat\n'
        + ''.join(f'"{i.replace(chr(34), 2 * chr(34))}",1,2\n' for i in ids)
    )
    columns, _ = read_all(path)
    assert columns[0]['id'] == ids


def test_field_limit_boundary(tmp_path: Path) -> None:
    path = tmp_path / 'points.csv'
    for quoted in (False, True):
        value = 'x' * FIELD_LIMIT
        field = f'"{value}"' if quoted else value
        path.write_text(f'id,lon,lat\n{field},1,2\n')
        columns, _ = read_all(path)
        assert columns[0]['id'] == [value]
        longer = 'x' * (FIELD_LIMIT + 1)
        path.write_text(
            f'id,lon,lat\n{f"{chr(34)}{longer}{chr(34)}" if quoted else longer},1,2\n'
        )
        with pytest.raises(InputError, match='line 2: a field is longer than 131,072'):
            read_all(path)


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    """A quoted value over two lines, blank lines and a BOM: lines still right."""
    path = tmp_path / 'points.csv'
    path.write_bytes(
        b'\xef\xbb\xbfid,lon,lat\r\n"two\nlines",1,2\r\n\r\n  \r\nb,3,95\r\n'
    )
    with pytest.raises(InputError, match=r'points\.csv, line 6: latitude 95\.0'):
        read_all(path)


ROW = st.tuples(
    st.text(alphabet='ab é\t', max_size=3),
    st.sampled_from(
        ['1', '-2.5', '180', '180.5', '1_0', '', ' 3', 'nan', '١', '+.5', '7e1']
    ),
    st.sampled_from(['2', '-90', '90.0', '95', 'x', '1e400', '-0', '4.']),
)
LINE = st.one_of(
    ROW.map(','.join),
    ROW.map(lambda r: ','.join(r) + ','),
    ROW.map(lambda r: ','.join(r[:2])),
    ROW.map(lambda r: ','.join((*r, 'extra'))),
    st.sampled_from(['', ' ', '\t ', ',,', ',']),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    header=st.sampled_from(['id,lon,lat', 'id,lon,lat,', 'lon,lat', 'lat,id,lon']),
    lines=st.lists(LINE, max_size=7),
    newline=st.sampled_from(['\n', '\r\n', '\r']),
    bom=st.booleans(),
    final=st.booleans(),
    batch_size=st.integers(1, 4),
)
def test_fast_and_reference_readers_agree(
    tmp_path: Path,
    header: str,
    lines: list[str],
    newline: str,
    bom: bool,
    final: bool,
    batch_size: int,
) -> None:
    """On files without quotes, pyarrow's reader and the reference give one answer."""
    if header == 'lat,id,lon':
        lines = [','.join(reversed(line.split(','))) for line in lines]
    text = newline.join([header, *lines]) + (newline if final else '')
    path = tmp_path / 'points.csv'
    path.write_bytes((b'\xef\xbb\xbf' if bom else b'') + text.encode())

    def outcome(reference: bool) -> object:
        try:
            source = CsvPoints(path, 'lon', 'lat', batch_size)
            assert not source.quoted
            batches = list(
                source._reference_batches() if reference else source.batches()
            )
        except InputError as error:
            return str(error)
        return [
            (
                b.first,
                b.lonlat.tobytes(),
                {k: v.to_pylist() for k, v in b.columns.items()},
            )
            for b in batches
        ]

    assert outcome(reference=False) == outcome(reference=True)


IDENT = st.text(
    alphabet=st.characters(blacklist_categories=['Cs'], blacklist_characters='\x00'),
    max_size=6,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(
            IDENT,
            st.floats(-180, 180, allow_nan=False),
            st.floats(-90, 90, allow_nan=False),
        ),
        max_size=6,
    ),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    newline=st.sampled_from(['\n', '\r\n']),
)
def test_valid_files_read_back_exactly(
    tmp_path: Path,
    rows: list[tuple[str, float, float]],
    quoting: Literal[0, 1, 2, 3],
    newline: str,
) -> None:
    """Any table Python's csv writes is read back exactly, quotes or not."""
    # Python's writer leaves a bare carriage return unquoted under
    # QUOTE_MINIMAL when the line terminator is '\n': not valid CSV (RFC 4180),
    # and Python's own reader cannot read it back either.
    assume(
        quoting != csv.QUOTE_MINIMAL
        or newline == '\r\n'
        or not any('\r' in name for name, _, _ in rows)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator=newline)
    writer.writerow(['name', 'lon', 'lat'])
    writer.writerows([(n, repr(x), repr(y)) for n, x, y in rows])
    path = tmp_path / 'points.csv'
    path.write_text(buffer.getvalue(), encoding='utf-8', newline='')
    columns, coords = read_all(path, batch_size=4)
    assert [n for c in columns for n in c['name']] == [r[0] for r in rows]
    expected = np.array([(x, y) for _, x, y in rows], dtype=np.float64).reshape(-1, 2)
    np.testing.assert_array_equal(coords, expected)
    np.testing.assert_array_equal(np.signbit(coords), np.signbit(expected))  # -0.0 too


def test_the_garbage_collector_runs_between_batches(tmp_path: Path) -> None:
    """The reference reader pauses Python's collector only inside a batch."""
    path = tmp_path / 'points.csv'
    path.write_text('"id",lon,lat\n"a",1,2\n"b",3,4\n"c",5,6\n"d",7,95\n')
    batches = read_points(path, batch_size=2)
    next(batches)
    assert gc.isenabled()  # while the caller holds a batch
    with pytest.raises(InputError, match='line 5: latitude 95'):
        list(batches)
    assert gc.isenabled()  # after an error
    abandoned = read_points(path, batch_size=1)
    next(abandoned)
    del abandoned
    assert gc.isenabled()


@pytest.mark.parametrize('line', ['""', '" "', '"\t "'])
def test_a_quoted_empty_value_is_not_a_blank_line(line: str, tmp_path: Path) -> None:
    """A line of one quoted value is a row of one field, not a blank line.

    Python's csv writes a row of one empty value as ``""`` precisely so that
    it reads back as a row; under a header of three columns it is a row with
    too few fields, which must be refused, not skipped as if it were blank.
    """
    path = tmp_path / 'points.csv'
    path.write_text(f'id,lon,lat\na,1,2\n{line}\nb,3,4\n')
    with pytest.raises(
        InputError, match=r'points\.csv, line 3: 1 field where the header has 3'
    ):
        read_all(path)
    assert count_points(path) == 3  # a record, counted like the others


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        (
            '# points of 2024\nid,lon,lat\na,1,2\n',
            r"points\.csv: no column 'lon'; columns are \['# points of 2024'\] "
            r"\(the header line starts with '#': comment lines are not supported; "
            r'remove them, so that the first line names the columns\)$',
        ),
        (
            '#made by a tool, v2\nid,lon,lat\na,1,2\n',
            r"no column 'lon'.*\(the header line starts with '#'",
        ),
        (
            '2.35,48.86\n-74.0,40.7\n',
            r"points\.csv: no column 'lon'; columns are \['2\.35', '48\.86'\] "
            r'\(the header line looks like data, not column names: the first '
            r'line must name the columns, for example id,lon,lat\)$',
        ),
        (
            'Paris,2.35,48.86\nRome,12.5,41.9\n',
            r"no column 'lon'.*\(the header line looks like data",
        ),
        (
            '0,0\n1,1\n',
            r"points\.csv, line 1: column name '0' appears twice in the header "
            r'\(columns 1 and 2\); names must be unique \(the header line looks '
            r'like data',
        ),
        (
            ',2.35,48.86\n',
            r'points\.csv, line 1: column 1 of the header has no name \(the header '
            r'line looks like data',
        ),
        (
            'id,lon,lat\na,1,2\n# a note\nb,3,4\n',
            r'points\.csv, line 3: 1 field where the header has 3; the line starts '
            r"with '#': comment lines are not supported, remove it$",
        ),
        (
            'id,lon,lat\n"a",1,2\n# a note, here\nb,3,4\n',
            r'points\.csv, line 3: 2 fields where the header has 3; the line starts '
            r"with '#'",
        ),
    ],
)
def test_no_header_or_a_comment_line_is_named(
    content: str, message: str, tmp_path: Path
) -> None:
    """A file without a header line, or with comments, is refused saying so."""
    path = tmp_path / 'points.csv'
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_all(path)


@pytest.mark.parametrize('quote', ['', '"'])
def test_two_trailing_commas_under_a_header_with_one(
    quote: str, tmp_path: Path
) -> None:
    """The hint for one comma too many at the end names what is there.

    The header ends with a comma, so the hint must not ask whether it does not.
    """
    path = tmp_path / 'points.csv'
    path.write_text(f'id,lon,lat,\n{quote}a{quote},1,2,\nb,3,4,,\n')
    with pytest.raises(InputError) as raised:
        read_all(path)
    message = str(raised.value)
    assert message.endswith(
        'points.csv, line 3: 5 fields where the header has 4; the line ends '
        'with two commas, the header with one'
    ), message
