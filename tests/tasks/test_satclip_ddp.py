"""Gathered negatives across processes (gloo on CPU, 2 processes)."""

import math
import os
import socket
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
import timm
import torch
import torch.distributed as dist
from torch import nn
from torch.multiprocessing.spawn import spawn

from torchgeo_satclip.tasks import SatCLIPTask
from torchgeo_satclip.tasks._clip import clip_loss

WORLD = 2
PER_RANK = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    features = torch.randn(WORLD * PER_RANK, 5, generator=g, dtype=torch.float64)
    lonlat = torch.stack(
        [
            torch.rand(WORLD * PER_RANK, generator=g, dtype=torch.float64) * 360 - 180,
            torch.rand(WORLD * PER_RANK, generator=g, dtype=torch.float64) * 160 - 80,
        ],
        1,
    )
    return features, lonlat


def _nets() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return nn.Linear(5, 4).double(), nn.Linear(2, 4).double()


class _Tiny(nn.Module):
    num_features = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(kwargs.get('in_chans', 3), 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.conv(x).mean(dim=(2, 3)))


def _task() -> SatCLIPTask:
    torch.manual_seed(0)
    # Patch timm only while the task is built: a global assignment would leak
    # the stand-in into every later test of the session.
    with mock.patch.object(timm, 'create_model', _Tiny):
        return cast(
            SatCLIPTask,
            SatCLIPTask(
                embed_dim=4,
                legendre_polys=3,
                capacity=8,
                location_dropout=0.0,
                location_dtype='float64',
            ).eval(),
        )


def _task_batch(features: torch.Tensor, lonlat: torch.Tensor) -> dict[str, Any]:
    # 'features' of the tiny backbone's width (4)
    return {'features': features[:, :4].float(), 'point': lonlat.float()}


def _worker(rank: int, port: int, out: str) -> None:
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        features, lonlat = _data()
        local = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        image_net, location_net = _nets()
        scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
        output = clip_loss(
            image_net(features[local]), location_net(lonlat[local]), scale, gather=True
        )
        output.loss.backward()
        grads = []
        for param in [*image_net.parameters(), *location_net.parameters()]:
            grad = param.grad.clone()  # type: ignore[union-attr]
            dist.all_reduce(grad)
            grads.append(grad / WORLD)  # DDP averages gradients
        loss = output.loss.detach().clone()
        dist.all_reduce(loss)

        task = _task()
        task_loss, metrics = task.compute_loss(
            _task_batch(features[local], lonlat[local]), gather=True
        )
        dist.all_reduce(task_loss)
        top1 = metrics['i2l_top1'].clone()
        dist.all_reduce(top1)
        if rank == 0:
            torch.save(
                {
                    'loss': loss / WORLD,
                    'grads': grads,
                    'shape': tuple(output.logits_image.shape),
                    'task_loss': task_loss.detach() / WORLD,
                    'task_top1': top1 / WORLD,
                },
                out,
            )
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason='torch.distributed unavailable')
def test_gathered_loss_equals_single_process_loss(tmp_path: Path) -> None:
    out = tmp_path / 'result.pt'
    spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    result = torch.load(out, weights_only=True)

    features, lonlat = _data()
    image_net, location_net = _nets()
    scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
    single = clip_loss(image_net(features), location_net(lonlat), scale)
    single.loss.backward()

    # each process saw all WORLD * PER_RANK candidates
    assert result['shape'] == (PER_RANK, WORLD * PER_RANK)
    assert result['loss'].item() == pytest.approx(single.loss.item(), rel=1e-10)
    params = [*image_net.parameters(), *location_net.parameters()]
    for param, grad in zip(params, result['grads'], strict=True):
        # the loss runs in float32
        torch.testing.assert_close(grad, param.grad, rtol=1e-5, atol=1e-7)

    # the task's own loss and metrics, gathered
    task = _task()
    with torch.no_grad():
        task_loss, metrics = task.compute_loss(_task_batch(features, lonlat))
    assert result['task_loss'].item() == pytest.approx(task_loss.item(), rel=1e-5)
    assert result['task_top1'].item() == pytest.approx(metrics['i2l_top1'].item())


def test_gather_is_a_no_op_without_process_group() -> None:
    emb = torch.randn(4, 3)
    a = clip_loss(emb, emb.flip(0), torch.tensor(1.0), gather=True)
    b = clip_loss(emb, emb.flip(0), torch.tensor(1.0))
    assert a.offset == 0
    assert torch.equal(a.loss, b.loss)
