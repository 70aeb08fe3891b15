"""Killing ``embed`` leaves no final file, and the next run removes its leftovers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from torchgeo_satclip._io import remove_stale_temporaries, temporary_pattern

REPO = Path(__file__).parents[1]
#: Enough points that embedding takes a few seconds in small batches.
POINTS = 20_000


@pytest.fixture(scope='module')
def points(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('kill') / 'points.csv'
    rng = np.random.default_rng(0)
    lon = rng.uniform(-180, 180, POINTS)
    lat = rng.uniform(-90, 90, POINTS)
    with path.open('w') as handle:
        handle.write('id,lon,lat\n')
        np.savetxt(
            handle,
            np.column_stack([np.arange(POINTS), lon, lat]),
            fmt=['%d', '%.6f', '%.6f'],
            delimiter=',',
        )
    return path


def start(source: Path, output: Path) -> subprocess.Popen[str]:
    command = [
        sys.executable, '-m', 'torchgeo_satclip.cli', 'embed', str(source), str(output),
        '--legendre-polys', '10', '--batch-size', '256', '--dtype', 'float32',
        '--quiet', '--overwrite',
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        env={**os.environ, 'PYTHONPATH': str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def temporaries(output: Path) -> list[Path]:
    pattern = temporary_pattern(output)
    return [p for p in output.parent.iterdir() if pattern.fullmatch(p.name)]


def wait_for_temporary(
    process: subprocess.Popen[str], output: Path, old: Path | None = None
) -> Path:
    """Wait until the run writes (its own temporary file has grown)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [p for p in temporaries(output) if p != old and p.stat().st_size > 0]
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError('the run never started writing')


def test_sigkill_then_rerun_removes_the_leftovers(points: Path, tmp_path: Path) -> None:
    # .npy: the format whose temporary is largest (its space is reserved first)
    output = tmp_path / 'emb.npy'
    output.write_bytes(b'the previous result')
    run = start(points, output)
    tmp = wait_for_temporary(run, output)
    # A live run's temporary is never removed by another process.
    assert remove_stale_temporaries(output) == []
    assert tmp.exists()
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL
    assert tmp.exists()  # SIGKILL leaves it ...
    assert output.read_bytes() == b'the previous result'  # ... and the output as it was
    rerun = start(points, output)
    wait_for_temporary(rerun, output, old=tmp)
    assert not tmp.exists()  # removed by the next run, before its work
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f'wrote {POINTS} embeddings' in out
    assert temporaries(output) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_sigterm_removes_the_temporary(points: Path, tmp_path: Path) -> None:
    output = tmp_path / 'emb.csv'
    run = start(points, output)
    wait_for_temporary(run, output)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
