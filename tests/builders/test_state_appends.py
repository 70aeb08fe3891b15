"""The rows a build appends are written whole, even by short writes.

``write(2)`` may write fewer bytes than asked (a file system nearly full, a
quota); the rest must follow, or the row is torn while the build goes on as
if it were recorded, and the next row is glued to it.
"""

import datetime as dt
import os
from pathlib import Path

import pytest

from torchgeo_satclip.builders import BuildConfig
from torchgeo_satclip.builders._state import BuildState
from torchgeo_satclip.datasets.s2_100k_files import read_dates_file


@pytest.fixture
def short_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``os.write`` writes at most 7 bytes, as a short write does."""
    write = os.write

    def short(fd: int, data: bytes) -> int:
        return write(fd, bytes(data)[:7])

    monkeypatch.setattr(os, 'write', short)


@pytest.mark.usefixtures('short_writes')
def test_rows_written_whole(tmp_path: Path) -> None:
    with BuildState(tmp_path, BuildConfig()) as state:
        state.add('patch_0.tif', 10.5, 45.25)
        state.reject(1, -3.0, 12.0, 'no_item')
        state.add('patch_2.tif', 11.0, 46.0)
    assert (tmp_path / 'index.csv').read_text() == (
        'fn,lon,lat\npatch_0.tif,10.500000,45.250000\npatch_2.tif,11.000000,46.000000\n'
    )
    assert (tmp_path / 'rejected.csv').read_text() == (
        'sample,lon,lat,reason\n1,-3.000000,12.000000,no_item\n'
    )


@pytest.mark.usefixtures('short_writes')
def test_dates_rows_written_whole(tmp_path: Path) -> None:
    config = BuildConfig(start='2022-01-01', end='2022-12-31', dates=2)
    images = [
        ('patch_0.tif', dt.date(2022, 2, 1)),
        ('patch_0_t1.tif', dt.date(2022, 9, 1)),
    ]
    state = BuildState(tmp_path, config)
    state.open()
    state.add('patch_0.tif', 10.5, 45.25, images)
    # Read before close() rewrites dates.csv from what it holds in memory.
    listed = read_dates_file(tmp_path / 'dates.csv', ['patch_0.tif'])
    state.close()
    assert listed == {'patch_0.tif': [(date, fn) for fn, date in images]}


@pytest.mark.parametrize('sample', ['²', '١', '-1', ''])
def test_rejected_row_with_a_sample_that_is_not_a_number_is_dropped(
    tmp_path: Path, sample: str
) -> None:
    """A rejected row whose sample is not ASCII digits is a damaged row.

    ``'²'.isdigit()`` is true (and ``'١'`` is an Arabic-Indic one) but
    ``int('²')`` fails: the row is dropped like any other damaged row, and the
    build goes on with the good ones.
    """
    (tmp_path / 'rejected.csv').write_text(
        f'sample,lon,lat,reason\n3,1.0,2.0,no_item\n{sample},1.0,2.0,no_item\n',
        encoding='utf-8',
    )
    with BuildState(tmp_path, BuildConfig()) as state:
        assert state.rejected == {3: 'no_item'}
    assert (tmp_path / 'rejected.csv').read_text(encoding='utf-8') == (
        'sample,lon,lat,reason\n3,1.0,2.0,no_item\n'
    )
