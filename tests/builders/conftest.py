from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake_stac import FakeStacServer, make_world


@pytest.fixture(scope='session')
def cogs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp('fake_cogs')
    make_world(directory)
    return directory


@pytest.fixture(scope='session')
def _server(cogs: Path) -> Iterator[FakeStacServer]:
    with FakeStacServer(cogs) as server:
        yield server


@pytest.fixture
def server(
    _server: FakeStacServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeStacServer]:
    # Nothing may leave the machine: never route 127.0.0.1 through a proxy.
    for name in ('NO_PROXY', 'no_proxy'):
        monkeypatch.setenv(name, '127.0.0.1,localhost')
    _server.reset()
    yield _server
    _server.reset()
