"""Every probed task has its own name, so that its results are tabled apart."""

from pathlib import Path

import numpy as np
import pytest

from torchgeo_satclip.evaluation import PointTask, probe_report, run_probes


def write_task(path: Path, target: np.ndarray, lonlat: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['lon,lat,y'] + [
        f'{lon},{lat},{y}'
        for (lon, lat), y in zip(lonlat.tolist(), target.tolist(), strict=True)
    ]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path


def test_csv_tasks_of_the_same_file_name_are_tabled_apart(tmp_path: Path) -> None:
    # a/stations.csv:y (y = latitude, R^2 ~1) and b/stations.csv:y (noise,
    # R^2 ~0) were both named 'stations:y': probe_results.md showed one row,
    # b's score, and a's result was lost from the table.
    rng = np.random.default_rng(0)
    lonlat = np.stack([rng.uniform(-180, 180, 60), rng.uniform(-60, 60, 60)], 1)
    a = write_task(tmp_path / 'a' / 'stations.csv', lonlat[:, 1], lonlat)
    b = write_task(tmp_path / 'b' / 'stations.csv', rng.normal(size=60), lonlat)
    report = probe_report(
        tmp_path / 'out',
        [],
        ['raw'],
        csv_tasks=[(a, 'y'), (b, 'y')],
        splits=('random',),
        folds=2,
        plots=False,
    )
    scores = {r.task: r.mean for r in report.results}
    assert list(scores) == ['a/stations:y', 'b/stations:y']
    assert scores['a/stations:y'] > 0.99
    assert scores['b/stations:y'] < 0.5
    rows = [
        line
        for line in report.markdown.read_text().splitlines()
        if 'stations:y' in line
    ]
    assert len(rows) == 2
    assert rows[0].startswith('| a/stations:y |')
    assert f'{scores["a/stations:y"]:.3f}' in rows[0]


def test_run_probes_refuses_two_tasks_of_one_name() -> None:
    rng = np.random.default_rng(0)
    lonlat = np.stack([rng.uniform(-180, 180, 20), rng.uniform(-60, 60, 20)], 1)
    tasks = [
        PointTask('stations:y', lonlat, lonlat[:, 1].copy(), 'regression'),
        PointTask('stations:y', lonlat, rng.normal(size=20), 'regression'),
    ]
    with pytest.raises(ValueError, match="2 tasks are named 'stations:y'"):
        run_probes(tasks, ['raw'], folds=2)
