"""The geo pretext alone (CLIP off) on cached float16 features.

With CLIP off the geo head reads the backbone's pooled features; cached ones
come as float16 (``cache_dtype``'s default) and went into the float32 head as
they were: the first step failed with 'mat1 and mat2 must have the same
dtype', and ``predict_step`` of a cached batch with ``KeyError: 'image'``.
"""

from pathlib import Path

import pytest
import torch

from torchgeo_satclip.tasks import SatCLIPTask

from .test_satclip import CONF, fixed_batch, run, tiny_task

pytestmark = pytest.mark.usefixtures('tiny_timm')


def geo_only_task() -> SatCLIPTask:
    task = tiny_task(
        clip_loss_weight=0.0, geo_classes=3, geo_loss_weight=1.0, freeze_backbone=True
    )
    task.fit_geo_centroids(fixed_batch()['point'])
    return task


def test_geo_loss_of_float16_features() -> None:
    task = geo_only_task()
    batch = fixed_batch()
    features = torch.rand(6, 4, generator=torch.Generator().manual_seed(1))
    loss, metrics = task.compute_loss(
        {'features': features.half(), 'point': batch['point']}
    )
    expected, _ = task.compute_loss(
        {'features': features.half().float(), 'point': batch['point']}
    )
    assert loss.dtype == torch.float32
    assert torch.equal(loss, expected)
    assert 'geo_loss' in metrics


def test_predict_of_cached_features_with_clip_off() -> None:
    task = geo_only_task()
    features = torch.rand(6, 4).half()
    point = fixed_batch()['point']
    out = task.predict_step({'features': features, 'point': point}, 0)
    assert torch.equal(out['point'], point)
    assert out['image_features'].dtype == torch.float32
    assert torch.equal(out['image_features'], features.float())


def test_fit_geo_only_on_cached_features(tmp_path: Path) -> None:
    run(
        [
            'fit',
            '--config',
            str(CONF / 'satclip_cached.yaml'),
            '--data.init_args.cache_dir',
            str(tmp_path / 'cache'),
            '--model.init_args.clip_loss_weight',
            '0',
            '--model.init_args.geo_classes',
            '2',
            '--model.init_args.geo_loss_weight',
            '1',
        ],
        tmp_path,
    )
