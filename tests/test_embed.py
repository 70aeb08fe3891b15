import copy
import json
import re
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from torchgeo_satclip.embed import (
    InputError,
    count_points,
    embed_file,
    embed_points,
    nearest_neighbours,
    pipeline,
    read_points,
)
from torchgeo_satclip.models import LocationEncoder, build_location_encoder

POINTS = [('paris', 2.35, 48.86), ('nyc', -74.0, 40.7), ('tokyo', 139.7, 35.7)]


@pytest.fixture
def encoder() -> LocationEncoder:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)


def expected(encoder: LocationEncoder) -> np.ndarray:
    lonlat = torch.tensor([p[1:] for p in POINTS], dtype=torch.float64)
    with torch.no_grad():
        return cast(np.ndarray, encoder.eval()(lonlat).float().numpy())


def write_csv(path: Path, rows: list[str], header: str = 'id,lon,lat') -> Path:
    path.write_text('\n'.join([header, *rows]) + '\n', encoding='utf-8')
    return path


@pytest.fixture
def points_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / 'points.csv', [f'{n},{lon},{lat}' for n, lon, lat in POINTS]
    )


@pytest.mark.parametrize('layout', ['columns', 'list'])
def test_csv_to_parquet_keeps_ids(
    points_csv: Path,
    tmp_path: Path,
    encoder: LocationEncoder,
    layout: Literal['columns', 'list'],
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


def test_parquet_and_geojson_inputs(tmp_path: Path, encoder: LocationEncoder) -> None:
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
    assert lines[2].startswith('nyc,-74.0,40.7,')  # shortest float text


def _feature_collection(path: Path, ids: list[Any], properties: list[Any]) -> None:
    features = []
    for (_, lon, lat), fid, props in zip(POINTS, ids, properties, strict=True):
        feature: dict[str, Any] = {
            'type': 'Feature',
            'geometry': {'type': 'Point', 'coordinates': [lon, lat]},
            'properties': props,
        }
        if fid is not None:
            feature['id'] = fid
        features.append(feature)
    path.write_text(
        json.dumps({'type': 'FeatureCollection', 'features': features}),
        encoding='utf-8',
    )


def test_geojson_feature_ids_are_kept(tmp_path: Path, encoder: LocationEncoder) -> None:
    """A Feature's top-level "id" (RFC 7946, section 3.2) was dropped: only
    the properties became columns, so the output matched the input by order
    only. It is now the first column (null where a feature has none)."""
    geojson = tmp_path / 'in.geojson'
    _feature_collection(geojson, ['a', None, 'c'], [{'n': 1}, {'n': 2}, None])
    out = tmp_path / 'out.parquet'
    embed_file(encoder, geojson, out, progress=False)
    table = pq.read_table(out)
    assert table.column_names[:4] == ['id', 'n', 'lon', 'lat']
    assert table.column('id').to_pylist() == ['a', None, 'c']
    assert table.column('n').to_pylist() == [1, 2, None]
    numbered = tmp_path / 'numbered.geojson'
    _feature_collection(numbered, [7, 8, 9], [{}, {}, {}])
    embed_file(encoder, numbered, out, progress=False, overwrite=True)
    assert pq.read_table(out).column('id').to_pylist() == [7, 8, 9]


@pytest.mark.parametrize(
    ('ids', 'properties', 'message'),
    [
        (['a', 'b', 'c'], [{}, {'id': 2}, {}], 'feature 2: a property is named "id"'),
        (['a', [1], 'c'], [{}, {}, {}], 'feature 2: "id" must be a string or a number'),
        (
            ['a', True, 'c'],
            [{}, {}, {}],
            'feature 2: "id" must be a string or a number',
        ),
    ],
)
def test_geojson_bad_feature_ids(
    tmp_path: Path,
    encoder: LocationEncoder,
    ids: list[Any],
    properties: list[Any],
    message: str,
) -> None:
    geojson = tmp_path / 'in.geojson'
    _feature_collection(geojson, ids, properties)
    with pytest.raises(InputError, match=re.escape(message)):
        embed_file(encoder, geojson, tmp_path / 'out.parquet', progress=False)


def pandas_frame(index: str) -> pd.DataFrame:
    """Some points with a ``name`` column and an index of the kind asked for."""
    frame = pd.DataFrame(
        {
            'name': [f'p{i}' for i in range(300)],
            'lon': np.linspace(-170.0, 170.0, 300),
            'lat': np.linspace(-80.0, 80.0, 300),
        }
    )
    if index == 'slice':  # a RangeIndex 100..109: pandas stores it as metadata
        return frame.iloc[100:110]
    if index == 'reversed':  # a RangeIndex 25, 22, ... 1 (step -3)
        return frame.iloc[25:0:-3]
    if index == 'named':  # a RangeIndex named 'row' (metadata only)
        return frame.rename_axis('row').iloc[50:60]
    if index == 'text':  # an index stored as a column
        return frame.iloc[:10].set_index('name')
    return frame.iloc[:10]  # the default RangeIndex 0..9


@pytest.mark.parametrize('index', ['slice', 'reversed', 'named', 'text', 'default'])
def test_parquet_written_by_pandas_keeps_its_index(
    index: str, tmp_path: Path, encoder: LocationEncoder
) -> None:
    """pandas stores a RangeIndex (``df.iloc[100:200]``) in its metadata only:
    its labels were lost, and a stored index came back as a column named
    ``__index_level_0__``. pandas reads the output with the input's index."""
    frame = pandas_frame(index)
    src = tmp_path / 'in.parquet'
    frame.to_parquet(src)
    out = tmp_path / 'out.parquet'
    embed_file(encoder, src, out, batch_size=4, progress=False)
    back = pd.read_parquet(out)
    pd.testing.assert_index_equal(back.index, pd.read_parquet(src).index, exact='equiv')
    assert list(back.columns) == [
        *(c for c in frame.columns if c not in ('lon', 'lat')),
        'lon',
        'lat',
        *(f'emb_{i}' for i in range(4)),
    ]
    np.testing.assert_array_equal(back['lat'], frame['lat'])
    if index == 'default':  # nothing to keep: no column is added
        emb = [f'emb_{i}' for i in range(4)]
        assert pq.read_schema(out).names == ['name', 'lon', 'lat', *emb]
    csv_out = tmp_path / 'out.csv'
    embed_file(encoder, src, csv_out, batch_size=4, progress=False)
    rows = pd.read_csv(csv_out)
    if index != 'default':  # the labels are a column of the CSV output
        label = frame.index.name or '__index_level_0__'
        assert rows[label].tolist() == frame.index.tolist()


def test_swapped_columns_refused(tmp_path: Path, encoder: LocationEncoder) -> None:
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


def test_bad_row_reported_by_line(tmp_path: Path, encoder: LocationEncoder) -> None:
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
    points_csv: Path, tmp_path: Path, encoder: LocationEncoder
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


SEVEN = [(f'p{i}', -170.0 + 50.0 * i, -60.0 + 20.0 * i) for i in range(7)]


def read_output(path: Path, dim: int) -> tuple[list[str] | None, np.ndarray]:
    if path.suffix == '.npy':
        return None, np.load(path)
    if path.suffix == '.csv':
        import csv

        with path.open(encoding='utf-8', newline='') as handle:
            rows = list(csv.DictReader(handle))
        ids = [r['id'] for r in rows]
        return ids, np.array([[float(r[f'emb_{i}']) for i in range(dim)] for r in rows])
    table = pq.read_table(path)
    emb = np.stack([table.column(f'emb_{i}').to_numpy() for i in range(dim)], axis=1)
    return table.column('id').to_pylist(), emb


@pytest.mark.parametrize('suffix', ['.parquet', '.csv', '.npy'])
def test_row_order_across_batches(
    tmp_path: Path, encoder: LocationEncoder, suffix: str
) -> None:
    """7 points in batches of 3: every id keeps the embedding of its own point."""
    source = write_csv(
        tmp_path / 'seven.csv', [f'{n},{lon},{lat}' for n, lon, lat in SEVEN]
    )
    out = tmp_path / f'out{suffix}'
    embed_file(encoder, source, out, batch_size=3, progress=False)
    ids, emb = read_output(out, 4)
    if ids is not None:
        assert ids == [p[0] for p in SEVEN]
    lonlat = torch.tensor([p[1:] for p in SEVEN], dtype=torch.float64)
    with torch.no_grad():
        want = encoder.eval()(lonlat).float().numpy()
    np.testing.assert_allclose(emb, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('suffix', ['.parquet', '.csv', '.npy'])
def test_failed_overwrite_keeps_the_old_output(
    tmp_path: Path,
    encoder: LocationEncoder,
    suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [f'{n},{lon},{lat}' for n, lon, lat in SEVEN]
    rows[5] = 'bad,10,95'  # found in the second batch, after a batch was written
    source = write_csv(tmp_path / 'bad.csv', rows)
    out = tmp_path / f'out{suffix}'
    out.write_bytes(b'the old output')
    seen: list[list[str]] = []
    original = torch.nn.Module.__call__

    def spy(module: torch.nn.Module, *args: object, **kwargs: object) -> object:
        # While embedding, the final name still holds the old content.
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        assert out.read_bytes() == b'the old output'
        return original(module, *args, **kwargs)

    monkeypatch.setattr(type(encoder), '__call__', spy)
    with pytest.raises(InputError, match=r'line 7: latitude 95\.0'):
        embed_file(encoder, source, out, batch_size=3, progress=False, overwrite=True)
    assert seen  # the first batch was embedded before the error
    assert out.read_bytes() == b'the old output'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad.csv', f'out{suffix}']


@pytest.fixture
def named_points(tmp_path: Path) -> Path:
    path = tmp_path / 'points.csv'
    path.write_text(
        'name,lon,lat\nParis,2.35,48.86\nLondon,-0.13,51.51\nSydney,151.2,-33.87\n'
    )
    return path


def test_embed_points(named_points: Path, tmp_path: Path) -> None:
    out = tmp_path / 'emb.npy'
    result = embed_points(
        named_points, out, legendre_polys=3, seed=1, progress=False, neighbours=True
    )
    assert result.written.num_points == 3
    assert result.neighbours is not None
    assert [n.name for n in result.neighbours] == ['Paris', 'London', 'Sydney']
    assert result.neighbours[0].nearest == 'London'
    again = embed_points(named_points, out, legendre_polys=3, seed=1, overwrite=True)
    assert again.neighbours is None  # not asked for
    first = np.load(out)
    embed_points(named_points, out, legendre_polys=3, seed=1, overwrite=True)
    np.testing.assert_array_equal(np.load(out), first)  # seeded


@pytest.mark.parametrize(
    ('kwargs', 'why'),
    [
        ({'legendre_polys': 40}, 'bring their own architecture'),
        ({'seed': 0}, 'are not random'),
        ({'seed': 7, 'legendre_polys': None}, 'are not random'),
    ],
)
def test_embed_points_refuses_random_options_with_weights(
    named_points: Path, tmp_path: Path, kwargs: dict[str, int | None], why: str
) -> None:
    """legendre_polys and seed shape a random encoder; weights were loaded as
    they are and the two were silently ignored."""
    from torchgeo_satclip.models import save_official_checkpoint

    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)
    checkpoint = save_official_checkpoint(encoder, tmp_path / 'location.ckpt')
    out = tmp_path / 'emb.npy'
    name, value = next((k, v) for k, v in kwargs.items() if v is not None)
    with pytest.raises(ValueError, match='applies to a random encoder') as info:
        embed_points(named_points, out, weights=str(checkpoint), **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"{name}={value!r} applies to a random encoder (weights='random') only: "
        f'the weights {str(checkpoint)!r} {why}; leave {name} out'
    )
    assert not out.exists()
    embed_points(named_points, out, weights=str(checkpoint), progress=False)
    assert np.load(out).shape == (3, 4)


@pytest.mark.parametrize(
    ('kwargs', 'error', 'match'),
    [
        ({'lon_column': 'longitude'}, InputError, "no column 'longitude'"),
        ({'batch_size': 0}, ValueError, 'batch_size must be at least 1'),
        ({'layout': 'rows'}, ValueError, "layout must be 'columns' or 'list'"),
        ({'device': 'foo'}, ValueError, "^device 'foo' is not a torch device"),
        (
            {'device': 1},  # not CUDA device 1 (Lightning's devices=1 is a count)
            ValueError,
            r"^device must be a torch device such as 'cpu', 'cuda' or 'cuda:N', "
            r'got 1 \(type int\)$',
        ),
        (
            {'device': 'meta'},
            ValueError,
            "^device 'meta' is not supported; expected 'cpu', 'cuda', 'cuda:N' or 'mps'$",
        ),
    ],
)
def test_embed_points_checks_before_loading_the_weights(
    named_points: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    """A mistake in the columns or the options is found before the weights are
    loaded (a released name is downloaded first), not after."""
    from torchgeo_satclip.embed import pipeline

    def load(*args: object, **kwargs: object) -> None:
        raise AssertionError('the weights were loaded before the checks')

    monkeypatch.setattr(pipeline, 'satclip_location_encoder', load)
    out = tmp_path / 'emb.parquet'
    with pytest.raises(error, match=match):
        embed_points(named_points, out, weights='SATCLIP_RN50_L10', **kwargs)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == [named_points.name]


def test_embed_points_random_seed_defaults_to_zero(
    named_points: Path, tmp_path: Path
) -> None:
    from torchgeo_satclip.embed.pipeline import RANDOM_ENCODER_SEED

    assert RANDOM_ENCODER_SEED == 0
    embed_points(named_points, tmp_path / 'a.npy', legendre_polys=3)
    embed_points(named_points, tmp_path / 'b.npy', legendre_polys=3, seed=0)
    np.testing.assert_array_equal(
        np.load(tmp_path / 'a.npy'), np.load(tmp_path / 'b.npy')
    )


def test_nearest_neighbours(named_points: Path, tmp_path: Path) -> None:
    encoder = build_location_encoder(legendre_polys=3)
    found = nearest_neighbours(encoder, named_points)
    assert found is not None
    assert all(-1 <= n.similarity <= 1 for n in found)
    assert nearest_neighbours(encoder, named_points, max_points=2) is None
    unnamed = tmp_path / 'unnamed.csv'
    unnamed.write_text('x,y\n1,2\n3,4\n')
    found = nearest_neighbours(encoder, unnamed, 'x', 'y')
    assert found is not None
    assert [(n.name, n.nearest) for n in found] == [('0', '1'), ('1', '0')]


def test_nearest_neighbours_do_not_drop_out(named_points: Path) -> None:
    """An encoder in training mode (as built) embedded the points with
    dropout, so the neighbours changed from call to call; they are those of
    eval mode, and the caller's mode is left as it was."""
    encoder = build_location_encoder(legendre_polys=3, dropout=0.5)
    assert encoder.training
    torch.manual_seed(1)
    first = nearest_neighbours(encoder, named_points)
    assert encoder.training
    want = nearest_neighbours(copy.deepcopy(encoder).eval(), named_points)
    assert first == want


def test_embed_file_leaves_the_encoder_as_it_was(
    points_csv: Path,
    tmp_path: Path,
    encoder: LocationEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """embed_file moved the caller's encoder to the device and left it there
    in eval mode; it is embedded there in eval mode, then put back (device
    and the training flag of every module)."""
    network = next(m for m in encoder.modules() if m is not encoder)
    network.eval()  # modes that differ between modules come back as they were
    modes = [m.training for m in encoder.modules()]
    assert any(modes)
    assert not all(modes)
    moves: list[torch.device] = []

    def to(device: torch.device) -> torch.nn.Module:  # records, stays on the CPU
        moves.append(torch.device(device))
        return encoder

    real = pipeline.encode

    def encode(
        model: torch.nn.Module, lonlat: np.ndarray, device: torch.device, *args: Any
    ) -> Any:
        assert device == torch.device('cuda', 0)
        assert not any(m.training for m in model.modules())
        return real(model, lonlat, torch.device('cpu'), *args)

    monkeypatch.setattr(encoder, 'to', to)
    monkeypatch.setattr(pipeline, '_device', lambda device: torch.device('cuda', 0))
    monkeypatch.setattr(pipeline, 'encode', encode)
    out = tmp_path / 'out.npy'
    embed_file(encoder, points_csv, out, device='cuda', progress=False)
    assert moves == [torch.device('cuda', 0), torch.device('cpu')]
    assert [m.training for m in encoder.modules()] == modes
    np.testing.assert_allclose(np.load(out), expected(encoder), rtol=1e-6)
    # and after a failure too
    moves.clear()
    encoder.train()
    with pytest.raises(InputError):
        embed_file(
            encoder,
            write_csv(tmp_path / 'bad.csv', ['a,1,2', 'b,1,99']),
            tmp_path / 'bad.npy',
            device='cuda',
            progress=False,
            batch_size=1,
        )
    assert moves == [torch.device('cuda', 0), torch.device('cpu')]
    assert all(m.training for m in encoder.modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_embed_file_puts_the_encoder_back_on_its_device(
    points_csv: Path, tmp_path: Path, encoder: LocationEncoder
) -> None:
    encoder.train()
    embed_file(encoder, points_csv, tmp_path / 'out.npy', device='cuda', progress=False)
    assert {p.device.type for p in encoder.parameters()} == {'cpu'}
    assert encoder.training


def test_bad_parquet_row_in_a_later_batch(tmp_path: Path) -> None:
    parquet = tmp_path / 'bad.parquet'
    lon = [0.0] * 7
    lon[5] = 180.0001  # row 6, in the second batch of 3
    pq.write_table(pa.table({'lon': lon, 'lat': [0.0] * 7}), parquet)
    with pytest.raises(InputError, match=r'bad\.parquet, row 6: longitude 180\.0001'):
        list(read_points(parquet, batch_size=3))


@pytest.mark.parametrize('suffix', ['.csv', '.parquet'])
def test_columns_on_and_past_the_limits(tmp_path: Path, suffix: str) -> None:
    limits = [(180.0, 90.0), (-180.0, -90.0), (-180.0, 90.0), (180.0, -90.0)]

    def write(name: str, points: list[tuple[float, float]]) -> Path:
        path = tmp_path / f'{name}{suffix}'
        if suffix == '.csv':
            return write_csv(path, [f'{i},{x},{y}' for i, (x, y) in enumerate(points)])
        xs, ys = zip(*points, strict=True)
        pq.write_table(pa.table({'id': range(len(points)), 'lon': xs, 'lat': ys}), path)
        return path

    read = np.concatenate([b.lonlat for b in read_points(write('ok', limits))])
    np.testing.assert_array_equal(read, limits)
    where = 'line 4' if suffix == '.csv' else 'row 3'
    for point, match in [
        ((0.0, 90.0001), 'latitude 90.0001'),
        ((0.0, -90.0001), 'latitude -90.0001'),
        ((180.0001, 0.0), 'longitude 180.0001'),
        ((-180.0001, 0.0), 'longitude -180.0001'),
    ]:
        path = write('bad', [*limits[:2], point])
        with pytest.raises(InputError, match=rf'{where}: {match} in column'):
            list(read_points(path))


def geojson_points(
    path: Path, coordinates: list[list[float]], crs: object = None
) -> Path:
    """A FeatureCollection of Points, with a GeoJSON 2008 ``crs`` member if given."""
    document: dict[str, object] = {
        'type': 'FeatureCollection',
        'features': [
            {
                'type': 'Feature',
                'geometry': {'type': 'Point', 'coordinates': point},
                'properties': {'name': name},
            }
            for (name, *_), point in zip(POINTS, coordinates, strict=True)
        ],
    }
    if crs is not None:
        document = {'type': 'FeatureCollection', 'crs': crs, **document}
    path.write_text(json.dumps(document), encoding='utf-8')
    return path


def crs_named(name: str) -> dict[str, object]:
    """The ``crs`` member GDAL (ogr2ogr) writes."""
    return {'type': 'name', 'properties': {'name': name}}


@pytest.mark.parametrize(
    ('name', 'code'),
    [
        ('urn:ogc:def:crs:EPSG::3857', 3857),
        ('EPSG:3857', 3857),
        ('EPSG:32631', 32631),  # UTM 31N: Paris in its zone, the others far out
        ('EPSG:2154', 2154),  # Lambert-93 (France), conic
    ],
)
def test_geojson_crs_is_reprojected(
    name: str, code: int, tmp_path: Path, encoder: LocationEncoder
) -> None:
    """Coordinates in the CRS a GeoJSON 2008 ``crs`` member names are those
    points, not metres read as degrees."""
    from pyproj import Transformer

    forward = Transformer.from_crs('EPSG:4326', code, always_xy=True)
    lonlat = np.array([p[1:] for p in POINTS])
    x, y = forward.transform(lonlat[:, 0], lonlat[:, 1])
    projected = [[float(a), float(b)] for a, b in zip(x, y, strict=True)]
    path = geojson_points(tmp_path / 'in.geojson', projected, crs_named(name))
    read = np.concatenate([b.lonlat for b in read_points(path, batch_size=2)])
    np.testing.assert_allclose(read, lonlat, rtol=0, atol=1e-9)
    assert count_points(path) == 3
    out = tmp_path / 'out.npy'
    embed_file(encoder, path, out, batch_size=2, progress=False)
    np.testing.assert_allclose(np.load(out), expected(encoder), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('seed', [2**64, 2**70, -1, -(2**63), -(2**64)])
def test_embed_points_refuses_a_seed_out_of_range(
    seed: int, named_points: Path, tmp_path: Path
) -> None:
    """torch.manual_seed overflowed past 2**64 - 1 with a message naming no
    seed, and took a negative seed as an alias of another one."""
    out = tmp_path / 'emb.npy'
    with pytest.raises(ValueError, match=r'^seed must be between') as info:
        embed_points(named_points, out, seed=seed)
    assert str(info.value) == (
        f'seed must be between 0 and 18446744073709551615, got {seed}'
    )
    assert not out.exists()


def test_embed_points_takes_the_largest_seed(
    named_points: Path, tmp_path: Path
) -> None:
    from torchgeo_satclip.embed.pipeline import MAX_SEED

    assert MAX_SEED == 2**64 - 1
    embed_points(named_points, tmp_path / 'a.npy', legendre_polys=3, seed=MAX_SEED)
    embed_points(named_points, tmp_path / 'b.npy', legendre_polys=3, seed=0)
    assert not np.array_equal(np.load(tmp_path / 'a.npy'), np.load(tmp_path / 'b.npy'))


@pytest.mark.parametrize('seed', ['18446744073709551616', '-1'])
def test_embed_command_refuses_a_seed_out_of_range(
    seed: str, named_points: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torchgeo_satclip.cli import main

    out = tmp_path / 'emb.npy'
    assert main(['embed', str(named_points), str(out), f'--seed={seed}']) == 2
    err = capsys.readouterr().err
    assert err == (
        'torchgeo-satclip embed: error: --seed must be between 0 and '
        f'18446744073709551615, got {seed}\n'
    )
    assert not out.exists()


@pytest.mark.parametrize('source', ['.csv', '.parquet', '.geojson'])
def test_each_point_is_checked_once(
    tmp_path: Path,
    encoder: LocationEncoder,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """Every reader checks its points (finite, in range) with validate_lonlat,
    naming the line, row or feature; the encoder then checked every chunk of
    them again, a second finite check of the same points. Now the encoder's
    check is off while embed_file runs (and back after, an error included),
    and a bad point is still refused by the reader, on every input path."""
    from torchgeo_satclip.models import location_encoder

    calls = []
    check = location_encoder.validate_lonlat  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return check(*args, **kwargs)

    monkeypatch.setattr(
        'torchgeo_satclip.models.location_encoder.validate_lonlat', counted
    )
    points = [(10.0, 20.0), (-30.0, 40.0), (float('nan'), 5.0)]

    def write(path: Path, rows: list[tuple[float, float]]) -> Path:
        if source == '.csv':
            return write_csv(
                path, [f'{i},{lon},{lat}' for i, (lon, lat) in enumerate(rows)]
            )
        if source == '.parquet':
            lon, lat = zip(*rows, strict=True)
            pq.write_table(pa.table({'lon': list(lon), 'lat': list(lat)}), path)
            return path
        features = [
            {
                'type': 'Feature',
                'geometry': {'type': 'Point', 'coordinates': [lon, lat]},
                'properties': {},
            }
            for lon, lat in rows
        ]
        text = json.dumps({'type': 'FeatureCollection', 'features': features})
        path.write_text(text.replace('NaN', '"nan"'), encoding='utf-8')
        return path

    good = write(tmp_path / f'good{source}', points[:2])
    embed_file(encoder, good, tmp_path / 'out.npy', progress=False, device='cpu')
    assert calls == []
    assert encoder.validate is True
    bad = write(tmp_path / f'bad{source}', points)
    with pytest.raises(InputError, match=r'bad\.'):
        embed_file(encoder, bad, tmp_path / 'bad.npy', progress=False, device='cpu')
    assert encoder.validate is True
    assert not (tmp_path / 'bad.npy').exists()
    with pytest.raises(ValueError, match='non-finite'):  # the encoder's own check
        encoder(torch.tensor([[float('nan'), 0.0]], dtype=torch.float64))
