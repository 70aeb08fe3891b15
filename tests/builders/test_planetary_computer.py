import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from shapely.geometry import shape

from torchgeo_satclip.builders import BuildConfig, BuildLockedError, build_dataset
from torchgeo_satclip.builders._state import BuildState
from torchgeo_satclip.builders.reading import _forget
from torchgeo_satclip.cli import build_parser, main
from torchgeo_satclip.datasets import S2100K

from ..processes import dead_pid
from .fake_stac import BANDS, CLOUDY_VALUE, SCENES, FakeStacServer

#: GDAL must not retry by itself: the builder's retries are what is tested.
GDAL_ENV = {'GDAL_HTTP_MAX_RETRY': '0', 'CPL_VSIL_CURL_ALLOWED_EXTENSIONS': '.tif'}
REPO = Path(__file__).resolve().parents[2]


def run_options(server: FakeStacServer) -> dict[str, Any]:
    """How tests run builds: the fake server, unsigned, fast retries, quiet."""
    return {
        'api_url': server.api_url,
        'sign': None,
        'workers': 2,
        'backoff': 0.01,
        'max_retries': 3,
        'timeout': 10,
        'gdal_env': GDAL_ENV,
        'progress': False,
    }


def build(root: Path, server: FakeStacServer, n: int, scene: str, **kwargs: Any) -> Any:
    options = {'region': SCENES[scene].box(300), 'land': False, **run_options(server)}
    options.update(kwargs)
    return build_dataset(root, n, **options)


def index_rows(root: Path) -> list[list[str]]:
    lines = (root / 'index.csv').read_text().splitlines()
    assert lines[0] == 'fn,lon,lat'
    return [line.split(',') for line in lines[1:]]


def assert_consistent(root: Path) -> list[str]:
    """Every row names a readable complete patch, once; return the file names."""
    fns = [row[0] for row in index_rows(root)]
    assert len(fns) == len(set(fns))
    for fn in fns:
        with rasterio.open(root / 'images' / fn) as src:
            assert src.count == 12
            assert src.shape == (256, 256)
            src.read()
    return fns


def test_build_loads_with_s2100k(tmp_path: Path, server: FakeStacServer) -> None:
    result = build(tmp_path, server, 3, 'A')
    assert result.complete
    assert result.num_written == result.num_samples == 3
    assert not result.failures
    assert not result.rejected

    ds = S2100K(tmp_path)
    assert len(ds) == 3
    sample = ds[0]
    assert sample['image'].shape == (12, 256, 256)
    # Band order B01..B12 without B10: the fake bands are 1000 + 100 * index + ramp.
    means = sample['image'].mean(dim=(1, 2)).numpy()
    np.testing.assert_allclose(means, 1000 + 100 * np.arange(12) + 24.5, atol=1)

    footprint = shape(SCENES['A'].footprint)
    for fn, lon, lat in index_rows(tmp_path):
        with rasterio.open(tmp_path / 'images' / fn) as src:
            assert src.crs.to_epsg() == 32633
            assert src.profile['compress'] == 'lzw'
            assert src.res == (10.0, 10.0)
            assert src.descriptions == BANDS
            assert src.tags()['stac_item'] == 'S2_A_GOOD'  # never the cloudy one
            # baseline >= 04.00: the digital numbers carry a +1000 offset, which
            # a user harmonising the patches must know
            assert src.tags()['s2_processing_baseline'] == '05.09'
            image = src.read()
            # The centroid in the index is the centre of the patch.
            x, y = src.xy(128, 128, offset='ul')
            ex, ey = rasterio.warp.transform(src.crs, 'EPSG:4326', [x], [y])
            assert float(lon) == pytest.approx(ex[0], abs=2e-6)
            assert float(lat) == pytest.approx(ey[0], abs=2e-6)
            bounds = src.bounds
        assert not (image == CLOUDY_VALUE).any()
        assert footprint.contains(shapely.Point(float(lon), float(lat)))
        # Every band is the nearest 10 m resampling of its source window.
        col_off = round((bounds.left - SCENES['A'].left) / 10)
        row_off = round((SCENES['A'].top - bounds.top) / 10)
        for index, band in enumerate(BANDS):
            with rasterio.open(server.cogs / f'S2_A_GOOD_{band}.tif') as source:
                full = source.read(1)
                factor = source.res[0] / 10
            rows = np.floor((row_off + np.arange(256) + 0.5) / factor).astype(int)
            cols = np.floor((col_off + np.arange(256) + 0.5) / factor).astype(int)
            np.testing.assert_array_equal(image[index], full[np.ix_(rows, cols)])

    searches = [body for m, p, body in server.requests if p == '/stac/search']
    assert len(searches) == 3
    assert searches[0]['collections'] == ['sentinel-2-l2a']
    assert searches[0]['query'] == {'eo:cloud_cover': {'lt': 20.0}}
    assert searches[0]['datetime'].startswith('2021-01-01')
    assert searches[0]['intersects']['type'] == 'Point'
    # Windowed reads: every GET of a COG asks for a byte range.
    cog_gets = [
        body for m, p, body in server.requests if m == 'GET' and p.startswith('/cogs/')
    ]
    assert cog_gets
    assert all(str(header).startswith('bytes=') for header in cog_gets)
    assert json.loads((tmp_path / 'build.json').read_text())['max_cloud_cover'] == 20


def test_transient_503_retried(tmp_path: Path, server: FakeStacServer) -> None:
    server.faults.update({'/stac/search': 2, '/cogs/S2_A_GOOD_B03': 2, '/stac': 1})
    result = build(tmp_path, server, 2, 'A', progress=True)
    assert result.complete
    assert not result.failures
    assert all(left == 0 for left in server.faults.values())
    assert assert_consistent(tmp_path)


def test_failing_sample_skipped_then_retried(
    tmp_path: Path, server: FakeStacServer
) -> None:
    # Scene C's B01 always answers 503: every point there keeps failing.
    result = build(tmp_path, server, 1, 'C', max_candidates=2, max_retries=2)
    assert not result.complete
    assert result.num_failed == 2
    assert sorted(sample for sample, _ in result.failures) == [0, 1]
    assert 'HTTP response code: 503' in result.failures[0][1]
    assert index_rows(tmp_path) == []
    assert (tmp_path / 'rejected.csv').read_text().count('\n') == 1  # header only
    # Failures are not final: once the server recovers, a re-run retries them.
    server.broken.clear()
    result = build(tmp_path, server, 1, 'C')
    assert result.complete
    assert [row[0] for row in index_rows(tmp_path)] == ['patch_0.tif']


def test_cloudy_item_skipped(tmp_path: Path, server: FakeStacServer) -> None:
    # Scene A offers a 60 % cloudy item first in the server's answer order
    # only if the client did not filter: lower the maximum below the good one.
    result = build(tmp_path, server, 1, 'A', max_cloud_cover=4.0, max_candidates=2)
    assert result.rejected == {'no_item': 2}
    assert index_rows(tmp_path) == []


def test_nodata_patch_rejected(tmp_path: Path, server: FakeStacServer) -> None:
    # Scene B's least cloudy item is 60 % nodata.
    result = build(tmp_path, server, 2, 'B', max_candidates=3)
    assert result.rejected == {'nodata': 3}
    assert not result.complete
    assert index_rows(tmp_path) == []
    lines = (tmp_path / 'rejected.csv').read_text().splitlines()
    assert [line.split(',')[3] for line in lines[1:]] == ['nodata'] * 3
    # Rejections are final: a re-run goes on with new points.
    build(tmp_path, server, 2, 'B', max_candidates=2)
    lines = (tmp_path / 'rejected.csv').read_text().splitlines()[1:]
    assert sorted(int(line.split(',')[0]) for line in lines) == list(range(5))


def test_asset_not_found_rejects_the_item(
    tmp_path: Path, server: FakeStacServer
) -> None:
    # Scene A's good item lists a B03 that answers 404: a retry cannot bring
    # it back, so the item is passed over at once (missing_asset, like an
    # item without the asset) instead of failing the point after every retry.
    server.gone.add('/cogs/S2_A_GOOD_B03')
    # GDAL keeps what earlier tests read of the file: make it ask again
    _forget([f'{server.url}/cogs/S2_A_GOOD_B03.tif'])
    result = build(tmp_path, server, 1, 'A', max_candidates=2, max_retries=3)
    assert result.rejected == {'missing_asset': 2}
    assert not result.failures
    lines = (tmp_path / 'rejected.csv').read_text().splitlines()[1:]
    assert [line.split(',')[3] for line in lines] == ['missing_asset'] * 2
    # one request per point, none repeated by a retry
    assert server.count('GET', '/cogs/S2_A_GOOD_B03') <= 2
    # the asset is back: a new run goes on with new points
    server.gone.clear()
    result = build(tmp_path, server, 1, 'A')
    assert result.complete


def test_next_item_after_nodata(tmp_path: Path, server: FakeStacServer) -> None:
    result = build(tmp_path, server, 2, 'B', items_per_point=2)
    assert result.complete
    for fn in assert_consistent(tmp_path):
        with rasterio.open(tmp_path / 'images' / fn) as src:
            assert src.tags()['stac_item'] == 'S2_B_GOOD'


def test_no_item(tmp_path: Path, server: FakeStacServer) -> None:
    far = {
        'type': 'Polygon',
        'coordinates': [[[20, 40], [21, 40], [21, 41], [20, 41], [20, 40]]],
    }
    result = build(tmp_path, server, 1, 'A', region=far, max_candidates=2)
    assert result.rejected == {'no_item': 2}


def test_resume_extends_without_duplicates(
    tmp_path: Path, server: FakeStacServer
) -> None:
    build(tmp_path, server, 2, 'A')
    result = build(tmp_path, server, 4, 'A')
    assert result.num_resumed == 2
    assert result.num_written == 2
    assert sorted(assert_consistent(tmp_path)) == [f'patch_{i}.tif' for i in range(4)]
    result = build(tmp_path, server, 4, 'A')
    assert result.num_written == 0
    assert result.num_candidates == 0


def test_repairs_what_a_kill_leaves(tmp_path: Path, server: FakeStacServer) -> None:
    build(tmp_path, server, 2, 'A')
    images = tmp_path / 'images'
    # A finished image renamed but never indexed, a stale temporary file, a
    # duplicated row and a torn last line.
    (images / 'patch_7.tif').write_bytes((images / 'patch_0.tif').read_bytes())
    (images / '.patch_8.tif.123.456.tmp').write_bytes(b'half')
    (images / 'patch_9.tif').write_bytes(b'not a tiff')
    with open(tmp_path / 'index.csv', 'a', encoding='utf-8') as f:
        f.write(index_rows(tmp_path)[0][0] + ',1.0,2.0\npatch_1')
    result = build(tmp_path, server, 3, 'A')
    assert result.num_adopted == 1
    assert result.num_written == 0
    fns = assert_consistent(tmp_path)
    assert sorted(fns) == ['patch_0.tif', 'patch_1.tif', 'patch_7.tif']
    assert sorted(os.listdir(images)) == sorted(fns)
    rows = {row[0]: row for row in index_rows(tmp_path)}
    assert rows['patch_7.tif'][1:] == rows['patch_0.tif'][1:]


def test_stale_root_temporaries_removed(tmp_path: Path) -> None:
    # What a run killed while rewriting a file of the root leaves.
    config = BuildConfig()
    with BuildState(tmp_path, config):
        pass
    dead = dead_pid()
    names = ('index.csv', 'dates.csv', 'rejected.csv', 'build.json')
    stale = [tmp_path / f'.{name}.{dead}.abcd1234.tmp' for name in names]
    kept = [
        tmp_path / f'.index.csv.{os.getppid()}.abcd1234.tmp',  # a live process's
        tmp_path / f'.notes.txt.{dead}.abcd1234.tmp',  # not a file of the build
    ]
    for path in [*stale, *kept]:
        path.write_bytes(b'half')
    with BuildState(tmp_path, config):
        pass
    assert [path.name for path in stale if path.exists()] == []
    assert all(path.exists() for path in kept)


def test_other_parameters_refused(tmp_path: Path, server: FakeStacServer) -> None:
    build(tmp_path, server, 1, 'A')
    with pytest.raises(ValueError, match='max_cloud_cover'):
        build(tmp_path, server, 1, 'A', max_cloud_cover=30.0)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'index.csv').write_text('fn,lon,lat\n')
    with pytest.raises(ValueError, match=r'without build\.json'):
        build(foreign, server, 1, 'A')


def test_locked(tmp_path: Path, server: FakeStacServer) -> None:
    build(tmp_path, server, 1, 'A')
    config = BuildConfig.from_json((tmp_path / 'build.json').read_text())
    with BuildState(tmp_path, config), pytest.raises(BuildLockedError):
        build(tmp_path, server, 1, 'A')


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'max_nodata_fraction': 1.0}, 'max_nodata_fraction'),
        ({'workers': 0}, 'workers'),
        ({'start': '2021-13-01'}, 'start'),
        ({'resampling': 'mode'}, 'resampling'),
    ],
)
def test_invalid_arguments(
    tmp_path: Path, server: FakeStacServer, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build(tmp_path, server, 1, 'A', **kwargs)
    with pytest.raises(ValueError, match='num_samples'):
        build(tmp_path, server, -1, 'A')


def cli_args(root: Path, server: FakeStacServer, n: int, region: Path) -> list[str]:
    return [
        'build',
        str(root),
        '--num-samples',
        str(n),
        '--region',
        str(region),
        '--include-water',
        '--api-url',
        server.api_url,
        '--no-sign',
        '--workers',
        '2',
        '--backoff',
        '0.01',
        '--max-retries',
        '2',
        '--quiet',
    ]


def test_cli(
    tmp_path: Path,
    server: FakeStacServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv('GDAL_HTTP_MAX_RETRY', '0')
    region = tmp_path / 'region.geojson'
    region.write_text(json.dumps({'type': 'Feature', 'geometry': SCENES['A'].box(300)}))
    assert main(cli_args(tmp_path / 'a', server, 2, region)) == 0
    assert '2 of 2 patches' in capsys.readouterr().out
    region.write_text(json.dumps(SCENES['B'].box(300)))
    args = cli_args(tmp_path / 'b', server, 1, region)
    assert main([*args, '--max-candidates', '1']) == 1
    assert 'rejected: 1 nodata' in capsys.readouterr().out


def test_sigkill_and_resume(tmp_path: Path, server: FakeStacServer) -> None:
    n = 6
    region = tmp_path / 'region.geojson'
    region.write_text(json.dumps(SCENES['A'].box(300)))
    root = tmp_path / 'ds'
    env = {
        **os.environ,
        'GDAL_HTTP_MAX_RETRY': '0',
        'NO_PROXY': '127.0.0.1,localhost',
        'PYTHONPATH': str(REPO),
    }
    server.delay = 0.03  # slow enough to be killed mid-way
    command = [
        sys.executable,
        '-m',
        'torchgeo_satclip.cli',
        *cli_args(root, server, n, region),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if (root / 'index.csv').exists() and len(index_rows(root)) >= 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, 'the build ended before it could be killed'
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # What a killed run leaves is consistent: every row names a complete file.
    killed = assert_consistent(root)
    assert 2 <= len(killed) < n

    server.delay = 0.0
    result = build(root, server, n, 'A')
    assert result.complete
    assert result.num_resumed + result.num_adopted + result.num_written == n
    fns = assert_consistent(root)
    assert len(fns) == n
    assert set(killed) <= set(fns)
    assert sorted(os.listdir(root / 'images')) == sorted(fns)  # no orphans, no tmp
    assert len(S2100K(root)) == n


def test_cli_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(['build', '--help'])
    assert '--num-samples' in capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    assert isinstance(sub.choices, dict)
    for action in sub.choices['build']._actions:
        assert action.help, f'build {action.dest} has no help'
