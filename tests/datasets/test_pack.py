import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

import torchgeo_satclip._io
import torchgeo_satclip.datasets.pack
from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import (
    S2100K,
    GeoTIFFError,
    pack_s2_100k,
    verify_packed,
)
from torchgeo_satclip.datasets.s2_100k_files import (
    SAMPLE_BLOCK_BYTES,
    SAMPLE_BLOCKS,
    read_geotiff,
    sha256_file,
)

from ..processes import dead_pid

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / 's2_100k'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    shutil.copytree(DATA / 'images', root / 'images')
    return root


def assert_identical(root: Path) -> None:
    geotiff = S2100K(root, patch_size=32, layout='geotiff')
    packed = S2100K(root, patch_size=32, layout='packed')
    assert len(geotiff) == len(packed)
    for i in range(len(geotiff)):
        assert torch.equal(geotiff[i]['image'], packed[i]['image'])
        assert torch.equal(geotiff[i]['point'], packed[i]['point'])


class TestPack:
    def test_round_trip(self, root: Path) -> None:
        result = pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
        assert result.num_samples == 8
        assert result.num_shards == 3
        assert result.num_resumed_shards == 0
        assert result.num_bytes > 8 * 12 * 32 * 32 * 2
        shard = np.load(root / 'packed' / 'shard_00002.npy')
        assert shard.dtype == np.uint16
        assert shard.shape == (2, 12, 32, 32)
        assert np.array_equal(shard[1], read_geotiff(root / 'images' / 'patch_7.tif'))
        assert_identical(root)
        manifest = json.loads((root / 'packed' / 'manifest.json').read_text())
        assert manifest['num_samples'] == 8
        assert not list((root / 'packed').glob('.*tmp'))

    def test_resume(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[Path] = []
        original = torchgeo_satclip.datasets.pack._decode

        def failing(path: Path, size: tuple[int, int]) -> object:
            calls.append(path)
            if path.name == 'patch_4.tif':
                raise KeyboardInterrupt  # the user pressed Ctrl-C mid-shard
            return original(path, size)

        monkeypatch.setattr(torchgeo_satclip.datasets.pack, '_decode', failing)
        with pytest.raises(KeyboardInterrupt):
            pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
        packed = root / 'packed'
        assert (packed / 'shard_00000.npy').is_file()
        assert not (packed / 'shard_00001.npy').exists()
        assert not (packed / 'manifest.json').exists()
        assert not list(packed.glob('.*tmp'))  # the partial shard was removed
        # incomplete packing is ignored
        assert S2100K(root, patch_size=32).layout == 'geotiff'

        calls.clear()

        def counted(p: Any, size: Any) -> Any:
            calls.append(p)
            return original(p, size)

        monkeypatch.setattr(torchgeo_satclip.datasets.pack, '_decode', counted)
        result = pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
        assert result.num_resumed_shards == 1
        assert [p.name for p in calls] == [f'patch_{i}.tif' for i in range(3, 8)]
        assert_identical(root)

    def test_index_changed_repacks_shard(self, root: Path) -> None:
        pack_s2_100k(root, patch_size=32, shard_size=4, progress=False)
        lines = (root / 'index.csv').read_text().splitlines()
        lines[1], lines[5] = lines[5], lines[1]  # patch_0 moves to the second shard
        (root / 'index.csv').write_text('\n'.join(lines) + '\n')
        result = pack_s2_100k(root, patch_size=32, shard_size=4, progress=False)
        assert result.num_resumed_shards == 0
        assert_identical(root)

    def test_complete_pack_is_reused(self, root: Path) -> None:
        pack_s2_100k(root, patch_size=32, shard_size=4, progress=False)
        assert (
            pack_s2_100k(
                root, patch_size=32, shard_size=4, progress=False
            ).num_resumed_shards
            == 2
        )
        assert (
            pack_s2_100k(
                root, patch_size=32, shard_size=4, overwrite=True, progress=False
            ).num_resumed_shards
            == 0
        )

    def test_missing_file(self, root: Path) -> None:
        (root / 'images' / 'patch_5.tif').unlink()
        with pytest.raises(FileNotFoundError, match=r'patch_5\.tif'):
            pack_s2_100k(root, patch_size=32, progress=False)

    def test_corrupt_file(self, root: Path) -> None:
        (root / 'images' / 'patch_6.tif').write_bytes(b'II*\x00garbage')
        with pytest.raises(GeoTIFFError, match=r'patch_6\.tif: cannot read'):
            pack_s2_100k(root, patch_size=32, progress=False)
        assert not (root / 'packed' / 'manifest.json').exists()

    @pytest.mark.parametrize('patch', ['patch_0.tif', 'patch_6.tif'])
    def test_cli_corrupt_file(
        self, root: Path, patch: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A damaged GeoTIFF, first or not: its name, exit 1, no 'RuntimeError:'."""
        path = root / 'images' / patch
        path.write_bytes(path.read_bytes()[:300])
        assert main(['pack', str(root), '--patch-size', '32', '--quiet']) == 1
        err = capsys.readouterr().err
        assert err.startswith(f'torchgeo-satclip pack: error: {path}: cannot read')
        assert 'Error:' not in err
        assert '--debug' not in err
        assert not (root / 'packed' / 'manifest.json').exists()

    def test_invalid_arguments(self, root: Path, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match='shard_size'):
            pack_s2_100k(root, patch_size=32, shard_size=0)
        with pytest.raises(ValueError, match='num_workers'):
            pack_s2_100k(root, patch_size=32, num_workers=-1)
        with pytest.raises(FileNotFoundError, match=r'index\.csv'):
            pack_s2_100k(tmp_path / 'nothing')

    def test_nodata_recorded(self, root: Path) -> None:
        pack_s2_100k(root, patch_size=32, progress=False)
        lines = (root / 'nodata.csv').read_text().splitlines()
        assert lines.count('patch_3.tif,1.0') == 1
        ds = S2100K(root, patch_size=32, exclude_nodata=True)
        assert ds.excluded == ['patch_3.tif']

    @pytest.mark.parametrize('shorter_index', [False, True])
    def test_repack_removes_orphan_shards(
        self, root: Path, shorter_index: bool
    ) -> None:
        pack_s2_100k(root, patch_size=32, shard_size=2, progress=False)
        packed = root / 'packed'
        assert (packed / 'shard_00003.npy').is_file()
        # files of other names are never touched, even if they look alike
        others = [
            'shard_00003.npy.bak',
            'shard_0009.npy',
            'shard_000003.npy',
            'shard_00009.npz',
            'my_shard_00009.npy',
            'notes.json',
        ]
        for name in others:
            (packed / name).write_bytes(b'not a shard of this layout')
        (packed / 'shard_00008.npy').mkdir()  # a folder, not a shard file
        if shorter_index:  # 3 patches in shards of 2: shards 2 and 3 go
            lines = (root / 'index.csv').read_text().splitlines()
            (root / 'index.csv').write_text('\n'.join(lines[:4]) + '\n')
            result = pack_s2_100k(root, patch_size=32, shard_size=2, progress=False)
            kept = 2
        else:  # one shard of 8: shards 1 to 3 go
            result = pack_s2_100k(root, patch_size=32, shard_size=8, progress=False)
            kept = 1
        assert result.num_shards == kept
        shards = {
            f'shard_{k:05d}.{ext}' for k in range(kept) for ext in ('npy', 'json')
        }
        assert {p.name for p in packed.iterdir()} == {
            'manifest.json',
            'files.csv',
            'shard_00008.npy',
            *shards,
            *others,
        }
        for name in others:
            assert (packed / name).read_bytes() == b'not a shard of this layout'
        manifest = json.loads((packed / 'manifest.json').read_text())
        assert [s['name'] for s in manifest['shards']] == [
            f'shard_{k:05d}.npy' for k in range(kept)
        ]
        assert verify_packed(root, patch_size=32, progress=False).num_shards == kept
        assert_identical(root)

    def test_workers(self, root: Path) -> None:
        pack_s2_100k(root, patch_size=32, shard_size=5, num_workers=1, progress=False)
        assert_identical(root)

    def test_cli(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert (
            main(
                [
                    'pack',
                    str(root),
                    '--patch-size',
                    '32',
                    '--shard-size',
                    '4',
                    '--quiet',
                ]
            )
            == 0
        )
        assert 'packed 8 patches into 2 shards' in capsys.readouterr().out
        assert_identical(root)

    def test_cli_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(['pack', str(tmp_path), '--quiet']) == 2
        assert 'index.csv' in capsys.readouterr().err


def test_stale_temporaries_of_killed_runs_are_removed(root: Path) -> None:
    import os

    packed = root / 'packed'
    packed.mkdir()
    dead = dead_pid()
    stale = [
        packed / f'.shard_00000.npy.{dead}.ab12cd.tmp.npy',  # another shard size
        packed / f'.shard_00007.npy.{dead}.x9y8z7.tmp.npy',
        packed / f'.files.csv.{dead}.qq11ww.tmp',
        root / f'.nodata.csv.{dead}.ee22rr.tmp',
    ]
    live = packed / f'.shard_00001.npy.{os.getpid()}.zz99yy.tmp.npy'
    for path in [*stale, live]:
        path.write_bytes(b'half a shard')
    pack_s2_100k(root, shard_size=3, progress=False, patch_size=32)
    assert not any(path.exists() for path in stale)
    assert live.exists()  # a live run's temporary is never touched
    assert_identical(root)


def test_kill_and_rerun_leaves_nothing_behind(root: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    # pack in a child that stops for good while writing its first shard
    script = (
        'import sys, time, numpy as np\n'
        'from torchgeo_satclip.datasets import pack_s2_100k\n'
        'real = np.lib.format.open_memmap\n'
        'def stuck(*args, **kwargs):\n'
        '    array = real(*args, **kwargs)\n'
        '    print("writing", flush=True)\n'
        '    time.sleep(600)\n'
        'np.lib.format.open_memmap = stuck\n'
        f'pack_s2_100k({str(root)!r}, shard_size=3, progress=False, patch_size=32)\n'
    )
    child = subprocess.Popen(
        [sys.executable, '-c', script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == 'writing'
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = [p for p in (root / 'packed').iterdir() if '.tmp' in p.name]
    assert leftovers  # the killed run left its shard under a temporary name
    time.sleep(0.1)
    pack_s2_100k(root, shard_size=3, progress=False, patch_size=32)
    assert not [p for p in (root / 'packed').iterdir() if '.tmp' in p.name]
    assert_identical(root)


def test_workers_are_capped_by_cpus_and_patches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers 100000 on 8 patches starts a handful of processes, not 100,000."""
    import multiprocessing

    root = tmp_path / 's2_100k'
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    asked: list[int] = []
    real = multiprocessing.get_context

    class _Context:
        def __init__(self, method: str) -> None:
            self.context = real(method)

        def Pool(self, processes: int) -> Any:
            asked.append(processes)
            return self.context.Pool(processes)

    monkeypatch.setattr(
        'torchgeo_satclip.datasets.pack.multiprocessing.get_context', _Context
    )
    monkeypatch.setattr('torchgeo_satclip.datasets.pack.os.cpu_count', lambda: 2)
    pack_s2_100k(root, patch_size=32, shard_size=3, num_workers=100_000, progress=False)
    assert asked == [2]
    assert S2100K(root, patch_size=32).layout == 'packed'


def _unsampled_pixel(npy: Path, num_patches: int) -> tuple[int, int, int, int]:
    """A pixel ``(row, band, y, x)`` of a 32 x 32 shard that no sampled block reads."""
    size = npy.stat().st_size
    header = size - num_patches * 12 * 32 * 32 * 2
    span = size - SAMPLE_BLOCK_BYTES
    starts = [b * span // (SAMPLE_BLOCKS - 1) for b in range(SAMPLE_BLOCKS)]
    offset = next(
        o
        for o in range(header, size, 2)
        if not any(s - 2 < o < s + SAMPLE_BLOCK_BYTES for s in starts)
    )
    row, rest = divmod((offset - header) // 2, 12 * 32 * 32)
    band, rest = divmod(rest, 32 * 32)
    return (row, band, *divmod(rest, 32))


def test_a_record_never_describes_another_shard(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while a redone shard takes its name: the next run redoes it.

    The shard's ``.json`` record took its final name before the shard did, so
    a run killed in between left the new record beside the old shard; when
    the change lay between the sampled blocks, the next run kept that stale
    shard (its record said it held the new content) and the dataset read the
    old pixels.
    """
    pack_s2_100k(root, patch_size=32, shard_size=8, progress=False)
    packed = root / 'packed'
    npy = packed / 'shard_00000.npy'
    row, band, y, x = _unsampled_pixel(npy, 8)
    source = root / 'images' / f'patch_{row}.tif'
    with rasterio.open(source) as src:
        profile, data = src.profile, src.read()
    data[band, y, x] ^= 1
    with rasterio.open(source, 'w', **profile) as dst:
        dst.write(data)

    flush = torchgeo_satclip._io._flush

    def killed(path: Path, *, directory: bool = False) -> None:
        if path.name.startswith('.shard_00000.npy.'):
            raise KeyboardInterrupt  # killed just before the rename
        flush(path, directory=directory)

    monkeypatch.setattr(torchgeo_satclip._io, '_flush', killed)
    with pytest.raises(KeyboardInterrupt):
        pack_s2_100k(root, patch_size=32, shard_size=8, progress=False)
    monkeypatch.setattr(torchgeo_satclip._io, '_flush', flush)
    record = packed / 'shard_00000.json'
    if record.exists():  # a record describes the shard beside it
        assert json.loads(record.read_text())['sha256'] == sha256_file(npy)

    assert pack_s2_100k(root, patch_size=32, shard_size=8, progress=False)
    verify_packed(root, patch_size=32, progress=False)
    assert_identical(root)


def test_overwrite_a_packed_folder_kept_elsewhere(root: Path, tmp_path: Path) -> None:
    """``root/packed`` a link to another file system: overwrite repacks there.

    ``shutil.rmtree`` refused the link ("Cannot call rmtree on a symbolic
    link", naming no file), so ``overwrite`` could not repack a layout kept on
    another disk. The link stays, and of the folder it points to only what
    packing writes is deleted.
    """
    elsewhere = tmp_path / 'fast' / 'packed'
    elsewhere.mkdir(parents=True)
    (elsewhere / 'notes.txt').write_text('not the layout')
    (root / 'packed').symlink_to(elsewhere, target_is_directory=True)
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    result = pack_s2_100k(
        root, patch_size=32, shard_size=3, overwrite=True, progress=False
    )
    assert result.num_resumed_shards == 0
    assert (root / 'packed').is_symlink()
    assert sorted(p.name for p in elsewhere.iterdir()) == [
        'files.csv',
        'manifest.json',
        'notes.txt',
        *(f'shard_0000{k}.{ext}' for k in range(3) for ext in ('json', 'npy')),
    ]
    assert_identical(root)


def test_numpy_integer_arguments(root: Path) -> None:
    """A NumPy integer is an integer ("shard_size must be an integer, not 3")."""
    result = pack_s2_100k(
        root,
        patch_size=32,
        shard_size=np.int64(3),  # type: ignore[arg-type]
        num_workers=np.int64(0),  # type: ignore[arg-type]
        progress=False,
    )
    assert result.num_shards == 3
    manifest = json.loads((root / 'packed' / 'manifest.json').read_text())
    assert manifest['shard_size'] == 3
    assert_identical(root)


@pytest.mark.parametrize('gone', ['deleted', 'a folder'])
def test_verify_without_index_refuses(
    root: Path, gone: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No index.csv: verify cannot check that every listed file is packed."""
    pack_s2_100k(root, patch_size=32, progress=False)
    index = root / 'index.csv'
    index.unlink()
    if gone == 'a folder':
        index.mkdir()
    with pytest.raises(FileNotFoundError, match=r'index\.csv') as info:
        verify_packed(root, patch_size=32, progress=False)
    assert str(index) in str(info.value)
    assert 'every file it lists is packed' in str(info.value)
    argv = ['pack', str(root), '--patch-size', '32', '--verify', '--quiet']
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert 'verified' not in captured.out
    found = 'is a directory, not a file' if gone == 'a folder' else 'not found'
    assert f'{index} {found}: verify checks' in captured.err


@pytest.mark.parametrize(
    'extra',
    [
        ['--shard-size', '4'],
        ['--shard-size', '1024'],  # the default, given: still refused
        ['--workers', '2'],
        ['--workers', '0'],
        ['--overwrite'],
        ['--shard-size', '4', '--workers', '2', '--overwrite'],
    ],
)
def test_cli_verify_refuses_options_of_packing(
    root: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--verify writes nothing: an option only packing uses is a mistake."""
    pack_s2_100k(root, patch_size=32, progress=False)
    argv = ['pack', str(root), '--patch-size', '32', '--verify', '--quiet', *extra]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    given = ' and '.join(a for a in extra if a.startswith('--'))
    assert f'cannot be combined with {given}' in captured.err
    assert len(captured.err.splitlines()) == 1


def test_cli_pack_defaults(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --shard-size and --workers, the library's defaults apply."""
    assert main(['pack', str(root), '--patch-size', '32', '--quiet']) == 0
    assert 'packed 8 patches into 1 shards' in capsys.readouterr().out


def test_live_temporary_of_a_name_with_digits_is_kept(root: Path) -> None:
    """A final name holding ``.<digits>.<random>.tmp`` is read whole.

    The packer's own copy of the temporary-name format read the shortest
    final name: ``.notes.<dead>.ab12cd.tmp.<live pid>.zz99yy.tmp``, this
    process's temporary of ``notes.<dead>.ab12cd.tmp``, was taken for a
    killed run's temporary of ``notes`` and deleted under the live run.
    """
    import os

    dead = dead_pid()
    live = root / f'.notes.{dead}.ab12cd.tmp.{os.getpid()}.zz99yy.tmp'
    stale = root / f'.notes.{dead}.ab12cd.tmp.{dead}.qq11ww.tmp'
    long_name = 'n' * 250 + '.csv'  # its temporaries hold its first 200 bytes
    long_stale = root / f'.{"n" * 200}.{dead}.ee22rr.tmp'
    for path in (live, stale, long_stale):
        path.write_bytes(b'half a file')
    pack_s2_100k(root, shard_size=3, progress=False, patch_size=32)
    assert live.exists()
    assert not stale.exists()
    assert not long_stale.exists()
    assert not (root / long_name).exists()
