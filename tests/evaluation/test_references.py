"""Published figures beside measured ones; the zoo's 'geoclip'; RANGE's figures."""

from pathlib import Path

import pytest
import torch

from torchgeo_satclip.cli import main
from torchgeo_satclip.evaluation import (
    PUBLISHED,
    RANGE_SOURCE,
    ProbeResult,
    PublishedScore,
    cross_validate,
    encode,
    load_task,
    probe_report,
    references_to_markdown,
    resolve_encoders,
)
from torchgeo_satclip.models import LocationEncoder, MultiScaleMLP

from ..geoclip_weights import installed_geoclip_weights


def result(encoder: str, mean: float, split: str = 'random') -> ProbeResult:
    return ProbeResult(
        'air_temperature', encoder, 'linear', split, 'R2', [mean - 0.01, mean + 0.01]
    )


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
            result('geoclip', 0.90),
            result('geoclip', 0.5, 'spatial'),
        ]
    )
    lines = text.splitlines()
    raw = next(line for line in lines if 'direct (lon, lat)' in line)
    assert '| raw |' in raw
    assert '0.400 +- 0.010 | 0.381 | +0.019 |' in raw
    geoclip = next(line for line in lines if 'GeoCLIP' in line)
    assert '0.900 +- 0.010 | 0.916 | -0.016 |' in geoclip  # the random-CV one
    sinr = next(line for line in lines if 'SINR' in line)
    assert '| | SINR [1] | | 0.942 | |' in sinr  # published only
    wrap = next(line for line in lines if '| wrap [1]' in line)
    assert '| | wrap [1] | | 0.861 | |' in wrap  # wrap was not run
    assert lines[-1] == f'[1] {RANGE_SOURCE}'


def test_nothing_to_compare() -> None:
    other = ProbeResult('koppen', 'raw', 'linear', 'random', 'accuracy', [0.3])
    assert references_to_markdown([other]) == ''
    assert references_to_markdown([result('raw', 0.4)], published=()) == ''


def test_several_sources_are_numbered() -> None:
    mine = PublishedScore(
        'air_temperature', 'Mine', 'raw', 'R2', 0.5, 'linear', 'random', 'My paper'
    )
    text = references_to_markdown([result('raw', 0.4)], [*PUBLISHED[:1], mine])
    assert '| raw | Mine [2] | 0.400 +- 0.010 | 0.500 | -0.100 |' in text
    assert text.splitlines()[-1] == '[2] My paper'


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
        'random',
    ]
    args += ['--folds', '2', '--no-plots', '--output-dir', str(tmp_path / 'c')]
    assert main([*args, '--references']) == 0
    out = capsys.readouterr().out
    assert 'measured - published' in out
    assert RANGE_SOURCE in out
    assert (
        main([*args, '--tasks', 'koppen', '--num-points', '300', '--references']) == 0
    )
    assert 'no result has a published counterpart' in capsys.readouterr().out


# ------------------------------------------- RANGE's figures, reproduced here
def range_figure(encoder: str) -> float:
    return next(ref.value for ref in PUBLISHED if ref.encoder == encoder)


@pytest.mark.parametrize('encoder', ['raw', 'wrap'])
def test_air_temperature_within_003_of_range(encoder: str) -> None:
    """Random 5-fold CV of the linear probe, as RANGE: within +-0.03 of its table."""
    task = load_task('air_temperature')
    measured = cross_validate(encode(encoder, task.lonlat), task, folds=5).mean
    assert abs(measured - range_figure(encoder)) <= 0.03, measured


@pytest.mark.skipif(
    installed_geoclip_weights() is None,
    reason='the geoclip extra is not installed (pip install -e ".[tests]")',
)
def test_geoclip_air_temperature_within_003_of_range() -> None:
    task = load_task('air_temperature')
    measured = cross_validate(encode('geoclip', task.lonlat), task, folds=5).mean
    assert abs(measured - range_figure('geoclip')) <= 0.03, measured
