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


@pytest.mark.parametrize(
    ('text', 'parsed'),
    [
        ('0.8.1', (0, 8)),
        ('0.10.1', (0, 10)),
        ('0.10.0.dev0', (0, 10)),
        ('0.9rc1', (0, 9)),
        ('0.9b2', (0, 9)),
        ('1.0', (1, 0)),
        ('1.2+local.7', (1, 2)),
    ],
)
def test_parse_reads_the_minor_version_up_to_its_first_non_digit(
    text: str, parsed: tuple[int, int]
) -> None:
    """A pre-release tag after the minor number is not part of it.

    Every digit of the minor part was kept: ``0.9rc1`` read as ``(0, 91)``,
    which is torchgeo 0.10 or newer.
    """
    assert _compat._parse(text) == parsed
