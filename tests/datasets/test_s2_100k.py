import hashlib
import math
import os
import re
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import rasterio.transform
import torch
from torch.utils.data import DataLoader, Subset
from torchgeo.datasets import DatasetNotFoundError, RGBBandsMissingError

import torchgeo_satclip.datasets._archive
import torchgeo_satclip.datasets.s2_100k
from torchgeo_satclip._errors import DataError
from torchgeo_satclip.datamodules import collate_sample_batch
from torchgeo_satclip.datasets import S2100K, SampleBatch, pack_s2_100k
from torchgeo_satclip.datasets.s2_100k_files import (
    nodata_fraction,
    read_nodata_file,
    write_nodata_file,
)

matplotlib.use('agg')

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'
REAL = DATA / 'real'


def samples(dataset: S2100K) -> Iterable[dict[str, torch.Tensor]]:
    """The dataset itself, typed as the iterable it is (by ``__getitem__``)."""
    return cast(Iterable[dict[str, torch.Tensor]], dataset)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def two_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_checksum: str | None = None
) -> tuple[Path, Path]:
    """A two-shard revision of the fake archive (``a.tar``, ``b.tar``).

    ``a.tar`` holds patches 0 to 3, ``b.tar`` patches 4 to 7.

    Args:
        tmp_path: where the two "remote" archives are put.
        monkeypatch: sets ``S2100K.archive_remotes`` to them.
        second_checksum: the SHA-256 recorded for ``b.tar`` (default: its own).

    Returns:
        The two archives.
    """
    shard_a, shard_b = tmp_path / 'a.tar', tmp_path / 'b.tar'
    for shard, numbers in ((shard_a, range(4)), (shard_b, range(4, 8))):
        with tarfile.open(shard, 'w') as tar:
            for i in numbers:
                name = f'patch_{i}.tif'
                tar.add(DATA / 'images' / name, arcname=name)
    monkeypatch.setattr(
        S2100K,
        'archive_remotes',
        [
            (str(shard_a), sha256(shard_a)),
            (str(shard_b), second_checksum or sha256(shard_b)),
        ],
    )
    return shard_a, shard_b


def copy_download(
    url: str, root: str | os.PathLike[str], *args: object, **kwargs: object
) -> None:
    """Stand-in for torchgeo's download_url: copy a local file (no network)."""
    filename = (
        kwargs.get('filename') or (args[0] if args else None) or os.path.basename(url)
    )
    shutil.copyfile(url, os.path.join(root, str(filename)))


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / 's2_100k'
    root.mkdir()
    shutil.copy(DATA / 'index.csv', root)
    shutil.copytree(DATA / 'images', root / 'images')
    return root


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        torchgeo_satclip.datasets.s2_100k, 'download_url', copy_download
    )
    monkeypatch.setattr(
        S2100K, 'index_remote', (str(DATA / 'index.csv'), sha256(DATA / 'index.csv'))
    )
    monkeypatch.setattr(
        S2100K,
        'archive_remotes',
        [(str(DATA / 'satclip.tar'), sha256(DATA / 'satclip.tar'))],
    )


class TestS2100K:
    def test_getitem(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32)
        sample = ds[0]
        assert set(sample) == {'image', 'point'}
        assert sample['image'].dtype == torch.float32
        assert sample['image'].shape == (12, 32, 32)
        assert sample['point'].dtype == torch.float64
        assert sample['point'].shape == (2,)
        with rasterio.open(fake_root / 'images' / 'patch_0.tif') as f:
            assert torch.equal(
                sample['image'], torch.from_numpy(f.read().astype(np.float32))
            )

    def test_len(self, fake_root: Path) -> None:
        assert len(S2100K(fake_root, patch_size=32)) == 8

    def test_point_order(self, fake_root: Path) -> None:
        first = (fake_root / 'index.csv').read_text().splitlines()[1].split(',')
        point = S2100K(fake_root, patch_size=32, mode='points')[0]['point']
        assert point.tolist() == pytest.approx(
            [float(first[1]), float(first[2])], abs=1e-4
        )

    @pytest.mark.parametrize(
        ('lon', 'lat', 'match'),
        [
            ('275', '10', r'line 3: longitude 275.0 in column .lon. is outside'),
            ('10', '90.0001', r'line 3: latitude 90.0001 in column .lat. is outside'),
            ('nan', '10', r'line 3: non-finite coordinate'),
            ('10', '177.8', r'line 3: latitude 177.8 .*look swapped'),
        ],
    )
    def test_invalid_points(
        self, fake_root: Path, lon: str, lat: str, match: str
    ) -> None:
        index = fake_root / 'index.csv'
        lines = index.read_text().splitlines()
        lines[2] = ','.join([lines[2].split(',')[0], lon, lat])
        index.write_text('\n'.join(lines) + '\n')
        with pytest.raises(ValueError, match=match) as info:
            S2100K(fake_root, patch_size=32)
        assert str(index) in str(info.value)

    def test_bands(self, fake_root: Path) -> None:
        full = S2100K(fake_root, patch_size=32)[2]['image']
        ds = S2100K(fake_root, patch_size=32, bands=['B04', 'B8A', 'B12'])
        assert torch.equal(ds[2]['image'], full[[3, 8, 11]])

    def test_invalid_bands(self, fake_root: Path) -> None:
        with pytest.raises(ValueError, match='invalid bands'):
            S2100K(fake_root, patch_size=32, bands=['B10'])

    @pytest.mark.parametrize(
        'name', ['exclude_nodata', 'download', 'checksum', 'verify']
    )
    @pytest.mark.parametrize('value', ['false', 0, None])
    def test_invalid_flags(self, fake_root: Path, name: str, value: Any) -> None:
        """A string is truthy: exclude_nodata='false' dropped patches."""
        with pytest.raises(
            ValueError, match=re.escape(f'{name} must be True or False, got {value!r}')
        ):
            S2100K(fake_root, patch_size=32, **{name: value})

    def test_invalid_mode(self, fake_root: Path) -> None:
        with pytest.raises(ValueError, match='mode'):
            S2100K(fake_root, patch_size=32, mode='images')  # type: ignore[arg-type]

    def test_points_mode(self, fake_root: Path) -> None:
        shutil.rmtree(fake_root / 'images')  # no image IO, no image needed
        ds = S2100K(fake_root, patch_size=32, mode='points')
        assert set(ds[1]) == {'point'}
        assert len(ds) == 8

    def test_transforms(self, fake_root: Path) -> None:
        ds = S2100K(
            fake_root,
            patch_size=32,
            transforms=lambda s: {**s, 'image': s['image'] / 2},
        )
        assert ds[0]['image'].max() < 5000

    def test_download(self, tmp_path: Path, remote: None) -> None:
        root = tmp_path / 'new'
        ds = S2100K(root, patch_size=32, download=True)
        assert len(ds) == 8
        assert torch.equal(ds[5]['image'], S2100K(DATA, patch_size=32)[5]['image'])
        assert not list(root.glob('*.part'))
        # a second instance finds everything and downloads nothing
        S2100K(root, patch_size=32, download=False)

    def test_download_resumes_per_shard(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        # a two-shard revision: the second shard failed last time
        shard_a, shard_b = two_shards(tmp_path, monkeypatch, second_checksum='bad')
        root = tmp_path / 'root'
        with pytest.raises(RuntimeError, match='SHA-256 mismatch'):
            S2100K(root, patch_size=32, download=True)
        assert (root / '.a.tar.extracted').exists()
        assert not (root / 'b.tar').exists()
        fetched: list[str] = []

        def counting(url: str, *args: object, **kwargs: object) -> None:
            fetched.append(url)
            copy_download(url, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(torchgeo_satclip.datasets.s2_100k, 'download_url', counting)
        monkeypatch.setattr(
            S2100K,
            'archive_remotes',
            [(str(shard_a), sha256(shard_a)), (str(shard_b), sha256(shard_b))],
        )
        assert len(S2100K(root, patch_size=32, download=True)) == 8
        assert fetched == [str(shard_b)]

    def test_extract(self, tmp_path: Path) -> None:
        root = tmp_path / 'root'
        root.mkdir()
        shutil.copy(DATA / 'index.csv', root)
        shutil.copy(DATA / 'satclip.tar', root)
        assert len(S2100K(root, patch_size=32, checksum=False)) == 8

    def test_extract_checksum(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        root = tmp_path / 'root'
        root.mkdir()
        shutil.copy(DATA / 'index.csv', root)
        (root / 'satclip.tar').write_bytes(b'not the archive')
        with pytest.raises(RuntimeError, match='SHA-256 mismatch') as info:
            S2100K(root, patch_size=32)
        # the message names the file, the expected and the actual digest
        message = str(info.value)
        assert str(root / 'satclip.tar') in message
        assert S2100K.archive_remotes[0][1] in message
        assert sha256(root / 'satclip.tar') in message

    def test_lost_images_extracted_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        """The marker alone does not make an archive extracted: its files must be."""
        root = tmp_path / 'root'
        root.mkdir()
        shutil.copy(DATA / 'index.csv', root)
        shutil.copy(DATA / 'satclip.tar', root)
        expected = [s['image'] for s in samples(S2100K(DATA, patch_size=32))]
        assert len(S2100K(root, patch_size=32)) == 8
        assert (root / '.satclip.tar.extracted').is_file()
        extractions: list[Path] = []
        real = torchgeo_satclip.datasets._archive.extract_safely

        def counting(archive: Path, directory: Path) -> list[str]:
            extractions.append(Path(archive))
            return real(archive, directory)

        monkeypatch.setattr(
            torchgeo_satclip.datasets.s2_100k, 'extract_safely', counting
        )
        S2100K(root, patch_size=32)  # complete: not extracted again
        assert extractions == []

        # some images lost: extracted again from the archive in the root
        (root / 'images' / 'patch_2.tif').unlink()
        (root / 'images' / 'patch_5.tif').unlink()
        ds = S2100K(root, patch_size=32)
        assert extractions == [root / 'satclip.tar']
        for i, image in enumerate(expected):
            assert torch.equal(ds[i]['image'], image)

        # all lost, and the archive too: nothing to extract from ...
        shutil.rmtree(root / 'images')
        (root / 'satclip.tar').unlink()
        with pytest.raises(FileNotFoundError, match=r'8 of 8 files listed in'):
            S2100K(root, patch_size=32)
        # ... but a download brings them back
        ds = S2100K(root, patch_size=32, download=True)
        assert (root / 'satclip.tar').is_file()
        assert len(extractions) == 2
        for i, image in enumerate(expected):
            assert torch.equal(ds[i]['image'], image)

    def test_lost_images_other_shard_deleted(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        """Without download, the shards still in the root are extracted again."""
        two_shards(tmp_path, monkeypatch)
        root = tmp_path / 'root'
        assert len(S2100K(root, patch_size=32, download=True)) == 8
        (root / 'b.tar').unlink()  # deleted after extraction
        (root / 'images' / 'patch_1.tif').unlink()  # given by a.tar
        assert len(S2100K(root, patch_size=32)) == 8
        assert (root / 'images' / 'patch_1.tif').is_file()
        assert not (root / 'b.tar').exists()
        # a file only the deleted shard gave: named, not extracted from a.tar
        (root / 'images' / 'patch_4.tif').unlink()
        with pytest.raises(FileNotFoundError, match=r'1 of 8 .* patch_4\.tif$'):
            S2100K(root, patch_size=32)

    def test_packed_layout_needs_no_extraction(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        """GeoTIFFs deleted after packing: only reading them extracts again."""
        root = tmp_path / 'root'
        root.mkdir()
        shutil.copy(DATA / 'index.csv', root)
        shutil.copy(DATA / 'satclip.tar', root)
        expected = S2100K(root, patch_size=32)[6]['image']
        pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
        shutil.rmtree(root / 'images')
        real = torchgeo_satclip.datasets._archive.extract_safely

        def refused(archive: Path, directory: Path) -> list[str]:
            raise AssertionError(f'{archive} extracted for the packed layout')

        monkeypatch.setattr(
            torchgeo_satclip.datasets.s2_100k, 'extract_safely', refused
        )
        for layout in ('auto', 'packed'):
            ds = S2100K(
                root,
                patch_size=32,
                layout=layout,  # type: ignore[arg-type]
                download=True,
            )
            assert ds.layout == 'packed'
            assert torch.equal(ds[6]['image'], expected)
        assert not (root / 'images').exists()
        monkeypatch.setattr(torchgeo_satclip.datasets.s2_100k, 'extract_safely', real)
        ds = S2100K(root, patch_size=32, layout='geotiff')
        assert ds.layout == 'geotiff'
        assert torch.equal(ds[6]['image'], expected)
        assert len(list((root / 'images').iterdir())) == 8

    def test_checksum_mismatch(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        monkeypatch.setattr(S2100K, 'index_remote', (str(DATA / 'index.csv'), '0' * 64))
        root = tmp_path / 'root'
        with pytest.raises(RuntimeError, match='SHA-256 mismatch'):
            S2100K(root, patch_size=32, download=True)
        assert not (root / 'index.csv').exists()
        assert not list(root.glob('*.part'))

    def test_checksum_off(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remote: None
    ) -> None:
        monkeypatch.setattr(S2100K, 'index_remote', (str(DATA / 'index.csv'), '0' * 64))
        assert (
            len(S2100K(tmp_path / 'root', patch_size=32, download=True, checksum=False))
            == 8
        )

    def test_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(DatasetNotFoundError, match='Dataset not found'):
            S2100K(tmp_path, patch_size=32)

    def test_not_found_images(self, tmp_path: Path) -> None:
        shutil.copy(DATA / 'index.csv', tmp_path)
        with pytest.raises(DatasetNotFoundError, match='Dataset not found'):
            S2100K(tmp_path, patch_size=32)

    def test_missing_file(self, fake_root: Path) -> None:
        (fake_root / 'images' / 'patch_6.tif').unlink()
        with pytest.raises(DataError, match=r'1 of 8 files .* patch_6\.tif') as e:
            S2100K(fake_root, patch_size=32)
        assert isinstance(e.value, FileNotFoundError)  # what it was before

    def test_corrupt_file(self, fake_root: Path) -> None:
        path = fake_root / 'images' / 'patch_2.tif'
        path.write_bytes(path.read_bytes()[:500])
        ds = S2100K(fake_root, patch_size=32)
        with pytest.raises(RuntimeError, match=r'patch_2\.tif'):
            ds[2]

    def test_wrong_band_count(self, fake_root: Path) -> None:
        profile = {
            'driver': 'GTiff',
            'dtype': 'uint16',
            'count': 3,
            'height': 4,
            'width': 4,
            'crs': 'EPSG:32633',
            'transform': rasterio.transform.from_origin(500000, 4000000, 10, 10),
        }
        with rasterio.open(fake_root / 'images' / 'patch_1.tif', 'w', **profile) as f:
            f.write(np.zeros((3, 4, 4), np.uint16))
        with pytest.raises(RuntimeError, match=r'patch_1\.tif: expected 12'):
            S2100K(fake_root, patch_size=32)[1]

    def test_nodata(self, fake_root: Path) -> None:
        assert S2100K(fake_root, patch_size=32).num_excluded == 0
        ds = S2100K(fake_root, patch_size=32, exclude_nodata=True)
        assert len(ds) == 7
        assert ds.num_excluded == 1
        assert ds.excluded == ['patch_3.tif']
        assert 'patch_3.tif' not in ds.files
        # measured once, then read from the record
        assert (fake_root / 'nodata.csv').is_file()
        (fake_root / 'images' / 'patch_3.tif').write_bytes(b'corrupt, never read again')
        assert S2100K(fake_root, patch_size=32, exclude_nodata=True).num_excluded == 1

    def test_nodata_in_a_read_only_root(
        self, fake_root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A root the user cannot write to (shared data) is read, not refused.

        nodata.csv only saves measuring again: failing to write it is a
        warning naming the file, not an error that makes the dataset unusable.
        """

        def refused(path: Path, *args: object) -> None:
            raise PermissionError(13, 'Permission denied', str(path))

        monkeypatch.setattr(
            torchgeo_satclip.datasets.s2_100k, 'write_nodata_file', refused
        )
        with pytest.warns(UserWarning, match=r'nodata\.csv.*Permission denied'):
            ds = S2100K(fake_root, patch_size=32, exclude_nodata=True)
        assert ds.excluded == ['patch_3.tif']
        assert len(ds) == 7
        assert not (fake_root / 'nodata.csv').exists()

    def test_nodata_exact_in_every_layout(self, fake_root: Path) -> None:
        """A fraction just above the threshold is excluded wherever it is read."""
        path = fake_root / 'images' / 'patch_1.tif'
        with rasterio.open(path) as src:
            profile, image = src.profile, src.read()
        image = np.maximum(image, 1)  # no nodata ...
        image.reshape(12, -1)[:, :102] = 0  # ... but in 102 of the 1,024 pixels
        with rasterio.open(path, 'w', **profile) as dst:
            dst.write(image)
        fraction = 102 / 1024  # 0.099609375: '0.099609' with 6 decimals
        assert nodata_fraction(image) == fraction
        threshold = 0.099609
        expected = ['patch_1.tif', 'patch_3.tif']

        def excluded(layout: str) -> list[str]:
            return S2100K(
                fake_root,
                patch_size=32,
                exclude_nodata=True,
                max_nodata_fraction=threshold,
                layout=layout,  # type: ignore[arg-type]
            ).excluded

        assert excluded('geotiff') == expected  # measured
        record = fake_root / 'nodata.csv'
        assert read_nodata_file(record)['patch_1.tif'] == fraction
        assert excluded('geotiff') == expected  # read from nodata.csv
        record.unlink()
        pack_s2_100k(fake_root, patch_size=32, progress=False)
        assert excluded('packed') == expected
        assert read_nodata_file(record)['patch_1.tif'] == fraction
        assert excluded('geotiff') == expected  # the packer's nodata.csv

    def test_nodata_file_of_six_decimals(self, fake_root: Path) -> None:
        """Files written when fractions were rounded are still read as written."""
        (fake_root / 'nodata.csv').write_text(
            'fn,nodata_fraction\n'
            + ''.join(f'patch_{i}.tif,{i / 10 + 1e-6:.6f}\n' for i in range(8))
        )
        assert read_nodata_file(fake_root / 'nodata.csv')['patch_4.tif'] == 0.400001
        ds = S2100K(
            fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=0.400001
        )
        assert ds.excluded == ['patch_5.tif', 'patch_6.tif', 'patch_7.tif']

    def test_nodata_recorded_list(self, fake_root: Path) -> None:
        (fake_root / 'nodata.csv').write_text(
            'fn\npatch_0.tif\npatch_3.tif\n'
            + ''.join(f'patch_{i}.tif,0\n' for i in (1, 2, 4, 5, 6, 7)).replace(
                ',0', ''
            )
        )
        # a plain list of file names: each listed file counts as all nodata
        ds = S2100K(fake_root, patch_size=32, exclude_nodata=True)
        assert ds.num_excluded == 8

    def test_nodata_threshold(self, fake_root: Path) -> None:
        (fake_root / 'nodata.csv').write_text(
            'fn,nodata_fraction\n'
            + ''.join(f'patch_{i}.tif,{i / 10}\n' for i in range(8))
        )
        assert (
            S2100K(
                fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=0.45
            ).num_excluded
            == 3
        )
        with pytest.raises(ValueError, match='max_nodata_fraction'):
            S2100K(fake_root, patch_size=32, max_nodata_fraction=1.0)

    def test_nodata_is_zero_in_every_band(self, fake_root: Path) -> None:
        # patch 5: 0 in every band but B01 everywhere (not nodata), and 0 in
        # all 12 bands in its first row (nodata).
        path = fake_root / 'images' / 'patch_5.tif'
        with rasterio.open(path) as src:
            profile, image = src.profile, src.read()
        image[1:] = 0
        image[:, 0] = 0
        with rasterio.open(path, 'w', **profile) as dst:
            dst.write(image)
        fraction = 1 / image.shape[1]
        assert nodata_fraction(image) == pytest.approx(fraction)
        kept = S2100K(
            fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=fraction
        )
        assert kept.excluded == ['patch_3.tif']
        (fake_root / 'nodata.csv').unlink(missing_ok=True)
        dropped = S2100K(
            fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=0.0
        )
        assert dropped.excluded == ['patch_3.tif', 'patch_5.tif']

    def test_nodata_threshold_is_inclusive(self, fake_root: Path) -> None:
        (fake_root / 'nodata.csv').write_text(
            'fn,nodata_fraction\n'
            + ''.join(f'patch_{i}.tif,{i / 10}\n' for i in range(8))
        )
        # at most max_nodata_fraction is kept: 0.4 of patch 4 is not excluded
        ds = S2100K(
            fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=0.4
        )
        assert ds.excluded == ['patch_5.tif', 'patch_6.tif', 'patch_7.tif']
        # 0 excludes every patch with any nodata; just below 0 and 1 are refused
        ds = S2100K(
            fake_root, patch_size=32, exclude_nodata=True, max_nodata_fraction=0.0
        )
        assert ds.num_excluded == 7
        for bad in (-1e-9, 1.0):
            with pytest.raises(ValueError, match='max_nodata_fraction'):
                S2100K(fake_root, patch_size=32, max_nodata_fraction=bad)

    @pytest.mark.parametrize(
        ('lon', 'lat', 'match'),
        [
            (180.0, 90.0, None),
            (-180.0, -90.0, None),
            (180.0001, 0.0, 'longitude 180.0001'),
            (0.0, -90.0001, 'latitude -90.0001'),
        ],
    )
    def test_index_limits(
        self, fake_root: Path, lon: float, lat: float, match: str | None
    ) -> None:
        index = fake_root / 'index.csv'
        lines = index.read_text().splitlines()
        lines[3] = f'patch_2.tif,{lon},{lat}'
        index.write_text('\n'.join(lines) + '\n')
        if match is None:
            point = S2100K(fake_root, patch_size=32, mode='points')[2]['point']
            assert point.tolist() == [lon, lat]
        else:
            with pytest.raises(ValueError, match=rf'index\.csv, line 4: {match}'):
                S2100K(fake_root, patch_size=32)

    def test_plot(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32)
        fig = ds.plot(ds[0], suptitle='Test')
        assert 'lon' in fig.axes[0].get_title()
        plt.close(fig)
        fig = ds.plot(ds[3], show_titles=False)  # all-zero patch
        plt.close(fig)

    def test_plot_rgb(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32, bands=['B08', 'B11'])
        with pytest.raises(
            RGBBandsMissingError, match='Dataset does not contain some of the RGB bands'
        ):
            ds.plot(ds[0])

    def test_real_patches(self) -> None:
        ds = S2100K(REAL)
        assert len(ds) == 3
        for sample in samples(ds):
            assert sample['image'].shape == (12, 256, 256)
            assert sample['image'].max() > 100
        lats = sorted(float(s['point'][1]) for s in samples(ds))
        assert lats[-1] == pytest.approx(77.863973)
        fig = ds.plot(ds[1])
        plt.close(fig)

    def test_packed_layout_identical(self, fake_root: Path) -> None:
        geotiff = S2100K(fake_root, patch_size=32)
        pack_s2_100k(fake_root, patch_size=32, shard_size=3, progress=False)
        packed = S2100K(fake_root, patch_size=32)
        assert packed.layout == 'packed'
        assert S2100K(fake_root, patch_size=32, layout='geotiff').layout == 'geotiff'
        for i in range(len(geotiff)):
            a, b = geotiff[i], packed[i]
            assert torch.equal(a['image'], b['image'])
            assert torch.equal(a['point'], b['point'])
        sub = S2100K(fake_root, patch_size=32, bands=['B02', 'B12'])
        assert torch.equal(sub[4]['image'], geotiff[4]['image'][[1, 11]])
        # packed data alone suffices
        expected = geotiff[7]['image']
        shutil.rmtree(fake_root / 'images')
        assert torch.equal(S2100K(fake_root, patch_size=32)[7]['image'], expected)
        assert S2100K(fake_root, patch_size=32, exclude_nodata=True).num_excluded == 1

    def test_layout_packed_missing(self, fake_root: Path) -> None:
        with pytest.raises(FileNotFoundError, match='torchgeo-satclip pack'):
            S2100K(fake_root, patch_size=32, layout='packed')

    def test_real_packed_identical(self, tmp_path: Path) -> None:
        root = tmp_path / 'real'
        shutil.copytree(REAL, root)
        pack_s2_100k(root, progress=False)
        for a, b in zip(
            samples(S2100K(root, layout='geotiff')),
            samples(S2100K(root, layout='packed')),
            strict=True,
        ):
            assert torch.equal(a['image'], b['image'])


def test_plot_keeps_true_colour(fake_root: Path) -> None:
    """A desert (R > G > B, nearly flat) stays yellow-brown, not grey."""
    ds = S2100K(fake_root, patch_size=32)
    sample = ds[0]
    image = torch.zeros_like(sample['image'])
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(image.shape[1:], generator=generator) * 50
    for band, value in (('B04', 2400.0), ('B03', 1800.0), ('B02', 1200.0)):
        image[ds.bands.index(band)] = value + noise
    fig = ds.plot({**sample, 'image': image})
    shown = np.asarray(fig.axes[0].images[0].get_array())
    plt.close(fig)
    red, green, blue = (float(shown[..., c].mean()) for c in range(3))
    assert red > green > blue
    assert red == pytest.approx((2400 + 25) / 3000, abs=0.02)


class TestPlotWhatThereIs:
    """plot() of a sample without an image, or without a point, failed with a
    bare KeyError ('image', 'point')."""

    def test_points_mode_plots_the_point(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32, mode='points', bands=['B08'])
        sample = ds[2]
        fig = ds.plot(sample, suptitle='where')
        assert len(fig.axes) == 1
        ax = fig.axes[0]
        (line,) = ax.get_lines()
        lon, lat = sample['point'].tolist()
        assert np.asarray(line.get_xdata()).tolist() == [lon]
        assert np.asarray(line.get_ydata()).tolist() == [lat]
        assert ax.get_xlim() == (-180.0, 180.0)
        assert ax.get_ylim() == (-90.0, 90.0)
        assert ax.get_title() == f'lon {lon:.4f}, lat {lat:.4f}'
        assert fig.get_suptitle() == 'where'
        plt.close(fig)
        fig = ds.plot(sample, show_titles=False)
        assert fig.axes[0].get_title() == ''
        plt.close(fig)

    def test_image_without_point(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32)
        sample = ds[0]
        del sample['point']
        fig = ds.plot(sample)
        assert len(fig.axes[0].images) == 1
        assert fig.axes[0].get_title() == ''
        plt.close(fig)

    def test_image_of_other_bands(self, fake_root: Path) -> None:
        """A 12-band sample plotted by a dataset of (B04, B03, B02) showed
        B01, B02, B03 as red, green, blue, in silence."""
        full = S2100K(fake_root, patch_size=32)[0]
        ds = S2100K(fake_root, patch_size=32, bands=['B04', 'B03', 'B02'])
        match = r"image has 12 bands, but this dataset gives 3 \('B04', 'B03', 'B02'\)"
        with pytest.raises(ValueError, match=match):
            ds.plot(full)
        fig = ds.plot(ds[0])
        plt.close(fig)

    def test_nothing_to_plot(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32)
        with pytest.raises(ValueError, match=r"neither 'image' nor 'point'.*'label'"):
            ds.plot({'label': torch.tensor(1)})


def test_not_found_prints_a_plain_path(tmp_path: Path) -> None:
    root = tmp_path / 'missing'
    with pytest.raises(DatasetNotFoundError) as info:
        S2100K(root, patch_size=32)
    assert f'root={root}' in str(info.value)
    assert 'PosixPath' not in str(info.value)


class TestIndexes:
    """A bool index was taken for 0 or 1 (``ds[True]`` gave sample 1), and a
    NumPy array of indices failed in ``__getitems__`` on its truth value."""

    @pytest.mark.parametrize('mode', ['both', 'points'])
    @pytest.mark.parametrize(
        'index', [True, False, np.True_, torch.tensor(True), 1.0, np.float64(2), '1']
    )
    def test_not_an_integer(self, fake_root: Path, mode: str, index: object) -> None:
        ds = S2100K(fake_root, patch_size=32, mode=mode)  # type: ignore[arg-type]
        match = rf'S2100K index {re.escape(repr(index))} \(type \w+\) is not an integer'
        with pytest.raises(TypeError, match=match):
            ds[index]  # type: ignore[index]
        with pytest.raises(TypeError, match=match):
            ds.__getitems__([0, index])  # type: ignore[list-item]
        with pytest.raises(TypeError, match=match):
            ds.draw([index])  # type: ignore[list-item]

    @pytest.mark.parametrize('index', [8, -9, 100])
    def test_out_of_range(self, fake_root: Path, index: int) -> None:
        ds = S2100K(fake_root, patch_size=32)
        match = rf'S2100K index {index} is out of range for 8 samples \(-8 to 7\)'
        with pytest.raises(IndexError, match=match):
            ds[index]
        with pytest.raises(IndexError, match=match):
            ds.__getitems__([1, index])

    def test_integers_of_any_kind(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32)
        expected = ds[3]
        for index in (np.int64(3), np.int32(3), torch.tensor(3), -5):
            sample = ds[index]  # type: ignore[index]
            assert torch.equal(sample['image'], expected['image'])
            assert torch.equal(sample['point'], expected['point'])
        batch = ds.__getitems__(np.array([3, 0]))  # type: ignore[arg-type]
        assert torch.equal(batch[0]['image'], expected['image'])
        assert torch.equal(batch[1]['point'], ds[0]['point'])


class TestGetItems:
    """Batches read as one (``__getitems__``) equal the samples read one by one."""

    @pytest.fixture
    def packed_root(self, fake_root: Path) -> Path:
        pack_s2_100k(fake_root, patch_size=32, shard_size=3, progress=False)
        return fake_root

    @pytest.mark.parametrize('layout', ['geotiff', 'packed'])
    @pytest.mark.parametrize('image_dtype', ['float32', 'uint16'])
    @pytest.mark.parametrize('bands', [None, ['B12', 'B02', 'B03']])
    @pytest.mark.parametrize(
        'indices',
        [[0, 1, 2, 3], [3, 4, 5, 6, 7], [7, 2, 5, 0], [4, 4, 1], [7, 6, 5, 4]],
    )
    def test_equal_to_getitem(
        self,
        packed_root: Path,
        layout: str,
        image_dtype: str,
        bands: list[str] | None,
        indices: list[int],
    ) -> None:
        kwargs = {} if bands is None else {'bands': bands}
        ds = S2100K(
            packed_root,
            patch_size=32,
            layout=layout,  # type: ignore[arg-type]
            image_dtype=image_dtype,  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        samples = ds.__getitems__(indices)
        assert isinstance(samples, SampleBatch)
        assert len(samples) == len(indices)
        expected_dtype = getattr(torch, image_dtype)
        for i, sample in zip(indices, samples, strict=True):
            single = ds[i]
            assert sample['image'].dtype == single['image'].dtype == expected_dtype
            assert torch.equal(sample['image'], single['image'])
            assert torch.equal(sample['point'], single['point'])
        stacked = samples.stacked
        assert stacked['image'].is_contiguous()
        assert torch.equal(
            stacked['image'], torch.stack([ds[i]['image'] for i in indices])
        )

    def test_uint16_is_the_stored_value(self, packed_root: Path) -> None:
        as_float = S2100K(packed_root, patch_size=32)[5]['image']
        raw = S2100K(packed_root, patch_size=32, image_dtype='uint16')[5]['image']
        assert raw.dtype == torch.uint16
        assert torch.equal(raw.float(), as_float)
        assert float(raw.float().max()) > 0

    def test_transforms_read_one_by_one(self, packed_root: Path) -> None:
        calls = []

        def transform(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            calls.append(1)
            return {**sample, 'image': sample['image'] * 2}

        ds = S2100K(packed_root, patch_size=32, transforms=transform)
        samples = ds.__getitems__([1, 2])
        assert not isinstance(samples, SampleBatch)
        assert len(calls) == 2
        plain = S2100K(packed_root, patch_size=32)
        assert torch.equal(samples[0]['image'], plain[1]['image'] * 2)

    def test_points_mode(self, packed_root: Path) -> None:
        ds = S2100K(packed_root, patch_size=32, mode='points')
        samples = ds.__getitems__([2, 0])
        assert set(samples[0]) == {'point'}
        assert isinstance(samples, SampleBatch)
        assert torch.equal(
            samples.stacked['point'], torch.from_numpy(ds.points[[2, 0]])
        )

    def test_subset_and_default_collate(self, packed_root: Path) -> None:
        ds = S2100K(packed_root, patch_size=32, image_dtype='uint16')
        subset = Subset(ds, [6, 2, 7])
        loader = DataLoader(subset, batch_size=3)  # default_collate
        batch = next(iter(loader))
        assert batch['image'].dtype == torch.uint16
        assert torch.equal(
            batch['image'], torch.stack([ds[i]['image'] for i in [6, 2, 7]])
        )

    def test_workers_shared_memory(self, packed_root: Path) -> None:
        ds = S2100K(packed_root, patch_size=32, image_dtype='uint16')
        loader = DataLoader(
            ds, batch_size=4, num_workers=1, collate_fn=collate_sample_batch
        )
        batches = list(loader)
        images = torch.cat([b['image'] for b in batches])
        assert images.dtype == torch.uint16
        assert torch.equal(
            images, torch.stack([ds[i]['image'] for i in range(len(ds))])
        )

    def test_geotiff_patch_of_another_size(self, fake_root: Path) -> None:
        ds = S2100K(fake_root, patch_size=32, layout='geotiff')
        path = fake_root / 'images' / ds.files[1]
        with rasterio.open(path) as f:
            profile = f.profile
            image = f.read()
        profile.update(width=image.shape[2] - 1)
        with rasterio.open(path, 'w', **profile) as f:
            f.write(image[:, :, :-1])
        with pytest.raises(
            RuntimeError,
            match=f'{ds.files[1]}: patch of 32 x 31 pixels, expected 32 x 32',
        ):
            ds.__getitems__([0, 1])

    def test_read_into_checks_out(self, packed_root: Path) -> None:
        ds = S2100K(packed_root, patch_size=32)
        assert ds.packed is not None
        out = np.empty((2, 12, 4, 4), dtype=np.uint16)
        with pytest.raises(ValueError, match='out must be uint16 of shape'):
            ds.packed.read_into(ds.files[:2], out)

    @pytest.mark.parametrize('layout', ['geotiff', 'packed'])
    @pytest.mark.parametrize(
        ('dtype', 'shape'),
        [
            (np.float32, (2, 3, 32, 32)),
            (np.int16, (2, 3, 32, 32)),
            (np.uint16, (3, 3, 32, 32)),
            (np.uint16, (2, 12, 32, 32)),
        ],
    )
    def test_read_files_checks_out_in_every_layout(
        self,
        packed_root: Path,
        layout: str,
        dtype: type[np.generic],
        shape: tuple[int, ...],
    ) -> None:
        """The GeoTIFF layout filled a float32 or int16 *out* (int16 wraps
        reflectance above 32767) or one of more rows, in silence."""
        ds = S2100K(
            packed_root,
            patch_size=32,
            layout=layout,  # type: ignore[arg-type]
            bands=['B04', 'B03', 'B02'],
        )
        out = np.zeros(shape, dtype=dtype)
        expected = re.escape(
            f'out must be uint16 of shape (2, 3, 32, 32), not {np.dtype(dtype)} {shape}'
        )
        with pytest.raises(ValueError, match=expected):
            ds.read_files(ds.files[:2], out)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=expected):
            ds.read_images([0, 1], out)  # type: ignore[arg-type]
        assert not out.any()  # nothing read

    def test_invalid_image_dtype(self, fake_root: Path) -> None:
        with pytest.raises(ValueError, match="image_dtype must be 'float32' or"):
            S2100K(fake_root, patch_size=32, image_dtype='float16')  # type: ignore[arg-type]


def test_plot_of_an_augmented_sample_keeps_its_colours() -> None:
    """A sample divided by 10,000 (what the datamodule's augmentation gives)
    is shown as the raw one is, not black; multi-date too."""
    ds = S2100K(REAL)
    sample = ds[1]
    shown = []
    for image in (sample['image'], sample['image'].float() / 10000):
        fig = ds.plot({**sample, 'image': image})
        shown.append(np.asarray(fig.axes[0].images[0].get_array()))
        plt.close(fig)
    assert shown[0].mean() > 0.1
    np.testing.assert_allclose(shown[1], shown[0], atol=1e-6)
    two = torch.stack([sample['image'].float() / 10000] * 2)
    fig = ds.plot({**sample, 'image': two, 'date': torch.tensor([0, 30])})
    for ax in fig.axes:
        np.testing.assert_allclose(
            np.asarray(ax.images[0].get_array()), shown[0], atol=1e-6
        )
    plt.close(fig)


def test_points_are_the_index_values_exactly() -> None:
    """float64 as written in index.csv (and as TorchGeo's S2100k gives them):
    a float32 point would be off by up to 1.7 m, and so would every written
    embedding's coordinates."""
    import csv

    ds = S2100K(REAL)
    with (REAL / 'index.csv').open() as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        point = ds[i]['point']
        assert point.dtype == torch.float64
        assert point.tolist() == [float(row['lon']), float(row['lat'])]
    batch = ds.__getitems__([2, 0])
    assert batch[1]['point'].dtype == torch.float64
    assert batch[1]['point'].tolist() == [float(rows[0]['lon']), float(rows[0]['lat'])]


@pytest.mark.parametrize('layout', ['geotiff', 'packed'])
def test_progress_false_shows_no_progress_bar(
    fake_root: Path, layout: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The 'verifying GeoTIFFs' and 'measuring nodata' bars were drawn on
    stderr whatever the caller asked (a command's --quiet could not silence
    them); progress=False now silences every bar of the dataset, as it does
    pack_s2_100k's and verify_packed's."""
    if layout == 'packed':
        pack_s2_100k(fake_root, patch_size=32, progress=False)
    capfd.readouterr()
    args: dict[str, Any] = {'patch_size': 32, 'layout': layout, 'verify': True}
    S2100K(fake_root, exclude_nodata=True, progress=False, **args)
    assert capfd.readouterr().err == ''
    (fake_root / 'nodata.csv').unlink(missing_ok=True)
    S2100K(fake_root, exclude_nodata=True, progress=False, **args)
    assert capfd.readouterr().err == ''
    # progress=True (the default) still shows them
    (fake_root / 'nodata.csv').unlink(missing_ok=True)
    S2100K(fake_root, exclude_nodata=True, **args)
    err = capfd.readouterr().err
    if layout == 'geotiff':
        assert 'verifying GeoTIFFs' in err
        assert 'measuring nodata' in err
    else:
        assert 'verifying shards' in err
    with pytest.raises(ValueError, match="progress must be True or False, got 'no'"):
        S2100K(fake_root, progress='no', **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('value', 'match'),
    [
        ('0.1', "max_nodata_fraction must be a real number, got '0.1'"),
        (None, 'max_nodata_fraction must be a real number, got None'),
        (True, 'max_nodata_fraction must be a real number, got True'),
        (float('nan'), 'max_nodata_fraction must be finite, got nan'),
        (1.0, r'max_nodata_fraction must be in \[0, 1\), got 1.0'),
    ],
)
def test_bad_max_nodata_fraction_is_refused_by_name(value: object, match: str) -> None:
    """A string or None (a config's quoted or empty value) failed with a bare
    TypeError from a comparison ("'<=' not supported between instances of
    'int' and 'str'"), naming neither the argument nor what it expects."""
    with pytest.raises(ValueError, match=match):
        S2100K(DATA, patch_size=32, max_nodata_fraction=value)  # type: ignore[arg-type]


@pytest.mark.parametrize('fraction', [-0.5, 1.5, math.nan])
def test_write_nodata_file_names_the_file_of_a_bad_fraction(
    tmp_path: Path, fraction: float
) -> None:
    """A fraction outside [0, 1] named the value and the patch, not the CSV."""
    path = tmp_path / 'nodata.csv'
    with pytest.raises(ValueError, match=rf'{re.escape(str(path))}: nodata fraction'):
        write_nodata_file(path, ['a.tif', 'b.tif'], [0.0, fraction])
    assert list(tmp_path.iterdir()) == []
