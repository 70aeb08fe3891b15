"""The builder's nodata rule, on patches that are zero in some bands only.

The fake STAC world zeroes every band together (as real L2A nodata is), which
cannot tell which band decides. Here each item is 12 local GeoTIFFs at 10, 20
and 60 m and the zeros go into chosen bands. The documented rule: nodata is 0
in every band at once, so B02, read first, decides alone before the other 11
bands are read; zeros in any other band never reject a patch.
"""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform

from torchgeo_satclip.builders.reading import _read_patch, _Rejected

from .fake_stac import BANDS, CRS_UTM, RESOLUTION

LEFT, TOP = 500000.0, 5550000.0
#: Scene side in metres: 24 pixels at 10 m, 12 at 20 m, 4 at 60 m.
EXTENT = 240
SIZE = 24


def make_item(
    directory: Path,
    zero_bands: tuple[str, ...] = (),
    zero_fraction: float = 0.5,
    missing: tuple[str, ...] = (),
    extent_x: int = EXTENT,
    other_dtypes: Mapping[str, tuple[str, float]] | None = None,
) -> pystac.Item:
    """An item whose *zero_bands* are 0 in their western *zero_fraction*.

    The bands of *other_dtypes* are of that dtype, every pixel the value given.
    """
    directory.mkdir(parents=True, exist_ok=True)
    assets = {}
    for band in BANDS:
        path = directory / f'{band}.tif'
        assets[band] = pystac.Asset(str(path))
        if band in missing:
            continue
        res = RESOLUTION[band]
        width, height = extent_x // res, EXTENT // res
        data = np.full((height, width), 1000 + BANDS.index(band), dtype=np.uint16)
        if band in zero_bands:
            data[:, : round(width * zero_fraction)] = 0
        dtype, value = (other_dtypes or {}).get(band, ('uint16', 0))
        if dtype != 'uint16':
            data = np.full((height, width), value, dtype=dtype)
        profile = {
            'driver': 'GTiff',
            'dtype': dtype,
            'count': 1,
            'height': height,
            'width': width,
            'crs': CRS_UTM,
            'transform': from_origin(LEFT, TOP, res, res),
        }
        with rasterio.open(path, 'w', **profile) as dst:
            dst.write(data, 1)
    item = pystac.Item(directory.name, None, None, datetime(2022, 6, 1), {})
    for band, asset in assets.items():
        item.add_asset(band, asset)
    return item


def lonlat(x: float, y: float) -> tuple[float, float]:
    lons, lats = warp_transform(CRS_UTM, 'EPSG:4326', [x], [y])
    return lons[0], lats[0]


CENTRE = lonlat(LEFT + EXTENT / 2, TOP - EXTENT / 2)


def read(item: pystac.Item, max_nodata_fraction: float = 0.1) -> np.ndarray | None:
    patch = _read_patch(
        item,
        *CENTRE,
        size=SIZE,
        max_nodata_fraction=max_nodata_fraction,
        resampling=Resampling.nearest,
        gdal_env={},
    )
    return None if patch is None else patch[0]


OTHER_BANDS = tuple(b for b in BANDS if b != 'B02')


@pytest.mark.parametrize(
    ('zero_bands', 'rejected'),
    [
        (BANDS, True),  # real L2A nodata: 0 everywhere at once
        (('B02',), True),  # B02 decides alone
        (OTHER_BANDS, False),  # 0 in every band but B02: not nodata
        (('B01', 'B09'), False),  # the 60 m bands' edge
        (('B04', 'B08', 'B11'), False),
    ],
)
def test_b02_decides(
    tmp_path: Path, zero_bands: tuple[str, ...], rejected: bool
) -> None:
    image = read(make_item(tmp_path / 'item', zero_bands))
    if rejected:
        assert image is None
        return
    assert image is not None
    assert image.shape == (12, SIZE, SIZE)
    for index, band in enumerate(BANDS):  # kept as read, zeros included
        zero = (image[index] == 0).mean()
        assert zero == (0.5 if band in zero_bands else 0.0), band


def test_rejected_from_b02_before_the_other_bands_are_read(tmp_path: Path) -> None:
    # The other bands do not exist: reading any of them would fail.
    item = make_item(tmp_path / 'item', ('B02',), missing=OTHER_BANDS)
    assert read(item) is None
    with pytest.raises(rasterio.errors.RasterioIOError):
        read(make_item(tmp_path / 'valid', (), missing=OTHER_BANDS))


@pytest.mark.parametrize(
    ('max_nodata_fraction', 'rejected'), [(0.5, False), (0.49, True)]
)
def test_threshold(tmp_path: Path, max_nodata_fraction: float, rejected: bool) -> None:
    # Half of the patch is nodata: at the threshold it is kept.
    image = read(make_item(tmp_path / 'item', BANDS), max_nodata_fraction)
    assert (image is None) == rejected


def test_window_shifted_inside_the_scene(tmp_path: Path) -> None:
    # A point 3 pixels from the east edge of a scene 3 patches wide: the
    # window is shifted west to end at the edge, not cut by it.
    item = make_item(tmp_path / 'item', extent_x=3 * EXTENT)
    patch = _read_patch(
        item,
        *lonlat(LEFT + 3 * EXTENT - 30, TOP - EXTENT / 2),
        size=SIZE,
        max_nodata_fraction=0.1,
        resampling=Resampling.nearest,
        gdal_env={},
    )
    assert patch is not None
    image, _, transform = patch
    assert transform.c == LEFT + 3 * EXTENT - SIZE * 10
    assert transform.f == TOP
    assert (image[1] == 1001).all()


@pytest.mark.parametrize(
    ('band', 'dtype', 'value'),
    [
        ('B02', 'float32', 0.25),  # reflectance 0-1: cast, it would be all 0
        ('B11', 'int16', -5),  # negative: cast, it would wrap to 65531
        ('B01', 'uint8', 7),
    ],
)
def test_bands_not_uint16_rejected(
    tmp_path: Path, band: str, dtype: str, value: float
) -> None:
    item = make_item(tmp_path / 'item', other_dtypes={band: (dtype, value)})
    with pytest.raises(_Rejected) as raised:
        read(item)
    assert raised.value.reason == 'bad_scene'
    assert f'item item: asset {band} is {dtype}, expected uint16' in str(raised.value)
