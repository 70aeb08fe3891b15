"""The GASSL recipes (configs/gassl_*.yaml) and the SatCLIP + GASSL hybrid."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from torchgeo.main import main

from torchgeo_satclip.datasets.demo import make_demo_dataset

from .test_satclip import tiny_fit_args

pytestmark = pytest.mark.usefixtures('tiny_timm')

CONFIGS = Path(__file__).parents[2] / 'configs'
DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
PAPER = sorted(CONFIGS.glob('gassl_moco_v2*.yaml'))
ALL = [*PAPER, CONFIGS / 'gassl_demo.yaml', CONFIGS / 'satclip_gassl_hybrid.yaml']


def load(config: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(config.read_text(encoding='utf-8')))


def test_the_four_paper_variants_exist() -> None:
    assert [p.stem for p in PAPER] == [
        'gassl_moco_v2',
        'gassl_moco_v2_geo',
        'gassl_moco_v2_geo_tp',
        'gassl_moco_v2_tp',
    ]


@pytest.mark.parametrize('config', PAPER, ids=lambda p: p.stem)
def test_paper_recipe(config: Path) -> None:
    recipe = load(config)
    args = recipe['model']['init_args']
    data = recipe['data']['init_args']
    trainer = recipe['trainer']
    assert (args['model'], args['weights'], args['in_channels']) == (
        'resnet50',
        None,
        13,
    )
    assert args['clip_loss_weight'] == 0
    assert args['moco_loss_weight'] == 1
    assert (args['moco_dim'], args['moco_temperature']) == (128, 0.02)
    assert (args['moco_queue_size'], args['moco_momentum']) == (65536, 0.999)
    assert (args['optimizer'], args['lr'], args['scheduler']) == ('sgd', 0.03, 'cosine')
    assert (args['momentum'], args['weight_decay']) == (0.9, 1e-4)
    assert data['batch_size'] * trainer['devices'] == 256
    assert (trainer['strategy'], trainer['max_epochs']) == ('ddp', 200)
    assert trainer['precision'] == 'bf16-mixed'
    assert args['channels_last'] is True
    assert data['augmentation'] == 'moco'
    geo = '_geo' in config.stem
    assert (args['geo_classes'], args['geo_loss_weight']) == (
        (100, 1.0) if geo else (0, 0.0)
    )
    temporal = config.stem.endswith('_tp')
    assert args['moco_positives'] == ('temporal' if temporal else 'augmentation')
    assert data['views'] == (1 if temporal else 2)
    assert (recipe['data']['dict_kwargs'].get('dates') == 'pair') is temporal
    (checkpoint,) = trainer['callbacks']
    assert checkpoint['init_args']['save_last'] is True
    assert checkpoint['init_args']['dirpath'] == f'checkpoints/{config.stem}'


def test_hybrid_combines_the_three_losses() -> None:
    args = load(CONFIGS / 'satclip_gassl_hybrid.yaml')['model']['init_args']
    assert args['clip_loss_weight'] > 0
    assert args['moco_loss_weight'] > 0
    assert args['geo_loss_weight'] > 0
    assert args['geo_classes'] > 0
    assert args['moco_positives'] == 'temporal'
    assert args['freeze_backbone'] is False


@pytest.mark.parametrize('config', ALL, ids=lambda p: p.stem)
def test_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(['fit', '--config', str(config), '--print_config'])
    assert info.value.code in (0, None)
    assert 'moco_loss_weight' in capsys.readouterr().out


def fast_dev_run(config: Path, root: Path, tmp_path: Path, *extra: str) -> None:
    main(
        [
            *tiny_fit_args(config, root),
            '--model.init_args.geo_classes',
            str(min(2, load(config)['model']['init_args']['geo_classes'])),
            '--model.init_args.moco_queue_size',
            '8',
            '--trainer.accelerator',
            'cpu',
            '--trainer.strategy',
            'auto',
            '--trainer.devices',
            '1',
            '--trainer.precision',
            '32-true',
            '--trainer.fast_dev_run',
            '1',
            '--trainer.default_root_dir',
            str(tmp_path),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    'config',
    [p for p in ALL if 'dates:' not in p.read_text()],
    ids=lambda p: p.stem,
)
def test_single_date_config_fast_dev_run(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, data = config.resolve(), DATA.resolve()
    monkeypatch.chdir(tmp_path)
    fast_dev_run(config, data, tmp_path)


@pytest.mark.parametrize(
    'config',
    [p for p in ALL if 'dates:' in p.read_text()],
    ids=lambda p: p.stem,
)
def test_two_date_config_fast_dev_run(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config.resolve()
    root = tmp_path / 'demo_t'
    make_demo_dataset(root, 12, size=32, progress=False, dates=3)
    monkeypatch.chdir(tmp_path)
    fast_dev_run(config, root, tmp_path)
