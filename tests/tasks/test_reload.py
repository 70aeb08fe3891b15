"""Every task reloads from its own Lightning checkpoint alone (issue 12)."""

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torchgeo.main import main

from torchgeo_satclip.models import (
    SirenLayer,
    load_location_encoder,
    satclip_location_encoder,
    save_official_checkpoint,
)
from torchgeo_satclip.tasks import (
    LocationAwareClassificationTask,
    LocationAwareRegressionTask,
    LocationClassificationTask,
    LocationRegressionTask,
    SatCLIPTask,
)
from torchgeo_satclip.tasks.utils import LocationEncoderArgs

from .test_location_aware import CONF

pytestmark = pytest.mark.usefixtures('tiny_timm_classifier')


def weights_file(tmp_path: Path) -> Path:
    """A SatCLIP-layout checkpoint of a small encoder (L = 3, capacity 16)."""
    torch.manual_seed(1)
    encoder = satclip_location_encoder(
        None, legendre_polys=3, capacity=16, embed_dim=8, dtype=torch.float32
    )
    return save_official_checkpoint(encoder, tmp_path / 'location.ckpt')


TASKS: dict[str, tuple[type[LightningModule], dict[str, Any]]] = {
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


CONFIGS: dict[str, tuple[str, type[LightningModule]]] = {
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


def trained(name: str) -> dict[str, Any]:
    """The arguments of task ``name`` with its location encoder trained."""
    task_class, kwargs = TASKS[name]
    return kwargs if task_class is SatCLIPTask else {**kwargs, 'freeze_location': False}


def task_encoder(task: Any) -> nn.Module:
    """The location encoder inside a task."""
    if isinstance(task, SatCLIPTask):
        return task.location_encoder
    return task.model.location.encoder  # type: ignore[no-any-return]


def dropouts(module: nn.Module) -> list[tuple[str, float]]:
    """Every dropout probability of a module, by the submodule's name."""
    out: list[tuple[str, float]] = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Dropout):
            out.append((name, float(sub.p)))
        elif isinstance(sub, SirenLayer):
            out.append((name, float(sub.dropout)))
    return out


def network_file(tmp_path: Path, network: str, **architecture: Any) -> Path:
    """Location weights of a small ``network``: official layout or a task's."""
    if network == 'siren' and not architecture:
        return weights_file(tmp_path)
    torch.manual_seed(1)
    source = SatCLIPTask(
        model='tiny',
        in_channels=13,
        location_network=network,
        legendre_polys=3,
        capacity=16,
        embed_dim=8,
        **architecture,
    )
    trainer = Trainer(accelerator='cpu', logger=False, default_root_dir=str(tmp_path))
    trainer.strategy.connect(source)
    trainer.save_checkpoint(tmp_path / 'source.ckpt')
    return tmp_path / 'source.ckpt'


@pytest.mark.parametrize('network', ['siren', 'fcnet'])
@pytest.mark.parametrize('name', list(TASKS))
def test_location_dropout_applies_to_loaded_weights(
    name: str, network: str, tmp_path: Path
) -> None:
    """``location_dropout`` is the loaded encoder's dropout, and survives a reload.

    The loader builds the networks' default dropout (0.5): it was kept, while
    the hyperparameters recorded the value asked for, so the task's checkpoint
    rebuilt an encoder with a different dropout than the one trained.
    """
    task_class, _ = TASKS[name]
    path = network_file(tmp_path, network)
    expected = dropouts(
        satclip_location_encoder(
            None,
            network=network,
            legendre_polys=3,
            capacity=16,
            embed_dim=8,
            dropout=0.1,
        )
    )
    assert expected
    assert {p for _, p in expected} >= {0.1}
    task: Any = task_class(
        **trained(name), location_weights=str(path), location_dropout=0.1
    )
    assert dropouts(task_encoder(task)) == expected
    assert task.hparams['location_dropout'] == 0.1
    trainer = Trainer(accelerator='cpu', logger=False, default_root_dir=str(tmp_path))
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / 'task.ckpt')
    path.unlink()
    again: Any = task_class.load_from_checkpoint(tmp_path / 'task.ckpt')
    assert dropouts(task_encoder(again)) == expected
    assert repr(task_encoder(again)) == repr(task_encoder(task))


@pytest.mark.parametrize('name', list(TASKS))
def test_no_location_dropout_in_training_with_loaded_weights(
    name: str, tmp_path: Path
) -> None:
    """``location_dropout=0``: the loaded encoder is deterministic in training."""
    task_class, _ = TASKS[name]
    path = weights_file(tmp_path)
    task: Any = task_class(
        **trained(name), location_weights=str(path), location_dropout=0.0
    )
    encoder = task_encoder(task).train()
    assert encoder.training
    with torch.no_grad():
        first, second = encoder(POINTS), encoder(POINTS)
    assert torch.equal(first, second)


def test_location_dropout_draws_no_random_number(tmp_path: Path) -> None:
    """Setting a loaded encoder's dropout leaves the caller's seed stream alone."""
    path = weights_file(tmp_path)
    torch.manual_seed(5)
    satclip_location_encoder(str(path), dtype=torch.float32)
    plain = torch.rand(3)
    torch.manual_seed(5)
    encoder = LocationEncoderArgs(location_dropout=0.2).build(str(path))
    assert torch.equal(torch.rand(3), plain)
    assert {p for _, p in dropouts(encoder)} == {0.0, 0.2}


@pytest.mark.parametrize('network', ['siren', 'fcnet', 'mlp'])
def test_location_dropout_is_the_loaders_dropout(tmp_path: Path, network: str) -> None:
    """Loaded weights: the encoder the loader builds with ``dropout=location_dropout``.

    No reference encoder is rebuilt from the recorded architecture to copy
    dropouts from: the loader builds the network with that dropout where it
    has dropout (an ``'mlp'`` has none and ignores it).
    """
    path = network_file(tmp_path, network)
    encoder = LocationEncoderArgs(location_dropout=0.2).build(str(path))
    loaded = load_location_encoder(path, dtype=torch.float32, dropout=0.2)
    assert repr(encoder) == repr(loaded)
    assert dropouts(encoder) == dropouts(loaded)
    assert ({p for _, p in dropouts(encoder)} >= {0.2}) is (network != 'mlp')
    for key, tensor in loaded.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], tensor), key


def test_location_dropout_on_loaded_mlp_weights(tmp_path: Path) -> None:
    """A network without dropout loads whatever ``location_dropout`` says."""
    path = network_file(tmp_path, 'mlp')
    task: Any = LocationRegressionTask(
        freeze_location=False, location_weights=str(path), location_dropout=0.3
    )
    assert dropouts(task_encoder(task)) == []
    assert task.hparams['location_dropout'] == 0.3
    encoder = task_encoder(task).train()
    with torch.no_grad():
        assert torch.equal(encoder(POINTS), encoder(POINTS))


def test_a_built_encoder_is_not_location_weights(tmp_path: Path) -> None:
    """Its dropout could not be ``location_dropout``: refused, not ignored."""
    encoder = satclip_location_encoder(
        None, legendre_polys=3, capacity=16, embed_dim=8, dtype=torch.float32
    )
    with pytest.raises(
        ValueError, match=r'dropout=0\.2 cannot be applied to a LocationEncoder'
    ):
        LocationEncoderArgs(location_dropout=0.2).build(encoder)


@pytest.mark.parametrize('name', ['location-regression', 'aware-regression'])
def test_loaded_mlp_keeps_its_depth_through_a_reload(name: str, tmp_path: Path) -> None:
    """The task records the loaded network's depth, not the default one."""
    path = network_file(tmp_path, 'mlp', num_hidden_layers=3)
    trainer = Trainer(accelerator='cpu', logger=False, default_root_dir=str(tmp_path))
    task_class, _ = TASKS[name]
    task: Any = task_class(**trained(name), location_weights=str(path))
    assert task.hparams['num_hidden_layers'] == 3
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / 'task.ckpt')
    path.unlink()
    again: Any = task_class.load_from_checkpoint(tmp_path / 'task.ckpt')
    torch.testing.assert_close(outputs(again), outputs(task), rtol=0, atol=0)


@pytest.mark.parametrize(
    ('encoding', 'arguments'),
    [
        ('spherec', {'frequency_num': 4}),
        ('spherec', {'min_radius': 10.0}),
        ('theory', {'max_radius': 90.0}),
        ('spheremplus', {'convention': 'sphere2vec'}),
        ('sphericalharmonics', {'normalization': 'orthonormal'}),
    ],
)
@pytest.mark.parametrize('name', ['satclip', 'location-regression', 'aware-regression'])
def test_loaded_encoding_arguments_survive_a_reload(
    name: str, encoding: str, arguments: dict[str, Any], tmp_path: Path
) -> None:
    """The task records the loaded encoding's arguments, not the default ones.

    A task whose ``location_weights`` were, say, ``spherec`` weights of 4
    frequencies recorded ``positional_encoding_kwargs: None``: its checkpoint
    failed to reload (a size mismatch against the default 10 frequencies), and
    with other radii, or another normalization or convention, it reloaded
    silently as a different encoder.
    """
    path = network_file(
        tmp_path,
        'siren',
        positional_encoding=encoding,
        positional_encoding_kwargs=arguments,
    )
    task_class, _ = TASKS[name]
    task: Any = task_class(**trained(name), location_weights=str(path))
    recorded = task.hparams['positional_encoding_kwargs']
    assert recorded is not None
    assert arguments.items() <= recorded.items()
    trainer = Trainer(accelerator='cpu', logger=False, default_root_dir=str(tmp_path))
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / 'task.ckpt')
    path.unlink()
    again: Any = task_class.load_from_checkpoint(tmp_path / 'task.ckpt')
    assert repr(task_encoder(again)) == repr(task_encoder(task))
    torch.testing.assert_close(outputs(again), outputs(task), rtol=0, atol=0)
    if task_class is not SatCLIPTask:
        return
    loaded = load_location_encoder(str(tmp_path / 'task.ckpt')).eval()
    task_encoder(task).eval()
    with torch.no_grad():
        expected = task_encoder(task)(POINTS.double())
        torch.testing.assert_close(loaded(POINTS.double()).to(expected.dtype), expected)
