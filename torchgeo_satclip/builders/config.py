"""The parameters that define a built dataset (its ``build.json``).

A :class:`BuildConfig` is what the builder reads to make each patch, and what
``build.json`` records in the dataset root. A build resumes or extends a root
only with the same configuration; how the build runs (the number of samples,
the STAC API, workers, retries, time-outs, GDAL options) is not part of it.
"""

import datetime as dt
import json
import math
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from .._checks import check_flag, check_int, check_real
from .stac import COLLECTION

__all__ = ['BuildConfig']

#: Resamplings of the 20 m and 60 m bands to the 10 m grid.
_ResamplingName = Literal['nearest', 'bilinear', 'cubic']


def _check_date(value: str, name: str) -> datetime:
    """Parse an ISO 8601 date (or date and time); naive times are UTC.

    Raises:
        ValueError: naming *name* and the value, unless it is such a date.
    """
    if not isinstance(value, str):
        raise ValueError(
            f'{name} must be an ISO date like 2021-01-01, not {value!r} '
            f'(type {type(value).__name__})'
        )
    try:
        moment = datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError(
            f'{name} must be an ISO date like 2021-01-01, not {value!r}'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _plain_date(value: str) -> dt.date | None:
    """*value* as a date if it is a date without a time, else None."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _stac_moment(value: str, name: str) -> str:
    """A start or end date as a STAC item search takes it (RFC 3339).

    pystac-client takes ``YYYY-MM-DD`` (a whole day: the end of the range is
    its last second) or a date and a time to the second; the other ISO 8601
    forms that :func:`_check_date` accepts (``20210101``,
    ``2021-01-01T10:00``, ``2021-01-01 10:00:00``, week dates) are written in
    those forms, at the same moment.

    Args:
        value: a date checked by :func:`_check_date`.
        name: its parameter, for the message.

    Returns:
        ``YYYY-MM-DD`` for a date, else the moment in UTC,
        ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.
    """
    day = _plain_date(value)
    if day is not None:
        return day.isoformat()
    moment = _check_date(value, name).astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat() + 'Z'


def _parse_window(value: Any, position: int) -> tuple[dt.date, dt.date]:
    """Parse one acquisition window, ``YYYY-MM-DD/YYYY-MM-DD`` (both days in).

    Raises:
        ValueError: naming the window and its position, unless it is one.
    """
    where = f'window {position + 1}'
    if not isinstance(value, str):
        raise ValueError(
            f'{where} must be a string START/END like 2021-03-01/2021-05-31, not '
            f'{value!r} (type {type(value).__name__})'
        )
    match = re.fullmatch(r'(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})', value)
    try:
        if match is None:
            raise ValueError(value)
        first, last = (dt.date.fromisoformat(text) for text in match.groups())
    except ValueError:
        raise ValueError(
            f'{where} must be START/END, two dates YYYY-MM-DD like '
            f'2021-03-01/2021-05-31, not {value!r}'
        ) from None
    if last < first:
        raise ValueError(f'{where} {value!r} ends before it starts')
    return first, last


def _check_windows(value: Any) -> tuple[str, ...]:
    """The windows as a tuple, checked: well formed, in order, disjoint.

    Raises:
        ValueError: for a value that is not a non-empty sequence of windows,
            a malformed window, or windows out of order or overlapping.
    """
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ValueError(
            'windows must be a list of START/END date windows like '
            f"['2021-03-01/2021-05-31', '2021-06-01/2021-08-31'], not {value!r}"
        )
    if not value:
        raise ValueError('windows must list at least one START/END window, not none')
    parsed = [_parse_window(window, i) for i, window in enumerate(value)]
    for i in range(1, len(parsed)):
        if parsed[i][0] <= parsed[i - 1][1]:
            raise ValueError(
                f'window {i + 1} {value[i]!r} starts before window {i} '
                f'{value[i - 1]!r} ends: windows must be in order and must not '
                'overlap'
            )
    return tuple(value)


def _split_period(
    start: datetime, end: datetime, count: int
) -> list[tuple[dt.date, dt.date]]:
    """Split the UTC days from *start* to *end* into *count* equal windows.

    Raises:
        ValueError: if the period has fewer days than windows.
    """
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    days = (last - first).days + 1
    if days < count:
        raise ValueError(
            f'dates={count} needs at least {count} days from start to end, but '
            f'{first}/{last} has {days}'
        )
    return [
        (
            first + dt.timedelta(days=i * days // count),
            first + dt.timedelta(days=(i + 1) * days // count - 1),
        )
        for i in range(count)
    ]


def _check_ring(ring: Any, where: str) -> list[list[Any]]:
    """One linear ring of a region, its positions checked and made plain.

    Raises:
        ValueError: naming the ring (*where*) and the vertex, for a ring of
            fewer than 3 vertices or a vertex that is not 2 or 3 finite
            numbers.
    """
    if isinstance(ring, str | bytes) or not isinstance(ring, list | tuple):
        raise ValueError(f'region {where} must be a list of vertices, not {ring!r}')
    if len(ring) < 3:
        raise ValueError(
            f'region {where} has {len(ring)} vertices, expected at least 3 '
            '(longitude, latitude) positions'
        )
    plain = []
    for i, position in enumerate(ring):
        vertex = f'region {where}, vertex {i}'
        if (
            isinstance(position, str | bytes)
            or not isinstance(position, list | tuple)
            or len(position) not in (2, 3)
        ):
            raise ValueError(
                f'{vertex} is {position!r}, expected a position [longitude, '
                'latitude] (an altitude may follow)'
            )
        values = []
        for axis, value in zip(
            ('longitude', 'latitude', 'altitude'), position, strict=False
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
            ):
                raise ValueError(
                    f'{vertex}: its {axis} is {value!r}, expected a finite number'
                )
            values.append(
                int(value) if isinstance(value, numbers.Integral) else float(value)
            )
        plain.append(values)
    return plain


def _quiet_region(region: Mapping[str, Any]) -> Any:
    """``Region(region)`` without its long-edge warning (the build gives it).

    Raises:
        ValueError: as :class:`~torchgeo_satclip.geo.Region` does.
    """
    from ..geo import Region

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return Region(region)


def _check_region_geometry(region: Mapping[str, Any]) -> None:
    """Refuse a region the build could not sample from, as it would at once.

    What only the geometry tells (a latitude beyond the poles, a
    self-intersecting polygon, a polygon wider than 360 degrees, an empty
    one) was found only when ``build_dataset`` read the region, after the
    configuration was written or compared. The long-edge warning is left to
    the build, which reads the region again.

    Raises:
        ValueError: ``Region``'s reason, prefixed with ``region:``.
    """
    try:
        _quiet_region(region)
    except ValueError as error:
        raise ValueError(f'region: {error}') from None


def _check_region_coordinates(region: Mapping[str, Any]) -> list[Any]:
    """The coordinates of a ``Polygon`` or ``MultiPolygon``, checked, as lists.

    NumPy numbers become the Python ones they hold (which JSON writes).

    Raises:
        ValueError: for coordinates missing or empty, a polygon without a
            ring, a ring of fewer than 3 vertices, or a vertex that is not
            finite numbers, naming the polygon, ring and vertex.
    """
    if 'coordinates' not in region:
        raise ValueError(
            f'region has no coordinates: a GeoJSON {region["type"]} lists them'
        )
    multi = region['type'] == 'MultiPolygon'
    polygons = region['coordinates']
    what = 'polygons' if multi else 'rings'
    if isinstance(polygons, str | bytes) or not isinstance(polygons, list | tuple):
        raise ValueError(
            f"region's coordinates must be a list of {what}, not {polygons!r}"[:300]
        )
    if not polygons:
        raise ValueError(f"region's coordinates list no {what[:-1]}: it is empty")
    if not multi:
        return [_check_ring(ring, f'ring {i}') for i, ring in enumerate(polygons)]
    checked = []
    for p, rings in enumerate(polygons):
        if isinstance(rings, str | bytes) or not isinstance(rings, list | tuple):
            raise ValueError(
                f'region polygon {p} must be a list of rings, not {rings!r}'[:300]
            )
        if not rings:
            raise ValueError(f'region polygon {p} lists no ring: it is empty')
        checked.append(
            [
                _check_ring(ring, f'polygon {p}, ring {i}')
                for i, ring in enumerate(rings)
            ]
        )
    return checked


#: Most items tried per point: the search of an API that sorts asks for twice
#: as many in one page, and the Planetary Computer answers at most 1000 per
#: page (HTTP 400 above).
_MAX_ITEMS_PER_POINT = 500

#: The fields of a multi-temporal build, left out of single-date build.json files.
_TEMPORAL_FIELDS = ('dates', 'windows', 'min_dates')


@dataclass(frozen=True)
class BuildConfig:
    """The parameters that define an S2-100K-style dataset.

    Written to ``build.json`` when a build starts, and compared with it when
    a build resumes (see :func:`~torchgeo_satclip.builders.build_dataset`).
    :meth:`to_dict` and :meth:`from_dict` (or :meth:`to_json` and
    :meth:`from_json`) round-trip it: ``BuildConfig.from_dict(c.to_dict()) ==
    c``. The parameters are checked when it is made.

    Attributes:
        seed: seed of the point stream.
        start: first acquisition date (ISO 8601).
        end: last acquisition date (ISO 8601).
        max_cloud_cover: keep only items with ``eo:cloud_cover`` below this (%).
        region: GeoJSON ``Polygon`` or ``MultiPolygon`` geometry (EPSG:4326)
            to sample points in; None for the whole globe. Kept as JSON gives
            it back (lists, not tuples); treat it as read-only.
        land: sample only on land (global-land-mask).
        collection: the STAC collection.
        size: patch height and width in pixels of the 10 m grid.
        max_nodata_fraction: reject patches with more nodata than this (in
            ``[0, 1)``).
        items_per_point: items tried, least cloudy first, before a point is
            rejected (for the reason of the last one: too much nodata, a
            missing asset, a scene too small or unusable; 1: the S2-100K
            recipe; at most 500).
        resampling: resampling of the 20 m and 60 m bands to 10 m.
        dates: images per point, from different times: the period from
            *start* to *end* (whole UTC days) is split into this many equal
            consecutive windows, and each point takes the least cloudy valid
            patch of each window (1: one image per point, the S2-100K recipe).
        windows: explicit acquisition windows instead of *dates* equal ones,
            ``YYYY-MM-DD/YYYY-MM-DD`` strings (both days included), in order
            and not overlapping; *dates* becomes their number, and *start*
            and *end* must be left at their defaults (they are not used).
            Kept as a tuple.
        min_dates: windows that must give a patch for a point to be kept,
            in ``[1, dates]``; None for ``min(2, dates)``, which it becomes
            (two dates make a temporal pair).
    """

    #: Identifies the ``build.json`` files of this builder.
    FORMAT: ClassVar[str] = 'torchgeo-satclip/s2-100k-build'
    #: Version of the ``build.json`` layout.
    VERSION: ClassVar[int] = 1

    seed: int = 0
    start: str = '2021-01-01'
    end: str = '2023-05-17'
    max_cloud_cover: float = 20.0
    region: dict[str, Any] | None = field(default=None, hash=False)
    land: bool = True
    collection: str = COLLECTION
    size: int = 256
    max_nodata_fraction: float = 0.1
    items_per_point: int = 1
    resampling: _ResamplingName = 'nearest'
    dates: int = 1
    windows: Sequence[str] | None = None
    min_dates: int | None = None

    def __post_init__(self) -> None:
        """Check the parameters; normalise numbers and the region for JSON.

        NumPy numbers become the Python ints and floats they hold, and the
        region goes through JSON (tuples become lists).

        Raises:
            ValueError: on an invalid parameter, naming it and its value: a
                wrong type (a bool is not a number), a negative seed, an end
                date before the start, a cloud cover outside (0, 100], a
                nodata fraction outside [0, 1), a size below 1,
                ``items_per_point`` outside ``[1, 500]``, fewer than
                one date (or more than the days from start to end), malformed,
                unordered or overlapping windows, windows with a start or end
                other than the defaults, ``min_dates`` outside ``[1, dates]``,
                a region whose coordinates are missing or empty, or have a
                ring of fewer than 3 vertices or a vertex that is not finite
                numbers (naming the polygon, ring and vertex).
        """
        # NumPy numbers become Python ones: build.json must hold them, and
        # the dates' arithmetic (timedelta) takes no NumPy integer.
        object.__setattr__(self, 'seed', check_int('seed', self.seed, minimum=0))
        cloud = check_real('max_cloud_cover', self.max_cloud_cover)
        if not 0 < cloud <= 100:
            raise ValueError(
                'max_cloud_cover must be a percentage in (0, 100] (scenes with '
                f'less cloud cover are kept), got {self.max_cloud_cover}'
            )
        nodata = check_real(
            'max_nodata_fraction', self.max_nodata_fraction, minimum=0.0, below=1.0
        )
        object.__setattr__(self, 'max_cloud_cover', cloud)
        object.__setattr__(self, 'max_nodata_fraction', nodata)
        object.__setattr__(self, 'size', check_int('size', self.size, minimum=1))
        items = check_int('items_per_point', self.items_per_point, minimum=1)
        if items > _MAX_ITEMS_PER_POINT:
            raise ValueError(
                f'items_per_point must be at most {_MAX_ITEMS_PER_POINT}, got {items}: '
                'each search asks for twice as many items, and the Planetary '
                f'Computer STAC API answers at most {2 * _MAX_ITEMS_PER_POINT} '
                'per request'
            )
        object.__setattr__(self, 'items_per_point', items)
        check_flag('land', self.land)
        if not isinstance(self.collection, str) or not self.collection:
            raise ValueError(
                f'collection must be a STAC collection name, not {self.collection!r}'
            )
        if self.resampling not in get_args(_ResamplingName):
            raise ValueError(
                "resampling must be 'nearest', 'bilinear' or 'cubic', "
                f'not {self.resampling!r}'
            )
        start = _check_date(self.start, 'start')
        end = _check_date(self.end, 'end')
        if _plain_date(self.end) is not None:
            # a date alone is the whole day, as the search reads it
            end += dt.timedelta(days=1, microseconds=-1)
        if end < start:
            raise ValueError(
                f'end {self.end} is before start {self.start}; no scene can match'
            )
        if self.region is not None:
            kind = self.region.get('type') if isinstance(self.region, Mapping) else None
            if kind not in ('Polygon', 'MultiPolygon'):
                if not isinstance(self.region, Mapping):
                    found = f'{self.region!r} (type {type(self.region).__name__})'
                elif kind is None:
                    found = 'a mapping without a GeoJSON type'
                else:
                    found = f'a GeoJSON {kind!r}'
                raise ValueError(
                    'region must be a GeoJSON Polygon or MultiPolygon geometry '
                    f'(a mapping with its type and coordinates), not {found}'
                )
            coordinates = _check_region_coordinates(self.region)
            # Tuples become lists, as in a saved build.json, so both compare equal.
            region = {**self.region, 'coordinates': coordinates}
            object.__setattr__(self, 'region', json.loads(json.dumps(region)))
            _check_region_geometry(self.region)
        self._check_dates(start, end)

    def _check_dates(self, start: datetime, end: datetime) -> None:
        """Check ``dates``, ``windows`` and ``min_dates``; resolve the last."""
        object.__setattr__(self, 'dates', check_int('dates', self.dates, minimum=1))
        if self.windows is not None:
            windows = _check_windows(self.windows)
            if self.dates not in (1, len(windows)):
                raise ValueError(
                    f'dates={self.dates} but {len(windows)} windows are given: give '
                    'the number of dates or the windows, not both'
                )
            defaults = {f.name: f.default for f in fields(self)}
            if (self.start, self.end) != (defaults['start'], defaults['end']):
                raise ValueError(
                    'give start and end, or windows, not both (the windows are the '
                    f'acquisition period; start={self.start!r}, end={self.end!r})'
                )
            object.__setattr__(self, 'windows', windows)
            object.__setattr__(self, 'dates', len(windows))
        else:
            _split_period(start, end, self.dates)
        if self.min_dates is None:
            object.__setattr__(self, 'min_dates', min(2, self.dates))
        minimum = check_int('min_dates', self.min_dates, minimum=1)
        object.__setattr__(self, 'min_dates', minimum)
        if minimum > self.dates:
            raise ValueError(
                f'min_dates must be at most the number of dates ({self.dates}), '
                f'got {minimum}'
            )

    @property
    def multi_temporal(self) -> bool:
        """Whether each point has images of several windows (and ``dates.csv``).

        True with ``dates > 1`` or explicit ``windows``.
        """
        return self.windows is not None or self.dates > 1

    def date_windows(self) -> list[tuple[dt.date, dt.date]]:
        """The acquisition windows, first and last UTC day of each.

        Returns:
            The explicit *windows*, or the period from *start* to *end* (UTC
            days) split into *dates* consecutive windows of equal length (to
            a day: the later ones are a day longer when the days do not
            divide evenly).
        """
        if self.windows is not None:
            return [_parse_window(w, i) for i, w in enumerate(self.windows)]
        start = _check_date(self.start, 'start')
        end = _check_date(self.end, 'end')
        return _split_period(start, end, self.dates)

    def stac_datetime(self) -> str:
        """The date range of a single-date build's searches.

        Returns:
            ``start/end`` in the forms a STAC item search takes: a date stays
            a whole day, any other moment is written in UTC (a start or end
            such as ``20210101`` or ``2021-01-01T10:00`` is valid ISO 8601,
            but not to pystac-client, which refused every search with it).
        """
        start = _stac_moment(self.start, 'start')
        end = _stac_moment(self.end, 'end')
        return f'{start}/{end}'

    def to_dict(self) -> dict[str, Any]:
        """The configuration as ``build.json`` holds it.

        Returns:
            A JSON-compatible mapping: ``format``, ``version``, then one key
            per field; ``dates``, ``windows`` and ``min_dates`` only for a
            multi-temporal build (so single-date ``build.json`` files are as
            they were before these existed).
        """
        data = asdict(self)
        if self.multi_temporal:
            if self.windows is not None:
                data['windows'] = list(self.windows)
        else:
            for name in _TEMPORAL_FIELDS:
                del data[name]
        return {'format': self.FORMAT, 'version': self.VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'BuildConfig':
        """Make a configuration from what :meth:`to_dict` returned.

        Args:
            data: ``format``, ``version`` and fields; missing fields take
                their defaults.

        Returns:
            The configuration.

        Raises:
            ValueError: if *data* is not a configuration of this format and
                version, has unknown keys or an invalid parameter.
        """
        found = (data.get('format'), data.get('version'))
        if found != (cls.FORMAT, cls.VERSION):
            raise ValueError(
                f'not a {cls.FORMAT} configuration of version {cls.VERSION} '
                f'(found format {found[0]!r}, version {found[1]!r})'
            )
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {'format', 'version'})
        if unknown:
            raise ValueError(f'unknown build parameters: {", ".join(unknown)}')
        return cls(**{key: value for key, value in data.items() if key in names})

    def to_json(self) -> str:
        """The text of ``build.json``.

        Returns:
            :meth:`to_dict` as indented JSON, with a final newline.
        """
        return json.dumps(self.to_dict(), indent=2) + '\n'

    @classmethod
    def from_json(cls, text: str | bytes) -> 'BuildConfig':
        """Read a configuration from the text of a ``build.json``.

        Args:
            text: what :meth:`to_json` returned.

        Returns:
            The configuration.

        Raises:
            ValueError: if the text is not JSON, or not a configuration (see
                :meth:`from_dict`).
        """
        data = json.loads(text)
        if not isinstance(data, Mapping):
            raise ValueError('a build configuration is a JSON object')
        return cls.from_dict(data)
