"""A batch of one must not skew SatCLIP's metrics or train on nothing (issue 12)."""

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from torchgeo_satclip.datamodules import S2100KDataModule
from torchgeo_satclip.tasks import satclip

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


class Places(Dataset[dict[str, torch.Tensor]]):
    """*n* random 13-band images at random places."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 13, 16, 16, generator=g)
        self.points = torch.stack(
            [
                torch.rand(n, generator=g) * 360 - 180,
                torch.rand(n, generator=g) * 150 - 75,
            ],
            dim=1,
        )

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {'image': self.images[index], 'point': self.points[index]}


def test_a_training_batch_of_one_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """CLIP on a batch of one has no negative: its loss and gradient are 0
    and its retrieval perfect. The step is skipped (no optimiser step: AdamW
    would still decay the weights), with one warning naming the fix."""
    torch.manual_seed(0)
    task = tiny_task()
    before = {name: p.clone() for name, p in task.state_dict().items()}
    loader = DataLoader(Places(1), batch_size=1)
    with pytest.warns(UserWarning, match='a training batch of 1 sample') as record:
        trainer(tmp_path, max_epochs=2).fit(task, train_dataloaders=loader)
    ours = [w for w in record if 'a training batch of 1 sample' in str(w.message)]
    assert len(ours) == 1  # once, not at every such batch
    assert 'drop_last=True' in str(ours[0].message)
    for name, value in task.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert 'train_loss' not in task.trainer.callback_metrics


def test_a_training_batch_of_one_is_refused_under_ddp_without_gathering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lightning cannot skip a step under DDP: the batch is refused, naming
    the fixes (with gather_distributed the other processes' samples are the
    negatives, and the batch trains)."""
    monkeypatch.setattr(satclip, '_world', lambda: (0, 2))
    task = tiny_task()
    batch = Places(1)[0]
    one = {key: value[None] for key, value in batch.items()}
    with pytest.raises(ValueError, match='a training batch of 1 sample') as error:
        task.training_step(one, 0)
    assert 'drop_last=True' in str(error.value)
    assert 'gather_distributed' in str(error.value)
