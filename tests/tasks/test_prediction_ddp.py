"""EmbeddingWriter under a real two-process DDP predict (gloo, CPU)."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, DistributedSampler

from tests.ddp import DestroyProcessGroupAtExit
from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.tasks import EmbeddingWriter, SatCLIPTask

pytestmark = pytest.mark.usefixtures('tiny_timm')

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
SAMPLES = 7  # odd: the two processes get 4 and 3 samples, or a padding repeat
BATCH = 3


class _OwnIndices:
    """A loader that is no ``DataLoader`` and records its indices itself.

    As a :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader` may: it
    splits the dataset by rank, in reverse order, padded by a repeat so that
    both processes get 4 samples, and keeps ``seen_batch_indices``.
    """

    def __init__(self, dataset: Any, collate_fn: Any) -> None:
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.seen_batch_indices: list[list[int]] = []

    def _mine(self) -> list[int]:
        order = list(range(len(self.dataset)))[::-1]
        order += order[: len(order) % 2]
        return order[dist.get_rank() :: dist.get_world_size()]

    def __len__(self) -> int:
        return -(-len(self._mine()) // BATCH)

    def __iter__(self) -> Iterator[Any]:
        mine = self._mine()
        self.seen_batch_indices = []
        for start in range(0, len(mine), BATCH):
            batch = mine[start : start + BATCH]
            self.seen_batch_indices.append(batch)
            yield self.collate_fn([self.dataset[i] for i in batch])


class _Loaders(S2100KDataModule):
    """Three prediction loaders: the datamodule's, a padding one, another kind.

    Lightning gives the first an unrepeated distributed sampler (4 and 3
    samples); the second keeps its own ``DistributedSampler``, which shuffles
    and repeats one sample so that both processes get 4; the third is
    :class:`_OwnIndices`.
    """

    def predict_dataloader(self) -> list[Any]:  # type: ignore[override]
        plain = super().predict_dataloader()
        assert isinstance(plain, DataLoader)
        padded = DataLoader(
            plain.dataset,
            batch_size=BATCH,
            sampler=DistributedSampler(plain.dataset, shuffle=True, seed=1),
            collate_fn=plain.collate_fn,
        )
        return [plain, padded, _OwnIndices(plain.dataset, plain.collate_fn)]


class _CountRows(Callback):
    """Each process saves how many rows each prediction loader gave it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.rows = [0, 0, 0]

    def on_predict_batch_start(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.rows[dataloader_idx] += len(batch['point'])

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        (self.out / f'rows.{trainer.global_rank}.json').write_text(
            json.dumps(self.rows)
        )


def _task() -> SatCLIPTask:
    """A tiny task (the image encoder is the tiny timm model of the fixture)."""
    return SatCLIPTask(
        embed_dim=4,
        legendre_polys=2,
        capacity=8,
        num_hidden_layers=1,
        location_dtype='float32',
    )


def _trainer(devices: int, out: Path, *extra: Callback) -> Trainer:
    return Trainer(
        accelerator='cpu',
        devices=devices,
        strategy='ddp_spawn' if devices > 1 else 'auto',
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            EmbeddingWriter(out / 'npy', format='npy'),
            EmbeddingWriter(out / 'parquet', format='parquet'),
            DestroyProcessGroupAtExit(),
            *extra,
        ],
    )


def _read(out: Path) -> dict[str, np.ndarray]:
    frame = pd.read_parquet(out / 'parquet' / 'embeddings.parquet')
    points = pd.read_csv(out / 'npy' / 'points.csv')
    # both formats hold the same rows
    np.testing.assert_array_equal(frame[['lon', 'lat']], points[['lon', 'lat']])
    location = np.load(out / 'npy' / 'location_embedding.npy')
    image = np.load(out / 'npy' / 'image_embedding.npy')
    np.testing.assert_array_equal(np.stack(frame['location_embedding']), location)
    np.testing.assert_array_equal(np.stack(frame['image_embedding']), image)
    assert not [p for p in out.rglob('*') if p.name.startswith('.')]  # no leftovers
    return {'point': points.to_numpy(), 'location': location, 'image': image}


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_ddp_predict_writes_every_sample_once_in_order(tmp_path: Path) -> None:
    """Two processes write what one writes: every sample once, in dataset order."""
    root = tmp_path / 's2_100k'
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    index = pd.read_csv(root / 'index.csv')
    index.head(SAMPLES).to_csv(root / 'index.csv', index=False)
    kwargs: dict[str, Any] = {
        'root': root,
        'patch_size': 32,
        'batch_size': BATCH,
        'crop_size': 16,
    }
    task = _task()

    _trainer(1, tmp_path / 'one').predict(task, S2100KDataModule(**kwargs))
    one = _read(tmp_path / 'one')
    assert len(one['point']) == SAMPLES
    np.testing.assert_allclose(one['point'], index[['lon', 'lat']].head(SAMPLES))

    counts = tmp_path / 'counts'
    counts.mkdir()
    _trainer(2, tmp_path / 'two', _CountRows(counts)).predict(
        task, _Loaders(**kwargs), return_predictions=False
    )
    rows = [json.loads((counts / f'rows.{r}.json').read_text()) for r in (0, 1)]
    # the first loader split 4 + 3; the others padded to 4 + 4 (one repeat)
    assert [r[0] for r in rows] == [4, 3]
    assert [r[1] for r in rows] == [r[2] for r in rows] == [4, 4]
    two = _read(tmp_path / 'two')
    # one block per loader, each all samples once, in dataset order
    assert len(two['point']) == 3 * SAMPLES
    for start in range(0, 3 * SAMPLES, SAMPLES):
        block = slice(start, start + SAMPLES)
        assert len(np.unique(two['point'][block], axis=0)) == SAMPLES
        np.testing.assert_array_equal(two['point'][block], one['point'])
        for key in ('location', 'image'):
            # float32 rounding may differ with the batches' composition
            np.testing.assert_allclose(
                two[key][block], one[key], rtol=1e-5, atol=1e-6, err_msg=key
            )


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_ddp_predict_through_the_threaded_loader(tmp_path: Path) -> None:
    """The packed layout with workers: the datamodule's ThreadedBatchLoader
    records the dataset positions of its batches, so two processes write
    every sample once, in order, as the recipe of several GPUs does."""
    from torchgeo_satclip.datamodules import ThreadedBatchLoader
    from torchgeo_satclip.datasets import pack_s2_100k

    root = tmp_path / 's2_100k'
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    index = pd.read_csv(root / 'index.csv')
    index.head(SAMPLES).to_csv(root / 'index.csv', index=False)
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    kwargs: dict[str, Any] = {
        'root': root,
        'patch_size': 32,
        'batch_size': BATCH,
        'crop_size': 16,
        'num_workers': 1,
    }
    probe = S2100KDataModule(**kwargs)
    probe.setup('predict')
    assert isinstance(probe.predict_dataloader(), ThreadedBatchLoader)
    task = _task()
    _trainer(2, tmp_path / 'two').predict(
        task, S2100KDataModule(**kwargs), return_predictions=False
    )
    two = _read(tmp_path / 'two')
    assert len(two['point']) == SAMPLES
    np.testing.assert_allclose(two['point'], index[['lon', 'lat']].head(SAMPLES))
