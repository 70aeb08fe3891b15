"""Atomic writes through a symlink, onto a folder, and the process umask."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from torchgeo_satclip._io import (
    atomic_write,
    pid_alive,
    remove_stale_temporaries,
    temporary_pattern,
    temporary_sibling,
)


def writing(data: bytes) -> Callable[[str], None]:
    """A writer for :func:`atomic_write` that writes ``data``."""

    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)

    return write


def test_symlinked_destination_is_followed(tmp_path: Path) -> None:
    """A symlink to the output keeps pointing at it; the target gets the data.

    The link was replaced by a regular file in its own folder (the target
    kept the old content), though the new file took the target's mode: a
    plain ``open(path, 'w')`` writes through the link.
    """
    disk = tmp_path / 'big'
    disk.mkdir()
    target = disk / 'embeddings.parquet'
    target.write_bytes(b'old')
    target.chmod(0o640)
    link = tmp_path / 'out.parquet'
    link.symlink_to(target)
    atomic_write(link, writing(b'new'))
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert target.read_bytes() == b'new'
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ['big', 'out.parquet']
    assert [p.name for p in disk.iterdir()] == ['embeddings.parquet']


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    target = tmp_path / 'elsewhere' / 'out.npy'
    target.parent.mkdir()
    link = tmp_path / 'out.npy'
    link.symlink_to(target)
    atomic_write(link, writing(b'x'))
    assert link.is_symlink()
    assert target.read_bytes() == b'x'


def test_stale_temporaries_of_a_symlinked_destination(tmp_path: Path) -> None:
    """Temporaries sit beside the target, so they are looked for there."""
    target = tmp_path / 'real' / 'out.npy'
    target.parent.mkdir()
    link = tmp_path / 'out.npy'
    link.symlink_to(target)
    stale = target.parent / '.out.npy.999999999.abcd1234.tmp.npy'
    stale.write_bytes(b'x')
    assert remove_stale_temporaries(link) == [stale]
    assert not stale.exists()


def test_folder_destination_refused_before_writing(tmp_path: Path) -> None:
    """A folder under the output's name is refused before the content is made.

    The whole file was written (an embedding run of hours), then the rename
    onto the folder failed with ``[Errno 21] Is a directory``, naming the
    temporary file first.
    """
    folder = tmp_path / 'out.parquet'
    folder.mkdir()
    (folder / 'part-0.parquet').write_bytes(b'kept')
    calls: list[str] = []
    with pytest.raises(IsADirectoryError) as raised:
        atomic_write(folder, calls.append)
    assert str(raised.value) == (
        f'cannot write {folder}: it is a folder, expected a file (or none)'
    )
    assert calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.parquet']
    assert (folder / 'part-0.parquet').read_bytes() == b'kept'


def test_file_in_place_of_the_folder_refused(tmp_path: Path) -> None:
    """A file where the output's folder should be: named as such.

    Creating the folder failed with ``[Errno 17] File exists``, naming the
    file but not that a folder was expected there, nor the output.
    """
    blocker = tmp_path / 'results'
    blocker.write_text('a file')
    target = blocker / 'sub' / 'out.csv'
    with pytest.raises(NotADirectoryError) as raised:
        atomic_write(target, writing(b'x'))
    assert str(raised.value) == (
        f'cannot write {target}: {blocker} is a file, expected a folder'
    )
    assert blocker.read_text() == 'a file'


@pytest.mark.skipif(
    not Path('/proc/self/status').exists(), reason='reads the umask from /proc'
)
def test_umask_read_without_changing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mode of a new file follows the umask, which is never set meanwhile.

    The umask was read by setting it to 0 and back: for that moment, a file
    created by another thread (``embed`` writes on one) was world-writable.
    """
    old = os.umask(0o027)
    try:
        calls: list[int] = []
        umask = os.umask

        def recording_umask(mask: int) -> int:
            calls.append(mask)
            return umask(mask)

        monkeypatch.setattr(os, 'umask', recording_umask)
        target = tmp_path / 'out.bin'
        atomic_write(target, writing(b'data'))
        assert target.stat().st_mode & 0o777 == 0o640
        assert calls == []
    finally:
        os.umask(old)


def test_umask_without_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where ``/proc`` cannot tell it, the umask is still the one applied."""
    from torchgeo_satclip import _io

    def no_proc(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError('/proc/self/status')

    monkeypatch.setattr(_io, 'open', no_proc, raising=False)
    old = os.umask(0o077)
    try:
        target = tmp_path / 'out.bin'
        atomic_write(target, writing(b'data'))
        assert target.stat().st_mode & 0o777 == 0o600
        assert os.umask(0o077) == 0o077
    finally:
        os.umask(old)


@pytest.mark.parametrize('pid', [2**31, 2**40, 10**30])
def test_process_id_beyond_any_process(tmp_path: Path, pid: int) -> None:
    """A temporary named with a process id no system has is stale, not a crash.

    ``os.kill`` raised OverflowError for it, so one such file beside the
    output made every later write of it fail.
    """
    assert not pid_alive(pid)
    stale = tmp_path / f'.out.npy.{pid}.abcd1234.tmp.npy'
    stale.write_bytes(b'x')
    assert remove_stale_temporaries(tmp_path / 'out.npy') == [stale]


def test_temporary_removed_when_its_mode_cannot_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt (or error) while the temporary is set up leaves no file.

    The file made by ``mkstemp`` stayed behind when ``fchmod`` failed, under
    a name of this (live) process, which no cleanup of later runs removes
    while it runs.
    """

    def interrupted(fd: int, mode: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, 'fchmod', interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / 'out.bin', writing(b'x'))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    'name', ['a' * 250 + '.npy', 'é' * 125 + '.npy', 'a' + 'é' * 125 + '.npy']
)
def test_longest_file_names_written(tmp_path: Path, name: str) -> None:
    """A file name the system takes (up to 255 bytes) can be written atomically.

    Its temporary added about 25 characters to it, and making it failed with
    ``[Errno 36] File name too long``, naming the temporary file.
    """
    target = tmp_path / name
    atomic_write(target, writing(b'x'))
    assert target.read_bytes() == b'x'
    assert [p.name for p in tmp_path.iterdir()] == [name]
    tmp = temporary_sibling(target, '.tmp.npy')
    assert temporary_pattern(target).fullmatch(tmp.name) is not None
    stale = tmp_path / tmp.name.replace(f'.{os.getpid()}.', '.999999999.')
    tmp.rename(stale)
    assert remove_stale_temporaries(target) == [stale]
