from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from torch import nn
from torchgeo.main import main

from torchgeo_satclip._compat import ClassificationTask, RegressionTask
from torchgeo_satclip.tasks import (
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationRegressionTask,
)

CONF = Path('tests', 'conf')


class TinyNet(nn.Module):
    """A timm-like model small enough for the CPU tests."""

    def __init__(self, in_chans: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.num_features = 4
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.reset_classifier(num_classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(4, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def create_model(*args: Any, **kwargs: Any) -> nn.Module:
    return TinyNet(kwargs.get('in_chans', 3), kwargs.get('num_classes', 0))


@pytest.fixture(autouse=True)
def tiny_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timm, 'create_model', create_model)


def run(args: list[str], tmp_path: Path) -> None:
    main(
        [
            *args,
            '--trainer.accelerator',
            'cpu',
            '--trainer.fast_dev_run',
            '1',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )


@pytest.mark.parametrize('name', ['eurosat_location', 'eurosat_location_film'])
def test_fit_fast_dev_run(name: str, tmp_path: Path) -> None:
    run(['fit', '--config', str(CONF / f'{name}.yaml')], tmp_path)


def test_shipped_eurosat_config_on_fake_data(tmp_path: Path) -> None:
    run(
        [
            'fit',
            '--config',
            'configs/eurosat_location.yaml',
            '--model.init_args.weights',
            'null',
            '--model.init_args.location_weights',
            'null',
            '--model.init_args.num_classes',
            '2',
            '--data.init_args.batch_size',
            '2',
            '--data.init_args.num_workers',
            '0',
            '--data.dict_kwargs.root',
            'tests/data/eurosat',
            '--data.dict_kwargs.download',
            'false',
        ],
        tmp_path,
    )


def test_point_dataset_location_only_fit(tmp_path: Path) -> None:
    run(['fit', '--config', str(CONF / 'air_temperature_location.yaml')], tmp_path)


def small(**kwargs: Any) -> dict[str, Any]:
    return {
        'legendre_polys': 3,
        'location_embed_dim': 8,
        'location_capacity': 8,
        **kwargs,
    }


def test_subclasses_and_hparams() -> None:
    task = LocationAwareClassificationTask(model='tiny', num_classes=3, **small())
    assert isinstance(task, ClassificationTask)
    assert task.hparams['legendre_polys'] == 3
    assert task.hparams['num_classes'] == 3
    assert 'location_weights' not in task.hparams
    assert isinstance(LocationRegressionTask(**small()), RegressionTask)


@pytest.mark.parametrize('fusion', ['concat', 'film'])
def test_forward_and_frozen_location(fusion: str) -> None:
    task = LocationAwareClassificationTask(
        model='tiny', num_classes=3, fusion=fusion, **small()
    )
    images = torch.randn(2, 3, 8, 8)
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.7]])
    assert task(images, lonlat).shape == (2, 3)
    with pytest.raises(ValueError, match='needs locations'):
        task(images)
    encoder = task.model.location.encoder
    task.train()
    assert not encoder.training
    assert all(not p.requires_grad for p in encoder.parameters())
    # a precomputed embedding gives the same output as the coordinates
    with torch.no_grad():
        embedding = encoder(lonlat.double()).float()
    torch.testing.assert_close(task(images, embedding), task(images, lonlat))


def test_film_starts_as_identity() -> None:
    task = LocationAwareRegressionTask(model='tiny', fusion='film', **small())
    images = torch.randn(2, 3, 8, 8)
    out_a = task(images, torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    out_b = task(images, torch.tensor([[100.0, -60.0], [-120.0, 70.0]]))
    torch.testing.assert_close(out_a, out_b)


def test_fine_tuned_location_gets_gradients() -> None:
    task = LocationAwareRegressionTask(model='tiny', freeze_location=False, **small())
    task.train()
    batch = {
        'image': torch.randn(2, 3, 8, 8),
        'point': torch.tensor([[2.35, 48.86], [-74.0, 40.7]]),
        'label': torch.tensor([1.0, 2.0]),
    }
    task.configure_losses()
    with task._located(batch):
        loss = task.criterion(task(batch['image']).squeeze(1), batch['label'])
    loss.backward()
    grads = [p.grad for p in task.model.location.encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_location_only_tasks() -> None:
    task = LocationClassificationTask(num_classes=4, head_layers=1, **small())
    lonlat = torch.tensor([[2.35, 48.86], [-74.0, 40.7], [139.7, 35.7]])
    assert task(lonlat).shape == (3, 4)
    probs = task.predict_step({'point': lonlat}, 0)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    reg = LocationRegressionTask(num_outputs=2, **small())
    assert reg.predict_step({'lon': lonlat[:, 0], 'lat': lonlat[:, 1]}, 0).shape == (
        3,
        2,
    )


@pytest.mark.parametrize('fusion', ['concat', 'film'])
def test_real_timm_backbone_with_pre_logits_head(
    fusion: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MobileNetV3 pools to head_hidden_size (1024), not num_features (288)."""
    monkeypatch.undo()  # a real timm model, not the autouse stand-in
    task = LocationAwareClassificationTask(
        model='mobilenetv3_small_050',
        in_channels=3,
        num_classes=3,
        fusion=fusion,
        **small(),
    ).eval()
    with torch.no_grad():
        out = task(torch.randn(2, 3, 32, 32), torch.tensor([[2.35, 48.86], [0.0, 0.0]]))
    assert out.shape == (2, 3)
