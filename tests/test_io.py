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
        Path(tmp).write_text('half', encoding='utf-8')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(target, broken)
    assert target.read_text() == 'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['index.csv']


def test_flushed_to_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole file is fsynced before it takes its name, the folder after.

    A killed process leaves what it wrote in the page cache; a lost machine
    (a power cut) does not, and a file renamed but never flushed could come
    back under its final name empty or cut, and be trusted.
    """
    events: list[tuple[str, str, int]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        fsync(fd)
        info = os.fstat(fd)
        kind = 'dir' if stat.S_ISDIR(info.st_mode) else 'file'
        events.append(('fsync', kind, info.st_ino if kind == 'dir' else info.st_size))

    def recording_replace(src: str | os.PathLike[str], dst: str) -> None:
        events.append(('replace', Path(dst).name, os.stat(src).st_size))
        replace(src, dst)

    monkeypatch.setattr(os, 'fsync', recording_fsync)
    monkeypatch.setattr(os, 'replace', recording_replace)
    target = tmp_path / 'data.bin'
    atomic_write(target, lambda tmp: Path(tmp).write_bytes(b'x' * 5000))
    assert target.read_bytes() == b'x' * 5000
    assert events == [
        ('fsync', 'file', 5000),
        ('replace', 'data.bin', 5000),
        ('fsync', 'dir', tmp_path.stat().st_ino),
    ]
