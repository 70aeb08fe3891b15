"""A MoCo queue as large as the training set holds each query's own earlier keys."""

import warnings
from pathlib import Path

import pytest

from .test_moco import fit_trainer, moco_task, pair_datamodule

pytestmark = pytest.mark.usefixtures('tiny_timm')


def training_samples() -> int:
    datamodule = pair_datamodule(augmentation='moco')
    datamodule.setup('fit')
    return len(datamodule.train_points())


def queue_warnings(
    tmp_path: Path, queue_size: int, symmetric: bool = False
) -> list[str]:
    task = moco_task(
        moco_positives='temporal',
        moco_queue_size=queue_size,
        moco_symmetric=symmetric,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        fit_trainer(tmp_path, fast_dev_run=1).fit(
            task, pair_datamodule(augmentation='moco')
        )
    return [str(w.message) for w in caught if 'moco_queue_size' in str(w.message)]


@pytest.mark.parametrize('extra', [0, 5])
def test_a_queue_as_large_as_the_training_set_is_warned_of(
    tmp_path: Path, extra: int
) -> None:
    """Every sample's key of an earlier epoch stayed in the queue as a negative
    of its own query, in silence."""
    n = training_samples()
    (message,) = queue_warnings(tmp_path, n + extra)
    assert f'moco_queue_size ({n + extra}) is not smaller than the {n} ' in message
    assert 'lower moco_queue_size' in message


def test_a_queue_smaller_than_the_training_set_is_not_warned_of(
    tmp_path: Path,
) -> None:
    assert queue_warnings(tmp_path, training_samples() - 1) == []


def test_a_symmetric_queue_holds_two_keys_a_sample(tmp_path: Path) -> None:
    n = training_samples()
    assert queue_warnings(tmp_path, 2 * n - 1, symmetric=True) == []
    (message,) = queue_warnings(tmp_path, 2 * n, symmetric=True)
    assert f'the {n} training samples (two keys each, moco_symmetric)' in message
    assert f'the keys of the last {n} samples drawn' in message
