"""STAC side of the builder: search around a point, item choice, signing.

For a point, the STAC API is asked for the items of a collection over the
point in a date range with ``eo:cloud_cover`` below a maximum, sorted by cloud
cover. The answer is filtered and sorted again here, whatever the server did,
so the least cloudy item of the date range whose footprint covers the point
always comes first.

Only the first items of the answer are read when the API declares the query
and sort extensions (its ``conformsTo``): they are then the least cloudy ones.
If those first items show that the API does not do what it declares (they are
not in order of cloud cover, or none is below the cloud maximum), the search
is made again and read to the last page, as for an API that does not declare
them (logged once per build, at level WARNING). An API that does not declare both may ignore the cloud maximum or the order
(pystac-client only warns), so its answer is read to the last page: the point
and the date range keep it bounded, and no item over the point is missed.
The query or the order is only sent to an API that declares its extension.
"""

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable, Iterable

import pystac
import shapely  # type: ignore[import-untyped]
from pystac_client import Client, ConformanceClasses
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import shape  # type: ignore[import-untyped]

__all__ = ['COLLECTION', 'DEFAULT_API_URL']

logger = logging.getLogger(__name__)

#: The Planetary Computer STAC API.
DEFAULT_API_URL = 'https://planetarycomputer.microsoft.com/api/stac/v1'

#: Sentinel-2 Level-2A collection of the Planetary Computer.
COLLECTION = 'sentinel-2-l2a'

#: Items per page asked for when every page of an answer is read.
_PAGE_SIZE = 100


def _cloud_cover(item: pystac.Item) -> float:
    """An item's ``eo:cloud_cover`` (infinite when it has none)."""
    value = item.properties.get('eo:cloud_cover')
    return float(value) if value is not None else float('inf')


def _item_date(item: pystac.Item) -> dt.date | None:
    """An item's acquisition date, UTC (its ``datetime``, else its start).

    Args:
        item: a STAC item.

    Returns:
        The date, or None for an item without a time.
    """
    moment = item.datetime or item.common_metadata.start_datetime
    return None if moment is None else _utc(moment).date()


def _utc(moment: dt.datetime) -> dt.datetime:
    """*moment* in UTC (a naive one is taken to be UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _period(interval: str) -> tuple[dt.datetime, dt.datetime]:
    """The first and last moments of a search's ``start/end``, in UTC.

    Args:
        interval: two ``YYYY-MM-DD`` dates or RFC 3339 moments, as
            :meth:`~.config.BuildConfig.stac_datetime` writes them.

    Returns:
        ``(first, last)``; a date alone is its whole UTC day, as
        pystac-client sends it (its start, or its last microsecond).
    """
    start, end = interval.split('/')
    first = _utc(dt.datetime.fromisoformat(start.replace('Z', '+00:00')))
    last = _utc(dt.datetime.fromisoformat(end.replace('Z', '+00:00')))
    if 'T' not in end:
        last += dt.timedelta(days=1, microseconds=-1)
    return first, last


def _within(item: pystac.Item, first: dt.datetime, last: dt.datetime) -> bool:
    """Whether an item's time is in a range, as a STAC search matches it.

    Args:
        item: a STAC item.
        first: the range's first moment (aware).
        last: its last moment (aware), included.

    Returns:
        Whether its ``datetime`` is in the range or, without one, its
        ``start_datetime`` to ``end_datetime`` overlaps it (an item without
        a time is not).
    """
    if item.datetime is not None:
        return first <= _utc(item.datetime) <= last
    start = item.common_metadata.start_datetime
    end = item.common_metadata.end_datetime
    if start is None or end is None:
        return False
    return _utc(start) <= last and first <= _utc(end)


def _covering(
    items: Iterable[pystac.Item], lon: float, lat: float, max_cloud_cover: float
) -> list[pystac.Item]:
    """The items over a point below the cloud maximum, least cloudy first.

    Args:
        items: items as a STAC API answered.
        lon: longitude in degrees.
        lat: latitude in degrees.
        max_cloud_cover: keep items with ``eo:cloud_cover`` below this (%).

    Returns:
        The items kept (an item without a geometry is taken to cover the
        point), sorted by cloud cover, then id.
    """
    where = shapely.Point(lon, lat)
    kept = [
        item
        for item in items
        if _cloud_cover(item) < max_cloud_cover
        and (item.geometry is None or shape(item.geometry).intersects(where))
    ]
    return sorted(kept, key=lambda item: (_cloud_cover(item), item.id))


def _answer_suspect(
    items: list[pystac.Item], limit: int, max_cloud_cover: float
) -> bool:
    """Whether a bounded answer shows that the API ignored the query or the order.

    Only an answer cut at *limit* items can hide a better item. It is
    suspect when its items are not in ascending order of cloud cover (the
    order was ignored), or when none is below *max_cloud_cover* (the query
    was ignored, and with it maybe the order: honouring the order alone would
    have put any item below the maximum first).

    Args:
        items: the items of the answer, in the API's order.
        limit: the most items the bounded search asks for.
        max_cloud_cover: the cloud maximum sent with the query (%).

    Returns:
        True if the whole answer must be read.
    """
    if len(items) < limit:
        return False
    clouds = [_cloud_cover(item) for item in items]
    ordered = all(a <= b for a, b in itertools.pairwise(clouds))
    return not ordered or min(clouds) >= max_cloud_cover


def _signed(
    item: pystac.Item, sign: Callable[[pystac.Item], pystac.Item] | None
) -> pystac.Item:
    """A signed copy of an item (the item itself when *sign* is None).

    Args:
        item: a STAC item; left unchanged.
        sign: signs an item's asset URLs, e.g. ``planetary_computer.sign``.

    Returns:
        The item to read.
    """
    return sign(item.clone()) if sign else item


class _ItemSearch:
    """Searches a STAC API for the items over a point; one client per thread."""

    def __init__(
        self,
        api_url: str,
        *,
        collection: str,
        datetime: str,
        max_cloud_cover: float,
        wanted: int,
        timeout: float,
    ) -> None:
        """Prepare the search (no request is made until called).

        Args:
            api_url: the STAC API.
            collection: the STAC collection.
            datetime: the date range, ``start/end`` (ISO 8601).
            max_cloud_cover: keep items with ``eo:cloud_cover`` below this (%).
            wanted: how many items a caller may try per point (of an API
                that declares the query and sort extensions, twice this, and
                at least 10, are asked for; of another, every item).
            timeout: HTTP time-out in seconds.
        """
        self.api_url = api_url
        self.collection = collection
        self.datetime = datetime
        self.max_cloud_cover = max_cloud_cover
        self.limit = max(10, 2 * wanted)
        self.timeout = timeout
        self._local = threading.local()
        #: Set once an answer showed that the API ignores the query or the
        #: order it declares: every later search is read to its last page.
        self.distrusted = False
        self._lock = threading.Lock()

    def _distrust(self, lon: float, lat: float) -> None:
        """Read every later answer to its last page; log it the first time."""
        with self._lock:
            if self.distrusted:
                return
            self.distrusted = True
        logger.warning(
            '%s declares the STAC query and sort extensions, but its answer '
            'for (%.5f, %.5f) is not filtered and sorted by eo:cloud_cover: '
            'every search is now read to its last page',
            self.api_url,
            lon,
            lat,
        )

    def client(self) -> Client:
        """This thread's STAC client (opened once per thread)."""
        client: Client | None = getattr(self._local, 'client', None)
        if client is None:
            io = StacApiIO(timeout=self.timeout, max_retries=None)
            client = Client.open(self.api_url, stac_io=io)
            self._local.client = client
        return client

    def __call__(
        self, lon: float, lat: float, window: tuple[dt.date, dt.date] | None = None
    ) -> list[pystac.Item]:
        """Items covering a point below the cloud maximum, least cloudy first.

        Args:
            lon: longitude in degrees.
            lat: latitude in degrees.
            window: search these UTC days (first and last included) instead
                of the search's date range, and keep only the items whose
                date is one of them.

        Returns:
            The items; filtered (footprint, cloud maximum, dates) and sorted
            here too, whatever the server did.
            Only the first ones of the answer are read from an API that
            declares the query and sort extensions, every page of it from
            another (see the module).
        """
        period = self.datetime
        if window is not None:
            period = f'{window[0].isoformat()}/{window[1].isoformat()}'
        client = self.client()
        filters = client.conforms_to(ConformanceClasses.QUERY)
        sorts = client.conforms_to(ConformanceClasses.SORT)
        bounded = filters and sorts and not self.distrusted

        def answer(bounded: bool) -> list[pystac.Item]:
            search = client.search(
                collections=[self.collection],
                intersects={'type': 'Point', 'coordinates': [lon, lat]},
                datetime=period,
                query=(
                    {'eo:cloud_cover': {'lt': self.max_cloud_cover}}
                    if filters
                    else None
                ),
                sortby=(
                    [{'field': 'eo:cloud_cover', 'direction': 'asc'}] if sorts else None
                ),
                limit=self.limit if bounded else max(self.limit, _PAGE_SIZE),
                max_items=self.limit if bounded else None,
            )
            return list(search.items())

        found = answer(bounded)
        if bounded and _answer_suspect(found, self.limit, self.max_cloud_cover):
            self._distrust(lon, lat)
            found = answer(False)
        items = _covering(found, lon, lat, self.max_cloud_cover)
        if window is None:
            first_moment, last_moment = _period(self.datetime)
            return [item for item in items if _within(item, first_moment, last_moment)]
        first, last = window
        return [
            item
            for item in items
            if (date := _item_date(item)) is not None and first <= date <= last
        ]
