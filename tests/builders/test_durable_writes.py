"""A patch's pixels are on disk before it takes its final name.

``index.csv`` trusts every image present under its final name, and a row is
appended only after the rename. Killed by SIGKILL, the page cache keeps what
was written; on a lost machine (a power cut) it does not, and a file renamed
but never flushed comes back empty or cut while its row may have reached the
disk. So every image is flushed (``fsync``) before its rename.
"""

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from .test_items_per_point import builder, flawed_item
from .test_nodata import CENTRE

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='reads /proc/self/fd'
)


def record(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, int], list[str]]:
    """Record the size of each file when flushed, and the images renamed flushed.

    Returns:
        ``{path: size when flushed}`` and the final names of the images whose
        temporary file was flushed, with all its bytes, before its rename.
    """
    flushed: dict[str, int] = {}
    durable: list[str] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        fsync(fd)
        flushed[os.readlink(f'/proc/self/fd/{fd}')] = os.fstat(fd).st_size

    def recording_replace(
        src: str | os.PathLike[str], dst: str | os.PathLike[str]
    ) -> None:
        source = os.path.realpath(src)
        if flushed.get(source) == os.stat(source).st_size:
            durable.append(Path(dst).name)
        replace(src, dst)

    monkeypatch.setattr(os, 'fsync', recording_fsync)
    monkeypatch.setattr(os, 'replace', recording_replace)
    return flushed, durable


def test_patch_flushed_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = flawed_item(tmp_path / 'good', 'none', dt.date(2022, 6, 1))
    images = tmp_path / 'images'
    images.mkdir()
    _, durable = record(monkeypatch)
    written = builder(images, [item], items_per_point=1).make_patch(3, *CENTRE)
    assert written.fn == 'patch_3.tif'
    assert durable == ['patch_3.tif']


def test_every_image_of_a_point_flushed_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows = ['2022-01-01/2022-03-31', '2022-04-01/2022-06-30']
    found = {
        (dt.date(2022, 1, 1), dt.date(2022, 3, 31)): [
            flawed_item(tmp_path / 'feb', 'none', dt.date(2022, 2, 1))
        ],
        (dt.date(2022, 4, 1), dt.date(2022, 6, 30)): [
            flawed_item(tmp_path / 'may', 'none', dt.date(2022, 5, 1))
        ],
    }
    images = tmp_path / 'images'
    images.mkdir()
    _, durable = record(monkeypatch)
    point = builder(images, found, items_per_point=1, windows=windows)
    written = point.make_point(4, *CENTRE)
    assert written.images is not None
    assert sorted(durable) == sorted(fn for fn, _ in written.images)
    assert sorted(durable) == ['patch_4.tif', 'patch_4_t1.tif']
