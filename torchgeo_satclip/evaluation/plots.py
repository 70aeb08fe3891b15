"""Figures: the embedding's first three PCA components as a world map, score bars."""

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path
from ..geo import is_land
from .probe import ProbeResult, encode

__all__ = [
    'check_map_resolution',
    'closed_on_error',
    'pca_rgb',
    'plot_pca_map',
    'plot_scores',
    'save_figure',
]

#: Finest grid step of a PCA map in degrees (7,200 x 3,600 = 26 million points).
MIN_MAP_RESOLUTION = 0.05

#: A PCA component whose singular value is at most this many roundings of the
#: features' dtype (its epsilon times the features' scale) is noise: 0.
NOISE_ROUNDINGS = 1000


def check_map_resolution(resolution: Any, name: str = 'resolution') -> float:
    """Return the grid step of a PCA map if it is usable.

    Args:
        resolution: grid step in degrees.
        name: the caller's name of the parameter, for the message.

    Returns:
        It, as a float.

    Raises:
        ValueError: unless it is a finite number in [0.05, 90].
    """
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | float | np.floating | np.integer)
        or not MIN_MAP_RESOLUTION <= float(resolution) <= 90
    ):
        raise ValueError(
            f'{name} must be a number of degrees in '
            f'[{MIN_MAP_RESOLUTION}, 90], got {resolution!r}'
        )
    return float(resolution)


def pca_rgb(features: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Project features on their first three principal components, scaled to [0, 1].

    Args:
        features: ``(N, D)`` features.
        weights: ``(N,)`` sample weights of the PCA fit (for a latitude-longitude
            grid, ``cos(lat)``, so that the over-sampled poles do not dominate).

    Returns:
        ``(N, 3)`` colours; with fewer than three components (``D < 3``, or
        fewer than three points) the missing ones are 0 (their channels
        black), and so is a component no larger than the rounding of the
        features' dtype (:data:`NOISE_ROUNDINGS` of its epsilon times the
        features' scale): scaled to [0, 1] like the others, the rounding noise
        of a rank-two encoder's third component, or of a constant field,
        filled its channel with speckle. A constant field is black.

    Raises:
        ValueError: if *features* are not a finite ``(N, D)`` array with a
            row (naming the first row that is not finite), or *weights* are
            not ``N`` finite numbers at least 0 with a positive sum.
    """
    features = np.asarray(features)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(
            f'features must be (N, D) with N >= 1, got shape {features.shape}'
        )
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        raise ValueError(
            f'features row {int(bad[0])} is not finite: {features[bad[0]][:8].tolist()}'
        )
    n = len(features)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,):
        raise ValueError(f'weights must be ({n},), one per row, got shape {w.shape}')
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise ValueError(
            'weights must be finite, at least 0 and of positive sum, got values '
            f'from {float(w.min())} to {float(w.max())}'
        )
    w = w / w.sum()
    mean = w @ features
    centred = features - mean
    _, singular, vt = np.linalg.svd(centred * np.sqrt(w)[:, None], full_matrices=False)
    components = centred @ vt[:3].T
    dtype = features.dtype if np.issubdtype(features.dtype, np.floating) else float
    scale = (singular[:1].sum() + np.linalg.norm(mean)) * np.finfo(dtype).eps
    components[:, singular[:3] <= NOISE_ROUNDINGS * scale] = 0
    if components.shape[1] < 3:  # an encoder of 2 features: red and green only
        components = np.pad(components, ((0, 0), (0, 3 - components.shape[1])))
    low = np.percentile(components, 1, axis=0)
    high = np.percentile(components, 99, axis=0)
    rgb: np.ndarray = np.clip((components - low) / np.maximum(high - low, 1e-12), 0, 1)
    return rgb


def plot_pca_map(
    encoder: str | torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    path: str | os.PathLike[str],
    resolution: float = 1.0,
    title: str | None = None,
    coastlines: bool = True,
) -> Path:
    """Save a world map of an encoder's first three PCA components as RGB.

    Args:
        encoder: anything :func:`~torchgeo_satclip.evaluation.probe.encode` accepts.
        path: PNG file to write.
        resolution: grid step in degrees.
        title: figure title (default: the encoder's name).
        coastlines: draw coastlines (needs ``global-land-mask``; skipped if absent).

    Returns:
        The PNG path.

    Raises:
        ValueError: if *resolution* is not in [0.05, 90] degrees.
    """
    resolution = check_map_resolution(resolution)
    import matplotlib

    matplotlib.use('agg')
    import matplotlib.pyplot as plt

    lon = np.arange(-180 + resolution / 2, 180, resolution)
    lat = np.arange(90 - resolution / 2, -90, -resolution)
    grid_lon, grid_lat = np.meshgrid(lon, lat)
    lonlat = np.stack([grid_lon.ravel(), grid_lat.ravel()], axis=1)
    area = np.cos(np.radians(lonlat[:, 1]))
    rgb = pca_rgb(encode(encoder, lonlat), area).reshape(len(lat), len(lon), 3)
    fig, ax = plt.subplots(figsize=(10, 5.2))
    with closed_on_error(fig):
        # The cells' own bounds: a step that does not divide 180 degrees
        # overhangs the last column and row (cropped by the limits below),
        # where (-180, 180, -90, 90) would stretch the grid off its points.
        cells = (
            lon[0] - resolution / 2,
            lon[-1] + resolution / 2,
            lat[-1] - resolution / 2,
            lat[0] + resolution / 2,
        )
        ax.imshow(rgb, extent=cells, interpolation='nearest')
        if coastlines:
            try:
                land = is_land(grid_lon, grid_lat).astype(float)
                ax.contour(
                    grid_lon, grid_lat, land, levels=[0.5], colors='k', linewidths=0.5
                )
            except ImportError:
                pass
        name = encoder if isinstance(encoder, str) else type(encoder).__name__
        ax.set_title(title or f'{name}: first three PCA components as RGB')
        ax.set_xlabel('longitude')
        ax.set_ylabel('latitude')
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
    return save_figure(fig, path, bbox_inches='tight')


def plot_scores(results: Sequence[ProbeResult], path: str | os.PathLike[str]) -> Path:
    """Save per-task bar charts of the probe scores (mean +- std over folds).

    One panel per task/metric, one group of bars per probe and CV scheme, one
    colour per encoder.

    Args:
        results: probe results.
        path: PNG file to write.

    Returns:
        The PNG path.

    Raises:
        ValueError: before any figure is made, for no result or a result
            without scores or with a score that is not finite (naming it).
    """
    if isinstance(results, str) or not results:
        raise ValueError(
            f'results must be a non-empty list of probe results, got {results!r}'
        )
    for number, r in enumerate(results, start=1):
        if not r.scores or not np.isfinite(r.scores).all():
            raise ValueError(
                f'result {number} (task {r.task!r}, encoder {r.encoder!r}, '
                f'{r.protocol} {r.split}) has scores {r.scores}: expected one or '
                'more finite scores'
            )
    import matplotlib

    matplotlib.use('agg')
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r.task, r.metric) for r in results))
    encoders = list(dict.fromkeys(r.encoder for r in results))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.2 * len(panels) + 1, 3.6), squeeze=False
    )
    with closed_on_error(fig):
        _draw_scores(fig, axes, results, panels, encoders)
    return save_figure(fig, path)


def _draw_scores(
    fig: Any,
    axes: Any,
    results: Sequence[ProbeResult],
    panels: list[tuple[str, str]],
    encoders: list[str],
) -> None:
    """Draw :func:`plot_scores`' panels, bars and legend on ``fig``.

    The legend names every encoder drawn, from the first bar drawn of each
    (an encoder need not have a result in the first panel or group).
    """
    import matplotlib.pyplot as plt

    width = 0.8 / max(len(encoders), 1)
    colours: Any = plt.get_cmap('tab10')
    handles: dict[str, Any] = {}
    for ax, (task, metric) in zip(axes[0], panels, strict=True):
        mine = [r for r in results if r.task == task and r.metric == metric]
        groups = list(dict.fromkeys((r.protocol, r.split) for r in mine))
        for e, encoder in enumerate(encoders):
            for g, group in enumerate(groups):
                cell = next(
                    (
                        r
                        for r in mine
                        if r.encoder == encoder and (r.protocol, r.split) == group
                    ),
                    None,
                )
                if cell is None:
                    continue
                bars = ax.bar(
                    g + (e - (len(encoders) - 1) / 2) * width,
                    cell.mean,
                    width,
                    yerr=cell.std,
                    color=colours(e % 10),
                    capsize=2,
                )
                handles.setdefault(encoder, bars)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f'{p}\n{s}' for p, s in groups], fontsize=8)
        ax.set_title(task)
        ax.set_ylabel(metric)
        ax.set_ylim(min(0.0, *(r.mean - r.std for r in mine)), 1.0)
    named = [encoder for encoder in encoders if encoder in handles]
    fig.legend(
        [handles[encoder] for encoder in named],
        named,
        loc='upper center',
        ncol=len(encoders),
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.9))


@contextmanager
def closed_on_error(fig: Any) -> Iterator[None]:
    """Close *fig* if drawing it fails (:func:`save_figure` closes it after).

    A figure left open on an error stays in pyplot's registry for the rest
    of the process.

    Args:
        fig: the matplotlib figure being drawn.
    """
    try:
        yield
    except BaseException:
        import matplotlib.pyplot as plt

        plt.close(fig)
        raise


def save_figure(fig: Any, path: str | os.PathLike[str], **options: Any) -> Path:
    """Save and close a figure, atomically: a temporary sibling, then a rename.

    The figure is closed whether or not it could be saved.

    Args:
        fig: the matplotlib figure.
        path: where it goes; its extension names the format (PNG without one).
        **options: further arguments of ``savefig`` (``bbox_inches``).

    Returns:
        *path*.
    """
    import matplotlib.pyplot as plt

    out = Path(path)
    fmt = out.suffix[1:].lower() or 'png'
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out, suffix=f'.tmp.{fmt}') as tmp:
            fig.savefig(tmp, dpi=100, format=fmt, **options)
    finally:
        plt.close(fig)
    return out
