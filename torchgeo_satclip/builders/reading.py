"""Windowed reads of cloud-optimised GeoTIFFs, and retrying what fails.

A patch is read from the item's cloud-optimised GeoTIFFs, one windowed read
per band, never a whole scene: the 10 m grid of B02 defines a ``size x size``
window around the point (shifted inside the scene when the point is near its
edge) and the 20 m and 60 m bands are resampled onto it.

Transient errors (HTTP 408, 425, 429, 5xx, time-outs, broken connections,
failed GDAL reads) are retried with exponential backoff and jitter. GDAL's
``/vsicurl/`` remembers failed URLs, so a retry first makes it forget them.
"""

import ctypes
import ctypes.util
import logging
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pystac
import rasterio
from numpy.typing import NDArray
from pystac_client.exceptions import APIError
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform

from ..datasets.s2_100k_files import ALL_BANDS

__all__: list[str] = []

logger = logging.getLogger(__name__)

#: The band whose 10 m grid defines the patch grid.
_GRID_BAND = 'B02'

#: HTTP statuses worth retrying.
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

#: HTTP statuses of GDAL reads that a retry cannot change: the asset is not
#: there (an expired signature, 403, is not one: each retry signs again).
_PERMANENT_READ_STATUS = frozenset({404, 410})

#: GDAL's report of an HTTP failure of ``/vsicurl/`` (``HTTP response code:
#: 404``, or ``HTTP response code on URL: 404`` in newer versions).
_GDAL_HTTP_STATUS = re.compile(r'HTTP response code(?: on \S+)?: (\d{3})\b')

#: GDAL settings for reading cloud-optimised GeoTIFFs over HTTP; overridable.
_GDAL_DEFAULTS: dict[str, str] = {
    'GDAL_DISABLE_READDIR_ON_OPEN': 'EMPTY_DIR',  # no directory listing requests
    'GDAL_HTTP_MERGE_CONSECUTIVE_RANGES': 'YES',
    'GDAL_HTTP_MULTIPLEX': 'YES',
    'VSI_CACHE': 'FALSE',
}

_T = TypeVar('_T')

#: A patch: ``(image, crs, transform)``, image ``(12, size, size)`` uint16.
_Patch = tuple[NDArray[np.uint16], Any, Any]


#: The data type of every band of a Sentinel-2 L2A scene, and of a patch.
_DTYPE = 'uint16'


class _Rejected(Exception):
    """A point (or one of its items) gives no patch, for good.

    Attributes:
        reason: a word, recorded in ``rejected.csv`` (``no_item``, ``nodata``,
            ``missing_asset``, ``scene_too_small``, ``bad_scene``, ...).
        detail: what was wrong, for the log (empty when the reason says it).
    """

    def __init__(self, reason: str, detail: str = '') -> None:
        super().__init__(f'{reason}: {detail}' if detail else reason)
        self.reason = reason
        self.detail = detail


class _Cancelled(Exception):
    """The build is stopping; a retry loop gave up waiting."""


def _describe(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters of it)."""
    text = str(error).strip().splitlines()
    first = text[0][:200] if text else ''
    return f'{type(error).__name__}: {first}'


def _is_transient(error: BaseException) -> bool:
    """Whether an error may go away when the request is repeated.

    Args:
        error: an exception raised while searching, signing or reading.

    Returns:
        True for HTTP 408/425/429/5xx, time-outs, connection errors and GDAL
        read errors (GDAL reports HTTP failures of ``/vsicurl/`` that way),
        except a read that GDAL says failed with HTTP 404 or 410.
    """
    if isinstance(error, APIError):
        status = getattr(error, 'status_code', None)
        return status is None or status in _TRANSIENT_STATUS
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    if _is_gdal_error(error):
        return not _asset_gone(error)
    try:
        import requests
    except ImportError:  # pragma: no cover - pystac-client requires it
        return False
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code in _TRANSIENT_STATUS
    return isinstance(error, (requests.ConnectionError, requests.Timeout))


def _is_gdal_error(error: BaseException) -> bool:
    """Whether *error* is rasterio's or GDAL's (a failed read or open)."""
    if isinstance(error, RasterioError):
        return True
    try:
        from rasterio._err import CPLE_BaseError
    except ImportError:  # pragma: no cover - private module moved
        return False
    return isinstance(error, CPLE_BaseError)


def _asset_gone(error: BaseException) -> bool:
    """Whether a read failed because its asset is not there (HTTP 404, 410).

    A retry cannot bring it back: the item is passed over (``missing_asset``).
    """
    if not _is_gdal_error(error):
        return False
    found = _GDAL_HTTP_STATUS.search(str(error))
    return found is not None and int(found.group(1)) in _PERMANENT_READ_STATUS


@dataclass(frozen=True)
class _Retry:
    """Calls a function, retrying transient errors with exponential backoff.

    Attributes:
        max_retries: retries of a transient error before giving up.
        backoff: first retry delay in seconds, doubled at each retry (with
            jitter), at most *max_backoff*.
        max_backoff: longest retry delay in seconds.
        stop: once set, waiting loops give up (:class:`_Cancelled`).
    """

    max_retries: int
    backoff: float
    max_backoff: float
    stop: threading.Event = field(default_factory=threading.Event)

    def __call__(
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


def _gdal_env(timeout: float, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """GDAL configuration options of the reads.

    Args:
        timeout: HTTP time-out in seconds (``GDAL_HTTP_TIMEOUT``, at least 1).
        overrides: options over the builder's defaults.

    Returns:
        The options.
    """
    env = dict(_GDAL_DEFAULTS)
    env['GDAL_HTTP_TIMEOUT'] = str(max(1, round(timeout)))
    env.update(overrides or {})
    return env


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


def _check_dtype(src: Any, item: pystac.Item, band: str) -> None:
    """Refuse a band that is not uint16, before any of its pixels is read.

    A patch is written as uint16 and its nodata is 0 in the values as read:
    float reflectances (0-1) or signed values would be changed by a cast,
    into zeros or wrapped numbers, so they are refused instead.

    Args:
        src: the open dataset of the band.
        item: the item, for the message.
        band: the band's asset key, for the message.

    Raises:
        _Rejected: ``bad_scene``, naming the item, the asset and its dtype.
    """
    dtype = src.dtypes[0]
    if dtype != _DTYPE:
        raise _Rejected(
            'bad_scene',
            f'item {item.id}: asset {band} is {dtype}, expected {_DTYPE} '
            '(Sentinel-2 L2A digital numbers)',
        )


def _north_up_grid(src: Any, item: pystac.Item, band: str) -> Any:
    """The affine transform of a band's grid, refused unless north-up.

    Raises:
        _Rejected: ``bad_scene`` for a rotated or south-up grid, naming the
            item and the band.
    """
    grid = src.transform
    if grid.b != 0 or grid.d != 0 or grid.e >= 0:
        raise _Rejected(
            'bad_scene',
            f'item {item.id}: the grid of {band} is rotated or south-up '
            f'({tuple(grid)[:6]}), expected north-up',
        )
    return grid


def _grid_window(
    src: Any, item: pystac.Item, lon: float, lat: float, size: int
) -> Window:
    """The ``size x size`` window of a scene's grid around a point.

    Args:
        src: the open dataset of the grid band.
        item: the item, for the messages.
        lon: longitude in degrees.
        lat: latitude in degrees.
        size: the window's height and width in pixels.

    Returns:
        The window, shifted inside the scene when the point is near its edge
        (its centre is then at most half a patch from the point).

    Raises:
        _Rejected: if the grid is rotated or south-up, or smaller than a patch
            (``scene_too_small``), or if the point is outside the grid
            (``bad_scene``: the item's footprint, which the search trusted,
            is not where its pixels are, as for some scenes that cross the
            antimeridian; the window would otherwise be shifted to the
            scene's edge, however far from the point).
    """
    grid = _north_up_grid(src, item, _GRID_BAND)
    if src.width < size or src.height < size:
        raise _Rejected(
            'scene_too_small',
            f'item {item.id}: {_GRID_BAND} is {src.width} x {src.height} pixels, '
            f'smaller than a {size} x {size} patch',
        )
    xs, ys = warp_transform('EPSG:4326', src.crs, [lon], [lat])
    col = (xs[0] - grid.c) / grid.a  # a north-up grid, checked above
    row = (ys[0] - grid.f) / grid.e
    if not (0 <= col <= src.width and 0 <= row <= src.height):  # False for NaN
        raise _Rejected(
            'bad_scene',
            f'item {item.id}: the point ({lon:.5f}, {lat:.5f}) is outside its '
            f'{_GRID_BAND} grid (pixel column {col:.1f}, row {row:.1f} of a '
            f'{src.width} x {src.height} grid): its footprint does not match '
            'its pixels',
        )
    col_off = min(max(round(col - size / 2), 0), src.width - size)
    row_off = min(max(round(row - size / 2), 0), src.height - size)
    return Window(col_off, row_off, size, size)


#: How far (in pixels of a band) its grid may miss the patch's bounds: the
#: rounding of the bounds' arithmetic, never a pixel.
_COVER_TOLERANCE = 1e-6


def _band_window(
    src: Any,
    item: pystac.Item,
    band: str,
    crs: Any,
    bounds: tuple[float, float, float, float],
) -> Window:
    """The window of a band's own grid over the patch's bounds.

    Args:
        src: the open dataset of the band.
        item: the item, for the messages.
        band: the band's asset key, for the messages.
        crs: the CRS of the grid band (and of the patch).
        bounds: ``(left, bottom, right, top)`` of the patch in *crs*.

    Returns:
        The window (fractional where the band's pixels are larger than the
        patch's), inside the band.

    Raises:
        _Rejected: ``bad_scene``, naming the item and the band, if the band is
            in another CRS than the grid band, is not north-up, or does not
            cover the whole patch (a read would crop the window and stretch
            what is left over the patch, or read another place).
    """
    if src.crs != crs:
        raise _Rejected(
            'bad_scene',
            f'item {item.id}: asset {band} is in {src.crs}, {_GRID_BAND} in '
            f'{crs}; expected every band in the same CRS',
        )
    grid = _north_up_grid(src, item, band)
    window = from_bounds(*bounds, transform=grid)
    if (
        window.col_off < -_COVER_TOLERANCE
        or window.row_off < -_COVER_TOLERANCE
        or window.col_off + window.width > src.width + _COVER_TOLERANCE
        or window.row_off + window.height > src.height + _COVER_TOLERANCE
    ):
        raise _Rejected(
            'bad_scene',
            f'item {item.id}: asset {band} covers {_format_bounds(src.bounds)} '
            f'(left, bottom, right, top in {crs}), not all of the patch '
            f'{_format_bounds(bounds)} cut from {_GRID_BAND}',
        )
    return window


def _format_bounds(bounds: Iterable[float]) -> str:
    """``(left, bottom, right, top)``, to the millimetre (whole metres bare)."""
    return '(' + ', '.join(f'{v:.3f}'.rstrip('0').rstrip('.') for v in bounds) + ')'


def _read_patch(
    item: pystac.Item,
    lon: float,
    lat: float,
    *,
    size: int,
    max_nodata_fraction: float,
    resampling: Resampling,
    gdal_env: Mapping[str, str],
) -> _Patch | None:
    """Read the patch of one item around a point.

    Args:
        item: a (signed) STAC item with one asset per band.
        lon: longitude in degrees.
        lat: latitude in degrees.
        size: patch height and width in pixels of the 10 m grid.
        max_nodata_fraction: the most nodata a patch may have.
        resampling: resampling of the 20 m and 60 m bands to 10 m.
        gdal_env: GDAL configuration options.

    Returns:
        ``(image, crs, transform)``, or None if more than
        *max_nodata_fraction* of the patch is nodata. Sentinel-2 L2A nodata is
        0 in every band at once, so the grid band (B02, read first) decides
        alone, before the other 11 bands are read: a rejected patch costs one
        read. Zeros in other bands never reject a patch; zeros in B02 alone
        do. Every band must be uint16 (checked when it is opened, before its
        pixels are read), so the values written are the values read. A
        written patch therefore never has more nodata (0 in every band, as
        :class:`~torchgeo_satclip.datasets.S2100K` measures it) than
        *max_nodata_fraction*.

    Raises:
        _Rejected: if the item lacks a band (``missing_asset``), its scene is
            smaller than a patch (``scene_too_small``), or its grid is not
            north-up, does not hold the point, a band is not uint16, is in
            another CRS than B02 or does not cover the whole patch
            (``bad_scene``); with a detail that names the item and what is
            wrong.
    """
    missing = [band for band in ALL_BANDS if band not in item.assets]
    if missing:
        raise _Rejected(
            'missing_asset',
            f'item {item.id} has no asset {", ".join(missing)} '
            f'(expected one per band: {", ".join(ALL_BANDS)})',
        )
    bands: dict[str, NDArray[np.uint16]] = {}
    with rasterio.Env(**gdal_env):
        with rasterio.open(item.assets[_GRID_BAND].href) as src:
            _check_dtype(src, item, _GRID_BAND)
            window = _grid_window(src, item, lon, lat, size)
            grid, crs = src.transform, src.crs
            bands[_GRID_BAND] = src.read(1, window=window)
        # The one nodata check (see Returns): L2A nodata is 0 in every band
        # at once, so B02 decides before the other bands are read.
        if np.mean(bands[_GRID_BAND] == 0) > max_nodata_fraction:
            return None
        left, bottom, right, top = window_bounds(window, grid)
        for band in ALL_BANDS:
            if band in bands:
                continue
            with rasterio.open(item.assets[band].href) as src:
                _check_dtype(src, item, band)
                band_window = _band_window(
                    src, item, band, crs, (left, bottom, right, top)
                )
                bands[band] = src.read(
                    1,
                    window=band_window,
                    out_shape=(size, size),
                    resampling=resampling,
                )
    image = np.stack([bands[band] for band in ALL_BANDS])  # uint16, checked
    return image, crs, window_transform(window, grid)
