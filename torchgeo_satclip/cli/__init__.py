"""The ``torchgeo-satclip`` command line.

Each subcommand parses its arguments, calls one library function (which the
tests call directly) and prints what it did. Subcommands, one module each:

* ``embed``: embed the points of a CSV, Parquet or GeoJSON file with a
  location encoder (:func:`torchgeo_satclip.embed.embed_points`).
* ``probe``: probe location features on tasks with real labels
  (:func:`torchgeo_satclip.evaluation.probe_report`).
* ``probe-images``: compare image encoders by a linear probe of the climate
  class on their frozen features
  (:func:`torchgeo_satclip.evaluation.image_probe_report`).
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

Errors: a mistake in the command gets one line naming the value or file and
what was expected, and exit status 2; a failure while working (disk full, a
failed download, a file the data lists but the disk lacks) one line and exit
status 1 (:func:`torchgeo_satclip.cli._preflight.exit_status` has the rule). Paths and ``--device`` are
checked before the subcommand runs (:mod:`torchgeo_satclip.cli._preflight`).
A value the library refuses is named by the option that gave it
(``--batch-size must be at least 1``, not the library's ``batch_size``).
``--debug`` (before or after the subcommand) shows the traceback instead.
"""

import argparse
import os
import select
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._errors import DataError
from . import (
    _build,
    _common,
    _demo_data,
    _embed,
    _pack,
    _preflight,
    _probe,
    _probe_images,
)
from ._preflight import PathRole

__all__ = ['build_parser', 'main']

#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = (_embed, _probe, _probe_images, _pack, _build, _demo_data)

#: The path arguments of each subcommand, ``(dest, label, role)``, checked
#: before it runs (see :func:`torchgeo_satclip.cli._preflight.check_path`).
PATHS: dict[str, tuple[tuple[str, str, PathRole], ...]] = {
    'embed': (('input', 'INPUT', 'input_file'), ('output', 'OUTPUT', 'output_file')),
    'probe': (('output_dir', '--output-dir', 'output_dir'),),
    'probe-images': (
        ('root', 'ROOT', 'input_dataset'),
        ('output_dir', '--output-dir', 'output_dir'),
    ),
    'pack': (('root', 'ROOT', 'dataset_dir'),),
    'build': (('root', 'ROOT', 'output_dir'), ('region', '--region', 'input_file')),
    'demo-data': (('root', 'ROOT', 'output_dir'),),
}

#: What a dataset folder of the command line holds for the subcommand to
#: start: an error that it lacks one of them is a mistake in the command
#: (exit status 2), one about a file its data lists is a fault of the data (1).
DATASET_PARTS: tuple[str, ...] = ('index.csv',)

#: The library parameters of each subcommand named otherwise than the option
#: that sets them, ``{parameter: dest}`` (the others are their option's dest).
PARAMETERS: dict[str, dict[str, str]] = {
    'pack': {'num_workers': 'workers'},
    'build': {'max_nodata_fraction': 'max_nodata'},
    'probe': {'splits': 'cv', 'resolution': 'map_resolution'},
    'demo-data': {'num_patches': 'n'},
    'embed': {'source': 'weights'},
}

_DEBUG_HELP = 'on an error, show the traceback instead of one line'

#: The exit status when the reader of standard output has left (``| head``):
#: 128 + SIGPIPE, as a shell reports a command that a closed pipe ended.
_CLOSED_OUTPUT = 141


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` and exit with status 2.

        Args:
            message: argparse's description of the mistake.
        """
        self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def build_parser() -> argparse.ArgumentParser:
    """Build the ``torchgeo-satclip`` argument parser.

    Returns:
        The parser with every subcommand.
    """
    from .. import __version__

    parser = _Parser(
        prog='torchgeo-satclip',
        description='SatCLIP location encoders for TorchGeo.',
        epilog=(
            'Exit status: 0 on success; 2 for a mistake in the command (a bad '
            'value, a missing input, a dataset folder without index.csv, an '
            'existing output without --overwrite, an output folder that cannot '
            'be written, a device this machine lacks), found before any work '
            'and told in one line; 1 for a failure while working (a full disk, '
            'a failed download, a file the data lists but the disk lacks); 130 '
            'if interrupted; 143 if ended by SIGTERM (as on an error, no '
            'temporary file is left); 141, silently, if the reader of its '
            'output left (| head). --debug shows the traceback.'
        ),
    )
    parser.add_argument(
        '--version',
        action='version',
        version=f'%(prog)s {__version__}',
        help="print the package's version and exit",
    )
    parser.add_argument('--debug', action='store_true', help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest='command', required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    for sub in subparsers.choices.values():
        # also after the subcommand; SUPPRESS keeps a --debug given before it
        sub.add_argument(
            '--debug', action='store_true', default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
        options = {
            action.dest: max(action.option_strings, key=len)
            for action in sub._actions  # argparse has no public list of them
            if action.option_strings and action.dest != argparse.SUPPRESS
        }
        sub.set_defaults(option_flags=options)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, str]:
    """The options that carried a value, by the library parameter they set.

    A library message about a parameter whose option was left at None (not
    given: the library chose) is about something else (a checkpoint's
    architecture), and keeps its name.
    """
    options: dict[str, str] = getattr(args, 'option_flags', {})
    dests = {dest: dest for dest in options}
    dests.update(PARAMETERS.get(args.command, {}))
    return {
        parameter: options[dest]
        for parameter, dest in dests.items()
        if dest in options and getattr(args, dest, None) is not None
    }


def _dataset_parts(args: argparse.Namespace) -> tuple[str, ...]:
    """What the dataset folder of a command line must hold (see DATASET_PARTS).

    ``pack --verify`` checks a packed layout: one that was never completed
    (no ``packed/manifest.json``) was given by mistake.
    """
    if args.command == 'pack' and getattr(args, 'verify', False):
        return (*DATASET_PARTS, 'packed/manifest.json')
    return DATASET_PARTS


def _output_closed() -> bool:
    """Whether standard output is a pipe whose reader has left (``| head``).

    Asked of the pipe itself (``poll`` reports an error on a pipe without
    reader): a broken pipe of the work (a worker process) is a failure to
    report. If so, standard output is pointed at the null device, so that
    the interpreter's last flush does not fail again at exit.
    """
    poll = getattr(select, 'poll', None)
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced or closed
        return False
    if poll is None:  # pragma: no cover - Windows
        return False
    poller = poll()
    poller.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poller.poll(0)):
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    A user's mistake ends with one line on stderr naming the value, file or
    line and what was expected, and exit status 2; a failure at run time
    (disk full, permission refused) with one line and status 1. ``--debug``
    shows the traceback instead.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for a mistake in the command (also
        from argparse), 1 for a failure while working, 130 if interrupted,
        143 if ended by SIGTERM (the subcommand's temporary files removed),
        141 if the reader of standard output left.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f'torchgeo-satclip {args.command}'
    paths = PATHS.get(args.command, ())
    try:
        _preflight.check_paths(args, paths)
        if getattr(args, 'device', None) is not None:
            _preflight.check_device(args.device)
        with _common.terminate_cleanly():  # SIGTERM: temporaries removed
            status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f'{prefix}: interrupted', file=sys.stderr)
        return 130
    except _common.Terminated as stop:
        if args.debug:
            raise
        print(f'{prefix}: terminated', file=sys.stderr)
        return int(stop.code or 1)
    except Exception as error:
        if isinstance(error, BrokenPipeError) and _output_closed():
            return _CLOSED_OUTPUT  # the reader left: nobody to tell
        if args.debug:
            raise
        given = [v for dest, _, _ in paths if (v := getattr(args, dest, None))]
        incomplete = _preflight.lacks_parts(args, paths, _dataset_parts(args))
        status = _preflight.exit_status(error, given, incomplete=incomplete)
        expected = isinstance(error, ValueError | OSError | ImportError | DataError)
        hint = '' if expected else ' (--debug shows the traceback)'
        message = _preflight.describe(error, _preflight.output_of(args, paths))
        if isinstance(error, ValueError):  # the library names its parameters
            message = _preflight.name_flag(message, _flags(args))
        print(f'{prefix}: error: {message}{hint}', file=sys.stderr)
        return status
    return status
