from pathlib import Path

import pyarrow.parquet as pq
import pytest

from torchgeo_satclip.cli import build_parser, main


@pytest.fixture
def points_csv(tmp_path: Path) -> Path:
    path = tmp_path / 'points.csv'
    path.write_text('name,lon,lat\nParis,2.35,48.86\nNew York,-74.0,40.7\n')
    return path


def test_embed_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(['embed', '--help'])
    text = capsys.readouterr().out
    for option in [
        '--weights',
        '--lon-column',
        '--lat-column',
        '--batch-size',
        '--device',
        '--overwrite',
        '--layout',
        '--quiet',
        '.parquet',
        'swapped',
    ]:
        assert option in text
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    for name in ('embed', 'probe'):
        for action in sub.choices[name]._actions:
            assert action.help, f'{name} {action.dest} has no help'


def test_embed_csv_to_parquet_round_trip(points_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / 'emb.parquet'
    args = ['embed', str(points_csv), str(out), '--legendre-polys', '3', '--quiet']
    assert main(args) == 0
    table = pq.read_table(out)
    assert table.column('name').to_pylist() == ['Paris', 'New York']
    assert table.num_columns == 3 + 256
    assert main(args) == 2  # exists: refused
    assert main([*args, '--overwrite', '--layout', 'list']) == 0
    assert pq.read_table(out).column_names == ['name', 'lon', 'lat', 'embedding']


def test_embed_swapped_and_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped = tmp_path / 'swapped.csv'
    swapped.write_text('name,lon,lat\nParis,48.86,2.35\nTokyo,35.7,139.7\n')
    assert main(['embed', str(swapped), str(tmp_path / 'o.parquet'), '--quiet']) == 2
    err = capsys.readouterr().err
    assert 'line 3' in err
    assert 'swapped' in err
    assert not (tmp_path / 'o.parquet').exists()
    bad = tmp_path / 'bad.csv'
    bad.write_text('name,lon,lat\nParis,2.35,48.86\nNowhere,,\n')
    assert main(['embed', str(bad), str(tmp_path / 'o.npy'), '--quiet']) == 2
    assert 'bad.csv, line 3' in capsys.readouterr().err


def test_readme_main_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'cities_embeddings.csv'
    args = [
        'embed',
        'examples/cities.csv',
        str(out),
        '--weights',
        'random',
        '--overwrite',
        '--neighbours',
        '--quiet',
    ]
    assert main(args) == 0
    assert 'Paris' in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 12


def test_probe_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = tmp_path / 'user.csv'
    rows = [
        f'{lon},{lat},{lat * 0.5 + 3}'
        for lon in range(-170, 180, 20)
        for lat in range(-80, 81, 20)
    ]
    user.write_text('lon,lat,value\n' + '\n'.join(rows) + '\n')
    out = tmp_path / 'probe'
    args = [
        'probe',
        '--tasks',
        'air_temperature',
        '--csv',
        f'{user}:value',
        '--encoders',
        'raw',
        'sh',
        '--cv',
        'random',
        '--folds',
        '3',
        '--output-dir',
        str(out),
        '--map-resolution',
        '10',
    ]
    assert main(args) == 0
    text = (out / 'probe_results.md').read_text()
    assert 'air_temperature' in text
    assert 'user:value' in text
    for name in ('probe_results.csv', 'scores.png', 'pca_sh.png'):
        assert (out / name).stat().st_size > 0
    assert main(['probe', '--tasks', 'nope']) == 2
