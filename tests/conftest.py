from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import matplotlib
import pytest
import timm

from .geoclip_weights import (
    installed_geoclip_weights,
    make_fake_distribution,
    random_geoclip_state,
)
from .tiny_timm import create_classifier_model, create_model

matplotlib.use('agg')


@pytest.fixture(scope='session')
def fake_geoclip_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake installed geoclip with random weights of the released sizes."""
    site = tmp_path_factory.mktemp('geoclip-site')
    make_fake_distribution(site, random_geoclip_state(seed=11))
    return site


@pytest.fixture
def geoclip_available(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """GeoCLIP's weights for ``'geoclip'``: the installed ones, else random ones.

    The ``tests`` extra installs geoclip; without it, a fake distribution
    with random weights of the released sizes goes first on ``sys.path``.
    """
    real = installed_geoclip_weights()
    if real is not None:
        yield real
        return
    site: Path = request.getfixturevalue('fake_geoclip_site')
    monkeypatch.syspath_prepend(str(site))
    yield site / 'geoclip' / 'model' / 'weights' / 'location_encoder_weights.pth'


@pytest.fixture
def no_geoclip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any installed geoclip distribution."""
    real = metadata.distribution

    def distribution(name: str) -> metadata.Distribution:
        if name == 'geoclip':
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, 'distribution', distribution)


@pytest.fixture
def tiny_timm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``timm.create_model`` builds :class:`tests.tiny_timm.TinyNet`."""
    monkeypatch.setattr(timm, 'create_model', create_model)


@pytest.fixture
def tiny_timm_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    """``timm.create_model`` builds :class:`tests.tiny_timm.TinyClassifierNet`."""
    monkeypatch.setattr(timm, 'create_model', create_classifier_model)
