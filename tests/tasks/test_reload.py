"""Every task reloads from its own Lightning checkpoint alone (issue 12)."""

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn
from torchgeo.main import main

from torchgeo_satclip.models import satclip_location_encoder, save_official_checkpoint
from torchgeo_satclip.tasks import (
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationRegressionTask,
    SatCLIPTask,
)

from .test_location_aware import CONF

pytestmark = pytest.mark.usefixtures('tiny_timm_classifier')


def weights_file(tmp_path: Path) -> Path:
    """A SatCLIP-layout checkpoint of a small encoder (L = 3, capacity 16)."""
    torch.manual_seed(1)
    encoder = satclip_location_encoder(
        None, legendre_polys=3, capacity=16, embed_dim=8, dtype=torch.float32
    )
    return save_official_checkpoint(encoder, tmp_path / 'location.ckpt')


TASKS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    'satclip': (SatCLIPTask, {'model': 'tiny', 'in_channels': 13, 'embed_dim': 8}),
    'aware-classification': (
        LocationAwareClassificationTask,
        {'model': 'resnet18', 'in_channels': 13, 'num_classes': 10},
    ),
    'aware-regression': (
        LocationAwareRegressionTask,
        {'model': 'resnet18', 'in_channels': 13},
    ),
    'location-classification': (LocationClassificationTask, {'num_classes': 4}),
    'location-regression': (LocationRegressionTask, {}),
}

POINTS = torch.tensor([[2.35, 48.86], [-74.0, 40.7], [151.2, -33.9]])
IMAGES = torch.rand(3, 13, 8, 8, generator=torch.Generator().manual_seed(0))


def outputs(task: Any) -> torch.Tensor:
    task.eval()
    with torch.no_grad():
        if isinstance(task, SatCLIPTask):
            image, location = task(IMAGES, POINTS)
            return torch.cat([image, location], 1)
        if isinstance(
            task, LocationAwareClassificationTask | LocationAwareRegressionTask
        ):
            return task(IMAGES, POINTS)  # type: ignore[no-any-return]
        return task(POINTS)  # type: ignore[no-any-return]


@pytest.mark.parametrize('name', list(TASKS))
def test_reload_without_the_weights_file(name: str, tmp_path: Path) -> None:
    task_class, kwargs = TASKS[name]
    path = weights_file(tmp_path)
    task: Any = task_class(**kwargs, location_weights=str(path))
    expected = outputs(task)
    trainer = Trainer(accelerator='cpu', logger=False, default_root_dir=str(tmp_path))
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / 'task.ckpt')
    path.unlink()
    again: Any = task_class.load_from_checkpoint(tmp_path / 'task.ckpt')
    assert torch.equal(outputs(again), expected)
    assert again.hparams['legendre_polys'] == 3
    assert again.hparams['capacity'] == 16


@pytest.mark.parametrize('name', list(TASKS))
def test_missing_weights_file_is_an_error(name: str, tmp_path: Path) -> None:
    task_class, kwargs = TASKS[name]
    with pytest.raises(Exception, match=r'missing\.ckpt'):
        task_class(**kwargs, location_weights=str(tmp_path / 'missing.ckpt'))


CONFIGS = {
    'satclip': ('satclip_s2_100k.yaml', SatCLIPTask),
    'aware-classification': (
        'eurosat_location.yaml',
        LocationAwareClassificationTask,
    ),
    'location-regression': ('air_temperature_location.yaml', LocationRegressionTask),
}


@pytest.mark.parametrize('name', list(CONFIGS))
def test_cli_checkpoint_reloads_without_the_weights_file(
    name: str, tmp_path: Path
) -> None:
    """``torchgeo fit`` records every argument, ``location_weights`` among them."""
    config, task_class = CONFIGS[name]
    path = weights_file(tmp_path)
    main(
        [
            'fit',
            '--config',
            str(CONF / config),
            '--model.init_args.location_weights',
            str(path),
            '--model.init_args.embed_dim',
            '8',
            '--trainer.accelerator',
            'cpu',
            '--trainer.max_steps',
            '1',
            '--trainer.limit_val_batches',
            '0',
            '--trainer.logger',
            'false',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )
    (checkpoint,) = (tmp_path / 'checkpoints').glob('*.ckpt')
    task: Any = task_class.load_from_checkpoint(checkpoint)
    expected = outputs(task) if name != 'satclip' else None
    path.unlink()
    again: Any = task_class.load_from_checkpoint(checkpoint)
    assert again.hparams['legendre_polys'] == 3
    if expected is not None:
        assert torch.equal(outputs(again), expected)
    else:
        again.eval(), task.eval()
        assert torch.equal(again.encode_location(POINTS), task.encode_location(POINTS))
