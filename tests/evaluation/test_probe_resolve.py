"""Probe and embed resolve every encoder first and fail in one line."""

import urllib.error
from pathlib import Path

import pytest
import torch

from torchgeo_satclip.cli import main
from torchgeo_satclip.evaluation import probe_report, resolve_encoders
from torchgeo_satclip.models import build_location_encoder, save_official_checkpoint


def offline(url: str, dst: str, progress: bool = True) -> None:
    raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')


@pytest.fixture
def no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    return tmp_path / 'hub' / 'checkpoints'


def checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    encoder = build_location_encoder(legendre_polys=4, capacity=8, embed_dim=4)
    return save_official_checkpoint(encoder, path)


def test_unknown_encoder_lists_the_builtin_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown encoder 'nope'.*raw, wrap, sh, sh20"
    ):
        resolve_encoders(['raw', 'nope'])


def test_same_stems_get_unique_names(tmp_path: Path) -> None:
    a = checkpoint(tmp_path / 'run_a' / 'last.ckpt', 0)
    b = checkpoint(tmp_path / 'run_b' / 'last.ckpt', 1)
    named = resolve_encoders(['sh', str(a), str(b)])
    assert list(named) == ['sh', 'run_a_last', 'run_b_last']


def test_a_numbered_name_never_takes_another_encoders(tmp_path: Path) -> None:
    # x/run/last.ckpt and y/run/last.ckpt are both "run_last"; the repeat was
    # numbered run_last_2, the name of z/run_last_2.ckpt, and one of the
    # three encoders was silently dropped from the probe.
    a = checkpoint(tmp_path / 'x' / 'run' / 'last.ckpt', 0)
    b = checkpoint(tmp_path / 'y' / 'run' / 'last.ckpt', 1)
    c = checkpoint(tmp_path / 'z' / 'run_last_2.ckpt', 2)
    named = resolve_encoders([str(a), str(b), str(c)])
    assert list(named) == ['run_last', 'run_last_3', 'run_last_2']
    first = {name: next(iter(module.parameters())) for name, module in named.items()}
    assert not torch.equal(first['run_last'], first['run_last_3'])
    assert not torch.equal(first['run_last_3'], first['run_last_2'])
    # the same for repeated built-in names beside a file named like a repeat
    sh_2 = checkpoint(tmp_path / 'sh_2.ckpt', 3)
    assert list(resolve_encoders(['sh', 'sh', str(sh_2)])) == ['sh', 'sh_3', 'sh_2']


def test_two_last_ckpt_maps_do_not_overwrite(tmp_path: Path) -> None:
    a = checkpoint(tmp_path / 'run_a' / 'last.ckpt', 0)
    b = checkpoint(tmp_path / 'run_b' / 'last.ckpt', 1)
    out = tmp_path / 'out'
    report = probe_report(
        out,
        ['air_temperature'],
        [str(a), str(b)],
        splits=('random',),
        folds=2,
        map_resolution=30.0,
    )
    names = sorted(path.name for path in report.figures)
    assert names == ['pca_run_a_last.png', 'pca_run_b_last.png', 'scores.png']
    assert 'run_a_last' in report.markdown.read_text()


@pytest.mark.parametrize('stem', ['raw', 'wrap', 'sh', 'sh20', 'geoclip'])
def test_a_checkpoint_is_never_named_as_a_builtin_encoder(
    tmp_path: Path, stem: str
) -> None:
    """A checkpoint saved as raw.ckpt (or wrap.ckpt, geoclip.ckpt) was shown
    as 'raw': its PCA map was skipped as raw's, and published.md set its
    score beside RANGE's published figure for raw coordinates (or wrap,
    GeoCLIP), a comparison with another encoder."""
    path = checkpoint(tmp_path / f'{stem}.ckpt', 0)
    assert list(resolve_encoders([str(path)])) == [f'{stem}_ckpt']
    assert list(resolve_encoders([stem, str(path)]))[1] == f'{stem}_ckpt'
    report = probe_report(
        tmp_path / 'out',
        ['air_temperature'],
        [str(path)],
        splits=('random',),
        folds=2,
        map_resolution=30.0,
        references=True,
    )
    names = sorted(figure.name for figure in report.figures)
    assert names == [f'pca_{stem}_ckpt.png', 'scores.png']
    assert report.published is not None
    published = report.published.read_text()
    assert f'| {stem} |' not in published
    assert '0.381 | 0.381' not in published


def test_probe_offline_fails_first_in_one_line(
    no_network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'probe'
    args = ['probe', '--tasks', 'air_temperature', '--encoders', 'raw']
    status = main([*args, 'SATCLIP_VIT16_L40', '--output-dir', str(out)])
    assert status == 1  # a failure at run time (no network), not a usage error
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert 'no network' in err
    assert str(no_network / 'satclip-vit16-l40.ckpt') in err
    assert 'raw' not in captured.out  # nothing computed before the failure
    assert not out.exists()


def test_embed_offline_is_one_line(
    no_network: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / 'points.csv'
    points.write_text('lon,lat\n2.35,48.86\n')
    args = ['embed', str(points), str(tmp_path / 'out.csv')]
    assert main([*args, '--weights', 'SATCLIP_RESNET18_L10']) == 1  # run time
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert 'no network' in err
    assert str(no_network / 'satclip-resnet18-l10.ckpt') in err


@pytest.mark.parametrize(
    'spec',
    [
        'SatCLIPWeights.GEOCLIP',
        'Foo.GEOCLIP',
        'GeoCLIPWeights.SATCLIP_RESNET18_L10',
        'Foo.SATCLIP_RESNET18_L10',
    ],
)
def test_a_member_after_the_wrong_class_is_an_unknown_encoder(
    spec: str, no_network: Path
) -> None:
    """Any 'X.GEOCLIP' or 'X.SATCLIP_...' passed as a weights name and was
    then refused by the loader (models.released.weights_member) with
    another message: the probe's rule is now the loader's."""
    with pytest.raises(ValueError, match=rf"unknown encoder '{spec}'"):
        resolve_encoders([spec])


@pytest.mark.parametrize(
    'spec', ['geoclip', 'GEOCLIP', 'GeoCLIPWeights.GEOCLIP', 'x.GeoCLIPWeights.geoclip']
)
def test_geoclip_names_are_recognised(spec: str) -> None:
    from torchgeo_satclip.evaluation.probe import _is_geoclip, _short_name

    assert _is_geoclip(spec)
    assert _short_name(spec) == 'geoclip'


@pytest.mark.parametrize('stem', ['vit16_l40', 'resnet18_l10'])
def test_a_checkpoint_is_never_named_as_released_weights(
    tmp_path: Path, stem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's checkpoint saved as vit16_l40.ckpt was named 'vit16_l40', the
    name of SATCLIP_VIT16_L40, and published.md set its score beside RANGE's
    published SatCLIP-ViT16-L40 figure as if it were the released model.
    Two files l40.ckpt, one in a folder vit16, were named so too, and so was
    a file named SATCLIP_VIT16_L40 (which the loader reads as a file)."""
    from torchgeo_satclip.evaluation import ProbeResult, references_to_markdown

    path = checkpoint(tmp_path / f'{stem}.ckpt', 0)
    assert list(resolve_encoders([str(path)])) == [f'{stem}_ckpt']
    result = ProbeResult(
        'air_temperature', f'{stem}_ckpt', 'linear', 'range', 'R2', [0.5]
    )
    assert f'| {stem} |' not in references_to_markdown([result])
    folder, _, rest = stem.partition('_')
    a = checkpoint(tmp_path / folder / f'{rest}.ckpt', 1)
    b = checkpoint(tmp_path / 'other' / f'{rest}.ckpt', 2)
    assert list(resolve_encoders([str(a), str(b)])) == [
        f'{stem}_ckpt',
        f'other_{rest}',
    ]
    monkeypatch.chdir(tmp_path)
    weights = f'SATCLIP_{stem.upper()}'
    checkpoint(tmp_path / weights, 3)
    checkpoint(tmp_path / stem, 4)
    assert list(resolve_encoders([weights, stem])) == [weights, f'{stem}_file']
