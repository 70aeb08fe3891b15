"""Name lookup shared by the model registries (encodings, networks)."""

from collections.abc import Mapping
from typing import TypeVar

from .._checks import check_name

__all__ = ['lookup']

_T = TypeVar('_T')


def lookup(registry: Mapping[str, _T], name: str, kind: str) -> _T:
    """Return ``registry[name]``, or an error that lists the known names.

    Args:
        registry: names to entries.
        name: the name asked for.
        kind: what the entries are, for the message (``'network'``).

    Returns:
        The entry.

    Raises:
        ValueError: if ``name`` is not a string or is unknown.
    """
    check_name(kind, name)
    try:
        return registry[name]
    except KeyError:
        raise ValueError(
            f'unknown {kind} {name!r}; expected one of {sorted(registry)}'
        ) from None
