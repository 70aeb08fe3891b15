"""MoCo-v2, temporal positives and the geo pretext as options of SatCLIPTask."""

import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.datasets import S2100K
from torchgeo_satclip.models import load_location_encoder
from torchgeo_satclip.tasks import SatCLIPTask, export_official_checkpoint
from torchgeo_satclip.tasks._moco import (
    MomentumEncoder,
    in_parts,
    mlp_head,
    moco_loss,
    momentum_update,
)

from .test_satclip import trainer as quiet_trainer

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'

pytestmark = pytest.mark.usefixtures('tiny_timm')


def moco_task(**kwargs: Any) -> SatCLIPTask:
    args: dict[str, Any] = {
        'embed_dim': 8,
        'legendre_polys': 3,
        'capacity': 16,
        'location_dropout': 0.0,
        'clip_loss_weight': 0.0,
        'moco_loss_weight': 1.0,
        'moco_dim': 6,
        'moco_queue_size': 16,
        'moco_momentum': 0.9,
    }
    args.update(kwargs)
    torch.manual_seed(0)
    return SatCLIPTask(**args)


def pair_batch(n: int = 4, seed: int = 0, dates: bool = False) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g) * 360 - 180
    lat = torch.rand(n, generator=g) * 150 - 75
    batch = {
        'image': torch.rand(n, 2, 13, 8, 8, generator=g),
        'point': torch.stack([lon, lat], 1),
    }
    if dates:
        batch['date'] = torch.tensor([[18000, 18100]] * n)
    return batch


def fit_trainer(tmp_path: Path, **kwargs: Any) -> Trainer:
    """test_satclip's quiet CPU trainer, without checkpoints and with
    Lightning's default sanity check."""
    args: dict[str, Any] = {'enable_checkpointing': False, 'num_sanity_val_steps': 2}
    return quiet_trainer(tmp_path, **{**args, **kwargs})


# ------------------------------------------------------------ the queue
def test_queue_is_fifo_and_wraps_around() -> None:
    encoder = MomentumEncoder(nn.Linear(2, 3), nn.Identity(), queue_size=5, dim=3)
    initial = encoder.queue.clone()
    assert torch.allclose(initial.norm(dim=1), torch.ones(5))
    keys = torch.arange(21, dtype=torch.float32).reshape(7, 3)
    encoder.enqueue(keys[:3])
    assert int(encoder.queue_ptr) == 3
    assert torch.equal(encoder.queue[:3], keys[:3])
    assert torch.equal(encoder.queue[3:], initial[3:])
    encoder.enqueue(keys[3:7])  # wraps: two at the end, two at the start
    assert int(encoder.queue_ptr) == 2
    assert torch.equal(encoder.queue, keys[[5, 6, 2, 3, 4]])
    # more keys than the queue holds: the last five, the oldest at the pointer
    more = -torch.arange(24, dtype=torch.float32).reshape(8, 3)
    encoder.enqueue(more)
    assert int(encoder.queue_ptr) == 2
    assert torch.equal(encoder.queue, more[[6, 7, 3, 4, 5]])


def test_queue_is_seeded_identically() -> None:
    a = MomentumEncoder(nn.Linear(2, 3), nn.Identity(), queue_size=7, dim=3)
    torch.manual_seed(123)  # the global RNG does not matter
    b = MomentumEncoder(nn.Linear(2, 3), nn.Identity(), queue_size=7, dim=3)
    assert torch.equal(a.queue, b.queue)


def test_momentum_encoder_rejects_empty_queue() -> None:
    with pytest.raises(ValueError, match='queue_size'):
        MomentumEncoder(nn.Linear(2, 3), nn.Identity(), queue_size=0, dim=3)


# ------------------------------------------------- the momentum update
def test_momentum_update_formula_exact_and_buffers_untouched() -> None:
    torch.manual_seed(0)
    query = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    key = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    cast(Tensor, query[1].running_mean).fill_(
        5.0
    )  # buffers are not momentum-updated (MoCo)
    before = [p.clone() for p in key.parameters()]
    momentum_update(key, query, 0.75)
    for old, new, q in zip(before, key.parameters(), query.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * q, rtol=0, atol=1e-15)
    assert torch.equal(
        cast(Tensor, key[1].running_mean), torch.zeros(4, dtype=torch.float64)
    )


def move_query_away(task: SatCLIPTask) -> tuple[list[Tensor], list[Tensor]]:
    """Move the query encoder away from its momentum copy.

    Returns:
        Copies of the query parameters (backbone, then MoCo head) and of the
        momentum encoder's, in ``task.moco.parameters()`` order.
    """
    queries = [*task.model.parameters(), *task.moco_head.parameters()]
    with torch.no_grad():
        for param in queries:
            param.add_(torch.randn_like(param))
    return [p.clone() for p in queries], [p.clone() for p in task.moco.parameters()]


def assert_moved_once(
    task: SatCLIPTask, query: list[Tensor], key: list[Tensor], atol: float
) -> None:
    """The momentum encoder made one update at momentum 0.9 from *key*
    towards *query* (the copies :func:`move_query_away` returned)."""
    for old, new, q in zip(key, task.moco.parameters(), query, strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * q, rtol=0, atol=atol)


def test_task_updates_the_key_encoder_before_computing_keys() -> None:
    task = moco_task(moco_momentum=0.9).train()
    query, key = move_query_away(task)
    batch = pair_batch()
    task.compute_loss(batch, enqueue=True)
    assert_moved_once(task, query, key, atol=1e-6)
    # the enqueued keys are the updated momentum encoder's normalised keys
    moco = task.moco
    expected = F.normalize(moco.head(moco.backbone(batch['image'][:, 1])), dim=1)
    torch.testing.assert_close(moco.queue[:4], expected)
    assert int(moco.queue_ptr) == 4


def test_key_encoder_moves_once_per_optimiser_step(tmp_path: Path) -> None:
    """With accumulate_grad_batches 2, the two batches of one optimiser step
    see the same query weights: one momentum update (m), not two (m ** 2)."""
    task = moco_task(moco_momentum=0.9, moco_positives='temporal', lr=1e-12)
    query, key = move_query_away(task)
    trainer = fit_trainer(
        tmp_path,
        max_steps=1,
        accumulate_grad_batches=2,
        limit_train_batches=2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, pair_datamodule(augmentation='moco'))
    assert trainer.global_step == 1
    assert int(task.moco.queue_ptr) == 8  # both batches enqueued their keys
    assert_moved_once(task, query, key, atol=1e-5)


def test_a_second_fit_updates_the_key_encoder_at_its_first_step(
    tmp_path: Path,
) -> None:
    """A second fit of the same task (a new Trainer, or resuming in the same
    process) starts its steps again: the key encoder moves at the first."""
    task = moco_task(moco_momentum=0.9, moco_positives='temporal', lr=1e-12)
    for run in range(2):
        query, key = move_query_away(task)
        trainer = fit_trainer(
            tmp_path / str(run),
            max_steps=1,
            limit_train_batches=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
        )
        trainer.fit(task, pair_datamodule(augmentation='moco'))
        assert trainer.global_step == 1
        assert_moved_once(task, query, key, atol=1e-5)


def test_validation_neither_updates_nor_enqueues() -> None:
    task = moco_task().eval()
    queue = task.moco.queue.clone()
    key = [p.clone() for p in task.moco.parameters()]
    with torch.no_grad():
        for param in task.model.parameters():
            param.add_(1.0)
        loss, metrics = task.compute_loss(pair_batch())
    assert torch.isfinite(loss)
    assert set(metrics) == {'moco_loss', 'moco_acc'}
    assert torch.equal(task.moco.queue, queue)
    assert int(task.moco.queue_ptr) == 0
    for old, new in zip(key, task.moco.parameters(), strict=True):
        assert torch.equal(old, new)


# -------------------------------------------------------------- the loss
def test_moco_loss_matches_hand_computation() -> None:
    query = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    key = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    queue = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.6, 0.8]])
    temperature = 0.5
    out = moco_loss(query, key, queue, temperature)
    q = [(0.6, 0.8), (1.0, 0.0)]
    k = [(0.0, 1.0), (1 / math.sqrt(2), 1 / math.sqrt(2))]
    losses, hits = [], 0
    for qi, ki in zip(q, k, strict=True):
        logits = [(qi[0] * ki[0] + qi[1] * ki[1]) / temperature]
        logits += [(qi[0] * n[0] + qi[1] * n[1]) / temperature for n in queue.tolist()]
        losses.append(-logits[0] + math.log(sum(math.exp(x) for x in logits)))
        hits += int(max(range(4), key=lambda j: logits[j]) == 0)
    assert out.loss.item() == pytest.approx(sum(losses) / 2, rel=1e-6)
    assert out.accuracy.item() == hits / 2 == 0.0
    assert out.logits.shape == (2, 4)


@pytest.mark.parametrize('inputs', ['float32', 'bfloat16'])
def test_moco_loss_is_float32_under_bf16_autocast(inputs: str) -> None:
    """``bf16-mixed`` leaves the logits float32 and equal to the float32 ones.

    Autocast ran the product with the queue in bfloat16 although the inputs
    were cast to float32 first (the logits differed by up to 0.08 here at
    temperature 0.02); bfloat16 queries (a head run under autocast) give the
    logits of their float32 values.
    """
    g = torch.Generator().manual_seed(0)
    query = torch.randn(64, 128, generator=g).to(getattr(torch, inputs))
    key = query.float() + 3 * torch.randn(64, 128, generator=g)
    queue = F.normalize(torch.randn(4096, 128, generator=g), dim=1)
    q = F.normalize(query.float(), dim=1)
    k = F.normalize(key, dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / 0.02
    loss = F.cross_entropy(logits, torch.zeros(64, dtype=torch.long))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = moco_loss(query, key, queue, 0.02)
    assert out.logits.dtype == torch.float32
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.logits, logits, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(out.loss, loss, rtol=1e-6, atol=1e-6)


def test_moco_loss_shape_mismatch() -> None:
    with pytest.raises(ValueError, match='must be'):
        moco_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(4, 2), 0.1)


def test_gradients_do_not_reach_the_momentum_encoder() -> None:
    task = moco_task().train()
    loss, _ = task.compute_loss(pair_batch(), enqueue=True)
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in task.moco.parameters())
    assert all(p.grad is not None for p in task.model.parameters())
    assert all(p.grad is not None for p in task.moco_head.parameters())


def test_symmetric_loss_enqueues_both_keys() -> None:
    task = moco_task(moco_symmetric=True).train()
    loss, _ = task.compute_loss(pair_batch(), enqueue=True)
    assert torch.isfinite(loss)
    assert int(task.moco.queue_ptr) == 8


def test_mlp_head_shape() -> None:
    head = mlp_head(4, 10, 6)
    assert head(torch.ones(3, 4)).shape == (3, 6)
    assert task_head_widths(moco_task()) == (4, 4, 6)
    assert task_head_widths(moco_task(moco_hidden_dim=9)) == (4, 9, 6)


def task_head_widths(task: SatCLIPTask) -> tuple[int, int, int]:
    head = cast(nn.Sequential, task.moco_head)
    first, last = cast(nn.Linear, head[0]), cast(nn.Linear, head[2])
    return first.in_features, first.out_features, last.out_features


# ------------------------------------------------- parts on and off
def test_clip_off_builds_no_location_encoder() -> None:
    task = moco_task()
    keys = set(task.state_dict())
    assert not any(k.startswith(('location_encoder.', 'projection.')) for k in keys)
    assert 'logit_scale' not in keys
    for name in ('location_encoder', 'projection', 'logit_scale'):
        assert not hasattr(task, name)
    assert {k.split('.')[0] for k in keys} == {'model', 'moco_head', 'moco'}
    # model.* is the query backbone alone
    model_keys = {k for k in keys if k.startswith('model.')}
    assert model_keys == {f'model.{k}' for k in task.model.state_dict()}
    with pytest.raises(ValueError, match='clip_loss_weight: 0'):
        task.encode_location(torch.zeros(1, 2))
    with pytest.raises(ValueError, match='clip_loss_weight: 0'):
        export_official_checkpoint(task, 'unused.ckpt')


def test_geo_head_input_switches_with_clip() -> None:
    with_clip = moco_task(clip_loss_weight=1.0, geo_classes=3, geo_loss_weight=1.0)
    assert with_clip.geo_head is not None
    assert with_clip.geo_head.in_features == 8  # the projection (embed_dim)
    without = moco_task(geo_classes=3, geo_loss_weight=1.0)
    assert without.geo_head is not None
    assert without.geo_head.in_features == 4  # the backbone's pooled features
    batch = pair_batch()
    for task in (with_clip, without):
        task.fit_geo_centroids(batch['point'].double())
        loss, metrics = task.train().compute_loss(batch, enqueue=True)
        assert 'geo_loss' in metrics
        assert 'moco_loss' in metrics
        assert torch.isfinite(loss)
    # geo alone (no CLIP, no MoCo) is a valid task on single images
    geo_only = moco_task(moco_loss_weight=0.0, geo_classes=3, geo_loss_weight=1.0)
    geo_only.fit_geo_centroids(batch['point'].double())
    single = {'image': batch['image'][:, 0], 'point': batch['point']}
    _, metrics = geo_only.compute_loss(single)
    assert set(metrics) == {'geo_loss'}


def test_hybrid_loss_is_the_weighted_sum() -> None:
    task = moco_task(
        clip_loss_weight=0.5, moco_loss_weight=2.0, geo_classes=3, geo_loss_weight=0.25
    ).eval()
    batch = pair_batch()
    task.fit_geo_centroids(batch['point'].double())
    with torch.no_grad():
        loss, metrics = task.compute_loss(batch)
    expected = (
        0.5 * metrics['clip_loss']
        + 2.0 * metrics['moco_loss']
        + 0.25 * metrics['geo_loss']
    )
    torch.testing.assert_close(loss, expected)
    assert {'i2l_top1', 'median_km', 'moco_acc'} <= set(metrics)


# ------------------------------- shuffled batch norm on one process
def bn_encoder() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 4)).train()


def test_in_parts_normalises_each_part_on_its_own() -> None:
    encoder = bn_encoder()
    x = torch.randn(7, 3)
    parts = in_parts(encoder, x, 3)  # 3, 2, 2 images
    expected = torch.cat([encoder(x[:3]), encoder(x[3:5]), encoder(x[5:])])
    torch.testing.assert_close(parts, expected)
    assert not torch.allclose(parts, encoder(x))  # other statistics
    torch.testing.assert_close(in_parts(encoder, x, 1), encoder(x))
    # at least two images a part (one image has no batch statistics)
    torch.testing.assert_close(in_parts(encoder, x[:5], 8), in_parts(encoder, x[:5], 2))
    torch.testing.assert_close(in_parts(encoder, x[:3], 2), encoder(x[:3]))


def test_keys_in_shuffled_parts_on_one_process() -> None:
    encoder = MomentumEncoder(bn_encoder(), nn.Identity(), queue_size=4, dim=4)
    x = torch.randn(8, 3)
    torch.manual_seed(5)
    keys = encoder(x, shuffle_bn=True, splits=2)
    torch.manual_seed(5)
    order = torch.randperm(8)
    shuffled = torch.cat(
        [encoder.backbone(x[order[:4]]), encoder.backbone(x[order[4:]])]
    )
    expected = torch.empty_like(shuffled)
    expected[order] = F.normalize(shuffled, dim=1)
    torch.testing.assert_close(keys, expected)
    plain = encoder(x, shuffle_bn=True)  # one part: no shuffle, as before
    torch.testing.assert_close(plain, F.normalize(encoder.backbone(x), dim=1))
    assert not torch.allclose(keys, plain)
    # without batch norm the parts change nothing: the keys come back in order
    linear = MomentumEncoder(nn.Linear(3, 4), nn.Identity(), queue_size=4, dim=4)
    torch.testing.assert_close(
        linear(x, shuffle_bn=True, splits=3), linear(x), rtol=1e-6, atol=1e-6
    )
    assert torch.equal(encoder(x, shuffle_bn=False, splits=2), encoder(x))


def test_bn_splits_accepts_numpy_integers() -> None:
    task = moco_task(moco_bn_splits=np.int64(2)).train()
    assert task._bn_splits(enqueue=True) == 2


@pytest.mark.parametrize(
    ('kwargs', 'training', 'n', 'parts'),
    [
        ({'moco_bn_splits': 2}, True, 4, [2, 2]),
        ({'moco_bn_splits': 3}, True, 7, [3, 2, 2]),
        ({'moco_bn_splits': 3, 'moco_symmetric': True}, True, 6, [2, 2, 2] * 2),
        ({'moco_bn_splits': 8}, True, 5, [3, 2]),  # two images a part at least
        ({'moco_bn_splits': 2}, False, 4, [4]),  # validation: whole batches
        ({'moco_bn_splits': 2, 'moco_shuffle_bn': False}, True, 4, [4]),
        ({}, True, 4, [4]),
    ],
)
def test_task_encodes_in_parts_while_training(
    kwargs: dict[str, Any], training: bool, n: int, parts: list[int]
) -> None:
    task = moco_task(**kwargs).train(training)
    seen: dict[str, list[int]] = {'query': [], 'key': []}
    for name, module in (('query', task.model), ('key', task.moco.backbone)):
        module.register_forward_hook(
            lambda _, args, out, name=name: seen[name].append(len(args[0]))
        )
    loss, _ = task.compute_loss(pair_batch(n), enqueue=training)
    assert seen == {'query': parts, 'key': parts}
    assert torch.isfinite(loss)


# ----------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'freeze_backbone': True}, 'cannot be frozen'),
        ({'moco_loss_weight': 0.0}, 'nothing to train'),
        (
            {'moco_loss_weight': -1.0},
            'moco_loss_weight must be a finite real number >= 0, not -1.0',
        ),
        ({'moco_queue_size': 0}, 'moco_queue_size'),
        ({'moco_dim': 0}, 'moco_dim'),
        ({'moco_hidden_dim': 0}, 'moco_hidden_dim'),
        ({'moco_momentum': 1.5}, 'moco_momentum'),
        ({'moco_temperature': 0.0}, 'moco_temperature'),
        ({'moco_positives': 'dates'}, 'moco_positives'),
        ({'moco_bn_splits': 0}, 'moco_bn_splits must be >= 1, not 0'),
        ({'moco_bn_splits': 2.0}, 'moco_bn_splits must be an integer, not 2.0'),
        ({'moco_bn_splits': True}, 'moco_bn_splits must be an integer'),
        ({'optimizer': 'adam'}, 'optimizer'),
        ({'momentum': 1.0}, 'momentum'),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        moco_task(**kwargs)


def test_batches_that_contradict_the_positives_are_refused() -> None:
    augmentation = moco_task().train()
    with pytest.raises(ValueError, match='moco_positives: temporal'):
        augmentation.compute_loss(pair_batch(dates=True), enqueue=True)
    temporal = moco_task(moco_positives='temporal').train()
    with pytest.raises(ValueError, match='needs two dates'):
        temporal.compute_loss(pair_batch(), enqueue=True)
    single = pair_batch(dates=True)
    single['image'] = single['image'][:, 0]
    with pytest.raises(ValueError, match='dates: pair'):
        temporal.compute_loss(single, enqueue=True)
    with pytest.raises(ValueError, match='views: 2'):
        augmentation.compute_loss(
            {'image': single['image'], 'point': single['point']}, enqueue=True
        )
    with pytest.raises(ValueError, match='cached-feature'):
        augmentation.compute_loss(
            {'features': torch.ones(4, 4), 'point': single['point']}
        )
    padded = pair_batch(dates=True)  # dates='all' of places of 1 and 2 dates
    padded['date_mask'] = torch.ones(padded['date'].shape, dtype=torch.bool)
    padded['date_mask'][0, 1] = False
    with pytest.raises(ValueError, match=r"pads places of dates='all'.*dates: pair"):
        temporal.compute_loss(padded, enqueue=True)
    with pytest.raises(ValueError, match=r"dates='all'.*dates: index and .*views: 2"):
        augmentation.compute_loss(padded, enqueue=True)
    assert int(temporal.moco.queue_ptr) == 0  # nothing refused was enqueued
    padded['date_mask'][0, 1] = True  # two real dates everywhere: accepted
    temporal.compute_loss(padded, enqueue=True)
    assert int(temporal.moco.queue_ptr) == len(padded['image'])


def test_sgd_decays_every_parameter_but_the_logit_scale() -> None:
    task = moco_task(clip_loss_weight=1.0, optimizer='sgd', momentum=0.8, lr=0.03)
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    decay, no_decay = optimizer.param_groups
    assert no_decay['params'] == [task.logit_scale]
    trainable = [p for p in task.parameters() if p.requires_grad]
    assert len(decay['params']) == len(trainable) - 1
    assert decay['momentum'] == 0.8
    assert decay['lr'] == 0.03


# ------------------------------------------------ training end to end
class FakePairs(Dataset[dict[str, Tensor]]):
    """Two dates of each of 12 places, as the dataset's dates='pair' delivers."""

    def __init__(self, n: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 10000, (n, 3, 12, 32, 32), generator=g).to(
            torch.int32
        )
        lon = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180
        lat = torch.rand(n, generator=g, dtype=torch.float64) * 150 - 75
        self.points = torch.stack([lon, lat], 1)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        first, second = torch.randperm(3)[:2].sort().values.tolist()
        return {
            'image': self.images[index, [first, second]].to(torch.float32),
            'point': self.points[index].float(),
            'date': torch.tensor([18000 + 30 * first, 18000 + 30 * second]),
        }


def pair_datamodule(**kwargs: Any) -> S2100KDataModule:
    dm = S2100KDataModule(
        batch_size=4, crop_size=16, root=str(DATA), patch_size=32, **kwargs
    )
    dm.dataset = FakePairs()
    return dm


def test_fast_dev_run_views_augmentation(tmp_path: Path) -> None:
    dm = S2100KDataModule(
        batch_size=2,
        crop_size=16,
        views=2,
        augmentation='moco',
        root=str(DATA),
        patch_size=32,
    )
    task = moco_task(optimizer='sgd', lr=0.03, scheduler='cosine')
    fit_trainer(tmp_path, fast_dev_run=1).fit(task, dm)
    assert int(task.moco.queue_ptr) == 2


@pytest.mark.parametrize(
    'kwargs',
    [
        {'geo_classes': 3, 'geo_loss_weight': 1.0},  # GASSL: MoCo + TP + Geo
        {'clip_loss_weight': 1.0, 'geo_classes': 3, 'geo_loss_weight': 0.5},  # hybrid
    ],
    ids=['gassl_tp_geo', 'hybrid'],
)
def test_fast_dev_run_temporal_pairs(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    task = moco_task(moco_positives='temporal', **kwargs)
    fit_trainer(tmp_path, fast_dev_run=1).fit(
        task, pair_datamodule(augmentation='moco')
    )
    assert int(task.moco.queue_ptr) == 4


def test_checkpoint_round_trip_keeps_queue_and_momentum_encoder(tmp_path: Path) -> None:
    task = moco_task(
        moco_positives='temporal',
        clip_loss_weight=1.0,
        geo_classes=3,
        geo_loss_weight=1.0,
    )
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = fit_trainer(
        tmp_path,
        max_steps=2,
        limit_val_batches=0,
        enable_checkpointing=True,
        callbacks=[checkpoint],
    )
    trainer.fit(task, pair_datamodule())
    assert int(task.moco.queue_ptr) == 8
    path = Path(checkpoint.last_model_path)
    loaded = SatCLIPTask.load_from_checkpoint(path, map_location='cpu')
    for (name, a), b in zip(
        task.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert int(loaded.moco.queue_ptr) == 8
    # readers of model.* and the location encoder are not confused by moco.*
    state = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    assert any(k.startswith('moco.backbone.') for k in state)
    encoder = load_location_encoder(path)
    assert encoder.embed_dim == 8
    official = export_official_checkpoint(
        path, tmp_path / 'official.ckpt', location_only=True
    )
    exported = torch.load(official, map_location='cpu', weights_only=True)['state_dict']
    assert not any('moco' in k for k in exported)


def test_predict_without_clip_gives_backbone_features() -> None:
    task = moco_task().eval()
    batch = pair_batch()
    out = task.predict_step(batch, 0)
    assert set(out) == {'point', 'image_features'}
    assert out['image_features'].shape == (4, 4)


# ------------------------------------- the real dataset's pairs of dates
TEMPORAL = DATA / 'temporal'


def temporal_datamodule(**kwargs: Any) -> S2100KDataModule:
    args: dict[str, Any] = {
        'batch_size': 2,
        'crop_size': 8,
        'augmentation': 'moco',
        'val_split_pct': 0.0,
        'root': str(TEMPORAL),
        'patch_size': 16,
        'dates': 'pair',
    }
    args.update(kwargs)
    return S2100KDataModule(**args)


def test_validation_pairs_are_fixed_training_pairs_are_not() -> None:
    """With random pairs, the validation split reads a copy with fixed pairs
    (seeded by the split's seed): its loss compares across epochs."""
    dm = temporal_datamodule(val_split_pct=0.5, seed=1, batch_size=1)
    dm.setup('fit')
    assert isinstance(dm.val_dataset, Subset)
    assert isinstance(dm.train_dataset, Subset)
    val_source = cast(S2100K, dm.val_dataset.dataset)
    assert val_source.fixed_pairs
    assert not cast(S2100K, dm.train_dataset.dataset).fixed_pairs
    assert val_source.files is cast(S2100K, dm.dataset).files
    torch.manual_seed(0)
    epochs = [
        [batch['date'].tolist() for batch in dm.val_dataloader()] for _ in range(12)
    ]
    assert all(epoch == epochs[0] for epoch in epochs)
    expected = S2100K(str(TEMPORAL), patch_size=16, dates='pair', pair_seed=1)
    index = dm.val_dataset.indices[0]
    assert epochs[0][0][0] == expected[index]['date'].tolist()
    # any seed the split takes gives the validation pairs a valid seed
    for seed in (-1, np.int64(3)):
        odd = temporal_datamodule(val_split_pct=0.5, seed=seed, batch_size=1)
        odd.setup('fit')
        assert isinstance(odd.val_dataset, Subset)
        assert cast(S2100K, odd.val_dataset.dataset).fixed_pairs
    # a dataset whose pairs are already fixed is used as it is
    seeded = temporal_datamodule(val_split_pct=0.5, pair_seed=5, batch_size=1)
    seeded.setup('fit')
    assert isinstance(seeded.val_dataset, Subset)
    assert seeded.val_dataset.dataset is seeded.dataset


def test_s2_100k_pairs_of_dates_end_to_end(tmp_path: Path) -> None:
    dm = temporal_datamodule()
    dm.setup('fit')
    batch = next(iter(dm.train_dataloader()))
    assert batch['image'].shape == (2, 2, 12, 16, 16)
    assert batch['image'].dtype == torch.uint16
    assert batch['date'].shape == (2, 2)
    assert bool((batch['date'][:, 0] != batch['date'][:, 1]).all())
    task = moco_task(moco_positives='temporal', geo_classes=2, geo_loss_weight=1.0)
    fit_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(
        task, temporal_datamodule()
    )
    assert int(task.moco.queue_ptr) == 4
    # positives by augmentation refuse pairs of dates, naming the fix
    with pytest.raises(ValueError, match='moco_positives: temporal'):
        fit_trainer(tmp_path, fast_dev_run=1).fit(moco_task(), temporal_datamodule())


def test_bf16_mixed_and_channels_last(tmp_path: Path) -> None:
    task = moco_task(
        moco_positives='temporal',
        clip_loss_weight=1.0,
        location_dtype='float32',
        channels_last=True,
    )
    fit_trainer(tmp_path, fast_dev_run=1, precision='bf16-mixed').fit(
        task, pair_datamodule()
    )
    assert task.moco.queue.dtype == torch.float32
    assert int(task.moco.queue_ptr) == 4
    assert torch.allclose(task.moco.queue[:4].norm(dim=1), torch.ones(4), atol=1e-3)


# ------------------------------------------------- bad input, by name
@pytest.mark.parametrize('temperature', [0.0, -0.2, math.nan, math.inf, True, '0.2'])
def test_moco_loss_refuses_a_bad_temperature(temperature: Any) -> None:
    """A temperature of 0 or NaN gave a NaN loss and a negative one a finite
    loss that rewards ranking the positive last, both in silence."""
    query, key, queue = torch.randn(3, 4), torch.randn(3, 4), torch.randn(5, 4)
    with pytest.raises(ValueError, match='temperature'):
        moco_loss(query, key, queue, temperature)


@pytest.mark.parametrize('keys', [torch.rand(3, 5), torch.rand(3), torch.rand(3, 4, 1)])
def test_enqueue_refuses_keys_of_another_shape(keys: Tensor) -> None:
    """Keys of another width failed inside index_copy_ with torch's message
    ('Source/destination tensor must have same slice shapes'), naming
    neither the queue nor what it holds."""
    encoder = MomentumEncoder(nn.Identity(), nn.Identity(), queue_size=8, dim=4)
    before = encoder.queue.clone()
    with pytest.raises(ValueError, match=r'\(N, 4\) keys .*\(8, 4\)'):
        encoder.enqueue(keys)
    assert torch.equal(encoder.queue, before)
    assert int(encoder.queue_ptr) == 0


@pytest.mark.parametrize(
    ('queue_size', 'dim', 'match'),
    [(8.5, 4, 'queue_size'), (True, 4, 'queue_size'), (8, 4.0, 'dim'), (8, 0, 'dim')],
)
def test_momentum_encoder_refuses_bad_sizes(
    queue_size: Any, dim: Any, match: str
) -> None:
    """8.5 and 4.0 failed in torch.randn with a list of its signatures; True
    made a queue of one key."""
    with pytest.raises(ValueError, match=match):
        MomentumEncoder(nn.Identity(), nn.Identity(), queue_size, dim)


def test_momentum_update_refuses_encoders_of_other_shapes() -> None:
    """A query parameter of shape (4,) was broadcast into a key parameter of
    shape (3, 4) in silence: every row moved towards the same vector."""
    key = nn.Linear(4, 3)
    query = nn.Linear(4, 1)  # weight (1, 4) broadcasts into (3, 4)
    with pytest.raises(ValueError, match=r'weight .*\(3, 4\).*\(1, 4\)'):
        momentum_update(key, query, 0.9)


@pytest.mark.parametrize('momentum', [1.5, -0.1, math.nan, True])
def test_momentum_update_refuses_a_bad_momentum(momentum: Any) -> None:
    """1.5 pushed the key encoder away from the query encoder, NaN made it
    NaN, in silence."""
    key, query = nn.Linear(4, 3), nn.Linear(4, 3)
    before = key.weight.detach().clone()
    with pytest.raises(ValueError, match='momentum'):
        momentum_update(key, query, momentum)
    assert torch.equal(key.weight, before)
