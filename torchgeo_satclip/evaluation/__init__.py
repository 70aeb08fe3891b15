"""Evaluation of location embeddings: point tasks, probes, tables and maps."""

from .plots import pca_rgb, plot_pca_map, plot_scores
from .points import PointDataModule, PointDataset
from .probe import (
    ALPHAS,
    BUILTIN_ENCODERS,
    RANGE_CV,
    RANGE_SEED,
    ProbeResult,
    cross_validate,
    encode,
    fold_indices,
    make_probe,
    range_split,
    resolve_encoders,
    results_to_markdown,
    run_probes,
    write_results,
)
from .references import (
    PUBLISHED,
    RANGE_SOURCE,
    PublishedScore,
    references_to_markdown,
)
from .report import ProbeReport, probe_report
from .tasks import BUILTIN_TASKS, PointTask, load_task, sample_sphere, task_from_csv

__all__ = [
    'ALPHAS',
    'BUILTIN_ENCODERS',
    'BUILTIN_TASKS',
    'PUBLISHED',
    'RANGE_CV',
    'RANGE_SEED',
    'RANGE_SOURCE',
    'PointDataModule',
    'PointDataset',
    'PointTask',
    'ProbeReport',
    'ProbeResult',
    'PublishedScore',
    'cross_validate',
    'encode',
    'fold_indices',
    'load_task',
    'make_probe',
    'pca_rgb',
    'plot_pca_map',
    'plot_scores',
    'probe_report',
    'range_split',
    'references_to_markdown',
    'resolve_encoders',
    'results_to_markdown',
    'run_probes',
    'sample_sphere',
    'task_from_csv',
    'write_results',
]
