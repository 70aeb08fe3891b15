"""MoCo's queue and shuffled batch norm across processes (gloo on CPU, 2 processes)."""

import os
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
import timm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.multiprocessing.spawn import spawn
from torch.utils.data import DataLoader

from tests.ddp import DestroyProcessGroupAtExit
from torchgeo_satclip.tasks import SatCLIPTask
from torchgeo_satclip.tasks._moco import moco_loss

from .test_satclip_ddp import _free_port

WORLD = 2
PER_RANK = 4
SEED = 7


class _TinyBN(nn.Module):
    """Batch norm makes a key depend on the batch it is computed in."""

    num_features = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(kwargs.get('in_chans', 3), 4, 1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.norm(self.conv(x)).amax(dim=(2, 3)))


def _task() -> SatCLIPTask:
    torch.manual_seed(0)
    with mock.patch.object(timm, 'create_model', _TinyBN):
        return SatCLIPTask(
            in_channels=3,
            clip_loss_weight=0.0,
            moco_loss_weight=1.0,
            moco_dim=5,
            moco_hidden_dim=32,
            moco_queue_size=12,
            moco_momentum=0.5,
        ).train()


def _images() -> Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(WORLD * PER_RANK, 2, 3, 4, 4, generator=g)


def _points() -> Tensor:
    return torch.zeros(WORLD * PER_RANK, 2)


def _worker(rank: int, port: int, out: str) -> None:
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        task = _task()
        with torch.no_grad():  # as after an optimiser step, the same everywhere
            for param in task.model.parameters():
                param.add_(0.1)
        local = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        batch = {'image': _images()[local], 'point': _points()[local]}
        torch.manual_seed(SEED + rank)  # rank 0's permutation is broadcast
        loss, _ = task.compute_loss(batch, enqueue=True)
        torch.save(
            {
                'loss': loss.detach(),
                'queue': task.moco.queue.clone(),
                'ptr': int(task.moco.queue_ptr),
                'key_params': [p.clone() for p in task.moco.parameters()],
            },
            f'{out}.{rank}',
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_queue_equal_on_every_process_with_shuffled_keys(tmp_path: Path) -> None:
    out = str(tmp_path / 'result')
    spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    results = [torch.load(f'{out}.{rank}', weights_only=True) for rank in range(WORLD)]

    # the same queue, pointer and momentum encoder on every process
    for other in results[1:]:
        assert torch.equal(other['queue'], results[0]['queue'])
        assert other['ptr'] == results[0]['ptr'] == WORLD * PER_RANK
        for a, b in zip(other['key_params'], results[0]['key_params'], strict=True):
            assert torch.equal(a, b)

    # one process replays the step: momentum update, rank 0's permutation,
    # keys of each shuffled chunk under its own batch statistics, unshuffled
    task = _task()
    initial_queue = task.moco.queue.clone()
    with torch.no_grad():
        for param in task.model.parameters():
            param.add_(0.1)
        task.moco.update(task.model, task.moco_head, 0.5)
        torch.manual_seed(SEED)
        n = WORLD * PER_RANK
        permutation = torch.randperm(n)
        images = _images()
        shuffled = torch.cat(
            [
                F.normalize(task.moco.head(task.moco.backbone(images[chunk, 1])), dim=1)
                for chunk in permutation.split(PER_RANK)
            ]
        )
        keys = torch.empty_like(shuffled)
        keys[permutation] = shuffled
    assert not torch.equal(permutation, torch.arange(n))
    # the keys differ, and depend on the batch they are computed in
    assert torch.cdist(keys, keys).fill_diagonal_(1).min() > 1e-3
    with torch.no_grad():
        unshuffled = F.normalize(
            task.moco.head(task.moco.backbone(images[:PER_RANK, 1]))
        )
    assert not torch.allclose(unshuffled, keys[:PER_RANK])
    torch.testing.assert_close(results[0]['queue'][:n], keys)
    torch.testing.assert_close(results[0]['queue'][n:], initial_queue[n:])
    for a, b in zip(results[0]['key_params'], task.moco.parameters(), strict=True):
        torch.testing.assert_close(a, b)

    # each process's loss: its own queries against its own (gathered) keys
    for rank, result in enumerate(results):
        local = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        with torch.no_grad():
            query = task.moco_head(task.model(images[local, 0]))
        expected = moco_loss(query, keys[local], initial_queue, 0.2).loss
        torch.testing.assert_close(result['loss'], expected)


class _Views(torch.utils.data.Dataset[dict[str, Tensor]]):
    """Two views of random 3-band images (picklable, for spawned processes)."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(index)
        return {'image': torch.randn(2, 3, 4, 4, generator=g), 'point': torch.zeros(2)}


class _SaveMoCo(Callback):
    """Each process writes its queue, pointer and key encoder when training ends."""

    def __init__(self, out: str) -> None:
        self.out = out

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        task = cast(SatCLIPTask, pl_module)
        torch.save(
            {
                'queue': task.moco.queue.clone(),
                'ptr': int(task.moco.queue_ptr),
                'key_params': [p.detach().clone() for p in task.moco.parameters()],
                'query_params': [p.detach().clone() for p in task.model.parameters()],
                'step': trainer.global_step,
                # what DDP does not broadcast: the queue stays equal by itself
                'ignored': sorted(
                    getattr(trainer.strategy.model, 'parameters_to_ignore', [])
                ),
            },
            f'{self.out}.{trainer.global_rank}',
        )


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_lightning_ddp_keeps_the_queue_equal_on_every_process(tmp_path: Path) -> None:
    """A real `Trainer(strategy='ddp_spawn')` fit: queues stay equal, steps enqueue."""
    out = str(tmp_path / 'moco')
    task = _task()
    initial = task.moco.queue.clone()
    steps = 2
    trainer = Trainer(
        accelerator='cpu',
        devices=WORLD,
        strategy='ddp_spawn',
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_SaveMoCo(out), DestroyProcessGroupAtExit()],
    )
    loader = DataLoader(_Views(), batch_size=PER_RANK, shuffle=True)
    trainer.fit(task, train_dataloaders=loader)
    results = [torch.load(f'{out}.{rank}', weights_only=True) for rank in range(WORLD)]
    enqueued = steps * WORLD * PER_RANK  # the global batch, every step
    for result in results:
        assert result['step'] == steps
        assert result['ptr'] == enqueued % initial.shape[0]
        assert result['ignored'] == ['moco.queue', 'moco.queue_ptr']
    for other in results[1:]:
        assert torch.equal(other['queue'], results[0]['queue'])
        for name in ('key_params', 'query_params'):
            for a, b in zip(other[name], results[0][name], strict=True):
                assert torch.equal(a, b)
    # every slot was overwritten by keys (12 slots, 16 keys), none is the seed's
    queue = results[0]['queue']
    assert not torch.isclose(queue, initial).all(dim=1).any()
    torch.testing.assert_close(queue.norm(dim=1), torch.ones(len(queue)))
