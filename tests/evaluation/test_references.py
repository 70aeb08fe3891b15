"""Published figures beside measured ones; the zoo's 'geoclip'; RANGE's figures."""

from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

from torchgeo_satclip.cli import main
from torchgeo_satclip.evaluation import (
    PUBLISHED,
    RANGE_CV,
    RANGE_SEED,
    RANGE_SOURCE,
    ProbeResult,
    PublishedScore,
    cross_validate,
    encode,
    fold_indices,
    load_task,
    make_probe,
    probe_report,
    range_split,
    references_to_markdown,
    resolve_encoders,
)
from torchgeo_satclip.models import LocationEncoder, MultiScaleMLP

from ..geoclip_weights import installed_geoclip_weights


def result(encoder: str, mean: float, split: str = 'random') -> ProbeResult:
    scores = [mean] if split == 'range' else [mean - 0.01, mean + 0.01]
    return ProbeResult('air_temperature', encoder, 'linear', split, 'R2', scores)


def test_range_figures_are_the_published_ones() -> None:
    figures = {ref.model: ref.value for ref in PUBLISHED}
    assert figures == {
        'direct (lon, lat)': 0.381,
        'wrap': 0.861,
        'sphereC+': 0.842,
        'CSP-fMoW': 0.865,
        'SINR': 0.942,
        'GeoCLIP': 0.916,
        'SatCLIP-ViT16-L40': 0.825,
        'RANGE+': 0.931,
    }
    zoo = {ref.model: ref.encoder for ref in PUBLISHED if ref.encoder}
    assert zoo == {
        'direct (lon, lat)': 'raw',
        'wrap': 'wrap',
        'GeoCLIP': 'geoclip',
        'SatCLIP-ViT16-L40': 'vit16_l40',
    }
    assert all(ref.source == RANGE_SOURCE for ref in PUBLISHED)


def test_measured_beside_published() -> None:
    text = references_to_markdown(
        [
            result('raw', 0.40),
            result('raw', 0.3814, 'range'),
            result('geoclip', 0.90),
            result('geoclip', 0.5, 'spatial'),
        ]
    )
    lines = text.splitlines()
    raw = next(line for line in lines if 'direct (lon, lat)' in line)
    assert '| raw | direct (lon, lat) [1] | 0.381 | 0.381 | +0.000 |' in raw
    assert '| 0.400 +- 0.010 | +0.019 |' in raw
    geoclip = next(line for line in lines if 'GeoCLIP' in line)
    assert (
        '| geoclip | GeoCLIP [1] | 0.916 |  |  | 0.900 +- 0.010 | -0.016 |' in geoclip
    )
    sinr = next(line for line in lines if 'SINR' in line)
    assert '|  | SINR [1] | 0.942 |  |  |  |  |' in sinr  # published only
    wrap = next(line for line in lines if '| wrap [1]' in line)
    assert '|  | wrap [1] | 0.861 |  |  |  |  |' in wrap  # wrap was not run
    assert lines[-1] == f'[1] {RANGE_SOURCE}'


@pytest.mark.parametrize(
    ('measured', 'published', 'shown'),
    [
        (0.4865, 0.476, '0.486 | +0.010'),  # 0.4865 is 0.48649999... in binary
        (0.2225, 0.558, '0.223 | -0.335'),
        (0.3814, 0.3806, '0.381 | +0.000'),  # a published figure of 4 decimals
    ],
)
def test_the_difference_is_that_of_the_figures_shown(
    measured: float, published: float, shown: str
) -> None:
    """The difference was taken before rounding: '0.486 | +0.011' beside 0.476."""
    mine = PublishedScore(
        'air_temperature', 'Mine', 'raw', 'R2', published, 'linear', 'range', 'Paper'
    )
    text = references_to_markdown([result('raw', measured, 'range')], [mine])
    row = next(line for line in text.splitlines() if 'Mine' in line)
    assert f'| {published:.3f} | {shown} |' in row


def test_nothing_to_compare() -> None:
    other = ProbeResult('koppen', 'raw', 'linear', 'random', 'accuracy', [0.3])
    assert references_to_markdown([other]) == ''
    assert references_to_markdown([result('raw', 0.4)], published=()) == ''


def test_several_sources_are_numbered() -> None:
    mine = PublishedScore(
        'air_temperature', 'Mine', 'raw', 'R2', 0.5, 'linear', 'random', 'My paper'
    )
    text = references_to_markdown([result('raw', 0.4)], [*PUBLISHED[:1], mine])
    assert '| raw | Mine [2] | 0.500 | 0.400 +- 0.010 | -0.100 |' in text
    assert text.splitlines()[-1] == '[2] My paper'


# ------------------------------------------------------------ RANGE's split
def test_range_split_is_torch_random_split() -> None:
    """80/20 as torch.utils.data.random_split with a generator seeded 42."""
    from torch.utils.data import Dataset, random_split

    train, test = range_split(3076)
    assert (len(train), len(test)) == (2461, 615)
    expected = random_split(
        cast(Dataset[int], range(3076)),  # random_split only takes its len()
        [0.8, 0.2],
        generator=torch.Generator().manual_seed(RANGE_SEED),
    )
    assert list(train) == list(expected[0].indices)
    assert list(test) == list(expected[1].indices)
    for n in (5, 7, 10, 11, 999):
        train, test = range_split(n)
        parts = random_split(
            cast(Dataset[int], range(n)),
            [0.8, 0.2],
            generator=torch.Generator().manual_seed(42),
        )
        assert [len(train), len(test)] == [len(part) for part in parts]
        assert sorted([*train, *test]) == list(range(n))
    with pytest.raises(ValueError, match='cannot make'):
        range_split(4)


def test_range_split_in_cross_validation() -> None:
    task = load_task('air_temperature')
    pairs = list(fold_indices(task.lonlat, folds=5, split='range', seed=3))
    assert len(pairs) == 1  # one split; folds and seed do not apply
    np.testing.assert_array_equal(pairs[0][0], range_split(len(task))[0])
    out = cross_validate(encode('wrap', task.lonlat), task, split='range')
    assert out.split == 'range'
    assert len(out.scores) == 1
    assert make_probe('regression', cv=RANGE_CV['regression'])[-1].cv == 3
    assert make_probe('classification', cv=RANGE_CV['classification'])[-1].cv == 10
    assert make_probe('regression')[-1].cv is None


# ------------------------------------------------------------ the zoo's geoclip
@pytest.mark.usefixtures('geoclip_available')
def test_geoclip_in_the_zoo() -> None:
    named = resolve_encoders(['raw', 'geoclip', 'GeoCLIPWeights.GEOCLIP'])
    assert list(named) == ['raw', 'geoclip', 'geoclip_2']
    encoder = named['geoclip']
    assert isinstance(encoder, LocationEncoder)
    assert isinstance(encoder.nnet, MultiScaleMLP)
    assert encoder.dtype == torch.float32  # GeoCLIP's own precision
    features = encode('geoclip', load_task('air_temperature').lonlat[:7])
    assert features.shape == (7, 512)


@pytest.mark.usefixtures('no_geoclip')
def test_geoclip_without_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=r'torchgeo-satclip\[geoclip\]'):
        resolve_encoders(['raw', 'geoclip'])
    status = main(
        ['probe', '--encoders', 'raw', 'geoclip', '--output-dir', str(tmp_path / 'o')]
    )
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'pip install "torchgeo-satclip[geoclip]"' in err
    assert not (tmp_path / 'o').exists()  # nothing computed or written


def test_report_and_cli_print_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = probe_report(
        tmp_path / 'a',
        ['air_temperature'],
        ['raw'],
        splits=('random',),
        folds=2,
        plots=False,
        references=True,
    )
    assert report.published == tmp_path / 'a' / 'published.md'
    assert 'direct (lon, lat) [1]' in report.published.read_text()
    plain = probe_report(
        tmp_path / 'b',
        ['air_temperature'],
        ['raw'],
        splits=('random',),
        folds=2,
        plots=False,
    )
    assert plain.published is None
    assert not (tmp_path / 'b' / 'published.md').exists()

    args = [
        'probe',
        '--tasks',
        'air_temperature',
        '--encoders',
        'raw',
        '--cv',
        'range',
    ]
    args += ['--folds', '2', '--no-plots', '--output-dir', str(tmp_path / 'c')]
    assert main([*args, '--references']) == 0
    out = capsys.readouterr().out
    assert '| raw | direct (lon, lat) [1] | 0.381 | 0.381 | +0.000 |  |  |' in out
    assert RANGE_SOURCE in out
    assert (tmp_path / 'c' / 'published.md').is_file()
    again = [*args, '--tasks', 'koppen', '--num-points', '300', '--references']
    assert main([*again, '--overwrite']) == 0
    assert 'no result has a published counterpart' in capsys.readouterr().out
    # the first run's published.md is no result of this one: removed
    assert not (tmp_path / 'c' / 'published.md').exists()


# ------------------------------------------- RANGE's figures, reproduced here
def range_figure(encoder: str) -> float:
    return next(ref.value for ref in PUBLISHED if ref.encoder == encoder)


@pytest.mark.parametrize('encoder', ['raw', 'wrap'])
def test_range_figures_reproduced(encoder: str) -> None:
    """RANGE's own evaluation gives RANGE's published figure, to the third decimal."""
    task = load_task('air_temperature')
    features = encode(encoder, task.lonlat)
    measured = cross_validate(features, task, split='range').mean
    assert abs(measured - range_figure(encoder)) < 5e-4, measured
    # Random 5-fold CV averages over every station: within +-0.03 of it.
    kfold = cross_validate(features, task, folds=5).mean
    assert abs(kfold - range_figure(encoder)) <= 0.03, kfold


@pytest.mark.skipif(
    installed_geoclip_weights() is None,
    reason='the geoclip extra is not installed (pip install -e ".[tests]")',
)
def test_geoclip_range_figure_reproduced() -> None:
    task = load_task('air_temperature')
    features = encode('geoclip', task.lonlat)
    measured = cross_validate(features, task, split='range').mean
    assert abs(measured - range_figure('geoclip')) < 5e-4, measured
    kfold = cross_validate(features, task, folds=5).mean
    assert abs(kfold - range_figure('geoclip')) <= 0.03, kfold
