"""An item whose footprint holds the point but whose pixels do not.

The search keeps the items whose footprint (the STAC geometry) covers the
point, and the patch is cut from the item's B02 grid. Some scenes' footprints
are not where their pixels are (scenes that cross the antimeridian get
geometries that wrap the globe), so the point can fall outside the grid. The
window used to be shifted to the scene's edge however far the point was, and
the patch written was one from elsewhere (the same one for every such point).
Such an item is ``bad_scene`` now, and the next item is tried.
"""

import datetime as dt
from pathlib import Path

import pystac
import pytest
import rasterio
from rasterio.enums import Resampling

from torchgeo_satclip.builders.reading import _read_patch, _Rejected

from .test_items_per_point import builder, stac_item
from .test_nodata import CENTRE, EXTENT, LEFT, SIZE, TOP, lonlat, make_item


def read_at(item: pystac.Item, lon: float, lat: float) -> object:
    return _read_patch(
        item,
        lon,
        lat,
        size=SIZE,
        max_nodata_fraction=0.1,
        resampling=Resampling.nearest,
        gdal_env={},
    )


@pytest.mark.parametrize(
    ('x', 'y'),
    [
        (LEFT + 3 * EXTENT + 50_000, TOP - EXTENT / 2),  # 50 km east
        (LEFT - 10, TOP - EXTENT / 2),  # one pixel west of the grid
        (LEFT + EXTENT, TOP + 10),  # one pixel north of the grid
        (LEFT + EXTENT, TOP - EXTENT - 10),  # one pixel south of the grid
        (LEFT - 400_000, TOP + 2_000_000),  # another continent
    ],
)
def test_point_outside_the_grid_rejected(tmp_path: Path, x: float, y: float) -> None:
    item = make_item(tmp_path / 'item', extent_x=3 * EXTENT)
    with pytest.raises(_Rejected) as raised:
        read_at(item, *lonlat(x, y))
    assert raised.value.reason == 'bad_scene'
    assert 'item item: the point' in str(raised.value)
    assert 'is outside its B02 grid' in str(raised.value)


@pytest.mark.parametrize(
    ('x', 'y'),
    [
        (LEFT + 1, TOP - 1),  # the north-west corner pixel
        (LEFT + 3 * EXTENT - 1, TOP - EXTENT + 1),  # the south-east one
    ],
)
def test_point_inside_the_grid_near_its_edge(
    tmp_path: Path, x: float, y: float
) -> None:
    item = make_item(tmp_path / 'item', extent_x=3 * EXTENT)
    assert read_at(item, *lonlat(x, y)) is not None


def test_next_item_when_the_point_is_outside_the_first(tmp_path: Path) -> None:
    # The least cloudy item's pixels are 10 km east of its (claimed) footprint.
    far = make_item(tmp_path / 'far')
    for band in far.assets:
        with rasterio.open(far.assets[band].href, 'r+') as src:
            src.transform = src.transform * src.transform.translation(
                10_000 / src.res[0], 0
            )
    good = make_item(tmp_path / 'good')
    for item in (far, good):
        item.datetime = dt.datetime(2022, 6, 1, 10, tzinfo=dt.UTC)
    images = tmp_path / 'images'
    images.mkdir()
    written = builder(images, [far, good], items_per_point=2).make_patch(0, *CENTRE)
    assert stac_item(images / written.fn) == 'good'
    assert written.lon == pytest.approx(CENTRE[0], abs=1e-6)
    assert written.lat == pytest.approx(CENTRE[1], abs=1e-6)
    with pytest.raises(_Rejected) as raised:
        builder(images, [far, good], items_per_point=1).make_patch(1, *CENTRE)
    assert raised.value.reason == 'bad_scene'
