"""What several subcommands share: parent parsers of the common options.

Each factory returns a parent parser (``add_help=False``) for
``add_parser(..., parents=[...])``: the option's name, action and help are
written once here, and its default is read from the library function that the
subcommand calls (see :mod:`torchgeo_satclip.cli._signatures`), never torch.
"""

import argparse
from typing import Any, TypeAlias

from ._signatures import StaticSignature

__all__ = ['Subparsers', 'columns', 'option', 'overwrite', 'quiet', 'seed', 'shown']

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
