"""TorchGeo's weights idioms: get_state_dict, the builder, hashes, offline."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from torchgeo_satclip._io import temporary_pattern
from torchgeo_satclip.models import (
    ChecksumError,
    DownloadError,
    GeoCLIPWeights,
    SatCLIPWeights,
    build_location_encoder,
    download_checkpoint,
    expected_sha256,
    satclip_location_encoder,
    save_official_checkpoint,
    weights_table,
)

MEMBER = SatCLIPWeights.SATCLIP_RESNET18_L10
POINTS = torch.tensor([[2.35, 48.86], [-74.0, 40.71]], dtype=torch.float64)


@pytest.fixture
def released(tmp_path: Path) -> Path:
    """A file laid out as the released ResNet18-L10 checkpoint (random weights)."""
    torch.manual_seed(0)
    encoder = build_location_encoder(**MEMBER.architecture())
    return save_official_checkpoint(encoder, tmp_path / 'released.ckpt')


def copier(source: Path, calls: list[str]) -> Callable[..., None]:
    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append(url)
        shutil.copy(source, dst)

    return fake_download


def test_get_state_dict_loads_into_the_builder(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.hub, 'download_url_to_file', copier(released, calls))
    state = MEMBER.get_state_dict(progress=False, model_dir=tmp_path / 'cache')
    model = satclip_location_encoder(**MEMBER.architecture())
    model.load_state_dict(state)  # strict
    model.eval()
    expected = satclip_location_encoder(weights=released)
    torch.testing.assert_close(model(POINTS), expected(POINTS))
    assert calls == [MEMBER.url]


def test_builder_takes_a_member(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, 'download_url_to_file', copier(released, []))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    model = satclip_location_encoder(weights=MEMBER)
    assert model.posenc.legendre_polys == 10
    assert model.embed_dim == 256


def test_every_member_has_a_sha256_slot() -> None:
    for member in SatCLIPWeights.__members__.values():
        assert 'sha256' in member.meta
        assert expected_sha256(member) is None  # unknown: not verified


class _Hashed:
    """A stand-in weights member with a known hash (meta or file name)."""

    def __init__(self, url: str, sha256: str | None) -> None:
        self.url = url
        self.meta: dict[str, Any] = {'sha256': sha256}


def test_known_hash_is_verified(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, 'download_url_to_file', copier(released, []))
    digest = hashlib.sha256(released.read_bytes()).hexdigest()
    good = _Hashed('https://example.org/good.ckpt', digest)
    path = download_checkpoint(good, root=tmp_path / 'a')  # type: ignore[arg-type]
    assert path.read_bytes() == released.read_bytes()
    # TorchGeo / torch.hub convention: a hash prefix in the file name
    named = _Hashed(f'https://example.org/satclip-{digest[:8]}.ckpt', None)
    assert expected_sha256(named) == digest[:8]  # type: ignore[arg-type]
    assert download_checkpoint(named, root=tmp_path / 'b').is_file()  # type: ignore[arg-type]


def test_hash_mismatch_is_a_clear_error_and_deletes_the_file(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, 'download_url_to_file', copier(released, []))
    bad = _Hashed('https://example.org/bad.ckpt', '0' * 64)
    root = tmp_path / 'c'
    with pytest.raises(ChecksumError, match=r'sha256 .* expected 0000'):
        download_checkpoint(bad, root=root)  # type: ignore[arg-type]
    assert list(root.iterdir()) == []  # neither the final nor the partial file


def test_offline_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(url: str, dst: str, progress: bool = True) -> None:
        Path(dst).write_bytes(b'half')
        raise urllib.error.URLError('Name or service not known')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    root = tmp_path / 'hub' / 'checkpoints'
    with pytest.raises(DownloadError) as info:
        satclip_location_encoder(weights='SATCLIP_RESNET18_L10')
    message = str(info.value)
    assert '\n' not in message
    assert 'no network' in message
    assert str(root / 'satclip-resnet18-l10.ckpt') in message
    assert list(root.iterdir()) == []


def test_interrupted_download_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C in the middle of a 100 MB download used to leave the partial
    # file behind, under a name no cleanup ever recognised.
    def interrupted(url: str, dst: str, progress: bool = True) -> None:
        Path(dst).write_bytes(b'half')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.hub, 'download_url_to_file', interrupted)
    root = tmp_path / 'd'
    with pytest.raises(KeyboardInterrupt):
        download_checkpoint(MEMBER, root=root)
    assert list(root.iterdir()) == []


def test_download_removes_what_a_killed_download_left(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        seen.append(dst)
        shutil.copy(released, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    root = tmp_path / 'e'
    final = root / Path(MEMBER.url).name
    root.mkdir()
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()  # a process that has exited: its temporaries are stale
    stale = root / f'.{final.name}.{child.pid}.abcd1234.tmp'
    stale.write_bytes(b'cut')
    assert download_checkpoint(MEMBER, root=root) == final
    assert final.read_bytes() == released.read_bytes()
    # written under the package's temporary name, then renamed
    assert temporary_pattern(final).fullmatch(Path(seen[0]).name)
    assert sorted(root.iterdir()) == [final]


def test_weights_table_in_the_docs_matches_the_enum() -> None:
    docs = Path(__file__).parents[2] / 'docs' / 'weights.rst'
    table = weights_table()
    assert table in docs.read_text(), (
        'docs/weights.rst is out of date: paste torchgeo_satclip.models.weights_table()'
    )
    for member in SatCLIPWeights.__members__.values():
        assert member.url in table


def test_geoclip_member_is_not_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GeoCLIP's url is its PyPI page: download_checkpoint fetched that HTML
    # page into the cache as '1.3.0' and returned it as a checkpoint (offline:
    # 'put the file at <cache>/1.3.0').
    calls: list[str] = []

    def fake_download(url: str, dst: str, progress: bool = True) -> None:
        calls.append(url)
        Path(dst).write_bytes(b'<!DOCTYPE html>')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    root = tmp_path / 'f'
    with pytest.raises(
        ValueError, match=r'GEOCLIP has no checkpoint to download.*\[geoclip\]'
    ):
        download_checkpoint(GeoCLIPWeights.GEOCLIP, root=root)
    assert calls == []
    assert not root.exists() or list(root.iterdir()) == []


def test_download_removes_the_partial_file_of_a_killed_download(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch.hub.download_url_to_file streams into its own sibling of the name
    # it is given, '<name>.<uuid hex>.partial', and renames it at the end: a
    # download killed outright (SIGKILL, a power cut) left that file, with
    # every byte fetched so far (up to 130 MB), under a name no later
    # download removed; only the empty temporary file was cleaned up.
    monkeypatch.setattr(torch.hub, 'download_url_to_file', copier(released, []))
    root = tmp_path / 'g'
    final = root / Path(MEMBER.url).name
    root.mkdir()
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()  # a process that has exited: its temporaries are stale
    killed = f'.{final.name}.{child.pid}.abcd1234.tmp'
    partial = root / f'{killed}.{uuid.uuid4().hex}.partial'
    partial.write_bytes(b'cut' * 1000)
    (root / killed).write_bytes(b'')
    # another live process's download, and a file that only looks alike
    live = root / f'.{final.name}.{os.getpid()}.ef56.tmp.{uuid.uuid4().hex}.partial'
    live.write_bytes(b'in progress')
    other = root / f'{killed}.notahexname.partial'
    other.write_bytes(b'mine')
    assert download_checkpoint(MEMBER, root=root) == final
    assert final.read_bytes() == released.read_bytes()
    assert sorted(root.iterdir()) == sorted([final, live, other])


def _no_download(url: str, dst: str, progress: bool = True) -> None:
    raise AssertionError(f'downloaded {url} to {dst}')


def test_root_that_is_a_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FileExistsError: [Errno 17] File exists: '<root>', from mkdir: neither
    # root nor what was expected was named.
    monkeypatch.setattr(torch.hub, 'download_url_to_file', _no_download)
    root = tmp_path / 'cache'
    root.write_text('not a folder')
    message = rf"^root '{re.escape(str(root))}' is a file, expected the folder"
    with pytest.raises(ValueError, match=message):
        download_checkpoint(MEMBER, root=root)
    with pytest.raises(ValueError, match=message):
        satclip_location_encoder(weights='SATCLIP_RESNET18_L10', root=root)
    blocked = root / 'below'
    with pytest.raises(
        ValueError,
        match=rf"^root '{re.escape(str(blocked))}' cannot be created as a folder",
    ):
        download_checkpoint(MEMBER, root=blocked)
    assert root.read_text() == 'not a folder'
    with pytest.raises(ValueError, match=r'^root is 3 \(type int\), expected the'):
        download_checkpoint(MEMBER, root=3)  # type: ignore[arg-type]


@pytest.mark.parametrize('root', ['', '  '])
def test_empty_root_is_refused(
    root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Path('') is the current folder: the checkpoint (up to 130 MB) was
    # downloaded into wherever the command ran, not into the cache.
    monkeypatch.setattr(torch.hub, 'download_url_to_file', _no_download)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=rf"^root is '{root}', an empty path"):
        download_checkpoint(MEMBER, root=root)
    assert list(tmp_path.iterdir()) == []
