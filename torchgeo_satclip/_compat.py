"""Every difference between the supported torchgeo versions, and nothing else.

torchgeo 0.8.1 (the newest on Python 3.11) keeps its Lightning tasks in
``torchgeo.trainers`` with a ``Task`` suffix; torchgeo 0.10 (Python >= 3.12)
moved them to ``torchgeo.tasks`` without the suffix and added the ``S2100k``
dataset and a SatCLIP location model. The rest of the package imports these
names from here and never checks versions itself.
"""

import itertools
import numbers
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import numpy as np
import torchgeo
from torch import Tensor

__all__ = [
    'METRICS_LOGGED_AT_EPOCH_END',
    'TORCHGEO_AT_LEAST_0_10',
    'TORCHGEO_VERSION',
    'BaseTask',
    'ClassificationTask',
    'RegressionTask',
    'TorchGeoS2100k',
    'TorchGeoSatCLIP',
    'TorchGeoSatCLIPWeights',
    'classification_kwargs',
    'geo_sample_bounds',
    'load_backbone_state_dict',
    'read_geo_bounds',
    'regression_kwargs',
]


def _parse(text: str) -> tuple[int, int]:
    """Return ``(major, minor)`` of a version string such as ``'0.10.1'``.

    The minor number is the digits the second part starts with: a tag after
    them (``0.9rc1``, ``1.2+local``) is not part of it.
    """
    major, minor = text.split('.')[:2]
    digits = ''.join(itertools.takewhile(str.isdigit, minor))
    return int(major), int(digits or 0)


#: The installed torchgeo version string (its metadata's only without one).
TORCHGEO_VERSION: str = getattr(torchgeo, '__version__', None) or version('torchgeo')

#: True on torchgeo 0.10 and newer.
TORCHGEO_AT_LEAST_0_10: bool = _parse(TORCHGEO_VERSION) >= (0, 10)

TorchGeoS2100k: Any
TorchGeoSatCLIP: Any
TorchGeoSatCLIPWeights: Any

if TORCHGEO_AT_LEAST_0_10:
    from torchgeo.datasets import S2100k as TorchGeoS2100k  # type: ignore[attr-defined,no-redef]
    from torchgeo.models import SatCLIP as TorchGeoSatCLIP  # type: ignore[attr-defined,no-redef]
    from torchgeo.models import SatCLIP_Weights as TorchGeoSatCLIPWeights  # type: ignore[attr-defined,no-redef]
    from torchgeo.tasks import BaseTask
    from torchgeo.tasks import Classification as ClassificationTask
    from torchgeo.tasks import Regression as RegressionTask
    from torchgeo.tasks.utils import load_state_dict as load_backbone_state_dict
else:  # torchgeo 0.8
    from torchgeo.trainers import (  # type: ignore[attr-defined,no-redef]
        BaseTask,
        ClassificationTask,
        RegressionTask,
    )
    from torchgeo.trainers.utils import (  # type: ignore[attr-defined,no-redef]
        load_state_dict as load_backbone_state_dict,
    )

    TorchGeoS2100k = None
    TorchGeoSatCLIP = None
    TorchGeoSatCLIPWeights = None


#: torchgeo 0.10's classification/regression mix-ins log the metric
#: collections in ``on_*_epoch_end``; torchgeo 0.8 logs them in every step.
METRICS_LOGGED_AT_EPOCH_END: bool = TORCHGEO_AT_LEAST_0_10


def classification_kwargs(
    labels: list[str] | None, pos_weight: Tensor | None, ignore_index: int | None
) -> dict[str, Any]:
    """Keyword arguments that only torchgeo 0.10's ``Classification`` accepts.

    Args:
        labels: class names.
        pos_weight: weight of positive examples for the 'bce' loss.
        ignore_index: class index ignored by the loss and metrics.

    Returns:
        The arguments to pass on (all three on 0.10, none on 0.8).

    Raises:
        ValueError: if one is set on torchgeo 0.8, which cannot honour it.
    """
    given = {'labels': labels, 'pos_weight': pos_weight, 'ignore_index': ignore_index}
    if TORCHGEO_AT_LEAST_0_10:
        return given
    unsupported = [name for name, value in given.items() if value is not None]
    if unsupported:
        raise ValueError(
            f'{", ".join(unsupported)} need torchgeo >= 0.10 (installed: '
            f'{TORCHGEO_VERSION})'
        )
    return {}


def regression_kwargs(labels: list[str] | None) -> dict[str, Any]:
    """Keyword arguments that only torchgeo 0.10's ``Regression`` accepts.

    Args:
        labels: names of the regression outputs.

    Returns:
        The arguments to pass on.

    Raises:
        ValueError: if ``labels`` is set on torchgeo 0.8.
    """
    if TORCHGEO_AT_LEAST_0_10:
        return {'labels': labels}
    if labels is not None:
        raise ValueError(
            f'labels needs torchgeo >= 0.10 (installed: {TORCHGEO_VERSION})'
        )
    return {}


def _box_from_query(bounds: Any) -> tuple[float, float, float, float]:
    """Return ``(minx, miny, maxx, maxy)`` of a torchgeo 0.8.1 GeoSlice query.

    torchgeo 0.8.1 stores the query as it was given: a bare x slice
    (``dataset[x0:x1]``), or x and y slices with an open end
    (``dataset[:, y0:y1]``), are resolved against the dataset's bounds when
    it is read, but the sample does not carry those, so its extent is
    unknown.

    Raises:
        ValueError: if the x or the y range is missing or open.
    """
    slices = (bounds,) if isinstance(bounds, slice) else tuple(bounds)
    for axis, k in (('x', 0), ('y', 1)):
        if k >= len(slices) or slices[k].start is None or slices[k].stop is None:
            raise ValueError(
                f'cannot locate the sample from its bounds {bounds!r}: they leave '
                f'the {axis} range open (torchgeo {TORCHGEO_VERSION} stores the '
                'query as given, and an open range is resolved against the '
                'dataset, which the sample does not carry); query the dataset '
                'with closed x and y ranges, dataset[x0:x1, y0:y1] (as '
                "torchgeo's GeoSamplers do), or give the sample a 'point' "
                '(longitude, latitude)'
            )
    x, y = slices[0], slices[1]
    return float(x.start), float(y.start), float(x.stop), float(y.stop)


def _is_number(value: Any) -> bool:
    """Whether *value* is one number of a box (a 0-d tensor or array too)."""
    if isinstance(value, Tensor | np.ndarray):
        return value.ndim == 0
    return isinstance(value, numbers.Real)  # np.float32 and np.int64 too


def _box_from_values(
    values: list[float], bounds: Any
) -> tuple[float, float, float, float]:
    """Return ``(minx, miny, maxx, maxy)`` of one sample's bounds as numbers."""
    if len(values) == 9:  # torchgeo 0.10: x start/stop/step, y ..., t ...
        return values[0], values[3], values[1], values[4]
    if len(values) == 6:  # torchgeo 0.8 BoundingBox: minx, maxx, miny, maxy, t
        return values[0], values[2], values[1], values[3]
    shown = _short(bounds)
    if len(values) == 4:
        raise ValueError(
            f'bounds {shown} are ambiguous: four numbers are (minx, maxx, miny, '
            "maxy) in torchgeo's BoundingBox order but (west, south, east, "
            'north) in rasterio, shapely and GeoJSON; expected 6 numbers (a '
            'BoundingBox: minx, maxx, miny, maxy, mint, maxt), 9 (torchgeo '
            '0.10: xmin, xmax, xres, ymin, ymax, yres, tmin, tmax, tres), a '
            'BoundingBox, a shapely box or a GeoSlice (slice(minx, maxx), '
            'slice(miny, maxy))'
        )
    raise ValueError(
        f'bounds {shown} hold {len(values)} values: expected 6 (a BoundingBox: '
        'minx, maxx, miny, maxy, mint, maxt) or 9 (torchgeo 0.10: xmin, xmax, '
        'xres, ymin, ymax, yres, tmin, tmax, tres)'
    )


def _short(value: Any) -> str:
    """The repr of *value*, cut to 120 characters."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + '...'


def _box_from_bounds(bounds: Any) -> tuple[float, float, float, float]:
    """Return ``(minx, miny, maxx, maxy)`` of one GeoDataset bounds value."""
    if isinstance(bounds, Tensor | np.ndarray):
        if bounds.ndim != 1:
            raise ValueError(
                f'cannot read bounds of shape {tuple(bounds.shape)} ({_short(bounds)}): '
                'expected (6,) or (9,) for one sample, (B, 6) or (B, 9) for a batch'
            )
        return _box_from_values([float(v) for v in bounds.tolist()], bounds)
    if isinstance(bounds, slice) or (
        isinstance(bounds, tuple | list) and bounds and isinstance(bounds[0], slice)
    ):
        return _box_from_query(bounds)  # torchgeo 0.8.1 GeoSlice query
    if isinstance(bounds, tuple | list) and all(_is_number(v) for v in bounds):
        return _box_from_values([float(v) for v in bounds], bounds)
    if hasattr(bounds, 'geom_type') and hasattr(bounds, 'bounds'):  # shapely
        minx, miny, maxx, maxy = (float(v) for v in bounds.bounds)
        return minx, miny, maxx, maxy
    names = ('minx', 'miny', 'maxx', 'maxy')
    if all(hasattr(bounds, name) for name in names):  # torchgeo 0.8 BoundingBox
        minx, miny, maxx, maxy = (float(getattr(bounds, name)) for name in names)
        return minx, miny, maxx, maxy
    raise TypeError(f'cannot read bounds from {type(bounds).__name__}')


def read_geo_bounds(bounds: Any) -> tuple[np.ndarray, bool]:
    """Read the ``bounds`` value of a GeoDataset sample or batch.

    The one reader of bounds: :func:`geo_sample_bounds` and
    :func:`~torchgeo_satclip.transforms.sample_lonlat` both use it, so they
    agree on what is one sample and what is a batch.

    One sample's bounds are a GeoSlice query (a slice or a tuple of slices,
    torchgeo 0.8.1), a ``BoundingBox``, a shapely geometry, or numbers (a
    1-D tensor or array, or a list or tuple of numbers, 0-d tensors
    included) in torchgeo's order: 6 are a BoundingBox's ``(minx, maxx,
    miny, maxy, mint, maxt)``, 9 torchgeo 0.10's ``(xmin, xmax, xres, ymin,
    ymax, yres, tmin, tmax, tres)``. A batch is a 2-D ``(B, 6)`` or ``(B,
    9)`` tensor or array, or a list or a tuple (of any length, 4 included)
    of one sample's bounds each.

    Args:
        bounds: the value under the sample's ``bounds`` (or ``bbox``) key.

    Returns:
        ``(boxes, batched)``: a float64 ``(N, 4)`` array of ``(minx, miny,
        maxx, maxy)`` and whether *bounds* were a batch's (N is 1 when not).

    Raises:
        ValueError: for four numbers (``(minx, maxx, miny, maxy)`` in
            torchgeo's order, ``(west, south, east, north)`` in rasterio's
            and shapely's: ambiguous), another count than 6 or 9, a tensor
            that is not 1-D or 2-D, a list that mixes numbers and bounds, or
            a torchgeo 0.8.1 query that leaves the x or y range open
            (``dataset[x0:x1]``, ``dataset[:, y0:y1]``: the sample's extent
            is unknown).
        TypeError: for a value that is no kind of bounds.
    """
    if isinstance(bounds, Tensor | np.ndarray) and bounds.ndim == 2:
        items: list[Any] = list(bounds)
        batched = True
    elif isinstance(bounds, Tensor | np.ndarray):
        items, batched = [bounds], False
    elif isinstance(bounds, tuple) and bounds and isinstance(bounds[0], slice):
        items, batched = [bounds], False  # one GeoSlice query
    elif isinstance(bounds, list | tuple):
        numbers_in = [_is_number(item) for item in bounds]
        if bounds and all(numbers_in):
            items, batched = [bounds], False
        elif any(numbers_in):
            raise ValueError(
                f'bounds {_short(bounds)} mix numbers and bounds: expected one '
                "sample's numbers or a list (or tuple) of bounds, one per sample"
            )
        else:
            items, batched = list(bounds), True
    else:
        items, batched = [bounds], False
    boxes = np.array([_box_from_bounds(item) for item in items], dtype=np.float64)
    return boxes.reshape(-1, 4), batched


def geo_sample_bounds(sample: Mapping[str, Any]) -> np.ndarray | None:
    """Spatial bounds of a GeoDataset sample or batch, in its own CRS.

    torchgeo 0.8.1 puts the query under ``bounds``: a ``GeoSlice`` (a tuple of
    x, y, t slices), a deprecated ``BoundingBox(minx, maxx, miny, maxy, mint,
    maxt)`` or a shapely polygon (``bbox`` before 0.6), and a batch holds a
    list of them; torchgeo 0.10 puts a tensor ``[xmin, xmax, xres, ymin, ymax, yres, tmin,
    tmax, tres]`` under ``bounds``, stacked to ``(B, 9)`` in a batch. They are
    read by :func:`read_geo_bounds` (which says what is one sample's and what
    a batch's: a list or a tuple of bounds is a batch; four bare numbers are
    refused as ambiguous).

    Args:
        sample: a sample or a collated batch.

    Returns:
        A float64 ``(N, 4)`` array of ``(minx, miny, maxx, maxy)``, or None when
        the sample has no bounds.

    Raises:
        ValueError: for bounds :func:`read_geo_bounds` refuses (four numbers,
            another count than 6 or 9, a torchgeo 0.8.1 query that leaves
            the x or y range open, ...).
    """
    bounds = sample.get('bounds', sample.get('bbox'))
    if bounds is None:
        return None
    return read_geo_bounds(bounds)[0]
