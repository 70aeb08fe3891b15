"""S2-100K datamodule with SatCLIP's augmentations applied on the device.

The original recipe (``satclip/datamodules``) augments every sample on the CPU
workers: divide by 10000, random crop, horizontal and vertical flips, a 3 x 3
Gaussian blur with sigma ~ U(0.1, 2.0), and (lon, lat) jitter by U(0, 0.01)
degrees; the image encoders take the 13-band SSL4EO-S12 layout, so an
all-zero B10 is inserted at index 10. Here the workers only read uint16
patches and all of that runs batched on the GPU in ``on_after_batch_transfer``
(kornia), which frees the CPU for decoding.

Batches travel as the stored uint16 values: this package's ``S2100K`` reads a
whole batch at once (``__getitems__``, from the packed layout by contiguous
runs of its memory maps) straight into one uint16 tensor, in shared memory
inside a worker, that :func:`collate_sample_batch` passes on as it is; the
DataLoader pins it when training on CUDA, and the datamodule converts it to
float32 on the device, before any augmentation runs: augmentations, this
package's or a user's own ``train_aug``/``aug``, get float32 images of the
stored values (reflectance x 10,000), as from TorchGeo's datasets. Every
uint16 is exact in float32, so the model sees the same values as from float32
samples.
"""

import hashlib
import operator
from collections.abc import Sequence
from typing import Any, Literal, cast

import kornia.augmentation as K
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, default_collate
from torchgeo.datamodules import NonGeoDataModule

from .._checks import check_flag, check_int, check_real
from .._compat import TorchGeoS2100k
from ..datasets import S2100K, SampleBatch
from ..geo import jitter_points
from .loader import RestartingDataLoader, ThreadedBatchLoader, threaded_source

__all__ = [
    'RandomBandMean',
    'RandomBrightnessContrast',
    'S2100KAugmentation',
    'S2100KDataModule',
    'collate_all_dates',
    'collate_sample_batch',
    'jitter_points',
    'moco_image_ops',
    'split_indices',
]

#: Index at which the all-zero B10 band is inserted (SSL4EO-S12 13-band order).
B10_INDEX = 10

#: Dimensions of a batch of several views per sample, ``(B, V, C, H, W)``.
_VIEW_BATCH_DIMS = 5


class RandomBrightnessContrast(nn.Module):
    """Per-image brightness and contrast jitter of multispectral images.

    MoCo-v2's colour jitter without its RGB-only parts (saturation, hue),
    with torchvision's definitions applied to every band alike: brightness
    multiplies the image by ``b ~ U(1 - brightness, 1 + brightness)``,
    contrast scales its deviation from the image's mean (over all bands and
    pixels) by ``c ~ U(1 - contrast, 1 + contrast)``; both are applied to a
    sample with probability *p*, brightness first. Nothing is clipped
    (reflectances are not bounded by 1). TorchGeo's MoCo task uses kornia's
    ``RandomBrightness`` (an additive shift, clipped to [0, 1]) and
    ``RandomContrast`` (a plain multiplication) with independent draws.
    """

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, p: float = 0.8
    ) -> None:
        """Initialize a new RandomBrightnessContrast instance.

        Args:
            brightness: maximum relative change of brightness, in [0, 1].
            contrast: maximum relative change of contrast, in [0, 1].
            p: probability of jittering a sample.

        Raises:
            ValueError: if an argument is out of range.
        """
        super().__init__()
        if not (0 <= brightness <= 1 and 0 <= contrast <= 1 and 0 <= p <= 1):
            raise ValueError(
                'brightness, contrast and p must be in [0, 1], not '
                f'{brightness}, {contrast} and {p}'
            )
        self.brightness = brightness
        self.contrast = contrast
        self.p = p

    def forward(self, image: Tensor) -> Tensor:
        """Jitter a batch.

        Args:
            image: ``(B, C, H, W)`` float images.

        Returns:
            The jittered images.
        """
        n = image.shape[0]
        shape = (n, 1, 1, 1)
        apply = torch.rand(shape, device=image.device) < self.p
        b = 1 + (torch.rand(shape, device=image.device) * 2 - 1) * self.brightness
        c = 1 + (torch.rand(shape, device=image.device) * 2 - 1) * self.contrast
        bright = image * b
        mean = bright.mean(dim=(1, 2, 3), keepdim=True)
        jittered = (bright - mean) * c + mean
        return torch.where(apply, jittered, image)


class RandomBandMean(nn.Module):
    """Random "grayscale" of multispectral images: every band becomes the bands' mean.

    MoCo-v2's ``RandomGrayscale`` for any number of bands, with equal weights
    (TorchGeo's ``RandomGrayscale`` with uniform weights does the same).
    """

    def __init__(self, p: float = 0.2) -> None:
        """Initialize a new RandomBandMean instance.

        Args:
            p: probability of replacing a sample's bands by their mean.

        Raises:
            ValueError: if *p* is not in [0, 1].
        """
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f'p must be in [0, 1], not {p}')
        self.p = p

    def forward(self, image: Tensor) -> Tensor:
        """Replace the bands of some samples by their mean.

        Args:
            image: ``(B, C, H, W)`` float images.

        Returns:
            The images.
        """
        apply = torch.rand(image.shape[0], 1, 1, 1, device=image.device) < self.p
        gray = image.mean(dim=1, keepdim=True).expand_as(image)
        return torch.where(apply, gray, image)


def moco_image_ops(crop_size: int) -> list[nn.Module]:
    """MoCo-v2's "aug-plus", adapted to multispectral images.

    ``RandomResizedCrop(crop_size, scale=(0.2, 1.0))``, brightness and
    contrast jitter of 0.4 with p = 0.8 (:class:`RandomBrightnessContrast`),
    "grayscale" as the mean of the bands with p = 0.2
    (:class:`RandomBandMean`), Gaussian blur with sigma ~ U(0.1, 2.0) and
    p = 0.5, and a horizontal flip. The blur kernel is about a tenth of the
    crop, odd and at least 3 (TorchGeo's MoCo task: a tenth; MoCo-v2's PIL
    blur has no kernel size). Like TorchGeo's MoCo task, saturation and hue
    are left out (undefined beyond RGB); unlike it, there is no vertical flip
    (MoCo-v2 has none) and brightness is multiplicative.

    Args:
        crop_size: side of the square output.

    Returns:
        The augmentations, in order, for batches of ``(B, C, H, W)`` floats.
    """
    kernel = max(3, crop_size // 10 // 2 * 2 + 1)
    return [
        K.RandomResizedCrop((crop_size, crop_size), scale=(0.2, 1.0)),
        RandomBrightnessContrast(0.4, 0.4, p=0.8),
        RandomBandMean(p=0.2),
        K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=0.5),
        K.RandomHorizontalFlip(p=0.5),
    ]


class S2100KAugmentation(nn.Module):
    """SatCLIP's S2-100K preprocessing and augmentation, batched.

    Acts on a batch ``{'image': (B, 12, H, W), 'point': (B, 2) [lon, lat], ...}``;
    other keys pass through untouched. A batch of several views per sample,
    ``image`` of shape ``(B, V, 12, H, W)`` (two dates of a place, or one
    image duplicated), is augmented as ``B * V`` independent images (every
    view gets its own random draws) and keeps its shape; its ``point`` is
    jittered once per sample.
    """

    def __init__(
        self,
        *,
        scale: float = 10000.0,
        insert_b10: bool = True,
        crop_size: int | None = 224,
        random: bool = True,
        flips: bool = True,
        blur: bool = True,
        jitter: float = 0.01,
        symmetric_jitter: bool = False,
        augmentation: Literal['satclip', 'moco'] = 'satclip',
    ) -> None:
        """Initialize a new S2100KAugmentation instance.

        Args:
            scale: images are divided by this (reflectance x 10000 -> reflectance);
                finite and positive.
            insert_b10: insert an all-zero band at index 10 (12 -> 13 bands).
            crop_size: side of the square crop (an integer >= 1), None for no
                crop. Random when *random*, else centred.
            random: apply the random augmentations (flips, blur, jitter, random
                crop); if False the transform is deterministic.
            flips: random horizontal and vertical flips (p = 0.5 each).
            blur: 3 x 3 Gaussian blur with sigma ~ U(0.1, 2.0) on every sample.
            jitter: maximum (lon, lat) jitter in degrees, finite and >= 0; 0
                for none.
            symmetric_jitter: jitter by U(-jitter, jitter) instead of the
                original's U(0, jitter).
            augmentation: the random image augmentations: ``'satclip'``
                (crop, *flips*, *blur* above) or ``'moco'`` (MoCo-v2's
                aug-plus for multispectral images, :func:`moco_image_ops`,
                which ignores *flips* and *blur* and needs a *crop_size*).
                Deterministic transforms (*random* False) centre-crop either way.

        Raises:
            ValueError: on an invalid argument (the message names it and the
                value).
        """
        super().__init__()
        if crop_size is not None:
            crop_size = check_int('crop_size', crop_size, minimum=1)
        scale = check_real('scale', scale, positive=True)
        jitter = check_real('jitter', jitter, minimum=0)
        for flag, value in (
            ('insert_b10', insert_b10),
            ('random', random),
            ('flips', flips),
            ('blur', blur),
            ('symmetric_jitter', symmetric_jitter),
        ):
            check_flag(flag, value)  # a string is truthy: 'false' would apply it
        if augmentation not in ('satclip', 'moco'):
            raise ValueError(
                f"augmentation must be 'satclip' or 'moco', not {augmentation!r}"
            )
        if augmentation == 'moco' and crop_size is None:
            raise ValueError(
                "augmentation 'moco' needs a crop_size (its RandomResizedCrop's "
                'output size), not None'
            )
        self.scale = scale
        self.insert_b10 = insert_b10
        self.random = random
        self.jitter = jitter if random else 0.0
        self.symmetric_jitter = symmetric_jitter
        ops: list[nn.Module] = []
        if random and augmentation == 'moco' and crop_size is not None:
            ops = moco_image_ops(crop_size)
        elif crop_size is not None:
            size = (crop_size, crop_size)
            ops.append(K.RandomCrop(size) if random else K.CenterCrop(size))
        if random and flips and augmentation == 'satclip':
            ops += [K.RandomHorizontalFlip(p=0.5), K.RandomVerticalFlip(p=0.5)]
        if random and blur and augmentation == 'satclip':
            ops.append(K.RandomGaussianBlur((3, 3), (0.1, 2.0), p=1.0))
        self.image_ops = nn.Sequential(*ops)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Augment a batch.

        Args:
            batch: the batch.

        Returns:
            A new dict with ``image`` (and ``point`` when jittering) replaced.

        Raises:
            ValueError: if *insert_b10* and the image does not have 12 bands.
        """
        batch = dict(batch)
        if 'image' in batch:
            image = batch['image']
            views = None
            if image.ndim == _VIEW_BATCH_DIMS:
                views = image.shape[:2]
                image = image.flatten(0, 1)
            image = image.float()
            # Divided by a tensor on the image's device: CUDA multiplies by
            # the reciprocal of a Python-number divisor, which puts 30 % of
            # the uint16 values one unit in the last place off the true
            # quotient that the CPU (and the original numpy code) gives.
            image = image / torch.full(
                (), self.scale, dtype=image.dtype, device=image.device
            )
            if self.insert_b10:
                if image.shape[1] != 12:
                    raise ValueError(
                        f'insert_b10 needs the 12 S2-100K bands, got {image.shape[1]}'
                    )
                zeros = image.new_zeros(image.shape[0], 1, *image.shape[2:])
                image = torch.cat(
                    [image[:, :B10_INDEX], zeros, image[:, B10_INDEX:]], 1
                )
            if len(self.image_ops) > 0:
                image = self.image_ops(image)
            if views is not None:
                image = image.reshape(*views, *image.shape[1:])
            batch['image'] = image
        if 'point' in batch and self.jitter > 0:
            batch['point'] = jitter_points(
                batch['point'], self.jitter, self.symmetric_jitter
            )
        return batch


def _float_images(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """*batch* with an integer ``image`` as float32 of the same values.

    The stored uint16 values become TorchGeo's float images where the batch
    is (on the device), before any augmentation sees them: the datamodule's
    and the feature cache's. A float ``image``, or none, is left as it is.
    """
    image = batch.get('image')
    if image is None or image.is_floating_point():
        return batch
    return {**batch, 'image': image.float()}


def collate_sample_batch(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Collate samples, passing a batch read as one on without copying it.

    Args:
        samples: a :class:`~torchgeo_satclip.datasets.SampleBatch` (from
            ``S2100K.__getitems__``), or any list of samples.

    Returns:
        The batch: a ``SampleBatch``'s stacked tensors, else
        :func:`torch.utils.data.default_collate` of the samples.
    """
    if isinstance(samples, SampleBatch):
        return dict(samples.stacked)
    return cast(dict[str, Tensor], default_collate(samples))


def collate_all_dates(
    samples: Sequence[dict[str, Tensor]], length: int | None = None
) -> dict[str, Tensor]:
    """Collate samples of every date of their place (``dates='all'``), padded.

    Places have different numbers of dates, so ``date`` ``(T,)`` and, when
    there is one, ``image`` ``(T, C, H, W)`` are padded with zeros after
    their last date to the longest sample of the batch (or *length*), and
    ``date_mask`` ``(B, T)`` is True for the real dates, False for padding.
    Other tensors are stacked. As :func:`torchgeo.datasets.utils.pad_across_batches`
    does for PASTIS, but with the mask and without silent truncation.

    Args:
        samples: samples of an S2-100K with ``dates='all'``.
        length: the number of dates of the batch (a fixed shape, for
            compiled models), None for the longest sample's. In a
            datamodule: ``dm.collate_fn = functools.partial(collate_all_dates,
            length=...)``.

    Returns:
        The batch: ``image`` ``(B, T, C, H, W)``, ``date`` ``(B, T)`` int64,
        ``date_mask`` ``(B, T)`` bool, and every other key stacked.

    Raises:
        ValueError: if there are no samples, the samples have no ``date``,
            other keys than the first, an ``image`` or ``date`` of another
            shape (but for ``T``) or dtype, another number of images than of
            dates, or more than *length* dates.
    """
    if not samples:
        raise ValueError('collate_all_dates needs at least one sample')
    keys = set(samples[0])
    if 'date' not in keys:
        raise ValueError(
            f"sample 0 has no 'date' (keys: {sorted(keys)}); "
            "collate_all_dates is for S2100K(..., dates='all')"
        )
    if 'date_mask' in keys:
        raise ValueError("sample 0 already has a 'date_mask': collated twice?")
    padded = ['date', 'image'] if 'image' in keys else ['date']
    counts = []
    for i, sample in enumerate(samples):
        if set(sample) != keys:
            raise ValueError(
                f'sample {i} has keys {sorted(sample)}, sample 0 {sorted(keys)}'
            )
        for key in padded:
            value, first = sample[key], samples[0][key]
            if not 1 <= value.ndim == first.ndim or value.shape[1:] != first.shape[1:]:
                expected = ('T', *first.shape[1:])
                raise ValueError(
                    f'sample {i}: {key!r} of shape {tuple(value.shape)}, expected '
                    f'({", ".join(map(str, expected))}{"," * (len(expected) == 1)})'
                )
            if value.dtype != first.dtype:
                raise ValueError(
                    f'sample {i}: {key!r} is {value.dtype}, sample 0 {first.dtype}'
                )
        count = len(sample['date'])
        if 'image' in sample and len(sample['image']) != count:
            raise ValueError(
                f'sample {i} has {count} dates but {len(sample["image"])} images'
            )
        counts.append(count)
    longest = max(counts)
    if length is None:
        length = longest
    elif length < longest:
        raise ValueError(
            f'sample {counts.index(longest)} has {longest} dates, more than '
            f'length={length}'
        )
    batch = cast(
        dict[str, Tensor],
        default_collate(
            [{k: v for k, v in s.items() if k not in padded} for s in samples]
        ),
    )
    for key in padded:
        first = samples[0][key]
        out = first.new_zeros((len(samples), length, *first.shape[1:]))
        for i, sample in enumerate(samples):
            out[i, : counts[i]] = sample[key]
        batch[key] = out
    batch['date_mask'] = torch.arange(length) < torch.tensor(counts).unsqueeze(1)
    return batch


def split_indices(
    keys: Sequence[str], val_split_pct: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded train/val split, identical on every run, machine and library version.

    Samples are ordered by a BLAKE2b hash of ``f'{seed}/{key}'`` (no random
    number generator involved) and the first ``round(n * val_split_pct)`` (at
    least 1 when the fraction is positive) go to validation. With file names
    as keys, a sample stays on its side of the split when others are added or
    excluded.

    Args:
        keys: one identifier per sample (file names, or the indices as text).
        val_split_pct: fraction of samples for validation, in [0, 1).
        seed: the seed.

    Returns:
        Sorted train and validation indices.

    Raises:
        ValueError: if the fraction is out of range or leaves no training
            sample, or *seed* is not an integer.
    """
    val_split_pct = check_real('val_split_pct', val_split_pct, minimum=0, below=1)
    seed = check_int('seed', seed)  # a bool or float would name another split
    n = len(keys)
    num_val = round(n * val_split_pct)
    if val_split_pct > 0:
        num_val = max(num_val, 1)
    if num_val >= n:
        raise ValueError(
            f'{n} samples are too few for a {val_split_pct:.0%} validation split'
        )
    order = sorted(
        range(n),
        key=lambda i: hashlib.blake2b(
            f'{seed}/{keys[i]}'.encode(), digest_size=16
        ).digest(),
    )
    return sorted(order[num_val:]), sorted(order[:num_val])


def _sample_keys(dataset: Dataset[dict[str, Tensor]]) -> list[str]:
    """File names of a dataset's samples, or their indices as text."""
    files = getattr(dataset, 'files', None)
    if files is not None:
        return [str(fn) for fn in files]
    index = getattr(dataset, 'index', None)  # torchgeo.datasets.S2100k
    if index is not None and hasattr(index, 'columns') and 'fn' in index.columns:
        return [str(fn) for fn in index['fn']]
    return [str(i) for i in range(len(dataset))]  # type: ignore[arg-type]


def _dataset_lonlat(dataset: Any) -> Tensor:
    """The (lon, lat) of every sample of a dataset, without reading images.

    Reads a ``lonlat`` or ``points`` array (this package's datasets), an
    ``index`` frame with ``lon``/``lat`` (TorchGeo's ``S2100k``), follows
    ``torch.utils.data.Subset`` indices, and otherwise iterates over the
    samples' ``point``.

    Args:
        dataset: a map-style dataset.

    Returns:
        ``(N, 2)`` float64 (lon, lat) in degrees.
    """
    indices = getattr(dataset, 'indices', None)
    inner = getattr(dataset, 'dataset', None)
    if indices is not None and inner is not None:
        return _dataset_lonlat(inner)[torch.as_tensor(list(indices))]
    for name in ('lonlat', 'points'):
        values = getattr(dataset, name, None)
        if values is not None:
            return torch.as_tensor(values, dtype=torch.float64).reshape(-1, 2)
    index = getattr(dataset, 'index', None)
    if index is not None and hasattr(index, 'columns') and 'lon' in index.columns:
        return torch.as_tensor(index[['lon', 'lat']].to_numpy(), dtype=torch.float64)
    points = [torch.as_tensor(dataset[i]['point']) for i in range(len(dataset))]
    return torch.stack(points).double()


class S2100KDataModule(NonGeoDataModule):
    """LightningDataModule for S2-100K (SatCLIP pretraining).

    Uses :class:`~torchgeo_satclip.datasets.S2100K` or, on torchgeo >= 0.10,
    ``torchgeo.datasets.S2100k``. With this package's dataset, batches are
    read as one (``__getitems__``) and keep the stored uint16 values until they
    are on the device, where :class:`S2100KAugmentation` converts and augments
    them; they are pinned for a fast copy when training on CUDA.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split_pct: float = 0.1,
        seed: int = 0,
        crop_size: int | None = 224,
        insert_b10: bool = True,
        flips: bool = True,
        blur: bool = True,
        jitter: float = 0.01,
        symmetric_jitter: bool = False,
        augment_val: bool = False,
        dataset: Literal['torchgeo_satclip', 'torchgeo'] = 'torchgeo_satclip',
        pin_memory: bool | None = None,
        loader: Literal['auto', 'processes', 'threads'] = 'auto',
        views: int = 1,
        augmentation: Literal['satclip', 'moco'] = 'satclip',
        **kwargs: Any,
    ) -> None:
        """Initialize a new S2100KDataModule instance.

        Args:
            batch_size: size of each mini-batch.
            num_workers: number of workers for parallel data loading.
            val_split_pct: fraction of samples for validation (seeded, see
                :func:`split_indices`); 0 for no validation.
            seed: seed of the split, and of the validation split's pairs of
                dates (with the dataset's ``dates='pair'``, validation
                samples keep one fixed pair each, as with *pair_seed*, while
                training draws new pairs).
            crop_size: side of the crop (224 for ViT-S/16), None for no crop.
                Training crops are random, validation crops centred (random
                with *augment_val*).
            insert_b10: insert an all-zero B10 at index 10 (13-band SSL4EO layout).
            flips: random horizontal and vertical flips in training.
            blur: 3 x 3 Gaussian blur, sigma ~ U(0.1, 2.0), in training.
            jitter: maximum point jitter in degrees in training (0: none).
            symmetric_jitter: jitter by U(-jitter, jitter) instead of the
                original's U(0, jitter).
            augment_val: augment validation batches like training ones, as the
                original recipe does (default: deterministic validation).
            dataset: ``'torchgeo_satclip'`` for this package's S2100K,
                ``'torchgeo'`` for ``torchgeo.datasets.S2100k`` (torchgeo >= 0.10).
            pin_memory: pin batches in page-locked memory for a faster,
                asynchronous copy to the GPU; None: when the trainer runs on
                CUDA.
            loader: how batches are read. ``'processes'``: a ``DataLoader``
                with *num_workers* worker processes (TorchGeo's way).
                ``'threads'``: a
                :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader`,
                *num_workers* threads of the main process copying the packed
                layout straight into pinned batches (several times faster on a
                GPU machine; needs the packed layout and no dataset
                *transforms*). ``'auto'``: threads when they apply and
                *num_workers* > 0, else processes.
            views: 2 delivers every image twice, ``image`` of shape
                ``(B, 2, C, H, W)`` with independent augmentations of each
                view (MoCo's positives by augmentation); the copy is made on
                the device. Batches whose samples already have several views
                (the dataset's ``dates='pair'``: two dates of a place, with
                ``date`` of shape (B, 2)) keep them, with either value.
            augmentation: the training augmentation: ``'satclip'`` (random
                crop, *flips*, *blur*) or ``'moco'`` (MoCo-v2's aug-plus for
                multispectral images, see
                :func:`~torchgeo_satclip.datamodules.s2_100k.moco_image_ops`;
                needs *crop_size*). Validation batches are centre crops of
                every view either way (unless *augment_val*).
            **kwargs: passed to the dataset class (``root``, ``download``,
                ``bands``, ``exclude_nodata``, ``image_dtype``, ``dates``,
                ...). This package's dataset defaults to
                ``image_dtype='uint16'`` here (unless *transforms* are given,
                which then get float32 samples): the conversion to float32
                happens on the device, before the augmentations. With ``dates='all'`` batches are
                padded to their longest place by :func:`collate_all_dates`
                (``date_mask`` tells real dates from padding).

        Raises:
            ValueError: on an invalid argument (a *batch_size* below 1, a
                negative *num_workers*, a *seed* that is no integer, a
                *pin_memory* that is neither None nor a bool, ...), or
                ``dataset='torchgeo'`` on torchgeo < 0.10.
        """
        if dataset == 'torchgeo':
            if TorchGeoS2100k is None:
                raise ValueError("dataset='torchgeo' needs torchgeo >= 0.10 (S2100k)")
            dataset_class = TorchGeoS2100k
        elif dataset == 'torchgeo_satclip':
            dataset_class = S2100K
            if kwargs.get('transforms') is None:
                # A dataset transform gets samples as TorchGeo gives them.
                kwargs.setdefault('image_dtype', 'uint16')
        else:
            raise ValueError(
                f"dataset must be 'torchgeo_satclip' or 'torchgeo', not {dataset!r}"
            )
        val_split_pct = check_real('val_split_pct', val_split_pct, minimum=0, below=1)
        check_flag('augment_val', augment_val)
        batch_size = check_int('batch_size', batch_size, minimum=1)
        num_workers = check_int('num_workers', num_workers, minimum=0)
        seed = check_int('seed', seed)
        if check_int('views', views) not in (1, 2):
            raise ValueError(f'views must be 1 or 2, not {views!r}')
        super().__init__(dataset_class, batch_size, num_workers, **kwargs)
        self.views = views
        self.val_split_pct = val_split_pct
        self.seed = seed
        self.crop_size = crop_size
        if loader not in ('auto', 'processes', 'threads'):
            raise ValueError(
                f"loader must be 'auto', 'processes' or 'threads', not {loader!r}"
            )
        # None: pin when the trainer runs on CUDA (decided per loader)
        self.pin_memory = (
            None if pin_memory is None else check_flag('pin_memory', pin_memory)
        )
        self.loader = loader
        self.collate_fn = (
            collate_all_dates if kwargs.get('dates') == 'all' else collate_sample_batch
        )

        common: dict[str, Any] = {'insert_b10': insert_b10, 'crop_size': crop_size}
        train = S2100KAugmentation(
            **common,
            random=True,
            flips=flips,
            blur=blur,
            jitter=jitter,
            symmetric_jitter=symmetric_jitter,
            augmentation=augmentation,
        )
        self.train_aug = train
        self.val_aug = (
            train if augment_val else S2100KAugmentation(**common, random=False)
        )
        self.aug = S2100KAugmentation(**common, random=False)

    def on_after_batch_transfer(
        self, batch: dict[str, Tensor], dataloader_idx: int
    ) -> dict[str, Tensor]:
        """Convert to float32, duplicate single-view images, then augment.

        Integer images (the stored uint16 values) become float32 of the same
        values first, so every augmentation, a user's own included, gets
        TorchGeo's float images. *views* = 2 then duplicates single-view
        images, on the device.

        Args:
            batch: a batch on the device.
            dataloader_idx: index of its dataloader.

        Returns:
            The augmented batch.
        """
        batch = _float_images(batch)
        image = batch.get('image')
        if self.views == 2 and image is not None and image.ndim < _VIEW_BATCH_DIMS:
            batch = {**batch, 'image': torch.stack([image, image], dim=1)}
        out: dict[str, Tensor] = super().on_after_batch_transfer(batch, dataloader_idx)
        return out

    def setup(self, stage: str) -> None:
        """Build the dataset and the seeded train/val split.

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'. S2-100K has no test
                split; 'predict' uses the whole dataset.

        Raises:
            ValueError: if ``crop_size`` is larger than the patches,
                ``insert_b10`` meets images of other bands than S2-100K's 12
                (a ``bands`` subset), or (when
                fitting) ``batch_size`` is larger than the training split,
                which would give no training batch at all (the training
                loader drops the last incomplete batch).
        """
        if self.dataset is None:
            self.dataset = self.dataset_class(**self.kwargs)
            self._check_sample()
        if stage in ('fit', 'validate'):
            train, val = split_indices(
                _sample_keys(self.dataset), self.val_split_pct, self.seed
            )
            self.train_dataset = Subset(self.dataset, train)
            self.val_dataset = Subset(self._val_source(), val) if val else None
            if stage == 'fit' and len(train) < self.batch_size:
                raise ValueError(
                    f'batch_size {self.batch_size} is larger than the training '
                    f'split ({len(train)} samples), so there would be no training '
                    'batch (the last incomplete batch is dropped): lower batch_size '
                    'or use more data'
                )
        if stage == 'predict':
            self.predict_dataset = self.dataset

    def _val_source(self) -> Any:
        """The dataset the validation split reads.

        With random pairs of dates, a copy whose pairs are fixed by *seed*, so
        that the validation loss of one epoch compares with the next.
        """
        dataset: Any = self.dataset
        if (
            isinstance(dataset, S2100K)
            and dataset.dates == 'pair'
            and not dataset.fixed_pairs
        ):
            # Any seed the split takes (negative, numpy) gives a valid one.
            return dataset.with_fixed_pairs(operator.index(self.seed) % 2**63)
        return dataset

    def _check_sample(self) -> None:
        """Refuse what the first batch would fail on, or do wrong.

        A crop larger than the patches (kornia would upsample them), and an
        all-zero B10 inserted (by this package's augmentations) into images
        of other bands than the 12 of S2-100K.
        """
        dataset: Any = self.dataset
        if dataset is None or len(dataset) == 0:
            return
        b10 = any(
            isinstance(aug, S2100KAugmentation) and aug.insert_b10
            for aug in (self.train_aug, self.val_aug, self.aug)
        )
        if self.crop_size is None and not b10:
            return
        sample = dataset[0]
        if 'image' not in sample:  # mode='points': no image
            return
        bands = int(sample['image'].shape[-3])
        if b10 and bands != len(S2100K.all_bands):
            raise ValueError(
                f'insert_b10 needs the 12 S2-100K bands, but the samples have '
                f'{bands} (bands={self.kwargs.get("bands")!r}): pass '
                'insert_b10=False (false in a config), or every band'
            )
        if self.crop_size is None:
            return
        height, width = (int(n) for n in sample['image'].shape[-2:])
        if self.crop_size > min(height, width):
            raise ValueError(
                f'crop_size {self.crop_size} is larger than the patches '
                f'({height} x {width}): set crop_size to at most '
                f'{min(height, width)} (or null for no crop)'
            )

    def _dataloader_factory(self, split: str) -> Any:
        """A DataLoader like TorchGeo's, pinning memory when on CUDA.

        Or a :class:`ThreadedBatchLoader` (see *loader*).

        Args:
            split: 'train', 'val', 'test' or 'predict'.

        Returns:
            The loader of that split; for ``'val'``, an empty list when the
            validation split is empty (``val_split_pct=0``): Lightning then
            validates nothing.

        Raises:
            ValueError: if ``loader='threads'`` and the dataset does not suit it,
                or for ``'test'`` (S2-100K has no test split).
            MisconfigurationException: for ``'val'`` before ``setup`` made the
                split.
        """
        if split == 'test':
            raise ValueError(
                'S2-100K has no test split: `validate` evaluates the validation '
                'split (val_split_pct), `predict` embeds every sample'
            )
        if split == 'val':
            # Never TorchGeo's fallback to the whole dataset: with an empty
            # split that would validate on the training samples.
            if self.val_dataset is None and self.train_dataset is not None:
                return []
            dataset = self._valid_attribute('val_dataset')
        else:
            dataset = self._valid_attribute(f'{split}_dataset', 'dataset')
        batch_size = self._valid_attribute(f'{split}_batch_size', 'batch_size')
        pin_memory = self.pin_memory
        if pin_memory is None:
            trainer = self.trainer
            pin_memory = (
                trainer is not None and trainer.strategy.root_device.type == 'cuda'
            )
        threads = self.loader == 'threads' or (
            self.loader == 'auto'
            and self.num_workers > 0
            and threaded_source(dataset) is not None
        )
        if threads:
            # Lightning turns a DataLoader's shuffle off to overfit, but cannot
            # rebuild this loader: it must not shuffle from the start.
            overfit = getattr(self.trainer, 'overfit_batches', 0) > 0
            return ThreadedBatchLoader(
                dataset,
                batch_size,
                shuffle=split == 'train' and not overfit,
                drop_last=split == 'train',
                num_threads=max(1, self.num_workers),
                pin_memory=pin_memory,
                seed=self.seed,
            )
        # A state in checkpoints, as the threaded loader has: Lightning
        # refuses to resume a checkpoint saved with one loader with the other
        # kind otherwise.
        return RestartingDataLoader(
            dataset=dataset,
            batch_size=batch_size,
            shuffle=split == 'train',
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            drop_last=split == 'train',
            persistent_workers=self.num_workers > 0,
            pin_memory=pin_memory,
        )

    def train_points(self) -> Tensor:
        """The (lon, lat) of every training sample, without reading images.

        The declared source of the training locations, for example for the
        geo-classification pretext of
        :class:`~torchgeo_satclip.tasks.SatCLIPTask` (``geo_classes``).

        Returns:
            ``(N, 2)`` float64 (longitude, latitude) in degrees of the
            training split, in its order.

        Raises:
            RuntimeError: if ``setup('fit')`` has not built the split yet.
        """
        if self.train_dataset is None:
            raise RuntimeError(
                "train_points() needs the split: call setup('fit') first"
            )
        return _dataset_lonlat(self.train_dataset)
