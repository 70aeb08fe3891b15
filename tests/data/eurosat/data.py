#!/usr/bin/env python3

"""Make fake EuroSAT data in TorchGeo's layout, with real georeferencing.

Run inside this folder. Each patch is a tiny 13-band uint16 GeoTIFF in the
UTM zone of a random place in Europe (as the real EuroSAT files, which are
georeferenced Sentinel-2 crops), so ``FileCentroids`` can read its centroid;
``centroids.csv`` records the true (lon, lat) of each file.
"""

import os
import shutil

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

SIZE = 8
BANDS = 13
CLASSES = ('AnnualCrop', 'Forest')
PER_CLASS = 6
ROOT = os.path.join(
    'ds', 'images', 'remote_sensing', 'otherDatasets', 'sentinel_2', 'tif'
)
SPLITS = {'train': (0, 1, 2, 3), 'val': (4,), 'test': (5,)}

rng = np.random.default_rng(0)

if os.path.exists('ds'):
    shutil.rmtree('ds')

rows = []
names: dict[str, list[str]] = {split: [] for split in SPLITS}
for cls in CLASSES:
    os.makedirs(os.path.join(ROOT, cls))
    for i in range(PER_CLASS):
        lon = float(rng.uniform(-9, 27))
        lat = float(rng.uniform(37, 60))
        epsg = 32600 + int((lon + 180) // 6) + 1
        x, y = Transformer.from_crs(
            'EPSG:4326', f'EPSG:{epsg}', always_xy=True
        ).transform(lon, lat)
        half = SIZE * 10 / 2
        name = f'{cls}_{i + 1}.tif'
        data = rng.integers(0, 4000, (BANDS, SIZE, SIZE), dtype=np.uint16)
        with rasterio.open(
            os.path.join(ROOT, cls, name),
            'w',
            driver='GTiff',
            width=SIZE,
            height=SIZE,
            count=BANDS,
            dtype='uint16',
            crs=f'EPSG:{epsg}',
            transform=from_origin(x - half, y + half, 10, 10),
        ) as dst:
            dst.write(data)
        rows.append(f'{name},{lon:.6f},{lat:.6f}')
        for split, indices in SPLITS.items():
            if i in indices:
                names[split].append(name.replace('.tif', '.jpg'))

for split, files in names.items():
    with open(f'eurosat-{split}.txt', 'w', encoding='utf-8') as f:
        f.write('\n'.join(files) + '\n')

with open('centroids.csv', 'w', encoding='utf-8') as f:
    f.write('fn,lon,lat\n' + '\n'.join(rows) + '\n')
