"""Every band is read where B02's patch is, or the item is refused.

The patch window is cut from B02's 10 m grid, and each other band is read
over the same bounds in its own grid (the 20 m and 60 m bands resampled onto
the patch). A band that does not cover those bounds was read as far as it
went and stretched over the whole patch (or, wholly elsewhere, gave pixels of
another place), and a band in another CRS was read at the same numbers in
its own CRS (another place on Earth): a patch was written either way, its
bands not aligned. Such an item is ``bad_scene`` now, naming the item, the
band and what differs, and the next item is tried.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from torchgeo_satclip.builders.reading import _Patch, _read_patch, _Rejected

from .fake_stac import BANDS, RESOLUTION
from .test_items_per_point import builder, stac_item
from .test_nodata import CENTRE, EXTENT, LEFT, SIZE, TOP, lonlat, make_item


def read(item: pystac.Item, lon: float, lat: float, size: int = SIZE) -> _Patch | None:
    return _read_patch(
        item,
        lon,
        lat,
        size=size,
        max_nodata_fraction=0.1,
        resampling=Resampling.nearest,
        gdal_env={},
    )


def rewrite(item: pystac.Item, band: str, **profile: object) -> None:
    """Write *band* again, its pixels as they were, on another grid or CRS."""
    path = item.assets[band].href
    with rasterio.open(path) as src:
        data = src.read(1)
        new = {**src.profile, **profile}
    if 'width' in profile:
        data = data[:, : new['width']]
    with rasterio.open(path, 'w', **new) as dst:
        dst.write(data, 1)


def shifted(band: str, metres: float) -> dict[str, object]:
    """The profile of *band* on a grid *metres* east of the scene's."""
    res = RESOLUTION[band]
    return {'transform': from_origin(LEFT + metres, TOP, res, res)}


@pytest.mark.parametrize(
    ('band', 'profile'),
    [
        # half a patch east: the patch's west half is not in it
        ('B05', shifted('B05', EXTENT / 2)),
        # one 60 m pixel west: the patch's east edge is not in it
        ('B01', shifted('B01', -60)),
        # 10 km east: nothing of the patch is in it
        ('B11', shifted('B11', 10_000)),
        # half as wide as the scene
        ('B08', {'width': EXTENT // 20}),
    ],
)
def test_band_that_does_not_cover_the_patch_refused(
    tmp_path: Path, band: str, profile: dict[str, object]
) -> None:
    item = make_item(tmp_path / 'item')
    rewrite(item, band, **profile)
    with pytest.raises(_Rejected) as raised:
        read(item, *CENTRE)
    assert raised.value.reason == 'bad_scene'
    message = str(raised.value)
    assert f'item item: asset {band} covers' in message
    assert 'not all of the patch' in message
    # the bounds of the patch, in metres of the scene's CRS
    assert f'({LEFT:.0f}, {TOP - EXTENT:.0f}, {LEFT + EXTENT:.0f}, {TOP:.0f})' in (
        message
    )


def test_band_in_another_crs_refused(tmp_path: Path) -> None:
    item = make_item(tmp_path / 'item')
    rewrite(item, 'B06', crs=CRS.from_epsg(32634))
    with pytest.raises(_Rejected) as raised:
        read(item, *CENTRE)
    assert raised.value.reason == 'bad_scene'
    message = str(raised.value)
    assert 'item item: asset B06 is in EPSG:32634' in message
    assert 'B02 in EPSG:32633' in message


def test_bands_on_their_own_grids_read_onto_the_patch(tmp_path: Path) -> None:
    # Each pixel of each band holds its column in 10 m pixels, so a band read
    # in the wrong place shows; the patch starts at an odd 10 m column (half
    # a 20 m pixel, a sixth of a 60 m one), which nearest resampling keeps.
    directory = tmp_path / 'item'
    item = make_item(directory)
    for band in BANDS:
        res = RESOLUTION[band]
        with rasterio.open(item.assets[band].href, 'r+') as dst:
            columns = np.arange(dst.width, dtype=np.uint16) * (res // 10) + 1
            dst.write(np.broadcast_to(columns, (dst.height, dst.width)), 1)
    size = 6
    # the point in column 12, 3.2 pixels from the window, which starts at 9
    patch = read(item, *lonlat(LEFT + 122, TOP - 55), size=size)
    assert patch is not None
    image, _, transform = patch
    assert transform.c == LEFT + 90
    for b, band in enumerate(BANDS):
        step = RESOLUTION[band] // 10
        expected = [(column // step) * step + 1 for column in range(9, 9 + size)]
        assert image[b, 0].tolist() == expected, band


def test_next_item_when_a_band_is_elsewhere(tmp_path: Path) -> None:
    bad = make_item(tmp_path / 'bad')
    rewrite(bad, 'B12', **shifted('B12', EXTENT / 2))
    good = make_item(tmp_path / 'good')
    for item in (bad, good):
        item.datetime = dt.datetime(2022, 6, 1, 10, tzinfo=dt.UTC)
    images = tmp_path / 'images'
    images.mkdir()
    written = builder(images, [bad, good], items_per_point=2).make_patch(0, *CENTRE)
    assert stac_item(images / written.fn) == 'good'
    with pytest.raises(_Rejected) as raised:
        builder(images, [bad, good], items_per_point=1).make_patch(1, *CENTRE)
    assert raised.value.reason == 'bad_scene'


@pytest.mark.parametrize('band', ['B02', 'B05'])
def test_band_on_a_south_up_grid_refused(tmp_path: Path, band: str) -> None:
    """A south-up grid (rows going north) puts the patch's rows upside down
    or the window outside the raster; B02's grid and every other band's are
    checked alike, naming the band."""
    item = make_item(tmp_path / 'item')
    res = RESOLUTION[band]
    with rasterio.open(item.assets[band].href) as src:
        height = src.height
    south_up = rasterio.Affine(res, 0, LEFT, 0, res, TOP - height * res)
    rewrite(item, band, transform=south_up)
    with pytest.raises(_Rejected) as raised:
        read(item, *CENTRE)
    assert raised.value.reason == 'bad_scene'
    assert f'item item: the grid of {band} is rotated or south-up' in str(raised.value)
