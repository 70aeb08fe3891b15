"""Multi-temporal builds: ``dates=K`` or ``windows``, ``dates.csv``, resume."""

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rasterio

from torchgeo_satclip.builders import BuildConfig, build_dataset
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import S2100K
from torchgeo_satclip.datasets.s2_100k_files import DATES_FILE, read_dates_file

from .fake_stac import SCENES, FakeStacServer
from .test_planetary_computer import REPO, build, cli_args, index_rows

#: The year of scene D, split into three windows by dates=3:
#: 2022-01-01/2022-05-01, 2022-05-02/2022-08-31, 2022-09-01/2022-12-31.
YEAR: dict[str, Any] = {'start': '2022-01-01', 'end': '2022-12-31'}
#: Explicit windows: the first third ends on 30 April.
WINDOWS = ['2022-01-01/2022-04-30', '2022-05-01/2022-08-31', '2022-09-01/2022-12-31']


def build_d(root: Path, server: FakeStacServer, n: int, **kwargs: Any) -> Any:
    """A build over scene D (items of several dates)."""
    if 'windows' not in kwargs:
        kwargs = {**YEAR, **kwargs}
    return build(root, server, n, 'D', **kwargs)


def dates_of(root: Path) -> dict[str, list[tuple[dt.date, str]]]:
    """``dates.csv`` read strictly, against the points of ``index.csv``."""
    fns = [row[0] for row in index_rows(root)]
    return read_dates_file(root / DATES_FILE, fns)


def item_of(root: Path, fn: str) -> str:
    with rasterio.open(root / 'images' / fn) as src:
        assert src.count == 12
        src.read()
        return str(src.tags()['stac_item'])


def assert_layout(root: Path) -> dict[str, list[tuple[dt.date, str]]]:
    """index.csv, dates.csv and images/ agree; return dates.csv."""
    dates = dates_of(root)
    listed = {fn for images in dates.values() for _, fn in images}
    assert sorted(os.listdir(root / 'images')) == sorted(listed)
    for point, images in dates.items():
        assert images[0][1] == point  # the index image is the earliest
        stem = point.removesuffix('.tif')
        for _, fn in images[1:]:
            assert re.fullmatch(rf'{stem}_t\d+\.tif', fn)
    return dates


def test_dates_3(tmp_path: Path, server: FakeStacServer) -> None:
    result = build_d(tmp_path, server, 3, dates=3, items_per_point=2)
    assert result.complete
    assert result.num_written == 3
    assert result.num_images == 9
    rows = index_rows(tmp_path)
    assert len(rows) == len({row[0] for row in rows}) == 3
    dates = assert_layout(tmp_path)
    windows = BuildConfig(dates=3, **YEAR).date_windows()
    assert windows == [
        (dt.date(2022, 1, 1), dt.date(2022, 5, 1)),
        (dt.date(2022, 5, 2), dt.date(2022, 8, 31)),
        (dt.date(2022, 9, 1), dt.date(2022, 12, 31)),
    ]
    for point, images in dates.items():
        stem = point.removesuffix('.tif')
        assert [fn for _, fn in images] == [point, f'{stem}_t1.tif', f'{stem}_t2.tif']
        for (date, _), (first, last) in zip(images, windows, strict=True):
            assert first <= date <= last
        # Least cloudy valid item of each window: S2_D_MAY1 (0.5 %, 23:30 UTC
        # on 1 May) before S2_D_FEB and S2_D_JAN; S2_D_JUL after the nodata
        # S2_D_JUN_NODATA (items_per_point=2); S2_D_OCT, not the cloudy one.
        assert [date for date, _ in images] == [
            dt.date(2022, 5, 1),
            dt.date(2022, 7, 5),
            dt.date(2022, 10, 1),
        ]
        assert [item_of(tmp_path, fn) for _, fn in images] == [
            'S2_D_MAY1',
            'S2_D_JUL',
            'S2_D_OCT',
        ]
    # One search per window and point, each in its window.
    searches = [b['datetime'] for m, p, b in server.requests if p == '/stac/search']
    assert len(searches) == 9
    assert sorted(set(searches)) == [
        '2022-01-01T00:00:00Z/2022-05-01T23:59:59Z',
        '2022-05-02T00:00:00Z/2022-08-31T23:59:59Z',
        '2022-09-01T00:00:00Z/2022-12-31T23:59:59Z',
    ]
    # Single-date readers load it unchanged: one sample per point.
    assert len(S2100K(tmp_path)) == 3
    saved = json.loads((tmp_path / 'build.json').read_text())
    assert (saved['dates'], saved['windows'], saved['min_dates']) == (3, None, 2)


@pytest.mark.parametrize('honour_datetime', [True, False])
def test_explicit_windows(
    tmp_path: Path, server: FakeStacServer, honour_datetime: bool
) -> None:
    # A server that ignores the date range: the client keeps each window's own.
    server.honour_datetime = honour_datetime
    result = build_d(tmp_path, server, 2, windows=WINDOWS)
    assert result.complete
    dates = assert_layout(tmp_path)
    assert len(dates) == 2
    for images in dates.values():
        assert [(date.isoformat(), item_of(tmp_path, fn)) for date, fn in images] == [
            ('2022-02-20', 'S2_D_FEB'),
            ('2022-05-01', 'S2_D_MAY1'),
            ('2022-10-01', 'S2_D_OCT'),
        ]
    saved = json.loads((tmp_path / 'build.json').read_text())
    assert saved['windows'] == WINDOWS
    assert saved['dates'] == 3


def test_min_dates(tmp_path: Path, server: FakeStacServer) -> None:
    # With one item per window, the second window has only the nodata item:
    # two dates out of three, enough for the default min_dates=2.
    result = build_d(tmp_path / 'two', server, 2, dates=3)
    assert result.complete
    dates = assert_layout(tmp_path / 'two')
    for point, images in dates.items():
        stem = point.removesuffix('.tif')
        assert [fn for _, fn in images] == [point, f'{stem}_t2.tif']
        assert [d.isoformat() for d, _ in images] == ['2022-05-01', '2022-10-01']
    # min_dates=3: every point is rejected, and nothing is left of it.
    root = tmp_path / 'three'
    server.requests.clear()
    result = build_d(root, server, 2, dates=3, min_dates=3, max_candidates=3)
    assert result.rejected == {'few_dates': 3}
    # The third window is not searched once the second has failed.
    assert server.count('POST', '/stac/search') == 2 * 3
    assert result.num_samples == 0
    assert os.listdir(root / 'images') == []
    assert dates_of(root) == {}
    rejected = (root / 'rejected.csv').read_text().splitlines()[1:]
    assert [line.split(',')[3] for line in rejected] == ['few_dates'] * 3
    # A single window that fails alone: min_dates=1 keeps the others' dates.
    result = build_d(tmp_path / 'one', server, 1, dates=3, min_dates=1)
    assert result.complete
    assert len(assert_layout(tmp_path / 'one')) == 1


def test_rejection_reasons(tmp_path: Path, server: FakeStacServer) -> None:
    # Every window without an item: no_item, as in a single-date build.
    far = {
        'type': 'Polygon',
        'coordinates': [[[20, 40], [21, 40], [21, 41], [20, 41], [20, 40]]],
    }
    result = build_d(tmp_path / 'a', server, 1, dates=2, region=far, max_candidates=2)
    assert result.rejected == {'no_item': 2}
    # Scene A has items of 2022-06-01 only: one window of two, too few dates.
    result = build(tmp_path / 'b', server, 1, 'A', dates=2, max_candidates=1, **YEAR)
    assert result.rejected == {'few_dates': 1}


def test_single_date_build_unchanged(tmp_path: Path, server: FakeStacServer) -> None:
    build(tmp_path, server, 1, 'A')
    assert not (tmp_path / DATES_FILE).exists()
    saved = json.loads((tmp_path / 'build.json').read_text())
    assert not {'dates', 'windows', 'min_dates'} & set(saved)
    with rasterio.open(tmp_path / 'images' / 'patch_0.tif') as src:
        assert 'date' not in src.tags()


def test_repairs_what_a_kill_leaves(tmp_path: Path, server: FakeStacServer) -> None:
    build_d(tmp_path, server, 2, dates=3)
    images = tmp_path / 'images'
    before = dates_of(tmp_path)
    (point, first), (_, second) = ((p, imgs) for p, imgs in before.items())
    copy = {fn: (images / fn).read_bytes() for _, fn in first}
    stem = point.removesuffix('.tif')
    # patch_7: renamed with its other image, never indexed (killed before add).
    (images / 'patch_7_t2.tif').write_bytes(copy[f'{stem}_t2.tif'])
    (images / 'patch_7.tif').write_bytes(copy[point])
    # patch_8: its rows appended to dates.csv, then killed before index.csv.
    (images / 'patch_8_t2.tif').write_bytes(copy[f'{stem}_t2.tif'])
    (images / 'patch_8.tif').write_bytes(copy[point])
    # patch_9: an image of a later window, killed before the first was renamed.
    (images / 'patch_9_t1.tif').write_bytes(copy[f'{stem}_t2.tif'])
    with open(tmp_path / DATES_FILE, 'a', encoding='utf-8', newline='') as f:
        f.write(
            'patch_8.tif,patch_8.tif,2022-05-01\r\n'
            'patch_8.tif,patch_8_t2.tif,2022-10-01\r\npatch_8.tif,patch'
        )
    result = build_d(tmp_path, server, 4, dates=3)
    assert result.num_adopted == 2
    assert result.num_written == 0
    dates = assert_layout(tmp_path)
    assert sorted(dates) == sorted([*before, 'patch_7.tif', 'patch_8.tif'])
    for new in ('patch_7', 'patch_8'):
        assert dates[f'{new}.tif'] == [
            (dt.date(2022, 5, 1), f'{new}.tif'),
            (dt.date(2022, 10, 1), f'{new}_t2.tif'),
        ]
    assert dates[point] == first
    assert not (images / 'patch_9_t1.tif').exists()
    # Written sorted again when the run closes.
    assert (tmp_path / DATES_FILE).read_bytes().startswith(b'point,fn,date\r\n')
    assert second


def test_rows_without_images_dropped(tmp_path: Path, server: FakeStacServer) -> None:
    build_d(tmp_path, server, 2, dates=3)
    images = tmp_path / 'images'
    point = index_rows(tmp_path)[0][0]
    # An image of a point lost (by hand): the point is built again.
    os.unlink(images / point.replace('.tif', '_t2.tif'))
    (images / point.replace('.tif', '_t1.tif')).write_bytes(b'not a tiff')
    result = build_d(tmp_path, server, 2, dates=3)
    assert result.num_written == 1
    assert len(assert_layout(tmp_path)) == 2
    # The dropped point was counted as resumed: 2 resumed + 1 written of 2.
    assert result.num_resumed == 1
    assert result.num_adopted == 0
    assert result.num_samples == result.num_resumed + result.num_written


def test_adopted_point_dropped_not_counted(
    tmp_path: Path, server: FakeStacServer
) -> None:
    build_d(tmp_path, server, 1, dates=3)
    images = tmp_path / 'images'
    point = index_rows(tmp_path)[0][0]
    stem = point.removesuffix('.tif')
    # A killed run's point whose other image is not one of this build's.
    (images / 'patch_7.tif').write_bytes((images / point).read_bytes())
    (images / 'patch_7_t2.tif').write_bytes(b'not a tiff')
    assert (images / f'{stem}_t2.tif').exists()
    result = build_d(tmp_path, server, 1, dates=3)
    assert not (images / 'patch_7.tif').exists()
    assert result.num_resumed == 1
    assert result.num_adopted == 0
    assert result.num_samples == 1


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'dates': 2}, r'dates: 3 -> 2'),
        ({'dates': 3, 'min_dates': 3}, r'min_dates: 2 -> 3'),
        ({'windows': WINDOWS}, r'windows: None -> \['),
        ({'dates': 1}, r'dates: 3 -> None'),
    ],
)
def test_other_dates_refused(
    tmp_path: Path, server: FakeStacServer, kwargs: dict[str, Any], match: str
) -> None:
    build_d(tmp_path, server, 1, dates=3)
    before = sorted(p.name for p in tmp_path.rglob('*'))
    with pytest.raises(ValueError, match=match):
        build_d(tmp_path, server, 1, **kwargs)
    assert sorted(p.name for p in tmp_path.rglob('*')) == before


def test_other_windows_refused(tmp_path: Path, server: FakeStacServer) -> None:
    build_d(tmp_path, server, 1, windows=WINDOWS)
    other = [*WINDOWS[:2], '2022-09-01/2022-11-30']
    with pytest.raises(ValueError, match=re.escape('2022-09-01/2022-11-30')):
        build_d(tmp_path, server, 1, windows=other)
    single = tmp_path / 'single'
    build(single, server, 1, 'A')
    with pytest.raises(ValueError, match=r'dates: None -> 3'):
        build(single, server, 1, 'A', dates=3)


#: (build_dataset arguments, fragment of the message)
BAD: list[tuple[dict[str, Any], str]] = [
    ({'dates': 0}, 'dates must be at least 1, got 0'),
    ({'dates': 2.0}, 'dates must be an integer'),
    ({'dates': True}, 'dates must be an integer'),
    (
        {'dates': 5, 'start': '2022-01-01', 'end': '2022-01-03'},
        'dates=5 needs at least 5 days from start to end, but '
        '2022-01-01/2022-01-03 has 3',
    ),
    ({'windows': '2022-01-01/2022-02-01'}, 'windows must be a list'),
    ({'windows': []}, 'windows must list at least one'),
    ({'windows': ['2022-01-01']}, 'window 1 must be START/END, two dates'),
    ({'windows': ['2022-02-30/2022-03-01']}, 'window 1 must be START/END'),
    ({'windows': [20220101]}, 'window 1 must be a string'),
    ({'windows': ['2022-03-01/2022-02-01']}, 'ends before it starts'),
    (
        {'windows': ['2022-01-01/2022-03-01', '2022-03-01/2022-04-01']},
        "window 2 '2022-03-01/2022-04-01' starts before window 1",
    ),
    (
        {'windows': ['2022-05-01/2022-06-01', '2022-01-01/2022-02-01']},
        'windows must be in order and must not overlap',
    ),
    (
        {'windows': WINDOWS, 'dates': 2},
        'dates=2 but 3 windows are given',
    ),
    ({'windows': WINDOWS, 'start': '2022-01-01'}, 'give start and end, or windows'),
    (
        {'dates': 3, 'min_dates': 4},
        'min_dates must be at most the number of dates (3), got 4',
    ),
    ({'min_dates': 2}, 'min_dates must be at most the number of dates (1), got 2'),
    ({'dates': 3, 'min_dates': 0}, 'min_dates must be at least 1, got 0'),
    ({'dates': 3, 'min_dates': '2'}, 'min_dates must be an integer'),
]


@pytest.mark.parametrize(('kwargs', 'fragment'), BAD)
def test_bad_dates_refused_before_any_work(
    tmp_path: Path, kwargs: dict[str, Any], fragment: str
) -> None:
    root = tmp_path / 'dataset'
    with pytest.raises(ValueError, match=re.escape(fragment)):
        build_dataset(root, 1, api_url='http://127.0.0.1:9', **kwargs)
    assert not root.exists()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        BuildConfig(**kwargs)


def test_config_round_trip() -> None:
    for config in (
        BuildConfig(dates=4, min_dates=3),
        BuildConfig(windows=WINDOWS),
        BuildConfig(windows=tuple(WINDOWS), dates=3, min_dates=1),
        BuildConfig(windows=WINDOWS[:1]),
    ):
        assert BuildConfig.from_json(config.to_json()) == config
        assert config.multi_temporal
    assert BuildConfig(windows=WINDOWS[:1]).min_dates == 1
    assert BuildConfig(windows=WINDOWS).windows == tuple(WINDOWS)
    assert BuildConfig(dates=4).min_dates == 2
    assert not BuildConfig().multi_temporal
    assert BuildConfig().min_dates == 1


def dates_cli(root: Path, server: FakeStacServer, n: int, region: Path) -> list[str]:
    args = cli_args(root, server, n, region)
    return [*args, '--start', '2022-01-01', '--end', '2022-12-31', '--dates', '3']


def test_cli_dates(
    tmp_path: Path,
    server: FakeStacServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv('GDAL_HTTP_MAX_RETRY', '0')
    region = tmp_path / 'region.geojson'
    region.write_text(json.dumps(SCENES['D'].box(300)))
    root = tmp_path / 'a'
    assert main([*dates_cli(root, server, 2, region), '--items-per-point', '2']) == 0
    out = capsys.readouterr().out
    assert '2 of 2 patches' in out
    assert '6 images written now' in out
    assert all(len(images) == 3 for images in assert_layout(root).values())
    windows = ['--windows', *WINDOWS, '--min-dates', '3']
    assert main([*cli_args(tmp_path / 'b', server, 1, region), *windows]) == 0
    assert len(assert_layout(tmp_path / 'b')) == 1


@pytest.mark.parametrize(
    ('extra', 'fragment'),
    [
        (['--dates', 'x'], "argument --dates: invalid int value: 'x'"),
        (['--dates', '0'], '--dates must be at least 1, got 0'),
        (['--min-dates', 'two'], "argument --min-dates: invalid int value: 'two'"),
        (
            ['--dates', '3', '--min-dates', '4'],
            '--min-dates must be at most the number',
        ),
        (
            ['--dates', '2', '--windows', '2022-01-01/2022-02-01'],
            'argument --windows: not allowed with argument --dates',
        ),
        (['--windows'], 'argument --windows: expected at least one argument'),
        (['--windows', '2022-01-01'], 'window 1 must be START/END, two dates'),
        (
            ['--windows', '2022-03-01/2022-04-01', '2022-01-01/2022-02-01'],
            'must be in order and must not overlap',
        ),
        (
            ['--start', '2022-01-01', '--windows', '2022-01-01/2022-02-01'],
            '--start with --windows: the windows give the acquisition dates',
        ),
        # the defaults repeated are refused too: the user meant them
        (
            ['--windows', '2022-01-01/2022-02-01', '--start', '2021-01-01'],
            '--start with --windows',
        ),
        (
            [
                '--end',
                '2021-12-31',
                '--start',
                '2021-01-01',
                '--windows',
                '2022-01-01/2022-02-01',
            ],
            '--end and --start with --windows',
        ),
    ],
)
def test_cli_bad_dates(
    tmp_path: Path,
    extra: list[str],
    fragment: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / 'b'
    status: int | str | None
    try:
        status = main(['build', str(root), '--num-samples', '1', *extra])
    except SystemExit as error:  # argparse's own errors
        status = error.code
    assert status == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert not root.exists()


#: Run in a subprocess: a build that dies (``os._exit``, like SIGKILL: no
#: clean-up) just before it writes the index.csv row of its second point.
KILLED_BETWEEN_APPENDS = """
import json, os, sys
from torchgeo_satclip.builders import _state, build_dataset

real_write = os.write
index_rows = []


def write(fd, data):
    if data.startswith(b'patch_') and not data.endswith(b'\\r\\n'):  # index.csv
        index_rows.append(data)
        if len(index_rows) == 2:
            os._exit(9)
    return real_write(fd, data)


_state.os.write = write
root, options = sys.argv[1], json.loads(sys.argv[2])
build_dataset(root, 3, **options)
"""


def test_killed_between_the_two_appends(tmp_path: Path, server: FakeStacServer) -> None:
    root = tmp_path / 'ds'
    options = {
        **YEAR,
        'dates': 3,
        'region': SCENES['D'].box(300),
        'land': False,
        'api_url': server.api_url,
        'sign': None,
        'workers': 2,
        'max_retries': 0,
        'gdal_env': {'GDAL_HTTP_MAX_RETRY': '0'},
        'progress': False,
    }
    env = {**os.environ, 'NO_PROXY': '127.0.0.1,localhost', 'PYTHONPATH': str(REPO)}
    done = subprocess.run(
        [sys.executable, '-c', KILLED_BETWEEN_APPENDS, str(root), json.dumps(options)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 9, done.stderr
    # The second point's rows reached dates.csv, its index.csv row did not.
    indexed = [row[0] for row in index_rows(root)]
    listed = read_dates_file(root / DATES_FILE)
    assert len(indexed) == 1
    assert set(indexed) < set(listed)
    assert len(listed) == 2
    with pytest.raises(ValueError, match=r'1 point\(s\) of .* are not in index\.csv'):
        read_dates_file(root / DATES_FILE, indexed)
    # The dataset names the fix.
    with pytest.raises(ValueError, match=r'killed between .* run the same build again'):
        S2100K(root, dates='pair')
    assert len(S2100K(root)) == 1  # single-date readers ignore dates.csv
    # The next run (even one that builds nothing more) repairs it.
    result = build_d(root, server, 0, dates=3)
    assert result.num_adopted == 1
    dates = assert_layout(root)
    assert dates == listed
