#!/usr/bin/env python3

"""Make tiny fake S2-100K data (run inside this folder).

Writes ``index.csv``, ``images/patch_<i>.tif`` (12 x 32 x 32 uint16 LZW
GeoTIFFs in a UTM CRS, like the real ones; patch 3 is all nodata) and
``satclip.tar`` (the images, for the download and extract tests), and prints
the SHA-256 of the archive and index.
"""

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


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, '', ''
    info.mode = 0o644
    return info


def main() -> None:
    rng = np.random.default_rng(0)
    shutil.rmtree('images', ignore_errors=True)
    os.makedirs('images')
    lons = rng.uniform(-180, 180, NUM_PATCHES)
    lats = rng.uniform(-60, 80, NUM_PATCHES)
    with open('index.csv', 'w') as f:
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

    for name in ('index.csv', 'satclip.tar'):
        with open(name, 'rb') as f:
            print(name, hashlib.sha256(f.read()).hexdigest())


if __name__ == '__main__':
    main()
