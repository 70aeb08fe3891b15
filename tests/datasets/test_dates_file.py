"""Tests of the ``dates.csv`` of multi-temporal datasets."""

import datetime
from pathlib import Path

import pytest

from torchgeo_satclip.datasets.s2_100k_files import read_dates_file, write_dates_file

D = datetime.date


def test_round_trip_sorted_by_point_and_date(tmp_path: Path) -> None:
    path = tmp_path / 'dates.csv'
    rows = [
        ('b.tif', 'b_1.tif', D(2022, 7, 1)),
        ('a.tif', 'a.tif', D(2021, 6, 3)),
        ('b.tif', 'b.tif', D(2021, 1, 2)),
        ('a.tif', 'a_1.tif', D(2020, 12, 31)),
    ]
    write_dates_file(path, rows)
    assert path.read_text().splitlines() == [
        'point,fn,date',
        'a.tif,a_1.tif,2020-12-31',
        'a.tif,a.tif,2021-06-03',
        'b.tif,b.tif,2021-01-02',
        'b.tif,b_1.tif,2022-07-01',
    ]
    dates = read_dates_file(path, ['a.tif', 'b.tif'])
    assert dates == {
        'a.tif': [(D(2020, 12, 31), 'a_1.tif'), (D(2021, 6, 3), 'a.tif')],
        'b.tif': [(D(2021, 1, 2), 'b.tif'), (D(2022, 7, 1), 'b_1.tif')],
    }


@pytest.mark.parametrize(
    ('text', 'match'),
    [
        ('point,fn\na,a\n', 'missing column'),
        ('point,fn,date\na.tif,a.tif,2021-13-01\n', 'line 2: date .* YYYY-MM-DD'),
        ('point,fn,date\na.tif,a.tif,2021-1-01\n', 'line 2: date'),
        ('point,fn,date\na.tif,a.tif,\n', 'line 2: date'),
        ('point,fn,date\na.tif,a.tif,2021-01-01\na.tif,a.tif,2021-02-01\n', 'twice'),
        (
            'point,fn,date\na.tif,a.tif,2021-01-01\na.tif,a2.tif,2021-01-01\n',
            'two images dated 2021-01-01',
        ),
        ('point,fn,date\na.tif,a2.tif,2021-01-01\n', 'does not list its own image'),
        ('point,fn,date\n../a.tif,a.tif,2021-01-01\n', 'not a plain file name'),
        ('point,fn,date\na.tif,a.tif,2021-01-01,x\n', 'line 2: 4 fields'),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / 'dates.csv'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_dates_file(path)


def test_points_must_match_the_index(tmp_path: Path) -> None:
    path = tmp_path / 'dates.csv'
    write_dates_file(path, [('a.tif', 'a.tif', D(2021, 1, 1))])
    with pytest.raises(ValueError, match=r'1 point\(s\) of index.csv have no rows'):
        read_dates_file(path, ['a.tif', 'b.tif'])
    with pytest.raises(ValueError, match=r'are not in index\.csv: a\.tif'):
        read_dates_file(path, [])


def test_writer_refuses_what_the_reader_refuses(tmp_path: Path) -> None:
    path = tmp_path / 'dates.csv'
    with pytest.raises(ValueError, match='does not list its own image'):
        write_dates_file(path, [('a.tif', 'a1.tif', D(2021, 1, 1))])
    assert not path.exists()
