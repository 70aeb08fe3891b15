"""``items_per_point``: an item that gives no patch is passed over for the next.

Whatever the least cloudy item lacks (its patch has too much nodata, a band
has no asset, its scene is too small, a band is not uint16), the next item is
tried, up to ``items_per_point``; when none gives a patch, the point is
rejected for the reason of the last one tried. Items are local GeoTIFFs (see
``test_nodata``), searched by a stand-in for the STAC search.
"""

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pystac
import pytest
import rasterio

from torchgeo_satclip.builders.config import BuildConfig
from torchgeo_satclip.builders.planetary_computer import _Builder
from torchgeo_satclip.builders.reading import _Rejected, _Retry

from .fake_stac import BANDS
from .test_nodata import CENTRE, EXTENT, SIZE, make_item

#: The flawed items, and the reason each is passed over for.
FLAWS = {
    'missing': 'missing_asset',
    'small': 'scene_too_small',
    'float': 'bad_scene',
    'nodata': 'nodata',
}


def flawed_item(directory: Path, flaw: str, date: dt.date) -> pystac.Item:
    """An item of *directory*'s name, dated *date*, with *flaw* (or none)."""
    if flaw == 'small':  # 12 pixels wide: no patch of 24 fits
        item = make_item(directory, extent_x=EXTENT // 2)
    elif flaw == 'float':  # reflectance 0-1
        item = make_item(directory, other_dtypes={'B05': ('float32', 0.25)})
    elif flaw == 'nodata':
        item = make_item(directory, BANDS)
    else:
        item = make_item(directory)
        if flaw == 'missing':
            del item.assets['B01']
    item.datetime = dt.datetime(date.year, date.month, date.day, 10, tzinfo=dt.UTC)
    return item


def builder(
    images: Path,
    found: Any,
    items_per_point: int,
    windows: Sequence[str] | None = None,
) -> _Builder:
    """A builder whose search answers *found*: a list, or one per window."""
    config = BuildConfig(
        size=SIZE,
        items_per_point=items_per_point,
        windows=None if windows is None else tuple(windows),
    )

    def search(
        lon: float, lat: float, window: tuple[dt.date, dt.date] | None = None
    ) -> list[pystac.Item]:
        return list(found if window is None else found[window])

    return _Builder(
        config=config,
        search=search,  # type: ignore[arg-type]
        retry=_Retry(0, 0.0, 0.0),
        sign=None,
        gdal_env={},
        images=images,
        windows=tuple(config.date_windows()) if config.multi_temporal else (),
    )


def stac_item(path: Path) -> str:
    with rasterio.open(path) as src:
        assert src.count == 12
        assert src.dtypes[0] == 'uint16'
        assert (src.read() != 0).all()
        return str(src.tags()['stac_item'])


@pytest.mark.parametrize('flaw', ['missing', 'small', 'float'])
def test_next_item_after_a_flawed_one(
    tmp_path: Path, flaw: str, caplog: pytest.LogCaptureFixture
) -> None:
    day = dt.date(2022, 6, 1)
    items = [
        flawed_item(tmp_path / 'least_cloudy', flaw, day),
        flawed_item(tmp_path / 'complete', 'none', day),
    ]
    images = tmp_path / 'images'
    caplog.set_level(logging.INFO, logger='torchgeo_satclip.builders')
    written = builder(images, items, 2).make_patch(3, *CENTRE)
    assert written.fn == 'patch_3.tif'
    assert stac_item(images / written.fn) == 'complete'
    # Why the least cloudy item was passed over is in the log.
    passed = [r.getMessage() for r in caplog.records if 'passed over' in r.message]
    assert len(passed) == 1
    assert f'least_cloudy passed over: {FLAWS[flaw]}: item least_cloudy' in passed[0]
    # With one item per point, the next one is never tried.
    with pytest.raises(_Rejected) as raised:
        builder(tmp_path / 'one', items, 1).make_patch(4, *CENTRE)
    assert raised.value.reason == FLAWS[flaw]
    assert not (tmp_path / 'one').exists()


@pytest.mark.parametrize(
    ('flaws', 'reason'),
    [
        (['small', 'missing', 'nodata'], 'nodata'),
        (['nodata', 'float', 'missing'], 'missing_asset'),
    ],
)
def test_reason_of_the_last_item(tmp_path: Path, flaws: list[str], reason: str) -> None:
    day = dt.date(2022, 6, 1)
    items = [
        flawed_item(tmp_path / f'item{i}', flaw, day) for i, flaw in enumerate(flaws)
    ]
    with pytest.raises(_Rejected) as raised:
        builder(tmp_path / 'images', items, len(items)).make_patch(0, *CENTRE)
    assert raised.value.reason == reason
    assert not (tmp_path / 'images').exists()


def test_next_item_in_a_window(tmp_path: Path) -> None:
    # Two windows, both needed: the least cloudy item of the first lacks B01.
    windows = ['2022-01-01/2022-03-31', '2022-04-01/2022-06-30']
    first = (dt.date(2022, 1, 1), dt.date(2022, 3, 31))
    second = (dt.date(2022, 4, 1), dt.date(2022, 6, 30))
    found = {
        first: [
            flawed_item(tmp_path / 'no_b01', 'missing', dt.date(2022, 2, 1)),
            flawed_item(tmp_path / 'february', 'none', dt.date(2022, 2, 10)),
        ],
        second: [flawed_item(tmp_path / 'may', 'none', dt.date(2022, 5, 1))],
    }
    images = tmp_path / 'images'
    written = builder(images, found, 2, windows).make_point(5, *CENTRE)
    assert written.images == [
        ('patch_5.tif', dt.date(2022, 2, 10)),
        ('patch_5_t1.tif', dt.date(2022, 5, 1)),
    ]
    assert stac_item(images / 'patch_5.tif') == 'february'
    assert stac_item(images / 'patch_5_t1.tif') == 'may'
