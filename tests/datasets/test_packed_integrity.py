"""A damaged or stale packed layout is refused, never served (issue 13).

Every kind of damage is made to a fresh copy of a packed fake dataset (8
patches of 32 x 32 in shards of 3, 3 and 2) and checked four ways:

* ``open``: ``S2100K(root)`` refuses it (the cheap checks of every open), or,
  for damage only a full hash can see, ``S2100K(root, verify=True)`` does;
* ``verify``: :func:`verify_packed` refuses it;
* ``cli``: ``torchgeo-satclip pack --verify ROOT`` exits with status 1 and the
  message, without a traceback;
* ``repair``: doing what the message says (``torchgeo-satclip pack ROOT``,
  after deleting the named shard for a bit flip) gives a layout that passes
  the full check, serves exactly the GeoTIFFs' samples, and redid only the
  shards that needed it.

Each message names the file (and line), says what differs and how to repair
it; a refused open writes nothing.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

import torchgeo_satclip.datasets.pack as pack_module
import torchgeo_satclip.datasets.s2_100k_files as s2_100k_files
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import (
    S2100K,
    PackedLayoutError,
    pack_s2_100k,
    verify_packed,
)
from torchgeo_satclip.datasets.s2_100k_files import (
    SAMPLE_BLOCK_BYTES,
    SAMPLE_BLOCKS,
    pack_command,
)

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
SIZE = 32
FNS = [f'patch_{i}.tif' for i in range(8)]
SHARD_BYTES = 73856  # 3 x 12 x 32 x 32 x 2 + the 128-byte .npy header
HEADER_BYTES = 128


def snapshot(root: Path) -> dict[str, str]:
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            files[str(path.relative_to(root))] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return files


@pytest.fixture(scope='module')
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('template') / 'root'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    shutil.copytree(DATA / 'images', root / 'images')
    pack_s2_100k(root, patch_size=SIZE, shard_size=3, progress=False)
    return root


@pytest.fixture
def root(tmp_path: Path, template: Path) -> Path:
    copy = tmp_path / 'root'
    shutil.copytree(template, copy)  # keeps modification times
    return copy


# ------------------------------------------------------------- corruptions

Corruption = Callable[[Path], object]


def files_lines(change: Callable[[list[str]], list[str] | None]) -> Corruption:
    """Edit the lines of files.csv (header first; None from *change*: in place)."""

    def corrupt(root: Path) -> None:
        path = root / 'packed' / 'files.csv'
        lines = path.read_text().splitlines()
        result = change(lines)
        path.write_text('\r\n'.join(lines if result is None else result) + '\r\n')

    return corrupt


def field(line: int, column: int, value: str | Callable[[str], str]) -> Corruption:
    """Set one field of files.csv (line 1 is the header)."""

    def change(lines: list[str]) -> None:
        fields = lines[line - 1].split(',')
        fields[column] = value(fields[column]) if callable(value) else value
        lines[line - 1] = ','.join(fields)

    return files_lines(change)


def swap_names(a: int, b: int) -> Corruption:
    """Swap the file names of two lines of files.csv."""

    def change(lines: list[str]) -> None:
        x, y = lines[a - 1].split(','), lines[b - 1].split(',')
        x[0], y[0] = y[0], x[0]
        lines[a - 1], lines[b - 1] = ','.join(x), ','.join(y)

    return files_lines(change)


def swap_lines(a: int, b: int) -> Corruption:
    def change(lines: list[str]) -> None:
        lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]

    return files_lines(change)


def json_file(name: str, change: Callable[[Any], Any]) -> Corruption:
    """Edit a JSON file of the layout (*change* returns the new data or None)."""

    def corrupt(root: Path) -> None:
        path = root / 'packed' / name
        data = json.loads(path.read_text())
        result = change(data)
        path.write_text(json.dumps(data if result is None else result, indent=2))

    return corrupt


def manifest(key: str, value: Any) -> Corruption:
    def change(data: dict[str, Any]) -> None:
        if value is DELETE:
            del data[key]
        else:
            data[key] = value

    return json_file('manifest.json', change)


class _Delete:
    def __repr__(self) -> str:
        return 'DELETE'


DELETE = _Delete()


def raw(name: str, change: Callable[[bytes], bytes]) -> Corruption:
    """Edit the bytes of a file under the root."""

    def corrupt(root: Path) -> None:
        path = root / name
        path.write_bytes(change(path.read_bytes()))

    return corrupt


def delete(name: str) -> Corruption:
    return lambda root: (root / name).unlink()


def copy(source: str, target: str) -> Corruption:
    return lambda root: shutil.copyfile(root / source, root / target)


def swap_files(a: str, b: str) -> Corruption:
    def corrupt(root: Path) -> None:
        x, y = root / a, root / b
        data = x.read_bytes()
        x.write_bytes(y.read_bytes())
        y.write_bytes(data)

    return corrupt


def resave(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Corruption:
    """Rewrite a shard with the same bytes under another header."""

    def corrupt(root: Path) -> None:
        path = root / 'packed' / name
        array = np.load(path)
        np.save(path, change(array))
        assert path.stat().st_size == SHARD_BYTES

    return corrupt


def flip(name: str, offset: int) -> Corruption:
    """Flip the lowest bit of one byte (negative offsets count from the end)."""

    def change(data: bytes) -> bytes:
        buffer = bytearray(data)
        buffer[offset] ^= 1
        return bytes(buffer)

    return raw(f'packed/{name}', change)


def retag(fn: str, keep_time: bool) -> Corruption:
    """Change a GeoTIFF's bytes, not its size or pixels: its x origin, by an ulp."""

    def corrupt(root: Path) -> None:
        path = root / 'images' / fn
        stat = path.stat()
        data = path.read_bytes()
        origin = struct.pack('<d', 500000.0)
        assert data.count(origin) == 1
        flipped = bytearray(origin)
        flipped[0] ^= 1
        path.write_bytes(data.replace(origin, bytes(flipped)))
        if keep_time:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    return corrupt


def reencode(fn: str) -> Corruption:
    """Rewrite a GeoTIFF uncompressed: the same pixels, another file."""

    def corrupt(root: Path) -> None:
        import rasterio

        path = root / 'images' / fn
        with rasterio.open(path) as src:
            profile, image = src.profile, src.read()
        profile.update(compress=None)
        with rasterio.open(path, 'w', **profile) as dst:
            dst.write(image)

    return corrupt


def v1_layout(root: Path) -> None:
    """Turn the layout into what version 1 of the packer wrote."""
    packed = root / 'packed'
    data = json.loads((packed / 'manifest.json').read_text())
    data['version'] = 1
    data['shards'] = [s['name'] for s in data['shards']]
    del data['files_csv'], data['checksum']
    (packed / 'manifest.json').write_text(json.dumps(data))
    lines = (packed / 'files.csv').read_text().splitlines()
    (packed / 'files.csv').write_text(
        '\n'.join(','.join(line.split(',')[:4]) for line in lines) + '\n'
    )
    for meta in packed.glob('shard_*.json'):
        record = json.loads(meta.read_text())
        meta.write_text(
            json.dumps({k: record[k] for k in ('files', 'nodata_fraction')})
        )


def sampled(offset: int, size: int = SHARD_BYTES) -> bool:
    """Whether the sampled SHA-256 reads the byte at *offset*."""
    if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
        return True
    span = size - SAMPLE_BLOCK_BYTES
    starts = [k * span // (SAMPLE_BLOCKS - 1) for k in range(SAMPLE_BLOCKS)]
    return any(start <= offset < start + SAMPLE_BLOCK_BYTES for start in starts)


def gaps(size: int = SHARD_BYTES) -> list[int]:
    """Offsets of the data between sampled blocks: only a full hash reads them."""
    unsampled = [o for o in range(HEADER_BYTES, size) if not sampled(o, size)]
    return [unsampled[0], unsampled[len(unsampled) // 2], unsampled[-1]]


# ------------------------------------------------------------------- table

REPACK = 'repack'  # advice: run `torchgeo-satclip pack ROOT`
DELETE_SHARD = 'delete'  # advice: delete a shard (Case.shard), then pack


class Case:
    """One kind of damage and what must happen."""

    def __init__(
        self,
        name: str,
        corrupt: Corruption,
        file: str,
        pattern: str,
        *,
        resumed: int,
        full_only: bool = False,
        advice: str = REPACK,
        shard: str | None = None,
    ) -> None:
        self.name = name
        self.corrupt = corrupt
        self.file = file  # relative to the root
        self.pattern = pattern  # after the file: '(, line N)?: ' then this
        self.resumed = resumed  # shards the repairing pack keeps
        self.full_only = full_only  # only a full hash sees it
        self.advice = advice
        self.shard = shard or file  # the shard to delete, with DELETE_SHARD


FILES = 'packed/files.csv'
MANIFEST = 'packed/manifest.json'
SWAPPED = r'\(rows swapped or edited\)'
DIFFERS = 'differs from the one written when packing'

CASES = [
    # ------------------------------------------------------------ files.csv
    Case(
        'files-names-swapped-in-a-shard',
        swap_names(2, 3),
        FILES,
        rf"line 2: puts 'patch_1.tif' at row 0 of shard_00000.npy, but "
        rf"shard_00000.json has 'patch_0.tif' there {SWAPPED}",
        resumed=3,
    ),
    Case(
        'files-names-swapped-across-shards',
        swap_names(2, 6),
        FILES,
        rf"line 2: puts 'patch_4.tif' at row 0 of shard_00000.npy, but "
        rf"shard_00000.json has 'patch_0.tif' there {SWAPPED}",
        resumed=3,
    ),
    Case(
        'files-names-swapped-last-two',
        swap_names(8, 9),
        FILES,
        rf"line 8: puts 'patch_7.tif' at row 0 of shard_00002.npy.*{SWAPPED}",
        resumed=3,
    ),
    Case('files-lines-swapped', swap_lines(2, 3), FILES, DIFFERS, resumed=3),
    Case(
        'files-rows-reversed',
        files_lines(lambda lines: [lines[0], *lines[:0:-1]]),
        FILES,
        DIFFERS,
        resumed=3,
    ),
    Case(
        'files-nodata-edited',
        field(3, 3, '0.5'),
        FILES,
        r"line 3: nodata_fraction 0\.5 of 'patch_1\.tif', but shard_00000\.json "
        r'records 0\.0',
        resumed=3,
    ),
    Case(
        'files-nodata-nan',
        field(5, 3, 'nan'),
        FILES,
        r"line 5: nodata_fraction 'nan' is not a number in \[0, 1\]",
        resumed=3,
    ),
    Case(
        'files-nodata-out-of-range',
        field(9, 3, '1.5'),
        FILES,
        r"line 9: nodata_fraction '1\.5' is not a number in \[0, 1\]",
        resumed=3,
    ),
    Case(
        'files-shard-out-of-range',
        field(4, 1, '7'),
        FILES,
        r"line 4: shard 7 of 'patch_2\.tif' does not exist \(manifest\.json lists 3\)",
        resumed=3,
    ),
    Case(
        'files-shard-not-a-number',
        field(4, 1, 'one'),
        FILES,
        r"line 4: shard 'one' is not an integer",
        resumed=3,
    ),
    Case(
        'files-row-out-of-range',
        field(9, 2, '5'),
        FILES,
        r"line 9: row 5 of 'patch_7\.tif' is outside shard_00002\.npy \(2 rows\)",
        resumed=3,
    ),
    Case(
        'files-two-files-in-one-row',
        field(3, 2, '0'),
        FILES,
        r"line 3: 'patch_1\.tif' and 'patch_0\.tif' \(line 2\) are both at row 0 "
        r'of shard_00000\.npy',
        resumed=3,
    ),
    Case(
        'files-row-deleted',
        files_lines(lambda lines: lines[:4] + lines[5:]),
        FILES,
        r'lists 7 files, manifest\.json 8',
        resumed=3,
    ),
    Case(
        'files-row-duplicated',
        files_lines(lambda lines: [*lines, lines[1]]),
        FILES,
        r"line 10: file name 'patch_0\.tif' is listed twice \(lines 2 and 10\)",
        resumed=3,
    ),
    Case(
        'files-empty-name',
        field(6, 0, ''),
        FILES,
        r"line 6: empty file name in column 'fn'",
        resumed=3,
    ),
    Case(
        'files-column-renamed',
        field(1, 3, 'nodata'),
        FILES,
        r'line 1: missing column\(s\) nodata_fraction',
        resumed=3,
    ),
    Case(
        'files-extra-column',
        files_lines(lambda lines: [line + ',x' for line in lines]),
        FILES,
        r'line 1: header fn,shard,row,nodata_fraction,source_bytes,'
        r'source_mtime_ns,source_sha256,x, expected',
        resumed=3,
    ),
    Case(
        'files-ragged-row',
        field(7, 3, '0,0'),
        FILES,
        'line 7: 8 fields, but the header has 7',
        resumed=3,
    ),
    Case(
        'files-not-utf-8',
        raw(FILES, lambda b: b.replace(b'patch_5', b'patch\xff5')),
        FILES,
        r'line 7: not UTF-8 text \(byte 0xff\)',
        resumed=3,
    ),
    Case(
        'files-cut-in-a-digest',
        raw(FILES, lambda b: b[:-30]),
        FILES,
        r"line 9: source_sha256 '[0-9a-f]{36}' is not a SHA-256 hex digest",
        resumed=3,
    ),
    Case(
        'files-cut-in-a-row',
        raw(FILES, lambda b: b[: b.index(b'patch_4')] + b'patch_4.tif,1'),
        FILES,
        'line 6: 2 fields, but the header has 7',
        resumed=3,
    ),
    Case(
        'files-source-time-edited',
        field(4, 5, lambda v: str(int(v) + 1)),
        FILES,
        r"line 4: the source fingerprint of 'patch_2\.tif' differs from the one in "
        r'shard_00000\.json',
        resumed=3,
    ),
    Case(
        'files-source-digest-edited',
        field(6, 6, lambda v: v[::-1]),
        FILES,
        r"line 6: the source fingerprint of 'patch_4\.tif' differs from the one in "
        r'shard_00001\.json',
        resumed=3,
    ),
    Case(
        'files-source-size-edited',
        field(9, 4, '1'),
        FILES,
        r"line 9: the source fingerprint of 'patch_7\.tif' differs",
        resumed=3,
    ),
    Case('files-deleted', delete(FILES), FILES, 'missing', resumed=3),
    Case(
        'files-emptied',
        raw(FILES, lambda b: b''),
        FILES,
        'empty file; expected a CSV file with the columns fn, shard',
        resumed=3,
    ),
    # -------------------------------------------------------- manifest.json
    *(
        Case(
            f'manifest-says-{h}x{w}',
            json_file(
                'manifest.json',
                cast(
                    Callable[[Any], Any],
                    lambda d, h=h, w=w: d.update(height=h, width=w),
                ),
            ),
            MANIFEST,
            rf'height x width is {h} x {w}, but shard_00000\.npy holds patches '
            r'of 32 x 32',
            resumed=3,
        )
        for h, w in [(16, 64), (64, 16), (33, 32), (32, 33), (64, 64), (1, 1), (31, 31)]
    ),
    *(
        Case(
            f'manifest-{key}-{value!r}',
            manifest(key, value),
            MANIFEST,
            f'{key} is {re.escape(repr(None if value is DELETE else value))}, '
            'not a positive integer',
            resumed=3,
        )
        for key, value in [
            ('height', '32'),
            ('width', 0),
            ('height', DELETE),
            ('width', True),
            ('num_samples', -8),
            ('height', 32.0),
        ]
    ),
    Case(
        'manifest-version-3',
        manifest('version', 3),
        MANIFEST,
        'version 3; this torchgeo-satclip reads version 2',
        resumed=3,
    ),
    Case(
        'manifest-version-missing',
        manifest('version', DELETE),
        MANIFEST,
        'version None; this torchgeo-satclip reads version 2',
        resumed=3,
    ),
    Case(
        'manifest-other-format',
        manifest('format', 'something-else'),
        MANIFEST,
        'not a torchgeo-satclip/s2-100k-packed manifest',
        resumed=3,
    ),
    Case(
        'manifest-a-list',
        json_file('manifest.json', lambda d: [d]),
        MANIFEST,
        'not a torchgeo-satclip/s2-100k-packed manifest',
        resumed=3,
    ),
    Case(
        'manifest-cut',
        raw(MANIFEST, lambda b: b[: len(b) // 2]),
        MANIFEST,
        r'not valid JSON \(',
        resumed=3,
    ),
    Case(
        'manifest-not-utf-8',
        raw(MANIFEST, lambda b: b'\xff' + b),
        MANIFEST,
        r'not valid JSON \(',
        resumed=3,
    ),
    Case(
        'manifest-bands-reordered',
        json_file('manifest.json', lambda d: d['bands'].reverse()),
        MANIFEST,
        r"bands is \['B12', 'B11'.*\], expected \['B01', 'B02'",
        resumed=3,
    ),
    Case(
        'manifest-bands-with-b10',
        json_file('manifest.json', lambda d: d['bands'].insert(10, 'B10')),
        MANIFEST,
        r"bands is \[.*'B10'.*\], expected",
        resumed=3,
    ),
    Case(
        'manifest-dtype',
        manifest('dtype', 'uint8'),
        MANIFEST,
        "dtype is 'uint8', expected 'uint16'",
        resumed=3,
    ),
    Case(
        'manifest-checksum-kind',
        manifest('checksum', 'md5'),
        MANIFEST,
        "checksum is 'md5', expected 'sha256'",
        resumed=3,
    ),
    Case(
        'manifest-num-samples',
        manifest('num_samples', 9),
        MANIFEST,
        'num_samples is 9, but its shards hold 8',
        resumed=3,
    ),
    Case(
        'manifest-shard-renamed',
        json_file(
            'manifest.json', lambda d: d['shards'][1].update(name='shard_00005.npy')
        ),
        MANIFEST,
        r'shards\[1\] is not a record of shard_00001\.npy',
        resumed=3,
    ),
    Case(
        'manifest-shard-path',
        json_file('manifest.json', lambda d: d['shards'][0].update(name='../../x.npy')),
        MANIFEST,
        r'shards\[0\] is not a record of shard_00000\.npy',
        resumed=3,
    ),
    Case(
        'manifest-shards-empty',
        manifest('shards', []),
        MANIFEST,
        "'shards' is not a non-empty list",
        resumed=3,
    ),
    Case(
        'manifest-shard-count',
        json_file('manifest.json', lambda d: d['shards'][0].update(num_samples=4)),
        MANIFEST,
        'num_samples is 8, but its shards hold 9',
        resumed=3,
    ),
    Case(
        'manifest-shard-dropped',
        json_file(
            'manifest.json',
            lambda d: d.update(shards=d['shards'][:2], num_samples=6),
        ),
        FILES,
        r"line 8: shard 2 of 'patch_6\.tif' does not exist \(manifest\.json lists 2\)",
        resumed=3,
    ),
    Case(
        'manifest-shard-digest',
        json_file('manifest.json', lambda d: d['shards'][0].update(sha256='0' * 64)),
        'packed/shard_00000.json',
        r'describes another shard_00000\.npy than manifest\.json',
        resumed=2,
    ),
    Case(
        'manifest-record-digest',
        json_file(
            'manifest.json', lambda d: d['shards'][1].update(json_sha256='0' * 64)
        ),
        'packed/shard_00001.json',
        'differs from the record written when packing',
        resumed=2,
    ),
    Case(
        'manifest-files-digest',
        json_file('manifest.json', lambda d: d['files_csv'].update(sha256='1' * 64)),
        FILES,
        DIFFERS,
        resumed=3,
    ),
    Case(
        'manifest-files-record',
        manifest('files_csv', 'files.csv'),
        MANIFEST,
        r"'files_csv' is not \{'bytes': int, 'sha256': hex\}",
        resumed=3,
    ),
    Case(
        'layout-of-version-1',
        v1_layout,
        MANIFEST,
        'a version 1 packed layout: it has no checksums or source fingerprints',
        resumed=0,
        advice='v1',
    ),
    # ------------------------------------------------------ shard records
    Case(
        'record-deleted',
        delete('packed/shard_00001.json'),
        'packed/shard_00001.json',
        'missing',
        resumed=2,
    ),
    Case(
        'record-files-swapped',
        json_file('shard_00000.json', lambda d: d['files'].reverse()),
        FILES,
        rf"line 2: puts 'patch_0\.tif' at row 0 of shard_00000\.npy, but "
        rf"shard_00000\.json has 'patch_2\.tif' there {SWAPPED}",
        resumed=2,
    ),
    Case(
        'record-nodata-edited',
        json_file(
            'shard_00002.json', lambda d: d['nodata_fraction'].__setitem__(0, 0.25)
        ),
        FILES,
        r"line 8: nodata_fraction 0\.0 of 'patch_6\.tif', but shard_00002\.json "
        r'records 0\.25',
        resumed=2,
    ),
    Case(
        'record-source-edited',
        json_file('shard_00001.json', lambda d: d['sources'][0].__setitem__(1, 5)),
        FILES,
        r"line 5: the source fingerprint of 'patch_3\.tif' differs from the one in "
        r'shard_00001\.json',
        resumed=2,
    ),
    Case(
        'record-cut',
        raw('packed/shard_00000.json', lambda b: b[:-10]),
        'packed/shard_00000.json',
        r'not a valid shard record \(',
        resumed=2,
    ),
    Case(
        'record-without-version',
        json_file('shard_00002.json', lambda d: d.pop('version') and None),
        'packed/shard_00002.json',
        r'not a valid shard record \(not a version 2 shard record\)',
        resumed=2,
    ),
    Case(
        'record-bad-fraction',
        json_file('shard_00002.json', lambda d: d['nodata_fraction'].__setitem__(1, 2)),
        'packed/shard_00002.json',
        r"not a valid shard record \('nodata_fraction' is not 2 numbers in \[0, 1\]\)",
        resumed=2,
    ),
    Case(
        'record-reformatted',
        json_file('shard_00001.json', lambda d: None),
        'packed/shard_00001.json',
        'differs from the record written when packing',
        resumed=2,
    ),
    Case(
        'record-digest-edited',
        json_file('shard_00000.json', lambda d: d.update(sha256='f' * 64)),
        'packed/shard_00000.json',
        'differs from the record written when packing',
        resumed=2,
    ),
    # -------------------------------------------------------------- shards
    Case(
        'shard-deleted',
        delete('packed/shard_00002.npy'),
        'packed/shard_00002.npy',
        'missing',
        resumed=2,
    ),
    Case(
        'shard-cut-by-a-byte',
        raw('packed/shard_00000.npy', lambda b: b[:-1]),
        'packed/shard_00000.npy',
        r'73855 bytes, 73856 when packed \(truncated, extended or replaced\)',
        resumed=2,
    ),
    Case(
        'shard-extended-by-a-byte',
        raw('packed/shard_00001.npy', lambda b: b + b'\0'),
        'packed/shard_00001.npy',
        r'73857 bytes, 73856 when packed',
        resumed=2,
    ),
    Case(
        'shard-0-overwritten-by-shard-1',
        copy('packed/shard_00001.npy', 'packed/shard_00000.npy'),
        'packed/shard_00000.npy',
        r'content differs from the shard that was packed \(overwritten by another '
        r'file of the same size\?\)',
        resumed=2,
    ),
    Case(
        'shard-1-overwritten-by-shard-0',
        copy('packed/shard_00000.npy', 'packed/shard_00001.npy'),
        'packed/shard_00001.npy',
        'content differs from the shard that was packed',
        resumed=2,
    ),
    Case(
        'shards-swapped',
        swap_files('packed/shard_00000.npy', 'packed/shard_00001.npy'),
        'packed/shard_00000.npy',
        'content differs from the shard that was packed',
        resumed=1,
    ),
    Case(
        'shard-zeroed',
        raw(
            'packed/shard_00001.npy',
            lambda b: b[:HEADER_BYTES] + bytes(len(b) - HEADER_BYTES),
        ),
        'packed/shard_00001.npy',
        'content differs from the shard that was packed',
        resumed=2,
    ),
    Case(
        'shard-reshaped',
        resave('shard_00000.npy', lambda a: a.reshape(3, 12, 64, 16)),
        MANIFEST,
        r'height x width is 32 x 32, but shard_00000\.npy holds patches of 64 x 16',
        resumed=2,
    ),
    Case(
        'shard-retyped',
        resave('shard_00001.npy', lambda a: a.view(np.int16)),
        'packed/shard_00001.npy',
        r'holds a int16 array of shape \(3, 12, 32, 32\), but manifest\.json says '
        r'uint16 \(3, 12, 32, 32\)',
        resumed=2,
    ),
    Case(
        'shard-fortran-order',
        resave('shard_00001.npy', np.asfortranarray),
        'packed/shard_00001.npy',
        'holds a Fortran-order uint16 array',
        resumed=2,
    ),
    Case(
        'shard-not-npy',
        raw('packed/shard_00002.npy', lambda b: bytes(reversed(b))),
        'packed/shard_00002.npy',
        r'not a readable \.npy file \(',
        resumed=2,
    ),
    *(
        Case(
            f'bit-flip-{name}-at-{offset}',
            flip(name, offset),
            f'packed/{name}',
            'content differs from the shard that was packed',
            resumed=2,
        )
        for name, size in [('shard_00000.npy', SHARD_BYTES), ('shard_00002.npy', 49280)]
        for offset in (HEADER_BYTES, size // 2 - 1, size - 1)
        if sampled(offset, size)
    ),
    *(
        Case(
            f'bit-flip-{name}-at-{offset}-between-samples',
            flip(name, offset),
            f'packed/{name}',
            'damaged: its SHA-256 is not the one recorded when it was packed',
            resumed=2,
            full_only=True,
            advice=DELETE_SHARD,
        )
        for name in ('shard_00000.npy', 'shard_00001.npy')
        for offset in gaps()
    ),
    # ------------------------------------------------------------- sources
    *(
        Case(
            f'source-{i}-replaced-by-another',
            copy(f'images/patch_{(i + 1) % 8}.tif', f'images/patch_{i}.tif'),
            f'images/patch_{i}.tif',
            r'\d+ bytes, \d+ when it was packed: the GeoTIFF changed after packing, '
            'so its packed patch is stale',
            resumed=2,
            advice=DELETE_SHARD,
            shard=f'packed/shard_0000{i // 3}.npy',
        )
        for i in (0, 4, 7)
    ),
    *(
        Case(
            f'source-{i}-modified-same-size',
            retag(f'patch_{i}.tif', keep_time=False),
            f'images/patch_{i}.tif',
            r'content differs from when it was packed \(replaced or modified after '
            r'packing\), so its packed patch is stale',
            resumed=2,
            advice=DELETE_SHARD,
            shard=f'packed/shard_0000{i // 3}.npy',
        )
        for i in (0, 4, 7)
    ),
    *(
        Case(
            f'source-{i}-modified-same-size-and-time',
            retag(f'patch_{i}.tif', keep_time=True),
            f'images/patch_{i}.tif',
            r'content differs from when it was packed',
            resumed=2,
            full_only=True,
            advice=DELETE_SHARD,
            shard=f'packed/shard_0000{i // 3}.npy',
        )
        for i in (0, 4, 7)
    ),
    Case(
        'source-re-encoded',
        reencode('patch_5.tif'),
        'images/patch_5.tif',
        r'\d+ bytes, 31904 when it was packed: the GeoTIFF changed after packing',
        resumed=2,
        advice=DELETE_SHARD,
        shard='packed/shard_00001.npy',
    ),
]
CASE_PARAMS = [pytest.param(case, id=case.name) for case in CASES]


def advice(case: Case, root: Path) -> str:
    command = f'`torchgeo-satclip pack {root} --patch-size {SIZE}`'
    if case.advice == DELETE_SHARD:
        shard = root / case.shard
        return f'delete {shard} and run {command}, which redoes that shard only'
    if case.advice == 'v1':
        return f'pack it again: {command}'
    return f'{command} (it keeps the shards that check out and redoes the rest)'


def message(case: Case, root: Path) -> str:
    return re.escape(str(root / case.file)) + '(, |: )' + case.pattern


@pytest.mark.parametrize('case', CASE_PARAMS)
def test_open_refuses(root: Path, case: Case) -> None:
    case.corrupt(root)
    before = snapshot(root)
    with pytest.raises(PackedLayoutError, match=message(case, root)) as info:
        S2100K(root, patch_size=SIZE, verify=case.full_only)
    assert advice(case, root) in str(info.value)
    assert snapshot(root) == before


@pytest.mark.parametrize('case', CASE_PARAMS)
def test_verify_refuses(root: Path, case: Case) -> None:
    case.corrupt(root)
    with pytest.raises(PackedLayoutError, match=message(case, root)) as info:
        verify_packed(root, patch_size=SIZE, progress=False)
    assert advice(case, root) in str(info.value)


@pytest.mark.parametrize('case', CASE_PARAMS)
def test_cli_verify_refuses(
    root: Path, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    case.corrupt(root)
    before = snapshot(root)
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 1
    )
    err = capsys.readouterr().err
    assert err.startswith('torchgeo-satclip pack: error: ')
    assert re.search(message(case, root), err)
    assert 'Traceback' not in err
    assert snapshot(root) == before


@pytest.mark.parametrize('case', CASE_PARAMS)
def test_advice_repairs(root: Path, case: Case) -> None:
    case.corrupt(root)
    with pytest.raises(PackedLayoutError) as info:
        verify_packed(root, patch_size=SIZE, progress=False)
    if case.advice == DELETE_SHARD:
        (root / case.shard).unlink()
    result = pack_s2_100k(root, patch_size=SIZE, shard_size=3, progress=False)
    assert result.num_resumed_shards == case.resumed, str(info.value)
    checked = verify_packed(root, patch_size=SIZE, progress=False)
    assert (checked.num_samples, checked.num_sources_checked) == (8, 8)
    assert_serves_the_geotiffs(root)


def assert_serves_the_geotiffs(root: Path) -> None:
    packed = S2100K(root, patch_size=SIZE)
    geotiff = S2100K(root, patch_size=SIZE, layout='geotiff')
    assert packed.layout == 'packed'
    batch = packed.__getitems__(list(range(8)))
    for i in range(8):
        assert torch.equal(packed[i]['image'], geotiff[i]['image'])
        assert torch.equal(batch[i]['image'], geotiff[i]['image'])
    assert packed.excluded == geotiff.excluded


# ---------------------------------------------------------------- the rest


def test_intact_layout(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ds = S2100K(root, patch_size=SIZE, verify=True)
    assert ds.layout == 'packed'
    result = verify_packed(root, patch_size=SIZE, progress=False)
    assert (result.num_samples, result.num_shards) == (8, 3)
    assert (result.num_sources_checked, result.num_sources_missing) == (8, 0)
    assert (result.stray_files, result.stray_bytes) == ([], 0)
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 0
    )
    out = capsys.readouterr().out
    assert 'verified' in out
    assert '8 patches in 3 shards' in out
    assert '8 source GeoTIFFs match' in out
    assert 'note' not in out


def test_sources_copied_without_times(root: Path) -> None:
    """New modification times alone: read, compared by content, and recorded."""
    for path in (root / 'images').iterdir():
        os.utime(path, ns=(10**18, 10**18 + 1))
    with pytest.warns(UserWarning, match=r'8 source GeoTIFF\(s\) .* same content'):
        ds = S2100K(root, patch_size=SIZE)
    assert ds.layout == 'packed'
    assert (
        pack_s2_100k(
            root, patch_size=SIZE, shard_size=3, progress=False
        ).num_resumed_shards
        == 3
    )
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert_serves_the_geotiffs(root)


def test_sources_deleted(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = S2100K(root, patch_size=SIZE)[5]['image']
    shutil.rmtree(root / 'images')
    ds = S2100K(root, patch_size=SIZE, verify=True)
    assert torch.equal(ds[5]['image'], expected)
    result = verify_packed(root, patch_size=SIZE, progress=False)
    assert (result.num_sources_checked, result.num_sources_missing) == (0, 8)
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 0
    )
    assert '0 source GeoTIFFs match what was packed; 8 source GeoTIFFs are absent' in (
        capsys.readouterr().out
    )


def test_incomplete_layout(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / 'packed' / 'manifest.json').unlink()
    assert S2100K(root, patch_size=SIZE).layout == 'geotiff'
    with pytest.raises(FileNotFoundError, match='torchgeo-satclip pack'):
        S2100K(root, patch_size=SIZE, layout='packed')
    with pytest.raises(FileNotFoundError, match=r'no complete packed layout'):
        verify_packed(root, patch_size=SIZE, progress=False)
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 2
    )
    assert 'no complete packed layout' in capsys.readouterr().err


def test_index_lists_an_unpacked_file(root: Path) -> None:
    shutil.copy(root / 'images' / 'patch_2.tif', root / 'images' / 'patch_8.tif')
    with (root / 'index.csv').open('a') as f:
        f.write('patch_8.tif,10.5,20.5\n')
    with pytest.raises(
        FileNotFoundError, match=r'1 of 9 files .* packed layout .*patch_8'
    ):
        S2100K(root, patch_size=SIZE)
    with pytest.raises(
        PackedLayoutError,
        match=r'1 of the 9 files listed in .* are not packed \(patch_8\.tif\)',
    ):
        verify_packed(root, patch_size=SIZE, progress=False)
    assert (
        pack_s2_100k(
            root, patch_size=SIZE, shard_size=3, progress=False
        ).num_resumed_shards
        == 2
    )
    assert len(S2100K(root, patch_size=SIZE)) == 9


def test_cli_advice_runs_as_written(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The re-pack command a message gives repairs the layout, run as written.

    The patches are 32 pixels: the command must say so (a bare ``pack ROOT``
    would refuse them as not 256 x 256).
    """
    with (root / 'packed' / 'files.csv').open('a') as f:
        f.write('x\n')
    argv = ['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'torchgeo-satclip pack: error: {root}')
    assert 'PackedLayoutError' not in err
    assert '--debug' not in err
    found = re.search(r're-pack: `torchgeo-satclip ([^`]+)`', err)
    assert found is not None, err
    assert main([*shlex.split(found.group(1)), '--quiet']) == 0
    assert main(argv) == 0
    assert_serves_the_geotiffs(root)


def test_verify_another_patch_size(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking 32-pixel patches as 256-pixel ones says which size they have."""
    before = snapshot(root)
    hashed: list[Any] = []

    def sha256_file(*a: Any) -> str:
        hashed.append(a)
        return 'x'

    monkeypatch.setattr(s2_100k_files, 'sha256_file', sha256_file)
    monkeypatch.setattr(
        s2_100k_files._Checker, 'hash_shards', lambda *a: hashed.append(a)
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            f'{root / "packed" / "manifest.json"}: packed patches are 32 x 32 '
            'pixels, but the dataset expects 256 x 256 (patch_size); pass '
            'patch_size=(32, 32) (--patch-size 32) if every patch of this '
            'dataset has that size'
        ),
    ):
        verify_packed(root, progress=False)
    assert hashed == []  # refused from manifest.json, before hashing anything
    with pytest.raises(ValueError, match='expects 256 x 256'):
        S2100K(root, verify=True)
    assert hashed == []
    monkeypatch.undo()
    with pytest.raises(ValueError, match='expects 16 x 32'):
        verify_packed(root, patch_size=(16, 32), progress=False)
    assert main(['pack', '--verify', str(root), '--quiet']) == 2
    assert '(--patch-size 32)' in capsys.readouterr().err
    assert snapshot(root) == before


def test_pack_command() -> None:
    root = Path('/data/s2')
    assert pack_command(root) == '`torchgeo-satclip pack /data/s2`'
    assert pack_command(root, (256, 256)) == '`torchgeo-satclip pack /data/s2`'
    assert (
        pack_command(root, (64, 64))
        == '`torchgeo-satclip pack /data/s2 --patch-size 64`'
    )
    assert (
        pack_command(root, (32, 64))
        == "`pack_s2_100k('/data/s2', patch_size=(32, 64))`"
    )
    spaced = Path('/data/my s2')
    assert pack_command(spaced) == "`torchgeo-satclip pack '/data/my s2'`"
    assert shlex.split(pack_command(spaced, (64, 64)).strip('`'))[2] == str(spaced)


def test_verify_cannot_overwrite(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(root)
    assert main(['pack', '--verify', '--overwrite', str(root)]) == 2
    assert 'cannot be combined with --overwrite' in capsys.readouterr().err
    assert snapshot(root) == before


def test_points_mode_checks_the_layout_too(root: Path) -> None:
    swap_names(2, 3)(root)
    with pytest.raises(PackedLayoutError, match='rows swapped'):
        S2100K(root, patch_size=SIZE, mode='points')
    assert len(S2100K(root, patch_size=SIZE, mode='points', layout='geotiff')) == 8


def test_manifest_records(root: Path) -> None:
    """The manifest pins files.csv and every shard and record by size and hash."""
    packed = root / 'packed'
    data = json.loads((packed / 'manifest.json').read_text())
    assert data['version'] == 2
    assert data['checksum'] == 'sha256'

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert data['files_csv'] == {
        'bytes': (packed / 'files.csv').stat().st_size,
        'sha256': digest(packed / 'files.csv'),
    }
    for k, shard in enumerate(data['shards']):
        npy = packed / f'shard_{k:05d}.npy'
        assert shard['name'] == npy.name
        assert shard['bytes'] == npy.stat().st_size
        assert shard['sha256'] == digest(npy)
        assert shard['json_sha256'] == digest(npy.with_suffix('.json'))
    lines = (packed / 'files.csv').read_text().splitlines()
    assert (
        lines[0]
        == 'fn,shard,row,nodata_fraction,source_bytes,source_mtime_ns,source_sha256'
    )
    fn, shard, row, fraction, size, mtime, sha = lines[4].split(',')
    source = root / 'images' / fn
    assert (fn, shard, row, fraction) == ('patch_3.tif', '1', '0', '1.0')
    assert int(size) == source.stat().st_size
    assert int(mtime) == source.stat().st_mtime_ns
    assert sha == digest(source)


@pytest.mark.parametrize('i', [0, 4, 7])
@pytest.mark.parametrize(
    'change',
    [
        pytest.param(
            lambda i: copy(f'images/patch_{(i + 1) % 8}.tif', f'images/patch_{i}.tif'),
            id='replaced',
        ),
        pytest.param(lambda i: retag(f'patch_{i}.tif', keep_time=False), id='modified'),
        pytest.param(lambda i: reencode(f'patch_{i}.tif'), id='re-encoded'),
    ],
)
def test_pack_redoes_the_shard_of_a_changed_source(
    root: Path, i: int, change: Callable[[int], Corruption]
) -> None:
    """A source with a new size or time and new content: pack alone redoes its shard."""
    change(i)(root)
    assert (
        pack_s2_100k(
            root, patch_size=SIZE, shard_size=3, progress=False
        ).num_resumed_shards
        == 2
    )
    verify_packed(root, patch_size=SIZE, progress=False)
    assert_serves_the_geotiffs(root)


def _manifest_of_version_1(root: Path) -> None:
    """An earlier layout's manifest.json of version 1; the records stay."""
    path = root / 'packed' / 'manifest.json'
    data = json.loads(path.read_text())
    data['version'] = 1
    data['shards'] = [s['name'] for s in data['shards']]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize('offset', gaps())
@pytest.mark.parametrize(
    'before',
    [
        pytest.param(lambda root: None, id='complete'),
        pytest.param(
            lambda root: (root / 'packed' / 'manifest.json').unlink(),
            id='interrupted',
        ),
        pytest.param(_manifest_of_version_1, id='manifest-of-version-1'),
    ],
)
def test_pack_redoes_a_shard_damaged_between_samples(
    root: Path, offset: int, before: Corruption
) -> None:
    """A bit flip only the full hash sees: pack alone, no shard deleted, redoes it.

    Reused unchecked, the shard kept its flip under a new manifest that pinned
    the hash of the shard as packed: a layout that ``pack`` had just reported
    done, and that ``verify`` refused.
    """
    flip('shard_00001.npy', offset)(root)
    before(root)
    result = pack_s2_100k(root, patch_size=SIZE, shard_size=3, progress=False)
    assert result.num_resumed_shards == 2
    verify_packed(root, patch_size=SIZE, progress=False)
    assert_serves_the_geotiffs(root)


def test_stray_shards_reported(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shards of an earlier pack the manifest does not list: reported, not damage.

    As a version of the package that did not delete them leaves them: packed
    in shards of 2 (4 shards), then again in shards of 3 (3 shards) without
    deleting the fourth.
    """
    packed = root / 'packed'
    shutil.rmtree(packed)
    pack_s2_100k(root, patch_size=SIZE, shard_size=2, progress=False)
    monkeypatch.setattr(pack_module, '_remove_orphan_shards', lambda out, n: [])
    pack_s2_100k(root, patch_size=SIZE, shard_size=3, progress=False)
    monkeypatch.undo()
    strays = [packed / 'shard_00003.json', packed / 'shard_00003.npy']
    # not strays: names shard_name never writes, folders, temporaries, others
    (packed / 'shard_7.npy').write_bytes(b'x')
    (packed / 'shard_00009.npy.bak').write_bytes(b'x')
    (packed / 'shard_00004.npy').mkdir()
    (packed / 'notes.txt').write_text('mine')
    size = sum(path.stat().st_size for path in strays)
    assert size > 2 * 12 * SIZE * SIZE * 2  # a shard of two patches, and its record
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert_serves_the_geotiffs(root)  # harmless to reading

    result = verify_packed(root, patch_size=SIZE, progress=False)
    assert result.num_shards == 3
    assert result.stray_files == strays
    assert result.stray_bytes == size
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 0
    )  # no damage
    out = capsys.readouterr().out
    assert '8 patches in 3 shards' in out
    assert (
        f'note: 2 file(s) in {packed} are shards of an earlier pack that '
        'manifest.json does not list (shard_00003.json, shard_00003.npy; '
        '0.00 GiB): never read, so the layout is intact, but they take disk '
        f'space; delete them, or run `torchgeo-satclip pack {root} --patch-size '
        f'{SIZE}`, which deletes them and keeps every shard of the layout' in out
    )

    # what the note says: packing again deletes them, and nothing else
    assert (
        pack_s2_100k(
            root, patch_size=SIZE, shard_size=3, progress=False
        ).num_resumed_shards
        == 3
    )
    assert not any(path.exists() for path in strays)
    assert (packed / 'shard_7.npy').is_file()
    assert (packed / 'shard_00004.npy').is_dir()
    result = verify_packed(root, patch_size=SIZE, progress=False)
    assert (result.stray_files, result.stray_bytes) == ([], 0)
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 0
    )
    assert 'note' not in capsys.readouterr().out


def test_many_stray_shards_shown_in_part(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = root / 'packed'
    for number in range(3, 10):
        shutil.copy(packed / 'shard_00002.npy', packed / f'shard_{number:05d}.npy')
    result = verify_packed(root, patch_size=SIZE, progress=False)
    assert [path.name for path in result.stray_files] == [
        f'shard_{number:05d}.npy' for number in range(3, 10)
    ]
    assert (
        main(['pack', '--verify', str(root), '--patch-size', str(SIZE), '--quiet']) == 0
    )
    out = capsys.readouterr().out
    assert 'note: 7 file(s) in' in out
    assert 'shard_00008.npy, and 1 more; ' in out
    assert 'shard_00009' not in out


def test_shard_damaged_after_open_names_the_repair(root: Path) -> None:
    """A shard replaced between the open and its first read: refused on read."""
    ds = S2100K(root, patch_size=SIZE)
    shard = root / 'packed' / 'shard_00001.npy'
    shard.write_bytes(b'\0' * shard.stat().st_size)
    with pytest.raises(
        PackedLayoutError,
        match=re.escape(f'{shard}: cannot open packed shard (')
        + '.*'
        + re.escape(
            f'delete it and run `torchgeo-satclip pack {root} --patch-size {SIZE}`, '
            'which redoes that shard only'
        ),
    ):
        ds[4]
