import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchgeo_satclip.embed import InputError, count_points, embed_file, read_points
from torchgeo_satclip.models import build_location_encoder

POINTS = [('paris', 2.35, 48.86), ('nyc', -74.0, 40.7), ('tokyo', 139.7, 35.7)]


@pytest.fixture
def encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)


def expected(encoder: torch.nn.Module) -> np.ndarray:
    lonlat = torch.tensor([p[1:] for p in POINTS], dtype=torch.float64)
    with torch.no_grad():
        return encoder.eval()(lonlat).float().numpy()


def write_csv(path: Path, rows: list[str], header: str = 'id,lon,lat') -> Path:
    path.write_text('\n'.join([header, *rows]) + '\n')
    return path


@pytest.fixture
def points_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / 'points.csv', [f'{n},{lon},{lat}' for n, lon, lat in POINTS]
    )


@pytest.mark.parametrize('layout', ['columns', 'list'])
def test_csv_to_parquet_keeps_ids(
    points_csv: Path, tmp_path: Path, encoder: torch.nn.Module, layout: str
) -> None:
    out = tmp_path / 'out.parquet'
    result = embed_file(
        encoder, points_csv, out, batch_size=2, progress=False, layout=layout
    )
    assert result.num_points == 3
    table = pq.read_table(out)
    assert table.column('id').to_pylist() == [p[0] for p in POINTS]
    assert table.column('lon').to_pylist() == [p[1] for p in POINTS]
    if layout == 'list':
        emb = np.array(table.column('embedding').to_pylist(), dtype=np.float32)
        assert pa.types.is_fixed_size_list(table.schema.field('embedding').type)
    else:
        emb = np.stack([table.column(f'emb_{i}').to_numpy() for i in range(4)], axis=1)
    np.testing.assert_allclose(emb, expected(encoder), rtol=1e-6)


def test_parquet_and_geojson_inputs(tmp_path: Path, encoder: torch.nn.Module) -> None:
    parquet = tmp_path / 'in.parquet'
    pq.write_table(
        pa.table(
            {
                'name': [p[0] for p in POINTS],
                'x': [p[1] for p in POINTS],
                'y': [p[2] for p in POINTS],
            }
        ),
        parquet,
    )
    out = tmp_path / 'out.npy'
    embed_file(encoder, parquet, out, 'x', 'y', batch_size=2, progress=False)
    np.testing.assert_allclose(np.load(out), expected(encoder), rtol=1e-6)
    geojson = tmp_path / 'in.geojson'
    features = [
        {
            'type': 'Feature',
            'geometry': {'type': 'Point', 'coordinates': [lon, lat]},
            'properties': {'name': name},
        }
        for name, lon, lat in POINTS
    ]
    geojson.write_text(json.dumps({'type': 'FeatureCollection', 'features': features}))
    assert count_points(geojson) == 3
    out_csv = tmp_path / 'out.csv'
    embed_file(encoder, geojson, out_csv, progress=False)
    lines = out_csv.read_text().splitlines()
    assert lines[0].split(',')[:3] == ['name', 'lon', 'lat']
    assert lines[2].startswith('nyc,-74.0,40.7,')


def test_swapped_columns_refused(tmp_path: Path, encoder: torch.nn.Module) -> None:
    path = write_csv(
        tmp_path / 'swapped.csv',
        [f'{n},{lat},{lon}' for n, lon, lat in POINTS],
        header='id,lat,lon',
    )
    path.write_text(path.read_text().replace('id,lat,lon', 'id,lon,lat'))
    with pytest.raises(InputError, match=r'line 4: latitude 139.7 .*look swapped'):
        embed_file(encoder, path, tmp_path / 'o.csv', progress=False)
    assert not (tmp_path / 'o.csv').exists()
    assert not list(tmp_path.glob('.o.csv*'))  # no temporary file left behind


def test_bad_row_reported_by_line(tmp_path: Path, encoder: torch.nn.Module) -> None:
    path = write_csv(tmp_path / 'bad.csv', ['a,1,2', 'b,3,4', 'c,oops,5'])
    with pytest.raises(InputError, match=r'bad\.csv, line 4: cannot read a number'):
        list(read_points(path))
    path = write_csv(tmp_path / 'nan.csv', ['a,1,2', 'b,nan,4'])
    with pytest.raises(InputError, match='line 3: non-finite'):
        list(read_points(path))
    parquet = tmp_path / 'bad.parquet'
    pq.write_table(pa.table({'lon': [1.0, 200.0], 'lat': [0.0, 0.0]}), parquet)
    with pytest.raises(InputError, match=r'row 2: longitude 200\.0'):
        list(read_points(parquet))
    with pytest.raises(InputError, match="no column 'longitude'"):
        list(read_points(path, lon_column='longitude'))


def test_no_silent_overwrite(
    points_csv: Path, tmp_path: Path, encoder: torch.nn.Module
) -> None:
    out = tmp_path / 'out.parquet'
    out.write_text('precious')
    with pytest.raises(FileExistsError, match='--overwrite'):
        embed_file(encoder, points_csv, out, progress=False)
    assert out.read_text() == 'precious'
    embed_file(encoder, points_csv, out, progress=False, overwrite=True)
    assert pq.read_table(out).num_rows == 3


def test_streams_in_bounded_batches(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / 'many.csv',
        [f'{i},{i % 360 - 180},{i % 180 - 90}' for i in range(25)],
    )
    sizes = [len(b.lonlat) for b in read_points(path, batch_size=10)]
    assert sizes == [10, 10, 5]
