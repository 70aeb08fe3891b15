#!/usr/bin/env python3

"""Make tiny fake S2-100K data (run inside this folder).

Writes ``index.csv``, ``images/patch_<i>.tif`` (12 x 32 x 32 uint16 LZW
GeoTIFFs in a UTM CRS, like the real ones; patch 3 is all nodata) and
``satclip.tar`` (the images, for the download and extract tests), and prints
the SHA-256 of the archive and index.

Also writes ``temporal/``, a tiny multi-temporal dataset (``index.csv``,
``dates.csv``, 12 x 16 x 16 images): ``patch_0.tif`` has three dates, its
``index.csv`` image being the middle one; ``patch_1.tif`` and ``patch_3.tif``
two (the index image of ``patch_3.tif`` is all nodata, its other date is
not); ``patch_2.tif`` a single one.
"""

import datetime
import hashlib
import os
import shutil
import tarfile

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

NUM_PATCHES = 8
SIZE = 32
NODATA_PATCH = 3

#: ``temporal/``: each point's images and their dates (the point's own first).
TEMPORAL = {
    'patch_0.tif': [
        ('patch_0.tif', '2021-06-01'),
        ('patch_0_a.tif', '2021-03-01'),
        ('patch_0_b.tif', '2021-09-01'),
    ],
    'patch_1.tif': [('patch_1.tif', '2021-01-10'), ('patch_1_a.tif', '2021-07-10')],
    'patch_2.tif': [('patch_2.tif', '2022-02-02')],
    'patch_3.tif': [('patch_3.tif', '2021-05-05'), ('patch_3_a.tif', '2020-11-30')],
}
TEMPORAL_SIZE = 16


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, '', ''
    info.mode = 0o644
    return info


def _write(path: str, image: np.ndarray) -> None:
    profile = {
        'driver': 'GTiff',
        'dtype': 'uint16',
        'count': 12,
        'height': image.shape[1],
        'width': image.shape[2],
        'crs': CRS.from_epsg(32633),
        'transform': from_origin(500000, 4000000, 10, 10),
        'compress': 'lzw',
    }
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(image)


def temporal() -> None:
    """Write ``temporal/`` (see the module doc)."""
    rng = np.random.default_rng(1)
    shutil.rmtree('temporal', ignore_errors=True)
    os.makedirs(os.path.join('temporal', 'images'))
    with open(os.path.join('temporal', 'index.csv'), 'w', encoding='utf-8') as f:
        f.write('fn,lon,lat\n')
        for i, point in enumerate(TEMPORAL):
            f.write(f'{point},{10.5 * i - 20:.6f},{7.25 * i - 5:.6f}\n')
    with open(os.path.join('temporal', 'dates.csv'), 'w', encoding='utf-8') as f:
        f.write('point,fn,date\n')
        for point, images in TEMPORAL.items():
            for fn, date in images:
                datetime.date.fromisoformat(date)
                f.write(f'{point},{fn},{date}\n')
                shape = (12, TEMPORAL_SIZE, TEMPORAL_SIZE)
                image = rng.integers(1, 10000, shape, dtype=np.uint16)
                if fn == 'patch_3.tif':
                    image[:] = 0
                _write(os.path.join('temporal', 'images', fn), image)


def main() -> None:
    rng = np.random.default_rng(0)
    shutil.rmtree('images', ignore_errors=True)
    os.makedirs('images')
    lons = rng.uniform(-180, 180, NUM_PATCHES)
    lats = rng.uniform(-60, 80, NUM_PATCHES)
    with open('index.csv', 'w', encoding='utf-8') as f:
        f.write('fn,lon,lat\n')
        for i in range(NUM_PATCHES):
            fn = f'patch_{i}.tif'
            f.write(f'{fn},{lons[i]:.6f},{lats[i]:.6f}\n')
            image = rng.integers(1, 10000, (12, SIZE, SIZE), dtype=np.uint16)
            if i == NODATA_PATCH:
                image[:] = 0
            profile = {
                'driver': 'GTiff',
                'dtype': 'uint16',
                'count': 12,
                'height': SIZE,
                'width': SIZE,
                'crs': CRS.from_epsg(32633),
                'transform': from_origin(500000, 4000000, 10, 10),
                'compress': 'lzw',
            }
            with rasterio.open(os.path.join('images', fn), 'w', **profile) as dst:
                dst.write(image)

    with tarfile.open('satclip.tar', 'w') as tar:
        for i in range(NUM_PATCHES):
            fn = f'patch_{i}.tif'
            tar.add(os.path.join('images', fn), arcname=fn, filter=_reproducible)

    temporal()

    for name in ('index.csv', 'satclip.tar'):
        with open(name, 'rb') as f:
            print(name, hashlib.sha256(f.read()).hexdigest())


if __name__ == '__main__':
    main()
