"""Atomic writes through a symlink, onto a folder, and the process umask."""

import os
from collections.abc import Callable
from pathlib import Path

from torchgeo_satclip._io import atomic_write, remove_stale_temporaries


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
