"""The parameters that define a built dataset (its ``build.json``).

A :class:`BuildConfig` is what the builder reads to make each patch, and what
``build.json`` records in the dataset root. A build resumes or extends a root
only with the same configuration; how the build runs (the number of samples,
the STAC API, workers, retries, time-outs, GDAL options) is not part of it.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

from .stac import COLLECTION

__all__ = ['BuildConfig']

#: Resamplings of the 20 m and 60 m bands to the 10 m grid.
_ResamplingName = Literal['nearest', 'bilinear', 'cubic']


def _check_date(value: str, name: str) -> None:
    """Raise ValueError unless *value* is an ISO 8601 date (or date and time)."""
    try:
        datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        raise ValueError(
            f'{name} must be an ISO date like 2021-01-01, not {value!r}'
        ) from None


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
            ValueError: on an invalid parameter.
        """
        if not 0 <= self.max_nodata_fraction < 1:
            raise ValueError(
                f'max_nodata_fraction must be in [0, 1), not {self.max_nodata_fraction}'
            )
        if self.size < 1 or self.items_per_point < 1:
            raise ValueError(
                'size and items_per_point must be >= 1, '
                f'not {self.size} and {self.items_per_point}'
            )
        if self.resampling not in get_args(_ResamplingName):
            raise ValueError(
                "resampling must be 'nearest', 'bilinear' or 'cubic', "
                f'not {self.resampling!r}'
            )
        _check_date(self.start, 'start')
        _check_date(self.end, 'end')
        if self.region is not None:
            if self.region.get('type') not in ('Polygon', 'MultiPolygon'):
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
