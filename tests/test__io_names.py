"""Reading a temporary file's name back: its final name and its process."""

import os
from pathlib import Path

import pytest

from torchgeo_satclip._io import (
    parse_temporary_name,
    remove_stale_temporaries,
    temporary_pattern,
    temporary_sibling,
)


@pytest.mark.parametrize(
    ('final', 'suffix'),
    [
        ('out.parquet', '.tmp'),
        ('out.parquet', '.tmp.parquet'),
        ('shard_00001.npy', '.tmp.npy'),
        ('data.2021.01.csv', '.tmp'),
        ('notes.17.ab12cd.tmp', '.tmp'),  # a name that looks like a temporary
        ('notes.17.ab12cd.tmp.npy', '.tmp.npy'),
        ('.hidden', '.tmp'),
        ('line\nbreak', '.tmp'),
        ('é' * 40, '.tmp'),
    ],
)
def test_parse_gives_the_final_name_and_pid(
    tmp_path: Path, final: str, suffix: str
) -> None:
    tmp = temporary_sibling(tmp_path / final, suffix)
    assert parse_temporary_name(tmp.name) == (final, os.getpid())
    assert temporary_pattern(tmp_path / final).fullmatch(tmp.name) is not None


@pytest.mark.parametrize('final', ['x' * 255, 'a' + 'é' * 127])
def test_long_name_gives_its_name_part(tmp_path: Path, final: str) -> None:
    """A name over 200 bytes is cut in its temporaries: the cut name is given.

    The cut name's temporary pattern (what ``remove_stale_temporaries`` of it
    looks for) matches the temporary, a character cut in two included.
    """
    tmp = temporary_sibling(tmp_path / final)
    parsed = parse_temporary_name(tmp.name)
    assert parsed is not None
    part, pid = parsed
    assert pid == os.getpid()
    assert os.fsencode(part) == os.fsencode(final)[:200]
    assert temporary_pattern(tmp_path / part).fullmatch(tmp.name) is not None
    assert remove_stale_temporaries(tmp_path / part) == []  # this process's


@pytest.mark.parametrize(
    'name',
    [
        'out.parquet',
        '.out.parquet',
        '.out.parquet.tmp',
        '.out.parquet.123.tmp',  # no random part
        '.out.parquet.12a.abcdefgh.tmp',  # not a process id
        '.out.parquet.123.ABCDEFGH.tmp',  # tempfile's letters are lower case
        '..123.abcdefgh.tmp',  # no name
        'out.parquet.123.abcdefgh.tmp',  # no leading dot
    ],
)
def test_other_names_are_not_temporaries(name: str) -> None:
    assert parse_temporary_name(name) is None
