"""What several subcommands share: parent parsers of the common options.

Each factory returns a parent parser (``add_help=False``) for
``add_parser(..., parents=[...])``: the option's name, action and help are
written once here, and its default is read from the library function that the
subcommand calls (see :mod:`torchgeo_satclip.cli._signatures`), never torch.

:func:`terminate_cleanly` turns SIGTERM into an exception while a subcommand
runs, so that its temporary files are removed as on an error.
"""

import argparse
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeAlias

from ._signatures import StaticSignature

__all__ = [
    'Subparsers',
    'Terminated',
    'columns',
    'option',
    'overwrite',
    'quiet',
    'seed',
    'shown',
    'terminate_cleanly',
]

#: What ``ArgumentParser.add_subparsers`` returns.
Subparsers: TypeAlias = 'argparse._SubParsersAction[argparse.ArgumentParser]'


def shown(value: Any) -> str:
    """A default as help text shows it: ``20`` for 20.0, ``a b`` for ``('a', 'b')``.

    Args:
        value: the default.

    Returns:
        Its text.
    """
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, list | tuple):
        return ' '.join(shown(v) for v in value)
    return str(value)


def option(
    parser: argparse.ArgumentParser,
    flag: str,
    source: StaticSignature,
    parameter: str,
    text: str,
    *,
    effective: Any = None,
    **kwargs: Any,
) -> None:
    """Add an option whose default is that of a library function's parameter.

    Args:
        parser: the (sub)command's parser.
        flag: the option, e.g. ``'--batch-size'``.
        source: the library function the option is passed to.
        parameter: its parameter, e.g. ``'batch_size'``.
        text: the help text, to which ``(default: ...)`` is appended.
        effective: for a parameter whose default is None (not given: the
            library picks a value, or refuses the option in some uses), the
            value the library then uses, shown as the default.
        **kwargs: further arguments of ``add_argument`` (``type``, ``choices``).
    """
    default = source.default(parameter)
    help = f'{text} (default: {shown(default if effective is None else effective)})'
    parser.add_argument(flag, default=default, help=help, **kwargs)


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def quiet() -> argparse.ArgumentParser:
    """``--quiet``: no progress bar nor progress lines (``progress=not quiet``).

    The results are still written and printed.

    Returns:
        The parent parser.
    """
    parser = _parent()
    parser.add_argument(
        '--quiet',
        action='store_true',
        help='no progress bar nor progress lines (results are still printed)',
    )
    return parser


def overwrite(what: str) -> argparse.ArgumentParser:
    """``--overwrite``: replace an existing output.

    Args:
        what: the help text, saying what is replaced.

    Returns:
        The parent parser.
    """
    parser = _parent()
    parser.add_argument('--overwrite', action='store_true', help=what)
    return parser


def seed(
    source: StaticSignature, what: str = 'random seed', *, effective: Any = None
) -> argparse.ArgumentParser:
    """``--seed``, defaulting to the ``seed`` parameter of ``source``.

    Args:
        source: the library function the seed is passed to.
        what: the help text before the default, saying what is seeded.
        effective: the seed the library uses when its default is None (see
            :func:`option`).

    Returns:
        The parent parser.
    """
    parser = _parent()
    option(parser, '--seed', source, 'seed', what, effective=effective, type=int)
    return parser


def columns(source: StaticSignature, of: str = '') -> argparse.ArgumentParser:
    """``--lon-column`` and ``--lat-column``, defaulting to those of ``source``.

    Args:
        source: the library function with ``lon_column`` and ``lat_column``.
        of: what the columns belong to, e.g. ``' of --csv'`` (default: the input).

    Returns:
        The parent parser.
    """
    parser = _parent()
    for axis, name in (('lon', 'longitude'), ('lat', 'latitude')):
        text = f'{name} column{of}, degrees'
        option(parser, f'--{axis}-column', source, f'{axis}_column', text)
    return parser


class Terminated(SystemExit):
    """SIGTERM arrived while a subcommand ran; the code is 128 + the signal."""


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs.

    The exception unwinds the work like an error, so that every temporary
    file is removed and no output is left half-written; the exit status is
    143 (128 + SIGTERM), as a shell reports a command that SIGTERM ended.
    The previous handler is put back afterwards. Off the main thread (where
    Python cannot set a handler) signals are left alone. A process forked
    inside the block (a data loader's worker) is ended by SIGTERM as before.

    Yields:
        Nothing.
    """
    owner = os.getpid()
    previous: Any = None

    def stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == owner:
            raise Terminated(128 + signum)
        if callable(previous):  # a forked process: what it did before
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
