"""``torchgeo-satclip probe``: probe location features on labelled tasks."""

import argparse
import sys
from functools import partial

from . import _common
from ._common import Subparsers, shown
from ._preflight import check_path
from ._signatures import StaticSignature

__all__ = ['add_parser', 'csv_tasks', 'run']

PROBE_REPORT = StaticSignature('torchgeo_satclip.evaluation.report', 'probe_report')
RUN_PROBES = StaticSignature('torchgeo_satclip.evaluation.probe', 'run_probes')
LOAD_TASK = StaticSignature('torchgeo_satclip.evaluation.tasks', 'load_task')
TASK_FROM_CSV = StaticSignature('torchgeo_satclip.evaluation.tasks', 'task_from_csv')
PLOT_PCA_MAP = StaticSignature('torchgeo_satclip.evaluation.plots', 'plot_pca_map')

DESCRIPTION = (
    'Cross-validate probes of frozen location features on point tasks and '
    'write OUTPUT_DIR/probe_results.md and .csv (mean +- std over folds: R^2 '
    'for regression, accuracy for classification), OUTPUT_DIR/scores.png '
    '(per-task bars) and OUTPUT_DIR/pca_<encoder>.png (world maps of the '
    'first three PCA components as RGB, for every encoder but raw). The linear probe follows RANGE: '
    'MinMax scaling, then RidgeCV / RidgeClassifierCV with alpha in {0.1, 1, '
    "10}; the MLP probe follows SatCLIP's example (2 x 64, Adam 1e-3). "
    'The probes need the eval extra (pip install "torchgeo-satclip[eval]", '
    'which brings scikit-learn and the land, Koppen and country maps); '
    'built-in tasks need no download.'
)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``probe`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'probe',
        help='probe location features on tasks with real labels (tables and maps)',
        description=DESCRIPTION,
        parents=[
            _common.seed(RUN_PROBES),
            _common.columns(TASK_FROM_CSV, ' of --csv'),
            _common.quiet(),
            _common.overwrite(
                'replace the results of an earlier run in --output-dir (refused '
                'without it)'
            ),
        ],
    )
    tasks = PROBE_REPORT.default('tasks')
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=None,
        help=(
            'built-in tasks: air_temperature, precipitation (3,076 weather '
            'stations), koppen (Koppen-Geiger class), land_ocean, country '
            f'(default: {shown(tasks)}; none when --csv is given)'
        ),
    )
    parser.add_argument(
        '--csv',
        action='append',
        default=[],
        metavar='PATH:TARGET',
        help=(
            'a user task: a CSV with lon/lat columns (--lon-column, --lat-column) '
            'and the TARGET column; repeatable'
        ),
    )
    parser.add_argument(
        '--csv-kind',
        choices=PROBE_REPORT.choices('csv_kind'),
        default=PROBE_REPORT.default('csv_kind'),
        help=(
            "what the --csv targets are: 'auto' reads a column of more than 20 "
            'distinct numbers as a regression target and anything else as '
            'classes; classification for more than 20 integer class codes '
            f'(default: {PROBE_REPORT.default("csv_kind")})'
        ),
    )
    encoders = PROBE_REPORT.default('encoders')
    parser.add_argument(
        '--encoders',
        nargs='+',
        default=list(encoders),
        help=(
            'features side by side: raw (lon, lat), wrap, sh (spherical harmonics '
            "L = 10 alone), sh20, geoclip (GeoCLIP's pretrained encoder, from "
            'the geoclip extra), checkpoint paths or SatCLIPWeights names '
            f'(default: {shown(encoders)})'
        ),
    )
    protocols = RUN_PROBES.default('protocols')
    parser.add_argument(
        '--protocols',
        nargs='+',
        choices=RUN_PROBES.choices('protocols'),
        default=list(protocols),
        help=f'probes (default: {shown(protocols)})',
    )
    parser.add_argument(
        '--cv',
        nargs='+',
        choices=PROBE_REPORT.choices('splits'),
        default=list(PROBE_REPORT.default('splits')),
        help=(
            "cross-validation: random k-fold, spatial-block k-fold, range (RANGE's "
            'own evaluation: one 80/20 split with torch seed 42, which reproduces '
            'its published figures) (default: random spatial)'
        ),
    )
    _common.option(parser, '--folds', RUN_PROBES, 'folds', 'folds', type=int)
    _common.option(
        parser,
        '--block-size',
        RUN_PROBES,
        'block_size',
        'side of the spatial blocks in degrees',
        type=float,
    )
    _common.option(
        parser,
        '--num-points',
        LOAD_TASK,
        'num_points',
        'points of the sampled tasks koppen, land_ocean, country (at most 1,000,000)',
        type=int,
    )
    parser.add_argument(
        '--output-dir',
        default='probe_results',
        help='output folder (default: probe_results)',
    )
    parser.add_argument(
        '--no-plots', action='store_true', help='write the tables only, no PNG figures'
    )
    parser.add_argument(
        '--references',
        action='store_true',
        help=(
            'also print and write OUTPUT_DIR/published.md: the measured scores '
            "(under the publication's own split with --cv range, and under "
            'random k-fold CV) beside published figures, with their source '
            "(RANGE's linear probe, air temperature R^2)"
        ),
    )
    _common.option(
        parser,
        '--map-resolution',
        PLOT_PCA_MAP,
        'resolution',
        'grid step of the PCA maps in degrees',
        type=float,
    )
    parser.set_defaults(func=run)


def csv_tasks(specs: list[str]) -> list[tuple[str, str]]:
    """Split ``--csv PATH:TARGET`` values (the path may hold colons).

    Args:
        specs: the ``--csv`` values.

    Returns:
        ``(path, target)`` pairs.

    Raises:
        ValueError: for a value without ``:``, without a path or without a
            target (an empty or blank one).
    """
    pairs = []
    for spec in specs:
        path, sep, target = spec.rpartition(':')
        if not sep or not path or not target.strip():
            raise ValueError(f'--csv expects PATH:TARGET, got {spec!r}')
        pairs.append((path, target))
    return pairs


def run(args: argparse.Namespace) -> int:
    """Run the probes: :func:`~torchgeo_satclip.evaluation.probe_report`.

    Progress (a bar and a line per result) goes to stderr, none with
    ``--quiet``: stdout has the results only.

    Args:
        args: the parsed ``probe`` arguments.

    Returns:
        The exit status.
    """
    from tqdm.auto import tqdm

    from ..evaluation.report import probe_report

    user_tasks = csv_tasks(args.csv)
    for path, _ in user_tasks:
        check_path(path, '--csv', 'input_file')
    if args.tasks is not None:
        builtin = list(args.tasks)
    else:  # a user task alone, unless built-in ones are asked for too
        builtin = [] if user_tasks else list(PROBE_REPORT.default('tasks'))
    report = probe_report(
        args.output_dir,
        builtin,
        args.encoders,
        csv_tasks=user_tasks,
        csv_kind=args.csv_kind,
        lon_column=args.lon_column,
        lat_column=args.lat_column,
        num_points=args.num_points,
        protocols=args.protocols,
        splits=args.cv,
        folds=args.folds,
        block_size=args.block_size,
        seed=args.seed,
        plots=not args.no_plots,
        map_resolution=args.map_resolution,
        references=args.references,
        progress=None if args.quiet else partial(tqdm.write, file=sys.stderr),
        progress_bar=not args.quiet,
        overwrite=args.overwrite,
    )
    print(report.markdown.read_text(encoding='utf-8'))
    print(f'wrote {report.markdown} and {report.table}')
    if report.published is not None:
        print()
        print(report.published.read_text(encoding='utf-8'))
        print(f'wrote {report.published}')
    elif args.references:
        print('no result has a published counterpart (see --help of --references)')
    for figure in report.figures:
        print(f'wrote {figure}')
    return 0
