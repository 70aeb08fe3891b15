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


#: A process id that no process has (beyond any pid_max).
DEAD = 999_999_999


@pytest.mark.parametrize(
    ('name', 'owner', 'other'),
    [
        # the temporary of 'a.1.bbbbbbbb.tmp', or of 'a' with '.2.cccccccc.tmp' after .tmp
        (f'.a.1.bbbbbbbb.tmp.{DEAD}.cccccccc.tmp', 'a.1.bbbbbbbb.tmp', 'a'),
        (f'.a.{DEAD}.bbbbbbbb.tmp.{DEAD}.cccccccc.tmp', f'a.{DEAD}.bbbbbbbb.tmp', 'a'),
        # the temporary of 'x.<pid>' (random 'tmp'), or of 'x' with '.tmp' after .tmp
        (f'.x.{DEAD}.{DEAD}.tmp.tmp', f'x.{DEAD}', 'x'),
    ],
)
def test_a_temporary_belongs_to_one_final_name(
    tmp_path: Path, name: str, owner: str, other: str
) -> None:
    """No temporary name reads as the temporary of two final names.

    Else the stale-temporary cleanup of one file could delete another's.
    """
    assert parse_temporary_name(name)[0] == owner  # type: ignore[index]
    assert temporary_pattern(tmp_path / owner).fullmatch(name) is not None
    assert temporary_pattern(tmp_path / other).fullmatch(name) is None
    (tmp_path / name).write_bytes(b'another file, being written')
    assert remove_stale_temporaries(tmp_path / other) == []
    assert (tmp_path / name).exists()
    assert remove_stale_temporaries(tmp_path / owner) == [tmp_path / name]


@pytest.mark.parametrize(
    'suffix',
    ['.tmp.2.cccccccc.tmp', '.tmp.tar.gz', '.tmp.', '.tmp./x', '.tmp.a/b', '.tmp.tmp'],
)
def test_suffix_with_more_than_one_extension_refused(
    tmp_path: Path, suffix: str
) -> None:
    """What follows ``.tmp`` is one extension: a dot in it would make names ambiguous."""
    with pytest.raises(ValueError, match=r"suffix must be '\.tmp'") as error:
        temporary_sibling(tmp_path / 'a', suffix)
    assert repr(suffix) in str(error.value)
    assert list(tmp_path.iterdir()) == []
