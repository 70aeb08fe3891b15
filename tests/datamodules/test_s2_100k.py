import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, Subset
from torchgeo.datamodules.utils import MisconfigurationException

from torchgeo_satclip._compat import TORCHGEO_AT_LEAST_0_10
from torchgeo_satclip.datamodules import (
    S2100KAugmentation,
    S2100KDataModule,
    ThreadedBatchLoader,
    collate_all_dates,
    collate_sample_batch,
    split_indices,
)
from torchgeo_satclip.datasets import S2100K, pack_s2_100k

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
REAL = DATA / 'real'


@pytest.fixture(scope='module')
def real_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 256 x 256 patches: the three real ones, each listed several times."""
    root = tmp_path_factory.mktemp('real') / 's2_100k'
    shutil.copytree(REAL / 'images', root / 'images')
    rows = (REAL / 'index.csv').read_text().splitlines()[1:]
    lines = ['fn,lon,lat']
    for i in range(8):
        fn, lon, lat = rows[i % 3].split(',')
        if i >= 3:
            shutil.copy(root / 'images' / fn, root / 'images' / f'patch_{i - 3}.tif')
            fn = f'patch_{i - 3}.tif'
        lines.append(f'{fn},{lon},{lat}')
    (root / 'index.csv').write_text('\n'.join(lines) + '\n')
    return root


def batch_of(dm: S2100KDataModule, split: str) -> dict[str, torch.Tensor]:
    loader = dm.train_dataloader() if split == 'train' else dm.val_dataloader()
    return next(iter(loader))


def one_epoch_trainer() -> Trainer:
    """A quiet one-epoch CPU Trainer that writes nothing."""
    return Trainer(
        max_epochs=1,
        accelerator='cpu',
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


class TestSplit:
    def test_deterministic(self) -> None:
        keys = [f'patch_{i}.tif' for i in range(1000)]
        train, val = split_indices(keys, 0.1, seed=0)
        assert len(val) == 100
        assert sorted(train + val) == list(range(1000))
        assert (train, val) == split_indices(keys, 0.1, seed=0)
        assert val != split_indices(keys, 0.1, seed=1)[1]
        # pinned: identical on every machine and library version
        assert val[:5] == [8, 9, 21, 27, 29]

    def test_stable_under_exclusion(self) -> None:
        keys = [f'patch_{i}.tif' for i in range(200)]
        _, val = split_indices(keys, 0.1, seed=0)
        val_names = {keys[i] for i in val}
        fewer = [k for k in keys if k != 'patch_7.tif']
        _, val2 = split_indices(fewer, 0.1, seed=0)
        assert len(val_names & {fewer[i] for i in val2}) >= len(val) - 1

    def test_invalid(self) -> None:
        with pytest.raises(ValueError, match='val_split_pct'):
            split_indices(['a', 'b'], 1.0, 0)
        with pytest.raises(ValueError, match='too few'):
            split_indices(['a'], 0.1, 0)
        # True and 1.0 named other splits than 1, silently
        for seed in (True, 1.0, '1'):
            with pytest.raises(ValueError, match='seed must be an integer'):
                split_indices(['a', 'b', 'c'], 0.5, seed)  # type: ignore[arg-type]
        keys = [f'patch_{i}.tif' for i in range(50)]
        assert split_indices(keys, 0.5, np.int64(1)) == split_indices(keys, 0.5, 1)  # type: ignore[arg-type]
        # a string failed with a bare '<=' TypeError; False was read as 0
        for fraction in ('0.1', False, None, float('nan')):
            with pytest.raises(ValueError, match=r'^val_split_pct must be'):
                split_indices(keys, fraction, 0)  # type: ignore[arg-type]

    def test_limits(self) -> None:
        keys = [f'patch_{i}.tif' for i in range(10)]
        # 0 is allowed: no validation set
        assert split_indices(keys, 0.0, seed=0) == (list(range(10)), [])
        # a positive fraction rounding to 0 still gives one validation sample
        train, val = split_indices(keys, 0.01, seed=0)
        assert (len(train), len(val)) == (9, 1)
        # 0.94 of 10 rounds to 9: one sample left to train on
        assert len(split_indices(keys, 0.94, seed=0)[0]) == 1
        # 0.95 of 10 rounds to 10: nothing to train on
        with pytest.raises(ValueError, match='too few'):
            split_indices(keys, 0.95, seed=0)
        for bad in (-0.01, 1.0):
            with pytest.raises(ValueError, match='val_split_pct'):
                split_indices(keys, bad, seed=0)

    def test_datamodule_split(self) -> None:
        def val_files(seed: int) -> list[str]:
            dm = S2100KDataModule(
                batch_size=2,
                seed=seed,
                root=DATA,
                patch_size=32,
                val_split_pct=0.25,
                crop_size=None,
            )
            dm.setup('fit')
            assert isinstance(dm.val_dataset, Subset)
            return [cast(S2100K, dm.dataset).files[i] for i in dm.val_dataset.indices]

        assert val_files(0) == val_files(0)
        assert len(val_files(0)) == 2
        assert val_files(0) != val_files(3)

    @pytest.mark.parametrize('loader', ['processes', 'threads'])
    def test_no_validation_split_validates_nothing(
        self, tmp_path: Path, loader: str
    ) -> None:
        """val_split_pct=0: not TorchGeo's fallback to the whole (training) set."""
        from lightning.pytorch import LightningModule

        root = tmp_path / 's2_100k'
        shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
        pack_s2_100k(root, patch_size=32, progress=False)
        dm = S2100KDataModule(
            batch_size=4,
            root=root,
            patch_size=32,
            val_split_pct=0.0,
            crop_size=None,
            loader=loader,  # type: ignore[arg-type]
        )
        with pytest.raises(MisconfigurationException, match='val_dataset'):
            dm.val_dataloader()  # no split made yet
        dm.setup('fit')
        assert dm.val_dataset is None
        assert cast(object, dm.val_dataloader()) == []

        class Count(LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(()))
                self.validated = 0

            def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
                return cast(torch.Tensor, self.weight * batch['point'].sum())

            def validation_step(self, batch: Any, batch_idx: int) -> None:
                self.validated += len(batch['point'])

            def configure_optimizers(self) -> torch.optim.Optimizer:
                return torch.optim.SGD(self.parameters(), lr=0.0)

        model = Count()
        trainer = one_epoch_trainer()
        trainer.fit(model, datamodule=dm)
        assert trainer.global_step == 2  # 8 training samples in batches of 4
        assert model.validated == 0

    def test_no_test_split(self) -> None:
        dm = S2100KDataModule(root=DATA, patch_size=32, crop_size=None)
        dm.setup('test')
        with pytest.raises(ValueError, match='S2-100K has no test split'):
            dm.test_dataloader()


class TestAugmentation:
    def test_13_band_crop(self) -> None:
        aug = S2100KAugmentation(crop_size=224)
        image = torch.full((2, 12, 256, 256), 5000.0)
        out = aug({'image': image, 'point': torch.zeros(2, 2)})
        assert out['image'].shape == (2, 13, 224, 224)
        assert (out['image'][:, 10] == 0).all()
        assert torch.allclose(out['image'][:, 11], torch.tensor(0.5))

    def test_band_order(self) -> None:
        image = (
            torch.arange(1, 13, dtype=torch.float32)
            .view(1, 12, 1, 1)
            .expand(1, 12, 8, 8)
        )
        out = S2100KAugmentation(crop_size=None, random=False)({'image': image})
        assert out['image'][0, :, 0, 0].mul(10000).round().tolist() == [
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            10,
            0,
            11,
            12,
        ]

    def test_deterministic_val(self) -> None:
        aug = S2100KAugmentation(crop_size=4, random=False, jitter=0.01)
        image = torch.rand(1, 12, 8, 8)
        point = torch.tensor([[1.0, 2.0]])
        out = aug({'image': image, 'point': point})
        assert torch.equal(out['point'], point)
        assert torch.equal(out['image'][:, :10], image[:, :10, 2:6, 2:6] / 10000)

    def test_wrong_band_count(self) -> None:
        with pytest.raises(ValueError, match='12 S2-100K bands'):
            S2100KAugmentation()({'image': torch.zeros(1, 3, 8, 8)})

    def test_invalid(self) -> None:
        with pytest.raises(ValueError, match='crop_size'):
            S2100KAugmentation(crop_size=0)
        with pytest.raises(ValueError, match='jitter'):
            S2100KAugmentation(jitter=-1)

    @pytest.mark.parametrize(
        ('kwargs', 'match'),
        [
            # NaN jittered nothing, silently; inf made every longitude NaN
            ({'jitter': float('nan')}, 'jitter must be finite, got nan'),
            ({'jitter': float('inf')}, 'jitter must be finite, got inf'),
            # a divisor of 0 or NaN made every pixel inf or NaN
            ({'scale': 0.0}, 'scale must be finite and positive, got 0.0'),
            ({'scale': -10000.0}, 'scale must be finite and positive'),
            ({'scale': float('nan')}, 'scale must be finite, got nan'),
            ({'scale': True}, 'scale must be a real number, got True'),
            ({'crop_size': 2.5}, 'crop_size must be an integer, got 2.5'),
            ({'crop_size': True}, 'crop_size must be an integer, got True'),
            # a string is truthy: 'false' flipped, blurred, inserted B10
            ({'flips': 'false'}, "flips must be True or False, got 'false'"),
            ({'blur': 'no'}, "blur must be True or False, got 'no'"),
            ({'insert_b10': 1}, 'insert_b10 must be True or False, got 1'),
            ({'random': 'false'}, "random must be True or False, got 'false'"),
            (
                {'symmetric_jitter': 'true'},
                "symmetric_jitter must be True or False, got 'true'",
            ),
        ],
    )
    def test_invalid_numbers(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=re.escape(match)):
            S2100KAugmentation(**kwargs)


class TestS2100KDataModule:
    def test_shapes_13_band_224(self, real_root: Path) -> None:
        dm = S2100KDataModule(batch_size=2, root=real_root, val_split_pct=0.25)
        dm.setup('fit')
        for split, aug in (('train', dm.train_aug), ('val', dm.val_aug)):
            batch = batch_of(dm, split)
            assert batch['image'].shape == (2, 12, 256, 256)
            out = aug(batch)  # type: ignore[misc]
            assert out['image'].shape == (2, 13, 224, 224)
            assert out['image'].dtype == torch.float32
            assert out['image'].max() < 7  # scaled to reflectance
            assert out['point'].shape == (2, 2)

    def test_shapes_12_band_256(self, real_root: Path) -> None:
        dm = S2100KDataModule(
            batch_size=2, root=real_root, crop_size=None, insert_b10=False
        )
        dm.setup('fit')
        out = dm.train_aug(batch_of(dm, 'train'))  # type: ignore[misc]
        assert out['image'].shape == (2, 12, 256, 256)

    def test_on_after_batch_transfer(self, real_root: Path) -> None:
        dm = S2100KDataModule(batch_size=2, root=real_root, val_split_pct=0.25)
        dm.setup('fit')
        batch = batch_of(dm, 'val')
        dm.trainer = SimpleNamespace(  # type: ignore[assignment]
            training=False, validating=True, sanity_checking=False
        )
        out = dm.on_after_batch_transfer(batch, 0)
        assert out['image'].shape == (2, 13, 224, 224)
        assert torch.equal(out['point'], batch['point'])  # no jitter in validation
        dm.trainer = SimpleNamespace(training=True)  # type: ignore[assignment]
        out = dm.on_after_batch_transfer(batch, 0)
        assert not torch.equal(out['point'], batch['point'])

    def test_augment_val(self, real_root: Path) -> None:
        dm = S2100KDataModule(batch_size=2, root=real_root, augment_val=True)
        assert dm.val_aug is dm.train_aug
        assert (
            S2100KDataModule(root=real_root).val_aug
            is not S2100KDataModule(root=real_root).train_aug
        )

    def test_dataset_kwargs(self, tmp_path: Path) -> None:
        root = tmp_path / 's2_100k'
        root.mkdir()
        shutil.copy(DATA / 'index.csv', root)
        shutil.copytree(DATA / 'images', root / 'images')
        dm = S2100KDataModule(
            batch_size=2,
            root=root,
            patch_size=32,
            exclude_nodata=True,
            crop_size=16,
            val_split_pct=0.2,
        )
        dm.setup('fit')
        assert isinstance(dm.dataset, S2100K)
        assert len(dm.dataset) == 7
        dm.setup('predict')
        assert dm.predict_dataset is dm.dataset

    @pytest.mark.parametrize('stage', ['fit', 'predict'])
    def test_points_mode_with_the_default_crop(self, stage: str) -> None:
        """mode='points' has no image to crop: the crop check must not need one."""
        dm = S2100KDataModule(
            batch_size=8, root=DATA, patch_size=32, mode='points', val_split_pct=0.0
        )
        dm.setup(stage)
        loader = dm.train_dataloader() if stage == 'fit' else dm.predict_dataloader()
        batch = dm.on_after_batch_transfer(next(iter(loader)), 0)
        assert set(batch) == {'point'}
        assert batch['point'].shape == (8, 2)

    def test_plot(self, real_root: Path) -> None:
        import matplotlib

        matplotlib.use('agg')
        import matplotlib.pyplot as plt

        dm = S2100KDataModule(batch_size=2, root=real_root)
        dm.setup('validate')
        assert dm.val_dataset is not None
        fig = dm.plot(dm.val_dataset[0])
        assert fig is not None
        plt.close(fig)

    def test_yaml(self, tmp_path: Path) -> None:
        config = {
            'batch_size': 4,
            'crop_size': None,
            'symmetric_jitter': True,
            'jitter': 0.02,
            'augment_val': True,
            'seed': 7,
            'dataset': 'torchgeo_satclip',
        }
        parser = ArgumentParser()
        parser.add_class_arguments(S2100KDataModule, 'data')
        path = tmp_path / 'config.yaml'
        path.write_text(yaml.safe_dump({'data': config}))
        args = parser.parse_path(path)
        instantiate = getattr(parser, 'instantiate', parser.instantiate_classes)
        init = instantiate(args)
        dm = init['data']
        assert dm.seed == 7
        assert dm.train_aug.symmetric_jitter
        assert dm.train_aug.jitter == 0.02
        assert len(dm.train_aug.image_ops) == 3

    @pytest.mark.skipif(
        not TORCHGEO_AT_LEAST_0_10,
        reason='torchgeo.datasets.S2100k needs torchgeo >= 0.10',
    )
    def test_torchgeo_dataset(self, real_root: Path) -> None:
        from torchgeo.datasets import S2100k  # type: ignore[attr-defined]

        dm = S2100KDataModule(
            batch_size=2, root=real_root, dataset='torchgeo', val_split_pct=0.25
        )
        dm.setup('fit')
        assert isinstance(dm.dataset, S2100k)
        ours = S2100KDataModule(batch_size=2, root=real_root, val_split_pct=0.25)
        ours.setup('fit')
        assert dm.val_dataset.indices == ours.val_dataset.indices  # type: ignore[union-attr]
        batch = batch_of(dm, 'val')
        out = dm.val_aug(batch)  # type: ignore[misc]
        assert out['image'].shape == (2, 13, 224, 224)
        sample_theirs = dm.dataset[0]  # type: ignore[index]
        sample_ours = ours.dataset[0]  # type: ignore[index]
        assert torch.equal(sample_theirs['image'], sample_ours['image'])
        # the same float64 points, exactly
        assert sample_theirs['point'].dtype == sample_ours['point'].dtype
        assert torch.equal(sample_theirs['point'], sample_ours['point'])

    @pytest.mark.skipif(TORCHGEO_AT_LEAST_0_10, reason='checks the torchgeo 0.8 error')
    def test_torchgeo_dataset_needs_0_10(self) -> None:
        with pytest.raises(ValueError, match=r'torchgeo >= 0\.10'):
            S2100KDataModule(dataset='torchgeo')

    def test_invalid(self) -> None:
        with pytest.raises(ValueError, match='dataset'):
            S2100KDataModule(dataset='other')  # type: ignore[arg-type]
        with pytest.raises(ValueError, match='val_split_pct'):
            S2100KDataModule(val_split_pct=1.5)

    @pytest.mark.parametrize(
        ('kwargs', 'match'),
        [
            # 0 failed at the first loader with "batch_size has length 0"
            ({'batch_size': 0}, 'batch_size must be at least 1, got 0'),
            ({'batch_size': -2}, 'batch_size must be at least 1, got -2'),
            ({'batch_size': 2.5}, 'batch_size must be an integer, got 2.5'),
            ({'batch_size': True}, 'batch_size must be an integer, got True'),
            # the threaded loader took -1 for one thread, silently
            ({'num_workers': -1}, 'num_workers must be at least 0, got -1'),
            ({'num_workers': 1.5}, 'num_workers must be an integer, got 1.5'),
            # a float or bool seed gave another split than the integer
            ({'seed': 1.5}, 'seed must be an integer, got 1.5'),
            ({'seed': True}, 'seed must be an integer, got True'),
            ({'views': True}, 'views must be an integer, got True'),
            # 'false' is truthy: it pinned every batch
            (
                {'pin_memory': 'false'},
                "pin_memory must be True or False, got 'false' (type str)",
            ),
            ({'pin_memory': 0}, 'pin_memory must be True or False, got 0 (type int)'),
            # 'false' augmented every validation batch
            (
                {'augment_val': 'false'},
                "augment_val must be True or False, got 'false'",
            ),
            # a string failed with "'<=' not supported"; NaN named no value
            (
                {'val_split_pct': '0.1'},
                "val_split_pct must be a real number, got '0.1'",
            ),
            ({'val_split_pct': float('nan')}, 'val_split_pct must be finite, got nan'),
        ],
    )
    def test_invalid_numbers(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=re.escape(match)):
            S2100KDataModule(
                root=DATA, patch_size=32, crop_size=None, loader='threads', **kwargs
            )

    def test_numpy_integers(self) -> None:
        dm = S2100KDataModule(
            root=DATA,
            patch_size=32,
            crop_size=None,
            batch_size=np.int64(2),  # type: ignore[arg-type]
            num_workers=np.int64(0),  # type: ignore[arg-type]
            seed=np.int64(3),  # type: ignore[arg-type]
        )
        assert (dm.batch_size, dm.num_workers, dm.seed) == (2, 0, 3)
        assert type(dm.batch_size) is int


class TestBatchedUint16:
    """The packed uint16 batch path feeds the model the GeoTIFF path's values."""

    @pytest.fixture(scope='class')
    def packed_root(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp('packed') / 's2_100k'
        shutil.copytree(REAL, root)
        pack_s2_100k(root, progress=False)
        return root

    @pytest.mark.parametrize(
        ('num_workers', 'loader'),
        [(0, 'auto'), (1, 'processes'), (1, 'threads'), (2, 'threads')],
    )
    @pytest.mark.parametrize('split', ['train', 'val'])
    def test_model_sees_geotiff_values(
        self, packed_root: Path, num_workers: int, loader: str, split: str
    ) -> None:
        common: dict[str, Any] = {
            'root': packed_root,
            'batch_size': 1,
            'val_split_pct': 0.34,
        }
        geotiff = S2100KDataModule(
            layout='geotiff', image_dtype='float32', num_workers=0, **common
        )
        packed = S2100KDataModule(
            num_workers=num_workers,
            loader=loader,  # type: ignore[arg-type]
            **common,
        )
        geotiff.setup('fit')
        packed.setup('fit')
        raw_packed = batch_of(packed, split)
        # the GeoTIFF sample at the same place (the two shuffles differ)
        tif_dataset = geotiff.dataset
        assert tif_dataset is not None
        index = next(
            i
            for i in range(len(tif_dataset))  # type: ignore[arg-type]
            if torch.equal(tif_dataset[i]['point'], raw_packed['point'][0])
        )
        raw_tif = {k: v[None] for k, v in tif_dataset[index].items()}
        seen = []
        for dm, batch in ((geotiff, raw_tif), (packed, raw_packed)):
            torch.manual_seed(1)  # the random crop, flips, blur and jitter
            aug = dm.train_aug if split == 'train' else dm.val_aug
            assert aug is not None
            seen.append(aug(batch))
        seen_tif, seen_packed = seen
        assert raw_tif['image'].dtype == torch.float32
        assert raw_packed['image'].dtype == torch.uint16
        assert seen_packed['image'].dtype == torch.float32
        assert seen_packed['image'].shape == (1, 13, 224, 224)
        assert torch.equal(seen_tif['image'], seen_packed['image'])
        assert torch.equal(seen_tif['point'], seen_packed['point'])

    @pytest.mark.parametrize(
        ('num_workers', 'loader', 'expected'),
        [
            (0, 'auto', DataLoader),
            (2, 'auto', ThreadedBatchLoader),
            (2, 'processes', DataLoader),
            (0, 'threads', ThreadedBatchLoader),
        ],
    )
    def test_loader_choice(
        self, packed_root: Path, num_workers: int, loader: str, expected: type
    ) -> None:
        dm = S2100KDataModule(
            root=packed_root,
            batch_size=1,
            val_split_pct=0.34,
            num_workers=num_workers,
            loader=loader,  # type: ignore[arg-type]
        )
        dm.setup('fit')
        assert isinstance(dm.train_dataloader(), expected)
        assert isinstance(dm.val_dataloader(), expected)

    def test_geotiff_uses_processes(self, packed_root: Path) -> None:
        dm = S2100KDataModule(
            root=packed_root, batch_size=1, num_workers=2, layout='geotiff'
        )
        dm.setup('fit')
        assert isinstance(dm.train_dataloader(), DataLoader)
        forced = S2100KDataModule(
            root=packed_root, batch_size=1, layout='geotiff', loader='threads'
        )
        forced.setup('fit')
        with pytest.raises(ValueError, match='needs an S2100K on the packed layout'):
            forced.train_dataloader()

    @pytest.mark.parametrize('loader', ['processes', 'threads'])
    def test_lightning_fits_and_validates(self, packed_root: Path, loader: str) -> None:
        """Lightning inspects a loader (sampler, batch_sampler) before using it."""
        from torchgeo_satclip.tasks import SatCLIPTask

        dm = S2100KDataModule(
            root=packed_root,
            batch_size=2,
            num_workers=1,
            val_split_pct=0.34,
            crop_size=32,
            loader=loader,  # type: ignore[arg-type]
        )
        task = SatCLIPTask(
            model='resnet18',
            embed_dim=8,
            legendre_polys=2,
            capacity=8,
            num_hidden_layers=1,
            location_dtype='float32',
        )
        trainer = one_epoch_trainer()
        trainer.fit(task, datamodule=dm)
        assert trainer.global_step == 1
        assert 'val_loss' not in trainer.callback_metrics  # a 1-sample val split
        assert isinstance(
            trainer.train_dataloader,
            ThreadedBatchLoader if loader == 'threads' else DataLoader,
        )

    def test_invalid_loader(self, packed_root: Path) -> None:
        with pytest.raises(ValueError, match="loader must be 'auto'"):
            S2100KDataModule(root=packed_root, loader='fork')  # type: ignore[arg-type]

    @pytest.mark.parametrize('loader', ['processes', 'threads'])
    def test_pin_memory(self, packed_root: Path, loader: str) -> None:
        dm = S2100KDataModule(
            root=packed_root,
            batch_size=1,
            val_split_pct=0.34,
            loader=loader,  # type: ignore[arg-type]
        )
        dm.setup('fit')
        assert not dm.train_dataloader().pin_memory  # no trainer on CUDA
        dm.trainer = SimpleNamespace(  # type: ignore[assignment]
            strategy=SimpleNamespace(root_device=torch.device('cuda', 0))
        )
        assert dm.train_dataloader().pin_memory
        forced = S2100KDataModule(
            root=packed_root,
            batch_size=1,
            val_split_pct=0.34,
            pin_memory=False,
            loader=loader,  # type: ignore[arg-type]
        )
        forced.trainer = dm.trainer
        forced.setup('fit')
        assert not forced.train_dataloader().pin_memory

    def test_torchgeo_style_collation(self, packed_root: Path) -> None:
        """Samples not read as one still go through default_collate."""
        samples = [S2100K(packed_root)[i] for i in range(2)]
        batch = collate_sample_batch(samples)
        assert batch['image'].shape == (2, 12, 256, 256)


class TestAllDates:
    """``dates='all'``: places with different numbers of dates, padded."""

    @pytest.fixture
    def temporal_root(self, tmp_path: Path) -> Path:
        root = tmp_path / 'temporal'
        shutil.copytree(DATA / 'temporal', root)
        return root

    def test_padded_with_a_mask(self, temporal_root: Path) -> None:
        dataset = S2100K(temporal_root, patch_size=16, dates='all')
        samples = [dataset[i] for i in range(4)]
        assert [len(s['date']) for s in samples] == [3, 2, 1, 2]
        batch = collate_all_dates(samples)
        assert set(batch) == {'image', 'point', 'date', 'date_mask'}
        assert batch['image'].shape == (4, 3, 12, 16, 16)
        assert batch['image'].dtype == torch.float32
        assert batch['date'].dtype == torch.int64
        assert batch['date_mask'].tolist() == [
            [True, True, True],
            [True, True, False],
            [True, False, False],
            [True, True, False],
        ]
        for i, sample in enumerate(samples):
            t = len(sample['date'])
            assert torch.equal(batch['image'][i, :t], sample['image'])
            assert torch.equal(batch['date'][i, :t], sample['date'])
            assert not batch['image'][i, t:].any()
            assert not batch['date'][i, t:].any()
            assert torch.equal(batch['point'][i], sample['point'])

    def test_fixed_length(self, temporal_root: Path) -> None:
        dataset = S2100K(temporal_root, patch_size=16, dates='all')
        samples = [dataset[1], dataset[2]]
        batch = collate_all_dates(samples, length=4)
        assert batch['image'].shape == (2, 4, 12, 16, 16)
        assert batch['date_mask'].sum(1).tolist() == [2, 1]
        with pytest.raises(
            ValueError, match=r'sample 1 has 3 dates, more than length=2'
        ):
            collate_all_dates([dataset[2], dataset[0]], length=2)

    def test_points_mode(self, temporal_root: Path) -> None:
        dataset = S2100K(temporal_root, mode='points', dates='all')
        batch = collate_all_dates([dataset[0], dataset[2]])
        assert set(batch) == {'point', 'date', 'date_mask'}
        assert batch['date'].shape == (2, 3)
        assert batch['date_mask'].sum().item() == 4

    @pytest.mark.parametrize(
        ('second', 'message'),
        [
            (
                {'date': 3},
                r"sample 1 has keys \['date'\], sample 0 \['date', 'image'\]",
            ),
            ({'date': 3, 'image': (3, 'uint16')}, "sample 1: 'image' is torch.uint16"),
            ({'date': 3, 'image': (3, 'float32', 5)}, r'expected \(T, 12, 4, 4\)'),
            ({'date': 3, 'image': (2, 'float32')}, 'sample 1 has 3 dates but 2 images'),
            (
                {'date': None, 'image': (1, 'float32')},
                r"'date' of shape \(\), expected \(T,\)",
            ),
        ],
    )
    def test_bad_samples(self, second: dict[str, Any], message: str) -> None:
        def make(spec: dict[str, Any]) -> dict[str, torch.Tensor]:
            sample = {
                'date': torch.tensor(0)
                if spec['date'] is None
                else torch.zeros(spec['date'], dtype=torch.int64)
            }
            if 'image' in spec:
                t, dtype, *side = spec['image']
                size = side[0] if side else 4
                sample['image'] = torch.zeros(
                    t, 12, size, size, dtype=getattr(torch, dtype)
                )
            return sample

        first = make({'date': 2, 'image': (2, 'float32')})
        with pytest.raises(ValueError, match=message):
            collate_all_dates([first, make(second)])

    def test_not_a_dates_batch(self) -> None:
        with pytest.raises(ValueError, match='at least one sample'):
            collate_all_dates([])
        with pytest.raises(ValueError, match=r"sample 0 has no 'date'"):
            collate_all_dates([{'image': torch.zeros(2, 12, 4, 4)}])
        date = torch.zeros(2, dtype=torch.int64)
        with pytest.raises(ValueError, match='collated twice'):
            collate_all_dates([{'date': date, 'date_mask': date > 0}])

    def test_datamodule_batches_places_of_any_number_of_dates(
        self, temporal_root: Path
    ) -> None:
        dm = S2100KDataModule(
            batch_size=4,
            root=temporal_root,
            patch_size=16,
            dates='all',
            val_split_pct=0.0,
            crop_size=8,
        )
        assert dm.collate_fn is collate_all_dates
        dm.setup('fit')
        batch = batch_of(dm, 'train')
        assert batch['image'].shape == (4, 3, 12, 16, 16)
        assert batch['image'].dtype == torch.uint16
        assert sorted(batch['date_mask'].sum(1).tolist()) == [1, 2, 2, 3]
        out = dm.train_aug(batch)  # type: ignore[misc]
        assert out['image'].shape == (4, 3, 13, 8, 8)
        assert torch.equal(out['date_mask'], batch['date_mask'])
        assert S2100KDataModule(root=temporal_root).collate_fn is collate_sample_batch


def test_division_is_the_true_quotient_of_every_uint16_value() -> None:
    """Every uint16 value is divided as the original's numpy code divides it
    (true division, not a multiplication by the reciprocal, which is one unit
    in the last place off for 19,860 of the 65,536 values)."""
    exact = S2100KAugmentation(random=False, crop_size=None, insert_b10=False)
    every = torch.arange(2**16, dtype=torch.int32).to(torch.uint16)
    divided = exact({'image': every.reshape(1, 1, 256, 256)})['image'].flatten()
    numpy_quotient = torch.from_numpy((every.numpy() / 10000).astype('float32'))
    assert torch.equal(divided, numpy_quotient)
    assert not torch.equal(divided, every.float() * (1 / 10000))
