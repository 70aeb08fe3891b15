"""SatCLIPTask's backbone ``weights`` from a file: what is not one is named.

A file was read with a bare ``torch.load``, and its state dict loaded with
``strict=False``: a text file failed with ``KeyError: 101``, a list with an
``AttributeError``, a state dict of other keys with ``KeyError:
'features.0.weight'``, a state dict that lacked some of the backbone's keys
was accepted (those layers stayed random, frozen with ``freeze_backbone``),
a missing file was "not a valid WeightsEnum", and ``''`` meant random
weights.
"""

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from torchgeo_satclip.models import CheckpointError

from ..tiny_timm import TinyNet
from .test_satclip import FakeWeights, tiny_task

pytestmark = pytest.mark.usefixtures('tiny_timm')


def test_a_text_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / 'notes.ckpt'
    path.write_text('hello')
    with pytest.raises(CheckpointError, match=r'notes\.ckpt is not a torch checkpoint'):
        tiny_task(weights=str(path))


def test_a_file_that_is_not_a_dict_is_named(tmp_path: Path) -> None:
    path = tmp_path / 'list.pt'
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match=r'list\.pt'):
        tiny_task(weights=str(path))


@pytest.mark.parametrize(
    'state',
    [
        {'state_dict': {'foo.weight': torch.zeros(3)}},
        {k: v for k, v in TinyNet(13).state_dict().items() if k != 'features.1.weight'},
    ],
    ids=['other-keys', 'partial'],
)
def test_a_state_dict_without_the_backbones_keys_is_refused(
    state: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / 'other.pt'
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"weights .*other\.pt.* lacks .*'features\.1\.weight'"
    ):
        tiny_task(weights=str(path), freeze_backbone=True)


def test_a_full_state_dict_with_extra_keys_loads(tmp_path: Path) -> None:
    state = TinyNet(13).state_dict()
    path = tmp_path / 'full.pt'
    torch.save({**state, 'extra.weight': torch.zeros(2)}, path)
    task = tiny_task(weights=str(path))
    for key, value in state.items():
        assert torch.equal(task.model.state_dict()[key], value)


@pytest.mark.parametrize('weights', ['nope.ckpt', 'runs/last.ckpt', ''])
def test_neither_a_file_nor_a_weights_name(weights: str, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=rf'weights {weights!r} is neither an existing checkpoint file nor',
    ):
        tiny_task(weights=weights)


@pytest.mark.parametrize('source', ['file', 'enum'])
def test_weights_of_other_channels_for_a_frozen_backbone_are_refused(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TorchGeo's loader replaces a first layer of other input channels with a
    random one (with a warning); frozen, it stayed random for the whole run."""
    state = TinyNet(12).state_dict()
    weights: Any
    if source == 'file':
        weights = str(tmp_path / 'twelve.pt')
        torch.save(state, weights)
    else:
        weights = FakeWeights.TINY
        monkeypatch.setattr(
            FakeWeights.TINY,
            'get_state_dict',
            lambda *a, **k: dict(state),
            raising=False,
        )
    with pytest.raises(
        ValueError,
        match=r"'features\.0\.weight' of shape \(4, 12, 3, 3\).*\(4, 13, 3, 3\)"
        r'.*in_channels',
    ):
        tiny_task(weights=weights, in_channels=13, freeze_backbone=True)
    with pytest.warns(UserWarning, match='input channels'):
        trained = tiny_task(weights=weights, in_channels=13)  # TorchGeo's way
    assert torch.equal(
        trained.model.state_dict()['features.1.weight'], state['features.1.weight']
    )


@pytest.mark.parametrize('weights', [None, False])
def test_a_frozen_random_backbone_is_warned_of(weights: Any) -> None:
    """freeze_backbone with no weights trained a projection over a random
    backbone kept random for the whole run, without a word."""
    with pytest.warns(UserWarning, match='backbone is random and stays so'):
        tiny_task(weights=weights, freeze_backbone=True)
    with warnings.catch_warnings():
        warnings.filterwarnings('error', message='.*backbone is random')
        tiny_task(weights=weights, freeze_backbone=False)
