"""Build S2-100K-style datasets from the Microsoft Planetary Computer.

The recipe of S2-100K, for any number of points, region and dates:

1. sample points uniformly on the sphere, on land (global-land-mask) and/or
   inside a GeoJSON region, from a seeded stream (:mod:`torchgeo_satclip.geo.sampling`);
2. for each point, search the STAC API (collection ``sentinel-2-l2a``) for
   items over the point in the date range with ``eo:cloud_cover`` below the
   maximum, and take the least cloudy one;
3. read a ``size x size`` window at 10 m around the point from the item's
   cloud-optimised GeoTIFFs, one windowed read per band (the 20 m and 60 m
   bands resampled to the 10 m grid), never a whole scene; the window is
   shifted inside the scene when the point is near its edge, so the centre of
   the patch can be up to half a patch from the point;
4. reject the patch when more than 10 % of it is nodata (0 in every band),
   else write ``images/patch_<k>.tif`` (12 bands uint16, LZW, CRS and
   transform of the scene) and its row ``patch_<k>.tif, lon, lat`` (the
   patch centroid) in ``index.csv``.

Samples run concurrently on a thread pool. Transient errors (HTTP 408, 429,
5xx, time-outs, broken connections, failed reads) are retried with
exponential backoff and jitter; a sample that still fails is logged, counted
and skipped (a re-run tries it again). Points that give no patch for good
(no item, nodata) are recorded in ``rejected.csv`` and not tried again.

A build can be killed at any moment, SIGKILL included, and re-run with the
same arguments: it continues where it stopped, without duplicates, and
``index.csv`` only ever lists complete images (see :mod:`._state`). Running it
again with a larger number of samples extends the dataset.
"""

import ctypes
import ctypes.util
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import numpy as np
import planetary_computer
import pystac
import rasterio
import shapely  # type: ignore[import-untyped]
from numpy.typing import NDArray
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform
from shapely.geometry import shape  # type: ignore[import-untyped]
from tqdm import tqdm

from .._io import atomic_path
from ..datasets.s2_100k_files import ALL_BANDS, nodata_fraction
from ..geo import Region, iter_points
from ._state import BuildState, patch_centroid, patch_name

__all__ = [
    'COLLECTION',
    'DEFAULT_API_URL',
    'BuildResult',
    'build_dataset',
]

logger = logging.getLogger(__name__)

#: The Planetary Computer STAC API.
DEFAULT_API_URL = 'https://planetarycomputer.microsoft.com/api/stac/v1'

#: Sentinel-2 Level-2A collection of the Planetary Computer.
COLLECTION = 'sentinel-2-l2a'

#: The band whose 10 m grid defines the patch grid.
_GRID_BAND = 'B02'

#: HTTP statuses worth retrying.
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

#: GDAL settings for reading cloud-optimised GeoTIFFs over HTTP; overridable.
_GDAL_DEFAULTS: dict[str, str] = {
    'GDAL_DISABLE_READDIR_ON_OPEN': 'EMPTY_DIR',  # no directory listing requests
    'GDAL_HTTP_MERGE_CONSECUTIVE_RANGES': 'YES',
    'GDAL_HTTP_MULTIPLEX': 'YES',
    'VSI_CACHE': 'FALSE',
}

_T = TypeVar('_T')


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
        num_written: patches written by this run.
        rejected: points of this run that gave no patch, by reason
            (``no_item``: no item over the point below the cloud maximum;
            ``nodata``: every patch tried had too much nodata;
            ``missing_asset``, ``scene_too_small``, ``bad_scene``).
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


class _Rejected(Exception):
    """A point gives no patch, for good (recorded; not tried again)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Cancelled(Exception):
    """The build is stopping; a retry loop gave up waiting."""


@dataclass
class _Written:
    sample: int
    fn: str
    lon: float
    lat: float


def _is_transient(error: BaseException) -> bool:
    """Whether an error may go away when the request is repeated.

    Args:
        error: an exception raised while searching, signing or reading.

    Returns:
        True for HTTP 408/425/429/5xx, time-outs, connection errors and GDAL
        read errors (GDAL reports HTTP failures of ``/vsicurl/`` that way).
    """
    if isinstance(error, APIError):
        status = getattr(error, 'status_code', None)
        return status is None or status in _TRANSIENT_STATUS
    if isinstance(error, (RasterioError, TimeoutError, ConnectionError)):
        return True
    try:
        from rasterio._err import CPLE_BaseError
    except ImportError:  # pragma: no cover - private module moved
        return False
    if isinstance(error, CPLE_BaseError):
        return True
    try:
        import requests
    except ImportError:  # pragma: no cover - pystac-client requires it
        return False
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code in _TRANSIENT_STATUS
    return isinstance(error, (requests.ConnectionError, requests.Timeout))


def _gdal_clear_cache() -> Callable[[str], None] | None:
    """GDAL's ``VSICurlPartialClearCache``, or None where it cannot be found."""
    try:
        from rasterio.cache import invalidate  # rasterio >= 1.5

        return cast(Callable[[str], None], invalidate)
    except ImportError:
        pass
    # rasterio < 1.5: call the function in the libgdal rasterio itself loaded
    # (wheels bundle it beside the package; dlopen returns the loaded library).
    package = Path(rasterio.__file__).parent
    candidates = [
        *sorted(package.parent.glob('rasterio.libs/libgdal*')),
        *sorted(package.glob('.dylibs/libgdal*')),
    ]
    found = ctypes.util.find_library('gdal')
    if found:
        candidates.append(Path(found))
    for path in candidates:
        try:
            function = ctypes.CDLL(str(path)).VSICurlPartialClearCache
        except (OSError, AttributeError):
            continue
        function.argtypes = [ctypes.c_char_p]
        function.restype = None

        def invalidate(url: str, function: Any = function) -> None:
            function(f'/vsicurl/{url}'.encode())

        return invalidate
    return None  # pragma: no cover - no libgdal found


_clear_cache_lock = threading.Lock()
_clear_cache: list[Callable[[str], None] | None] = []


def _forget(urls: Iterable[str]) -> None:
    """Make GDAL forget what it cached about URLs, failures included.

    GDAL's ``/vsicurl/`` remembers that a URL failed (a 503, say) and fails
    every later open of it without a request: a retry must clear that first.

    Args:
        urls: the URLs (``http(s)://...``).
    """
    with _clear_cache_lock:
        if not _clear_cache:
            _clear_cache.append(_gdal_clear_cache())
        invalidate = _clear_cache[0]
    if invalidate is None:  # pragma: no cover
        return
    for url in urls:
        if url.startswith(('http://', 'https://')):
            invalidate(url)


def _cloud_cover(item: pystac.Item) -> float:
    value = item.properties.get('eo:cloud_cover')
    return float(value) if value is not None else float('inf')


class _Builder:
    """One run: the state, the pool, the retry policy."""

    def __init__(
        self,
        *,
        api_url: str,
        collection: str,
        datetime_range: str,
        max_cloud_cover: float,
        sign: Callable[[pystac.Item], pystac.Item] | None,
        size: int,
        max_nodata_fraction: float,
        items_per_point: int,
        resampling: Resampling,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        timeout: float,
        gdal_env: Mapping[str, str],
        images: Path,
    ) -> None:
        self.api_url = api_url
        self.collection = collection
        self.datetime_range = datetime_range
        self.max_cloud_cover = max_cloud_cover
        self.sign = sign
        self.size = size
        self.max_nodata_fraction = max_nodata_fraction
        self.items_per_point = items_per_point
        self.resampling = resampling
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.gdal_env = dict(gdal_env)
        self.images = images
        self.stop = threading.Event()
        self._local = threading.local()

    # -- retries -----------------------------------------------------------

    def retry(
        self,
        what: str,
        function: Callable[[], _T],
        before_retry: Callable[[], None] | None = None,
    ) -> _T:
        """Call *function*, retrying transient errors with exponential backoff.

        Args:
            what: a description for the log.
            function: the call.
            before_retry: called before each retry.

        Returns:
            What *function* returns.

        Raises:
            _Cancelled: if the build stops while waiting.
        """
        attempt = 0
        while True:
            if self.stop.is_set():
                raise _Cancelled()
            try:
                return function()
            except _Rejected:
                raise
            except Exception as error:
                if not _is_transient(error) or attempt >= self.max_retries:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay *= random.uniform(0.5, 1.0)
                attempt += 1
                logger.info(
                    '%s: %s; retry %d of %d in %.2f s',
                    what,
                    _describe(error),
                    attempt,
                    self.max_retries,
                    delay,
                )
                if self.stop.wait(delay):
                    raise _Cancelled() from error
                if before_retry is not None:
                    before_retry()

    # -- search ------------------------------------------------------------

    def client(self) -> Client:
        """This thread's STAC client (opened once per thread)."""
        client: Client | None = getattr(self._local, 'client', None)
        if client is None:
            io = StacApiIO(timeout=self.timeout, max_retries=None)
            client = Client.open(self.api_url, stac_io=io)
            self._local.client = client
        return client

    def search(self, lon: float, lat: float) -> list[pystac.Item]:
        """Items covering a point below the cloud maximum, least cloudy first.

        Args:
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            The items; filtered and sorted here too, whatever the server did.
        """
        point = {'type': 'Point', 'coordinates': [lon, lat]}
        search = self.client().search(
            collections=[self.collection],
            intersects=point,
            datetime=self.datetime_range,
            query={'eo:cloud_cover': {'lt': self.max_cloud_cover}},
            sortby=[{'field': 'eo:cloud_cover', 'direction': 'asc'}],
            limit=max(10, 2 * self.items_per_point),
            max_items=max(10, 2 * self.items_per_point),
        )
        items = list(search.items())
        where = shapely.Point(lon, lat)
        kept = [
            item
            for item in items
            if _cloud_cover(item) < self.max_cloud_cover
            and (item.geometry is None or shape(item.geometry).intersects(where))
        ]
        return sorted(kept, key=lambda item: (_cloud_cover(item), item.id))

    # -- read ----------------------------------------------------------------

    def read(
        self, item: pystac.Item, lon: float, lat: float
    ) -> tuple[NDArray[np.uint16], Any, Any] | None:
        """Read the patch of one item around a point.

        Args:
            item: a (signed) STAC item with one asset per band.
            lon: longitude in degrees.
            lat: latitude in degrees.

        Returns:
            ``(image, crs, transform)``, or None if the patch has too much
            nodata.

        Raises:
            _Rejected: if the item lacks a band or its scene is unusable.
        """
        missing = [band for band in ALL_BANDS if band not in item.assets]
        if missing:
            raise _Rejected('missing_asset')
        size = self.size
        bands: dict[str, NDArray[np.uint16]] = {}
        with rasterio.Env(**self.gdal_env):
            with rasterio.open(item.assets[_GRID_BAND].href) as src:
                grid = src.transform
                if grid.b != 0 or grid.d != 0 or grid.e >= 0:
                    raise _Rejected('bad_scene')  # rotated or south-up grid
                if src.width < size or src.height < size:
                    raise _Rejected('scene_too_small')
                crs = src.crs
                xs, ys = warp_transform('EPSG:4326', crs, [lon], [lat])
                col = (xs[0] - grid.c) / grid.a  # a north-up grid, checked above
                row = (ys[0] - grid.f) / grid.e
                col_off = min(max(round(col - size / 2), 0), src.width - size)
                row_off = min(max(round(row - size / 2), 0), src.height - size)
                window = Window(col_off, row_off, size, size)
                bands[_GRID_BAND] = src.read(1, window=window)
            # Cheap early rejection: L2A nodata is 0 in every band at once.
            if np.mean(bands[_GRID_BAND] == 0) > self.max_nodata_fraction:
                return None
            left, bottom, right, top = window_bounds(window, grid)
            for band in ALL_BANDS:
                if band in bands:
                    continue
                with rasterio.open(item.assets[band].href) as src:
                    band_window = from_bounds(
                        left, bottom, right, top, transform=src.transform
                    )
                    bands[band] = src.read(
                        1,
                        window=band_window,
                        out_shape=(size, size),
                        resampling=self.resampling,
                    )
        image = np.stack([bands[band] for band in ALL_BANDS]).astype(np.uint16)
        if nodata_fraction(image) > self.max_nodata_fraction:
            return None
        return image, crs, window_transform(window, grid)

    # -- one sample ----------------------------------------------------------

    def write(
        self,
        sample: int,
        item: pystac.Item,
        image: NDArray[np.uint16],
        crs: Any,
        transform: Any,
    ) -> _Written:
        """Write a patch atomically: temporary name, then rename.

        Args:
            sample: the sample number.
            item: the item it comes from (recorded in the GeoTIFF tags).
            image: ``(12, size, size)`` uint16.
            crs: its CRS.
            transform: its affine transform.

        Returns:
            The file name and centroid.
        """
        fn = patch_name(sample)
        final = self.images / fn
        profile = {
            'driver': 'GTiff',
            'dtype': 'uint16',
            'count': len(ALL_BANDS),
            'height': self.size,
            'width': self.size,
            'crs': crs,
            'transform': transform,
            'compress': 'lzw',
            'predictor': 2,
        }
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
                collection=self.collection,
                datetime=str(item.properties.get('datetime')),
                eo_cloud_cover=str(item.properties.get('eo:cloud_cover')),
            )
        lon, lat = patch_centroid(crs, transform, self.size, self.size)
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
        for item in items[: self.items_per_point]:
            urls: list[str] = []

            def read(item: pystac.Item = item, urls: list[str] = urls) -> Any:
                signed = self.sign(item.clone()) if self.sign else item
                urls[:] = [asset.href for asset in signed.assets.values()]
                return self.read(signed, lon, lat)

            def forget(urls: list[str] = urls) -> None:
                _forget(urls)

            patch = self.retry(f'{where}: read {item.id}', read, forget)
            if patch is not None:
                return self.write(sample, item, *patch)
            logger.debug('%s: %s has too much nodata', where, item.id)
        raise _Rejected('nodata')


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0][:200] if text else ''
    return f'{type(error).__name__}: {first}'


def _parse_date(value: str, name: str) -> str:
    try:
        datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError(
            f'{name} must be an ISO date like 2021-01-01, not {value!r}'
        ) from None
    return value


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
    workers: int = 8,
    max_retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    max_candidates: int | None = None,
    gdal_env: Mapping[str, str] | None = None,
    progress: bool = True,
) -> BuildResult:
    """Build (or resume, or extend) an S2-100K-style dataset.

    The result loads with :class:`~torchgeo_satclip.datasets.S2100K`.

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
            rejected for nodata (1: the S2-100K recipe).
        resampling: resampling of the 20 m and 60 m bands to 10 m.
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

    Returns:
        What the run did; :attr:`BuildResult.complete` tells whether the
        dataset has *num_samples* patches.

    Raises:
        ValueError: on an invalid argument, or a root built with other
            parameters.
        BuildLockedError: if another build is running in *root*.
    """
    if num_samples < 0:
        raise ValueError(f'num_samples must be >= 0, not {num_samples}')
    if not 0 <= max_nodata_fraction < 1:
        raise ValueError(
            f'max_nodata_fraction must be in [0, 1), not {max_nodata_fraction}'
        )
    if size < 1 or workers < 1 or items_per_point < 1 or max_retries < 0:
        raise ValueError(
            'size, workers and items_per_point must be >= 1, max_retries >= 0'
        )
    if resampling not in ('nearest', 'bilinear', 'cubic'):
        raise ValueError(
            f"resampling must be 'nearest', 'bilinear' or 'cubic', not {resampling!r}"
        )
    start, end = _parse_date(start, 'start'), _parse_date(end, 'end')
    if region is not None and not isinstance(region, Region):
        region = (
            Region(region) if isinstance(region, Mapping) else Region.from_file(region)
        )
    if max_candidates is None:
        max_candidates = 4 * num_samples + 100

    root = Path(root)
    config: dict[str, Any] = {
        'format': 'torchgeo-satclip/s2-100k-build',
        'version': 1,
        'seed': seed,
        'start': start,
        'end': end,
        'max_cloud_cover': max_cloud_cover,
        'region': shapely.geometry.mapping(region.geometry) if region else None,
        'land': land,
        'collection': collection,
        'size': size,
        'max_nodata_fraction': max_nodata_fraction,
        'items_per_point': items_per_point,
        'resampling': resampling,
    }
    # Round trip through JSON so that tuples compare equal to saved lists.
    config = _json_roundtrip(config)

    env = dict(_GDAL_DEFAULTS)
    env['GDAL_HTTP_TIMEOUT'] = str(max(1, round(timeout)))
    env.update(gdal_env or {})
    builder = _Builder(
        api_url=api_url,
        collection=collection,
        datetime_range=f'{start}/{end}',
        max_cloud_cover=max_cloud_cover,
        sign=sign,
        size=size,
        max_nodata_fraction=max_nodata_fraction,
        items_per_point=items_per_point,
        resampling=Resampling[resampling],
        max_retries=max_retries,
        backoff=backoff,
        max_backoff=max_backoff,
        timeout=timeout,
        gdal_env=env,
        images=root / 'images',
    )
    result = BuildResult(root=root, target=num_samples)
    started = time.monotonic()
    with BuildState(root, config) as state:
        result.num_resumed = state.num_resumed
        result.num_adopted = state.num_adopted
        if state.num_adopted:
            logger.info('indexed %d patches a killed run left', state.num_adopted)
        _run(
            builder,
            state,
            result,
            region,
            seed,
            land,
            workers,
            max_candidates,
            progress,
        )
        result.num_samples = len(state.rows)
    result.seconds = time.monotonic() - started
    rejected = ', '.join(
        f'{n} {reason}' for reason, n in sorted(result.rejected.items())
    )
    logger.info(
        'build of %s: %d of %d patches (%d written now); rejected: %s; failed: %d',
        root,
        result.num_samples,
        num_samples,
        result.num_written,
        rejected or 'none',
        result.num_failed,
    )
    return result


def _json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = json.loads(json.dumps(value))
    return out


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
    region: Region | None,
    seed: int,
    land: bool,
    workers: int,
    max_candidates: int,
    progress: bool,
) -> None:
    """Submit points until the target is met or the candidates run out."""
    if len(state.rows) >= result.target:
        return
    candidates = _candidates(state, region, seed, land)
    pending: dict[Future[_Written], tuple[int, float, float]] = {}
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
                pending[pool.submit(builder.make_patch, *candidate)] = candidate
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                sample, lon, lat = pending.pop(future)
                _collect(future, sample, lon, lat, state, result, bar)
    except BaseException:
        builder.stop.set()
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
        state.add(written.fn, written.lon, written.lat)
        result.num_written += 1
        bar.update(1)
    bar.set_postfix(rejected=sum(result.rejected.values()), failed=result.num_failed)
