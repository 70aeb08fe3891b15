"""PointDataModule: a split that never shares points, scaled by its training part."""

from pathlib import Path

import numpy as np
import pytest
import torch

from torchgeo_satclip.evaluation import PointDataModule, PointDataset

STATIONS = 'air_temperature'  # the 3,076 real stations, shipped with the package


def split_points(dm: PointDataModule) -> list[set[tuple[float, float]]]:
    return [
        {tuple(dm.train_dataset.dataset.points[i].tolist()) for i in split.indices}  # type: ignore[union-attr]
        for split in (dm.train_dataset, dm.val_dataset, dm.test_dataset)
    ]


@pytest.mark.parametrize(
    ('val', 'test'),
    [(0.7, 0.5), (-0.1, 0.2), (0.5, 0.5), (1.0, 0.0), (float('nan'), 0.1), (True, 0.1)],
)
def test_fractions_that_would_overlap_are_refused(val: float, test: float) -> None:
    """random_split slices with a negative length silently: splits overlapped."""
    with pytest.raises(ValueError, match='split_pct'):
        PointDataModule(task=STATIONS, val_split_pct=val, test_split_pct=test)


def test_splits_are_disjoint() -> None:
    dm = PointDataModule(task=STATIONS, val_split_pct=0.2, test_split_pct=0.3)
    dm.setup('fit')
    train, val, test = split_points(dm)
    assert (len(train), len(val), len(test)) == (1538, 615, 923)
    assert not train & val
    assert not train & test
    assert not val & test


def test_targets_standardised_by_the_training_split_alone() -> None:
    dm = PointDataModule(task=STATIONS)
    dm.setup('fit')
    dataset = dm.train_dataset.dataset  # type: ignore[union-attr]
    train = np.asarray(dm.train_dataset.indices)  # type: ignore[union-attr]
    targets = dataset.task.target[train]
    assert dataset.mean == pytest.approx(float(targets.mean()), rel=1e-12)
    assert dataset.std == pytest.approx(float(targets.std()), rel=1e-12)
    assert dataset.mean != pytest.approx(float(dataset.task.target.mean()), rel=1e-6)
    labels = dataset.labels[torch.from_numpy(train)].double()
    assert abs(float(labels.mean())) < 1e-6
    assert float(labels.std(unbiased=False)) == pytest.approx(1.0, rel=1e-5)


def test_csv_targets_standardised_by_the_training_split(tmp_path: Path) -> None:
    rows = ['lon,lat,y'] + [
        f'{i * 7 % 350 - 175}.5,{i % 170 - 85}.25,{i * i}' for i in range(50)
    ]
    path = tmp_path / 'points.csv'
    path.write_text('\n'.join(rows) + '\n')
    dm = PointDataModule(
        path=str(path), target='y', val_split_pct=0.2, test_split_pct=0.2
    )
    dm.setup('fit')
    dataset = dm.train_dataset.dataset  # type: ignore[union-attr]
    train = np.asarray(dm.train_dataset.indices)  # type: ignore[union-attr]
    assert dataset.mean == pytest.approx(float(dataset.task.target[train].mean()))


def test_a_fraction_that_rounds_to_no_point_is_refused(tmp_path: Path) -> None:
    """val_split_pct 0.2 of 2 points rounded to an empty validation split, and
    Lightning then skipped validation (and a val_loss checkpoint) in silence."""
    path = tmp_path / 'points.csv'
    path.write_text('lon,lat,y\n1.5,2.5,1\n3.5,4.5,2\n')
    dm = PointDataModule(path=str(path), target='y', val_split_pct=0.2)
    with pytest.raises(ValueError, match=r'val_split_pct 0\.2 of 2 points gives none'):
        dm.setup('fit')
    # no validation asked for: none is made
    dm = PointDataModule(
        path=str(path), target='y', val_split_pct=0.0, test_split_pct=0.0
    )
    dm.setup('fit')
    assert len(dm.val_dataset) == 0  # type: ignore[arg-type]
    assert len(dm.train_dataset) == 2  # type: ignore[arg-type]


def test_a_csv_of_class_codes_can_be_read_as_classes(tmp_path: Path) -> None:
    """PointDataset had no kind=: 30 integer class codes (ecoregion ids) were
    read by task_from_csv's 'auto' as a regression target and served as
    standardised float labels, with no way to say they are classes (and 3
    numeric levels could not be read as a regression target)."""
    rows = ['lon,lat,zone'] + [
        f'{i * 11 % 340 - 170},{i % 160 - 80},{i % 30}' for i in range(90)
    ]
    path = tmp_path / 'zones.csv'
    path.write_text('\n'.join(rows) + '\n', encoding='utf-8')
    classes = PointDataset(path=str(path), target='zone', kind='classification')
    assert classes.task.kind == 'classification'
    assert classes.labels.dtype == torch.int64
    assert len(classes.task.classes) == 30
    assert PointDataset(path=str(path), target='zone').task.kind == 'regression'

    rows = ['lon,lat,level'] + [
        f'{i * 11 % 340 - 170},{i % 160 - 80},{i % 3}' for i in range(90)
    ]
    path.write_text('\n'.join(rows) + '\n', encoding='utf-8')
    levels = PointDataset(path=str(path), target='level', kind='regression')
    assert levels.task.kind == 'regression'
    assert levels.labels.dtype == torch.float32
    assert float(levels.labels.mean()) == pytest.approx(0.0, abs=1e-6)

    datamodule = PointDataModule(path=str(path), target='level', kind='regression')
    datamodule.setup('fit')
    assert datamodule.train_dataset.dataset.task.kind == 'regression'  # type: ignore[union-attr]


def test_kind_is_checked(tmp_path: Path) -> None:
    path = tmp_path / 'zones.csv'
    path.write_text('lon,lat,zone\n1,2,3\n', encoding='utf-8')
    with pytest.raises(ValueError, match="kind must be 'auto', 'regression' or"):
        PointDataset(path=str(path), target='zone', kind='classes')  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('indices', 'message'),
    [
        ([0, 1, -1], r'indices hold -1 \(item 2, from 0\).* 0 to 49'),
        ([0, 50], r'indices hold 50 \(item 1, from 0\).* 0 to 49'),
        ([0, 1.5], r'indices hold 1\.5 \(item 1, from 0\).*integer'),
        ([True, 2], r'indices hold True \(item 0, from 0\).*integer'),
        (['3'], r"indices hold '3' \(item 0, from 0\).*integer"),
    ],
)
def test_fit_standardization_refuses_indices_outside_the_points(
    indices: list[object], message: str, tmp_path: Path
) -> None:
    """A negative index wrapped to a point from the end, 1.5 was cut to 1
    and True read as 1: the mean and std were fitted on points the caller
    did not give, in silence (an index past the end failed in numpy)."""
    rows = ['lon,lat,y'] + [f'{i * 7 - 175}.5,{i - 25}.25,{i * i}' for i in range(50)]
    path = tmp_path / 'points.csv'
    path.write_text('\n'.join(rows) + '\n', encoding='utf-8')
    dataset = PointDataset(path=str(path), target='y')
    labels = dataset.labels.clone()
    with pytest.raises(ValueError, match=f'fit_standardization: {message}'):
        dataset.fit_standardization(indices)  # type: ignore[arg-type]
    assert torch.equal(dataset.labels, labels)
    dataset.fit_standardization(np.arange(10))  # numpy integers are indices
    assert dataset.mean == pytest.approx(float(np.mean(np.arange(10) ** 2)))
    dataset.fit_standardization(torch.arange(20))  # and a tensor's
    assert dataset.mean == pytest.approx(float(np.mean(np.arange(20) ** 2)))
