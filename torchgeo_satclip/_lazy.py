"""Lazy re-exports (PEP 562): names a module imports from another on first use.

So that importing a module does not import what only some of its names need
(``torchgeo-satclip --help`` imports no torch; ``embed`` from a checkpoint
file imports no torchvision).
"""

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ['lazy_exports']


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a module with lazy re-exports.

    Args:
        namespace: the module's ``globals()``; a name, once imported, is
            cached there, so each is imported once.
        exports: name -> module it is imported from (relative to the
            module's package when it starts with ``.``).

    Returns:
        ``(__getattr__, __dir__)``, to assign to the module's names.
    """
    module = namespace['__name__']
    package = namespace['__package__']

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f'module {module!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *namespace.get('__all__', ()), *exports})

    return getattr_, dir_
