"""The datamodule's threaded loader under a real Lightning DDP fit (gloo, CPU)."""

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import Subset

from tests.ddp import DestroyProcessGroupAtExit
from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.datasets import pack_s2_100k
from torchgeo_satclip.tasks import SatCLIPTask

pytestmark = pytest.mark.usefixtures('tiny_timm')

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
WORLD = 2
EPOCHS = 2


class _RecordPoints(Callback):
    """Each process writes the points of every batch it was given, per epoch."""

    def __init__(self, out: str) -> None:
        self.out = out
        self.seen: dict[str, list[list[list[float]]]] = {
            'train': [[] for _ in range(EPOCHS)],
            'val': [[] for _ in range(EPOCHS)],
        }

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.seen['train'][trainer.current_epoch].append(batch['point'].tolist())

    def on_validation_batch_start(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.seen['val'][trainer.current_epoch].append(batch['point'].tolist())

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loaders = (trainer.train_dataloader, trainer.val_dataloaders)
        torch.save(
            {
                **self.seen,
                'loaders': [type(loader).__name__ for loader in loaders],
                'world': [getattr(loader, 'world_size', None) for loader in loaders],
            },
            f'{self.out}.{trainer.global_rank}',
        )


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_each_rank_reads_its_own_share(tmp_path: Path) -> None:
    """Two processes: every epoch, their batches cover each split once.

    The datamodule picks :class:`ThreadedBatchLoader` for the packed layout,
    which Lightning does not give a ``DistributedSampler``: the loader itself
    must split the data by rank, reshuffle at Lightning's ``set_epoch`` and
    give every rank the same number of batches (DDP hangs otherwise).
    """
    root = tmp_path / 's2_100k'
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    dm = S2100KDataModule(
        root=root,
        patch_size=32,
        batch_size=1,
        num_workers=2,
        val_split_pct=0.25,
        crop_size=16,
        jitter=0.0,
    )
    task = SatCLIPTask(
        embed_dim=4,
        legendre_polys=2,
        capacity=8,
        num_hidden_layers=1,
        location_dtype='float32',
        # a batch of one per process has no negative of its own: the other
        # process's sample serves (refused without: test_small_batches.py)
        gather_distributed=True,
    )
    out = str(tmp_path / 'seen')
    trainer = Trainer(
        accelerator='cpu',
        devices=WORLD,
        strategy='ddp_spawn',
        max_epochs=EPOCHS,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_RecordPoints(out), DestroyProcessGroupAtExit()],
    )
    trainer.fit(task, datamodule=dm)

    dm.setup('fit')  # the same seeded split, in this process
    assert dm.train_dataset is not None
    assert isinstance(dm.val_dataset, Subset)
    expected = {
        'train': sorted(dm.train_points().tolist()),
        'val': sorted(
            dm.dataset[i]['point'].tolist()  # type: ignore[index]
            for i in dm.val_dataset.indices
        ),
    }
    assert (len(expected['train']), len(expected['val'])) == (6, 2)
    seen = [torch.load(f'{out}.{rank}', weights_only=True) for rank in range(WORLD)]
    for result in seen:
        assert result['loaders'] == ['ThreadedBatchLoader'] * 2
        assert result['world'] == [WORLD, WORLD]
    for split, per_rank in (('train', 3), ('val', 1)):
        for epoch in range(EPOCHS):
            batches = [result[split][epoch] for result in seen]
            assert [len(b) for b in batches] == [per_rank] * WORLD, (split, epoch)
            points = sorted(p for rank in batches for batch in rank for p in batch)
            assert points == expected[split], (split, epoch)
    # Lightning's set_epoch reached the loader: a new order in the second epoch
    assert [r['train'][0] for r in seen] != [r['train'][1] for r in seen]
