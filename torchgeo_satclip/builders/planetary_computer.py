"""Build S2-100K-style datasets from the Microsoft Planetary Computer.

The recipe of S2-100K, for any number of points, region and dates:

1. sample points uniformly on the sphere, on land (global-land-mask) and/or
   inside a GeoJSON region, from a seeded stream (:mod:`torchgeo_satclip.geo.sampling`);
2. for each point, search the STAC API (collection ``sentinel-2-l2a``) for
   items over the point in the date range with ``eo:cloud_cover`` below the
   maximum, and take the least cloudy one (:mod:`.stac`);
3. read a ``size x size`` window at 10 m around the point from the item's
   cloud-optimised GeoTIFFs, one windowed read per band (the 20 m and 60 m
   bands resampled to the 10 m grid), never a whole scene; the window is
   shifted inside the scene when the point is near its edge, so the centre of
   the patch can be up to half a patch from the point (:mod:`.reading`);
4. reject the patch when more than 10 % of it is nodata (0 in every band
   in L2A, so decided from B02 before the other bands are read), else write
   ``images/patch_<k>.tif`` (12 bands uint16, LZW, CRS and transform of the
   scene) and its row ``patch_<k>.tif, lon, lat`` (the patch centroid) in
   ``index.csv``.

Multi-temporal builds (``dates=K`` or explicit ``windows``) repeat steps 2
and 3 in each of K acquisition windows: the period from *start* to *end* split
into K equal consecutive windows (whole UTC days), or the windows given. Each
window gives the point the least cloudy valid patch among its scenes (the same
cloud, nodata and *items_per_point* rules). A point is kept when at least
``min_dates`` windows (default ``min(2, K)``) give a patch, else rejected
(``few_dates``; or ``no_item`` / ``nodata`` when every window searched failed
for that reason; the later windows are not searched once they cannot make up
for the failed ones). Its first (earliest) image is ``images/patch_<k>.tif``, its row in
``index.csv`` as ever (single-date readers load the dataset unchanged); the
image of window ``w`` when it is not the first is
``images/patch_<k>_t<w>.tif``; ``dates.csv`` (point, fn, date: the UTC date of
the STAC item's ``datetime``) lists every image of every point, as
:func:`~torchgeo_satclip.datasets.s2_100k_files.read_dates_file` reads it.

Samples run concurrently on a thread pool. Transient errors (HTTP 408, 429,
5xx, time-outs, broken connections, failed reads) are retried with
exponential backoff and jitter; a sample that still fails is logged, counted
and skipped (a re-run tries it again). Points that give no patch for good
(no item, nodata) are recorded in ``rejected.csv`` and not tried again.

A build can be killed at any moment, SIGKILL included, and re-run with the
same arguments: it continues where it stopped, without duplicates, and
``index.csv`` only ever lists complete images (see :mod:`._state`). Running it
again with a larger number of samples extends the dataset. The parameters
that define the dataset are a :class:`~.config.BuildConfig`.
"""

import dataclasses
import datetime as dt
import logging
import math
import numbers
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import planetary_computer
import pystac
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from tqdm import tqdm

from .._checks import check_int
from .._io import atomic_path
from ..datasets.s2_100k_files import ALL_BANDS
from ..geo import Region, iter_points
from ._state import (
    BuildState,
    patch_centroid,
    patch_name,
    region_record,
    temporal_name,
)
from .config import BuildConfig
from .reading import (
    _asset_gone,
    _Cancelled,
    _describe,
    _forget,
    _gdal_env,
    _Patch,
    _read_patch,
    _Rejected,
    _Retry,
)
from .stac import COLLECTION, DEFAULT_API_URL, _item_date, _ItemSearch, _signed

__all__ = [
    'COLLECTION',
    'DEFAULT_API_URL',
    'BuildResult',
    'build_dataset',
]

logger = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """What a build did.

    Attributes:
        root: the dataset root.
        target: the number of patches asked for.
        num_samples: patches in ``index.csv`` now.
        num_resumed: patches that were already indexed when the run started.
        num_adopted: finished patches of a killed run, indexed when this one
            started.
        num_written: points (patches in ``index.csv``) written by this run.
        num_images: images written by this run, every date of every point
            (``num_written`` in a single-date build).
        rejected: points of this run that gave no patch, by reason
            (``no_item``: no item over the point below the cloud maximum;
            otherwise the reason of the last item tried: ``nodata``, too
            much nodata; ``missing_asset``, a band without an asset or whose
            asset answers HTTP 404/410;
            ``scene_too_small``; ``bad_scene``, a grid that is not north-up
            or does not hold the point, or a band that is not uint16, is in
            another CRS than B02 or does not cover the whole patch;
            ``few_dates``: fewer windows than ``min_dates`` gave a patch).
        failures: ``(sample, error)`` of the points that kept failing (tried
            again by a re-run).
        num_candidates: points tried by this run.
        seconds: wall time of the run.
    """

    root: Path
    target: int
    num_samples: int = 0
    num_resumed: int = 0
    num_adopted: int = 0
    num_written: int = 0
    num_images: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str]] = field(default_factory=list)
    num_candidates: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Whether the dataset has the number of patches asked for."""
        return self.num_samples >= self.target

    @property
    def num_failed(self) -> int:
        """Points that kept failing in this run."""
        return len(self.failures)


@dataclass
class _Written:
    sample: int
    fn: str
    lon: float
    lat: float
    #: ``(fn, date)`` of every image of a point of a multi-temporal build
    images: list[tuple[str, dt.date]] | None = None


#: What one window gave a point: ``(window, item, patch, date)``.
_Found = tuple[int, pystac.Item, _Patch, dt.date]


@dataclass(frozen=True)
class _Builder:
    """One run: how a point becomes a patch (search, read, write)."""

    config: BuildConfig
    search: _ItemSearch
    retry: _Retry
    sign: Callable[[pystac.Item], pystac.Item] | None
    gdal_env: Mapping[str, str]
    images: Path
    #: The acquisition windows of a multi-temporal build (first, last UTC day).
    windows: tuple[tuple[dt.date, dt.date], ...] = ()

    def read(
        self, where: str, item: pystac.Item, lon: float, lat: float
    ) -> _Patch | None:
        """Sign and read the patch of one item, retrying transient errors.

        Args:
            where: the sample, for the log.
            item: the (unsigned) item.
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            ``(image, crs, transform)``, or None if the patch has too much
            nodata.

        Raises:
            _Rejected: ``missing_asset`` when an asset answers HTTP 404 or
                410 (not retried: it is not there).
        """
        urls: list[str] = []

        def attempt() -> _Patch | None:
            signed = _signed(item, self.sign)
            urls[:] = [asset.href for asset in signed.assets.values()]
            return _read_patch(
                signed,
                lon,
                lat,
                size=self.config.size,
                max_nodata_fraction=self.config.max_nodata_fraction,
                resampling=Resampling[self.config.resampling],
                gdal_env=self.gdal_env,
            )

        try:
            return self.retry(
                f'{where}: read {item.id}', attempt, lambda: _forget(urls)
            )
        except Exception as error:
            if _asset_gone(error):
                _forget(urls)  # GDAL would keep answering 'not there' from memory
                raise _Rejected(
                    'missing_asset', f'item {item.id}: {_describe(error)}'
                ) from error
            raise

    def first_patch(
        self, where: str, items: Sequence[pystac.Item], lon: float, lat: float
    ) -> tuple[pystac.Item, _Patch]:
        """The first valid patch of the least cloudy items over a point.

        Up to ``items_per_point`` items are tried, in order. An item whose
        patch has too much nodata, or that cannot give one (a missing asset,
        a scene too small or unusable), is passed over for the next one.

        Args:
            where: the sample, for the log.
            items: the items over the point, least cloudy first (not empty).
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            ``(item, patch)``.

        Raises:
            _Rejected: with the reason of the last item tried, when none
                gives a patch.
            Exception: the last error of a read that kept failing.
        """
        rejection = _Rejected('nodata')
        for item in items[: self.config.items_per_point]:
            try:
                patch = self.read(where, item, lon, lat)
            except _Rejected as error:
                rejection = error
                logger.info('%s: %s passed over: %s', where, item.id, error)
                continue
            if patch is not None:
                return item, patch
            rejection = _Rejected('nodata', f'item {item.id} has too much nodata')
            logger.debug('%s: %s has too much nodata', where, item.id)
        raise rejection

    def write(
        self,
        sample: int,
        item: pystac.Item,
        image: NDArray[np.uint16],
        crs: Any,
        transform: Any,
        *,
        fn: str | None = None,
        date: dt.date | None = None,
    ) -> _Written:
        """Write a patch atomically: temporary name, flushed to disk, then rename.

        Args:
            sample: the sample number.
            item: the item it comes from (recorded in the GeoTIFF tags).
            image: ``(12, size, size)`` uint16.
            crs: its CRS.
            transform: its affine transform.
            fn: its file name (default: the sample's ``patch_<k>.tif``).
            date: its acquisition date, recorded as the ``date`` tag
                (multi-temporal builds; :class:`~._state.BuildState` reads it
                back when it repairs ``dates.csv``).

        Returns:
            The file name and centroid.
        """
        fn = fn or patch_name(sample)
        final = self.images / fn
        profile = {
            'driver': 'GTiff',
            'dtype': 'uint16',
            'count': len(ALL_BANDS),
            'height': self.config.size,
            'width': self.config.size,
            'crs': crs,
            'transform': transform,
            'compress': 'lzw',
            'predictor': 2,
        }
        # atomic_path flushes the file to disk before its rename, and so
        # before its index.csv row: a lost machine (a power cut) cannot leave
        # an indexed image whose pixels never reached the disk.
        with (
            atomic_path(final) as tmp,
            rasterio.Env(),
            rasterio.open(tmp, 'w', **profile) as dst,
        ):
            dst.write(image)
            dst.descriptions = ALL_BANDS
            dst.update_tags(
                sample=str(sample),
                stac_item=item.id,
                collection=self.config.collection,
                datetime=str(item.properties.get('datetime')),
                eo_cloud_cover=str(item.properties.get('eo:cloud_cover')),
            )
            baseline = item.properties.get('s2:processing_baseline')
            if baseline is not None:
                # 04.00 and later (from 2022-01-25): digital numbers + 1000
                dst.update_tags(s2_processing_baseline=str(baseline))
            if date is not None:
                dst.update_tags(date=date.isoformat())
        lon, lat = patch_centroid(crs, transform, self.config.size, self.config.size)
        return _Written(sample, fn, lon, lat)

    def make_patch(self, sample: int, lon: float, lat: float) -> _Written:
        """Search, read and write the patch of one point.

        Args:
            sample: the sample number.
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            The written patch.

        Raises:
            _Rejected: if the point gives no patch.
            Exception: the last error of a sample that kept failing.
        """
        where = f'sample {sample} ({lon:.5f}, {lat:.5f})'
        items = self.retry(f'{where}: search', lambda: self.search(lon, lat))
        if not items:
            raise _Rejected('no_item')
        item, patch = self.first_patch(where, items, lon, lat)
        return self.write(sample, item, *patch)

    def find(self, where: str, window: int, lon: float, lat: float) -> _Found:
        """The least cloudy valid patch of one window over a point.

        Args:
            where: the sample, for the log.
            window: the window's number.
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            ``(window, item, patch, date)``.

        Raises:
            _Rejected: if the window gives no patch.
            Exception: the last error of a search or read that kept failing.
        """
        first, last = self.windows[window]
        span = f'{first.isoformat()}/{last.isoformat()}'
        items = self.retry(
            f'{where}: search {span}',
            lambda: self.search(lon, lat, window=(first, last)),
        )
        if not items:
            raise _Rejected('no_item')
        item, patch = self.first_patch(where, items, lon, lat)
        date = _item_date(item)
        assert date is not None  # the search keeps dated items only
        return window, item, patch, date

    def make_point(self, sample: int, lon: float, lat: float) -> _Written:
        """Search, read and write the images of one point, one per window.

        The images of the later windows are written before the point's first
        image, so a ``patch_<k>.tif`` under its final name always has all of
        its images beside it (see :mod:`._state`).

        Args:
            sample: the sample number.
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            The written point: its first image, centroid and every image.

        Raises:
            _Rejected: if fewer windows than ``min_dates`` give a patch:
                ``few_dates``, or the reason of every window searched when
                they all failed for the same one (the later windows are not
                searched once they cannot make up for the failed ones).
            Exception: the last error of a sample that kept failing.
        """
        where = f'sample {sample} ({lon:.5f}, {lat:.5f})'
        wanted = self.config.min_dates
        assert wanted is not None
        found: list[_Found] = []
        reasons: list[str] = []
        for window in range(len(self.windows)):
            if len(found) + len(self.windows) - window < wanted:
                break  # the other windows cannot make up for the failed ones
            try:
                found.append(self.find(where, window, lon, lat))
            except _Rejected as rejection:
                reasons.append(rejection.reason)
        if len(found) < wanted:
            if not found and len(set(reasons)) == 1:
                raise _Rejected(reasons[0])
            raise _Rejected('few_dates')
        images: list[tuple[str, dt.date]] = []
        for window, item, patch, date in found[1:]:
            fn = temporal_name(sample, window)
            self.write(sample, item, *patch, fn=fn, date=date)
            images.append((fn, date))
        _, item, patch, date = found[0]
        written = self.write(sample, item, *patch, date=date)
        written.images = [(written.fn, date), *images]
        return written


def build_dataset(
    root: str | os.PathLike[str],
    num_samples: int,
    *,
    seed: int = 0,
    start: str = '2021-01-01',
    end: str = '2023-05-17',
    max_cloud_cover: float = 20.0,
    region: Region | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    land: bool = True,
    api_url: str = DEFAULT_API_URL,
    collection: str = COLLECTION,
    sign: Callable[[pystac.Item], pystac.Item] | None = planetary_computer.sign,
    size: int = 256,
    max_nodata_fraction: float = 0.1,
    items_per_point: int = 1,
    resampling: Literal['nearest', 'bilinear', 'cubic'] = 'nearest',
    dates: int = 1,
    windows: Sequence[str] | None = None,
    min_dates: int | None = None,
    workers: int = 8,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    max_candidates: int | None = None,
    gdal_env: Mapping[str, str] | None = None,
    progress: bool = True,
    config: BuildConfig | None = None,
) -> BuildResult:
    """Build (or resume, or extend) an S2-100K-style dataset.

    The result loads with :class:`~torchgeo_satclip.datasets.S2100K`. With
    *dates* > 1 (or *windows*) it is a multi-temporal dataset: the same
    ``index.csv`` (one row, the earliest image, per point) plus the other
    dates' images in ``images/`` and ``dates.csv`` listing every image.

    Args:
        root: output directory (``index.csv``, ``images/``, ``build.json``,
            ``rejected.csv``).
        num_samples: patches wanted. Re-running with a larger number extends
            the dataset.
        seed: seed of the point stream.
        start: first acquisition date (ISO 8601).
        end: last acquisition date (ISO 8601).
        max_cloud_cover: keep only items with ``eo:cloud_cover`` below this (%).
        region: a :class:`Region`, a GeoJSON mapping or a GeoJSON file: sample
            only inside it (default: the whole globe).
        land: sample only on land (global-land-mask).
        api_url: the STAC API.
        collection: the STAC collection.
        sign: signs an item's asset URLs before reading (default:
            ``planetary_computer.sign``; None for unsigned URLs).
        size: patch height and width in pixels of the 10 m grid.
        max_nodata_fraction: reject patches with more nodata than this.
        items_per_point: items tried, least cloudy first, before a point is
            rejected (for the reason of the last one: too much nodata, a
            missing asset, a scene too small or unusable; 1: the S2-100K
            recipe; at most 500).
        resampling: resampling of the 20 m and 60 m bands to 10 m.
        dates: images per point: the period from *start* to *end* (whole UTC
            days) is split into this many equal consecutive windows, and each
            point takes the least cloudy valid patch of each (1: one image per
            point, no ``dates.csv``: the S2-100K recipe).
        windows: explicit acquisition windows instead, ``YYYY-MM-DD/YYYY-MM-DD``
            (both days included), in order and not overlapping, e.g.
            ``['2021-03-01/2021-05-31', '2021-06-01/2021-08-31']``; *start*
            and *end* must then be left at their defaults.
        min_dates: windows that must give a patch for a point to be kept
            (default: ``min(2, dates)``, a temporal pair at least); points
            with fewer are rejected (``few_dates``).
        workers: concurrent samples (threads).
        max_retries: retries of a transient error before a sample is skipped.
        backoff: first retry delay in seconds, doubled at each retry (with
            jitter), at most *max_backoff*.
        max_backoff: longest retry delay in seconds.
        timeout: HTTP time-out in seconds (STAC requests and GDAL reads).
        max_candidates: stop after trying this many points in this run
            (default: ``4 * num_samples + 100``).
        gdal_env: GDAL configuration options, over this builder's defaults.
        progress: show a progress bar.
        config: the parameters that define the dataset, instead of *seed*,
            *start*, *end*, *max_cloud_cover*, *region*, *land*,
            *collection*, *size*, *max_nodata_fraction*, *items_per_point*,
            *resampling*, *dates*, *windows* and *min_dates* (which must then
            be left at their defaults).

    Returns:
        What the run did; :attr:`BuildResult.complete` tells whether the
        dataset has *num_samples* patches.

    Raises:
        ValueError: on an invalid argument (a *config* that is not a
            :class:`BuildConfig`, an *api_url* that is not ``http(s)://`` or
            *gdal_env* that is not a mapping included), or a root built with
            other parameters.
        BuildLockedError: if another build is running in *root*.
    """
    _check_run_options(
        num_samples, workers, max_retries, backoff, max_backoff, timeout, max_candidates
    )
    _check_api_url(api_url)
    _check_gdal_env(gdal_env)
    if sign is not None and not callable(sign):
        # else every point fails with a TypeError, logged, and the run ends
        # incomplete
        raise ValueError(
            'sign must be a function that signs an item (planetary_computer.sign) '
            f'or None for unsigned URLs, got {sign!r} ({type(sign).__name__})'
        )
    if config is not None and not isinstance(config, BuildConfig):
        raise ValueError(
            'config must be a BuildConfig, not '
            f'{type(config).__name__} {str(config)[:80]!r}: '
            'BuildConfig.from_dict(...) or BuildConfig.from_json(text) makes '
            "one from a build.json's contents"
        )
    sampling_region = _as_region(region)
    arguments = BuildConfig(
        seed=seed,
        start=start,
        end=end,
        max_cloud_cover=max_cloud_cover,
        region=region_record(sampling_region),
        land=land,
        collection=collection,
        size=size,
        max_nodata_fraction=max_nodata_fraction,
        items_per_point=items_per_point,
        resampling=resampling,
        dates=dates,
        windows=None if windows is None else _as_windows(windows),
        min_dates=min_dates,
    )
    if config is None:
        config = arguments
    elif arguments != BuildConfig():
        raise ValueError(
            'give the parameters that define the dataset either in config or as '
            'arguments, not both'
        )
    else:
        # Points are drawn in the region as given (the stream of a build is
        # the one it always was), and build.json records it as an argument's
        # region is recorded, so either form resumes the other.
        sampling_region = _as_region(config.region)
        config = dataclasses.replace(config, region=region_record(sampling_region))
    root = Path(root)
    builder = _Builder(
        config=config,
        search=_item_search(config, api_url, timeout),
        retry=_Retry(max_retries, backoff, max_backoff),
        sign=sign,
        gdal_env=_gdal_env(timeout, gdal_env),
        images=root / 'images',
        windows=tuple(config.date_windows()) if config.multi_temporal else (),
    )
    if max_candidates is None:
        max_candidates = 4 * num_samples + 100
    result = BuildResult(root=root, target=num_samples)
    _build(builder, result, sampling_region, workers, max_candidates, progress)
    _log_result(result)
    return result


def _check_run_options(
    num_samples: int,
    workers: int,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    timeout: float,
    max_candidates: int | None,
) -> None:
    """Refuse run options of the wrong type or out of range, naming them.

    Raises:
        ValueError: for a count that is not an integer (a bool is not one)
            or is below its minimum, or a delay or time-out that is not a
            finite number (positive for the time-out, non-negative for delays).
    """
    counts = [
        ('num_samples', num_samples, 0),
        ('workers', workers, 1),
        ('max_retries', max_retries, 0),
    ]
    if max_candidates is not None:
        counts.append(('max_candidates', max_candidates, 0))
    for name, value, minimum in counts:
        check_int(name, value, minimum=minimum)
    for name, seconds, zero_ok in (
        ('backoff', backoff, True),
        ('max_backoff', max_backoff, True),
        ('timeout', timeout, False),
    ):
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, numbers.Real)
            or not _finite(seconds)
            or seconds < 0
            or (seconds == 0 and not zero_ok)
        ):
            expected = 'seconds >= 0' if zero_ok else 'seconds > 0'
            raise ValueError(
                f'{name} must be a finite number of {expected}, not {seconds!r}'
            )


def _check_api_url(api_url: object) -> None:
    """Refuse a STAC API URL that is not ``http(s)://``, before any work.

    pystac-client reads a URL without a scheme as a local file, and another
    scheme fails as an API error it retries: every point of the run would be
    skipped, one by one.

    Raises:
        ValueError: naming the value and what was expected.
    """
    if not isinstance(api_url, str) or not api_url.startswith(('http://', 'https://')):
        raise ValueError(
            f'api_url must be an http:// or https:// URL, not {api_url!r} '
            f'(the STAC API, e.g. {DEFAULT_API_URL})'
        )


def _check_gdal_env(gdal_env: object) -> None:
    """Refuse GDAL options that are not a mapping of names, before any work.

    Raises:
        ValueError: naming the value and what was expected.
    """
    if gdal_env is not None and (
        not isinstance(gdal_env, Mapping)
        or not all(isinstance(name, str) for name in gdal_env)
    ):
        raise ValueError(
            'gdal_env must be a mapping of GDAL configuration options (names to '
            f'values, e.g. {{"GDAL_HTTP_TIMEOUT": "30"}}), not {gdal_env!r}'[:300]
        )


def _finite(number: numbers.Real) -> bool:
    """Whether *number* is finite as a float (an int beyond a float's is not)."""
    try:
        return math.isfinite(number)
    except OverflowError:  # 10**400: 'int too large to convert to float'
        return False


def _as_windows(windows: Any) -> Any:
    """Windows as a tuple (a list or tuple of them), else as given (refused)."""
    return tuple(windows) if isinstance(windows, list | tuple) else windows


def _item_search(config: BuildConfig, api_url: str, timeout: float) -> _ItemSearch:
    """The STAC search of a configuration's items."""
    return _ItemSearch(
        api_url,
        collection=config.collection,
        datetime=config.stac_datetime(),
        max_cloud_cover=config.max_cloud_cover,
        wanted=config.items_per_point,
        timeout=timeout,
    )


def _build(
    builder: _Builder,
    result: BuildResult,
    region: Region | None,
    workers: int,
    max_candidates: int,
    progress: bool,
) -> None:
    """Open the root's state, make patches until done and fill *result*."""
    config = builder.config
    started = time.monotonic()
    with BuildState(result.root, config) as state:
        result.num_resumed = state.num_resumed
        result.num_adopted = state.num_adopted
        if state.num_adopted:
            logger.info('indexed %d patches a killed run left', state.num_adopted)
        candidates = _candidates(state, region, config.seed, config.land)
        _run(builder, state, result, candidates, workers, max_candidates, progress)
        result.num_samples = len(state.rows)
    result.seconds = time.monotonic() - started


def _as_region(
    region: Region | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> Region | None:
    """A region from a :class:`Region`, a GeoJSON mapping or a GeoJSON file."""
    if region is None or isinstance(region, Region):
        return region
    return Region(region) if isinstance(region, Mapping) else Region.from_file(region)


def _log_result(result: BuildResult) -> None:
    """Log what a run did."""
    rejected = ', '.join(
        f'{n} {reason}' for reason, n in sorted(result.rejected.items())
    )
    logger.info(
        'build of %s: %d of %d patches (%d written now); rejected: %s; failed: %d',
        result.root,
        result.num_samples,
        result.target,
        result.num_written,
        rejected or 'none',
        result.num_failed,
    )


def _candidates(
    state: BuildState, region: Region | None, seed: int, land: bool
) -> Iterator[tuple[int, float, float]]:
    """Points of the stream not done yet: ``(sample, lon, lat)``."""
    done = state.done | set(state.rejected)
    for sample, (lon, lat) in enumerate(iter_points(seed, region=region, land=land)):
        if sample not in done:
            yield sample, lon, lat


def _run(
    builder: _Builder,
    state: BuildState,
    result: BuildResult,
    candidates: Iterator[tuple[int, float, float]],
    workers: int,
    max_candidates: int,
    progress: bool,
) -> None:
    """Submit points until the target is met or the candidates run out."""
    if len(state.rows) >= result.target:
        return
    pending: dict[Future[_Written], tuple[int, float, float]] = {}
    multi = builder.config.multi_temporal
    make = builder.make_point if multi else builder.make_patch
    bar = tqdm(
        total=result.target,
        initial=len(state.rows),
        desc='building',
        unit='patch',
        disable=not progress,
        dynamic_ncols=True,
    )
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix='s2-build')
    try:
        while True:
            while (
                len(state.rows) + len(pending) < result.target
                and len(pending) < workers
                and result.num_candidates < max_candidates
            ):
                candidate = next(candidates)
                result.num_candidates += 1
                pending[pool.submit(make, *candidate)] = candidate
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                sample, lon, lat = pending.pop(future)
                _collect(future, sample, lon, lat, state, result, bar)
    except BaseException:
        builder.retry.stop.set()
        for future in pending:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    if len(state.rows) < result.target:
        logger.warning(
            'stopped after %d points with %d of %d patches; re-run to continue '
            '(or raise max_candidates)',
            result.num_candidates,
            len(state.rows),
            result.target,
        )


def _collect(
    future: 'Future[_Written]',
    sample: int,
    lon: float,
    lat: float,
    state: BuildState,
    result: BuildResult,
    bar: Any,
) -> None:
    """Record the outcome of one point."""
    try:
        written = future.result()
    except _Rejected as rejection:
        state.reject(sample, lon, lat, rejection.reason)
        result.rejected[rejection.reason] += 1
    except _Cancelled:
        pass
    except Exception as error:
        message = _describe(error)
        logger.warning('sample %d (%.5f, %.5f) skipped: %s', sample, lon, lat, message)
        result.failures.append((sample, message))
    else:
        state.add(written.fn, written.lon, written.lat, written.images)
        result.num_written += 1
        result.num_images += len(written.images) if written.images else 1
        bar.update(1)
    bar.set_postfix(rejected=sum(result.rejected.values()), failed=result.num_failed)
