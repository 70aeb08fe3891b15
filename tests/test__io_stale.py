"""Temporary files named for their process, and the removal of stale ones."""

import errno
import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from torchgeo_satclip._io import (
    atomic_path,
    atomic_write,
    no_room,
    pid_alive,
    remove_stale_temporaries,
    temporary_pattern,
    temporary_sibling,
)

from .processes import dead_pid


def test_names_carry_the_process_id(tmp_path: Path) -> None:
    tmp = temporary_sibling(tmp_path / 'out.parquet', '.tmp.parquet')
    assert tmp.name.startswith(f'.out.parquet.{os.getpid()}.')
    assert tmp.name.endswith('.tmp.parquet')
    match = temporary_pattern(tmp_path / 'out.parquet').fullmatch(tmp.name)
    assert match is not None
    assert int(match['pid']) == os.getpid()
    assert temporary_pattern(tmp_path / 'out.parq').fullmatch(tmp.name) is None
    with pytest.raises(ValueError, match=r"suffix must be '\.tmp' followed"):
        temporary_sibling(tmp_path / 'out.npy', '.npy')


def test_only_stale_temporaries_are_removed(tmp_path: Path) -> None:
    target = tmp_path / 'out.npy'
    dead = dead_pid()
    assert not pid_alive(dead)
    stale = tmp_path / f'.out.npy.{dead}.abc_1234.tmp.npy'
    stale_plain = tmp_path / f'.out.npy.{dead}.x9.tmp'
    kept = {
        'own': tmp_path / f'.out.npy.{os.getpid()}.abcd1234.tmp.npy',
        'parent': tmp_path / f'.out.npy.{os.getppid()}.abcd1234.tmp.npy',
        'other output': tmp_path / f'.other.npy.{dead}.abcd1234.tmp.npy',
        'no pid': tmp_path / '.out.npy.abcd1234.tmp.npy',
        'not temporary': tmp_path / f'.out.npy.{dead}.abcd1234.npy',
        'the output': target,
    }
    for path in [stale, stale_plain, *kept.values()]:
        path.write_bytes(b'x')
    folder = tmp_path / f'.out.npy.{dead}.dir00000.tmp'
    folder.mkdir()
    link = tmp_path / f'.out.npy.{dead}.link0000.tmp'
    link.symlink_to(target)
    removed = remove_stale_temporaries(target)
    assert sorted(removed) == sorted([stale, stale_plain])
    for name, path in kept.items():
        assert path.exists(), name
    assert folder.is_dir()
    assert link.is_symlink()
    assert remove_stale_temporaries(tmp_path / 'missing' / 'x.npy') == []


def test_a_locked_temporary_is_kept(tmp_path: Path) -> None:
    """A file still locked by a writer is never removed, whatever its name says."""
    target = tmp_path / 'out.csv'
    locked = tmp_path / f'.out.csv.{dead_pid()}.abcd1234.tmp.csv'
    locked.write_text('half')
    handle = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        holder = subprocess.run(
            [
                sys.executable,
                '-c',
                'import sys; from torchgeo_satclip._io import remove_stale_temporaries; '
                'print(len(remove_stale_temporaries(sys.argv[1])))',
                str(target),
            ],
            env={**os.environ, 'PYTHONPATH': str(Path(__file__).parents[1])},
            capture_output=True,
            text=True,
            check=True,
        )
        assert holder.stdout.strip() == '0'
        assert locked.exists()
    finally:
        os.close(handle)
    assert remove_stale_temporaries(target) == [locked]


def test_atomic_path_locks_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / 'out.bin'
    with atomic_path(target) as tmp:
        tmp.write_bytes(b'x')
        handle = os.open(tmp, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(handle)
    assert target.read_bytes() == b'x'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.bin']


@pytest.mark.parametrize('mode', [0o600, 0o640, 0o444, 0o755])
def test_replacing_keeps_the_mode(mode: int, tmp_path: Path) -> None:
    target = tmp_path / 'secret.txt'
    target.write_text('old')
    target.chmod(mode)
    seen = []

    def write(tmp: str) -> None:
        seen.append(stat.S_IMODE(os.stat(tmp).st_mode))  # private while written
        with open(tmp, 'w', encoding='utf-8') as handle:
            handle.write('new')

    atomic_write(target, write)
    assert target.read_text() == 'new'
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert seen == [mode | 0o600]  # the owner writes it; nobody else gains access


def test_no_room() -> None:
    assert no_room(OSError(errno.ENOSPC, 'x')) == os.strerror(errno.ENOSPC)
    assert no_room(OSError(errno.EDQUOT, 'x')) == os.strerror(errno.EDQUOT)
    assert no_room(
        OSError('Error writing bytes. Detail: [errno 27] File too large')
    ) == os.strerror(errno.EFBIG)
    assert no_room(OSError(errno.EACCES, 'Permission denied')) is None
    assert no_room(ValueError('No space left on device')) == os.strerror(errno.ENOSPC)
    assert no_room(RuntimeError('something else')) is None
