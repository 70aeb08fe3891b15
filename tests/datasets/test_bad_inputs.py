"""Bad S2-100K inputs are refused with a clear error, never read as a wrong answer.

Generated, table-driven cases (issue 13) for ``S2100K`` and ``pack_s2_100k``:

* bad ``index.csv`` values (each column x several rows x column orders);
* malformed ``index.csv`` files (columns, ragged rows, names, encodings);
* patches of another size, band count or dtype, or unreadable, at the first,
  a middle and the last position, read one by one, in a batch, verified at
  construction, and packed;
* bad ``nodata.csv`` values and files;
* bad and mismatched ``patch_size`` arguments.

Each case asserts the exception class and the message: the file, the line
(or the patch), the value and what was expected. Each also asserts that
nothing was left half-written: a refused dataset changes nothing under its
root; a refused pack leaves no manifest, ``files.csv``, ``nodata.csv`` or
temporary file (finished shards stay, for the next run to resume). Valid
variants (BOM, CRLF, blank lines, quoting, spaces, extra columns) check that
the strictness refuses nothing valid. The packed layout's corruption cases
are in ``test_packed_integrity.py``.
"""

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from torchgeo_satclip._errors import DataError
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import S2100K, SampleBatch, pack_s2_100k

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
SIZE = 32  # the fake patches are 32 x 32
LINES = (DATA / 'index.csv').read_text().splitlines()
HEADER, ROWS = LINES[0], LINES[1:]
FNS = [row.split(',')[0] for row in ROWS]
POSITIONS = (0, 3, 7)  # first, middle and last row (lines 2, 5 and 9)


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under *root*, hidden ones too (links not followed)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                files[str(path.relative_to(root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return files


def assert_no_partial_pack(root: Path) -> None:
    """A failed pack leaves nothing a reader could take for a layout."""
    packed = root / 'packed'
    assert not (root / 'nodata.csv').exists()
    if packed.exists():
        names = sorted(p.name for p in packed.iterdir())
        assert 'manifest.json' not in names
        assert 'files.csv' not in names
        assert not [n for n in names if n.startswith('.')], names  # temporaries
        shards = [n for n in names if n.endswith('.npy')]
        assert sorted(n for n in names if n.endswith('.json')) == [
            n.replace('.npy', '.json') for n in shards
        ]
    assert not [p for p in root.iterdir() if p.name.startswith('.')]


def refuse_dataset(
    root: Path, error: type[Exception], pattern: str, **kwargs: Any
) -> str:
    """S2100K(root) raises *error* matching *pattern*; nothing changes under root."""
    before = snapshot(root)
    with pytest.raises(error, match=pattern) as info:
        S2100K(root, **{'patch_size': SIZE, **kwargs})
    assert snapshot(root) == before
    return str(info.value)


def refuse_pack(root: Path, error: type[Exception], pattern: str, **kwargs: Any) -> str:
    """pack_s2_100k(root) raises *error* matching *pattern*, half-writing nothing."""
    with pytest.raises(error, match=pattern) as info:
        pack_s2_100k(
            root, **{'patch_size': SIZE, 'shard_size': 3, 'progress': False, **kwargs}
        )
    assert_no_partial_pack(root)
    return str(info.value)


@pytest.fixture(scope='module')
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the fake patches, linked into each index case's root."""
    path = tmp_path_factory.mktemp('shared') / 'images'
    shutil.copytree(DATA / 'images', path)
    return path


@pytest.fixture
def index_root(tmp_path: Path, images: Path) -> Path:
    """A root whose images are the fake patches; the case writes index.csv."""
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'images').symlink_to(images, target_is_directory=True)
    return root


@pytest.fixture
def patch_root(tmp_path: Path) -> Path:
    """A root with its own copy of the patches, for cases that replace one."""
    root = tmp_path / 'root'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    shutil.copytree(DATA / 'images', root / 'images')
    return root


def csv_bytes(*lines: str) -> bytes:
    return ('\n'.join(lines) + '\n').encode()


def at(path: Path, line: int | None = None) -> str:
    """The start of a message about *path* (and *line*), as a regex."""
    where = re.escape(str(path))
    return where if line is None else f'{where}, line {line}: '


# --------------------------------------------------------- index.csv values

ORDERS = (('fn', 'lon', 'lat'), ('lat', 'fn', 'lon'), ('fn', 'lon', 'lat', 'date'))


def not_decimal(column: str, value: str) -> str:
    return f'{column} {re.escape(repr(value))} is not a plain decimal number'


BAD_LON = [
    ('nan', r'non-finite coordinate \(lon, lat\) = \(nan, '),
    ('NaN', r'non-finite coordinate \(lon, lat\) = \(nan, '),
    ('inf', r'non-finite coordinate \(lon, lat\) = \(inf, '),
    ('-inf', r'non-finite coordinate \(lon, lat\) = \(-inf, '),
    ('Infinity', r'non-finite coordinate \(lon, lat\) = \(inf, '),
    ('1e999', r'non-finite coordinate \(lon, lat\) = \(inf, '),
    ('275', r"longitude 275\.0 in column 'lon' is outside \[-180, 180\]"),
    ('-180.5', r"longitude -180\.5 in column 'lon' is outside \[-180, 180\]"),
    ('180.0000001', r"longitude 180\.0000001 in column 'lon' is outside"),
    ('1e3', r"longitude 1000\.0 in column 'lon' is outside"),
    ('', 'lon is empty'),
    *(
        (value, not_decimal('lon', value))
        for value in (
            '1_0',
            '٣',
            '１２',
            '0x10',
            'abc',
            'True',
            '1.2.3',
            '--1',
            '1e',
            '½',
            '12°',
            '1 2',
        )
    ),
]
BAD_LAT = [
    ('nan', r'non-finite coordinate \(lon, lat\) = \(\S+, nan\)'),
    ('inf', r'non-finite coordinate \(lon, lat\) = \(\S+, inf\)'),
    ('-Infinity', r'non-finite coordinate \(lon, lat\) = \(\S+, -inf\)'),
    ('177.8', r"latitude 177\.8 in column 'lat' is outside \[-90, 90\]"),
    ('-90.0001', r"latitude -90\.0001 in column 'lat' is outside \[-90, 90\]"),
    ('90.5', r"latitude 90\.5 in column 'lat' is outside"),
    ('1e2', r"latitude 100\.0 in column 'lat' is outside"),
    ('', 'lat is empty'),
    *(
        (value, not_decimal('lat', value))
        for value in ('4_5', '١', '0b1', 'none', '45°', '4,5'.replace(',', ';'))
    ),
]
INDEX_VALUES = [
    pytest.param(column, value, pattern, id=f'{column}={value!r}')
    for column, table in (('lon', BAD_LON), ('lat', BAD_LAT))
    for value, pattern in table
]


def write_index(
    root: Path, order: tuple[str, ...], changes: dict[int, dict[str, str]]
) -> Path:
    """index.csv with the columns in *order* and *changes* {row: {column: text}}."""
    lines = [','.join(order)]
    for i, row in enumerate(ROWS):
        fn, lon, lat = row.split(',')
        fields = {'fn': fn, 'lon': lon, 'lat': lat, 'date': '2021-05-01'}
        fields.update(changes.get(i, {}))
        lines.append(','.join(fields[name] for name in order))
    index = root / 'index.csv'
    index.write_bytes(csv_bytes(*lines))
    return index


@pytest.mark.parametrize('order', ORDERS, ids='-'.join)
@pytest.mark.parametrize('row', POSITIONS)
@pytest.mark.parametrize(('column', 'value', 'pattern'), INDEX_VALUES)
def test_index_value_refused_by_dataset(
    index_root: Path,
    order: tuple[str, ...],
    row: int,
    column: str,
    value: str,
    pattern: str,
) -> None:
    index = write_index(index_root, order, {row: {column: value}})
    refuse_dataset(index_root, DataError, at(index, row + 2) + pattern)


@pytest.mark.parametrize('row', POSITIONS)
@pytest.mark.parametrize(('column', 'value', 'pattern'), INDEX_VALUES)
def test_index_value_refused_by_pack(
    index_root: Path, row: int, column: str, value: str, pattern: str
) -> None:
    index = write_index(index_root, ORDERS[0], {row: {column: value}})
    before = snapshot(index_root)
    refuse_pack(index_root, DataError, at(index, row + 2) + pattern)
    assert snapshot(index_root) == before  # refused before writing anything


@pytest.mark.parametrize('row', POSITIONS)
@pytest.mark.parametrize(('column', 'value', 'pattern'), INDEX_VALUES[::4])
def test_index_value_refused_in_points_mode(
    index_root: Path, row: int, column: str, value: str, pattern: str
) -> None:
    index = write_index(index_root, ORDERS[0], {row: {column: value}})
    refuse_dataset(index_root, DataError, at(index, row + 2) + pattern, mode='points')


# ------------------------------------------------------- index.csv structure


def replaced(changes: dict[int, str]) -> list[str]:
    return [changes.get(i, row) for i, row in enumerate(ROWS)]


def decimal_comma(row: str) -> str:
    fn, lon, lat = row.split(',')
    return f'{fn},{lon.replace(".", ",")},{lat.replace(".", ",")}'


def line(row: int) -> int:
    return row + 2


STRUCTURE: list[tuple[str, bytes, str]] = [
    (
        'duplicate-lat-column',
        csv_bytes('fn,lon,lat,lat', *(r + ',0' for r in ROWS)),
        r"line 1: column 'lat' appears twice in the header \(columns 3 and 4\)",
    ),
    (
        'duplicate-fn-column',
        csv_bytes('fn,fn,lon,lat', *(r.split(',')[0] + ',' + r for r in ROWS)),
        r"line 1: column 'fn' appears twice in the header \(columns 1 and 2\)",
    ),
    (
        'duplicate-lon-column-apart',
        csv_bytes('lon,fn,lat,lon', *('0,' + r for r in ROWS)),
        r"line 1: column 'lon' appears twice in the header \(columns 1 and 4\)",
    ),
    (
        'missing-lat',
        csv_bytes('fn,lon', *(r.rsplit(',', 1)[0] for r in ROWS)),
        r'line 1: missing column\(s\) lat in the header fn,lon;',
    ),
    (
        'missing-lon',
        csv_bytes('fn,lat', *(r.split(',')[0] + ',1' for r in ROWS)),
        r'line 1: missing column\(s\) lon in the header fn,lat;',
    ),
    (
        'missing-fn',
        csv_bytes('lon,lat', *(r.split(',', 1)[1] for r in ROWS)),
        r'line 1: missing column\(s\) fn in the header lon,lat;',
    ),
    (
        'longitude-for-lon',
        csv_bytes('fn,longitude,lat', *ROWS),
        r'line 1: missing column\(s\) lon in the header fn,longitude,lat',
    ),
    (
        'upper-case-header',
        csv_bytes('FN,LON,LAT', *ROWS),
        r'line 1: missing column\(s\) fn, lon, lat',
    ),
    (
        'header-and-rows-trailing-comma',
        csv_bytes('fn,lon,lat,', *(r + ',' for r in ROWS)),
        r'line 1: column 4 of the header has no name \(a trailing comma\?\)',
    ),
    (
        'unnamed-middle-column',
        csv_bytes('fn,,lon,lat', *(r.replace(',', ',x,', 1) for r in ROWS)),
        'line 1: column 2 of the header has no name',
    ),
    *(
        (
            f'decimal-comma-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: decimal_comma(ROWS[row])})),
            rf'line {line(row)}: 5 fields, but the header has 3 \(fn, lon, lat\)',
        )
        for row in POSITIONS
    ),
    *(
        (
            f'extra-field-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: ROWS[row] + ',extra'})),
            rf'line {line(row)}: 4 fields, but the header has 3',
        )
        for row in POSITIONS
    ),
    *(
        (
            f'trailing-comma-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: ROWS[row] + ','})),
            rf'line {line(row)}: 4 fields, but the header has 3',
        )
        for row in POSITIONS
    ),
    *(
        (
            f'missing-field-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: ROWS[row].rsplit(',', 1)[0]})),
            rf'line {line(row)}: 2 fields, but the header has 3',
        )
        for row in POSITIONS
    ),
    *(
        (
            f'file-name-only-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: FNS[row]})),
            rf'line {line(row)}: 1 field, but the header has 3',
        )
        for row in POSITIONS
    ),
    *(
        (
            f'duplicate-file-lines-{line(a)}-{line(b)}',
            csv_bytes(HEADER, *replaced({b: FNS[a] + ',10.5,20.5'})),
            rf"line {line(b)}: file name '{FNS[a]}' is listed twice "
            rf'\(lines {line(a)} and {line(b)}\)',
        )
        for a, b in ((0, 1), (0, 7), (3, 4), (2, 6))
    ),
    *(
        (
            f'{kind}-file-name-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: blank + ',10.5,20.5'})),
            rf"line {line(row)}: empty file name in column 'fn'",
        )
        for row in POSITIONS
        for kind, blank in (('empty', ''), ('blank', '   '))
    ),
    *(
        (
            f'not-a-plain-name-{i}',
            csv_bytes(HEADER, *replaced({1: f'"{name}",10.5,20.5'})),
            rf"line 3: {re.escape(repr(name))} in column 'fn' is not a plain file name",
        )
        for i, name in enumerate(
            [
                '../patch_1.tif',
                'images/patch_1.tif',
                '/etc/passwd',
                'a\\b.tif',
                '.',
                '..',
                'patch\t1.tif',
                'patch\x00.tif',
                'patch\n1.tif',
            ]
        )
    ),
    (
        'latin-1-line-4',
        csv_bytes(HEADER, *ROWS[:2], 'patch_\xe9.tif,1,2').replace(
            b'\xc3\xa9', b'\xe9'
        ),
        r'line 4: not UTF-8 text \(byte 0xe9\)',
    ),
    (
        'utf-16',
        '\n'.join(LINES).encode('utf-16'),
        r'line 1: not UTF-8 text \(byte 0xff\)',
    ),
    *(
        (
            f'unterminated-quote-line-{line(row)}',
            csv_bytes(HEADER, *replaced({row: '"' + ROWS[row]})),
            rf'line {line(row)}: not a readable CSV row \(unexpected end of data\)',
        )
        for row in POSITIONS
    ),
    (
        'text-after-quote-line-3',
        csv_bytes(HEADER, *replaced({1: '"patch_1.tif"x,1,2'})),
        r'line 3: not a readable CSV row',
    ),
    (
        'field-over-the-csv-limit-line-5',
        csv_bytes(HEADER, *replaced({3: 'a' * 200_000 + '.tif,1,2'})),
        r'line 5: not a readable CSV row \(field larger than field limit',
    ),
    (
        'empty-file',
        b'',
        'empty file; expected a CSV file with the columns fn, lon, lat',
    ),
    (
        'blank-lines-only',
        b'\n  \n\r\n',
        'empty file; expected a CSV file with the columns fn, lon, lat',
    ),
    (
        'value-after-blank-lines',
        csv_bytes(HEADER, '', ROWS[0], '', '', FNS[1] + ',nan,1'),
        r'line 6: non-finite coordinate',
    ),
]
STRUCTURE_CASES = [
    pytest.param(data, pattern, id=name) for name, data, pattern in STRUCTURE
]


@pytest.mark.parametrize(('data', 'pattern'), STRUCTURE_CASES)
def test_malformed_index_refused_by_dataset(
    index_root: Path, data: bytes, pattern: str
) -> None:
    index = index_root / 'index.csv'
    index.write_bytes(data)
    refuse_dataset(index_root, DataError, at(index) + '(, |: )' + pattern)


@pytest.mark.parametrize(('data', 'pattern'), STRUCTURE_CASES)
def test_malformed_index_refused_by_pack(
    index_root: Path, data: bytes, pattern: str
) -> None:
    index = index_root / 'index.csv'
    index.write_bytes(data)
    before = snapshot(index_root)
    refuse_pack(index_root, DataError, at(index) + '(, |: )' + pattern)
    assert snapshot(index_root) == before


@pytest.mark.parametrize('command', ['dataset', 'pack', 'cli'])
def test_header_only_index(
    index_root: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    index = index_root / 'index.csv'
    index.write_bytes(csv_bytes(HEADER))
    if command == 'dataset':
        refuse_dataset(index_root, DataError, at(index) + r' lists no patches')
    elif command == 'pack':
        refuse_pack(index_root, DataError, at(index) + r' lists no files')
    else:
        # a fault of the data, not of the command (which names a dataset
        # folder with an index.csv): exit status 1
        assert main(['pack', str(index_root), '--patch-size', '32', '--quiet']) == 1
        assert f'{index} lists no files' in capsys.readouterr().err
        assert_no_partial_pack(index_root)


def test_cli_reports_the_line(
    index_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(index_root, ORDERS[0], {3: {'lat': '177.8'}})
    assert main(['pack', str(index_root), '--patch-size', '32', '--quiet']) == 1
    err = capsys.readouterr().err
    assert f'{index}, line 5: latitude 177.8' in err
    assert 'Traceback' not in err
    assert_no_partial_pack(index_root)


VALID: list[tuple[str, bytes]] = [
    ('bom', b'\xef\xbb\xbf' + csv_bytes(HEADER, *ROWS)),
    ('crlf', '\r\n'.join(LINES).encode() + b'\r\n'),
    ('cr', '\r'.join(LINES).encode()),
    ('no-final-newline', '\n'.join(LINES).encode()),
    ('blank-lines', csv_bytes('', HEADER, '', *ROWS[:4], '  ', *ROWS[4:], '', '')),
    ('spaces', csv_bytes(' fn , lon , lat ', *(r.replace(',', ' , ') for r in ROWS))),
    (
        'quoted',
        csv_bytes(HEADER, *(','.join(f'"{v}"' for v in r.split(',')) for r in ROWS)),
    ),
    ('extra-column', csv_bytes(HEADER + ',date', *(r + ',2021-05-01' for r in ROWS))),
    (
        'reordered',
        csv_bytes('lat,lon,fn', *(','.join(r.split(',')[::-1]) for r in ROWS)),
    ),
]


@pytest.mark.parametrize('data', [pytest.param(d, id=n) for n, d in VALID])
def test_valid_index_variants_are_read(index_root: Path, data: bytes) -> None:
    (index_root / 'index.csv').write_bytes(data)
    ds = S2100K(index_root, patch_size=SIZE)
    assert ds.files == FNS
    expected = [[float(v) for v in r.split(',')[1:]] for r in ROWS]
    np.testing.assert_allclose(ds.points, np.array(expected, np.float32))


@pytest.mark.parametrize(
    ('lon', 'lat'),
    [
        ('180', '90'),
        ('-180', '-90'),
        ('+4.9306207e1', '.5'),
        ('0', '-0'),
        ('1E1', '1.'),
    ],
)
def test_valid_numbers_are_read(index_root: Path, lon: str, lat: str) -> None:
    write_index(index_root, ORDERS[0], {2: {'lon': lon, 'lat': lat}})
    point = S2100K(index_root, patch_size=SIZE, mode='points')[2]['point']
    assert point.tolist() == pytest.approx([float(lon), float(lat)], abs=1e-5)


# ------------------------------------------------------------------ patches


def write_patch(
    path: Path,
    *,
    count: int = 12,
    dtype: str = 'uint16',
    size: tuple[int, int] = (SIZE, SIZE),
) -> None:
    profile = {
        'driver': 'GTiff',
        'dtype': dtype,
        'count': count,
        'height': size[0],
        'width': size[1],
        'crs': 'EPSG:32633',
        'transform': from_origin(500000, 4000000, 10, 10),
    }
    with rasterio.open(path, 'w', **profile) as f:
        f.write(np.ones((count, *size), dtype=dtype))


def replace_bytes(content: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        path.write_bytes(content(path.read_bytes()))

    return change


SIZES = [(16, 16), (32, 31), (31, 32), (1, 1), (64, 64), (33, 32)]
BANDS = [
    (3, 'uint16'),
    (1, 'uint16'),
    (13, 'uint16'),
    (12, 'uint8'),
    (12, 'int16'),
    (12, 'float32'),
    (12, 'uint32'),
]
#: (id, change to the file, message, whether the header alone shows it)
BAD_PATCHES: list[tuple[str, Callable[[Path], None], str, bool]] = [
    *(
        (
            f'{h}x{w}',
            lambda p, s=(h, w): write_patch(p, size=s),
            rf'patch of {h} x {w} pixels, expected 32 x 32',
            True,
        )
        for h, w in SIZES
    ),
    *(
        (
            f'{count}-{dtype}',
            lambda p, c=count, d=dtype: write_patch(p, count=c, dtype=d),
            rf'expected 12 uint16 bands, found {count} {dtype} band\(s\)',
            True,
        )
        for count, dtype in BANDS
    ),
    (
        'not-a-tiff',
        replace_bytes(lambda _: b'not an image'),
        'cannot read the image',
        True,
    ),
    ('empty-file', replace_bytes(lambda _: b''), 'cannot read the image', True),
    (
        'truncated',
        replace_bytes(lambda b: b[: len(b) // 2]),
        'cannot read the image',
        False,
    ),
]


def first_patch_error(position: int, pattern: str) -> type[Exception]:
    """What a bad patch at *position* raises when the first header is read.

    A first patch of another size contradicts patch_size: ``ValueError``;
    anything else (an unreadable patch, other bands) is ``RuntimeError``.
    """
    return (
        ValueError if position == 0 and 'pixels, expected' in pattern else RuntimeError
    )


PATCH_CASES = [
    pytest.param(change, pattern, header, id=name)
    for name, change, pattern, header in BAD_PATCHES
]


@pytest.mark.parametrize('position', POSITIONS)
@pytest.mark.parametrize(('change', 'pattern', 'header'), PATCH_CASES)
def test_bad_patch_read_one_by_one(
    patch_root: Path,
    position: int,
    change: Callable[[Path], None],
    pattern: str,
    header: bool,
) -> None:
    path = patch_root / 'images' / FNS[position]
    change(path)
    if position == 0 and header:  # the first patch's header is checked at once
        error = first_patch_error(position, pattern)
        refuse_dataset(patch_root, error, at(path) + ': ' + pattern)
        return
    ds = S2100K(patch_root, patch_size=SIZE)
    with pytest.raises(RuntimeError, match=at(path) + ': ' + pattern):
        ds[position]
    assert ds[(position + 1) % 8]['image'].shape == (12, SIZE, SIZE)


@pytest.mark.parametrize('position', POSITIONS)
@pytest.mark.parametrize(('change', 'pattern', 'header'), PATCH_CASES)
def test_bad_patch_read_in_a_batch(
    patch_root: Path,
    position: int,
    change: Callable[[Path], None],
    pattern: str,
    header: bool,
) -> None:
    path = patch_root / 'images' / FNS[position]
    change(path)
    kwargs: dict[str, Any] = {'bands': ['B04', 'B03', 'B02'], 'image_dtype': 'uint16'}
    if position == 0 and header:
        error = first_patch_error(position, pattern)
        refuse_dataset(patch_root, error, at(path) + ': ' + pattern, **kwargs)
        return
    ds = S2100K(patch_root, patch_size=SIZE, **kwargs)
    with pytest.raises(RuntimeError, match=at(path) + ': ' + pattern):
        ds.__getitems__([(position + 5) % 8, position, (position + 1) % 8])


@pytest.mark.parametrize('position', POSITIONS)
@pytest.mark.parametrize(('change', 'pattern', 'header'), PATCH_CASES)
def test_bad_patch_refused_by_verify(
    patch_root: Path,
    position: int,
    change: Callable[[Path], None],
    pattern: str,
    header: bool,
) -> None:
    path = patch_root / 'images' / FNS[position]
    change(path)
    refuse_dataset(
        patch_root,
        first_patch_error(position, pattern),
        at(path) + ': ' + pattern,
        layout='geotiff',
        verify=True,
    )


@pytest.mark.parametrize('position', POSITIONS)
@pytest.mark.parametrize(('change', 'pattern', 'header'), PATCH_CASES)
def test_bad_patch_refused_by_pack(
    patch_root: Path,
    position: int,
    change: Callable[[Path], None],
    pattern: str,
    header: bool,
) -> None:
    path = patch_root / 'images' / FNS[position]
    change(path)
    refuse_pack(
        patch_root, first_patch_error(position, pattern), at(path) + ': ' + pattern
    )
    # the shards before the bad patch were kept, and the next run resumes them
    write_patch(path)
    result = pack_s2_100k(patch_root, patch_size=SIZE, shard_size=3, progress=False)
    assert result.num_resumed_shards == position // 3


def test_bad_patch_cli_exit_status(
    patch_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = patch_root / 'images' / FNS[4]
    write_patch(path, size=(32, 31))
    assert main(['pack', str(patch_root), '--patch-size', '32', '--quiet']) == 1
    err = capsys.readouterr().err
    assert f'{path}: patch of 32 x 31 pixels, expected 32 x 32' in err
    assert 'Traceback' not in err
    assert_no_partial_pack(patch_root)


# --------------------------------------------------------------- patch_size


@pytest.mark.parametrize(
    ('patch_size', 'found'),
    [
        (None, '256 x 256'),
        (64, '64 x 64'),
        ((32, 16), '32 x 16'),
        ((16, 32), '16 x 32'),
        (31, '31 x 31'),
        (33, '33 x 33'),
    ],
)
def test_declared_size_differs(patch_root: Path, patch_size: Any, found: str) -> None:
    path = patch_root / 'images' / FNS[0]
    refuse_dataset(
        patch_root,
        ValueError,
        at(path) + rf': patch of 32 x 32 pixels, expected {found} '
        r"\(the dataset's patch_size\); pass patch_size=\(32, 32\) "
        # the option too, for the command line (probe-images --patch-size)
        r'\(--patch-size 32\) if every patch of this dataset has that size',
        patch_size=patch_size,
    )


@pytest.mark.parametrize(
    ('patch_size', 'found'), [(256, '256 x 256'), ((32, 31), '32 x 31'), (1, '1 x 1')]
)
def test_pack_declared_size_differs(
    patch_root: Path, patch_size: Any, found: str
) -> None:
    path = patch_root / 'images' / FNS[0]
    before = snapshot(patch_root)
    refuse_pack(
        patch_root,
        ValueError,
        at(path) + rf': patch of 32 x 32 pixels, expected {found} \(patch_size\); '
        r'if every patch of the dataset has that size, pass patch_size=\(32, 32\) '
        r'\(--patch-size 32\)',
        patch_size=patch_size,
    )
    assert snapshot(patch_root) == before  # refused before writing anything


@pytest.mark.parametrize('patch_size', [None, 64, (32, 16)])
def test_packed_size_differs(patch_root: Path, patch_size: Any) -> None:
    pack_s2_100k(patch_root, patch_size=SIZE, shard_size=3, progress=False)
    manifest = patch_root / 'packed' / 'manifest.json'
    refuse_dataset(
        patch_root,
        ValueError,
        at(manifest) + r': packed patches are 32 x 32 pixels, but the dataset '
        r'expects \d+ x \d+ \(patch_size\); pass patch_size=\(32, 32\)',
        patch_size=patch_size,
    )


BAD_PATCH_SIZES = [
    0,
    -1,
    (32,),
    (32, 32, 32),
    '32',
    32.0,
    True,
    (0, 32),
    (32, -1),
    [32, 32.5],
    'auto',
    (True, 32),
]


@pytest.mark.parametrize('patch_size', BAD_PATCH_SIZES, ids=repr)
def test_invalid_patch_size(patch_root: Path, patch_size: Any) -> None:
    pattern = 'patch_size must be a positive integer or a \\(height, width\\) pair'
    refuse_dataset(patch_root, ValueError, pattern, patch_size=patch_size)


@pytest.mark.parametrize('patch_size', [None, *BAD_PATCH_SIZES], ids=repr)
def test_invalid_pack_patch_size(patch_root: Path, patch_size: Any) -> None:
    pattern = 'patch_size must be a positive integer or a \\(height, width\\) pair'
    before = snapshot(patch_root)
    refuse_pack(patch_root, ValueError, pattern, patch_size=patch_size)
    assert snapshot(patch_root) == before


def test_declared_size_of_another_dataset(patch_root: Path) -> None:
    """patch_size=(h, w) reads a dataset built at another size, and a list works."""
    for size in (32, (32, 32), [32, 32]):
        ds = S2100K(patch_root, patch_size=size)  # type: ignore[arg-type]
        assert ds.patch_size == (32, 32)
        batch = ds.__getitems__([0, 1])
        assert isinstance(batch, SampleBatch)
        assert batch.stacked['image'].shape == (2, 12, 32, 32)


def test_subclass_declares_size(patch_root: Path) -> None:
    class Small(S2100K):
        patch_size = (32, 32)

    assert Small(patch_root)[0]['image'].shape == (12, 32, 32)
    with pytest.raises(ValueError, match='expected 256 x 256'):
        S2100K(patch_root)


# ---------------------------------------------------------------- nodata.csv


def not_fraction(value: str) -> str:
    return f'nodata_fraction {re.escape(repr(value))} is not a number in \\[0, 1\\]'


BAD_FRACTIONS = [
    *(
        (value, not_fraction(value))
        for value in (
            'nan',
            'NaN',
            '-0.1',
            '1.5',
            '1.0000001',
            'inf',
            '-inf',
            '1e1',
            '-1e-9',
        )
    ),
    ('', 'nodata_fraction is empty'),
    *(
        (value, not_decimal('nodata_fraction', value))
        for value in ('abc', '1_0', '٠', '0x1', 'true', '50%', '0.5.1')
    ),
]


def nodata_rows(changes: dict[int, str]) -> list[str]:
    return [f'{fn},{changes.get(i, f"{i / 10:.6f}")}' for i, fn in enumerate(FNS)]


@pytest.mark.parametrize('row', POSITIONS)
@pytest.mark.parametrize(
    ('value', 'pattern'), [pytest.param(v, p, id=repr(v)) for v, p in BAD_FRACTIONS]
)
def test_nodata_value_refused(
    index_root: Path, row: int, value: str, pattern: str
) -> None:
    shutil.copy(DATA / 'index.csv', index_root)
    nodata = index_root / 'nodata.csv'
    nodata.write_bytes(csv_bytes('fn,nodata_fraction', *nodata_rows({row: value})))
    refuse_dataset(
        index_root, DataError, at(nodata, row + 2) + pattern, exclude_nodata=True
    )


NODATA_STRUCTURE: list[tuple[str, bytes, str]] = [
    (
        'duplicate-file',
        csv_bytes('fn,nodata_fraction', *nodata_rows({}), f'{FNS[0]},0.5'),
        rf"line 10: file name '{FNS[0]}' is listed twice \(lines 2 and 10\)",
    ),
    (
        'empty-file-name',
        csv_bytes('fn,nodata_fraction', *nodata_rows({}), ',0.5'),
        "line 10: empty file name in column 'fn'",
    ),
    (
        'folder-in-file-name',
        csv_bytes('fn,nodata_fraction', '../x.tif,0.5', *nodata_rows({})),
        r"line 2: '\.\./x\.tif' in column 'fn' is not a plain file name",
    ),
    (
        'duplicate-column',
        csv_bytes(
            'fn,nodata_fraction,nodata_fraction', *(r + ',0' for r in nodata_rows({}))
        ),
        r"line 1: column 'nodata_fraction' appears twice",
    ),
    (
        'unnamed-column',
        csv_bytes('fn,nodata_fraction,', *(r + ',' for r in nodata_rows({}))),
        'line 1: column 3 of the header has no name',
    ),
    (
        'missing-fn-column',
        csv_bytes('name,nodata_fraction', *nodata_rows({})),
        r'line 1: missing column\(s\) fn',
    ),
    (
        'decimal-comma',
        csv_bytes('fn,nodata_fraction', *nodata_rows({4: '0,5'})),
        'line 6: 3 fields, but the header has 2',
    ),
    (
        'short-row',
        csv_bytes('fn,nodata_fraction', *nodata_rows({}), FNS[0]),
        'line 10: 1 field, but the header has 2',
    ),
    (
        'not-utf-8',
        csv_bytes('fn,nodata_fraction', *nodata_rows({})).replace(
            b'patch_2', b'patch\xff2'
        ),
        r'line 4: not UTF-8 text \(byte 0xff\)',
    ),
    (
        'unterminated-quote',
        csv_bytes('fn,nodata_fraction', *nodata_rows({}), '"patch_9.tif,0.5'),
        r'line 10: not a readable CSV row',
    ),
    (
        'empty',
        b'',
        'empty file; expected a CSV file with the columns fn and nodata_fraction',
    ),
    (
        'list-duplicate',
        csv_bytes('fn', *FNS, FNS[3]),
        rf"line 10: file name '{FNS[3]}' is listed twice \(lines 5 and 10\)",
    ),
    (
        'list-ragged',
        csv_bytes('fn', *FNS[:3], FNS[3] + ',1'),
        'line 5: 2 fields, but the header has 1',
    ),
]


@pytest.mark.parametrize(
    ('data', 'pattern'), [pytest.param(d, p, id=n) for n, d, p in NODATA_STRUCTURE]
)
def test_malformed_nodata_refused(index_root: Path, data: bytes, pattern: str) -> None:
    shutil.copy(DATA / 'index.csv', index_root)
    nodata = index_root / 'nodata.csv'
    nodata.write_bytes(data)
    refuse_dataset(
        index_root, DataError, at(nodata) + '(, |: )' + pattern, exclude_nodata=True
    )


@pytest.mark.parametrize(
    ('values', 'excluded'),
    [
        (['0', '1', '0.1', '.1', '1e-1', '1.0', '0.0', '+0.2'], [1, 5, 7]),
        (['0.000000'] * 8, []),
    ],
)
def test_valid_nodata_values(
    index_root: Path, values: list[str], excluded: list[int]
) -> None:
    shutil.copy(DATA / 'index.csv', index_root)
    rows = [f'{fn},{v}' for fn, v in zip(FNS, values, strict=True)]
    (index_root / 'nodata.csv').write_bytes(csv_bytes('fn,nodata_fraction', *rows))
    ds = S2100K(
        index_root, patch_size=SIZE, exclude_nodata=True, max_nodata_fraction=0.1
    )
    assert ds.excluded == [FNS[i] for i in excluded]


def test_points_are_not_a_silent_default(index_root: Path) -> None:
    """A malformed row is never read as 0, NaN or another row's value."""
    write_index(index_root, ORDERS[0], {})
    ds = S2100K(index_root, patch_size=SIZE, mode='points')
    expected = torch.tensor(
        [[float(v) for v in r.split(',')[1:]] for r in ROWS], dtype=torch.float64
    )
    points = [s['point'] for s in cast(Iterable[dict[str, torch.Tensor]], ds)]
    assert torch.equal(torch.stack(points), expected)
