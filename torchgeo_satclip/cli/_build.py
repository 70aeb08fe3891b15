"""``torchgeo-satclip build``: build an S2-100K-style dataset."""

import argparse
import sys
from typing import Any

from . import _common
from ._common import Subparsers
from ._signatures import StaticSignature, constant

__all__ = ['add_parser', 'run']

BUILD = StaticSignature('torchgeo_satclip.builders.planetary_computer', 'build_dataset')

DESCRIPTION = (
    'Sample points uniformly on land (or in a GeoJSON region), find the '
    'least cloudy Sentinel-2 L2A scene over each on the Planetary '
    'Computer STAC API and cut a 12-band patch at 10 m around it with '
    'windowed reads. Writes ROOT/index.csv and ROOT/images/ (the S2-100K '
    'layout). Concurrent, retries transient errors, resumable: re-run the '
    'same command after an interruption (or with a larger --num-samples '
    'to extend the dataset). With --dates K (or --windows), each point gets '
    'up to K images of different times, the least cloudy valid one of each '
    'window, and ROOT/dates.csv lists them: index.csv keeps one row per point '
    '(its earliest image), so single-date readers load the dataset unchanged. '
    'Exit status 1 if fewer patches than asked for were made.'
)


class _Given(argparse.Action):
    """Store the value and note the option in ``namespace.given``.

    A value equal to the default is still told apart from none given, so that
    ``--start`` beside ``--windows`` is refused even when it repeats the
    default.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = (*getattr(namespace, 'given', ()), option_string)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``build`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'build',
        help='build an S2-100K-style dataset from the Planetary Computer',
        description=DESCRIPTION,
        parents=[_common.seed(BUILD, 'seed of the points'), _common.quiet()],
    )
    parser.add_argument('root', help='output directory')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='also log retries and skipped points (above the progress bar)',
    )
    parser.add_argument(
        '--num-samples', type=int, required=True, help='number of patches wanted'
    )
    parser.add_argument(
        '--region', default=None, help='GeoJSON file: sample only inside its polygons'
    )
    parser.add_argument(
        '--include-water',
        action='store_true',
        help='do not restrict the points to land (global-land-mask)',
    )
    # Options passed to build_dataset as they are, with its defaults.
    options: list[tuple[str, str, str, dict[str, Any]]] = [
        ('--start', 'start', 'first date, ISO 8601', {'action': _Given}),
        ('--end', 'end', 'last date, ISO 8601', {'action': _Given}),
        (
            '--max-cloud-cover',
            'max_cloud_cover',
            'keep scenes with eo:cloud_cover below this, in %%',
            {'type': float},
        ),
        ('--size', 'size', 'patch side in 10 m pixels', {'type': int}),
        (
            '--max-nodata',
            'max_nodata_fraction',
            'reject patches with more nodata than this fraction',
            {'type': float},
        ),
        (
            '--items-per-point',
            'items_per_point',
            'scenes tried per point, least cloudy first, before rejecting it '
            '(for nodata or a flawed scene); at most 500',
            {'type': int},
        ),
        (
            '--resampling',
            'resampling',
            'resampling of the 20 m and 60 m bands',
            {'choices': BUILD.choices('resampling')},
        ),
        ('--workers', 'workers', 'concurrent samples', {'type': int}),
        (
            '--max-retries',
            'max_retries',
            'retries of a transient error before a sample is skipped',
            {'type': int},
        ),
        (
            '--backoff',
            'backoff',
            'first retry delay in seconds, doubled each retry',
            {'type': float},
        ),
        ('--timeout', 'timeout', 'HTTP time-out in seconds', {'type': float}),
        ('--collection', 'collection', 'STAC collection', {}),
    ]
    for flag, parameter, text, kwargs in options:
        _common.option(parser, flag, BUILD, parameter, text, **kwargs)
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        '--dates',
        type=int,
        default=BUILD.default('dates'),
        metavar='K',
        help='images per point: split --start..--end (whole UTC days) into K '
        'equal windows and take the least cloudy valid scene of each (default: '
        f'{_common.shown(BUILD.default("dates"))}, one image per point and no '
        'dates.csv)',
    )
    when.add_argument(
        '--windows',
        nargs='+',
        default=BUILD.default('windows'),
        metavar='START/END',
        help='explicit acquisition windows instead of --dates, in order and not '
        'overlapping, both days included, e.g. 2021-03-01/2021-05-31 '
        '2021-06-01/2021-08-31 (then leave --start and --end out)',
    )
    parser.add_argument(
        '--min-dates',
        type=int,
        default=BUILD.default('min_dates'),
        metavar='N',
        help='windows that must give a scene for a point to be kept; points with '
        'fewer are rejected as few_dates (default: 2, or 1 with a single window)',
    )
    parser.add_argument(
        '--max-candidates',
        type=int,
        default=BUILD.default('max_candidates'),
        help='points tried at most in this run (default: 4 x num-samples + 100)',
    )
    api_url = constant(
        'torchgeo_satclip.builders.planetary_computer', 'DEFAULT_API_URL'
    )
    parser.add_argument(
        '--api-url',
        default=None,
        help=f'STAC API (default: the Planetary Computer, {api_url})',
    )
    parser.add_argument(
        '--no-sign',
        action='store_true',
        help='do not sign asset URLs with planetary_computer (other STAC APIs)',
    )
    parser.set_defaults(func=run, given=())


def run(args: argparse.Namespace) -> int:
    """Build the dataset: :func:`~torchgeo_satclip.builders.build_dataset`.

    Args:
        args: the parsed ``build`` arguments.

    Returns:
        The exit status: 1 if the dataset is incomplete (another build holding
        its lock raises :class:`~torchgeo_satclip.builders.BuildLockedError`,
        which the command line reports with exit status 1).

    Raises:
        ValueError: if --start or --end is given with --windows (the windows
            are the dates; the library cannot tell a repeated default).
    """
    if args.windows is not None and args.given:
        given = ' and '.join(dict.fromkeys(args.given))
        raise ValueError(
            f'{given} with --windows: the windows give the acquisition dates, '
            f'so leave {given} out'
        )
    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    from ..builders import build_dataset

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    level = logging.INFO if args.verbose else logging.WARNING
    logging.getLogger('torchgeo_satclip').setLevel(level)
    # Options left out take build_dataset's defaults (an empty --api-url too).
    kwargs: dict[str, Any] = {'sign': None} if args.no_sign else {}
    if args.api_url:
        kwargs['api_url'] = args.api_url
    with logging_redirect_tqdm():
        result = build_dataset(
            args.root,
            args.num_samples,
            seed=args.seed,
            start=args.start,
            end=args.end,
            max_cloud_cover=args.max_cloud_cover,
            region=args.region,
            land=not args.include_water,
            collection=args.collection,
            size=args.size,
            max_nodata_fraction=args.max_nodata,
            items_per_point=args.items_per_point,
            resampling=args.resampling,
            dates=args.dates,
            windows=args.windows,
            min_dates=args.min_dates,
            workers=args.workers,
            max_retries=args.max_retries,
            backoff=args.backoff,
            timeout=args.timeout,
            max_candidates=args.max_candidates,
            progress=not args.quiet,
            **kwargs,
        )
    rejected = ', '.join(f'{n} {why}' for why, n in sorted(result.rejected.items()))
    print(
        f'{result.num_samples} of {result.target} patches in {result.root} '
        f'({result.num_written} written now, {result.num_resumed} resumed, '
        f'{result.num_adopted} recovered); points rejected: {rejected or "none"}; '
        f'failed: {result.num_failed}; {result.seconds:.1f} s'
    )
    if args.windows or args.dates > 1:
        print(f'{result.num_images} images written now; every image in dates.csv')
    if not result.complete:
        print('incomplete: re-run the same command to continue', file=sys.stderr)
        return 1
    return 0
