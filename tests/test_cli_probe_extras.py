"""``probe`` without the eval extra, and a user's CSV task alone.

Found by a review of the documentation: ``probe`` failed without scikit-learn
with a bare ``ModuleNotFoundError`` although its help said only some tasks
need the extra, and ``--csv`` always ran beside the built-in tasks (which
need the extra's maps), with no way to turn them off.
"""

import builtins
import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_satclip.cli import main


def _block_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def blocked(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == 'sklearn' or name.startswith('sklearn.'):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', blocked)


def user_task(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(0)
    with path.open('w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['lon', 'lat', 'value'])
        for lon, lat in zip(
            rng.uniform(-170, 170, n), rng.uniform(-60, 60, n), strict=True
        ):
            writer.writerow([f'{lon:.4f}', f'{lat:.4f}', f'{lat / 10 + 3:.4f}'])
    return path


def test_probe_without_sklearn_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _block_sklearn(monkeypatch)
    status = main(
        [
            'probe',
            *('--tasks', 'air_temperature', '--encoders', 'raw', '--no-plots'),
            *('--output-dir', str(tmp_path / 'out')),
        ]
    )
    assert status != 0
    err = capsys.readouterr().err
    assert 'torchgeo-satclip[eval]' in err
    assert 'scikit-learn' in err
    assert not (tmp_path / 'out').exists()


def test_probe_help_says_the_probes_need_the_extra(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(['probe', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'The probes need the eval extra' in text
    assert 'none when --csv is given' in text


def probe_csv(tmp_path: Path, *options: str) -> list[dict[str, str]]:
    """Run ``probe`` on a user task (3 folds, no plots); its result rows."""
    task = user_task(tmp_path / 'mine.csv')
    out = tmp_path / 'out'
    status = main(
        [
            'probe',
            *('--csv', f'{task}:value', *options, '--no-plots', '--folds', '3'),
            *('--output-dir', str(out)),
        ]
    )
    assert status == 0
    with (out / 'probe_results.csv').open() as f:
        return list(csv.DictReader(f))


def test_a_csv_task_alone(tmp_path: Path) -> None:
    """``--csv`` without ``--tasks`` probes the user's task alone."""
    rows = probe_csv(tmp_path, '--encoders', 'raw', 'wrap')
    assert {row['task'] for row in rows} == {'mine:value'}
    assert {row['encoder'] for row in rows} == {'raw', 'wrap'}


def test_a_csv_task_beside_built_in_ones(tmp_path: Path) -> None:
    rows = probe_csv(tmp_path, '--tasks', 'air_temperature', '--encoders', 'raw')
    assert {row['task'] for row in rows} == {'mine:value', 'air_temperature'}


@pytest.mark.parametrize('value', ['0', '-1', 'nan', '0.0001', '91'])
def test_map_resolution_is_checked_before_the_probes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """A bad --map-resolution fails at once (exit 2), not after the probes
    with a ZeroDivisionError, an IndexError or a 47 TiB allocation."""
    out = tmp_path / 'out'
    status = main(
        [
            'probe',
            *('--tasks', 'air_temperature', '--encoders', 'raw', 'wrap'),
            *(f'--map-resolution={value}', '--output-dir', str(out)),
        ]
    )
    assert status == 2
    assert 'must be a number of degrees in [0.05, 90]' in capsys.readouterr().err
    assert not out.exists()
