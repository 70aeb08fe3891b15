"""Location embeddings as sample features: :class:`LocationEmbedding`.

A sample (or a collated batch) can say where it is in three ways, all read by
:func:`sample_lonlat`:

* ``point``: ``(2,)`` or ``(B, 2)`` (longitude, latitude) in degrees, as in
  TorchGeo's ``S2100k`` and this package's datasets;
* ``lon`` and ``lat``: scalars or ``(B,)`` tensors in degrees, as in TorchGeo
  0.10's Copernicus-Bench datasets;
* GeoDataset ``bounds`` (``bbox`` in old torchgeo) plus a CRS (the sample's
  ``crs`` key in torchgeo 0.8, or given to the transform, since torchgeo 0.10
  samples carry none): the centre of the bounds, reprojected to EPSG:4326.
  One sample's bounds are a GeoSlice, a ``BoundingBox``, a shapely geometry
  or 6 (BoundingBox order: minx, maxx, miny, maxy, mint, maxt) or 9
  (torchgeo 0.10) numbers; a ``(B, 6)``/``(B, 9)`` tensor, or a list or a
  tuple of them, is a batch. Four bare numbers are refused: they are
  (minx, maxx, miny, maxy) in torchgeo's order but (west, south, east,
  north) in rasterio's and shapely's.
"""

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_dtype, check_name
from .._compat import read_geo_bounds
from ..geo.crs import reproject_checked
from ..models import LocationEncoder, LocationSource, satclip_location_encoder

__all__ = [
    'LocationEmbedding',
    'get_location_encoder',
    'sample_lonlat',
]


def get_location_encoder(
    source: LocationSource | None = None,
    dtype: torch.dtype = torch.float64,
    **build_kwargs: Any,
) -> LocationEncoder:
    """Deprecated alias of :func:`~torchgeo_satclip.models.satclip_location_encoder`.

    Args:
        source: the factory's ``weights``.
        dtype: compute dtype of a loaded or built encoder.
        **build_kwargs: the factory's architecture arguments.

    Returns:
        The location encoder.
    """
    warnings.warn(
        'torchgeo_satclip.transforms.get_location_encoder is deprecated: use '
        'torchgeo_satclip.models.satclip_location_encoder(weights, dtype=..., ...)',
        DeprecationWarning,
        stacklevel=2,
    )
    return satclip_location_encoder(source, dtype=dtype, **build_kwargs)


def _as_tensor(value: Any, key: str) -> Tensor:
    """The sample's *key* as a float64 tensor (a list of tensors stacked).

    Raises:
        ValueError: naming *key*, if the value is not numbers (torch's own
            message names nothing).
    """
    try:
        if isinstance(value, Tensor):
            tensor = value
        elif (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(item, Tensor) for item in value)
        ):
            tensor = torch.stack(value)  # a batch a collate left as a list
        else:
            tensor = torch.as_tensor(value)
        return tensor.to(torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"the sample's {key!r} is not numbers of one shape in degrees "
            f'({type(value).__name__}: {error})'
        ) from None


def _crs_name(crs: Any) -> str:
    """A CRS as messages name it: its short string (EPSG:32631), cut at 100."""
    text = str(crs.to_string() if hasattr(crs, 'to_string') else crs)
    return text if len(text) <= 100 else f'{text[:97]}...'


def sample_lonlat(sample: Mapping[str, Any], crs: Any = None) -> tuple[Tensor, bool]:
    """Read the (longitude, latitude) of a sample or batch.

    Args:
        sample: a sample or a collated batch (see the module docstring for the
            keys read, in order of preference); a ``point``, ``lon`` or
            ``lat`` given as a list of tensors (a collate that did not stack
            them) is a batch of them.
        crs: CRS of ``bounds`` when the sample has no ``crs`` key (torchgeo
            0.10 GeoDataset samples) or a ``crs`` of None.

    Returns:
        ``(lonlat, batched)``: a float64 ``(N, 2)`` tensor on the device of the
        coordinates, and whether the input was a batch (False for a single
        sample, whose ``N`` is 1).

    Raises:
        KeyError: if the sample says nothing about where it is, or has only
            one of ``lon`` and ``lat``; the message names the sample's keys.
        ValueError: if ``bounds`` come without any CRS or are not bounds
            :func:`~torchgeo_satclip._compat.read_geo_bounds` reads (the one
            reader of bounds, shared with ``geo_sample_bounds``: a list or a
            tuple of bounds is a batch, four bare numbers are refused as
            ambiguous), or ``point`` is not
            ``(2,)`` or ``(B, 2)`` (a ``(2, B)`` or ``(B, 3)`` tensor would
            otherwise be read as scrambled pairs), or ``lon`` and ``lat``
            are not scalars or ``(B,)`` of one shape, or a coordinate is not
            numbers (naming its key), or bounds are outside the area of their
            CRS (naming the sample; pyproj would give NaN, or a longitude
            wrapped round the globe).
    """
    if 'point' in sample:
        point = _as_tensor(sample['point'], 'point')
        if point.shape != (2,) and (point.ndim != 2 or point.shape[1] != 2):
            transposed = point.ndim == 2 and point.shape[0] == 2
            hint = ' (transposed? (B, 2) it must be)' if transposed else ''
            raise ValueError(
                "the sample's 'point' must be (2,) or (B, 2) (longitude, "
                f'latitude) in degrees, got shape {tuple(point.shape)}{hint}'
            )
        return point.reshape(-1, 2), point.ndim == 2
    if 'lon' in sample and 'lat' in sample:
        lon = _as_tensor(sample['lon'], 'lon')
        lat = _as_tensor(sample['lat'], 'lat')
        if lon.ndim > 1 or lon.shape != lat.shape:
            raise ValueError(
                "the sample's 'lon' and 'lat' must be scalars or (B,) tensors of "
                f'the same shape, got {tuple(lon.shape)} and {tuple(lat.shape)}'
            )
        lat = lat.to(lon.device)
        batched = lon.ndim == 1
        return torch.stack([lon.reshape(-1), lat.reshape(-1)], dim=1), batched
    bounds = sample.get('bounds', sample.get('bbox'))
    if bounds is not None:
        boxes, batched = read_geo_bounds(bounds)
        sample_crs = sample.get('crs')
        if isinstance(sample_crs, list | tuple):
            crs_list = [crs if c is None else c for c in sample_crs]
            if len(crs_list) != len(boxes):
                raise ValueError(
                    f"the sample's 'crs' has {len(crs_list)} entries for "
                    f'{len(boxes)} bounds: expected one CRS per sample'
                )
        else:
            crs_list = [crs if sample_crs is None else sample_crs] * len(boxes)
        if any(c is None for c in crs_list):
            raise ValueError(
                'the sample has bounds but no CRS: pass crs= (torchgeo 0.10 samples '
                'carry none; use the dataset.crs)'
            )
        x = (boxes[:, 0] + boxes[:, 2]) / 2
        y = (boxes[:, 1] + boxes[:, 3]) / 2
        rows = []
        for i in range(len(boxes)):
            row, bad = reproject_checked(x[i : i + 1], y[i : i + 1], crs_list[i])
            if bad is not None:
                where = f'sample {i} of the batch' if batched else 'the sample'
                raise ValueError(
                    f"{where}'s bounds, centred at x={x[i]:g}, y={y[i]:g} in "
                    f'{_crs_name(crs_list[i])}, are outside the area of that CRS '
                    f'(reprojected to lon/lat {row[0, 0]:g}, {row[0, 1]:g}): '
                    'expected bounds in the CRS of the sample (the dataset.crs)'
                )
            rows.append(row)
        lonlat = torch.from_numpy(
            np.concatenate(rows) if rows else np.empty((0, 2))
        ).to(torch.float64)
        if isinstance(bounds, Tensor):  # torchgeo 0.10: on the batch's device
            lonlat = lonlat.to(bounds.device)
        return lonlat, batched
    keys = ', '.join(repr(key) for key in sample)
    for have, lacks in (('lon', 'lat'), ('lat', 'lon')):
        if have in sample:
            raise KeyError(
                f'the sample (keys {keys}) has {have!r} but no {lacks!r}: expected '
                'both, in degrees'
            )
    raise KeyError(
        f"the sample (keys {keys}) has no location: expected 'point' (lon, lat), "
        "'lon' and 'lat', or GeoDataset 'bounds' with a CRS"
    )


class LocationEmbedding(nn.Module):
    """Add a frozen location encoder's embedding to a sample or batch.

    Use it as a dataset transform (one sample at a time) or on whole batches
    on the GPU (for example in a datamodule's ``on_after_batch_transfer``):
    the encoder follows the device of the coordinates and never trains. An
    encoder module given to it is copied first, so the original is never
    frozen or moved.

    Example:
        >>> transform = LocationEmbedding('SATCLIP_VIT16_L40')  # doctest: +SKIP
        >>> sample = transform({'image': image, 'point': torch.tensor([2.35, 48.86])})
        >>> sample['location_embedding'].shape  # doctest: +SKIP
        torch.Size([256])
    """

    def __init__(
        self,
        encoder: LocationSource | None = None,
        key: str = 'location_embedding',
        crs: Any = None,
        dtype: torch.dtype = torch.float32,
        encoder_dtype: torch.dtype | None = None,
        allow_random: bool = False,
    ) -> None:
        """Initialise the transform.

        Args:
            encoder: a :class:`LocationEncoder`, a checkpoint path or a
                ``SatCLIPWeights`` member or name (for example
                ``'SATCLIP_RESNET18_L10'``); None builds a random L = 10
                SatCLIP-style encoder, whose embeddings are fixed noise, and
                needs *allow_random*. An encoder module is deep-copied and
                the copy frozen (eval mode, no gradients): the module passed
                (a task's ``location_encoder``, say) is left as it was, keeps
                training, and its later updates do not reach the transform.
            key: sample key to write the embedding to.
            crs: CRS of GeoDataset ``bounds`` for samples without a ``crs``
                key, or with a ``crs`` of None (torchgeo 0.10: pass
                ``dataset.crs``).
            dtype: dtype of the stored embedding.
            encoder_dtype: compute dtype of the encoder: weights loaded here
                are loaded in it (None: float64, as SatCLIP), and the frozen
                copy of an encoder module passed is converted to it (None:
                the module's own dtype; the positional encoding's frequencies
                are never rounded, see :class:`LocationEncoder`).
            allow_random: accept ``encoder=None`` (for tests only).

        Raises:
            ValueError: if *encoder* is None without *allow_random*, if
                *dtype* or *encoder_dtype* is not a floating torch dtype (an
                integer one would round every embedding to 0 or +-1), or
                *key* is no string.
        """
        super().__init__()
        check_dtype('dtype', dtype)
        if encoder_dtype is not None:
            check_dtype('encoder_dtype', encoder_dtype)
        check_name('key', key)
        if encoder is None and not allow_random:
            raise ValueError(
                'LocationEmbedding needs an encoder: without one it would add the '
                'embeddings of a random, frozen encoder (fixed noise). Pass a '
                "checkpoint path or a SatCLIPWeights name such as 'SATCLIP_RESNET18_L10' "
                '(or allow_random=True, for tests only)'
            )
        if isinstance(encoder, nn.Module):
            # freeze a copy: the caller's module (a task's location_encoder,
            # say) keeps its mode, its gradients and its device
            encoder = copy.deepcopy(encoder)
            if encoder_dtype is not None:
                # the factory returns a module as it is, whatever its dtype
                encoder = encoder.to(encoder_dtype)
        self.encoder = satclip_location_encoder(
            encoder, dtype=torch.float64 if encoder_dtype is None else encoder_dtype
        ).eval()
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        self.key = key
        self.crs = crs
        self.dtype = dtype

    def train(self, mode: bool = True) -> 'LocationEmbedding':
        """Keep the frozen encoder in eval mode whatever ``mode`` is.

        Args:
            mode: ignored for the encoder (kept for the nn.Module interface).

        Returns:
            self.
        """
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def forward(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Add the embedding.

        Args:
            sample: a sample or collated batch with a location (see
                :func:`sample_lonlat`).

        Returns:
            The same dict with ``key`` set to a ``(D,)`` (sample) or ``(B, D)``
            (batch) tensor on the device of the coordinates.
        """
        lonlat, batched = sample_lonlat(sample, self.crs)
        device = lonlat.device
        if any(p.device != device for p in self.encoder.parameters()):
            self.encoder.to(device)
        embedding = self.encoder(lonlat).to(self.dtype)
        sample[self.key] = embedding if batched else embedding[0]
        return sample

    def extra_repr(self) -> str:
        """Summarise the transform."""
        return f'key={self.key!r}, dtype={self.dtype}'
