import argparse
import importlib
import importlib.metadata
import inspect
import logging
import os
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

import torchgeo_satclip
import torchgeo_satclip.builders
from torchgeo_satclip.cli import build_parser, main

MODELS = 'torchgeo_satclip.models.location_encoder'
PACK = 'torchgeo_satclip.datasets.pack'
DEMO = 'torchgeo_satclip.datasets.demo'
PROBE = 'torchgeo_satclip.evaluation.probe'
TASKS = 'torchgeo_satclip.evaluation.tasks'
PLOTS = 'torchgeo_satclip.evaluation.plots'
BUILDERS = 'torchgeo_satclip.builders.planetary_computer'


@pytest.fixture
def points_csv(tmp_path: Path) -> Path:
    path = tmp_path / 'points.csv'
    path.write_text('name,lon,lat\nParis,2.35,48.86\nNew York,-74.0,40.7\n')
    return path


def test_embed_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(['embed', '--help'])
    text = capsys.readouterr().out
    for option in [
        '--weights',
        '--lon-column',
        '--lat-column',
        '--batch-size',
        '--device',
        '--overwrite',
        '--layout',
        '--quiet',
        '.parquet',
        'swapped',
    ]:
        assert option in text
    parser = build_parser()
    for name in ('embed', 'probe'):
        for action in subcommand(parser, name)._actions:
            assert action.help, f'{name} {action.dest} has no help'


def test_embed_help_names_what_the_code_accepts() -> None:
    """Every input and output suffix, and both coordinate ranges refused."""
    from torchgeo_satclip.embed.read import INPUT_FORMATS
    from torchgeo_satclip.embed.write import OUTPUT_FORMATS

    embed = subcommand(build_parser(), 'embed')
    helps = {a.dest: str(a.help) for a in embed._actions}
    for suffix in INPUT_FORMATS:
        assert re.search(rf'{re.escape(suffix)}\b', helps['input']), suffix
    for suffix in OUTPUT_FORMATS:
        assert re.search(rf'{re.escape(suffix)}\b', helps['output']), suffix
    description = ' '.join(str(embed.description).split())
    assert 'longitudes outside [-180, 180]' in description
    assert 'latitudes outside [-90, 90]' in description
    assert 'row (Parquet)' in description
    assert 'feature (GeoJSON)' in description


def test_embed_csv_to_parquet_round_trip(points_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / 'emb.parquet'
    args = ['embed', str(points_csv), str(out), '--legendre-polys', '3', '--quiet']
    assert main(args) == 0
    table = pq.read_table(out)
    assert table.column('name').to_pylist() == ['Paris', 'New York']
    assert table.num_columns == 3 + 256
    assert main(args) == 2  # exists: refused
    assert main([*args, '--overwrite', '--layout', 'list']) == 0
    assert pq.read_table(out).column_names == ['name', 'lon', 'lat', 'embedding']


def test_embed_swapped_and_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped = tmp_path / 'swapped.csv'
    swapped.write_text('name,lon,lat\nParis,48.86,2.35\nTokyo,35.7,139.7\n')
    assert main(['embed', str(swapped), str(tmp_path / 'o.parquet'), '--quiet']) == 2
    err = capsys.readouterr().err
    assert 'line 3' in err
    assert 'swapped' in err
    assert not (tmp_path / 'o.parquet').exists()
    bad = tmp_path / 'bad.csv'
    bad.write_text('name,lon,lat\nParis,2.35,48.86\nNowhere,,\n')
    assert main(['embed', str(bad), str(tmp_path / 'o.npy'), '--quiet']) == 2
    assert 'bad.csv, line 3' in capsys.readouterr().err


def test_readme_main_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'cities_embeddings.csv'
    args = [
        'embed',
        'examples/cities.csv',
        str(out),
        '--weights',
        'random',
        '--overwrite',
        '--neighbours',
        '--quiet',
    ]
    assert main(args) == 0
    assert 'Paris' in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 12


def test_probe_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = tmp_path / 'user.csv'
    rows = [
        f'{lon},{lat},{lat * 0.5 + 3}'
        for lon in range(-170, 180, 20)
        for lat in range(-80, 81, 20)
    ]
    user.write_text('lon,lat,value\n' + '\n'.join(rows) + '\n')
    out = tmp_path / 'probe'
    args = [
        'probe',
        '--tasks',
        'air_temperature',
        '--csv',
        f'{user}:value',
        '--encoders',
        'raw',
        'sh',
        '--cv',
        'random',
        '--folds',
        '3',
        '--output-dir',
        str(out),
        '--map-resolution',
        '10',
    ]
    assert main(args) == 0
    text = (out / 'probe_results.md').read_text()
    assert 'air_temperature' in text
    assert 'user:value' in text
    for name in ('probe_results.csv', 'scores.png', 'pca_sh.png'):
        assert (out / name).stat().st_size > 0
    assert main(['probe', '--tasks', 'nope']) == 2


@pytest.mark.parametrize(
    ('kind', 'metric'), [(None, 'R2'), ('classification', 'accuracy')]
)
def test_probe_csv_kind(tmp_path: Path, kind: str | None, metric: str) -> None:
    """25 integer class codes read as a regression target under 'auto' (more
    than 20 numbers), and the CLI had no way to say they are classes."""
    user = tmp_path / 'codes.csv'
    rows = [
        f'{lon},{lat},{(lon // 14 + 13) % 25}'
        for lon in range(-180, 180, 4)
        for lat in range(-80, 81, 20)
    ]
    user.write_text('lon,lat,code\n' + '\n'.join(rows) + '\n', encoding='utf-8')
    out = tmp_path / 'probe'
    args = ['probe', '--csv', f'{user}:code', '--encoders', 'raw', '--cv', 'random']
    args += ['--folds', '2', '--no-plots', '--quiet', '--output-dir', str(out)]
    assert main(args + (['--csv-kind', kind] if kind else [])) == 0
    table = (out / 'probe_results.csv').read_text(encoding='utf-8')
    assert f',{metric},' in table, table


REPO = Path(__file__).parents[1]
#: Imported only when a subcommand runs, never for --help or --version.
HEAVY = ('torch', 'torchgeo', 'lightning', 'numpy', 'torchvision', 'timm')


def subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if a.dest == 'command')
    assert isinstance(sub.choices, dict)
    choice: argparse.ArgumentParser = sub.choices[name]
    return choice


def option(command: str, dest: str) -> argparse.Action:
    parser = subcommand(build_parser(), command)
    return next(a for a in parser._actions if a.dest == dest)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['--version'])
    assert exit_info.value.code == 0
    expected = importlib.metadata.version('torchgeo-satclip')
    assert capsys.readouterr().out == f'torchgeo-satclip {expected}\n'
    assert torchgeo_satclip.__version__ == expected


@pytest.mark.parametrize(
    'argv',
    [
        ['--help'],
        ['--version'],
        ['embed', '--help'],
        ['probe', '--help'],
        ['pack', '--help'],
        ['build', '--help'],
        ['demo-data', '--help'],
    ],
)
def test_help_imports_no_torch(argv: list[str]) -> None:
    """-X importtime lists every module the real entry point imports."""
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    command = [sys.executable, '-X', 'importtime', '-m', 'torchgeo_satclip.cli']
    done = subprocess.run(
        [*command, *argv], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert 'torchgeo-satclip' in done.stdout
    imported = [
        line.rpartition('|')[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith('import time:')
    ]
    assert 'torchgeo_satclip.cli' in imported
    heavy = [name for name in imported if name.split('.')[0] in HEAVY]
    assert not heavy, f'{argv} imported {heavy}'


def test_package_import_is_lazy() -> None:
    code = (
        'import sys, torchgeo_satclip as t\n'
        'assert "torch" not in sys.modules, "import torchgeo_satclip imported torch"\n'
        'assert set(t.__all__) <= set(dir(t))\n'
        'from torchgeo_satclip import LocationEncoder, build_location_encoder\n'
        'from torchgeo_satclip.models import location_encoder as m\n'
        'assert LocationEncoder is m.LocationEncoder\n'
        'assert build_location_encoder is m.build_location_encoder\n'
        'assert all(getattr(t, name) is not None for name in t.__all__)\n'
        'try:\n'
        '    t.nope\n'
        'except AttributeError as error:\n'
        '    assert "nope" in str(error)\n'
        'else:\n'
        '    raise AssertionError("no AttributeError")\n'
    )
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    done = subprocess.run(
        [sys.executable, '-c', code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_shared_options() -> None:
    parser = build_parser()
    expected = {
        'embed': {'seed', 'lon_column', 'lat_column', 'overwrite', 'quiet'},
        'probe': {'seed', 'lon_column', 'lat_column', 'overwrite', 'quiet'},
        'probe-images': {'seed', 'overwrite', 'quiet'},
        'pack': {'overwrite', 'quiet'},
        'build': {'seed', 'quiet'},
        'demo-data': {'seed', 'overwrite', 'quiet'},
    }
    shared = {'seed', 'lon_column', 'lat_column', 'overwrite', 'quiet'}
    for name, dests in expected.items():
        actions = subcommand(parser, name)._actions
        assert {a.dest for a in actions} & shared == dests, name
        for action in actions:
            if action.dest == 'quiet':
                assert action.help == (
                    'no progress bar nor progress lines (results are still printed)'
                )
            if action.dest == 'seed':
                assert action.type is int
                assert action.help is not None
                assert action.help.endswith('(default: 0)')


# (subcommand, option dest, library module, function, parameter)
LIBRARY_DEFAULTS = [
    ('embed', 'weights', 'torchgeo_satclip.embed', 'embed_points', 'weights'),
    ('embed', 'seed', 'torchgeo_satclip.embed', 'embed_points', 'seed'),
    ('embed', 'dtype', 'torchgeo_satclip.embed', 'embed_points', 'dtype'),
    (
        'embed',
        'legendre_polys',
        'torchgeo_satclip.embed',
        'embed_points',
        'legendre_polys',
    ),
    ('embed', 'lon_column', 'torchgeo_satclip.embed', 'embed_file', 'lon_column'),
    ('embed', 'lat_column', 'torchgeo_satclip.embed', 'embed_file', 'lat_column'),
    ('embed', 'lon_column', 'torchgeo_satclip.embed', 'read_points', 'lon_column'),
    ('embed', 'batch_size', 'torchgeo_satclip.embed', 'embed_file', 'batch_size'),
    ('embed', 'device', 'torchgeo_satclip.embed', 'embed_file', 'device'),
    ('embed', 'layout', 'torchgeo_satclip.embed', 'embed_file', 'layout'),
    ('pack', 'shard_size', PACK, 'pack_s2_100k', 'shard_size'),
    ('pack', 'patch_size', PACK, 'pack_s2_100k', 'patch_size'),
    ('pack', 'workers', PACK, 'pack_s2_100k', 'num_workers'),
    ('demo-data', 'n', DEMO, 'make_demo_dataset', 'num_patches'),
    ('demo-data', 'size', DEMO, 'make_demo_dataset', 'size'),
    ('demo-data', 'seed', DEMO, 'make_demo_dataset', 'seed'),
    ('probe', 'seed', PROBE, 'run_probes', 'seed'),
    ('probe', 'seed', TASKS, 'load_task', 'seed'),
    ('probe', 'folds', PROBE, 'run_probes', 'folds'),
    ('probe', 'block_size', PROBE, 'run_probes', 'block_size'),
    ('probe', 'num_points', TASKS, 'load_task', 'num_points'),
    ('probe', 'lon_column', TASKS, 'task_from_csv', 'lon_column'),
    ('probe', 'lat_column', TASKS, 'task_from_csv', 'lat_column'),
    ('probe', 'map_resolution', PLOTS, 'plot_pca_map', 'resolution'),
    (
        'probe',
        'encoders',
        'torchgeo_satclip.evaluation.report',
        'probe_report',
        'encoders',
    ),
    ('probe', 'cv', 'torchgeo_satclip.evaluation.report', 'probe_report', 'splits'),
    ('probe', 'protocols', PROBE, 'run_probes', 'protocols'),
    *[
        ('build', dest, BUILDERS, 'build_dataset', parameter)
        for dest, parameter in [
            ('seed', 'seed'),
            ('start', 'start'),
            ('end', 'end'),
            ('max_cloud_cover', 'max_cloud_cover'),
            ('size', 'size'),
            ('max_nodata', 'max_nodata_fraction'),
            ('items_per_point', 'items_per_point'),
            ('resampling', 'resampling'),
            ('workers', 'workers'),
            ('max_retries', 'max_retries'),
            ('backoff', 'backoff'),
            ('timeout', 'timeout'),
            ('max_candidates', 'max_candidates'),
            ('collection', 'collection'),
            ('dates', 'dates'),
            ('windows', 'windows'),
            ('min_dates', 'min_dates'),
        ]
    ],
]


#: Options that default to None, left out of the library call when not given
#: (pack --verify refuses them, even repeating the default).
LEFT_OUT = {('pack', 'shard_size'), ('pack', 'workers')}


@pytest.mark.parametrize(
    ('command', 'dest', 'module', 'function', 'parameter'), LIBRARY_DEFAULTS
)
def test_defaults_are_the_library_defaults(
    command: str, dest: str, module: str, function: str, parameter: str
) -> None:
    action = option(command, dest)
    func = getattr(importlib.import_module(module), function)
    default = inspect.signature(func).parameters[parameter].default
    value = action.default
    if (command, dest) in LEFT_OUT:  # None: not passed, the library's default
        assert value is None
        assert action.help is not None
        assert action.help.endswith(f'(default: {default})') or (
            f'(default: {default},' in action.help
        )
        return
    assert (tuple(value) if isinstance(value, list) else value) == default
    if action.help and '(default: ' in action.help and isinstance(default, int | str):
        assert f'(default: {default}' in action.help


def test_embed_random_encoder_defaults_are_shown() -> None:
    """--legendre-polys and --seed default to None (refused with --weights other
    than random) and show the values a random encoder then gets."""
    from torchgeo_satclip.embed.pipeline import RANDOM_ENCODER_SEED
    from torchgeo_satclip.models import build_location_encoder

    polys = inspect.signature(build_location_encoder).parameters['legendre_polys']
    for dest, effective in (
        ('legendre_polys', polys.default),
        ('seed', RANDOM_ENCODER_SEED),
    ):
        action = option('embed', dest)
        assert action.default is None
        assert action.help is not None
        assert action.help.endswith(f'(default: {effective})')
        assert '--weights random' in action.help


@pytest.fixture
def location_checkpoint(tmp_path: Path) -> Path:
    """An official-layout checkpoint of a small encoder (L = 3, 4 dimensions)."""
    import torch

    from torchgeo_satclip.models import build_location_encoder, save_official_checkpoint

    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)
    return save_official_checkpoint(encoder, tmp_path / 'location.ckpt')


@pytest.mark.parametrize(
    ('flag', 'value', 'why'),
    [
        ('--legendre-polys', '40', 'bring their own architecture'),
        ('--legendre-polys', '10', 'bring their own architecture'),
        ('--seed', '3', 'are not random'),
        ('--seed', '0', 'are not random'),
    ],
)
def test_embed_refuses_random_encoder_options_with_weights(
    flag: str,
    value: str,
    why: str,
    points_csv: Path,
    location_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """They were silently ignored: the checkpoint's L and weights were used."""
    out = tmp_path / 'out.npy'
    args = ['embed', str(points_csv), str(out), '--weights', str(location_checkpoint)]
    assert main([*args, flag, value, '--quiet']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert (
        f'{flag} {value} applies to a random encoder (--weights random) only: the '
        f'weights {location_checkpoint} {why}; leave {flag} out'
    ) in err
    assert not out.exists()
    assert main([*args, '--quiet']) == 0  # the weights alone
    import numpy as np

    assert np.load(out).shape == (2, 4)


def test_embed_random_encoder_options_still_apply(
    points_csv: Path, tmp_path: Path
) -> None:
    """With --weights random the defaults are L = 10 and seed 0, as before."""
    import numpy as np

    def embed(name: str, *extra: str) -> np.ndarray:
        out = tmp_path / f'{name}.npy'
        assert main(['embed', str(points_csv), str(out), '--quiet', *extra]) == 0
        return np.asarray(np.load(out))

    default = embed('default')
    explicit = embed('explicit', '--weights', 'random', '--legendre-polys', '10')
    np.testing.assert_array_equal(default, explicit)
    np.testing.assert_array_equal(default, embed('seed0', '--seed', '0'))
    assert not np.array_equal(default, embed('seed1', '--seed', '1'))
    assert not np.array_equal(default, embed('l3', '--legendre-polys', '3'))


def test_embed_dtype_is_the_encoders_default() -> None:
    import torch

    from torchgeo_satclip.models import build_location_encoder, load_location_encoder

    dtype = getattr(torch, option('embed', 'dtype').default)
    for function in (build_location_encoder, load_location_encoder):
        assert inspect.signature(function).parameters['dtype'].default == dtype


def test_choices_are_the_library_literals() -> None:
    from torchgeo_satclip.builders.planetary_computer import DEFAULT_API_URL
    from torchgeo_satclip.embed import DtypeName
    from torchgeo_satclip.evaluation.probe import Protocol, Split

    assert option('embed', 'dtype').choices == typing.get_args(DtypeName)
    assert option('embed', 'layout').choices == ('columns', 'list')
    assert option('build', 'resampling').choices == ('nearest', 'bilinear', 'cubic')
    assert option('probe', 'protocols').choices == typing.get_args(Protocol)
    assert option('probe', 'cv').choices == typing.get_args(Split)
    assert DEFAULT_API_URL in str(option('build', 'api_url').help)


def test_probe_bad_csv_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['probe', '--csv', 'no-target']) == 2
    assert 'PATH:TARGET' in capsys.readouterr().err


@pytest.mark.parametrize('spec', ['points.csv:', 'points.csv: ', ':value'])
def test_probe_csv_spec_without_a_target(
    spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty TARGET (or PATH) is refused as the spec it is, before any file."""
    argv = ['probe', '--csv', spec, '--output-dir', str(tmp_path / 'out')]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f'torchgeo-satclip probe: error: --csv expects PATH:TARGET, got {spec!r}'
    ), err
    assert not (tmp_path / 'out').exists()


# issue 12.7: build --verbose shows retries; tensorboard through an extra


def fake_build(root: str, num_samples: int, **kwargs: Any) -> SimpleNamespace:
    logging.getLogger('torchgeo_satclip.builders.reading').info(
        'B04: HTTP 503; retry 1 of 3 in 0.50 s'
    )
    return SimpleNamespace(
        num_samples=num_samples,
        target=num_samples,
        root=root,
        num_written=num_samples,
        num_resumed=0,
        num_adopted=0,
        rejected={},
        num_failed=0,
        seconds=0.0,
        complete=True,
    )


@pytest.mark.parametrize('verbose', [True, False])
def test_build_verbose_shows_retries(
    verbose: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(torchgeo_satclip.builders, 'build_dataset', fake_build)
    args = ['build', str(tmp_path), '--num-samples', '2', '--quiet']
    assert main([*args, '--verbose'] if verbose else args) == 0
    assert ('retry 1 of 3' in caplog.text) is verbose
    logging.getLogger('torchgeo_satclip').setLevel(logging.NOTSET)


def test_tensorboard_extra() -> None:
    extras = tomllib.loads((Path(__file__).parents[1] / 'pyproject.toml').read_text())[
        'project'
    ]['optional-dependencies']
    assert any(dep.startswith('tensorboard') for dep in extras['logging'])


def test_pack_with_another_patch_size_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fake patches are 32 x 32: --patch-size 64 is the command's mistake
    (exit status 2, nothing written), and the message names the fix."""
    import shutil

    root = tmp_path / 's2_100k'
    shutil.copytree(
        REPO / 'tests' / 'data' / 's2_100k',
        root,
        ignore=shutil.ignore_patterns('real', 'data.py'),
    )
    before = sorted(p.relative_to(root) for p in root.rglob('*'))
    assert main(['pack', str(root), '--patch-size', '64', '--quiet']) == 2
    err = capsys.readouterr().err
    assert 'expected 64 x 64 (patch_size)' in err
    assert '--patch-size 32' in err
    assert sorted(p.relative_to(root) for p in root.rglob('*')) == before
    assert main(['pack', str(root), '--patch-size', '32', '--quiet']) == 0


def test_probe_tasks_default_is_the_library_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--tasks defaults to None: probe_report's tasks without --csv (shown in
    the help), none beside a --csv task."""
    import torchgeo_satclip.evaluation.report as report

    default = inspect.signature(report.probe_report).parameters['tasks'].default
    action = option('probe', 'tasks')
    assert action.default is None
    assert action.help is not None
    assert f'(default: {" ".join(default)}; none when --csv' in ' '.join(
        action.help.split()
    )
    asked: list[list[str]] = []

    def fake(output_dir: Any, tasks: list[str], *args: Any, **kwargs: Any) -> Any:
        asked.append(list(tasks))
        raise ValueError('stop here')

    monkeypatch.setattr(report, 'probe_report', fake)
    out = str(tmp_path / 'out')
    assert main(['probe', '--output-dir', out]) == 2
    task = tmp_path / 'mine.csv'
    task.write_text('lon,lat,value\n1,2,3\n')
    assert main(['probe', '--csv', f'{task}:value', '--output-dir', out]) == 2
    assert asked == [list(default), []]


@pytest.mark.parametrize('rows', ['', '1.0,2.0\n'])
def test_embed_neighbours_of_fewer_than_two_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str
) -> None:
    """One point has no neighbour: no '0 -> 0 -2.000' line (its own
    similarity's placeholder), and no empty table."""
    points = tmp_path / 'points.csv'
    points.write_text('lon,lat\n' + rows)
    out = tmp_path / 'o.npy'
    assert main(['embed', str(points), str(out), '--neighbours', '--quiet']) == 0
    printed = capsys.readouterr().out
    assert '(--neighbours: fewer than two points, so no neighbours)' in printed
    assert '->' not in printed
    assert 'nearest neighbour in embedding space' not in printed


def test_build_locked_is_a_failure_while_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another build in ROOT: a DataError, status 1 as every other; --debug shows it."""
    from torchgeo_satclip.builders import BuildLockedError

    message = f'{tmp_path}/.build.lock: another build (pid 12) is writing here'

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise BuildLockedError(message)

    monkeypatch.setattr(torchgeo_satclip.builders, 'build_dataset', locked)
    argv = ['build', str(tmp_path), '--num-samples', '2', '--quiet']
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == f'torchgeo-satclip build: error: {message}\n'
    assert captured.out == ''
    with pytest.raises(BuildLockedError):
        main([*argv, '--debug'])
