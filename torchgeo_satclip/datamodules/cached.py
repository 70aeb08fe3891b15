"""Cached-feature SatCLIP pretraining: compute a frozen backbone's features once.

With a frozen image backbone (the released SatCLIP recipe), the only trainable
image-side part is the linear projection of the pooled features, so the
backbone's output for an image never changes during training. The original
recipe recomputes it every epoch (500 epochs x 100k images: about 2 days on an
A100, mostly data loading). :class:`CachedFeatureDataModule` instead runs the
backbone once per image (and optionally per view: up to the 8 flips and
rotations of the dihedral group), stores the features in a memory-mapped
``.npy`` file (float16 by default) and then serves ``{'features', 'point'}``
batches; :class:`~torchgeo_satclip.tasks.SatCLIPTask` projects ``features``
directly and skips the backbone.

The feature extractor is given explicitly: ``feature_extractor=`` (an
``nn.Module`` or any callable mapping ``(B, C, H, W)`` preprocessed images to
``(B, F)`` features) or :meth:`CachedFeatureDataModule.set_feature_extractor`.
A :class:`~torchgeo_satclip.tasks.SatCLIPTask` with ``freeze_backbone: true``
hands over its backbone at ``setup`` when none was given, which is how
``torchgeo fit --config configs/satclip_resnet18_l10_cached.yaml`` works.

The cache is keyed by a hash of the extractor's weights (or its
``extractor_key``), the preprocessing (its settings, and the image that the
dataset's ``transforms`` and the datamodule's ``aug`` make of sample 0), the
views and the dataset: its resolved
root, its ``index.csv`` and what it reads images from (one ``os.stat`` per
GeoTIFF, or the packed layout's ``manifest.json``, which pins every shard's
checksum), so that a change to any of them, a dataset rewritten in place or
another dataset sharing the ``cache_dir`` builds a new one (see
:meth:`CachedFeatureDataModule.cache_key`); before a module without an
``extractor_key`` reuses a cache, its features of sample 0 are compared with
the cached ones, which catches what the key cannot see (a function held in an
attribute). It is written to a temporary name
and renamed when complete (an interrupted build never leaves a cache that
looks valid), and the temporaries of a build that was killed are removed by
the next one. Under DDP, rank 0 builds it while the others wait (a failure of
rank 0 stops them all).

What caching cannot reproduce: the per-epoch random crop and Gaussian blur of
the original augmentation (features are of the centre crop; flips and
rotations are covered by ``feature_views``). Point jitter still applies per batch.
"""

import copy
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence, Sized
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeVar, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from .._checks import check_flag, check_int
from .._io import atomic_write, remove_stale_temporaries
from .._nn import evaluating
from ..datasets import S2100K
from ..datasets.s2_100k_files import DATES_FILE, sha256_file
from .s2_100k import S2100KDataModule, _dataset_lonlat, _float_images

__all__ = [
    'CachedFeatureDataModule',
    'CachedFeatureDataset',
    'FeatureExtractor',
    'build_feature_cache',
    'dihedral_view',
]

#: What computes the cached features: ``(B, C, H, W)`` preprocessed images on
#: the cache device to ``(B, F)`` features. An ``nn.Module`` is run in eval mode
#: and keyed by its weights and structure; another callable needs an explicit key.
FeatureExtractor: TypeAlias = nn.Module | Callable[[Tensor], Tensor]

#: A batch transform run before the extractor (the datamodule's ``aug``).
_BatchTransform: TypeAlias = Callable[[dict[str, Tensor]], dict[str, Tensor]]

_NP_DTYPES: dict[str, type[np.floating[Any]]] = {
    'float16': np.float16,
    'float32': np.float32,
}


def _check_dtype(name: str, dtype: object) -> type[np.floating[Any]]:
    """The numpy storage type of *dtype*, if it is ``'float16'`` or ``'float32'``.

    Raises:
        ValueError: naming the argument *name* and the value, if it is neither.
    """
    if not isinstance(dtype, str) or dtype not in _NP_DTYPES:
        raise ValueError(f"{name} must be 'float16' or 'float32', got {dtype!r}")
    return _NP_DTYPES[dtype]


def dihedral_view(image: Tensor, view: int) -> Tensor:
    """One of the 8 flips and rotations of a batch of images.

    Args:
        image: ``(..., H, W)`` images.
        view: 0-7; ``view % 4`` quarter turns, then a horizontal flip for
            ``view >= 4``. View 0 is the image itself.

    Returns:
        The transformed images.

    Raises:
        ValueError: if ``view`` is not in 0-7.
    """
    if not 0 <= view < 8:
        raise ValueError(f'view must be in 0-7, not {view}')
    out = torch.rot90(image, view % 4, dims=(-2, -1)) if view % 4 else image
    return out.flip(-1) if view >= 4 else out


class CachedFeatureDataset(Dataset[dict[str, Tensor]]):
    """Cached backbone features and the (lon, lat) of a subset of samples."""

    def __init__(
        self,
        features: NDArray[Any],
        lonlat: NDArray[np.float64],
        indices: Sequence[int] | None = None,
        random_view: bool = False,
    ) -> None:
        """Initialize a new CachedFeatureDataset instance.

        Args:
            features: ``(N, V, F)`` features of every sample and view (an
                array or a read-only memory map).
            lonlat: ``(N, 2)`` (lon, lat) in degrees.
            indices: samples of this subset (default: all).
            random_view: draw a random view per sample and access (training);
                else always view 0.
        """
        self.features = features
        self.indices = (
            np.arange(len(lonlat)) if indices is None else np.asarray(indices)
        )
        #: (lon, lat) of the subset's samples (read by the geo-classification k-means).
        self.lonlat = np.asarray(lonlat, dtype=np.float64)[self.indices]
        self.random_view = random_view

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Return one sample: ``features`` (F,) and ``point`` (2,) float64."""
        return self.__getitems__([index])[0]

    def __getitems__(self, indexes: Sequence[int]) -> list[dict[str, Tensor]]:
        """Return several samples with one fancy-indexed read of the cache.

        Args:
            indexes: positions in this subset.

        Returns:
            The samples, in the order asked.
        """
        rows = self.indices[np.asarray(indexes, dtype=np.int64)]
        num_views = self.features.shape[1]
        if self.random_view and num_views > 1:
            views = torch.randint(num_views, (len(rows),)).numpy()
        else:
            views = np.zeros(len(rows), dtype=np.int64)
        order = np.argsort(rows, kind='stable')  # sequential reads of a memmap
        features = np.empty((len(rows), self.features.shape[2]), self.features.dtype)
        features[order] = self.features[rows[order], views[order]]
        points = torch.from_numpy(self.lonlat[np.asarray(indexes)])
        stacked = torch.from_numpy(features)
        return [{'features': stacked[i], 'point': points[i]} for i in range(len(rows))]


def _checked_features(
    features: object, count: int, width: int | None, where: str
) -> NDArray[np.float32]:
    """An extractor's output as float32 numpy, if it is ``(count, F)``.

    Args:
        features: what the extractor returned for *count* images.
        count: the number of images of the batch.
        width: ``F`` of the batches before (None for the first batch).
        where: the samples, view and cache file, for the message.

    Returns:
        The ``(count, F)`` features.

    Raises:
        ValueError: if *features* is not a tensor of that shape.
    """
    expected = f'({count}, {"F" if width is None else width})'
    if not isinstance(features, Tensor):
        raise ValueError(
            f'the feature extractor returned a {type(features).__name__} for '
            f'{where}, expected a tensor of shape {expected}'
        )
    shape = tuple(features.shape)
    if len(shape) != 2 or shape[0] != count or width not in (None, shape[1]):
        raise ValueError(
            f'the feature extractor returned features of shape {shape} for '
            f'{where}, expected {expected}: one row of pooled features per '
            'image, as many features for every batch'
        )
    return cast(NDArray[np.float32], features.float().cpu().numpy())


def _finite_features(
    features: NDArray[np.float32],
    dtype: type[np.floating[Any]],
    start: int,
    view: int,
    path: Path,
    files: Sequence[str] | None,
) -> NDArray[Any]:
    """*features* in the storage *dtype*, if every one of them is finite there.

    Args:
        features: ``(B, F)`` float32 features of samples ``start`` onwards.
        dtype: the storage dtype.
        start: dataset index of the first row.
        view: the view they are of.
        path: the cache file, for the message.
        files: the samples' file names, for the message (None: unknown).

    Returns:
        The features as *dtype*.

    Raises:
        ValueError: naming the first sample with a NaN or infinite feature,
            or with one beyond the range of *dtype*.
    """
    with np.errstate(over='ignore', invalid='ignore'):
        stored = features.astype(dtype)
    finite = np.isfinite(stored)
    if finite.all():
        return stored
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    index = start + row
    sample = f'sample {index}' + (
        f' ({files[index]})' if files is not None and index < len(files) else ''
    )
    value = float(features[row, column])
    where = f'feature {column} of {sample}, view {view}, while caching {path}'
    if np.isfinite(value):
        name = np.dtype(dtype).name
        raise ValueError(
            f'{where}: {value:g} does not fit in {name} (largest '
            f'{float(np.finfo(dtype).max):g}); cache the features as float32 '
            "(cache_dtype='float32')"
        )
    raise ValueError(
        f'{where}: the feature extractor returned {value}, expected finite '
        'features (check this image and the extractor)'
    )


@torch.no_grad()
def build_feature_cache(
    dataset: Dataset[dict[str, Tensor]],
    extractor: Callable[[Tensor], Tensor],
    path: str | os.PathLike[str],
    *,
    preprocess: _BatchTransform | None = None,
    views: int = 1,
    dtype: Literal['float16', 'float32'] = 'float16',
    batch_size: int = 256,
    num_workers: int = 0,
    device: torch.device | str = 'cpu',
) -> Path:
    """Run a frozen feature extractor over a dataset and store the features.

    Writes an ``(N, views, F)`` ``.npy`` file to a temporary name, then renames
    it to *path*. The temporaries of an earlier build of *path* that was
    killed are removed first. An ``nn.Module`` extractor runs in eval mode
    (no dropout, batch norm with its running statistics, which stay as they
    are), and every submodule gets its own mode back afterwards.

    Args:
        dataset: samples with ``image`` (in dataset order).
        extractor: maps a ``(B, C, H, W)`` batch on *device* to ``(B, F)``
            (an ``nn.Module`` is run in eval mode).
        path: destination ``.npy`` file.
        preprocess: batch transform applied on *device* before the views (for
            S2-100K: /10000, B10 and centre crop). It gets float32 images:
            integer ones (the stored uint16 values) are converted on *device*
            first, as :class:`S2100KDataModule` does before its augmentations.
        views: number of dihedral views (1-8) per image, see
            :func:`dihedral_view`.
        dtype: storage dtype.
        batch_size: images per extractor call.
        num_workers: DataLoader workers.
        device: where to run *extractor*.

    Returns:
        The path written.

    Raises:
        ValueError: if *views* is not an integer in 1-8, *dtype* neither
            ``'float16'`` nor ``'float32'``, *batch_size* not a positive
            integer, if *extractor* returns
            anything but a ``(B, F)`` tensor of one row per image (with the
            same ``F`` for every batch), or a feature that is not finite in
            *dtype* (NaN or infinite, or beyond float16's range).
    """
    views = check_int('views', views, minimum=1, maximum=8)
    np_dtype = _check_dtype('dtype', dtype)
    batch_size = check_int('batch_size', batch_size, minimum=1)
    path = Path(path)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    total = len(dataset)  # type: ignore[arg-type]
    files = _sample_files(dataset)

    def write(tmp: str) -> None:
        out: Any = None
        start = 0
        for batch in loader:
            batch = {
                k: v.to(device) if isinstance(v, Tensor) else v
                for k, v in batch.items()
            }
            batch = _float_images(batch)
            if preprocess is not None:
                batch = preprocess(batch)
            image = batch['image']
            for view in range(views):
                features = _checked_features(
                    extractor(dihedral_view(image, view)),
                    len(image),
                    None if out is None else out.shape[2],
                    f'samples {start} to {start + len(image) - 1} (view {view}) '
                    f'of the cache {path}',
                )
                stored = _finite_features(features, np_dtype, start, view, path, files)
                if out is None:
                    out = np.lib.format.open_memmap(
                        tmp,
                        mode='w+',
                        dtype=np_dtype,
                        shape=(total, views, features.shape[1]),
                    )
                out[start : start + len(stored), view] = stored
            start += len(image)
        if out is None:
            raise ValueError('cannot cache the features of an empty dataset')
        out.flush()
        del out

    remove_stale_temporaries(path)
    if isinstance(extractor, nn.Module):
        with evaluating(extractor):
            atomic_write(path, write)
    else:
        atomic_write(path, write)
    return path


def _on_device(transform: Any, device: torch.device) -> _BatchTransform:
    """The datamodule's batch *transform*, moved to *device* if it is a module.

    A plain function (a user's own ``aug``) runs where its batch is.
    """
    if isinstance(transform, nn.Module):
        return cast(_BatchTransform, transform.to(device))
    return cast(_BatchTransform, transform)


def _write_text(path: str, text: str) -> None:
    Path(path).write_text(text, encoding='utf-8')


def _hash_tensor(digest: 'hashlib._Hash', tensor: Tensor) -> None:
    """Add a tensor's shape, dtype and bytes to *digest*."""
    data = tensor.detach().cpu().contiguous()
    digest.update(str((tuple(data.shape), str(data.dtype))).encode())
    digest.update(
        data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b''
    )


def _hash_update(digest: 'hashlib._Hash', module: nn.Module) -> None:
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        _hash_tensor(digest, tensor)


def _qualified_name(kind: Any) -> str:
    """``module.QualifiedName`` of a class or function."""
    return f'{kind.__module__}.{kind.__qualname__}'


def _is_plain(value: object) -> bool:
    """Whether *value* is a number, string, bool or None, or a tuple of them."""
    if isinstance(value, tuple):
        return all(_is_plain(item) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _module_structure(module: nn.Module) -> str:
    """What a module computes besides its weights, as text.

    Its ``repr`` (the layers and their settings) and, for every submodule,
    its qualified type name and its public attributes of plain values (for
    example a pooling mode that the ``repr`` omits), but not its mode
    (``training``). Two modules with the same weights but other layers or
    settings (average or max pooling) differ here.

    Args:
        module: the feature extractor.

    Returns:
        One line per submodule after the ``repr``.
    """
    lines = [repr(module)]
    for name, part in module.named_modules():
        kind = type(part)
        settings = {
            key: value
            for key, value in sorted(vars(part).items())
            if not key.startswith('_') and key != 'training' and _is_plain(value)
        }
        lines.append(f'{name}\t{_qualified_name(kind)}\t{settings!r}')
    return '\n'.join(lines)


def _content_digest(path: Path) -> str:
    """SHA-256 of a small file's bytes, or ``'absent'`` if there is none."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return 'absent'


def _resolved_root(dataset: object) -> Path | None:
    """The dataset's ``root`` as an absolute path (None if it has none)."""
    root = getattr(dataset, 'root', None)
    return Path(root).resolve() if isinstance(root, str | os.PathLike) else None


def _sample_files(dataset: object) -> list[str] | None:
    """The image file names of a dataset's samples, in order (None: unknown).

    ``files`` (this package's S2100K), else the ``fn`` column of a ``df`` or
    ``index`` frame (TorchGeo's ``S2100k``).
    """
    files = getattr(dataset, 'files', None)
    if files is not None:
        return [str(fn) for fn in files]
    for name in ('df', 'index'):
        frame = getattr(dataset, name, None)
        columns = getattr(frame, 'columns', None)
        if frame is not None and columns is not None and 'fn' in columns:
            return [str(fn) for fn in frame['fn']]
    return None


def _dataset_fingerprint(dataset: object) -> str:
    """Hash of what identifies a dataset's images, without reading any pixel.

    This package's :class:`~torchgeo_satclip.datasets.S2100K` is keyed by its
    resolved root, its layout, the content of ``index.csv`` (and of
    ``dates.csv`` when it reads by date), the file names of its samples in
    order and what the images are read from: for the packed layout the
    content of ``manifest.json`` (it pins the size and SHA-256 of every shard
    and of ``files.csv``, which every open of the layout checks against the
    shards cheaply), for GeoTIFFs the size and modification time
    (``st_size``, ``st_mtime_ns``: one ``os.stat`` per file) of every image
    it reads. Any other dataset (TorchGeo's ``S2100k``) is keyed by what it
    has: its resolved ``root`` and ``root/index.csv``, the file names of its
    samples (``files``, or the ``fn`` column of a ``df`` or ``index`` frame)
    with the size and modification time of ``root/images/<fn>``, or, without
    file names, its number of samples only.

    Args:
        dataset: the dataset whose images are cached.

    Returns:
        A hexadecimal digest.
    """
    digest = hashlib.sha256()

    def add(*fields: object) -> None:
        digest.update(('\t'.join(map(str, fields)) + '\n').encode())

    home = _resolved_root(dataset)
    add('root', home)
    names = _sample_files(dataset)
    read = list(names or [])
    images: Path | None = None
    if isinstance(dataset, S2100K):
        add('layout', dataset.layout)
        add('index.csv', _content_digest(dataset.root / 'index.csv'))
        if dataset.dated is not None:
            add(DATES_FILE, _content_digest(dataset.root / DATES_FILE))
            read += [fn for point in dataset.dated for _, fn in point]
        if dataset.packed is not None:
            manifest = dataset.packed.directory / 'manifest.json'
            add('manifest.json', _content_digest(manifest))
        else:
            images = dataset.images_dir
    elif home is not None:
        add('index.csv', _content_digest(home / 'index.csv'))
        images = home / 'images'
    if names is None:
        add('samples', len(cast(Sized, dataset)))
        return digest.hexdigest()
    if images is None:
        for fn in read:
            add('file', fn)
        return digest.hexdigest()
    base = os.fspath(images)
    lines = []
    for fn in read:
        try:
            stat = os.stat(os.path.join(base, fn))
        except FileNotFoundError:
            lines.append(f'file\t{fn}\tabsent\n')
        else:
            lines.append(f'file\t{fn}\t{stat.st_size}\t{stat.st_mtime_ns}\n')
    digest.update(''.join(lines).encode())
    return digest.hexdigest()


def _type_names(transform: object) -> list[str]:
    """Qualified type names of a transform and, for a module, its submodules."""
    parts = transform.modules() if isinstance(transform, nn.Module) else [transform]
    names = []
    for part in parts:
        kind = part if callable(part) and hasattr(part, '__qualname__') else type(part)
        names.append(_qualified_name(kind))
    return names


def _preprocess_fingerprint(dataset: Any, preprocess: Any) -> str:
    """Hash of what the dataset's transforms and *preprocess* make of sample 0.

    The images the extractor sees depend on the dataset's own ``transforms``
    and on the datamodule's ``aug`` (which a user or a subclass may replace,
    for example to normalise the bands), neither of which can be hashed by
    its settings in general. So sample 0 is read, collated as the cache build
    collates it and preprocessed on the CPU under a fixed seed (a copy of
    *preprocess*, wherever the original lives), and the resulting image is
    hashed, with the type names of both transforms.

    Args:
        dataset: the dataset whose images are cached.
        preprocess: the batch transform applied before the extractor.

    Returns:
        A hexadecimal digest.
    """
    digest = hashlib.sha256()
    transforms = getattr(dataset, 'transforms', None)
    for name, transform in (('transforms', transforms), ('aug', preprocess)):
        names = [] if transform is None else _type_names(transform)
        digest.update(f'{name}:{names}\n'.encode())
    if len(dataset) == 0:
        return digest.hexdigest()
    if isinstance(preprocess, nn.Module):
        preprocess = copy.deepcopy(preprocess).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        batch = _float_images(default_collate([dataset[0]]))
        if preprocess is not None:
            batch = preprocess(batch)
    image = batch.get('image') if isinstance(batch, dict) else None
    if isinstance(image, Tensor):
        _hash_tensor(digest, image)
    return digest.hexdigest()


_T = TypeVar('_T')


def _from_rank_0(strategy: Any, rank: int, compute: Callable[[], _T], what: str) -> _T:
    """*compute* run on global rank 0, its result (or failure) sent to every rank.

    The other ranks wait in a broadcast for rank 0's answer, so a failure of
    rank 0 is broadcast too, instead of leaving them waiting for a broadcast
    or barrier that rank 0 never reaches: rank 0 raises its error, and every
    other rank a ``RuntimeError`` naming it.

    Args:
        strategy: the trainer's strategy (``broadcast``).
        rank: this process's global rank.
        compute: what rank 0 runs.
        what: what *compute* does, for the message.

    Returns:
        Rank 0's result of *compute*, on every rank.

    Raises:
        RuntimeError: on a rank other than 0, if *compute* failed on rank 0.
    """
    result: _T | None = None
    failure: Exception | None = None
    if rank == 0:
        try:
            result = compute()
        except Exception as error:
            failure = error
    message = None if failure is None else f'{type(failure).__name__}: {failure}'
    result, message = strategy.broadcast((result, message), src=0)
    if failure is not None:
        raise failure
    if message is not None:
        raise RuntimeError(
            f'global rank 0 failed to {what}, so global rank {rank} stops too: '
            f'{message}'
        )
    return cast(_T, result)


class CachedFeatureDataModule(S2100KDataModule):
    """S2-100K as cached frozen-backbone features (fast SatCLIP pretraining).

    The features come from an explicit *feature_extractor*: given here, set
    with :meth:`set_feature_extractor`, or (when neither is done) set by a
    :class:`~torchgeo_satclip.tasks.SatCLIPTask` with ``freeze_backbone``
    true at its ``setup``, which hands over its backbone. The extractor runs
    once per image and view (later runs reuse the cache), then batches are
    ``{'features': (B, F), 'point': (B, 2)}``. Validation uses view 0 (the
    centre crop); training draws one of ``feature_views`` views per sample and
    jitters the points as :class:`S2100KDataModule` does. A batch holds one view
    per sample: :attr:`views` (S2100KDataModule's views per sample) is 1.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split_pct: float = 0.1,
        seed: int = 0,
        crop_size: int | None = 224,
        insert_b10: bool = True,
        jitter: float = 0.01,
        symmetric_jitter: bool = False,
        cache_dir: str | None = None,
        feature_views: int = 1,
        cache_dtype: Literal['float16', 'float32'] = 'float16',
        in_memory: bool = True,
        feature_batch_size: int = 256,
        feature_extractor: nn.Module | Callable[[Tensor], Tensor] | None = None,
        extractor_key: str | None = None,
        dataset: Literal['torchgeo_satclip', 'torchgeo'] = 'torchgeo_satclip',
        views: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize a new CachedFeatureDataModule instance.

        Args:
            batch_size: size of each mini-batch.
            num_workers: workers for loading batches (and images while caching).
            val_split_pct: fraction of samples for validation.
            seed: seed of the split.
            crop_size: centre crop of the cached images (None: whole image).
            insert_b10: insert an all-zero B10 (13-band SSL4EO layout).
            jitter: maximum point jitter in degrees in training.
            symmetric_jitter: jitter by U(-jitter, jitter).
            cache_dir: directory of the feature caches (default:
                ``<root>/feature_cache``).
            feature_views: dihedral views cached per image, 1-8 (8: all
                flips and rotations); training draws one per sample.
            cache_dtype: storage dtype of the features.
            in_memory: load the cache into memory (else memory-map it).
            feature_batch_size: images per extractor call while caching.
            feature_extractor: maps ``(B, C, H, W)`` preprocessed images (on
                the trainer's device, or the CPU without a trainer) to
                ``(B, F)`` features (see :data:`FeatureExtractor`); None: set
                later with :meth:`set_feature_extractor` (a SatCLIPTask with a
                frozen backbone does so at ``setup``).
            extractor_key: identifies the extractor in the cache key; required
                for a callable that is not an ``nn.Module`` (change it whenever
                the callable's output changes). A module is keyed by its weights
                and structure (and this key, if given).
            dataset: ``'torchgeo_satclip'`` or ``'torchgeo'`` (see
                :class:`S2100KDataModule`).
            views: deprecated name of *feature_views* (None: not given), with
                a ``DeprecationWarning``: S2100KDataModule's *views* are the
                views per sample of a batch, which here is always 1.
            **kwargs: passed to the dataset class (``root``, ...).

        Raises:
            ValueError: on an invalid argument (also a dataset ``mode`` other
                than ``'both'`` or ``dates`` other than ``'index'``: the cache
                holds one image's features per sample), or *views* and
                *feature_views* both given, with different values.
        """
        feature_views = check_int('feature_views', feature_views, minimum=1, maximum=8)
        if views is not None:
            views = check_int('views', views, minimum=1, maximum=8)
            if feature_views not in (1, views):
                raise ValueError(
                    'views (deprecated) and feature_views are both given, with '
                    f'different values: views (deprecated) is {views!r} and '
                    f'feature_views is {feature_views!r}: give one of them (as '
                    'feature_views)'
                )
            warnings.warn(
                'CachedFeatureDataModule: views is deprecated; use feature_views '
                '(views is the number of views per sample of S2100KDataModule)',
                DeprecationWarning,
                stacklevel=2,
            )
            feature_views = views
        _check_dtype('cache_dtype', cache_dtype)
        in_memory = check_flag('in_memory', in_memory)
        feature_batch_size = check_int(
            'feature_batch_size', feature_batch_size, minimum=1
        )
        # The cache holds the features of one image per sample.
        if kwargs.get('mode', 'both') != 'both':
            raise ValueError(
                f"CachedFeatureDataModule caches images: mode must be 'both', not "
                f'{kwargs["mode"]!r}'
            )
        if kwargs.get('dates', 'index') != 'index':
            raise ValueError(
                'CachedFeatureDataModule caches one image per sample: dates must be '
                f"'index', not {kwargs['dates']!r} (use S2100KDataModule for "
                'several dates of a place)'
            )
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            val_split_pct=val_split_pct,
            seed=seed,
            crop_size=crop_size,
            insert_b10=insert_b10,
            flips=False,
            blur=False,
            jitter=jitter,
            symmetric_jitter=symmetric_jitter,
            dataset=dataset,
            **kwargs,
        )
        self.crop_size = crop_size
        self.insert_b10 = insert_b10
        self.cache_dir = cache_dir
        #: Dihedral views cached per image (training draws one per sample).
        self.feature_views = feature_views
        self.cache_dtype: Literal['float16', 'float32'] = cache_dtype
        self.in_memory = in_memory
        self.feature_batch_size = feature_batch_size
        #: Path of the cache in use, once the features are loaded.
        self.cache_path: Path | None = None
        self._extractor: FeatureExtractor | None = None
        self._extractor_key: str | None = None
        #: Sample indices of the splits set up so far (None: every sample).
        self._splits: dict[str, Sequence[int] | None] = {}
        self._features: NDArray[Any] | None = None
        if feature_extractor is not None:
            self.set_feature_extractor(feature_extractor, extractor_key)
        elif extractor_key is not None:
            raise ValueError('extractor_key needs a feature_extractor')

    @property
    def feature_extractor(self) -> FeatureExtractor | None:
        """The feature extractor, or None while none is set."""
        return self._extractor

    def set_feature_extractor(
        self, extractor: FeatureExtractor, key: str | None = None
    ) -> None:
        """Set what computes the cached features.

        If :meth:`setup` has already built the split, the cache is loaded (or
        built) now.

        Args:
            extractor: an ``nn.Module`` (run in eval mode on the trainer's
                device, keyed by its weights and structure) or a callable, both
                mapping ``(B, C, H, W)`` preprocessed images to ``(B, F)``.
            key: identifies the extractor in the cache key; required for a
                callable that is not an ``nn.Module``.

        Raises:
            TypeError: if *extractor* is not callable.
            ValueError: if a callable that is not a module comes without *key*.
        """
        if not callable(extractor):
            raise TypeError(
                f'a feature extractor must be callable, not {type(extractor).__name__}'
            )
        if not isinstance(extractor, nn.Module) and key is None:
            raise ValueError(
                'a feature extractor that is not an nn.Module needs a key '
                '(extractor_key=): the cache is keyed by it instead of by weights'
            )
        self._extractor = extractor
        self._extractor_key = key
        self._features = None
        self.cache_path = None
        if self._splits:
            self._use_cache()

    def cache_key(self) -> str:
        """Hash of everything the cached features depend on.

        The dataset part covers its identity and content without reading a
        pixel: for S2-100K, the resolved root, ``index.csv``, the file names
        in order and either the size and modification time of every GeoTIFF
        read (one ``os.stat`` per file) or the packed layout's
        ``manifest.json`` (which pins every shard's checksum). So images
        rewritten under the same names, or another dataset in the same
        ``cache_dir``, get another key. A dataset of another class is keyed
        by its resolved ``root`` and ``root/index.csv``, its samples' file
        names with the size and modification time of ``root/images/<fn>``
        (TorchGeo's layout), or without file names by its number of samples
        only (give it a ``cache_dir`` of its own).

        The preprocessing is keyed by its settings and by what it does: the
        dataset's ``transforms`` and the datamodule's ``aug`` (the batch
        transform run before the extractor, which a subclass or a user may
        replace, for example to normalise the bands) are keyed by their type
        names and by the image they make of sample 0 (read once more,
        preprocessed on the CPU under a fixed seed). So changing either
        builds a new cache.

        Returns:
            A hexadecimal digest of the extractor (a module's weights, its
            ``repr`` and the type names and plain settings of its submodules,
            and its key), the preprocessing, the views, the storage dtype and
            the dataset.

        Raises:
            RuntimeError: if no feature extractor is set, or before
                :meth:`setup` has built the dataset.
        """
        extractor = self._require_extractor()
        if self.dataset is None:
            raise RuntimeError('setup() must build the dataset first')
        digest = hashlib.sha256()
        if isinstance(extractor, nn.Module):
            digest.update(_module_structure(extractor).encode())
            _hash_update(digest, extractor)
        if self._extractor_key is not None:
            digest.update(f'key:{self._extractor_key}'.encode())
        settings = {
            'crop_size': self.crop_size,
            'insert_b10': self.insert_b10,
            'views': self.feature_views,
            'dtype': self.cache_dtype,
            'dataset': type(self.dataset).__name__,
            'bands': list(getattr(self.dataset, 'bands', [])),
        }
        digest.update(json.dumps(settings, sort_keys=True).encode())
        digest.update(f'data:{_dataset_fingerprint(self.dataset)}'.encode())
        preprocessed = _preprocess_fingerprint(self.dataset, self.aug)
        digest.update(f'preprocess:{preprocessed}'.encode())
        return digest.hexdigest()

    def _require_extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            raise RuntimeError(
                'CachedFeatureDataModule has no feature extractor: pass '
                'feature_extractor=, call set_feature_extractor(), or fit a '
                'SatCLIPTask with freeze_backbone: true (it sets its backbone at setup)'
            )
        return self._extractor

    def _cache_root(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        return Path(self.kwargs.get('root', 'data')) / 'feature_cache'

    def _load_or_build(self) -> NDArray[Any]:
        extractor = self._require_extractor()
        dataset = self.dataset
        if dataset is None:
            raise RuntimeError('setup() must build the dataset first')
        trainer = getattr(self, 'trainer', None)
        rank = int(getattr(trainer, 'global_rank', 0)) if trainer is not None else 0
        strategy = (
            trainer.strategy if trainer is not None and trainer.world_size > 1 else None
        )
        if strategy is None:
            key = self.cache_key()
        else:
            # Rank 0 builds the one cache every rank reads, so its key names
            # it (an unseeded frozen backbone can differ from rank to rank;
            # DDP gives every rank rank 0's weights when it wraps the model);
            # the other ranks need not hash weights and read a sample for it.
            key = _from_rank_0(
                strategy, rank, self.cache_key, 'compute the feature cache key'
            )
        path = self._cache_root() / f'features-{key[:24]}.npy'
        meta_path = path.with_suffix('.json')

        def device() -> torch.device:
            if trainer is None:
                return torch.device('cpu')
            return cast(torch.device, trainer.strategy.root_device)

        def build() -> bool:
            """Build the cache and its metadata where missing (rank 0 only)."""
            for target in (path, meta_path):  # what a killed build left
                remove_stale_temporaries(target)
            built = not path.exists()
            if built:
                self._build(extractor, dataset, path, device())
            if built or not meta_path.exists():
                root = _resolved_root(dataset)
                meta = {
                    'key': key,
                    'root': None if root is None else str(root),
                    'samples': len(dataset),  # type: ignore[arg-type]
                    'views': self.feature_views,
                    'dtype': self.cache_dtype,
                    'extractor': self._extractor_key or type(extractor).__name__,
                }
                atomic_write(
                    meta_path,
                    lambda tmp: _write_text(tmp, json.dumps(meta, indent=1)),
                )
            return built

        built = False
        if strategy is None:
            built = build()
        else:
            _from_rank_0(strategy, rank, build, f'build the feature cache {path}')
            strategy.barrier('satclip_feature_cache')
            if not path.exists():
                raise FileNotFoundError(
                    f'feature cache {path}, built by global rank 0, is not there '
                    f'for global rank {rank}: put cache_dir on storage that every '
                    'node of the run shares'
                )
        self.cache_path = path
        features: NDArray[Any] = np.load(
            path, mmap_mode=None if self.in_memory else 'r'
        )
        samples = len(dataset)  # type: ignore[arg-type]
        if (
            features.ndim != 3
            or features.shape[0] != samples
            or features.shape[1] != self.feature_views
        ):
            count = self.feature_views
            views = f'{count} view' + ('s' if count != 1 else '')
            raise RuntimeError(
                f'feature cache {path} has shape {tuple(features.shape)}, expected '
                f'({samples}, {count}, F) ({samples} samples, {views}): '
                'delete it to rebuild it'
            )
        if (
            not built
            and strategy is None
            and isinstance(extractor, nn.Module)
            and self._extractor_key is None
        ):
            self._check_reused(extractor, dataset, features, path, device())
        return features

    def _check_reused(
        self,
        extractor: nn.Module,
        dataset: Dataset[dict[str, Tensor]],
        features: NDArray[Any],
        path: Path,
        device: torch.device,
    ) -> None:
        """Refuse a cache whose sample 0 the extractor would not compute.

        The key sees a module's weights, layers and plain settings, not what
        it holds otherwise (a function in an attribute, a tensor that is not
        a buffer): two extractors that differ only there share a key. So
        before a cache is reused (by one process; under DDP the ranks' copies
        of an unseeded backbone may differ until the model is wrapped), the
        extractor's features of sample 0 (view 0, preprocessed as the build
        did) are compared with the cached ones, to 1 % of their largest
        magnitude (float16 storage, TF32 or another device).

        Raises:
            RuntimeError: naming the cache and the difference, if they differ.
        """
        batch = {
            k: v.to(device) if isinstance(v, Tensor) else v
            for k, v in default_collate([dataset[0]]).items()
        }
        with evaluating(extractor, device), torch.no_grad():
            batch = _on_device(self.aug, device)(_float_images(batch))
            computed = extractor(dihedral_view(batch['image'], 0))
        computed = computed.detach().float().cpu().reshape(-1)
        stored = torch.from_numpy(np.asarray(features[0, 0], dtype=np.float32))
        scale = float(stored.abs().max()) if stored.numel() else 0.0
        difference = (
            float((computed - stored).abs().max())
            if computed.shape == stored.shape
            else math.inf
        )
        if difference > 0.01 * scale + 1e-6:
            raise RuntimeError(
                f'feature cache {path} holds other features of sample 0 than the '
                f'feature extractor computes (largest difference {difference:.3g}, '
                f'features up to {scale:.3g}): an extractor with the same weights, '
                'layers and plain settings but another behaviour (a function or a '
                'tensor held in an attribute) built it; pass extractor_key= to '
                'give this extractor its own cache, or delete the file'
            )

    def _build(
        self,
        extractor: FeatureExtractor,
        dataset: Dataset[dict[str, Tensor]],
        path: Path,
        device: torch.device,
    ) -> None:
        """Run *extractor* over *dataset* (a module in eval mode on *device*)."""
        with (
            evaluating(extractor, device)
            if isinstance(extractor, nn.Module)
            else nullcontext()
        ):
            build_feature_cache(
                dataset,
                extractor,
                path,
                preprocess=_on_device(self.aug, device),
                views=self.feature_views,
                dtype=self.cache_dtype,
                batch_size=self.feature_batch_size,
                num_workers=self.num_workers,
                device=device,
            )

    def _use_cache(self) -> None:
        """Load or build the cache and serve the splits set up from it."""
        self._features = features = self._load_or_build()
        lonlat = _dataset_lonlat(self.dataset).numpy()
        if 'train' in self._splits:
            self.train_dataset = CachedFeatureDataset(
                features, lonlat, self._splits['train'], random_view=True
            )
        if 'val' in self._splits:
            val = self._splits['val']
            self.val_dataset = (
                CachedFeatureDataset(features, lonlat, val) if val else None
            )
        if 'predict' in self._splits:
            self.predict_dataset = CachedFeatureDataset(features, lonlat)

    def setup(self, stage: str) -> None:
        """Build the split (as S2100KDataModule), then the cache if possible.

        Without a feature extractor the split serves images until one is set
        (:meth:`set_feature_extractor`); the dataloaders need one.

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.
        """
        super().setup(stage)
        if stage in ('fit', 'validate'):
            train = self.train_dataset
            val = self.val_dataset
            self._splits['train'] = (
                list(train.indices) if isinstance(train, Subset) else None
            )
            self._splits['val'] = list(val.indices) if isinstance(val, Subset) else []
        if stage == 'predict':
            self._splits['predict'] = None
        if self._extractor is not None:
            self._use_cache()

    def _require_cache(self) -> None:
        self._require_extractor()
        if self._features is None:
            raise RuntimeError('call setup() before asking for a dataloader')

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Batches of cached training features (a random view each).

        Returns:
            The training dataloader.

        Raises:
            RuntimeError: if no feature extractor is set.
        """
        self._require_cache()
        return super().train_dataloader()  # type: ignore[no-any-return]

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Batches of cached validation features (view 0).

        Returns:
            The validation dataloader; an empty list when the validation split
            is empty (``val_split_pct=0``): Lightning then validates nothing.

        Raises:
            RuntimeError: if no feature extractor is set.
        """
        self._require_cache()
        return super().val_dataloader()  # type: ignore[no-any-return]

    def predict_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Batches of cached features of every sample (view 0).

        Returns:
            The prediction dataloader.

        Raises:
            RuntimeError: if no feature extractor is set.
        """
        self._require_cache()
        return super().predict_dataloader()  # type: ignore[no-any-return]
