"""torchgeo_satclip._nn.evaluating: a caller's module borrowed, then given back."""

import pytest
import torch
from torch import nn

from torchgeo_satclip._nn import evaluating


def model() -> nn.Sequential:
    """Training, but with its batch norm frozen (in eval mode) by its owner."""
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    net.train()
    net[1].eval()
    return net


def test_every_submodule_gets_its_own_mode_back() -> None:
    net = model()
    with evaluating(net) as borrowed:
        assert borrowed is net
        assert not any(part.training for part in net.modules())
    assert [part.training for part in net.modules()] == [True, True, False, True]


def recording_moves(net: nn.Module) -> list[torch.device]:
    """Record the devices *net* is moved to, without moving it (no CUDA here)."""
    moves: list[torch.device] = []

    def to(device: torch.device) -> nn.Module:
        moves.append(torch.device(device))
        return net

    net.to = to  # type: ignore[method-assign,assignment]
    return moves


def test_modes_and_device_come_back_after_an_error() -> None:
    net = model()
    moves = recording_moves(net)

    def run() -> None:
        with evaluating(net, torch.device('meta')):
            raise RuntimeError('inside')

    with pytest.raises(RuntimeError, match='inside'):
        run()
    assert moves == [torch.device('meta'), torch.device('cpu')]
    assert [part.training for part in net.modules()] == [True, True, False, True]


def test_without_a_device_nothing_moves() -> None:
    net = model()
    moves = recording_moves(net)
    with evaluating(net):
        pass
    assert moves == []


def test_on_its_own_device_it_is_not_moved_back() -> None:
    net = model()
    moves = recording_moves(net)
    with evaluating(net, torch.device('cpu')):
        pass
    assert moves == [torch.device('cpu')]


def test_a_module_on_several_devices_is_left_where_it_was_put() -> None:
    """No single device to go back to: it stays on the one it ran on."""
    net = model()
    net[0].to('meta')
    moves = recording_moves(net)
    with evaluating(net, torch.device('meta')):
        pass
    assert moves == [torch.device('meta')]
