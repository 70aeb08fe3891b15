"""The ``torchgeo-satclip`` command line.

Each subcommand parses its arguments, calls one library function (which the
tests call directly) and prints what it did. Subcommands, one module each:

* ``embed``: embed the points of a CSV, Parquet or GeoJSON file with a
  location encoder (:func:`torchgeo_satclip.embed.embed_points`).
* ``probe``: probe location features on tasks with real labels
  (:func:`torchgeo_satclip.evaluation.probe_report`).
* ``pack``: convert S2-100K GeoTIFFs once to the fast packed layout
  (:func:`torchgeo_satclip.datasets.pack_s2_100k`).
* ``build``: build an S2-100K-style dataset from the Planetary Computer
  (:func:`torchgeo_satclip.builders.build_dataset`).
* ``demo-data``: write an offline demo world
  (:func:`torchgeo_satclip.datasets.demo.make_demo_dataset`).

Building the parser imports no torch (nor numpy): option defaults are read
from the library's source (:mod:`torchgeo_satclip.cli._signatures`) and the
library is imported when a subcommand runs, so ``--help`` and ``--version``
answer at once.
"""

import argparse
import sys
from collections.abc import Sequence

from . import _build, _demo_data, _embed, _pack, _probe

__all__ = ['build_parser', 'main']

#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = (_embed, _probe, _pack, _build, _demo_data)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``torchgeo-satclip`` argument parser.

    Returns:
        The parser with every subcommand.
    """
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog='torchgeo-satclip',
        description='SatCLIP location encoders for TorchGeo.',
    )
    parser.add_argument(
        '--version',
        action='version',
        version=f'%(prog)s {__version__}',
        help="print the package's version and exit",
    )
    parser.add_argument(
        '--debug',
        action='store_true',
        help='on an error, print the traceback instead of one line',
    )
    subparsers = parser.add_subparsers(dest='command', required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


#: Errors of the user's making (a bad value, file or line): exit status 2.
USAGE_ERRORS = (ValueError, FileExistsError, FileNotFoundError)
#: Failures at run time (a full disk, a refused permission): exit status 1.
RUNTIME_ERRORS = (OSError, RuntimeError, MemoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    A user's mistake ends with one line on stderr naming the value, file or
    line and what was expected, and exit status 2; a failure at run time
    (disk full, permission refused) with one line and status 1. ``--debug``
    shows the traceback instead.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except (*USAGE_ERRORS, *RUNTIME_ERRORS) as error:
        if args.debug:
            raise
        print(f'torchgeo-satclip {args.command}: error: {error}', file=sys.stderr)
        return 2 if isinstance(error, USAGE_ERRORS) else 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f'torchgeo-satclip {args.command}: interrupted', file=sys.stderr)
        return 130
    return status
