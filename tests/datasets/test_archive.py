"""Archives are extracted safely: nothing lands outside the target.

Issue 13: ``S2100K(root, checksum=False)`` with a local ``satclip.tar``
holding ``../../ESCAPED.txt`` wrote outside the root. Every hostile member
kind must refuse the whole archive before anything is written, with and
without Python's ``data`` filter.
"""

import io
import os
import re
import resource
import signal
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import pytest

from torchgeo_satclip.datasets import S2100K, _archive
from torchgeo_satclip.datasets._archive import extract_safely


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b'x') -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return info


def add_special(
    tar: tarfile.TarFile, name: str, kind: bytes, target: str = ''
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info)
    return info


#: (case id, how to fill the archive, the member named in the refusal)
HOSTILE: list[tuple[str, Callable[[tarfile.TarFile, Path], object], str]] = [
    ('dotdot', lambda t, base: add_file(t, '../../ESCAPED.txt'), '../../ESCAPED.txt'),
    ('dotdot-one', lambda t, base: add_file(t, '../ESCAPED.txt'), '../ESCAPED.txt'),
    (
        'dotdot-inside',
        lambda t, base: add_file(t, 'a/../../ESCAPED.txt'),
        'a/../../ESCAPED.txt',
    ),
    (
        'absolute',
        lambda t, base: add_file(t, f'{base}/outside/ESCAPED.txt'),
        '{base}/outside/ESCAPED.txt',
    ),
    (
        'after-good',
        lambda t, base: (add_file(t, 'patch_0.tif'), add_file(t, '../x')),
        '../x',
    ),
    (
        'symlink-out',
        lambda t, base: add_special(t, 'link', tarfile.SYMTYPE, '/etc/passwd'),
        'link',
    ),
    (
        'symlink-in',
        lambda t, base: add_special(t, 'link', tarfile.SYMTYPE, 'patch_0.tif'),
        'link',
    ),
    (
        'symlink-then-write',
        lambda t, base: (
            add_special(t, 'd', tarfile.SYMTYPE, '..'),
            add_file(t, 'd/x'),
        ),
        'd',
    ),
    (
        'hardlink',
        lambda t, base: add_special(t, 'hard', tarfile.LNKTYPE, '/etc/passwd'),
        'hard',
    ),
    ('char-device', lambda t, base: add_special(t, 'null', tarfile.CHRTYPE), 'null'),
    ('block-device', lambda t, base: add_special(t, 'disk', tarfile.BLKTYPE), 'disk'),
    ('fifo', lambda t, base: add_special(t, 'pipe', tarfile.FIFOTYPE), 'pipe'),
]


@pytest.fixture(params=[True, False], ids=['data-filter', 'no-filter'])
def data_filter(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> bool:
    monkeypatch.setattr(
        _archive, 'HAS_DATA_FILTER', request.param and hasattr(tarfile, 'data_filter')
    )
    return bool(request.param)


@pytest.mark.parametrize(
    ('fill', 'member'),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
def test_hostile_tar_refused(
    tmp_path: Path,
    data_filter: bool,
    fill: Callable[[tarfile.TarFile, Path], object],
    member: str,
) -> None:
    root = tmp_path / 'root'
    target = root / 'images'
    target.mkdir(parents=True)
    archive = root / 'satclip.tar'
    with tarfile.open(archive, 'w') as tar:
        fill(tar, tmp_path)
    before = sorted(tmp_path.rglob('*'))
    named = member.format(base=tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"member '{named}'")) as info:
        extract_safely(archive, target)
    assert 'refusing to extract this archive' in str(info.value)
    assert sorted(tmp_path.rglob('*')) == before  # nothing written, anywhere


def test_existing_symlink_in_target_is_not_followed(
    tmp_path: Path, data_filter: bool
) -> None:
    outside = tmp_path / 'outside'
    outside.mkdir()
    target = tmp_path / 'images'
    target.mkdir()
    (target / 'link').symlink_to(outside)
    archive = tmp_path / 'a.tar'
    with tarfile.open(archive, 'w') as tar:
        add_file(tar, 'link/x.tif')
    with pytest.raises(
        ValueError, match=re.escape("member 'link/x.tif' would be written outside")
    ):
        extract_safely(archive, target)
    assert not any(outside.iterdir())


@pytest.mark.parametrize(
    'name',
    ['../x.txt', '../../x.txt', '{base}/x.txt', 'a/../../x.txt'],
)
def test_hostile_zip_refused(tmp_path: Path, name: str) -> None:
    target = tmp_path / 'images'
    archive = tmp_path / 'a.zip'
    with zipfile.ZipFile(archive, 'w') as handle:
        handle.writestr('ok.tif', b'x')
        handle.writestr(name.format(base=tmp_path), b'x')
    with pytest.raises(ValueError, match='would be written outside'):
        extract_safely(archive, target)
    assert not any(target.iterdir())
    assert not (tmp_path / 'x.txt').exists()


#: A file member whose path is a folder: the target itself, or a folder
#: of the archive (case id, file members in order, folder members, the member
#: refused, why).
FOLDER_FILES: list[tuple[str, list[str], list[str], str, str]] = [
    ('dot', ['patch_0.tif', '.'], [], '.', 'the target folder itself'),
    ('dotdot-inside', ['a/..'], [], 'a/..', 'the target folder itself'),
    ('dot-inside', ['sub/../.'], [], 'sub/../.', 'the target folder itself'),
    ('folder-member', ['sub'], ['sub'], 'sub', 'a folder of the archive'),
    ('parent-of-file', ['sub', 'sub/x.tif'], [], 'sub', 'a folder of the archive'),
]


@pytest.mark.parametrize('kind', ['tar', 'zip'])
@pytest.mark.parametrize(
    ('files', 'folders', 'member', 'why'),
    [case[1:] for case in FOLDER_FILES],
    ids=[case[0] for case in FOLDER_FILES],
)
def test_file_member_on_a_folder_refused(
    tmp_path: Path,
    kind: str,
    files: list[str],
    folders: list[str],
    member: str,
    why: str,
) -> None:
    """A file member named '.' (or 'a/..') failed with an unclear OSError
    ('Is a directory: .../.images.<pid>.tmp -> .../images')."""
    target = tmp_path / 'root' / 'images'
    archive = tmp_path / f'a.{kind}'
    if kind == 'tar':
        with tarfile.open(archive, 'w') as tar:
            for name in folders:
                folder = tarfile.TarInfo(name)
                folder.type = tarfile.DIRTYPE
                tar.addfile(folder)
            for name in files:
                add_file(tar, name)
    else:
        with zipfile.ZipFile(archive, 'w') as handle:
            for name in folders:
                handle.writestr(f'{name}/', b'')
            for name in files:
                handle.writestr(name, b'x')
    with pytest.raises(
        ValueError, match=re.escape(f"member '{member}' is a file")
    ) as info:
        extract_safely(archive, target)
    assert why in str(info.value)
    assert 'refusing to extract this archive' in str(info.value)
    assert not any(target.iterdir())  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.' + kind, 'root']


@pytest.mark.parametrize('content', [b'', b'not an archive', bytes(100)])
def test_not_an_archive(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / 'satclip.tar'
    archive.write_bytes(content)
    with pytest.raises(ValueError, match='is neither a tar nor a zip archive'):
        extract_safely(archive, tmp_path / 'images')


_WriteMode = Literal['w', 'w:gz', 'w:bz2', 'w:xz']


def _tar_bytes(mode: _WriteMode) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        add_file(tar, 'patch_0.tif', os.urandom(5000))
        add_file(tar, 'patch_1.tif', os.urandom(5000))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ('mode', 'fraction'),
    # an uncompressed tar cut in its zero padding is complete: cut in a file
    [(m, f) for m in ('w:gz', 'w:bz2', 'w:xz') for f in (0.3, 0.6, 0.9)] + [('w', 0.3)],
)
def test_truncated_archive(tmp_path: Path, mode: _WriteMode, fraction: float) -> None:
    data = _tar_bytes(mode)
    archive = tmp_path / 'satclip.tar'
    archive.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r'is (damaged or truncated|neither a tar)'):
        extract_safely(archive, tmp_path / 'images')


@pytest.mark.parametrize('mode', ['w', 'w:gz', 'w:bz2', 'w:xz'])
def test_good_tar_extracts(tmp_path: Path, data_filter: bool, mode: _WriteMode) -> None:
    archive = tmp_path / 'a.tar'
    with tarfile.open(archive, mode) as tar:
        info = tarfile.TarInfo('sub')
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        add_file(tar, 'patch_0.tif', b'abc')
        add_file(tar, 'sub/patch_1.tif', b'def')
        add_file(tar, './patch_2.tif', b'old')
        add_file(tar, './patch_2.tif', b'ghi')  # twice: the last copy wins
    target = tmp_path / 'images'
    # what it wrote: each file once, relative to the target (for the marker)
    assert extract_safely(archive, target) == [
        'patch_0.tif',
        'patch_2.tif',
        'sub/patch_1.tif',
    ]
    assert (target / 'patch_0.tif').read_bytes() == b'abc'
    assert (target / 'sub' / 'patch_1.tif').read_bytes() == b'def'
    assert (target / 'patch_2.tif').read_bytes() == b'ghi'
    mode_bits = stat.S_IMODE((target / 'patch_0.tif').stat().st_mode)
    assert not mode_bits & (stat.S_ISUID | stat.S_ISGID)


def test_good_zip_extracts(tmp_path: Path) -> None:
    archive = tmp_path / 'a.zip'
    with zipfile.ZipFile(archive, 'w') as handle:
        handle.writestr('patch_0.tif', b'abc')
        handle.writestr('sub/', b'')  # a folder entry is no file written
        handle.writestr('sub/patch_1.tif', b'def')
    written = extract_safely(archive, tmp_path / 'images')
    assert written == ['patch_0.tif', 'sub/patch_1.tif']
    assert (tmp_path / 'images' / 'patch_0.tif').read_bytes() == b'abc'
    assert (tmp_path / 'images' / 'sub' / 'patch_1.tif').read_bytes() == b'def'


def test_s2100k_does_not_escape(tmp_path: Path, data_filter: bool) -> None:
    """The case of issue 13, through the dataset."""
    root = tmp_path / 'a' / 'b' / 'root'
    (root / 'images').mkdir(parents=True)
    (root / 'index.csv').write_text('fn,lon,lat\npatch_0.tif,1.0,2.0\n')
    with tarfile.open(root / 'satclip.tar', 'w') as tar:
        add_file(tar, '../../ESCAPED.txt', b'escaped')
    with pytest.raises(
        ValueError,
        match=re.escape("member '../../ESCAPED.txt' would be written outside"),
    ):
        S2100K(root, checksum=False)
    escaped = [p for p in tmp_path.rglob('ESCAPED.txt')]
    assert escaped == []
    assert not (root / '.satclip.tar.extracted').exists()
    assert os.listdir(root / 'images') == []


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past *limit* bytes fail (EFBIG), as on a disk that fills up."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize('kind', ['tar', 'zip'])
def test_failed_extraction_leaves_no_half_written_file(
    tmp_path: Path, data_filter: bool, kind: str
) -> None:
    """A write that fails half-way (disk full, killed) leaves no cut file.

    Re-extracting an archive to bring back a lost image rewrote the images
    already there in place: a failure half-way left a cut GeoTIFF under its
    final name, which the extraction marker then vouched for.
    """
    new = {f'patch_{i}.tif': bytes([i]) * 40_000 for i in range(2)}
    archive = tmp_path / f'a.{kind}'
    if kind == 'tar':
        with tarfile.open(archive, 'w') as tar:
            for name, data in new.items():
                add_file(tar, name, data)
    else:
        with zipfile.ZipFile(archive, 'w') as handle:
            for name, data in new.items():
                handle.writestr(name, data)
    target = tmp_path / 'images'
    target.mkdir()
    (target / 'patch_0.tif').write_bytes(b'good old image')
    with pytest.raises(OSError, match='File too large'), file_size_limit(20_000):
        extract_safely(archive, target)
    # every file is as it was, or absent: none is cut
    assert (target / 'patch_0.tif').read_bytes() == b'good old image'
    assert not (target / 'patch_1.tif').exists()
    assert [p.name for p in target.iterdir()] == ['patch_0.tif']  # no temporaries
    # and a complete extraction writes them all
    assert extract_safely(archive, target) == sorted(new)
    for name, data in new.items():
        assert (target / name).read_bytes() == data


@pytest.mark.parametrize(
    ('mode', 'kind'),
    [(stat.S_IFLNK | 0o777, 'a link'), (stat.S_IFIFO | 0o644, 'a special file')],
)
def test_zip_links_and_special_files_refused(
    tmp_path: Path, mode: int, kind: str
) -> None:
    """A zip member marked as a symbolic link (or a FIFO) in its Unix mode was
    written as a regular file holding the link's target (here a path outside
    the root), although links refuse the whole archive, as they do in a tar."""
    target = tmp_path / 'images'
    archive = tmp_path / 'a.zip'
    with zipfile.ZipFile(archive, 'w') as handle:
        handle.writestr('ok.tif', b'x')
        info = zipfile.ZipInfo('patch_1.tif')
        info.create_system = 3  # Unix: external_attr holds st_mode
        info.external_attr = mode << 16
        handle.writestr(info, str(tmp_path / 'secret'))
    with pytest.raises(
        ValueError, match=rf"member 'patch_1.tif' is {kind}, not a regular file"
    ):
        extract_safely(archive, target)
    assert not any(target.iterdir())
