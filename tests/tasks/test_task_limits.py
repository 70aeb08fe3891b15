"""SatCLIPTask's argument checks, on both sides of each limit."""

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from .test_satclip import fixed_batch, quiet_datamodule, tiny_task, trainer

pytestmark = pytest.mark.usefixtures('tiny_timm')


@pytest.mark.parametrize(
    'kwargs',
    [
        {'temperature': 1e-6},
        {'logit_scale_max': None},
        {'logit_scale_max': 1e-6},
        {'logit_scale_max': 100},
        {'geo_classes': 0, 'geo_loss_weight': 0.0},
        {'geo_classes': 1, 'geo_loss_weight': 1e-6},
        {'geo_classes': 1, 'geo_loss_weight': 0.0},
    ],
)
def test_accepted(kwargs: dict[str, Any]) -> None:
    task = tiny_task(**kwargs)
    assert task.hparams['geo_classes'] == kwargs.get('geo_classes', 0)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'temperature': 0.0}, 'temperature'),
        ({'temperature': -1e-6}, 'temperature'),
        ({'geo_classes': -1}, 'geo_classes'),
        ({'geo_classes': 1, 'geo_loss_weight': -1e-6}, 'geo_loss_weight'),
        ({'geo_classes': 0, 'geo_loss_weight': 1e-6}, 'geo_classes >= 1'),
    ],
)
def test_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_task(**kwargs)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        *(
            (
                {'logit_scale_max': value},
                f'logit_scale_max must be a finite real number above 0, not {value}',
            )
            for value in (0.0, -1.0, math.nan, math.inf)
        ),
        *(
            (
                {'temperature': value},
                f'temperature must be a finite real number above 0, not {value}',
            )
            for value in (math.nan, math.inf, -math.inf)
        ),
        (
            {'temperature': True},
            'temperature must be a finite real number above 0, not True (bool)',
        ),
        (
            {'logit_scale_max': '100'},
            "logit_scale_max must be a finite real number above 0, not '100' (str)",
        ),
    ],
)
def test_refused_before_the_first_step(kwargs: dict[str, Any], message: str) -> None:
    """Refused in ``__init__``, naming the argument and the value.

    ``logit_scale_max=0`` failed at the first step with "math domain error",
    and ``temperature=nan`` trained on a NaN loss.
    """
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny_task(**kwargs)


@pytest.mark.parametrize('maximum', [1e-6, 100.0])
def test_logit_scale_max_gives_a_finite_loss(maximum: float) -> None:
    task = tiny_task(logit_scale_max=maximum)
    loss, _ = task.compute_loss(fixed_batch())
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'scheduler': 'cosin'}, "scheduler must be 'none' or 'cosine', not 'cosin'"),
        ({'warmup_steps': -3}, 'warmup_steps must be an integer >= 0, not -3'),
        (
            {'warmup_steps': 2.5},
            'warmup_steps must be an integer >= 0, not 2.5 (float)',
        ),
        (
            {'warmup_steps': True},
            'warmup_steps must be an integer >= 0, not True (bool)',
        ),
        *(
            ({'lr': value}, f'lr must be a finite real number above 0, not {value}')
            for value in (0.0, -1e-4, math.nan, math.inf)
        ),
        *(
            (
                {'weight_decay': value},
                f'weight_decay must be a finite real number >= 0, not {value}',
            )
            for value in (-0.01, math.nan)
        ),
        (
            {'min_lr': -1e-6},
            'min_lr must be a finite real number >= 0, not -1e-06',
        ),
        # a bare OverflowError ('int too large to convert to float') before
        (
            {'lr': 10**400},
            'lr must be finite, got 1e400 or so, beyond the range of a float',
        ),
        (
            {'weight_decay': -(10**400)},
            'weight_decay must be finite, got -1e400 or so, beyond the range',
        ),
        (
            {'lr': 1e-4, 'min_lr': 1e-3},
            'min_lr (0.001) must not be above lr (0.0001)',
        ),
        *(
            (
                {name: math.nan},
                f'{name} must be a finite real number >= 0, not nan',
            )
            for name in ('clip_loss_weight', 'moco_loss_weight', 'geo_loss_weight')
        ),
        (
            {'moco_loss_weight': 1.0, 'moco_temperature': math.nan},
            'moco_temperature must be a finite real number above 0, not nan',
        ),
    ],
)
def test_optimiser_and_loss_arguments_refused(
    kwargs: dict[str, Any], message: str
) -> None:
    """Refused in ``__init__``, not trained silently wrong.

    A misspelt scheduler ran without one, ``warmup_steps=-3`` as no warmup,
    ``min_lr`` above ``lr`` made the cosine schedule rise, and a NaN loss
    weight or MoCo temperature trained on a NaN loss.
    """
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny_task(**kwargs)


@pytest.mark.parametrize(
    'kwargs',
    [
        {'scheduler': 'cosine', 'warmup_steps': 0, 'min_lr': 0.0},
        {'scheduler': 'none', 'warmup_steps': 5},
        {'lr': 1e-4, 'min_lr': 1e-4, 'weight_decay': 0.0},
        {'lr': 1, 'weight_decay': 0},  # integers from a YAML file
    ],
)
def test_optimiser_arguments_accepted(kwargs: dict[str, Any]) -> None:
    task = tiny_task(**kwargs)
    assert all(task.hparams[name] == value for name, value in kwargs.items())


@pytest.mark.parametrize(
    ('weights', 'pretrained'), [(True, True), (False, False), (None, False)]
)
def test_weights_true_is_timms_imagenet_weights(
    monkeypatch: pytest.MonkeyPatch,
    weights: bool | None,
    pretrained: bool,
) -> None:
    """As TorchGeo's tasks: ``weights=True`` asks timm for its pretrained
    weights (it used to reach ``os.path.exists(True)``, which is True for
    file descriptor 1, and fail in ``torch.load``)."""
    import timm

    from tests.tiny_timm import create_model
    from torchgeo_satclip.tasks import satclip

    asked: list[bool] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get('pretrained', False))
        return create_model(*args, **kwargs)

    def no_state_dict(weights: Any) -> Any:
        raise AssertionError(f'read {weights!r} as a state dict')

    monkeypatch.setattr(timm, 'create_model', recording)
    monkeypatch.setattr(satclip, '_backbone_state_dict', no_state_dict)
    task = tiny_task(weights=weights)
    assert asked == [pretrained]
    assert 'weights' not in task.hparams  # a checkpoint brings the weights


@pytest.mark.parametrize('weights', [1, 0.5, ['a.ckpt']])
def test_weights_of_another_type_refused(weights: Any) -> None:
    with pytest.raises(ValueError, match=r'weights must be a WeightsEnum member'):
        tiny_task(weights=weights)


@pytest.mark.parametrize(('value', 'parsed'), [('true', True), ('a.ckpt', 'a.ckpt')])
def test_cli_weights_true_is_a_bool(
    value: str, parsed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--model.init_args.weights true`` is True (ImageNet), not the string
    'true' looked up as a weights name."""
    from pathlib import Path

    import yaml
    from torchgeo.main import main

    config = Path(__file__).parents[1] / 'conf' / 'satclip_s2_100k.yaml'
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                'fit',
                '--config',
                str(config),
                '--model.init_args.weights',
                value,
                '--print_config',
            ]
        )
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['model']['init_args']['weights'] == parsed


def test_cli_weights_true_of_the_location_aware_tasks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same for the location-aware tasks (TorchGeo's own annotation puts
    ``str`` before ``bool``, so its CLI reads 'true' as a weights name)."""
    from pathlib import Path

    import yaml
    from torchgeo.main import main

    config = Path(__file__).parents[1] / 'conf' / 'eurosat_location.yaml'
    with pytest.raises(SystemExit):
        main(
            [
                'fit',
                '--config',
                str(config),
                '--model.init_args.weights',
                'true',
                '--print_config',
            ]
        )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['model']['init_args']['weights'] is True


def test_logit_scale_learns_at_its_maximum() -> None:
    """The clamped logit scale keeps its gradient.

    ``torch.clamp`` has no gradient at or above the limit: once
    ``exp(logit_scale)`` reached ``logit_scale_max`` (or started above it),
    the temperature never changed again.
    """
    task = tiny_task(logit_scale_max=100.0, temperature=0.005)
    loss, _ = task.compute_loss(fixed_batch())
    loss.backward()
    assert task.current_logit_scale().item() == pytest.approx(math.log(100))
    assert task.logit_scale.grad is not None
    assert task.logit_scale.grad.item() != 0


def test_logit_scale_is_held_at_its_maximum_in_training(tmp_path: Path) -> None:
    """The parameter is clamped after each step, then moves below the limit."""
    task = tiny_task(logit_scale_max=100.0, temperature=0.005, lr=0.05)
    seen: list[float] = []

    class Record(Callback):
        def on_train_batch_start(
            self, trainer: Trainer, pl_module: LightningModule, *args: Any
        ) -> None:
            seen.append(float(task.logit_scale))

    trainer(tmp_path, max_steps=3, limit_val_batches=0, callbacks=[Record()]).fit(
        task, quiet_datamodule()
    )
    assert seen[0] == pytest.approx(math.log(200))
    assert all(value <= math.log(100) + 1e-6 for value in seen[1:])
    assert float(task.logit_scale) < math.log(100) - 1e-3


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        # a string flag counted as True: 'no' froze the backbone
        ({'freeze_backbone': 'no'}, "freeze_backbone must be True or False, got 'no'"),
        ({'validate_locations': 'no'}, 'validate_locations must be True or False'),
        ({'gather_distributed': 'no'}, 'gather_distributed must be True or False'),
        ({'channels_last': 'yes'}, 'channels_last must be True or False'),
        ({'compile_image_encoder': 1}, 'compile_image_encoder must be True or False'),
        ({'moco_symmetric': 'x'}, 'moco_symmetric must be True or False'),
        ({'moco_shuffle_bn': 'x'}, 'moco_shuffle_bn must be True or False'),
        ({'in_channels': 0}, 'in_channels must be at least 1, got 0'),
        ({'image_resolution': -3}, 'image_resolution must be at least 1, got -3'),
        ({'geo_classes': 2.5}, 'geo_classes must be an integer, got 2.5'),
        ({'geo_kmeans_seed': 0.5}, 'geo_kmeans_seed must be an integer'),
        # named as the task's argument, not the network's 'dropout'
        ({'location_dropout': 1.0}, re.escape('location_dropout must be in [0, 1)')),
        ({'location_dropout': -0.1}, re.escape('location_dropout must be in [0, 1)')),
        # a float width was truncated silently (2.5 -> 2), True counted as 1
        ({'embed_dim': 2.5}, 'embed_dim must be an integer, got 2.5'),
        ({'moco_loss_weight': 1.0, 'moco_dim': 2.5}, 'moco_dim must be an integer'),
        ({'moco_loss_weight': 1.0, 'moco_dim': True}, 'moco_dim must be an integer'),
        (
            {'moco_loss_weight': 1.0, 'moco_hidden_dim': 3.5},
            'moco_hidden_dim must be an integer, got 3.5',
        ),
        (
            {'moco_loss_weight': 1.0, 'moco_queue_size': 8.5},
            'moco_queue_size must be an integer, got 8.5',
        ),
        # a string failed with a TypeError of a comparison, naming no argument
        (
            {'moco_loss_weight': 1.0, 'moco_momentum': '0.9'},
            "moco_momentum must be a real number, got '0.9'",
        ),
        ({'optimizer': 'sgd', 'momentum': '0.9'}, 'momentum must be a real number'),
        (
            {'clip_loss_weight': '1'},
            "clip_loss_weight must be a finite real number >= 0, not '1'",
        ),
        (
            {'geo_classes': 1, 'geo_loss_weight': '1'},
            "geo_loss_weight must be a finite real number >= 0, not '1'",
        ),
    ],
)
def test_python_arguments_of_the_wrong_kind_refused(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_task(**kwargs)


@pytest.mark.parametrize(
    ('points', 'match'),
    [
        # a NaN failed inside the k-means with torch.multinomial's RuntimeError
        (
            [[math.nan, 0.0]] * 6,
            re.escape('training locations row 0: non-finite coordinate'),
        ),
        # a latitude of 95 degrees was clustered in silence
        (
            [[10.0, 0.0]] * 5 + [[10.0, 95.0]],
            'training locations row 5: latitude 95.0 is outside',
        ),
        # fewer points than classes named the k-means' k, not the argument
        (
            [[10.0, 0.0]] * 3,
            re.escape(
                'geo_classes (5) needs at least 5 distinct training locations, '
                'got 3 (1 distinct)'
            ),
        ),
    ],
)
def test_geo_centroids_of_bad_locations_refused(
    points: list[list[float]], match: str
) -> None:
    task = tiny_task(geo_classes=5, geo_loss_weight=1.0)
    with pytest.raises(ValueError, match=match):
        task.fit_geo_centroids(torch.tensor(points, dtype=torch.float64))
    assert not task.geo_centroids.any()  # left as it was


@pytest.mark.parametrize(
    'kwargs',
    [
        {'temperature': 1e-39},
        {'temperature': 2e-38},
        {'temperature': 5e-324},
        {'moco_loss_weight': 1.0, 'moco_temperature': 1e-39},
    ],
)
def test_temperature_whose_logits_overflow_refused(kwargs: dict[str, Any]) -> None:
    """A temperature near 1 / float32's largest number was accepted: the
    logits (exp(ln(1 / temperature)) times a cosine, or a cosine divided by
    it) or the loss overflowed to inf in float32, and the loss was inf or NaN."""
    (name,) = (key for key in kwargs if key.endswith('temperature'))
    with pytest.raises(
        ValueError, match=rf'{name} must be at least 2\.35e-38.*not {kwargs[name]}'
    ):
        tiny_task(**kwargs)


@pytest.mark.parametrize('temperature', [2.4e-38, 1e-30])
def test_smallest_temperatures_give_a_finite_loss(temperature: float) -> None:
    task = tiny_task(temperature=temperature)
    loss, _ = task.compute_loss(fixed_batch())
    assert torch.isfinite(loss)
