"""Tiny stand-ins for ``timm.create_model``, small enough for the CPU tests.

The fixtures ``tiny_timm`` and ``tiny_timm_classifier`` (``tests/conftest.py``)
patch them in; a test module asks for one with
``pytestmark = pytest.mark.usefixtures('tiny_timm')``.
"""

from typing import Any, cast

import torch
from torch import nn

__all__ = ['TinyClassifierNet', 'TinyNet', 'create_classifier_model', 'create_model']


class TinyNet(nn.Module):
    """A timm-like image encoder with batch norm (for the SatCLIP tasks)."""

    def __init__(self, in_chans: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.num_features = 4
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc: nn.Module = nn.Linear(4, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.fc(self.features(x)))


class TinyClassifierNet(nn.Module):
    """A timm-like classifier with timm's classifier API, without batch norm.

    For TorchGeo's classification and regression tasks, which call
    ``get_classifier`` and ``reset_classifier``.
    """

    def __init__(self, in_chans: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.num_features = 4
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.reset_classifier(num_classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(4, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.fc(self.features(x)))


def create_model(*args: Any, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for :class:`TinyNet` (name and weights ignored)."""
    return TinyNet(kwargs.get('in_chans', 3), kwargs.get('num_classes', 0))


def create_classifier_model(*args: Any, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for :class:`TinyClassifierNet`."""
    return TinyClassifierNet(kwargs.get('in_chans', 3), kwargs.get('num_classes', 0))
