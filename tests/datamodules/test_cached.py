import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import kornia.augmentation as K
import numpy as np
import pytest
import torch

from torchgeo_satclip.datamodules import (
    CachedFeatureDataModule,
    CachedFeatureDataset,
    S2100KDataModule,
    build_feature_cache,
    dihedral_view,
)
from torchgeo_satclip.datasets import pack_s2_100k
from torchgeo_satclip.datasets.demo import make_demo_dataset
from torchgeo_satclip.tasks import SatCLIPTask

from ..processes import dead_pid

pytestmark = pytest.mark.usefixtures('tiny_timm')

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'


def frozen_task(**kwargs: Any) -> SatCLIPTask:
    torch.manual_seed(0)
    return SatCLIPTask(
        freeze_backbone=True,
        embed_dim=8,
        legendre_polys=4,
        capacity=16,
        location_dropout=0.0,
        **kwargs,
    )


def cache_args(tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        'batch_size': 3,
        'crop_size': None,
        'jitter': 0.0,
        'cache_dir': str(tmp_path / 'cache'),
        'cache_dtype': 'float32',
        'root': str(DATA),
        'patch_size': 32,
    }
    args.update(kwargs)
    return args


def cached(tmp_path: Path, task: SatCLIPTask, **kwargs: Any) -> CachedFeatureDataModule:
    return CachedFeatureDataModule(
        feature_extractor=task.feature_extractor(), **cache_args(tmp_path, **kwargs)
    )


@pytest.mark.parametrize(('dtype', 'tol'), [('float32', 1e-6), ('float16', 2e-3)])
def test_cached_and_uncached_loss_agree(tmp_path: Path, dtype: str, tol: float) -> None:
    task = frozen_task()
    task.train()  # training mode: the frozen backbone still runs in eval mode
    uncached = S2100KDataModule(
        batch_size=3,
        crop_size=None,
        flips=False,
        blur=False,
        jitter=0.0,
        root=str(DATA),
        patch_size=32,
    )
    uncached.setup('fit')
    dm = cached(tmp_path, task, cache_dtype=dtype)
    dm.setup('fit')
    assert isinstance(dm.train_dataset, CachedFeatureDataset)
    indices = [0, 1, 2]
    images = [uncached.train_dataset[i] for i in indices]  # type: ignore[index]
    batch = {
        'image': torch.stack([s['image'] for s in images]),
        'point': torch.stack([s['point'] for s in images]),
    }
    assert uncached.train_aug is not None
    batch = uncached.train_aug(batch)
    features = dm.train_dataset.__getitems__(indices)
    feature_batch = {
        'features': torch.stack([s['features'] for s in features]),
        'point': torch.stack([s['point'] for s in features]),
    }
    assert dm.train_aug is not None
    feature_batch = dm.train_aug(feature_batch)
    torch.testing.assert_close(feature_batch['point'], batch['point'])
    torch.manual_seed(1)
    loss_images, _ = task.compute_loss(batch)
    torch.manual_seed(1)
    loss_features, _ = task.compute_loss(feature_batch)
    assert loss_features.item() == pytest.approx(loss_images.item(), abs=tol)
    # and the gradients reach the same parameters
    loss_features.backward()
    assert task.projection.weight.grad is not None
    assert all(p.grad is None for p in task.model.parameters())


def test_cache_reused_and_keyed_by_weights(tmp_path: Path) -> None:
    task = frozen_task()
    dm = cached(tmp_path, task)
    dm.setup('fit')
    path = dm.cache_path
    assert path is not None
    assert path.exists()
    assert path.with_suffix('.json').exists()
    mtime = path.stat().st_mtime_ns
    again = cached(tmp_path, task)
    again.setup('fit')
    assert again.cache_path == path
    assert path.stat().st_mtime_ns == mtime  # not rebuilt
    with torch.no_grad():
        next(task.model.parameters()).add_(1.0)
    other = cached(tmp_path, task)
    other.setup('fit')
    assert other.cache_path != path
    assert not list((tmp_path / 'cache').glob('.*.tmp'))  # no leftovers


def test_views_and_shapes(tmp_path: Path) -> None:
    task = frozen_task()
    dm = cached(tmp_path, task, feature_views=8, cache_dtype='float16')
    dm.setup('fit')
    features = np.load(dm.cache_path)  # type: ignore[arg-type]
    assert features.dtype == np.float16
    assert features.shape == (8, 8, 4)  # samples, views, backbone features
    # view 0 is the plain image, the others its flips and rotations
    assert not np.allclose(features[:, 0], features[:, 1])
    dm.setup('predict')
    sample = dm.predict_dataset[0]  # type: ignore[index]
    np.testing.assert_allclose(sample['features'].numpy(), features[0, 0])
    train = dm.train_dataset
    assert isinstance(train, CachedFeatureDataset)
    assert train.lonlat.shape == (len(train), 2)
    batch = next(iter(dm.train_dataloader()))
    assert batch['features'].shape == (3, 4)
    assert batch['point'].shape == (3, 2)


def test_dihedral_views() -> None:
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = [dihedral_view(image, v) for v in range(8)]
    assert torch.equal(views[0], image)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    with pytest.raises(ValueError, match='view'):
        dihedral_view(image, 8)


def test_build_feature_cache_atomic(tmp_path: Path) -> None:
    class Boom(RuntimeError):
        pass

    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(4)]
    calls = 0

    def extractor(x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise Boom
        return x.mean(dim=(2, 3))

    path = tmp_path / 'f.npy'
    with pytest.raises(Boom):
        build_feature_cache(dataset, extractor, path, batch_size=2)  # type: ignore[arg-type]
    assert not path.exists()
    assert not list(tmp_path.iterdir())
    build_feature_cache(
        dataset,  # type: ignore[arg-type]
        lambda x: x.mean(dim=(2, 3)),
        path,
        batch_size=3,
        views=2,
        dtype='float32',
    )
    out = np.load(path)
    assert out.shape == (4, 2, 2)
    expected = torch.stack([d['image'].mean(dim=(1, 2)) for d in dataset]).numpy()
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)


def test_needs_frozen_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = SatCLIPTask(embed_dim=8, legendre_polys=4, capacity=16)
    with pytest.raises(ValueError, match='frozen backbone'):
        task.feature_extractor()
    dm = CachedFeatureDataModule(
        batch_size=2,
        crop_size=None,
        root=str(DATA),
        patch_size=32,
        cache_dir=str(tmp_path),
    )
    dm.setup('fit')  # the split, but no features without an extractor
    assert dm.feature_extractor is None
    with pytest.raises(RuntimeError, match='no feature extractor'):
        dm.train_dataloader()


def band_means(image: torch.Tensor) -> torch.Tensor:
    return image.mean(dim=(2, 3))


def test_plain_callable_extractor_without_lightning_module(tmp_path: Path) -> None:
    """The extractor is an explicit argument: a function works, no task needed."""
    args = cache_args(tmp_path)
    dm = CachedFeatureDataModule(
        feature_extractor=band_means, extractor_key='band-means', **args
    )
    assert dm.trainer is None
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert batch['features'].shape == (3, 13)  # 12 bands + the inserted B10
    features = np.load(dm.cache_path)  # type: ignore[arg-type]
    raw = dm.dataset[0]['image'][None]  # type: ignore[index]
    expected = band_means(dm.aug({'image': raw})['image'])[0]
    np.testing.assert_allclose(features[0, 0], expected.numpy(), rtol=1e-5)
    # the key is the cache's identity for a callable
    other = CachedFeatureDataModule(
        feature_extractor=band_means, extractor_key='band-means-v2', **args
    )
    other.setup('fit')
    assert other.cache_path != dm.cache_path
    with pytest.raises(ValueError, match='needs a key'):
        CachedFeatureDataModule(feature_extractor=band_means, **args)
    # set later: the split set up before gets its cache then
    late = CachedFeatureDataModule(**args)
    late.setup('fit')
    assert not isinstance(late.train_dataset, CachedFeatureDataset)
    late.set_feature_extractor(band_means, key='band-means')
    assert isinstance(late.train_dataset, CachedFeatureDataset)
    assert late.cache_path == dm.cache_path
    np.testing.assert_array_equal(
        late.train_points().numpy(), dm.train_points().numpy()
    )


def test_train_points_of_the_cached_split(tmp_path: Path) -> None:
    task = frozen_task()
    dm = cached(tmp_path, task)
    dm.setup('fit')
    plain = S2100KDataModule(
        batch_size=2, crop_size=None, root=str(DATA), patch_size=32
    )
    plain.setup('fit')
    torch.testing.assert_close(dm.train_points(), plain.train_points())
    assert dm.train_points().shape == (len(dm.train_dataset), 2)  # type: ignore[arg-type]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match='feature_views'):
        CachedFeatureDataModule(feature_views=9, root=str(DATA), patch_size=32)
    with pytest.raises(ValueError, match='cache_dtype'):
        CachedFeatureDataModule(cache_dtype='int8', root=str(DATA), patch_size=32)  # type: ignore[arg-type]


def test_no_validation_split_validates_nothing(tmp_path: Path) -> None:
    """val_split_pct=0: no validation, not image batches of the whole set."""
    dm = cached(tmp_path, frozen_task(), val_split_pct=0.0)
    dm.setup('fit')
    assert dm.val_dataset is None
    assert cast(object, dm.val_dataloader()) == []
    assert len(dm.train_dataloader().dataset) == 8  # type: ignore[arg-type]


class CountingBandMeans:
    """Band means of a batch, counting the images it has been given."""

    def __init__(self) -> None:
        self.images = 0

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        self.images += len(image)
        return band_means(image)


def keyed_cache(
    root: Path, cache_dir: Path, extractor: CountingBandMeans, patch_size: int = 32
) -> CachedFeatureDataModule:
    """A cached datamodule of every sample of *root*, set up for prediction."""
    dm = CachedFeatureDataModule(
        batch_size=2,
        crop_size=None,
        jitter=0.0,
        cache_dtype='float32',
        cache_dir=str(cache_dir),
        root=str(root),
        patch_size=patch_size,
        feature_extractor=extractor,
        extractor_key='band-means',
    )
    dm.setup('predict')
    return dm


def features_of_images_on_disk(dm: CachedFeatureDataModule) -> np.ndarray:
    """What the extractor gives for the dataset's images as they are now."""
    dataset: Any = dm.dataset
    images = torch.stack([dataset[i]['image'] for i in range(len(dataset))])
    return band_means(dm.aug({'image': images})['image']).numpy()


def copy_world(root: Path, shift: int = 0) -> Path:
    """The test dataset under *root*; ``patch_i.tif`` holds patch ``i + shift``."""
    (root / 'images').mkdir(parents=True)
    shutil.copyfile(DATA / 'index.csv', root / 'index.csv')
    for i in range(8):
        shutil.copyfile(
            DATA / 'images' / f'patch_{(i + shift) % 8}.tif',
            root / 'images' / f'patch_{i}.tif',
        )
    return root


def test_cache_of_a_world_rewritten_under_the_same_names_is_rebuilt(
    tmp_path: Path,
) -> None:
    """A demo world made again in place (new images, same names) is cached anew."""
    root = tmp_path / 'world'
    extractor = CountingBandMeans()
    make_demo_dataset(root, num_patches=8, size=16, seed=0, progress=False)
    first = keyed_cache(root, tmp_path / 'cache', extractor, patch_size=16)
    assert extractor.images == 8
    same = keyed_cache(root, tmp_path / 'cache', extractor, patch_size=16)
    assert same.cache_path == first.cache_path
    assert extractor.images == 8  # the unchanged world reuses its cache
    make_demo_dataset(
        root, num_patches=8, size=16, seed=1, overwrite=True, progress=False
    )
    assert sorted(os.listdir(root / 'images')) == [f'patch_{i}.tif' for i in range(8)]
    rewritten = keyed_cache(root, tmp_path / 'cache', extractor, patch_size=16)
    assert rewritten.cache_path != first.cache_path
    assert extractor.images == 16
    np.testing.assert_allclose(
        np.asarray(rewritten._features)[:, 0],
        features_of_images_on_disk(rewritten),
        rtol=1e-6,
    )


def test_cache_rebuilt_when_an_image_is_replaced_in_place(tmp_path: Path) -> None:
    """Same index.csv, same names: a GeoTIFF replaced is seen by its stat."""
    root = copy_world(tmp_path / 'world')
    extractor = CountingBandMeans()
    before = keyed_cache(root, tmp_path / 'cache', extractor)
    assert extractor.images == 8
    keyed_cache(root, tmp_path / 'cache', extractor)
    assert extractor.images == 8
    shutil.copyfile(DATA / 'images' / 'patch_1.tif', root / 'images' / 'patch_0.tif')
    after = keyed_cache(root, tmp_path / 'cache', extractor)
    assert after.cache_path != before.cache_path
    assert extractor.images == 16
    features = np.asarray(after._features)[:, 0]
    np.testing.assert_allclose(features, features_of_images_on_disk(after), rtol=1e-6)
    np.testing.assert_allclose(features[0], features[1], rtol=1e-6)


def test_two_datasets_sharing_a_cache_dir_get_their_own_caches(
    tmp_path: Path,
) -> None:
    """Two roots with the same index.csv and names, one cache_dir, two caches."""
    cache_dir = tmp_path / 'caches'
    extractor = CountingBandMeans()
    one = keyed_cache(copy_world(tmp_path / 'a'), cache_dir, extractor)
    other = keyed_cache(copy_world(tmp_path / 'b', shift=3), cache_dir, extractor)
    assert one.cache_path != other.cache_path
    assert extractor.images == 16
    for dm in (one, other):
        np.testing.assert_allclose(
            np.asarray(dm._features)[:, 0], features_of_images_on_disk(dm), rtol=1e-6
        )
    assert not np.allclose(
        np.asarray(one._features)[:, 0], np.asarray(other._features)[:, 0]
    )
    meta = json.loads(other.cache_path.with_suffix('.json').read_text())  # type: ignore[union-attr]
    assert meta['root'] == str((tmp_path / 'b').resolve())


def test_packed_layout_is_keyed_by_its_manifest(tmp_path: Path) -> None:
    """The packed layout is keyed by manifest.json, not by the GeoTIFFs."""
    root = copy_world(tmp_path / 'world')
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    extractor = CountingBandMeans()
    packed = keyed_cache(root, tmp_path / 'cache', extractor)
    assert packed.dataset.layout == 'packed'  # type: ignore[union-attr]
    assert extractor.images == 8
    shutil.rmtree(root / 'images')  # packed: the GeoTIFFs are not read
    again = keyed_cache(root, tmp_path / 'cache', extractor)
    assert again.cache_path == packed.cache_path
    assert extractor.images == 8
    copy_world(tmp_path / 'other', shift=5)
    shutil.copytree(tmp_path / 'other' / 'images', root / 'images')
    pack_s2_100k(root, patch_size=32, shard_size=3, overwrite=True, progress=False)
    repacked = keyed_cache(root, tmp_path / 'cache', extractor)
    assert repacked.cache_path != packed.cache_path
    assert extractor.images == 16
    np.testing.assert_allclose(
        np.asarray(repacked._features)[:, 0],
        features_of_images_on_disk(repacked),
        rtol=1e-6,
    )


def test_stale_temporaries_of_a_killed_build_are_removed(tmp_path: Path) -> None:
    cache_dir = tmp_path / 'cache'
    extractor = CountingBandMeans()
    path = keyed_cache(DATA, cache_dir, extractor).cache_path
    assert path is not None
    meta = path.with_suffix('.json')
    # a build killed part-way: its temporaries, no cache and no metadata
    path.unlink()
    meta.unlink()
    dead = dead_pid()
    stale = [
        cache_dir / f'.{path.name}.{dead}.k2x9_a0q.tmp',
        cache_dir / f'.{meta.name}.{dead}.abcd1234.tmp',
    ]
    live = cache_dir / f'.{path.name}.{os.getppid()}.abcd1234.tmp'
    for temporary in [*stale, live]:
        temporary.write_bytes(b'half a cache')
    rebuilt = keyed_cache(DATA, cache_dir, extractor)
    assert rebuilt.cache_path == path
    assert extractor.images == 16
    assert path.exists()
    assert meta.exists()
    assert not any(temporary.exists() for temporary in stale)
    assert live.exists()  # a running build's temporary is never touched
    # beside a complete cache: removed too, without a rebuild
    stale[0].write_bytes(b'half a cache')
    keyed_cache(DATA, cache_dir, extractor)
    assert extractor.images == 16
    assert not stale[0].exists()
    # build_feature_cache on its own cleans up before writing
    target = tmp_path / 'direct' / 'f.npy'
    target.parent.mkdir()
    leftover = target.parent / f'.f.npy.{dead}.zz99yy00.tmp'
    leftover.write_bytes(b'half a cache')
    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(2)]
    build_feature_cache(dataset, band_means, target)  # type: ignore[arg-type]
    assert sorted(target.parent.iterdir()) == [target]


def test_cache_key_needs_the_dataset(tmp_path: Path) -> None:
    dm = CachedFeatureDataModule(
        feature_extractor=band_means, extractor_key='band-means', **cache_args(tmp_path)
    )
    with pytest.raises(RuntimeError, match=r'setup\(\) must build the dataset'):
        dm.cache_key()


def test_build_feature_cache_runs_a_module_in_eval_mode(tmp_path: Path) -> None:
    """Dropout off, batch norm from its running statistics, which stay unchanged."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 1),
        torch.nn.BatchNorm2d(4),
        torch.nn.Dropout(0.5),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    net[2].eval()  # a submodule's own mode is given back too
    state = {k: v.clone() for k, v in net.state_dict().items()}
    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(4)]
    path = build_feature_cache(
        dataset,  # type: ignore[arg-type]
        net,
        tmp_path / 'f.npy',
        batch_size=2,
        dtype='float32',
    )
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert [m.training for m in net.modules()] == [True, True, True, False, True, True]
    net.eval()
    with torch.no_grad():
        expected = net(torch.stack([d['image'] for d in dataset])).numpy()
    np.testing.assert_allclose(np.load(path)[:, 0], expected, rtol=1e-6)


class NormalisedBands(torch.nn.Module):
    """The datamodule's preprocessing, then each band scaled by (x - mean) / std."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        aug: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
        mean: float,
        std: float,
    ) -> None:
        super().__init__()
        self.aug = aug
        self.register_buffer('mean', torch.tensor(mean))
        self.register_buffer('std', torch.tensor(std))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = self.aug(batch)
        return {**batch, 'image': (batch['image'] - self.mean) / self.std}


class NormalisedCache(CachedFeatureDataModule):
    """A subclass that normalises the bands before the extractor, as TorchGeo's do."""

    def __init__(self, mean: float = 0.1, std: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aug = NormalisedBands(self.aug, mean, std)


def test_cache_keyed_by_the_preprocessing_that_runs(tmp_path: Path) -> None:
    """A replaced ``aug`` (normalised bands) never reuses the plain cache."""
    args = cache_args(tmp_path, feature_extractor=band_means, extractor_key='bm')
    plain = CachedFeatureDataModule(**args)
    plain.setup('fit')
    assert plain.cache_path is not None
    for mean, std in [(0.1, 0.2), (0.1, 0.25)]:
        normalised = NormalisedCache(mean=mean, std=std, **args)
        normalised.setup('fit')
        assert normalised.cache_path not in (None, plain.cache_path)
        raw = normalised.dataset[0]['image'][None]  # type: ignore[index]
        expected = band_means(normalised.aug({'image': raw})['image'])[0]
        np.testing.assert_allclose(
            np.asarray(normalised._features)[0, 0], expected.numpy(), rtol=1e-5
        )
    again = NormalisedCache(mean=0.1, std=0.25, **args)
    again.setup('fit')
    assert again.cache_path == normalised.cache_path  # the same one is reused
    assert again.cache_key() == again.cache_key()


def test_cache_keyed_by_the_dataset_transforms(tmp_path: Path) -> None:
    """A dataset ``transforms`` that changes the images builds a new cache."""

    def scaled(factor: float) -> Any:
        def transform(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {**sample, 'image': sample['image'] * factor}

        return transform

    args = cache_args(tmp_path, feature_extractor=band_means, extractor_key='bm')
    paths = []
    for factor in (1.0, 2.0):
        dm = CachedFeatureDataModule(transforms=scaled(factor), **args)
        dm.setup('fit')
        paths.append(dm.cache_path)
        np.testing.assert_allclose(
            np.asarray(dm._features)[:, 0], features_of_images_on_disk(dm), rtol=1e-6
        )
    assert paths[0] != paths[1]


@pytest.mark.parametrize(
    ('extractor', 'shape'),
    [
        (lambda x: x.mean(dim=(0, 2, 3))[None], r'\(1, 2\)'),  # pooled the batch
        (lambda x: x.mean(dim=(2, 3), keepdim=True), r'\(2, 2, 1, 1\)'),
        (lambda x: x.flatten(1)[:, : 4 + len(x)], r'\(1, 5\)'),  # F changes
    ],
)
def test_features_of_another_shape_are_refused(
    tmp_path: Path, extractor: Any, shape: str
) -> None:
    """Features that are not one row per image never make a cache."""
    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(3)]
    path = tmp_path / 'f.npy'
    with pytest.raises(ValueError, match=rf'shape {shape} for samples .* {path}'):
        build_feature_cache(dataset, extractor, path, batch_size=2)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_features_beyond_float16_are_refused(tmp_path: Path) -> None:
    """Features that float16 stores as infinity never make a cache."""
    args = cache_args(tmp_path, cache_dtype='float16', extractor_key='big')
    dm = CachedFeatureDataModule(
        feature_extractor=lambda x: band_means(x) * 1e6, **args
    )
    with pytest.raises(
        ValueError,
        match=r'feature 0 of sample 0 \(patch_0\.tif\), view 0, while caching '
        r".*features-\w+\.npy: .* does not fit in float16 .*cache_dtype='float32'",
    ):
        dm.setup('fit')
    assert not list((tmp_path / 'cache').glob('*.npy'))
    dm = CachedFeatureDataModule(
        feature_extractor=lambda x: band_means(x) * 1e6,
        **{**args, 'cache_dtype': 'float32'},
    )
    dm.setup('fit')
    assert np.isfinite(np.asarray(dm._features)).all()


def test_nan_features_are_refused(tmp_path: Path) -> None:
    def extractor(x: torch.Tensor) -> torch.Tensor:
        features = x.mean(dim=(2, 3))
        features[-1, 1] = float('nan')
        return features

    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(4)]
    path = tmp_path / 'f.npy'
    with pytest.raises(
        ValueError,
        match=r'feature 1 of sample 1, view 0, while caching .*f\.npy: the '
        r'feature extractor returned nan, expected finite features',
    ):
        build_feature_cache(dataset, extractor, path, batch_size=2)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


class Pool(torch.nn.Module):
    """Average or max pooling, chosen by a plain attribute its repr omits."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) if self.mode == 'avg' else x.amax(dim=(2, 3))


def test_extractors_with_the_same_weights_but_other_layers_get_their_own_caches(
    tmp_path: Path,
) -> None:
    """Same weights, other pooling: never the other extractor's features."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(13, 4, 1)
    extractors = [
        torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),
        torch.nn.Sequential(conv, torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten()),
        torch.nn.Sequential(conv, Pool('avg')),
        torch.nn.Sequential(conv, Pool('max')),
    ]
    paths = []
    for extractor in extractors:
        dm = CachedFeatureDataModule(
            feature_extractor=extractor, **cache_args(tmp_path)
        )
        dm.setup('predict')
        paths.append(dm.cache_path)
        dataset: Any = dm.dataset
        images = torch.stack([dataset[i]['image'] for i in range(len(dataset))])
        with torch.no_grad():
            expected = extractor(dm.aug({'image': images})['image']).numpy()
        np.testing.assert_allclose(np.asarray(dm._features)[:, 0], expected, rtol=1e-5)
    assert len(set(paths)) == len(extractors)
    again = CachedFeatureDataModule(
        feature_extractor=torch.nn.Sequential(conv, Pool('max')), **cache_args(tmp_path)
    )
    again.setup('predict')
    assert again.cache_path == paths[-1]  # an equal module reuses its cache


class Reduce(torch.nn.Module):
    """Pooling by a function held in an attribute: neither a weight nor a
    plain setting, so the cache key cannot see it."""

    def __init__(self, conv: torch.nn.Module, reduce: Any) -> None:
        super().__init__()
        self.conv = conv
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.reduce(self.conv(x), dim=(2, 3)))


def test_a_cache_of_other_features_under_the_same_key_is_refused(
    tmp_path: Path,
) -> None:
    """An extractor that differs only in what the key cannot see (a function
    held in an attribute) reused the other one's cache in silence: its
    features of sample 0 are now compared with the cached ones first."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(13, 4, 1)
    first = CachedFeatureDataModule(
        feature_extractor=Reduce(conv, torch.mean), **cache_args(tmp_path)
    )
    first.setup('predict')
    again = CachedFeatureDataModule(
        feature_extractor=Reduce(conv, torch.mean), **cache_args(tmp_path)
    )
    again.setup('predict')  # the same extractor reuses its cache
    assert again.cache_path == first.cache_path
    other = CachedFeatureDataModule(
        feature_extractor=Reduce(conv, torch.amax), **cache_args(tmp_path)
    )
    with pytest.raises(RuntimeError) as error:
        other.setup('predict')
    message = str(error.value)
    assert str(first.cache_path) in message
    assert 'sample 0' in message
    assert 'extractor_key' in message
    # an extractor_key tells them apart
    keyed = CachedFeatureDataModule(
        feature_extractor=Reduce(conv, torch.amax),
        extractor_key='amax',
        **cache_args(tmp_path),
    )
    keyed.setup('predict')
    assert keyed.cache_path != first.cache_path


@pytest.mark.parametrize(
    ('argument', 'match'),
    [
        ({'mode': 'points'}, "mode must be 'both', not 'points'"),
        ({'dates': 'pair'}, "dates must be 'index', not 'pair'"),
        ({'dates': 'all'}, "dates must be 'index', not 'all'"),
    ],
)
def test_datasets_of_no_single_image_are_refused(
    tmp_path: Path, argument: dict[str, str], match: str
) -> None:
    # each failed later with an unrelated KeyError or a missing dates.csv
    with pytest.raises(ValueError, match=match):
        CachedFeatureDataModule(
            feature_extractor=band_means,
            extractor_key='band-means',
            **cache_args(tmp_path, **argument),
        )


def test_setup_gives_every_submodule_its_own_mode_back(tmp_path: Path) -> None:
    """The datamodule put the extractor back with ``train(was_training)``,
    over every submodule: a backbone training with its batch norms frozen
    in eval mode came back with them training (their statistics moving)."""
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(
        torch.nn.Conv2d(13, 4, 1),
        torch.nn.BatchNorm2d(4),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    extractor.train()
    extractor[1].eval()  # frozen statistics
    dm = CachedFeatureDataModule(feature_extractor=extractor, **cache_args(tmp_path))
    dm.setup('predict')  # builds the cache
    again = CachedFeatureDataModule(feature_extractor=extractor, **cache_args(tmp_path))
    again.setup('predict')  # reuses it, after the sample-0 check
    assert again.cache_path == dm.cache_path
    assert extractor.training
    assert not extractor[1].training
    assert extractor[0].training


class _WouldHang(AssertionError):
    """A rank waits for a collective call that global rank 0 never makes."""


class _Rank0Strategy:
    """Global rank 0's strategy: records what it sends to the other ranks."""

    root_device = torch.device('cpu')

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.barriers: list[str] = []

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        assert src == 0
        self.sent.append(obj)
        return obj

    def barrier(self, name: str) -> None:
        self.barriers.append(name)


class _ReplayStrategy:
    """Another rank's strategy: receives what rank 0 sent, in order.

    A broadcast or barrier that rank 0 never reached would wait forever in a
    real process group; here it raises :class:`_WouldHang`.
    """

    root_device = torch.device('cpu')

    def __init__(self, rank_0: _Rank0Strategy) -> None:
        self.received = list(rank_0.sent)
        self.barriers_of_rank_0 = list(rank_0.barriers)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        assert src == 0
        if not self.received:
            raise _WouldHang('global rank 0 never sends this broadcast')
        return self.received.pop(0)

    def barrier(self, name: str) -> None:
        if not self.barriers_of_rank_0 or self.barriers_of_rank_0.pop(0) != name:
            raise _WouldHang(f'global rank 0 never reaches the barrier {name!r}')


class _Trainer:
    def __init__(self, rank: int, strategy: Any) -> None:
        self.global_rank = rank
        self.world_size = 2
        self.strategy = strategy


class _FailingAug(torch.nn.Module):
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise OSError('sample 0 cannot be read')


def _nan_features(image: torch.Tensor) -> torch.Tensor:
    features = image.mean(dim=(2, 3))
    features[0, 0] = float('nan')
    return features


@pytest.mark.parametrize(
    ('failure', 'match'),
    [
        ('build', 'the feature extractor returned nan'),
        ('key', 'sample 0 cannot be read'),
    ],
)
def test_a_failure_of_rank_0_stops_every_rank(
    tmp_path: Path, failure: str, match: str
) -> None:
    """Rank 0 failed to hash or build the cache and left the other ranks
    waiting at the barrier (or the key's broadcast) for ever: it now tells
    them, and every rank raises, naming rank 0's failure."""

    def datamodule(rank: int, strategy: Any) -> CachedFeatureDataModule:
        dm = CachedFeatureDataModule(
            feature_extractor=_nan_features,
            extractor_key='nan',
            **cache_args(tmp_path),
        )
        if failure == 'key':
            dm.aug = _FailingAug()
        dm.trainer = _Trainer(rank, strategy)  # type: ignore[assignment]
        return dm

    rank_0 = _Rank0Strategy()
    with pytest.raises((ValueError, OSError), match=match):
        datamodule(0, rank_0).setup('fit')
    with pytest.raises(
        RuntimeError, match=rf'global rank 0 failed .*global rank 1 stops too.*{match}'
    ):
        datamodule(1, _ReplayStrategy(rank_0)).setup('fit')
    assert not list((tmp_path / 'cache').glob('features-*.npy'))


def test_every_rank_reads_the_cache_rank_0_built(tmp_path: Path) -> None:
    # rank 0 builds with its backbone
    rank_0 = _Rank0Strategy()
    first = cached(tmp_path, frozen_task())
    first.trainer = _Trainer(0, rank_0)  # type: ignore[assignment]
    first.setup('fit')
    assert first.cache_path is not None
    built = np.load(first.cache_path)
    assert rank_0.barriers == ['satclip_feature_cache']
    # rank 1's unseeded backbone has other weights, so another key of its own
    torch.manual_seed(1)
    other = frozen_task()
    torch.manual_seed(1)
    for p in other.parameters():
        p.data.normal_()
    second = cached(tmp_path, other)
    second.trainer = _Trainer(1, _ReplayStrategy(rank_0))  # type: ignore[assignment]
    second.setup('fit')
    assert second.cache_key() != first.cache_key()
    assert second.cache_path == first.cache_path
    np.testing.assert_array_equal(np.load(second.cache_path), built)
    # a rank that cannot see rank 0's file (a disk of its own node)
    third = CachedFeatureDataModule(
        feature_extractor=other.feature_extractor(),
        **cache_args(tmp_path, cache_dir=str(tmp_path / 'node-1')),
    )
    third.trainer = _Trainer(1, _ReplayStrategy(rank_0))  # type: ignore[assignment]
    with pytest.raises(FileNotFoundError, match=r'built by global rank 0.*shares'):
        third.setup('fit')


@pytest.mark.parametrize(
    ('argument', 'match'),
    [
        ({'feature_views': True}, 'feature_views must be an integer, got True'),
        ({'feature_views': 2.0}, 'feature_views must be an integer, got 2.0'),
        ({'feature_views': '2'}, "feature_views must be an integer, got '2'"),
        ({'feature_batch_size': 0}, 'feature_batch_size must be at least 1, got 0'),
        ({'feature_batch_size': 8.5}, 'feature_batch_size must be an integer'),
        ({'in_memory': 'no'}, "in_memory must be True or False, got 'no'"),
        ({'cache_dtype': 'bfloat16'}, "cache_dtype must be 'float16' or 'float32'"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    argument: dict[str, Any], match: str
) -> None:
    """views True or 2.0 were taken (True keyed another cache of the same
    features than 1; 2.0 failed in range() while building), a feature batch
    size of 0 failed in the DataLoader at the first build, and in_memory 'no'
    loaded the cache into memory."""
    with pytest.raises(ValueError, match=match):
        CachedFeatureDataModule(root=str(DATA), patch_size=32, **argument)


@pytest.mark.parametrize(
    ('argument', 'match'),
    [
        ({'dtype': 'bfloat16'}, "dtype must be 'float16' or 'float32', got 'bfloat16'"),
        ({'views': 2.5}, 'views must be an integer, got 2.5'),
        ({'views': True}, 'views must be an integer, got True'),
        ({'views': 0}, 'views must be between 1 and 8, got 0'),
        ({'batch_size': 0}, 'batch_size must be at least 1, got 0'),
    ],
)
def test_build_feature_cache_refuses_bad_arguments_by_name(
    tmp_path: Path, argument: dict[str, Any], match: str
) -> None:
    """A dtype of neither kind failed with a bare KeyError('bfloat16'), and
    views 2.5 with a TypeError of range(); nothing is written."""
    dataset = [{'image': torch.rand(2, 4, 4)} for _ in range(2)]
    with pytest.raises(ValueError, match=match):
        build_feature_cache(
            dataset,  # type: ignore[arg-type]
            band_means,
            tmp_path / 'f.npy',
            **argument,
        )
    assert not list(tmp_path.iterdir())


def test_a_cache_file_of_another_shape_names_what_was_expected(tmp_path: Path) -> None:
    """A file under the key's name with other dimensions (copied from another
    run, say) was refused as 'feature cache ... has shape (8, 2, 13)' alone."""
    args = cache_args(tmp_path, feature_extractor=band_means, extractor_key='bm')
    first = CachedFeatureDataModule(**args)
    first.setup('predict')
    assert first.cache_path is not None
    np.save(first.cache_path, np.zeros((8, 2, 13), dtype=np.float32))
    again = CachedFeatureDataModule(**args)
    with pytest.raises(
        RuntimeError,
        match=r'has shape \(8, 2, 13\), expected \(8, 1, F\) \(8 samples, 1 '
        r'view\): delete it to rebuild it',
    ):
        again.setup('predict')


def test_dihedral_views_are_not_views_per_sample(tmp_path: Path) -> None:
    """The dihedral views were kept in ``views``, the attribute that
    S2100KDataModule.on_after_batch_transfer reads as the number of views per
    sample: with 2 cached views an image batch reaching it was duplicated to
    ``(B, 2, C, H, W)``. The two meanings now have their own attributes."""
    args = cache_args(tmp_path, feature_extractor=band_means, extractor_key='bm')
    dm = CachedFeatureDataModule(feature_views=2, **args)
    assert dm.feature_views == 2
    assert dm.views == 1  # one view per sample in a batch
    dm.setup('fit')
    assert dm.cache_path is not None
    assert np.load(dm.cache_path).shape[:2] == (8, 2)
    image = torch.zeros(3, 12, 32, 32, dtype=torch.uint16)
    batch = {'image': image, 'point': torch.zeros(3, 2, dtype=torch.float64)}
    out = dm.on_after_batch_transfer(batch, 0)
    assert out['image'].shape == (3, 12, 32, 32)
    features = next(iter(dm.train_dataloader()))
    assert dm.on_after_batch_transfer(features, 0)['features'].shape == (3, 13)


def test_views_is_a_deprecated_name_of_feature_views(tmp_path: Path) -> None:
    """``views`` (the old name, in configs as ``views: 8``) still works, with
    a DeprecationWarning; given beside another ``feature_views`` it is refused."""
    args = cache_args(tmp_path, feature_extractor=band_means, extractor_key='bm')
    with pytest.warns(DeprecationWarning, match='views is deprecated.*feature_views'):
        dm = CachedFeatureDataModule(views=3, **args)
    assert dm.feature_views == 3
    assert dm.views == 1
    dm.setup('predict')
    assert dm.cache_path is not None
    assert np.load(dm.cache_path).shape[1] == 3
    with pytest.raises(
        ValueError, match=r'views \(deprecated\) is 3.*feature_views is 2'
    ):
        CachedFeatureDataModule(views=3, feature_views=2, **args)
    with pytest.raises(ValueError, match='views must be between 1 and 8, got 9'):
        CachedFeatureDataModule(views=9, **args)


class BandMeans(torch.nn.Module):
    """``band_means`` as a module (a module's reused cache is checked)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return band_means(image)


def _minus_five(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {**batch, 'image': batch['image'] - 5}  # fails on uint16


@pytest.mark.parametrize('kind', ['kornia', 'function'])
def test_a_replaced_aug_gets_float_images_while_caching(
    tmp_path: Path, kind: str
) -> None:
    """As in training (S2100KDataModule.on_after_batch_transfer), a user's own
    ``aug`` gets float32 images of the stored values while the cache is
    keyed, built and checked for reuse: it got the uint16 batches, on which
    kornia's Normalize and arithmetic fail, and a function, which has no
    ``.to``, could not be moved to the device."""
    aug: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    if kind == 'kornia':
        aug = K.AugmentationSequential(
            K.Normalize(mean=torch.full((12,), 1000.0), std=torch.full((12,), 500.0)),
            data_keys=None,
        )
    else:
        aug = _minus_five
    args = cache_args(tmp_path, insert_b10=False, feature_extractor=BandMeans())
    dm = CachedFeatureDataModule(**args)
    dm.aug = aug  # type: ignore[assignment]
    dm.setup('fit')
    raw = dm.dataset[0]['image'][None]  # type: ignore[index]
    assert raw.dtype == torch.uint16  # read as stored
    expected = band_means(aug({'image': raw.float()})['image'])[0]
    np.testing.assert_allclose(
        np.asarray(dm._features)[0, 0], expected.numpy(), rtol=1e-5
    )
    again = CachedFeatureDataModule(**args)  # reuses it, after checking sample 0
    again.aug = aug  # type: ignore[assignment]
    again.setup('fit')
    assert again.cache_path == dm.cache_path
