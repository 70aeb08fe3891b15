import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pytest

from torchgeo_satclip.evaluation import (
    PointDataset,
    cross_validate,
    encode,
    fold_indices,
    load_task,
    results_to_markdown,
    run_probes,
    task_from_csv,
    write_results,
)
from torchgeo_satclip.geo import sample_points


def test_builtin_tasks_offline() -> None:
    air = load_task('air_temperature')
    assert len(air) == 3076
    assert air.kind == 'regression'
    assert -60 < air.target.min() < air.target.max() < 40
    land = load_task('land_ocean', 2000)
    assert 0.2 < land.target.mean() < 0.4  # about 29 % of the Earth is land
    koppen = load_task('koppen', 500)
    assert 'Ocean' not in koppen.classes
    assert len(koppen.classes) > 10
    country = load_task('country', 2000)
    assert 'US' in country.classes
    with pytest.raises(ValueError, match='unknown task'):
        load_task('nope')


def test_folds() -> None:
    lonlat = sample_points(500, 1, land=False)
    seen = np.zeros(500, int)
    for train, test in fold_indices(lonlat, 5, 'spatial', 30.0):
        assert not set(train) & set(test)
        seen[test] += 1
        blocks: Callable[[np.ndarray], set[tuple[int, int]]] = lambda idx: {  # noqa: E731
            (int((lon + 180) // 30), int((lat + 90) // 30)) for lon, lat in lonlat[idx]
        }
        assert not blocks(train) & blocks(test)  # whole blocks per fold
    assert (seen == 1).all()
    with pytest.raises(ValueError, match='cannot make'):
        list(fold_indices(lonlat[:3], 5))


def test_fold_limits() -> None:
    lonlat = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0]])
    # as many points as folds: one test point per fold
    folds = list(fold_indices(lonlat, 3, 'random'))
    assert sorted(int(test[0]) for _, test in folds) == [0, 1, 2]
    # 30-degree blocks (column, row) (6, 3), (7, 3) and (6, 4): three blocks
    # (a key adding column and row would merge the last two), one per fold
    folds = list(fold_indices(lonlat, 3, 'spatial', 30.0))
    assert sorted(int(test[0]) for _, test in folds) == [0, 1, 2]
    with pytest.raises(ValueError, match='2 blocks'):
        list(fold_indices(lonlat[:2], 3, 'spatial', 30.0))


@pytest.mark.parametrize('split', ['random', 'spatial'])
def test_sh_beats_raw_on_air_temperature(split: Literal['random', 'spatial']) -> None:
    task = load_task('air_temperature')
    raw = cross_validate(encode('raw', task.lonlat), task, 'linear', split, folds=3)
    sh = cross_validate(encode('sh', task.lonlat), task, 'linear', split, folds=3)
    # measured: raw ~0.40, SH (L = 10) ~0.91-0.93 R^2
    assert 0.2 < raw.mean < 0.6
    assert sh.mean > 0.85
    assert sh.mean > raw.mean + 0.3


def test_sh_beats_raw_on_land_ocean() -> None:
    task = load_task('land_ocean', 2000)
    results = run_probes([task], ['raw', 'sh'], splits=('random',), folds=3)
    by_name = {r.encoder: r.mean for r in results}
    majority = max(task.target.mean(), 1 - task.target.mean())
    assert (
        by_name['raw'] < majority + 0.05
    )  # lon/lat is no better than the majority class
    assert by_name['sh'] > majority + 0.1


def test_mlp_probe_and_outputs(tmp_path: Path) -> None:
    stations = load_task('air_temperature')
    # a third of the stations (1,026), spread as all are: the MLP's epochs
    # cost in proportion to the points
    task = dataclasses.replace(
        stations, lonlat=stations.lonlat[::3], target=stations.target[::3]
    )
    assert len(task) == 1026
    result = cross_validate(
        encode('wrap', task.lonlat), task, 'mlp', 'random', folds=2, encoder_name='wrap'
    )
    assert result.mean > 0.6
    table = results_to_markdown([result])
    assert '| air_temperature | R2 | mlp | random |' in table
    md, csv = write_results([result], tmp_path)
    assert md.exists()
    assert 'air_temperature,wrap,mlp' in csv.read_text()


def test_user_csv_and_point_dataset(tmp_path: Path) -> None:
    path = tmp_path / 'user.csv'
    path.write_text('x,y,cls\n1,2,a\n3,4,b\n5,6,a\n7,8,\n')
    task = task_from_csv(path, 'cls', 'x', 'y')
    assert task.kind == 'classification'
    assert task.classes == ['a', 'b']
    assert len(task) == 3
    bad = tmp_path / 'swapped.csv'
    bad.write_text('lon,lat,v\n10,120,1\n')
    with pytest.raises(ValueError, match='swapped'):
        task_from_csv(bad, 'v')
    dataset = PointDataset(path=str(path), target='cls', lon_column='x', lat_column='y')
    sample = dataset[1]
    assert sample['point'].tolist() == [3.0, 4.0]
    assert int(sample['label']) == 1


def test_sample_sphere_is_a_deprecated_alias() -> None:
    from torchgeo_satclip.evaluation import sample_sphere

    with pytest.deprecated_call(match='geo.sample_points'):
        points = sample_sphere(50, 3)
    np.testing.assert_array_equal(points, sample_points(50, 3, land=False))


@pytest.mark.parametrize('block_size', [10.0, 30.0, 45.0])
def test_spatial_blocks_wrap_at_the_dateline_and_close_at_the_poles(
    block_size: float,
) -> None:
    """Longitude 180 and -180 are one meridian, and latitude 90 lies in the
    last row of blocks: the points there formed blocks of their own (a
    station written at lon 180 and its twin at lon -180 could be split
    between a training and a test fold: leakage)."""
    points = np.array(
        [
            [180.0, 5.0],  # the same place as the next one
            [-180.0, 5.0],
            [-179.0, 6.0],  # in the same block
            [0.0, 90.0],  # the north pole, in the row below it (first column)
            [-179.5, 89.0],
            [20.0, -90.0],  # the south pole, in the first row (first column)
            [-179.5, -89.0],
        ]
        + [[lon, 45.0] for lon in range(-170, 171, 20)]
    )
    for seed in range(8):
        pairs = list(fold_indices(points, 2, 'spatial', block_size, seed))
        fold_of = np.empty(len(points), int)
        for fold, (_, test) in enumerate(pairs):
            fold_of[test] = fold
        assert fold_of[0] == fold_of[1] == fold_of[2], seed
        assert fold_of[3] == fold_of[4], seed
        assert fold_of[5] == fold_of[6], seed


@pytest.mark.parametrize('block_size', [10.0, 7.0, 45.0])
def test_a_pole_is_one_place_whatever_its_longitude(block_size: float) -> None:
    """The north pole written at lon 0 and at lon 100 is one place, yet the
    two fell into different columns of blocks, so a spatial split could train
    on a pole's point and test on its twin (leakage: the same place, the same
    target, on both sides)."""
    poles = [[lon, lat] for lat in (90.0, -90.0) for lon in range(-180, 181, 15)]
    points = np.array(poles + [[lon, 0.0] for lon in range(-175, 180, 10)])
    north = np.flatnonzero(points[:, 1] == 90.0)
    south = np.flatnonzero(points[:, 1] == -90.0)
    for seed in range(8):
        pairs = list(fold_indices(points, 3, 'spatial', block_size, seed))
        fold_of = np.empty(len(points), int)
        for fold, (_, test) in enumerate(pairs):
            fold_of[test] = fold
        assert len(set(fold_of[north])) == 1, seed
        assert len(set(fold_of[south])) == 1, seed


@pytest.mark.parametrize('results', [[], ()])
def test_no_result_writes_no_table(results: Any, tmp_path: Path) -> None:
    """No result gave a malformed Markdown table (a header of five cells over
    a rule of four) and a CSV of a header alone, written as results."""
    with pytest.raises(ValueError, match=r'results must be a non-empty list'):
        results_to_markdown(results)
    with pytest.raises(ValueError, match=r'results must be a non-empty list'):
        write_results(results, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_encode_gives_a_training_module_back_in_training_mode(tmp_path: Path) -> None:
    """encode() (and plot_pca_map, through it) called .eval() on the caller's
    module and left it so: a PCA map drawn in the middle of training turned
    its dropout off for the rest of the run."""
    import torch

    from torchgeo_satclip.evaluation import plot_pca_map

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 4, dtype=torch.float64)
            self.dropout = torch.nn.Dropout(0.5)
            self.frozen = torch.nn.BatchNorm1d(4, dtype=torch.float64).eval()

        def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
            return cast(
                torch.Tensor, self.frozen(self.dropout(self.linear(lonlat / 90)))
            )

    encoder = Encoder().train()
    encoder.frozen.eval()  # a part the caller keeps in eval mode
    lonlat = sample_points(50, 0)
    features = encode(encoder, lonlat)
    assert np.array_equal(features, encode(encoder, lonlat))  # eval: no dropout
    assert encoder.training
    assert encoder.dropout.training
    assert not encoder.frozen.training
    plot_pca_map(encoder, tmp_path / 'map.png', resolution=30.0, coastlines=False)
    assert encoder.training
    assert encoder.dropout.training
    assert not encoder.frozen.training


def test_the_best_cell_is_chosen_on_the_printed_figures() -> None:
    """The bold best was chosen on the unrounded mean: two encoders that
    both print 0.931 showed one bold and one plain, a difference the table
    does not show."""
    from torchgeo_satclip.evaluation import ProbeResult

    def row(a: float, b: float, c: float) -> list[str]:
        results = [
            ProbeResult('t', name, 'linear', 'random', 'R2', [mean, mean])
            for name, mean in (('a', a), ('b', b), ('c', c))
        ]
        return results_to_markdown(results).splitlines()[2].split(' | ')[4:]

    # 0.9312 and 0.9308 both print 0.931: both bold
    assert row(0.9312, 0.9308, 0.5) == [
        '**0.931 +- 0.000**',
        '**0.931 +- 0.000**',
        '0.500 +- 0.000 |',
    ]
    assert row(0.9314, 0.9316, 0.5)[:2] == ['0.931 +- 0.000', '**0.932 +- 0.000**']
