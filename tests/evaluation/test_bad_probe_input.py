"""Bad input to the probes: options, tasks too small, malformed task CSVs.

Generated, table-driven. Each case must raise ``ValueError`` whose message
names the task, file, row or option; none may report a score (issue 13: a
2-row CSV reported "accuracy 0.000 +- 0.000").
"""

import math
import re
import warnings
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pytest
import torch

from torchgeo_satclip.evaluation import (
    PointTask,
    load_task,
    probe_report,
    run_probes,
    task_from_csv,
)
from torchgeo_satclip.evaluation.probe import (
    check_folds,
    cross_validate,
    encode,
    fold_indices,
)
from torchgeo_satclip.geo import validate_lonlat


def task(
    n: int, kind: str = 'classification', classes: int = 2, spread: float = 60.0
) -> PointTask:
    """``n`` points spread over the globe (one per spatial block when wide)."""
    rng = np.random.default_rng(n)
    lon = np.linspace(-170.0, 170.0, n) if n > 1 else np.zeros(1)
    lat = np.linspace(-spread, spread, n) if n > 1 else np.zeros(1)
    lonlat = np.stack([lon, lat], axis=1)
    target = np.arange(n) % classes if kind == 'classification' else rng.normal(size=n)
    return PointTask(f'tiny{n}', lonlat, target, kind)  # type: ignore[arg-type]


def raw(lonlat: Any) -> Any:
    return lonlat


OPTIONS: list[tuple[str, Any, str]] = [
    *(('folds', v, 'folds must be an integer') for v in (True, 2.5, '5', None)),
    *(('folds', v, 'folds must be at least 2') for v in (1, 0, -3)),
    *(
        ('block_size', v, 'block_size must be a positive number of degrees')
        for v in (0, -10.0, math.nan, math.inf, True, '10', None)
    ),
    # seed -1 was reported as "task too small ... add points", 1.5 or '3' as
    # numpy's TypeError, None gave folds that no run could repeat
    *(('seed', v, 'seed must be an integer') for v in (1.5, '3', None, True)),
    *(('seed', v, 'seed must be between 0 and 4294967295') for v in (-1, 2**32)),
    *(('protocols', v, 'unknown protocol') for v in (['svm'], ['linear', 'ridge'])),
    *(
        ('protocols', v, 'protocols must be a non-empty list')
        for v in ('linear', cast(list[str], []))
    ),
    *(('splits', v, 'unknown split') for v in (['kfold'], ['random', 'block'])),
    *(
        ('splits', v, 'splits must be a non-empty list')
        for v in ('random', cast(list[str], []))
    ),
]


@pytest.mark.parametrize(
    ('option', 'value', 'fragment'),
    OPTIONS,
    ids=[f'{o}={v!r}' for o, v, _ in OPTIONS],
)
def test_run_probes_options(option: str, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        run_probes([task(40)], {'raw': raw}, **{option: value})


#: (points, folds, kind, split, fragment): tasks too small for the folds asked.
TOO_SMALL: list[tuple[int, int, str, str, str]] = [
    *(
        (n, folds, kind, 'random', 'too small for')
        for kind in ('classification', 'regression')
        for folds in (2, 3, 5, 10)
        for n in range(1, folds)
    ),
    *(
        (n, 2, 'classification', 'random', 'the training points hold one class only')
        for n in (2, 3)
    ),
    *(
        (n, folds, 'regression', 'random', 'a single test point')
        for folds in (2, 3, 5)
        for n in range(folds, 2 * folds)
    ),
]


@pytest.mark.parametrize(
    ('n', 'folds', 'kind', 'split', 'fragment'),
    TOO_SMALL,
    ids=[f'{n}pts-{f}folds-{k}-{s}' for n, f, k, s, _ in TOO_SMALL],
)
def test_task_too_small(
    n: int, folds: int, kind: str, split: str, fragment: str
) -> None:
    small = task(n, kind)
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        run_probes([small], {'raw': raw}, folds=folds, splits=[split])  # type: ignore[list-item]
    assert f"task 'tiny{n}' ({n} points)" in str(info.value)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        cross_validate(small.lonlat, small, folds=folds, split=split)  # type: ignore[arg-type]


@pytest.mark.parametrize('folds', [2, 3, 5])
@pytest.mark.parametrize('kind', ['classification', 'regression'])
def test_too_few_spatial_blocks(folds: int, kind: str) -> None:
    clustered = task(50, kind, spread=0.0)
    clustered.lonlat[:, 0] = np.linspace(0.0, 5.0, 50)  # one 10-degree block
    with pytest.raises(ValueError, match=r'1 blocks of 10\.0 degrees cannot make'):
        check_folds(clustered, 'spatial', folds)


@pytest.mark.parametrize('n', [4, 10, 100])
@pytest.mark.parametrize('split', ['random', 'spatial'])
def test_single_class(n: int, split: str) -> None:
    one = task(n, classes=1)
    with pytest.raises(ValueError, match='has a single class'):
        check_folds(one, split, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize('value', [0.0, 7.5, -1.0])
@pytest.mark.parametrize('split', ['random', 'spatial'])
def test_constant_regression_target(value: float, split: str) -> None:
    flat = task(40, 'regression')
    flat.target[:] = value
    with pytest.raises(ValueError, match='so R\\^2 is undefined'):
        check_folds(flat, split, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_non_finite_regression_target(value: float) -> None:
    bad = task(40, 'regression')
    bad.target[7] = value
    with pytest.raises(ValueError, match=r'target 7 is .*, not finite'):
        check_folds(bad, 'random', 2)


def test_non_finite_features_refused() -> None:
    ok = task(40)
    features = np.full((40, 2), math.nan)
    with pytest.raises(ValueError, match=r'fold 1 of 2: cannot fit .*NaN'):
        cross_validate(features, ok, folds=2)


@pytest.mark.parametrize('shape', [(50, 2), (39, 2), (40,), (40, 2, 1)])
def test_features_must_have_one_row_per_point(shape: tuple[int, ...]) -> None:
    """Extra rows were probed silently (the task's first rows); fewer failed
    with an IndexError naming nothing."""
    ok = task(40)
    features = np.random.default_rng(0).normal(size=shape)
    with pytest.raises(
        ValueError,
        match=rf"features of encoder 'e' have shape \({shape[0]},.*task 'tiny40' has "
        r'40 points: expected \(40, D\)',
    ):
        cross_validate(features, ok, folds=2, encoder_name='e')


@pytest.mark.parametrize(
    ('point', 'fragment'),
    [
        ((10.0, 100.0), r'latitude 100\.0'),
        ((400.0, 10.0), r'longitude 400\.0'),
        ((math.nan, 0.0), 'non-finite'),
    ],
)
@pytest.mark.parametrize('encoder', ['raw', 'wrap', 'sh'])
def test_invalid_points_are_refused_before_encoding(
    point: tuple[float, float], fragment: str, encoder: str
) -> None:
    """The built-in encoders are bare modules: a swapped task was scored."""
    bad = task(40)
    bad.lonlat[7] = point
    with pytest.raises(ValueError, match=rf"task 'tiny40', point 7 .*{fragment}"):
        run_probes([bad], [encoder], folds=2)
    with pytest.raises(ValueError, match=fragment):
        encode(encoder, bad.lonlat)


def test_enough_points_still_probe() -> None:
    """The refusals stop at the edge: 2 points per fold and 2 classes work."""
    (result,) = run_probes([task(8)], {'raw': raw}, folds=2)
    assert len(result.scores) == 2
    (result,) = run_probes([task(4, 'regression')], {'raw': raw}, folds=2)
    assert all(np.isfinite(result.scores))


# --------------------------------------------------------------------------
# Task CSVs

GOOD = 'lon,lat,value\n' + ''.join(
    f'{lon},{lat},{lon * 0.1 + lat}\n'
    for lon in range(-170, 180, 40)
    for lat in (-60, 0, 60)
)

#: (case id, CSV text or bytes, target, fragment)
CSVS: list[tuple[str, str | bytes, str, str]] = [
    *(
        (
            f'ragged-{extra}-line{line}',
            '\n'.join(
                row + (',5' * extra if i == line - 1 else '')
                for i, row in enumerate(GOOD.splitlines())
            )
            + '\n',
            'value',
            f'line {line}: {3 + extra} fields, but the header has 3',
        )
        for extra in (1, 2)
        for line in (2, 3, 10, 28)
    ),
    *(
        (
            f'short-line{line}',
            '\n'.join(
                row.rsplit(',', 1)[0] if i == line - 1 else row
                for i, row in enumerate(GOOD.splitlines())
            )
            + '\n',
            'value',
            f'line {line}: 2 fields, but the header has 3',
        )
        for line in (2, 5, 28)
    ),
    ('decimal-commas', 'id,lon,lat\na,12,5,48,1\n', 'id', 'line 2: 5 fields'),
    (
        'duplicate-header',
        'lon,lat,lat,x\n1,2,3,4\n',
        'x',
        "column 'lat' more than once",
    ),
    ('duplicate-target', 'lon,lat,v,v\n1,2,3,4\n', 'v', "column 'v' more than once"),
    ('empty-file', '', 'value', 'is empty; expected a header line'),
    (
        'header-only',
        'lon,lat,value\n',
        'value',
        "no row has a value in the target column 'value'",
    ),
    ('all-targets-empty', 'lon,lat,value\n1,2,\n3,4,\n', 'value', 'no row has a value'),
    (
        'not-utf8',
        'lon,lat,value\n1,2,caf\xe9\n'.encode('latin-1'),
        'value',
        'is not UTF-8 text',
    ),
    ('utf16', 'lon,lat,value\n1,2,3\n'.encode('utf-16'), 'value', 'is not UTF-8 text'),
    ('missing-target', GOOD, 'nope', "no column 'nope'"),
    (
        'semicolons',
        'lon;lat;value\n1.5;2.5;3\n',
        'value',
        "no column 'lon'; columns are ['lon;lat;value'] (the header looks "
        "';'-separated, but the reader expects comma-separated values",
    ),
    (
        'semicolons-decimal-commas',
        'lon;lat;value\n1,5;2,5;3\n',
        'value',
        "line 2: 3 fields, but the header has 1 (the header looks ';'-separated, "
        'but the reader expects comma-separated values and has no option for '
        'another delimiter: save the file with commas between columns and '
        'decimal points: 12.5, not 12,5)',
    ),
    (
        'tabs',
        'lon\tlat\tvalue\n1.5\t2.5\t3\n',
        'value',
        '(the header looks tab-separated, but the reader expects comma-separated '
        'values and has no option for another delimiter: save the file with '
        'commas between columns)',
    ),
    ('case', 'Lon,lat,value\n1,2,3\n', 'value', "did you mean 'Lon'"),
    ('target-is-lon', GOOD, 'lon', "the target column 'lon' is a coordinate column"),
    ('target-is-lat', GOOD, 'lat', "the target column 'lat' is a coordinate column"),
    *(
        (
            f'lon={value!r}',
            GOOD.replace('\n-170,-60,', f'\n{value},-60,', 1),
            'value',
            f'data row 1: lon is {value!r}, expected a decimal number',
        )
        for value in (
            '1_0',
            'nan',
            'inf',
            '-inf',
            '١٢',
            '0x1F',
            '12,5',
            '',
            'twelve',
            '1e',
            '--1',
        )
        if ',' not in value
    ),
    *(
        (
            f'lat={value!r}',
            GOOD.replace('\n-170,-60,', f'\n-170,{value},', 1),
            'value',
            f'data row 1: lat is {value!r}, expected a decimal number',
        )
        for value in ('1_0', 'NaN', 'Infinity', '٣', ' ', 'N48')
    ),
    *(
        (
            f'lat-out-of-range-{value}',
            GOOD.replace('\n-170,-60,', f'\n-170,{value},', 1),
            'value',
            'data row 1',
        )
        for value in ('95', '-90.5', '1e400', '177.8')
    ),
    *(
        (
            f'lon-out-of-range-{value}',
            GOOD.replace('\n-170,-60,', f'\n{value},-60,', 1),
            'value',
            'data row 1',
        )
        for value in ('275', '-180.01', '1e400')
    ),
]


@pytest.mark.parametrize(
    ('content', 'target', 'fragment'),
    [case[1:] for case in CSVS],
    ids=[case[0] for case in CSVS],
)
def test_task_from_bad_csv(
    tmp_path: Path, content: str | bytes, target: str, fragment: str
) -> None:
    path = tmp_path / 'task.csv'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding='utf-8')
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        task_from_csv(path, target)
    assert str(path) in str(info.value) or 'the longitude and latitude' in str(
        info.value
    )


@pytest.mark.parametrize(
    ('kwargs', 'fragment'),
    [
        ({'kind': 'ordinal'}, "kind must be 'auto', 'regression' or 'classification'"),
        ({'kind': None}, 'kind must be'),
        ({'lon_column': 'x', 'lat_column': 'x'}, "columns are both 'x'"),
    ],
)
def test_task_from_csv_options(
    tmp_path: Path, kwargs: dict[str, Any], fragment: str
) -> None:
    path = tmp_path / 'task.csv'
    path.write_text(GOOD)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        task_from_csv(path, 'value', **kwargs)


@pytest.mark.parametrize('value', ['nan', 'inf', '1_0', 'n/a', '٣'])
def test_regression_target_must_be_a_number(tmp_path: Path, value: str) -> None:
    path = tmp_path / 'task.csv'
    path.write_text(GOOD.replace(',-17.0\n', f',{value}\n', 1))
    with pytest.raises(
        ValueError, match=re.escape(f'value is {value!r}, expected a decimal')
    ):
        task_from_csv(path, 'value', kind='regression')


@pytest.mark.parametrize('value', ['1e999', '-1e999', '1.8e308', '999e307'])
@pytest.mark.parametrize('kind', ['regression', 'auto'])
def test_regression_target_must_be_finite(
    tmp_path: Path, value: str, kind: str
) -> None:
    """A decimal that overflows float64 is named by file, data row and column."""
    lines = GOOD.splitlines()
    lines[4] = lines[4].rsplit(',', 1)[0] + f',{value}'  # data row 4
    path = tmp_path / 'task.csv'
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match='expected a finite decimal number') as info:
        task_from_csv(path, 'value', kind=kind)  # type: ignore[arg-type]
    assert f'{path}, data row 4: value is {value!r}' in str(info.value)


def test_non_finite_target_row_counts_skipped_rows(tmp_path: Path) -> None:
    """Rows without a target are skipped but still counted in the data row."""
    lines = GOOD.splitlines()
    lines[2] = lines[2].rsplit(',', 1)[0] + ','  # data row 2 has no target
    lines[6] = lines[6].rsplit(',', 1)[0] + ',1e999'  # data row 6
    path = tmp_path / 'task.csv'
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=re.escape("data row 6: value is '1e999'")):
        task_from_csv(path, 'value', kind='regression')


def test_point_dataset_refuses_a_non_finite_target(tmp_path: Path) -> None:
    """No dataset of NaN labels: training on them ran to the end and exited 0."""
    from torchgeo_satclip.evaluation import PointDataModule, PointDataset

    lines = GOOD.splitlines()
    lines[4] = lines[4].rsplit(',', 1)[0] + ',1e999'
    path = tmp_path / 'task.csv'
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=re.escape('data row 4: value is')):
        PointDataset(path=str(path), target='value')
    datamodule = PointDataModule(path=str(path), target='value')
    with pytest.raises(ValueError, match=re.escape('data row 4: value is')):
        datamodule.setup('fit')


@pytest.mark.parametrize('standardize', [True, False])
def test_point_dataset_refuses_labels_that_overflow(
    standardize: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finite float64 targets whose float32 label (or its scale) overflows."""
    from torchgeo_satclip.evaluation import points

    lonlat = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]])
    huge = PointTask(
        'huge', lonlat, np.array([1.0, 1e300, -1e300]), 'regression', source='s'
    )
    monkeypatch.setattr(points, 'load_task', lambda *args, **kwargs: huge)
    with pytest.raises(ValueError, match=r"task 'huge' \(s\): the target") as e:
        points.PointDataset(task='huge', standardize=standardize)
    assert 'expected finite targets small enough' in str(e.value)


def test_bom_and_blank_lines_are_not_data(tmp_path: Path) -> None:
    path = tmp_path / 'task.csv'
    path.write_text('\ufeff' + GOOD + '\n\n', encoding='utf-8')
    loaded = task_from_csv(path, 'value')
    assert len(loaded) == GOOD.count('\n') - 1


@pytest.mark.parametrize(
    ('kwargs', 'fragment'),
    [
        *(
            ({'num_points': v}, 'num_points must be an integer')
            for v in (True, 2.5, '10', None)
        ),
        *(({'num_points': v}, 'num_points must be at least 1') for v in (0, -5)),
        *(({'seed': v}, 'seed must be an integer') for v in (False, 1.5, '0')),
        ({'seed': -1}, 'seed must be at least 0'),
        ({'name': 'nope'}, "unknown task 'nope'"),
        ({'name': 'Koppen'}, "unknown task 'Koppen'"),
        ({'name': 3}, 'unknown task 3'),
    ],
)
def test_load_task_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {'name': 'land_ocean', **kwargs}
    with pytest.raises(ValueError, match=re.escape(fragment)):
        load_task(**arguments)


def test_numeric_classes_are_numbers(tmp_path: Path) -> None:
    """'1' and '1.0' were two classes of a classification task."""
    rows = ['lon,lat,y'] + [
        f'{i}.5,{i % 80}.5,{label}'
        for i, label in enumerate(['1', '1.0', '2', '2.0', ' 2', '3.5', '3.50'] * 2)
    ]
    path = tmp_path / 'classes.csv'
    path.write_text('\n'.join(rows) + '\n')
    task = task_from_csv(path, 'y')
    assert task.kind == 'classification'
    assert task.classes == ['1', '2', '3.5']
    assert task.target.tolist() == [0, 0, 1, 1, 1, 2, 2] * 2


def test_class_names_around_spaces_are_one_class(tmp_path: Path) -> None:
    """'forest' and ' forest' (a CSV written with ', ') were two classes,
    silently, while ' 2' and '2' were one."""
    rows = ['lon,lat,y'] + [
        f'{i}.5,{i % 80}.5,{label}'
        for i, label in enumerate(['forest', ' forest', 'sea ', 'sea'] * 3)
    ]
    path = tmp_path / 'classes.csv'
    path.write_text('\n'.join(rows) + '\n')
    task = task_from_csv(path, 'y')
    assert task.classes == ['forest', 'sea']
    assert task.target.tolist() == [0, 0, 1, 1] * 3


def test_rows_without_a_target_are_skipped_whole(tmp_path: Path) -> None:
    """The documented skip: their coordinates are not read either."""
    path = tmp_path / 'skip.csv'
    path.write_text('lon,lat,y\n1.5,2.5,a\n,,\nnot,read,\n3.5,4.5,b\n')
    task = task_from_csv(path, 'y')
    assert task.lonlat.tolist() == [[1.5, 2.5], [3.5, 4.5]]
    assert task.classes == ['a', 'b']
    path.write_text('lon,lat,y\n1.5,2.5,a\nx,4.5,b\n')
    with pytest.raises(ValueError, match=r'data row 2: lon is .x.'):
        task_from_csv(path, 'y')


def test_run_probes_validates_each_task_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once per task (naming it), not again per encoder inside ``encode``."""
    from torchgeo_satclip.evaluation import probe

    calls: list[int] = []
    real = validate_lonlat

    def counted(lonlat: Any, **kwargs: Any) -> Any:
        calls.append(len(lonlat))
        return real(lonlat, **kwargs)

    monkeypatch.setattr(probe, 'validate_lonlat', counted)
    results = run_probes([task(40)], {'raw': raw, 'wrap': 'wrap', 'sh': 'sh'}, folds=2)
    assert len(results) == 3
    assert calls == [40]
    encode('raw', task(40).lonlat)  # encode alone still validates
    assert calls == [40, 40]


@pytest.mark.parametrize('value', ['nan', 'inf', 'abc', '12,5'])
def test_auto_target_of_numbers_with_a_bad_cell(tmp_path: Path, value: str) -> None:
    """200 numbers and one bad cell: refused, naming the row, not read as a
    task of 200 classes (which probed to an accuracy of 0 and exited 0)."""
    rng = np.random.default_rng(0)
    rows = [
        f'{lon:.3f},{lat:.3f},{lat / 3:.2f}'
        for lon, lat in zip(
            rng.uniform(-170, 170, 200), rng.uniform(-60, 60, 200), strict=True
        )
    ]
    rows.insert(57, f'10.000,20.000,"{value}"')  # data row 58
    path = tmp_path / 'task.csv'
    path.write_text('lon,lat,y\n' + '\n'.join(rows) + '\n')
    with pytest.raises(ValueError, match='a regression target') as info:
        task_from_csv(path, 'y')
    message = str(info.value)
    assert f"{path}, data row 58: target 'y' is {value!r}" in message
    assert '200 of the 201 targets are numbers' in message
    # a column of labels that are mostly words stays a classification
    words = [r.rsplit(',', 1)[0] + f',class{i % 3}' for i, r in enumerate(rows)]
    path.write_text('lon,lat,y\n' + '\n'.join(words) + '\n')
    assert task_from_csv(path, 'y').kind == 'classification'
    # and 200 numbers alone are a regression
    path.write_text(
        'lon,lat,y\n' + '\n'.join(r for i, r in enumerate(rows) if i != 57) + '\n'
    )
    assert task_from_csv(path, 'y').kind == 'regression'


@pytest.mark.parametrize(
    ('lonlat_shape', 'target_shape'),
    [((40, 2), (39,)), ((40, 2), (41,)), ((40, 2), (40, 1)), ((40,), (40,))],
)
def test_task_targets_must_be_one_per_point(
    lonlat_shape: tuple[int, ...], target_shape: tuple[int, ...]
) -> None:
    """A hand-made PointTask whose targets do not match its points failed
    with a bare IndexError (or probed the wrong rows) after the features."""
    base = task(40)
    lonlat = np.zeros(lonlat_shape)
    target = np.arange(math.prod(target_shape)).reshape(target_shape) % 2
    bad = PointTask('bad', lonlat, target, 'classification')
    with pytest.raises(ValueError, match=r"task 'bad' has lonlat of shape .*one per"):
        run_probes([base, bad], {'e': lambda points: points}, folds=2)


def test_small_spatial_blocks_far_apart_stay_apart() -> None:
    """Blocks were keyed col * 100000 + row: with blocks under about 0.0018
    degrees, (column 0, row 100000) and (column 1, row 0), 100 degrees of
    latitude apart, were one block (here: too few blocks for two folds)."""
    points = np.array([[-180 + 0.0005, 10.0005], [-179.9985, -89.9995]])
    folds = list(fold_indices(points, folds=2, split='spatial', block_size=0.001))
    assert sorted(test.tolist() for _, test in folds) == [[0], [1]]


@pytest.mark.parametrize(
    ('given', 'message'),
    [
        ({'tasks': []}, 'tasks must be a non-empty list of tasks, got []'),
        ({'encoders': []}, 'encoders must be a non-empty list of encoders, got []'),
        ({'encoders': {}}, 'encoders must be a non-empty list of encoders, got {}'),
        # a string was read letter by letter: "unknown encoder 's'"
        ({'encoders': 'sh'}, "encoders must be a non-empty list of encoders, got 'sh'"),
    ],
)
def test_run_probes_needs_tasks_and_encoders(
    given: dict[str, Any], message: str
) -> None:
    """No task or no encoder gave no result and an empty table, silently."""
    args: dict[str, Any] = {'tasks': [task(40)], 'encoders': {'raw': raw}}
    args.update(given)
    with pytest.raises(ValueError, match=re.escape(message)):
        run_probes(**args, folds=2)


@pytest.mark.parametrize(
    ('given', 'message'),
    [
        ({'tasks': []}, 'no task given: name built-in tasks (tasks) or CSV tasks'),
        ({'tasks': 'air_temperature'}, "tasks must be a list of task names, got 'air"),
        ({'encoders': []}, 'encoders must be a non-empty list of encoders, got []'),
        ({'encoders': 'sh'}, "encoders must be a non-empty list of encoders, got 'sh'"),
    ],
)
@pytest.mark.parametrize('plots', [False, True])
def test_probe_report_needs_tasks_and_encoders(
    given: dict[str, Any],
    message: str,
    plots: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without tasks or encoders, the report wrote an empty table (or, with
    plots, failed in matplotlib: "Number of columns must be a positive
    integer, not 0")."""
    import torchgeo_satclip.evaluation.report as report_module

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('worked before the check')

    monkeypatch.setattr(report_module, 'resolve_encoders', no_work)
    monkeypatch.setattr(report_module, 'load_task', no_work)
    args: dict[str, Any] = {'tasks': ['air_temperature'], 'encoders': ['raw']}
    args.update(given)
    with pytest.raises(ValueError, match=re.escape(message)):
        probe_report(tmp_path / 'out', **args, plots=plots)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('csv_tasks', 'message'),
    [
        (
            ('stations.csv', 'meanT'),
            'csv_tasks must be a list of (CSV path, target column) pairs; item 1 '
            "is 'stations.csv'",
        ),
        (
            'stations.csv',
            'csv_tasks must be a list of (CSV path, target column) pairs, got '
            "'stations.csv'",
        ),
        (
            [('stations.csv',)],
            'csv_tasks must be a list of (CSV path, target column) pairs; item 1 '
            "is ('stations.csv',)",
        ),
        (
            [('a.csv', 'y'), ('stations.csv', 3)],
            'csv_tasks must be a list of (CSV path, target column) pairs; item 2 '
            "is ('stations.csv', 3)",
        ),
        (
            [(3, 'y')],
            'csv_tasks must be a list of (CSV path, target column) pairs; item 1 '
            "is (3, 'y')",
        ),
    ],
)
def test_probe_report_refuses_csv_tasks_that_are_not_pairs(
    csv_tasks: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pair given without its list (csv_tasks=('stations.csv', 'meanT'))
    failed with Python's bare 'too many values to unpack (expected 2)', and a
    target that is not a column name with "'int' object has no attribute
    'lower'" after the built-in tasks were loaded."""
    import torchgeo_satclip.evaluation.report as report_module

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('worked before the check')

    monkeypatch.setattr(report_module, 'resolve_encoders', no_work)
    monkeypatch.setattr(report_module, 'load_task', no_work)
    with pytest.raises(ValueError, match=re.escape(message)):
        probe_report(tmp_path / 'out', [], ['raw'], csv_tasks=csv_tasks)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('given', 'message'),
    [
        ({'seed': 2**32}, 'seed must be between 0 and 4294967295, got 4294967296'),
        ({'folds': 1}, 'folds must be at least 2'),
        ({'block_size': -1.0}, 'block_size'),
        ({'protocols': ['knn']}, "unknown protocol 'knn'"),
        ({'splits': ['spacial']}, "unknown split 'spacial'"),
    ],
)
def test_probe_report_checks_probe_options_before_the_work(
    given: dict[str, Any],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A probe option that the probes refuse (a seed above 2**32 - 1, which the
    sampled tasks accept) was refused only once the checkpoints were loaded
    and every task sampled (up to a million points each)."""
    import torchgeo_satclip.evaluation.report as report_module

    def no_work(*args: Any, **kwargs: Any) -> None:
        raise AssertionError('worked before the check')

    monkeypatch.setattr(report_module, 'resolve_encoders', no_work)
    monkeypatch.setattr(report_module, 'load_task', no_work)
    with pytest.raises(ValueError, match=re.escape(message)):
        probe_report(tmp_path / 'out', ['air_temperature'], ['raw'], **given)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('n', [6, 11, 12, 14])
def test_range_split_too_small_for_the_search_of_alpha(n: int) -> None:
    """RANGE's classification probe chooses alpha by 10-fold stratified CV
    inside the 80 % training part: with fewer than 10 training points of
    its largest class, scikit-learn failed after the features were computed,
    and the message spoke of "range fold 1 of 5" (the split has one fold)."""
    calls = []

    def counting(lonlat: Any) -> Any:
        calls.append(len(lonlat))
        return lonlat

    with pytest.raises(
        ValueError,
        match=rf"task 'tiny{n}' \({n} points\), range fold 1 of 1: .*10-fold",
    ):
        run_probes([task(n)], {'raw': counting}, splits=['range'])
    assert calls == []  # refused before any feature was computed
    # the MLP probe has no search of alpha: not refused for it
    ((train, test),) = check_folds(task(n), 'range', protocols=['mlp'])
    assert len(train) + len(test) == n


def test_range_split_large_enough_for_the_search_of_alpha() -> None:
    # 25 points: 20 in the training part, 10 of each class at best
    (result,) = run_probes([task(25)], {'raw': raw}, splits=['range'])
    assert len(result.scores) == 1


@pytest.mark.parametrize('block_size', [0, 0.0, -10.0, math.nan, math.inf, True])
def test_fold_indices_refuses_a_bad_block_size(block_size: Any) -> None:
    """fold_indices, public, divided by the block size unchecked: 0 raised a
    bare ZeroDivisionError, -10 made folds of negative blocks with numpy
    warnings, NaN failed in a cast."""
    points = task(40).lonlat
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(
            ValueError, match=r'block_size must be a positive number of degrees, got'
        ):
            list(fold_indices(points, 2, 'spatial', block_size))


@pytest.mark.parametrize('block_size', [1e-20, 5e-18, 1e-10])
def test_fold_indices_refuses_a_block_size_too_small(block_size: float) -> None:
    """Below about 1e-17 degrees the block numbers overflowed int64: points
    far apart shared a block, or the run stopped with '1 blocks cannot make 2
    folds'. A block under 1e-9 degrees (0.1 mm) is refused by name."""
    points = task(40).lonlat
    with pytest.raises(
        ValueError, match=rf'block_size must be at least 1e-09 degrees .*{block_size!r}'
    ):
        list(fold_indices(points, 2, 'spatial', block_size))


@pytest.mark.parametrize('folds', [0, 1, -2, 2.5, True])
@pytest.mark.parametrize('split', ['random', 'spatial'])
def test_fold_indices_refuses_a_bad_number_of_folds(folds: Any, split: str) -> None:
    """0 or -2 folds yielded no fold at all (a probe with no score), 1 fold a
    fold with no training point, 2.5 a TypeError from range()."""
    points = task(40).lonlat
    with pytest.raises(ValueError, match=rf'folds must be .*, got {folds!r}'):
        list(fold_indices(points, folds, split, 30.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('folds', 'block_size', 'message'),
    [
        (0, 10.0, 'folds must be at least 2 (each fold is tested on a model fitted'),
        (5, 0.0, 'block_size must be a positive number of degrees, got 0.0'),
    ],
)
def test_check_folds_names_a_bad_option(
    folds: int, block_size: float, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        check_folds(task(40), 'spatial', folds, block_size)
    assert 'too small' not in str(info.value)


@pytest.mark.parametrize(
    ('n', 'kind', 'classes'),
    [
        (8, 'classification', 2),
        (12, 'classification', 2),
        (19, 'classification', 2),
        (30, 'classification', 4),
        (4, 'regression', 1),
        (12, 'regression', 1),
    ],
)
def test_mlp_probe_on_small_training_folds(n: int, kind: str, classes: int) -> None:
    """The MLP's early stopping holds out 10 % of the training fold: with
    too few points for it (2, and one per class) scikit-learn failed after
    the features were computed ('test_size = 1 should be greater or equal to
    the number of classes', 'The validation set is too small'). The MLP
    now trains without early stopping on such a fold."""
    small = task(n, kind, classes)
    (result,) = run_probes([small], {'raw': raw}, protocols=['mlp'], folds=2)
    assert len(result.scores) == 2
    assert all(np.isfinite(result.scores))


def test_mlp_probe_keeps_early_stopping_when_the_fold_allows() -> None:
    from torchgeo_satclip.evaluation.probe import make_probe

    assert make_probe('classification', 'mlp')[-1].early_stopping
    assert not make_probe('classification', 'mlp', early_stopping=False)[
        -1
    ].early_stopping
    regressor = make_probe('regression', 'mlp', early_stopping=False).regressor
    assert not regressor[-1].early_stopping


@pytest.mark.parametrize(
    ('n', 'kind', 'protocols'),
    [(12, 'regression', ['linear', 'mlp']), (8, 'classification', ['mlp'])],
)
def test_range_split_ignores_folds(
    n: int, kind: str, protocols: list[Literal['linear', 'mlp']]
) -> None:
    """RANGE's split is one 80/20 split whatever --folds says, but a task
    with fewer points than folds was refused as 'too small for 20-fold
    cross-validation ... use fewer folds'."""
    small = task(n, kind)
    ((train, test),) = check_folds(small, 'range', 20, protocols=protocols)
    assert len(train) + len(test) == n
    (result,) = run_probes(
        [small], {'raw': raw}, protocols=[protocols[-1]], splits=['range'], folds=20
    )
    assert len(result.scores) == 1


@pytest.mark.parametrize('folds', [2, 10])
def test_range_split_too_small_names_the_split(folds: int) -> None:
    with pytest.raises(
        ValueError, match=r"task 'tiny4' \(4 points\) is too small for RANGE's 80/20"
    ) as info:
        check_folds(task(4, 'regression'), 'range', folds)
    assert 'folds' not in str(info.value)


@pytest.mark.parametrize('seed', [-1, 2**32, 1.5, None])
@pytest.mark.parametrize('split', ['random', 'spatial'])
def test_fold_indices_refuses_a_bad_seed(seed: Any, split: str) -> None:
    with pytest.raises(ValueError, match=r'seed must be (an integer|between 0 and)'):
        fold_indices(task(40).lonlat, 2, split, 30.0, seed)  # type: ignore[arg-type]


@pytest.mark.parametrize('value', ['NaN', 'nan', 'NA', 'n/a', 'null', 'None', '-inf'])
@pytest.mark.parametrize('kind', ['auto', 'classification'])
def test_class_numbers_with_a_missing_value_cell(
    tmp_path: Path, value: str, kind: str
) -> None:
    """Class labels 0/1 with a 'NaN' (or 'NA', 'null') cell: the cell became
    a class of its own, named 'NaN', and was probed as one (a third class
    of missing values, with the accuracy counted on it)."""
    rows = [
        f'{lon},{lat},{i % 2}'
        for i, (lon, lat) in enumerate(
            zip(range(-150, 150, 10), range(-60, 60, 4), strict=True)
        )
    ]
    rows.insert(6, f'10,20,{value}')  # data row 7
    path = tmp_path / 'task.csv'
    path.write_text('lon,lat,y\n' + '\n'.join(rows) + '\n')
    with pytest.raises(ValueError, match='leave the cell empty') as info:
        task_from_csv(path, 'y', kind=kind)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"{path}, data row 7: target 'y' is {value!r}" in message
    assert 'the 30 other targets are numbers' in message
    # an empty cell skips its row, and words stay classes
    path.write_text(
        'lon,lat,y\n' + '\n'.join(rows).replace(f',{value}\n', ',\n') + '\n'
    )
    assert task_from_csv(path, 'y', kind=kind).classes == ['0', '1']  # type: ignore[arg-type]
    words = [
        r.rsplit(',', 1)[0] + (',NA' if i % 2 else ',EU') for i, r in enumerate(rows)
    ]
    path.write_text('lon,lat,y\n' + '\n'.join(words) + '\n')
    assert task_from_csv(path, 'y', kind=kind).classes == ['EU', 'NA']  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('lat', 'fragment'), [(math.nan, 'non-finite'), (300.0, 'latitude')]
)
@pytest.mark.parametrize('split', ['random', 'spatial', 'range'])
def test_cross_validate_refuses_a_task_of_bad_points(
    lat: float, fragment: str, split: str
) -> None:
    """cross_validate, called alone, took a task with a NaN or 300 degree
    latitude and scored it: the spatial blocks cast NaN to an integer (a
    RuntimeWarning) and put every such point in one arbitrary block."""
    bad = task(200, 'regression')
    bad.lonlat[7, 1] = lat
    features = np.random.default_rng(0).normal(size=(200, 3))
    with pytest.raises(ValueError, match=fragment) as info:
        cross_validate(features, bad, split=split)  # type: ignore[arg-type]
    assert "task 'tiny200', point 7 (from 0)" in str(info.value)


def test_numeric_class_labels_are_one_class_beside_words(tmp_path: Path) -> None:
    """'1' and '1.0' are one class, as documented, also when another label is
    a word: they were two classes ('1', '1.0') as soon as one label was not a
    number, so the probe was scored on telling a class from itself."""
    path = tmp_path / 'task.csv'
    labels = ['1', '1.0', 'other', ' 1 ', '2', '2.0'] * 3
    rows = [f'{-170 + 10 * i},{-40 + 4 * i},{v}' for i, v in enumerate(labels)]
    path.write_text('lon,lat,y\n' + '\n'.join(rows) + '\n')
    task = task_from_csv(path, 'y')
    assert task.classes == ['1', '2', 'other']
    assert task.target.tolist() == [0, 0, 2, 0, 1, 1] * 3


@pytest.mark.parametrize(
    ('batch_size', 'message'),
    [
        (-1, 'batch_size must be at least 1, got -1'),
        (0, 'batch_size must be at least 1, got 0'),
        (1.5, 'batch_size must be an integer, got 1.5'),
        (True, 'batch_size must be an integer, got True'),
    ],
)
def test_encode_refuses_a_batch_size_that_is_no_number_of_points(
    batch_size: Any, message: str
) -> None:
    """encode(batch_size=-1) gave (0, 0) features for every point, in silence
    (the probes then failed on the shape, naming no batch size); 0 failed
    with Python's 'range() arg 3 must not be zero', 1.5 with a TypeError."""
    lonlat = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=re.escape(message)):
        encode('raw', lonlat, batch_size=batch_size)
    one: Any = np.int64(1)  # a numpy integer is a batch size
    assert encode('raw', lonlat, batch_size=one).shape == (2, 2)


@pytest.mark.parametrize(
    ('device', 'message'),
    [
        ('gpu', "device 'gpu' is not a torch device"),
        (1, 'device must be a torch device'),
        ('cuda', "device 'cuda': no CUDA device is available"),
    ],
)
def test_a_device_this_machine_lacks_is_refused_before_any_encoder_loads(
    device: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """device='cuda' on a CPU machine (or 'gpu') loaded every encoder first,
    downloading released weights if need be, then failed with torch's own
    message naming no argument."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # a CPU machine
    missing = str(tmp_path / 'absent.ckpt')  # loading it would fail otherwise
    lonlat = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=re.escape(message)):
        encode(missing, lonlat, device=device)
    with pytest.raises(ValueError, match=re.escape(message)):
        run_probes([task(40)], [missing], folds=2, device=device)
