"""A validation batch of one must not skew SatCLIP's metrics (issue 12)."""

from pathlib import Path
from typing import Any

import pytest
import torch

from torchgeo_satclip.datamodules import S2100KDataModule

from .test_satclip import DATA, tiny_task, trainer

pytestmark = pytest.mark.usefixtures('tiny_timm')


def test_last_batch_of_one_is_skipped(tmp_path: Path) -> None:
    # 8 samples, 3 in validation: batches of 2 and 1
    dm = S2100KDataModule(
        batch_size=2,
        val_split_pct=0.375,
        crop_size=None,
        flips=False,
        blur=False,
        jitter=0.0,
        root=str(DATA),
        patch_size=32,
    )
    task = tiny_task()
    (metrics,) = trainer(tmp_path).validate(task, dm)
    batches: list[Any] = list(dm.val_dataloader())
    assert [len(b['point']) for b in batches] == [2, 1]
    assert dm.val_aug is not None
    batch = dm.val_aug(batches[0])
    task.eval()
    with torch.no_grad():
        loss, retrieval = task.compute_loss(batch)
    # the logged loss is that of the batch of two alone (the batch of one
    # would add a loss of 0 and a perfect retrieval)
    assert metrics['val_loss'] == pytest.approx(float(loss), rel=1e-5)
    for name, value in retrieval.items():
        assert metrics[f'val_{name}'] == pytest.approx(float(value), rel=1e-5)
