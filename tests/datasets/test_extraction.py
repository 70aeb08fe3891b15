"""What constructing S2100K costs around its archives: one listing, one extraction.

* ``images/`` is listed once per construction when nothing is extracted
  (100,000 names: tens of milliseconds a listing); after an extraction it is
  listed again, so the files just extracted are seen.
* An ``index.csv`` row whose file no archive holds costs one extraction, not
  one per construction (150 GB at full scale): the extraction marker records
  what the archive gave, and an archive counts as extracted while the files
  it gave are there. The error naming the missing file stays; a file the
  archive gave and that was deleted since still brings the archive back.
"""

import hashlib
import os
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

import torchgeo_satclip.datasets._archive
import torchgeo_satclip.datasets.s2_100k
from torchgeo_satclip.datasets import S2100K

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
FNS = [f'patch_{i}.tif' for i in range(8)]
MISSING = r'1 of 8 files listed in \S+index\.csv are missing from \S+images: '


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tar(path: Path, names: Sequence[str]) -> Path:
    """An archive of the test patches *names*, as S2-100K's (flat)."""
    with tarfile.open(path, 'w') as tar:
        for name in names:
            tar.add(DATA / 'images' / name, arcname=name)
    return path


def new_root(tmp_path: Path) -> Path:
    root = tmp_path / 'root'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    return root


class Listings:
    """Counts the listings of one folder, by any means Python lists one.

    ``os.listdir`` and ``os.scandir`` are what everything else
    (``Path.iterdir``, ``Path.glob``, ``os.walk``) calls.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.folder = folder.resolve()
        self.count = 0
        for name in ('listdir', 'scandir'):
            monkeypatch.setattr(os, name, self._counting(getattr(os, name)))

    def _counting(self, real: Any) -> Any:
        def listing(path: Any = '.') -> Any:
            if not isinstance(path, int) and Path(os.fsdecode(path)).resolve() == (
                self.folder
            ):
                self.count += 1
            return real(path)

        return listing


@pytest.fixture
def extractions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The archives S2100K extracts, in order."""
    done: list[Path] = []
    real = torchgeo_satclip.datasets._archive.extract_safely

    def counting(archive: Path, directory: Path) -> list[str]:
        done.append(Path(archive))
        return real(archive, directory)

    monkeypatch.setattr(torchgeo_satclip.datasets.s2_100k, 'extract_safely', counting)
    return done


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f'{url} downloaded')

    monkeypatch.setattr(torchgeo_satclip.datasets.s2_100k, 'download_url', refused)


# ------------------------------------------------------------ listing once


def test_images_listed_once_without_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractions: list[Path]
) -> None:
    root = new_root(tmp_path)
    shutil.copytree(DATA / 'images', root / 'images')
    listings = Listings(monkeypatch, root / 'images')
    assert len(S2100K(root, patch_size=32)) == 8  # extracted by hand
    assert listings.count == 1
    # extracted from an archive before: as cheap
    shutil.rmtree(root / 'images')
    make_tar(root / 'satclip.tar', FNS)
    S2100K(root, patch_size=32, checksum=False)
    assert extractions == [root / 'satclip.tar']
    listings.count = 0
    assert len(S2100K(root, patch_size=32, checksum=False)) == 8
    assert listings.count == 1
    assert extractions == [root / 'satclip.tar']


def test_missing_file_error_unchanged_with_one_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = new_root(tmp_path)
    shutil.copytree(DATA / 'images', root / 'images')
    (root / 'images' / 'patch_6.tif').unlink()
    listings = Listings(monkeypatch, root / 'images')
    with pytest.raises(FileNotFoundError, match=MISSING + r'patch_6\.tif$'):
        S2100K(root, patch_size=32)
    assert listings.count == 1


def test_extracted_files_are_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractions: list[Path]
) -> None:
    """After an extraction the listing is stale: it is made again."""
    root = new_root(tmp_path)
    make_tar(root / 'satclip.tar', FNS)
    listings = Listings(monkeypatch, root / 'images')
    ds = S2100K(root, patch_size=32, checksum=False)  # nothing there before
    assert extractions == [root / 'satclip.tar']
    assert len(ds) == 8
    assert torch.equal(ds[3]['image'], S2100K(DATA, patch_size=32)[3]['image'])
    # some lost: listed, extracted, listed again and found
    (root / 'images' / 'patch_2.tif').unlink()
    listings.count = 0
    assert len(S2100K(root, patch_size=32, checksum=False)) == 8
    assert len(extractions) == 2
    assert listings.count == 2


# ----------------------------------------------- a file no archive holds


def test_file_not_in_the_archive_extracted_once(
    tmp_path: Path, extractions: list[Path], no_download: None
) -> None:
    root = new_root(tmp_path)
    make_tar(root / 'satclip.tar', FNS[:7])  # index.csv lists patch_7 too
    for _ in range(3):
        with pytest.raises(FileNotFoundError, match=MISSING + r'patch_7\.tif$'):
            S2100K(root, patch_size=32, checksum=False)
        assert extractions == [root / 'satclip.tar']
    # not even with download: the archive did not hold it
    (root / 'satclip.tar').rename(tmp_path / 'satclip.tar')
    with pytest.raises(FileNotFoundError, match=MISSING + r'patch_7\.tif$'):
        S2100K(root, patch_size=32, checksum=False, download=True)
    assert len(extractions) == 1

    # a file the archive gave, deleted: the archive is extracted again
    (tmp_path / 'satclip.tar').rename(root / 'satclip.tar')
    (root / 'images' / 'patch_3.tif').unlink()
    with pytest.raises(FileNotFoundError, match=MISSING + r'patch_7\.tif$'):
        S2100K(root, patch_size=32, checksum=False)
    assert extractions == [root / 'satclip.tar'] * 2
    assert (root / 'images' / 'patch_3.tif').is_file()
    with pytest.raises(FileNotFoundError, match=MISSING + r'patch_7\.tif$'):
        S2100K(root, patch_size=32, checksum=False)
    assert len(extractions) == 2

    # the file supplied by hand: complete
    shutil.copy(DATA / 'images' / 'patch_7.tif', root / 'images')
    assert len(S2100K(root, patch_size=32, checksum=False)) == 8
    assert len(extractions) == 2


def test_marker_of_an_earlier_version(tmp_path: Path, extractions: list[Path]) -> None:
    """An empty marker does not say what the archive gave: one more extraction."""
    root = new_root(tmp_path)
    make_tar(root / 'satclip.tar', FNS[:7])
    shutil.copytree(DATA / 'images', root / 'images')
    (root / 'images' / 'patch_7.tif').unlink()
    marker = root / '.satclip.tar.extracted'
    for content in (b'', b'not json', b'{"files": ["patch_7.tif"]}', b'[1, 2]'):
        marker.write_bytes(content)
        before = len(extractions)
        for _ in range(2):
            with pytest.raises(FileNotFoundError, match=MISSING + r'patch_7\.tif$'):
                S2100K(root, patch_size=32, checksum=False)
        assert len(extractions) == before + 1, content
    # complete: an empty marker is enough, as before
    marker.write_bytes(b'')
    shutil.copy(DATA / 'images' / 'patch_7.tif', root / 'images')
    before = len(extractions)
    assert len(S2100K(root, patch_size=32, checksum=False)) == 8
    assert len(extractions) == before
    assert marker.read_bytes() == b''


def test_only_the_shard_that_gave_a_lost_file_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extractions: list[Path]
) -> None:
    root = new_root(tmp_path)
    shard_a = make_tar(root / 'a.tar', FNS[:4])
    shard_b = make_tar(root / 'b.tar', FNS[4:])
    monkeypatch.setattr(
        S2100K,
        'archive_remotes',
        [(str(shard_a), sha256(shard_a)), (str(shard_b), sha256(shard_b))],
    )
    assert len(S2100K(root, patch_size=32)) == 8
    assert extractions == [shard_a, shard_b]
    (root / 'images' / 'patch_5.tif').unlink()
    assert len(S2100K(root, patch_size=32)) == 8
    assert extractions == [shard_a, shard_b, shard_b]


# ------------------------------------------------- images extracted elsewhere


def test_complete_images_are_not_downloaded_again(
    tmp_path: Path, extractions: list[Path], no_download: None
) -> None:
    """Every image of index.csv in images/, no marker: nothing to download.

    So it is for images extracted by hand, or by TorchGeo's own ``S2100k``
    (which writes no marker): ``download=True`` must not fetch the archive
    (tens of GB) again to extract images that are all there.
    """
    root = new_root(tmp_path)
    shutil.copytree(DATA / 'images', root / 'images')
    ds = S2100K(root, patch_size=32, download=True)
    assert len(ds) == 8
    assert extractions == []
    assert torch.equal(ds[2]['image'], S2100K(DATA, patch_size=32)[2]['image'])
    # one image lost: without an archive to extract it from, a download it is
    (root / 'images' / 'patch_2.tif').unlink()
    with pytest.raises(AssertionError, match=r'satclip\.tar downloaded'):
        S2100K(root, patch_size=32, download=True)
