import os
import stat
from pathlib import Path

import pytest

from torchgeo_satclip._io import atomic_write, temporary_sibling


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / 'sub' / 'out.bin'
        atomic_write(target, lambda tmp: Path(tmp).write_bytes(b'data'))
        assert target.read_bytes() == b'data'
        assert mode(target) == 0o644  # not mkstemp's private 0600
        os.umask(0o077)
        private = temporary_sibling(tmp_path / 'x.npy', '.tmp.npy')
        assert mode(private) == 0o600
        assert private.name.startswith('.x.npy.')
        assert private.name.endswith('.tmp.npy')
    finally:
        os.umask(old)


def test_failed_write_leaves_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / 'index.csv'
    target.write_text('old')

    def broken(tmp: str) -> None:
        Path(tmp).write_text('half')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(target, broken)
    assert target.read_text() == 'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['index.csv']
