"""The torchgeo version differences: how the version itself is found."""

import importlib
import importlib.metadata

import pytest
import torchgeo

from torchgeo_satclip import _compat


def test_version_without_distribution_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torchgeo's own ``__version__`` is enough (a source checkout on the path).

    The metadata's version was looked up even when ``torchgeo.__version__``
    was there, so importing the package failed with PackageNotFoundError
    without the distribution's metadata.
    """

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, 'version', missing)
    try:
        reloaded = importlib.reload(_compat)
        assert torchgeo.__version__ == reloaded.TORCHGEO_VERSION
    finally:
        monkeypatch.undo()
        importlib.reload(_compat)
    assert torchgeo.__version__ == _compat.TORCHGEO_VERSION
