"""SatCLIPTask's learning-rate schedule in runs of unknown length."""

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, IterableDataset

from .test_satclip import fixed_batch, quiet_datamodule, tiny_task, trainer

pytestmark = pytest.mark.usefixtures('tiny_timm')


class StopAfter(Callback):
    """Record the learning rate of each step and stop after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.lrs: list[float] = []

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]['lr'])

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


class Batches(IterableDataset[dict[str, torch.Tensor]]):
    """A few fixed batches, from a loader without a length."""

    def __iter__(self) -> Any:
        return iter([fixed_batch(seed=seed) for seed in range(4)])


def test_warmup_in_a_run_without_an_epoch_limit(tmp_path: Path) -> None:
    """A warmup alone needs no run length.

    With ``max_epochs: -1`` (also what ``max_time`` alone implies) Lightning
    estimates infinitely many steps, and the warmup failed before the first
    step with ``OverflowError: cannot convert float infinity to integer``.
    """
    task = tiny_task(warmup_steps=2)
    stop = StopAfter(3)
    run = trainer(
        tmp_path,
        max_epochs=-1,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[stop],
    )
    run.fit(task, quiet_datamodule())
    assert stop.lrs == pytest.approx([0.5e-4, 1e-4, 1e-4])


def test_cosine_in_a_run_without_an_epoch_limit_is_refused(tmp_path: Path) -> None:
    """A cosine decay over infinitely many steps names the fix."""
    task = tiny_task(scheduler='cosine')
    run = trainer(tmp_path, max_epochs=-1, limit_val_batches=0)
    with pytest.raises(ValueError, match=re.escape('set trainer.max_steps')):
        run.fit(task, quiet_datamodule())


def test_cosine_over_an_unsized_loader_is_refused(tmp_path: Path) -> None:
    """Lightning estimates -1 steps for a loader without a length.

    The schedule then decayed over a single step: every step after the first
    trained at ``min_lr``, silently.
    """
    task = tiny_task(scheduler='cosine', min_lr=0.0)
    loader = DataLoader(Batches(), batch_size=None)
    run = trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    with pytest.raises(
        ValueError, match=re.escape('not known (Lightning estimates -1')
    ):
        run.fit(task, train_dataloaders=loader)


def test_cosine_over_an_unsized_loader_with_max_steps(tmp_path: Path) -> None:
    """With ``max_steps`` an unsized loader gets its cosine decay."""
    task = tiny_task(scheduler='cosine', min_lr=0.0)
    stop = StopAfter(4)
    loader = DataLoader(Batches(), batch_size=None)
    trainer(tmp_path, max_steps=4, limit_val_batches=0, callbacks=[stop]).fit(
        task, train_dataloaders=loader
    )
    assert stop.lrs == pytest.approx([1e-4, 0.85355339e-4, 0.5e-4, 0.14644661e-4])
