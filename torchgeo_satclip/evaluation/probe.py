"""Probes of frozen location features: linear (RANGE protocol) and MLP.

* Linear probe, as RANGE (CVPR 2025): MinMax scaling, then ``RidgeCV``
  (regression, scored by R^2) or ``RidgeClassifierCV`` (classification, scored
  by accuracy), alpha chosen in {0.1, 1, 10} by internal cross-validation.
* MLP probe, as SatCLIP's air-temperature example: MinMax scaling, two hidden
  layers of 64, Adam with learning rate 1e-3 (targets standardised), stopped
  early on 10 % of the training fold held out; a training fold too small to
  hold out that part (see :func:`early_stopping_fits`) is trained for the
  full 300 epochs instead.
* Cross-validation: random k-fold, or spatial-block k-fold, where whole
  blocks of ``block_size`` x ``block_size`` degrees go to one fold, so that
  the test points are not next to training points; or ``'range'``, RANGE's
  own evaluation: one 80/20 split drawn as
  ``torch.utils.data.random_split(points, [0.8, 0.2],
  generator=torch.Generator().manual_seed(42))``, and alpha chosen by 3-fold
  (regression) or 10-fold (classification) cross-validation inside the
  training part. With it, the linear probe reproduces RANGE's published
  figures to the third decimal (raw 0.381, wrap 0.861, GeoCLIP 0.916 on air
  temperature).

Scores are reported as mean and standard deviation over the folds.
"""

import csv
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from tqdm.auto import tqdm

from .._checks import check_device, check_int
from .._io import atomic_path
from .._nn import evaluating
from ..geo import validate_lonlat
from ..models import (
    GeoCLIPWeights,
    LocationEncoder,
    SphericalHarmonics,
    Wrap,
    list_weights,
    satclip_location_encoder,
)
from ..models.released import weights_member
from .outputs import markdown_cell
from .tasks import PointTask

__all__ = [
    'ALPHAS',
    'BUILTIN_ENCODERS',
    'MAX_SEED',
    'MIN_BLOCK_SIZE',
    'RANGE_CV',
    'RANGE_SEED',
    'ProbeResult',
    'Protocol',
    'Split',
    'check_block_size',
    'check_encoders',
    'check_folds',
    'check_seed',
    'cross_validate',
    'early_stopping_fits',
    'encode',
    'fold_indices',
    'make_probe',
    'range_split',
    'require_sklearn',
    'resolve_encoders',
    'results_to_markdown',
    'run_probes',
    'write_results',
]

#: Ridge penalties searched by the linear probe (RANGE's grid).
ALPHAS = (0.1, 1.0, 10.0)

Protocol = Literal['linear', 'mlp']
Split = Literal['random', 'spatial', 'range']

#: Seed of RANGE's train/test split (``torch.Generator().manual_seed(42)``).
RANGE_SEED = 42
#: Folds of RANGE's search of alpha, by task kind.
RANGE_CV = {'regression': 3, 'classification': 10}
#: Largest seed of the folds and the MLPs (scikit-learn's ``random_state``).
MAX_SEED = 2**32 - 1


def _raw(lonlat: torch.Tensor) -> torch.Tensor:
    return lonlat


#: Feature maps needing no checkpoint: ``name -> (lonlat float64 (N, 2) -> features)``.
BUILTIN_ENCODERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    'raw': _raw,
    'wrap': Wrap(),
    'sh': SphericalHarmonics(legendre_polys=10),
    'sh20': SphericalHarmonics(legendre_polys=20),
}


def _is_geoclip(spec: str) -> bool:
    """Whether ``spec`` names GeoCLIP's weights (``'geoclip'``, ``'GeoCLIPWeights.GEOCLIP'``).

    The loader's rule (:func:`~torchgeo_satclip.models.released.weights_member`):
    a member's name after another class (``'SatCLIPWeights.GEOCLIP'``) is none.
    """
    return isinstance(weights_member(spec), GeoCLIPWeights)


def _load(spec: str) -> LocationEncoder:
    """Load a checkpoint path or weights name; GeoCLIP in its own float32."""
    if _is_geoclip(spec) and not Path(spec).exists():
        # GeoCLIP's weights are float32 (its embeddings agree with float64 to
        # ~1e-7); float64 would only make its 9.4M-parameter MLP slower.
        return satclip_location_encoder(spec, dtype=torch.float32)
    return satclip_location_encoder(spec)


def require_sklearn() -> None:
    """Fail early, naming the extra, if scikit-learn (the probes) is missing.

    Raises:
        ImportError: if scikit-learn is not installed.
    """
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError as error:
        raise ImportError(
            'the probes need scikit-learn: pip install "torchgeo-satclip[eval]"'
        ) from error


def encode(
    encoder: str | LocationEncoder | Callable[[torch.Tensor], torch.Tensor],
    lonlat: np.ndarray,
    batch_size: int = 65536,
    device: str | torch.device = 'cpu',
) -> np.ndarray:
    """Features of points under one encoder.

    Args:
        encoder: a :data:`BUILTIN_ENCODERS` name (``'raw'`` lon/lat, ``'wrap'``,
            ``'sh'`` spherical harmonics L = 10 alone, ``'sh20'``), anything
            :func:`~torchgeo_satclip.models.satclip_location_encoder` loads
            (checkpoint path, ``SatCLIPWeights`` name, ``'geoclip'``), or a
            module.
        lonlat: ``(N, 2)`` (lon, lat) in degrees.
        batch_size: points per forward pass.
        device: where to compute.

    Returns:
        float64 ``(N, D)`` features. A module is run in eval mode and given
        back as it was (each submodule's training flag, its device).

    Raises:
        ValueError: naming the first point that is not a finite (lon, lat)
            in range (the built-in encoders would encode it all the same), or
            a *batch_size* that is not a positive integer (a negative one gave
            no feature at all), or a *device* this machine lacks, before any
            encoder is loaded.
    """
    batch_size = check_int('batch_size', batch_size, 1)
    device = check_device('device', device)
    validate_lonlat(np.asarray(lonlat, dtype=np.float64))
    return _encode_valid(encoder, lonlat, batch_size, device)


def _encode_valid(
    encoder: str | LocationEncoder | Callable[[torch.Tensor], torch.Tensor],
    lonlat: np.ndarray,
    batch_size: int,
    device: str | torch.device,
) -> np.ndarray:
    """:func:`encode` of points already validated (by :func:`run_probes`)."""
    if isinstance(encoder, str):
        module = BUILTIN_ENCODERS.get(encoder) or _load(encoder)
    else:
        module = encoder
    # a caller's module is given back as it was: each part's training flag
    # and its device
    borrowed: AbstractContextManager[Any] = (
        evaluating(module, torch.device(device))
        if isinstance(module, torch.nn.Module)
        else nullcontext()
    )
    out = []
    with borrowed, torch.no_grad():
        for start in range(0, len(lonlat), batch_size):
            chunk = torch.from_numpy(
                np.ascontiguousarray(lonlat[start : start + batch_size])
            )
            out.append(module(chunk.to(device, torch.float64)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _reserved_names() -> set[str]:
    """The names of the encoders a user's file must not be named as.

    The built-in encoders, ``geoclip`` and the released weights
    (``vit16_l40``): the PCA maps skip ``raw``, and
    :func:`~.references.references_to_markdown` sets the results of
    ``raw``, ``wrap``, ``geoclip`` and ``vit16_l40`` beside published figures
    of those models.
    """
    weights = {name.removeprefix('SATCLIP_').lower() for name in list_weights()}
    return {*BUILTIN_ENCODERS, 'geoclip', *weights}


def _file_name(name: str, path: Path) -> str:
    """*name* of the file *path*, with its suffix if it is a reserved name.

    ``raw.ckpt`` is ``raw_ckpt`` and ``vit16_l40.ckpt`` is ``vit16_l40_ckpt``
    (``_file`` for a file without suffix): under the encoder's own name a
    user's checkpoint would be taken for it (see :func:`_reserved_names`).
    """
    if name not in _reserved_names():
        return name
    return f'{name}_{path.suffix[1:] or "file"}'


def _short_name(spec: str) -> str:
    """A legend name: ``sh``, ``resnet18_l10`` (a weights name) or a file's stem.

    A file (an existing path is always read as one) whose stem is the name of
    a built-in encoder, ``geoclip`` or released weights (``raw.ckpt``,
    ``vit16_l40.ckpt``) is named with its suffix (``raw_ckpt``): under the
    encoder's own name it would be taken for it (no PCA map, as ``raw``; set
    beside the published figures of raw coordinates, ``wrap``, GeoCLIP or
    SatCLIP-ViT16-L40).
    """
    if spec in BUILTIN_ENCODERS:
        return spec
    path = Path(spec)
    if path.exists():  # the loader's rule: an existing path is a file
        return _file_name(path.stem, path)
    if _is_geoclip(spec):
        return 'geoclip'
    key = spec.rsplit('.', 1)[-1].upper()
    if key.startswith('SATCLIP_'):
        return key[len('SATCLIP_') :].lower()
    return path.stem or spec


def _unique_names(specs: Sequence[str]) -> list[str]:
    """Short names, made unique with the parent folder, then a counter.

    A file's name with its folder is no encoder's either (``vit16/l40.ckpt``
    beside another ``l40.ckpt`` is ``vit16_l40_ckpt``).
    """
    short = [_short_name(spec) for spec in specs]
    names = [
        _file_name(f'{Path(spec).parent.name}_{name}', Path(spec))
        if short.count(name) > 1 and Path(spec).parent.name
        else name
        for spec, name in zip(specs, short, strict=True)
    ]
    return _deduplicate(names)


def _deduplicate(names: Sequence[str]) -> list[str]:
    """Names made unique: a repeat gets the first free counter (``_2``, ``_3``).

    A counter is never one that another name already has, so that a repeat
    ``run_last`` does not become the ``run_last_2`` given further on (one of
    the two would then be lost in a mapping by name).

    Args:
        names: the names, in order.

    Returns:
        The unique names, in the same order; a first occurrence keeps its name.
    """
    taken = set(names)
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate = name
        if name in seen:
            counter = 2
            while f'{name}_{counter}' in taken:
                counter += 1
            candidate = f'{name}_{counter}'
            taken.add(candidate)
        seen.add(name)
        unique.append(candidate)
    return unique


def resolve_encoders(
    encoders: Sequence[str] | dict[str, Any],
) -> dict[str, Any]:
    """Load every encoder before anything is computed, under short unique names.

    Args:
        encoders: :data:`BUILTIN_ENCODERS` names, checkpoint paths,
            ``SatCLIPWeights`` names or ``'geoclip'`` (GeoCLIP's pretrained
            encoder, from the ``geoclip`` extra, run in its own float32); or
            a mapping from display name to encoder (names kept, strings
            loaded).

    Returns:
        Display name (``sh``, ``resnet18_l10``, ``geoclip``, a checkpoint's
        stem, with its folder when two stems are the same, and with its
        suffix, ``raw_ckpt`` or ``vit16_l40_ckpt``, when it is the name of a
        built-in encoder, ``geoclip`` or released weights) to encoder module.

    Raises:
        ValueError: for an encoder that is neither built in, a weights name
            nor an existing file (the message lists the built-in ones), or a
            checkpoint that cannot be read or downloaded, or ``'geoclip'``
            without the ``geoclip`` extra (one line).
    """
    if isinstance(encoders, dict):
        named = dict(encoders)
    else:
        specs = [str(spec) for spec in encoders]
        named = dict(zip(_unique_names(specs), specs, strict=True))
    resolved: dict[str, Any] = {}
    for name, spec in named.items():
        if not isinstance(spec, str):
            resolved[name] = spec
        elif spec in BUILTIN_ENCODERS:
            resolved[name] = BUILTIN_ENCODERS[spec]
        else:
            is_weights = weights_member(spec) is not None
            if not Path(spec).exists() and not is_weights and not _is_geoclip(spec):
                raise ValueError(
                    f'unknown encoder {spec!r}: not a built-in one '
                    f'({", ".join(BUILTIN_ENCODERS)}), a SatCLIPWeights name '
                    f"({', '.join(list_weights())}), 'geoclip' or an existing "
                    'checkpoint'
                )
            resolved[name] = _load(spec)
    return resolved


def range_split(num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """RANGE's train/test split: 80/20, as ``torch.utils.data.random_split``.

    The points are shuffled by ``torch.randperm`` with a generator seeded with
    :data:`RANGE_SEED`; the test part has ``floor(0.2 N)`` points and the
    training part the rest, first in the permutation (torch's rule for
    fractional lengths).

    Args:
        num_points: number of points.

    Returns:
        ``(train, test)`` index arrays.

    Raises:
        ValueError: if there are fewer than 5 points (no test point).
    """
    if num_points < 5:
        raise ValueError(f"{num_points} points cannot make RANGE's 80/20 split")
    generator = torch.Generator().manual_seed(RANGE_SEED)
    order = torch.randperm(num_points, generator=generator).numpy()
    num_train = num_points - math.floor(num_points * 0.2)
    return order[:num_train], order[num_train:]


def fold_indices(
    lonlat: np.ndarray,
    folds: int = 5,
    split: Split = 'random',
    block_size: float = 10.0,
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Train/test indices of k-fold cross-validation.

    Args:
        lonlat: ``(N, 2)`` (lon, lat) in degrees.
        folds: number of folds.
        split: 'random' (points shuffled into folds), 'spatial' (blocks of
            ``block_size`` degrees from (-180, -90), shuffled into folds,
            whole; longitude 180 is in the blocks of -180, latitude 90 in
            the last row, and a pole, whatever its longitude, in the first
            block of its row) or 'range'
            (RANGE's single 80/20 split, :func:`range_split`; ``folds`` and
            ``seed`` do not apply).
        block_size: side of the spatial blocks in degrees.
        seed: shuffling seed.

    Yields:
        ``(train, test)`` index arrays, one pair per fold.

    Raises:
        ValueError: for an unknown split, fewer than 2 folds or a number of
            folds that is not an integer, a seed that is not one in
            [0, :data:`MAX_SEED`] (unless ``'range'``), a
            ``block_size`` that is not a positive number of degrees (under
            ``'spatial'``), or fewer points or blocks than folds; the options
            are checked when it is called, before the first fold.
    """
    if split not in get_args(Split):
        raise ValueError(f"split must be 'random', 'spatial' or 'range', got {split!r}")
    if split != 'range':
        _check_fold_count(folds)
        check_seed(seed)
    if split == 'spatial':
        check_block_size(block_size)
    return _fold_pairs(lonlat, folds, split, block_size, seed)


def _fold_pairs(
    lonlat: np.ndarray, folds: int, split: Split, block_size: float, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The folds of :func:`fold_indices`, whose options are valid."""
    rng = np.random.default_rng(seed)
    n = len(lonlat)
    if split == 'range':
        yield range_split(n)
        return
    if split == 'random':
        if n < folds:
            raise ValueError(f'{n} points cannot make {folds} folds')
        assignment = rng.permutation(np.arange(n) % folds)
    elif split == 'spatial':
        # longitude 180 is longitude -180 (one meridian: the first column),
        # and latitude 90 lies in the last row, not in a row of its own
        col = np.floor(((lonlat[:, 0] + 180.0) % 360.0) / block_size).astype(np.int64)
        # a pole is one place whatever its longitude: its points, one block
        col[np.abs(lonlat[:, 1]) == 90.0] = 0
        row = np.floor((lonlat[:, 1] + 90.0) / block_size).astype(np.int64)
        row = np.minimum(row, max(math.ceil(180.0 / block_size) - 1, 0))
        # (column, row) pairs, in that order: a single number col * K + row
        # would merge far-apart blocks once there are K rows or more
        blocks, block_of_point = np.unique(
            np.stack([col, row], axis=1), axis=0, return_inverse=True
        )
        if len(blocks) < folds:
            raise ValueError(
                f'{len(blocks)} blocks of {block_size} degrees cannot make {folds} folds'
            )
        fold_of_block = rng.permutation(np.arange(len(blocks)) % folds)
        assignment = fold_of_block[block_of_point.reshape(-1)]
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        train = np.flatnonzero(assignment != fold)
        yield train, test


#: Share of the MLP's training points held out for its early stopping.
MLP_VALIDATION_FRACTION = 0.1


def early_stopping_fits(target: np.ndarray, kind: str) -> bool:
    """Whether the MLP probe can stop early when fitted on these targets.

    Early stopping holds out ``ceil(0.1 N)`` of the ``N`` training points
    (stratified by class for classification) and scores the MLP on them
    after every epoch. That needs at least 2 held-out points and, for
    classification, as many held-out points as classes, as many left to
    train on, and 2 points of every class (scikit-learn refuses the split
    otherwise).

    Args:
        target: the targets of a training fold.
        kind: 'regression' or 'classification'.

    Returns:
        True if the held-out part can be drawn.
    """
    n = len(target)
    held_out = math.ceil(MLP_VALIDATION_FRACTION * n)
    if held_out < 2:
        return False
    if kind == 'classification':
        counts = np.unique(target, return_counts=True)[1]
        classes = len(counts)
        if held_out < classes or n - held_out < classes or counts.min() < 2:
            return False
    return True


def make_probe(
    kind: str,
    protocol: Protocol = 'linear',
    seed: int = 0,
    cv: int | None = None,
    *,
    early_stopping: bool = True,
) -> Any:
    """Build an unfitted scikit-learn probe.

    Args:
        kind: 'regression' or 'classification'.
        protocol: 'linear' (MinMax + RidgeCV / RidgeClassifierCV, alpha in
            :data:`ALPHAS`) or 'mlp' (MinMax + 2 x 64 ReLU MLP, Adam 1e-3).
        seed: seed of the MLP.
        cv: folds of the linear probe's search of alpha (None: scikit-learn's
            default, efficient leave-one-out for regression).
        early_stopping: whether the MLP stops when its score on 10 % of the
            training points held out has not improved for 20 epochs (False:
            it trains for 300 epochs); :func:`cross_validate` turns it off on
            a fold where :func:`early_stopping_fits` is False.

    Returns:
        A scikit-learn estimator.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    if protocol == 'linear':
        model: Any = (
            RidgeCV(alphas=ALPHAS, cv=cv)
            if kind == 'regression'
            else RidgeClassifierCV(alphas=ALPHAS, cv=cv)
        )
        return make_pipeline(MinMaxScaler(), model)
    if protocol != 'mlp':
        raise ValueError(f"protocol must be 'linear' or 'mlp', got {protocol!r}")
    mlp_args: dict[str, Any] = {
        'hidden_layer_sizes': (64, 64),
        'learning_rate_init': 1e-3,
        'max_iter': 300,
        'early_stopping': early_stopping,
        'validation_fraction': MLP_VALIDATION_FRACTION,
        'n_iter_no_change': 20,
        'random_state': seed,
    }
    if kind == 'regression':
        return TransformedTargetRegressor(
            regressor=make_pipeline(MinMaxScaler(), MLPRegressor(**mlp_args)),
            transformer=StandardScaler(),
        )
    return make_pipeline(MinMaxScaler(), MLPClassifier(**mlp_args))


@dataclass
class ProbeResult:
    """Scores of one encoder on one task under one protocol."""

    task: str
    encoder: str
    protocol: str
    split: str
    metric: str
    scores: list[float]

    @property
    def mean(self) -> float:
        """Mean score over folds."""
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Standard deviation of the score over folds (population, ddof = 0)."""
        return float(np.std(self.scores))


def cross_validate(
    features: np.ndarray,
    task: PointTask,
    protocol: Protocol = 'linear',
    split: Split = 'random',
    folds: int = 5,
    block_size: float = 10.0,
    seed: int = 0,
    encoder_name: str = '',
) -> ProbeResult:
    """Cross-validate one probe on precomputed features.

    Args:
        features: ``(N, D)`` features of the task's points.
        task: the task (targets, kind).
        protocol: 'linear' or 'mlp'.
        split: 'random', 'spatial' (blocks of ``block_size`` degrees) or
            'range' (RANGE's evaluation: its 80/20 split, and alpha chosen by
            :data:`RANGE_CV` folds).
        folds: number of folds.
        block_size: spatial block size in degrees.
        seed: seed of the folds and the MLP.
        encoder_name: name recorded in the result.

    Returns:
        R^2 (regression) or accuracy (classification) of each fold.

    Raises:
        ValueError: if the task's points are not finite (lon, lat) in range
            or its targets not one per point (naming the task and the first
            bad point), the features are not ``(N, D)`` with one row per point
            of the task, the task is too small for the folds asked (see
            :func:`check_folds`), or the probe cannot be fitted on a fold (the
            message names the task, the probe and the fold).
    """
    require_sklearn()
    _check_options(folds, block_size, [protocol], [split], seed)
    _check_points(task)
    return _cross_validate(
        features, task, protocol, split, folds, block_size, seed, encoder_name
    )


def _cross_validate(
    features: np.ndarray,
    task: PointTask,
    protocol: Protocol,
    split: Split,
    folds: int,
    block_size: float,
    seed: int,
    encoder_name: str,
) -> ProbeResult:
    """:func:`cross_validate` of a task and options already checked."""
    from sklearn.metrics import accuracy_score, r2_score

    shape = np.shape(features)
    if len(shape) != 2 or shape[0] != len(task):
        source = f' of encoder {encoder_name!r}' if encoder_name else ''
        raise ValueError(
            f'features{source} have shape {shape}, but task {task.name!r} has '
            f'{len(task)} points: expected ({len(task)}, D), one row per point'
        )
    scores = []
    cv = RANGE_CV[task.kind] if split == 'range' else None
    pairs = check_folds(task, split, folds, block_size, seed, protocols=[protocol])
    for fold, (train, test) in enumerate(pairs, start=1):
        stops = early_stopping_fits(task.target[train], task.kind)
        probe = make_probe(task.kind, protocol, seed, cv, early_stopping=stops)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # convergence and ill-conditioning
                probe.fit(features[train], task.target[train])
        except ValueError as error:
            raise ValueError(
                f'task {task.name!r}, {protocol} probe, {split} fold {fold} of '
                f'{len(pairs)}: cannot fit ({error})'
            ) from error
        predicted = probe.predict(features[test])
        if task.kind == 'regression':
            scores.append(float(r2_score(task.target[test], predicted)))
        else:
            scores.append(float(accuracy_score(task.target[test], predicted)))
    if not all(np.isfinite(scores)):
        raise ValueError(
            f'task {task.name!r}, {protocol} probe, {split} CV: non-finite scores '
            f'{scores} (non-finite features from encoder {encoder_name!r}?)'
        )
    metric = 'R2' if task.kind == 'regression' else 'accuracy'
    return ProbeResult(task.name, encoder_name, protocol, split, metric, scores)


def _check_options(
    folds: int,
    block_size: float,
    protocols: Sequence[str],
    splits: Sequence[str],
    seed: int,
) -> None:
    """Refuse probe options of the wrong type or out of range, naming them."""
    _check_fold_count(folds)
    check_block_size(block_size)
    check_seed(seed)
    for option, values, allowed in (
        ('protocols', protocols, get_args(Protocol)),
        ('splits', splits, get_args(Split)),
    ):
        if isinstance(values, str) or not values:
            raise ValueError(f'{option} must be a non-empty list, got {values!r}')
        for value in values:
            if value not in allowed:
                raise ValueError(
                    f'unknown {option[:-1]} {value!r}; expected one of {list(allowed)}'
                )


def _check_fold_count(folds: Any) -> int:
    """Return *folds* as an ``int`` if it is an integer of at least 2.

    The one check of a number of folds, for the probes of points and of
    images alike.

    Raises:
        ValueError: naming the value, for one that is not an integer (a
            ``bool`` included) or is less than 2.
    """
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral):
        raise ValueError(
            f'folds must be an integer, got {folds!r} (type {type(folds).__name__})'
        )
    if folds < 2:
        raise ValueError(
            f'folds must be at least 2 (each fold is tested on a model fitted on '
            f'the others), got {folds}'
        )
    return int(folds)


def check_encoders(encoders: Any) -> None:
    """Refuse encoders that are not a non-empty list or mapping.

    Args:
        encoders: what :func:`run_probes` takes.

    Raises:
        ValueError: naming the value, for no encoder or a plain string (which
            would be read letter by letter).
    """
    if isinstance(encoders, str) or not encoders:
        raise ValueError(
            f'encoders must be a non-empty list of encoders, got {encoders!r}'
        )


def check_seed(seed: Any) -> None:
    """Refuse a seed of the folds or the MLPs that is not an integer in range.

    Args:
        seed: the seed.

    Raises:
        ValueError: naming the value, unless it is an integer (not a
            ``bool``) in [0, :data:`MAX_SEED`], as scikit-learn and NumPy
            take it.
    """
    check_int('seed', seed, 0, MAX_SEED)


#: The smallest side of a spatial block, in degrees (about 0.1 mm).
MIN_BLOCK_SIZE = 1e-9


def check_block_size(block_size: Any) -> None:
    """Refuse a side of the spatial blocks that is not a positive number.

    Args:
        block_size: side of the spatial blocks in degrees.

    Raises:
        ValueError: naming the value, unless it is a finite real number
            (not a ``bool``) of at least :data:`MIN_BLOCK_SIZE`.
    """
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, numbers.Real)
        or not math.isfinite(block_size)
        or block_size <= 0
    ):
        raise ValueError(
            f'block_size must be a positive number of degrees, got {block_size!r}'
        )
    if block_size < MIN_BLOCK_SIZE:
        # 360 / block_size block numbers overflow int64 near 1e-17 (far-apart
        # points shared a block), and float64 longitudes resolve about 3e-14
        raise ValueError(
            f'block_size must be at least {MIN_BLOCK_SIZE:g} degrees (about '
            f'0.1 mm), got {block_size!r}'
        )


def check_folds(
    task: PointTask,
    split: Split = 'random',
    folds: int = 5,
    block_size: float = 10.0,
    seed: int = 0,
    *,
    protocols: Sequence[str] = ('linear',),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of a task, refused when a score on them would mean nothing.

    A task too small for the folds asked would otherwise report a score such
    as "accuracy 0.000 +- 0.000" (a probe fitted on one class) or an R^2 of
    NaN or 0.

    Args:
        task: the task.
        split: 'random', 'spatial' or 'range' (see :func:`fold_indices`).
        folds: number of folds.
        block_size: spatial block size in degrees.
        seed: seed of the folds.
        protocols: the probes to be fitted on the folds (the ``'linear'``
            one under ``'range'`` searches alpha by :data:`RANGE_CV` folds).

    Returns:
        The ``(train, test)`` indices of every fold.

    Raises:
        ValueError: naming the task, the points it has and the fold, if there
            are fewer points or spatial blocks than folds (under ``'range'``,
            whose one split ignores ``folds``: fewer than 5 points), a classification
            task has fewer than two classes or a training fold holds one
            class only, or a regression task has a constant target or a test
            fold with fewer than two points or a constant target (R^2 is then
            undefined), or, for the linear probe under ``'range'``, the
            training part of a classification task has fewer points of its
            largest class than the folds of the search of alpha (scikit-learn
            cannot stratify them).
    """
    # options checked first, unwrapped: their message is not "too small"
    folds_of_task = fold_indices(task.lonlat, folds, split, block_size, seed)
    n = len(task)
    what = f'task {task.name!r} ({n} points)'
    fewer = (
        'use fewer folds (--folds) or more points'
        if folds > 2 and split != 'range'  # RANGE's one split has no folds
        else 'add points'
    )
    if n < folds and split != 'range':
        raise ValueError(
            f'{what} is too small for {folds}-fold cross-validation: every fold '
            f'needs a test point; {fewer}'
        )
    if task.kind == 'classification' and len(np.unique(task.target)) < 2:
        raise ValueError(f'{what} has a single class: there is nothing to classify')
    if task.kind == 'regression':
        if not np.isfinite(task.target).all():
            row = int(np.flatnonzero(~np.isfinite(task.target))[0])
            raise ValueError(f'{what}: target {row} is {task.target[row]}, not finite')
        if np.ptp(task.target) == 0:
            raise ValueError(
                f'{what}: every target is {task.target[0]}, so R^2 is undefined'
            )
    try:
        pairs = list(folds_of_task)
    except ValueError as error:
        scheme = (
            "RANGE's 80/20 split"
            if split == 'range'
            else f'{folds}-fold {split} cross-validation'
        )
        raise ValueError(
            f'{what} is too small for {scheme}: {error}; {fewer}'
        ) from None
    for fold, (train, test) in enumerate(pairs, start=1):
        where = f'{what}, {split} fold {fold} of {len(pairs)}'
        if task.kind == 'classification':
            if len(np.unique(task.target[train])) < 2:
                raise ValueError(
                    f'{where}: the training points hold one class only; {fewer}'
                )
        elif len(test) < 2 or np.ptp(task.target[test]) == 0:
            held = (
                'a single test point'
                if len(test) < 2
                else f'{len(test)} test points with the same target'
            )
            raise ValueError(f'{where}: {held}, so R^2 is undefined; {fewer}')
    if split == 'range' and 'linear' in protocols and task.kind == 'classification':
        inner = RANGE_CV['classification']
        train = pairs[0][0]
        largest = int(np.unique(task.target[train], return_counts=True)[1].max())
        if largest < inner:
            raise ValueError(
                f'{what}, range fold 1 of 1: the linear probe chooses alpha by '
                f'{inner}-fold stratified cross-validation inside the training '
                f'part, whose largest class has {largest} of its {len(train)} '
                f'points (at least {inner} needed); add points'
            )
    return pairs


def _check_points(task: PointTask) -> None:
    """Validate a task's points (the built-in encoders are bare modules).

    Raises:
        ValueError: naming the task and its first invalid point, or if its
            targets are not ``(N,)``, one per point.
    """
    name = task.name
    points, targets = np.shape(task.lonlat), np.shape(task.target)
    if len(points) != 2 or len(targets) != 1 or targets[0] != points[0]:
        raise ValueError(
            f'task {name!r} has lonlat of shape {points} and target of shape '
            f'{targets}: expected (N, 2) points and (N,) targets, one per point'
        )
    validate_lonlat(
        np.asarray(task.lonlat, dtype=np.float64),
        where=lambda i: f'task {name!r}, point {i} (from 0)',
    )


def run_probes(
    tasks: Sequence[PointTask],
    encoders: Sequence[str] | dict[str, Any],
    protocols: Sequence[Protocol] = ('linear',),
    splits: Sequence[Split] = ('random',),
    folds: int = 5,
    block_size: float = 10.0,
    seed: int = 0,
    device: str | torch.device = 'cpu',
    progress: Callable[[str], None] | None = None,
    progress_bar: bool = False,
) -> list[ProbeResult]:
    """Probe every encoder on every task, side by side.

    Args:
        tasks: the tasks.
        encoders: names/paths (see :func:`encode`), or a mapping from display
            name to encoder; all are loaded first (:func:`resolve_encoders`),
            so a missing checkpoint stops the run before any work.
        protocols: probes to run.
        splits: cross-validation schemes to run.
        folds: folds per cross-validation.
        block_size: spatial block size in degrees.
        seed: seed of folds and MLPs.
        device: where to compute features.
        progress: called with a line of text after each result.
        progress_bar: show a tqdm bar (on stderr) over the (task, encoder,
            protocol, split) runs; give ``progress=tqdm.write`` (or a callable
            that writes through it) to print lines without breaking the bar.

    Returns:
        One result per task, encoder, protocol and split.

    Raises:
        ValueError: for an option of the wrong type or out of range, no
            task or no encoder, two tasks of the same name (their results could not be told apart:
            the tables are keyed by task name), an unknown encoder, or a task
            too small for the folds asked (see :func:`check_folds`), or a
            *device* this machine lacks, before any encoder is loaded.
    """
    require_sklearn()
    _check_options(folds, block_size, protocols, splits, seed)
    device = check_device('device', device)
    if isinstance(tasks, str) or not tasks:
        raise ValueError(f'tasks must be a non-empty list of tasks, got {tasks!r}')
    check_encoders(encoders)
    names = [task.name for task in tasks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f'{names.count(repeated[0])} tasks are named {repeated[0]!r}: the '
            'results are tabled by task name, so give each task its own name'
        )
    for task in tasks:
        _check_points(task)
        for split in splits:
            check_folds(task, split, folds, block_size, seed, protocols=protocols)
    named = resolve_encoders(encoders)
    results = []
    total = len(tasks) * len(named) * len(protocols) * len(splits)
    with tqdm(total=total, disable=not progress_bar, unit='probe') as bar:
        for task in tasks:
            for name, encoder in named.items():
                bar.set_description(f'{task.name} {name}')
                # Validated above, naming the task.
                features = _encode_valid(encoder, task.lonlat, 65536, device)
                for protocol in protocols:
                    for split in splits:
                        # points and options checked above, once
                        result = _cross_validate(
                            features,
                            task,
                            protocol,
                            split,
                            folds,
                            block_size,
                            seed,
                            name,
                        )
                        results.append(result)
                        bar.update()
                        if progress is not None:
                            progress(
                                f'{task.name:>16} {name:>12} {protocol:>6} {split:>7}: '
                                f'{result.metric} {result.mean:.3f} +- {result.std:.3f}'
                            )
    return results


def _check_results(results: Sequence[ProbeResult]) -> None:
    """Refuse no result (or a string), naming the value."""
    if isinstance(results, str) or not results:
        raise ValueError(
            f'results must be a non-empty list of probe results, got {results!r}'
        )


def results_to_markdown(results: Sequence[ProbeResult]) -> str:
    """A Markdown table: one row per task/protocol/split, one column per encoder.

    Args:
        results: probe results.

    Returns:
        The table, cells ``mean +- std`` over folds (the score alone for a
        single split); the best mean of each row, as printed (three
        decimals), is bold, every cell that prints it if several do.

    Raises:
        ValueError: for no result (the table would have no column).
    """
    _check_results(results)
    encoders = list(dict.fromkeys(r.encoder for r in results))
    rows: dict[tuple[str, str, str, str], dict[str, ProbeResult]] = {}
    for r in results:
        rows.setdefault((r.task, r.metric, r.protocol, r.split), {})[r.encoder] = r
    lines = [
        '| task | metric | probe | CV | '
        + ' | '.join(markdown_cell(e) for e in encoders)
        + ' |',
        '|---|---|---|---|' + '---|' * len(encoders),
    ]
    for (task, metric, protocol, split), cells in rows.items():
        # the best as printed: two cells that both read 0.931 are both bold
        best = max(float(f'{c.mean:.3f}') for c in cells.values())
        values = []
        for encoder in encoders:
            cell = cells.get(encoder)
            if cell is None:
                values.append('')
                continue
            text = f'{cell.mean:.3f}'
            bold = float(text) == best
            if len(cell.scores) > 1:  # one split (--cv range) has no spread
                text += f' +- {cell.std:.3f}'
            values.append(f'**{text}**' if bold else text)
        lines.append(
            f'| {markdown_cell(task)} | {metric} | {protocol} | {split} | '
            + ' | '.join(values)
            + ' |'
        )
    return '\n'.join(lines) + '\n'


def write_results(
    results: Sequence[ProbeResult], directory: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Write ``probe_results.md`` and ``probe_results.csv``, each atomically.

    Args:
        results: probe results.
        directory: output folder (created).

    Returns:
        The Markdown and CSV paths.

    Raises:
        ValueError: for no result, before anything is written.
    """
    _check_results(results)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / 'probe_results.md'
    with atomic_path(markdown) as tmp:
        tmp.write_text(results_to_markdown(results), encoding='utf-8')
    table = out / 'probe_results.csv'
    with (
        atomic_path(table) as tmp,
        tmp.open('w', encoding='utf-8', newline='') as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow(
            ['task', 'encoder', 'protocol', 'split', 'metric', 'mean', 'std', 'folds']
        )
        for r in results:
            writer.writerow(
                [
                    r.task,
                    r.encoder,
                    r.protocol,
                    r.split,
                    r.metric,
                    f'{r.mean:.6f}',
                    f'{r.std:.6f}',
                    ' '.join(f'{s:.6f}' for s in r.scores),
                ]
            )
    return markdown, table
