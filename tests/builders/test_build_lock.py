"""The lock of a dataset root: who holds it, and file systems without locks."""

import errno
import logging
import os
import socket
from pathlib import Path

import pytest

from torchgeo_satclip.builders import BuildConfig, BuildLockedError, _state
from torchgeo_satclip.builders._state import BuildState

fcntl = pytest.importorskip('fcntl')  # the module _state locks with


def test_locked_names_the_lock_file_and_its_holder(tmp_path: Path) -> None:
    """The refusal named neither the lock file nor the build that holds it.

    A build of another host (a shared file system) cannot be found by
    looking at this host's processes.
    """
    config = BuildConfig()
    with BuildState(tmp_path, config):
        with pytest.raises(BuildLockedError) as raised:
            BuildState(tmp_path, config).open()
        message = str(raised.value)
        assert str(tmp_path / '.build.lock') in message
        assert f'process {os.getpid()} on {socket.gethostname()}' in message
    # Released with the state (and by the kernel when a build is killed).
    with BuildState(tmp_path, config):
        pass


@pytest.mark.parametrize('code', [errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS])
def test_file_system_without_locks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    """A file system that refuses locks was reported as another build running.

    Every build in such a root (some network and FUSE mounts) was refused
    with ``another build is running``, which no wait could ever end.
    """

    def flock(fd: int, operation: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, 'flock', flock)
    caplog.set_level(logging.WARNING, logger=_state.__name__)
    with BuildState(tmp_path, BuildConfig()) as state:
        state.add('patch_0.tif', 1.0, 2.0)
    assert (tmp_path / 'index.csv').read_text() == (
        'fn,lon,lat\npatch_0.tif,1.000000,2.000000\n'
    )
    [record] = caplog.records
    assert str(tmp_path / '.build.lock') in record.getMessage()
    assert os.strerror(code) in record.getMessage()
