"""PCA maps of encoders with fewer than three features."""

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from torchgeo_satclip.evaluation import pca_rgb, plot_pca_map, probe_report
from torchgeo_satclip.models import build_location_encoder, save_official_checkpoint


def test_pca_rgb_of_two_features_has_a_black_blue_channel() -> None:
    rng = np.random.default_rng(0)
    rgb = pca_rgb(rng.normal(size=(100, 2)))
    assert rgb.shape == (100, 3)
    assert np.ptp(rgb[:, 0]) > 0.5
    assert np.ptp(rgb[:, 1]) > 0.5
    assert (rgb[:, 2] == 0).all()


def test_rounding_noise_is_no_colour() -> None:
    """A component made of the features' rounding alone was scaled to [0, 1]
    like the others: the third component of a rank-two encoder (a linear
    layer on lon/lat) filled the blue channel with speckle, and a field
    constant up to float32 rounding was a full-colour map."""
    rng = np.random.default_rng(0)
    lonlat = np.stack([rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500)], 1)
    weights = rng.normal(size=(2, 64))
    features = (lonlat @ weights).astype(np.float32)  # rank two, rounded
    rgb = pca_rgb(features, np.cos(np.radians(lonlat[:, 1])))
    assert np.ptp(rgb[:, 0]) > 0.5
    assert np.ptp(rgb[:, 1]) > 0.5
    assert (rgb[:, 2] == 0).all()
    constant = np.full((500, 8), 0.1) + 1e-9 * rng.normal(size=(500, 8))
    assert (pca_rgb(constant.astype(np.float32)) == 0).all()
    assert (pca_rgb(np.ones((10, 4))) == 0).all()
    # a faint but real component in float64 keeps its colour
    faint = np.concatenate([lonlat, 1e-6 * lonlat[:, :1] ** 2], axis=1)
    assert np.ptp(pca_rgb(faint)[:, 2]) > 0.5


def test_a_two_feature_encoder_is_mapped(tmp_path: Path) -> None:
    # 'cannot reshape array of size 144 into shape (6,12,3)'
    path = plot_pca_map('raw', tmp_path / 'raw.png', resolution=30.0)
    assert path.stat().st_size > 0


def test_probe_report_maps_a_two_feature_checkpoint(tmp_path: Path) -> None:
    # The map was drawn after every probe, and its failure lost the whole run.
    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=4, capacity=8, embed_dim=2)
    checkpoint = save_official_checkpoint(encoder, tmp_path / 'tiny.ckpt')
    report = probe_report(
        tmp_path / 'out',
        ['air_temperature'],
        [str(checkpoint)],
        splits=('random',),
        folds=2,
        map_resolution=30.0,
    )
    assert [path.name for path in report.figures] == ['scores.png', 'pca_tiny.png']
    assert all(path.is_file() for path in report.figures)


def test_a_map_that_fails_to_draw_closes_its_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while drawing left the figure open (pyplot keeps it: a loop of
    maps leaks them), where save_figure closes it after a success."""
    import matplotlib.pyplot as plt

    from torchgeo_satclip.evaluation import plots

    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError('land mask unreadable')

    monkeypatch.setattr(plots, 'is_land', broken)
    plt.close('all')
    with pytest.raises(RuntimeError, match='land mask unreadable'):
        plot_pca_map('raw', tmp_path / 'raw.png', resolution=30.0)
    assert plt.get_fignums() == []
    assert not (tmp_path / 'raw.png').exists()


def test_a_bad_resolution_is_named_as_the_caller_passed_it(tmp_path: Path) -> None:
    """``plot_pca_map(resolution=...)`` and ``probe_report(map_resolution=...)``
    each name their own parameter, and neither names a command-line flag (the
    command line names its flags itself)."""
    with pytest.raises(ValueError, match=r'^resolution must be a number') as info:
        plot_pca_map('raw', tmp_path / 'map.png', resolution=0.01)
    assert '--' not in str(info.value)
    with pytest.raises(ValueError, match=r'^map_resolution must be a number') as info:
        probe_report(
            tmp_path / 'out', ['air_temperature'], ['raw'], map_resolution=100.0
        )
    assert '--' not in str(info.value)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(
    ('resolution', 'cells'),
    [(50.0, (-180.0, 170.0, -110.0, 90.0)), (7.0, (-180.0, 177.0, -92.0, 90.0))],
)
def test_the_map_is_drawn_where_its_cells_are(
    resolution: float,
    cells: tuple[float, float, float, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image of a grid whose step does not divide 180 degrees was
    stretched over (-180, 180, -90, 90): at 50 degrees its four rows (centres
    65 to -85) were drawn 45 degrees high, so the colours stood up to 12.5
    degrees away from their points and from the coastlines drawn over them."""
    from torchgeo_satclip.evaluation import plots

    drawn: list[tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]] = []
    save = plots.save_figure

    def keep(fig: Any, path: Any, **options: Any) -> Path:
        ax = fig.axes[0]
        extent = tuple(float(v) for v in ax.images[0].get_extent())
        drawn.append((extent, tuple(ax.get_xlim()), tuple(ax.get_ylim())))
        return save(fig, path, **options)

    monkeypatch.setattr(plots, 'save_figure', keep)
    plot_pca_map('wrap', tmp_path / 'wrap.png', resolution=resolution)
    ((extent, xlim, ylim),) = drawn
    assert extent == pytest.approx(cells)
    assert (xlim, ylim) == ((-180.0, 180.0), (-90.0, 90.0))


@pytest.mark.parametrize(
    ('features', 'weights', 'message'),
    [
        (
            np.zeros((0, 4)),
            None,
            'features must be (N, D) with N >= 1, got shape (0, 4)',
        ),
        (np.arange(5.0), None, 'features must be (N, D) with N >= 1, got shape (5,)'),
        (
            np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]),
            None,
            'features row 1 is not finite',
        ),
        (np.ones((3, 2)), np.ones(2), 'weights must be (3,), one per row'),
        (np.ones((3, 2)), np.zeros(3), 'weights must be finite, at least 0'),
        (np.ones((3, 2)), np.array([1.0, -1.0, 1.0]), 'weights must be finite'),
    ],
)
def test_pca_rgb_names_what_it_cannot_map(
    features: np.ndarray, weights: np.ndarray | None, message: str
) -> None:
    """A NaN feature (an encoder gone NaN somewhere on the grid) failed with
    numpy's 'SVD did not converge', no point with 'index -1 is out of bounds',
    zero weights with NaN colours."""
    with pytest.raises(ValueError, match=re.escape(message)):
        pca_rgb(features, weights)
