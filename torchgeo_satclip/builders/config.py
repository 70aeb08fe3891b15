"""The parameters that define a built dataset (its ``build.json``).

A :class:`BuildConfig` is what the builder reads to make each patch, and what
``build.json`` records in the dataset root. A build resumes or extends a root
only with the same configuration; how the build runs (the number of samples,
the STAC API, workers, retries, time-outs, GDAL options) is not part of it.
"""

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

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


def _check_int(value: Any, name: str, minimum: int) -> None:
    """Raise ValueError unless *value* is an integer (not a bool) >= *minimum*."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f'{name} must be an integer, not {value!r} (type {type(value).__name__})'
        )
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, not {value}')


def _check_number(value: Any, name: str) -> float:
    """Return *value* as a float if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f'{name} must be a number, not {value!r} (type {type(value).__name__})'
        )
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, not {value}')
    return float(value)


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
            rejected for nodata (1: the S2-100K recipe).
        resampling: resampling of the 20 m and 60 m bands to 10 m.
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

    def __post_init__(self) -> None:
        """Check the parameters; normalise the region through JSON.

        Raises:
            ValueError: on an invalid parameter, naming it and its value: a
                wrong type (a bool is not a number), a negative seed, an end
                date before the start, a cloud cover outside (0, 100], a
                nodata fraction outside [0, 1), a size below 1.
        """
        _check_int(self.seed, 'seed', 0)
        cloud = _check_number(self.max_cloud_cover, 'max_cloud_cover')
        if not 0 < cloud <= 100:
            raise ValueError(
                'max_cloud_cover must be a percentage in (0, 100] (scenes with '
                f'less cloud cover are kept), not {self.max_cloud_cover}'
            )
        nodata = _check_number(self.max_nodata_fraction, 'max_nodata_fraction')
        if not 0 <= nodata < 1:
            raise ValueError(
                f'max_nodata_fraction must be in [0, 1), not {self.max_nodata_fraction}'
            )
        _check_int(self.size, 'size', 1)
        _check_int(self.items_per_point, 'items_per_point', 1)
        if not isinstance(self.land, bool):
            raise ValueError(f'land must be True or False, not {self.land!r}')
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
        if end < start:
            raise ValueError(
                f'end {self.end} is before start {self.start}; no scene can match'
            )
        if self.region is not None:
            if not isinstance(self.region, Mapping) or self.region.get('type') not in (
                'Polygon',
                'MultiPolygon',
            ):
                raise ValueError(
                    'region must be a GeoJSON Polygon or MultiPolygon geometry'
                )
            # Tuples become lists, as in a saved build.json, so both compare equal.
            object.__setattr__(self, 'region', json.loads(json.dumps(self.region)))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as ``build.json`` holds it.

        Returns:
            A JSON-compatible mapping: ``format``, ``version``, then one key
            per field.
        """
        return {'format': self.FORMAT, 'version': self.VERSION, **asdict(self)}

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
        if data.get('format') != cls.FORMAT or data.get('version') != cls.VERSION:
            raise ValueError(
                f'not a {cls.FORMAT} configuration of version {cls.VERSION}'
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
