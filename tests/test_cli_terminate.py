"""SIGTERM ends every subcommand like an error: its temporary files are removed."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from torchgeo_satclip._io import parse_temporary_name
from torchgeo_satclip.cli import _common, main

REPO = Path(__file__).parents[1]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob('*') if parse_temporary_name(p.name)]


def test_sigterm_ends_demo_data_cleanly(tmp_path: Path) -> None:
    """``demo-data`` (not only ``embed``) turns SIGTERM into a clean exit, 143."""
    root = tmp_path / 'world'
    command = [
        sys.executable, '-m', 'torchgeo_satclip.cli', 'demo-data', str(root),
        '--n', '5000', '--size', '64', '--quiet',
    ]  # fmt: skip
    run = subprocess.Popen(
        command,
        env={**os.environ, 'PYTHONPATH': str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    images = root / 'images'
    deadline = time.monotonic() + 120
    while not (images.is_dir() and any(images.glob('patch_*.tif'))):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, 'the run never started writing'
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 128 + signal.SIGTERM, err
    assert err.strip() == 'torchgeo-satclip demo-data: terminated', err
    assert temporaries(root) == []
    assert not (root / 'index.csv').exists()  # written last, never half


def terminate_self() -> None:
    with _common.terminate_cleanly():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs before this returns


def test_terminate_cleanly_raises_and_restores() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        terminate_self()
    assert stop.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is previous


def test_terminate_cleanly_off_the_main_thread() -> None:
    """Off the main thread signals are left alone (signal.signal would raise)."""
    previous = signal.getsignal(signal.SIGTERM)
    entered: list[bool] = []

    def work() -> None:
        with _common.terminate_cleanly():
            entered.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert entered == [True]
    assert signal.getsignal(signal.SIGTERM) is previous


def test_main_restores_the_handler(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    assert (
        main(['demo-data', str(tmp_path / 'w'), '--n', '2', '--size', '8', '--quiet'])
        == 0
    )
    assert signal.getsignal(signal.SIGTERM) is previous
