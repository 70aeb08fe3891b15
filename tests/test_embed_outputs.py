"""What ``embed`` writes: empty inputs, exact values, permissions, full disks,
non-finite weights and embeddings, and the checks made before the work."""

import csv
import errno
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchgeo_satclip.embed import EmbedError, embed_file, embed_points
from torchgeo_satclip.embed import write as embed_write
from torchgeo_satclip.models import (
    CheckpointError,
    LocationEncoder,
    SirenNet,
    build_location_encoder,
)

REPO = Path(__file__).parents[1]
DIM = 4


@pytest.fixture
def encoder() -> LocationEncoder:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=3, embed_dim=DIM, capacity=8)


def write_empty(path: Path) -> None:
    if path.suffix == '.csv':
        path.write_text('id,lon,lat\n', encoding='utf-8')
    elif path.suffix == '.parquet':
        pq.write_table(
            pa.table(
                {
                    'id': pa.array([], pa.int32()),
                    'lon': pa.array([], pa.float64()),
                    'lat': pa.array([], pa.float64()),
                }
            ),
            path,
        )
    else:
        path.write_text(
            json.dumps({'type': 'FeatureCollection', 'features': []}), encoding='utf-8'
        )


@pytest.mark.parametrize('source', ['.csv', '.parquet', '.geojson'])
@pytest.mark.parametrize('output', ['.parquet', '.csv', '.npy', 'list'])
def test_no_points_give_a_valid_empty_file(
    source: str, output: str, tmp_path: Path, encoder: LocationEncoder
) -> None:
    src = tmp_path / f'in{source}'
    write_empty(src)
    layout = 'list' if output == 'list' else 'columns'
    out = tmp_path / ('out.parquet' if output == 'list' else f'out{output}')
    result = embed_file(encoder, src, out, progress=False, layout=layout)  # type: ignore[arg-type]
    assert result.num_points == 0
    ids = [] if source == '.geojson' else ['id']
    emb = ['embedding'] if layout == 'list' else [f'emb_{i}' for i in range(DIM)]
    if out.suffix == '.npy':
        assert np.load(out).shape == (0, DIM)
    elif out.suffix == '.csv':
        assert out.read_text() == ','.join([*ids, 'lon', 'lat', *emb]) + '\n'
    else:
        table = pq.read_table(out)
        assert table.num_rows == 0
        assert table.column_names == [*ids, 'lon', 'lat', *emb]
        if source == '.parquet':
            assert table.schema.field('id').type == pa.int32()  # the input's type
        assert table.schema.field('lon').type == pa.float64()
        kind = table.schema.field(emb[0]).type
        assert kind == (
            pa.list_(pa.float32(), DIM) if layout == 'list' else pa.float32()
        )


def test_csv_output_is_exact(tmp_path: Path, encoder: LocationEncoder) -> None:
    """Every float32 and float64 reads back bit for bit; awkward ids survive."""
    names = ['plain', 'a, b', 'say "hi"', 'two\nlines', 'é', '', ' x ']
    rng = np.random.default_rng(0)
    lonlat = np.column_stack([rng.uniform(-180, 180, 7), rng.uniform(-90, 90, 7)])
    src = tmp_path / 'in.csv'
    with src.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['name', 'lon', 'lat'])
        writer.writerows(
            [
                (n, repr(float(x)), repr(float(y)))
                for n, (x, y) in zip(names, lonlat, strict=True)
            ]
        )
    out = tmp_path / 'out.csv'
    embed_file(encoder, src, out, batch_size=3, progress=False)
    with out.open(newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert [r['name'] for r in rows] == names
    got = np.array([[float(r['lon']), float(r['lat'])] for r in rows])
    np.testing.assert_array_equal(got, lonlat)
    emb = np.array([[np.float32(r[f'emb_{i}']) for i in range(DIM)] for r in rows])
    with torch.no_grad():
        want = encoder.eval()(torch.from_numpy(lonlat)).float().numpy()
    np.testing.assert_array_equal(emb, want)


@pytest.mark.parametrize(
    ('kind', 'written'),
    [
        (pa.large_string(), ['plain', 'a, b', 'say "hi"', '']),
        (pa.string_view(), ['plain', 'a, b', 'say "hi"', '']),
        (pa.binary_view(), [b'plain'.hex(), '612c2062', '7361792022686922', '']),
    ],
)
def test_csv_output_of_large_and_view_strings(
    kind: pa.DataType, written: list[str], tmp_path: Path, encoder: LocationEncoder
) -> None:
    """Text columns that are not plain ``string`` (pandas 3 writes
    ``large_string``, Polars ``string_view``) are written, quoted as needed;
    ``binary_view`` as hex, like ``binary``."""
    names = ['plain', 'a, b', 'say "hi"', None]
    src = tmp_path / 'in.parquet'
    pq.write_table(
        pa.table(
            {
                'name': pa.array(names, pa.string()).cast(kind),
                'lon': [1.0, 2.0, 3.0, 4.0],
                'lat': [5.0, 6.0, 7.0, 8.0],
            }
        ),
        src,
    )
    out = tmp_path / 'out.csv'
    embed_file(encoder, src, out, batch_size=3, progress=False)
    with out.open(newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert [r['name'] for r in rows] == written
    assert [float(r['lat']) for r in rows] == [5.0, 6.0, 7.0, 8.0]


@pytest.mark.parametrize('suffix', ['.parquet', '.csv', '.npy'])
@pytest.mark.parametrize('mode', [0o600, 0o640, 0o604])
def test_overwrite_keeps_the_mode(
    suffix: str, mode: int, tmp_path: Path, encoder: LocationEncoder
) -> None:
    src = tmp_path / 'in.csv'
    src.write_text('id,lon,lat\na,1,2\n')
    out = tmp_path / f'out{suffix}'
    out.write_text('old')
    out.chmod(mode)
    embed_file(encoder, src, out, progress=False, overwrite=True)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert out.read_bytes() != b'old'


def test_new_output_follows_the_umask(tmp_path: Path, encoder: LocationEncoder) -> None:
    src = tmp_path / 'in.csv'
    src.write_text('id,lon,lat\na,1,2\n')
    old = os.umask(0o027)
    try:
        embed_file(encoder, src, tmp_path / 'out.npy', progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / 'out.npy').stat().st_mode) == 0o640


def many_points(path: Path, n: int) -> Path:
    lon = np.linspace(-179, 179, n)
    lat = np.linspace(-89, 89, n)
    lines = [
        f'{i},{float(x)!r},{float(y)!r}'
        for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    ]
    path.write_text('id,lon,lat\n' + '\n'.join(lines) + '\n', encoding='utf-8')
    return path


def test_npy_reserves_its_space_first(
    tmp_path: Path, encoder: LocationEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk too small for the array is found before any point is embedded."""
    src = many_points(tmp_path / 'in.csv', 10)
    reserved = []

    def full(fd: int, offset: int, length: int) -> None:
        reserved.append(length)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def no_embedding(*args: object) -> None:
        raise AssertionError('embedded before the space was reserved')

    monkeypatch.setattr(os, 'posix_fallocate', full)
    monkeypatch.setattr(type(encoder), 'forward', no_embedding)
    with pytest.raises(
        EmbedError,
        match=r'out\.npy: no space left on device after 0 of about 10 points',
    ):
        embed_file(encoder, src, tmp_path / 'out.npy', progress=False)
    assert reserved == [128 + 10 * DIM * 4]  # the header and 10 float32 rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv']


@pytest.mark.parametrize('suffix', ['.parquet', '.csv', '.npy'])
@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_full_disk_while_writing(
    suffix: str,
    code: int,
    tmp_path: Path,
    encoder: LocationEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = many_points(tmp_path / 'in.csv', 10)
    sinks = {
        '.parquet': embed_write.ParquetSink,
        '.csv': embed_write.CsvSink,
        '.npy': embed_write.NpySink,
    }
    sink = sinks[suffix]
    original = sink.write
    calls = []

    def write(self: object, *args: object) -> None:
        calls.append(1)
        if len(calls) == 2:  # the second batch: the first was written
            # pyarrow reports the system's error in its message
            raise OSError(
                f'[Errno {code}] Error writing bytes to file. Detail: {os.strerror(code)}'
            )
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sink, 'write', write)
    out = tmp_path / f'out{suffix}'
    reason = os.strerror(code).lower()
    with pytest.raises(
        EmbedError, match=rf'out\{suffix}: {reason} after 4 of about 10 points'
    ):
        embed_file(encoder, src, out, batch_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv']


LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
from torchgeo_satclip.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_real_file_size_limit(tmp_path: Path) -> None:
    """Writes refused by the system (RLIMIT_FSIZE): status 1, one line, no leftovers.

    The ``.npy`` writer used to write through a memory map over a sparse file,
    where a full disk is a SIGBUS; it now reserves the space and writes.
    """
    suffix = '.npy'
    src = many_points(tmp_path / 'in.csv', 200)
    out = tmp_path / f'out{suffix}'
    done = subprocess.run(
        [
            sys.executable,
            '-c',
            LIMITED,
            'embed',
            str(src),
            str(out),
            '--quiet',
            '--legendre-polys',
            '2',
        ],
        env={**os.environ, 'PYTHONPATH': str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count('\n') == 1
    assert f'out{suffix}: file too large after ' in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv']
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the test process is not limited


def test_non_finite_weights_are_refused(
    tmp_path: Path, encoder: LocationEncoder
) -> None:
    src = many_points(tmp_path / 'in.csv', 3)
    state = encoder.state_dict()
    name = next(k for k in state if k.endswith('weight'))
    state[name][0, 0] = float('nan')
    checkpoint = tmp_path / 'nan.pt'
    torch.save(state, checkpoint)
    out = tmp_path / 'out.parquet'
    with pytest.raises(CheckpointError, match=r'(?i)non-finite|nan'):
        embed_points(src, out, weights=str(checkpoint), progress=False)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv', 'nan.pt']


@pytest.mark.parametrize('suffix', ['.parquet', '.csv', '.npy'])
def test_non_finite_embeddings_are_refused(
    suffix: str, tmp_path: Path, encoder: LocationEncoder
) -> None:
    """Finite weights whose output overflows float32: refused, naming the point."""
    src = tmp_path / 'in.csv'
    src.write_text('id,lon,lat\na,1,2\nb,3,4\nc,5,6\n')
    with torch.no_grad():
        nnet = encoder.double().nnet
        assert isinstance(nnet, SirenNet)
        assert nnet.last_layer.bias is not None
        nnet.last_layer.bias[0] = 1e300  # finite in float64
    out = tmp_path / f'out{suffix}'
    with pytest.raises(
        EmbedError,
        match=r'point 1: the encoder gave a non-finite embedding for \(lon, lat\) = \(1\.0, 2\.0\)',
    ):
        embed_file(encoder, src, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv']


def test_checked_before_the_work(tmp_path: Path, encoder: LocationEncoder) -> None:
    src = many_points(tmp_path / 'in.csv', 3)
    (tmp_path / 'file').write_text('x')
    (tmp_path / 'folder.parquet').mkdir()
    for output, match in [
        (tmp_path / 'o.txt', 'output must end in'),
        (src, 'is the input file'),
        (tmp_path / 'folder.parquet', 'is a folder'),
        (tmp_path / 'file' / 'out.parquet', r'file is not a folder'),
    ]:
        with pytest.raises(ValueError, match=match):
            embed_file(encoder, src, output, progress=False, overwrite=True)
    same = tmp_path / 'same.parquet'
    pq.write_table(pa.table({'lon': [1.0], 'lat': [2.0]}), same)
    with pytest.raises(ValueError, match='is the input file'):
        embed_file(encoder, same, same, progress=False, overwrite=True)
    with pytest.raises(ValueError, match='input must end in'):
        embed_file(encoder, tmp_path / 'file', tmp_path / 'o.npy', progress=False)
    for batch_size in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match='batch_size'):
            embed_file(
                encoder,
                src,
                tmp_path / 'o.npy',
                batch_size=batch_size,  # type: ignore[arg-type]
                progress=False,
            )
    for device, match in [('foo', 'is not a torch device'), ('xpu', 'not supported')]:
        with pytest.raises(ValueError, match=match):
            embed_file(encoder, src, tmp_path / 'o.npy', device=device, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no CUDA device is available'):
            embed_file(encoder, src, tmp_path / 'o.npy', device='cuda', progress=False)
    with pytest.raises(ValueError, match='layout'):
        embed_file(encoder, src, tmp_path / 'o.parquet', layout='rows', progress=False)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match='does not exist'):
        embed_file(
            encoder, tmp_path / 'missing.csv', tmp_path / 'o.npy', progress=False
        )
    (tmp_path / 'dir.csv').mkdir()
    with pytest.raises(ValueError, match='is not a file'):
        embed_file(encoder, tmp_path / 'dir.csv', tmp_path / 'o.npy', progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'dir.csv',
        'file',
        'folder.parquet',
        'in.csv',
        'same.parquet',
    ]


def test_cli_run_time_failure_is_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchgeo_satclip.cli import main

    src = many_points(tmp_path / 'in.csv', 3)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'posix_fallocate', full)
    argv = [
        'embed',
        str(src),
        str(tmp_path / 'o.npy'),
        '--legendre-polys',
        '2',
        '--quiet',
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert 'no space left on device' in err
    with pytest.raises(EmbedError, match='no space left'):
        main(['--debug', *argv])  # the traceback, for a bug report
    assert main([*argv[:2], str(tmp_path / 'o.npy'), '--device', 'foo', '--quiet']) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.csv']


def test_cli_interrupted_is_status_130(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchgeo_satclip.embed
    from torchgeo_satclip.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torchgeo_satclip.embed, 'embed_points', interrupted)
    src = many_points(tmp_path / 'in.csv', 3)
    assert main(['embed', str(src), str(tmp_path / 'o.npy'), '--quiet']) == 130
    assert capsys.readouterr().err == 'torchgeo-satclip embed: interrupted\n'


def test_csv_batches_are_joined_in_bounded_chunks(
    tmp_path: Path, encoder: LocationEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's CSV text is joined and written in chunks of at most
    ``_CSV_CHUNK_BYTES`` (Arrow text has 32-bit offsets: one array of a whole
    batch over 2 GiB failed partway through a run); the file is the same."""
    src = many_points(tmp_path / 'in.csv', 50)
    whole = tmp_path / 'whole.csv'
    embed_file(encoder, src, whole, batch_size=50, progress=False)
    sizes: list[int] = []
    original = embed_write.CsvSink.__init__

    class Recorder:
        def __init__(self, handle: object) -> None:
            self.inner = handle

        def write(self, data: object) -> int:
            sizes.append(memoryview(data).nbytes)  # type: ignore[arg-type]
            return self.inner.write(data)  # type: ignore[attr-defined,no-any-return]

        def close(self) -> None:
            self.inner.close()  # type: ignore[attr-defined]

    def init(self: embed_write.CsvSink, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        self.handle = Recorder(self.handle)  # type: ignore[assignment]

    limit = 300
    monkeypatch.setattr(embed_write, '_CSV_CHUNK_BYTES', limit, raising=False)
    monkeypatch.setattr(embed_write.CsvSink, '__init__', init)
    chunked = tmp_path / 'chunked.csv'
    embed_file(encoder, src, chunked, batch_size=50, progress=False)
    assert chunked.read_bytes() == whole.read_bytes()
    assert len(sizes) > 5  # (the header line was written before the recorder)
    assert max(sizes) <= limit
    # a row longer than the limit is written alone, whole
    monkeypatch.setattr(embed_write, '_CSV_CHUNK_BYTES', 10)
    sizes.clear()
    alone = tmp_path / 'alone.csv'
    embed_file(encoder, src, alone, batch_size=50, progress=False)
    assert alone.read_bytes() == whole.read_bytes()
    assert len(sizes) == 50


def test_csv_output_reads_back_as_floats_with_pandas(
    tmp_path: Path, encoder: LocationEncoder
) -> None:
    """Integral floats were written as integers ('5', '-0'), so pandas read a
    grid's lon and lat, and a float column of whole numbers, as int64 (and
    -0.0 as 0), not the float64 that the Parquet output has."""
    import pandas as pd
    import pyarrow.csv as pa_csv

    src = tmp_path / 'in.parquet'
    pq.write_table(
        pa.table(
            {
                'height': pa.array([100.0, -0.0, 2.0], pa.float64()),
                'weight': pa.array([1.0, None, 3.0], pa.float32()),
                'lon': [-180.0, 0.0, 10.0],
                'lat': [-90.0, 45.0, 0.0],
            }
        ),
        src,
    )
    out = tmp_path / 'out.csv'
    embed_file(encoder, src, out, progress=False)
    parquet = tmp_path / 'out.parquet'
    embed_file(encoder, src, parquet, progress=False)
    want = pd.read_parquet(parquet)
    got = pd.read_csv(out)
    for name in ('height', 'weight', 'lon', 'lat'):
        assert got[name].dtype == np.float64, name
    np.testing.assert_array_equal(got[['lon', 'lat']], want[['lon', 'lat']])
    np.testing.assert_array_equal(got['height'], want['height'])
    assert np.signbit(got['height'][1])  # -0.0 kept its sign
    np.testing.assert_array_equal(got['weight'], want['weight'])
    emb = [f'emb_{i}' for i in range(DIM)]
    np.testing.assert_array_equal(got[emb].astype(np.float32), want[emb])
    table = pa_csv.read_csv(out)  # pyarrow infers the same types
    for name in ('height', 'lon', 'lat', *emb):
        assert pa.types.is_floating(table.schema.field(name).type), name


@pytest.mark.parametrize('layout', ['columns', 'list'])
def test_parquet_input_columns_keep_their_statistics_when_nested(
    tmp_path: Path, encoder: torch.nn.Module, layout: str
) -> None:
    """The writer keeps min/max statistics, dictionary encoding and
    compression for the input's own columns, but named them by column name,
    which matches a flat column only: a list, fixed-size list or struct
    input column (stored as leaf columns such as ``tags.list.element``) lost
    all three, so pyarrow saw no statistics to filter its row groups by."""
    source = tmp_path / 'in.parquet'
    pq.write_table(
        pa.table(
            {
                'name': ['a', 'b', 'c'],
                'tags': pa.array([[1, 2], [3], [4, 5, 6]], pa.list_(pa.int64())),
                'pair': pa.array(
                    [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], pa.list_(pa.float64(), 2)
                ),
                'site': pa.array([{'code': 7}, {'code': 8}, {'code': 9}]),
                'lon': [0.0, 10.0, 20.0],
                'lat': [1.0, 2.0, 3.0],
            }
        ),
        source,
    )
    out = tmp_path / 'out.parquet'
    embed_file(encoder, source, out, progress=False, device='cpu', layout=layout)  # type: ignore[arg-type]
    group = pq.ParquetFile(out).metadata.row_group(0)
    columns = {
        group.column(i).path_in_schema: group.column(i)
        for i in range(group.num_columns)
    }
    own = [
        'name',
        'tags.list.element',
        'pair.list.element',
        'site.code',
        'lon',
        'lat',
    ]
    for path in own:
        column = columns.pop(path)
        assert column.is_stats_set, path
        assert column.statistics.has_min_max, path
        assert column.compression == 'SNAPPY', path
    for path, column in columns.items():  # the embedding's: neither
        assert path.startswith(('emb_', 'embedding')), path
        assert not column.is_stats_set, path
        assert column.compression == 'UNCOMPRESSED', path
    assert pq.read_table(out).column('tags').to_pylist() == [[1, 2], [3], [4, 5, 6]]
