"""Import stub of lightly for the GPU benchmark machine.

``torchgeo.tasks`` imports lightly (for its SimCLR/MoCo tasks), which the
machine lacks and the suite never uses: every attribute, submodule and call
of this stub gives another placeholder, and a placeholder can be subclassed.
"""

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any, cast


class _Placeholder:
    """Stands for any object of lightly's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> '_Placeholder':
        return _Placeholder()

    def __getattr__(self, name: str) -> '_Placeholder':
        if name.startswith('__'):
            raise AttributeError(name)
        return _Placeholder()

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)

    def __getitem__(self, item: Any) -> '_Placeholder':
        return _Placeholder()

    def __or__(self, other: Any) -> '_Placeholder':
        return _Placeholder()

    __ror__ = __or__


class _Submodule(types.ModuleType):
    """A ``lightly.*`` module whose attributes are placeholders."""

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith('__'):
            raise AttributeError(name)
        return _Placeholder()


class _Finder:
    """Finds every ``lightly.*`` submodule, as a :class:`_Submodule`."""

    def find_spec(
        self, name: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name.startswith('lightly.'):
            return importlib.machinery.ModuleSpec(
                name, cast(importlib.abc.Loader, self), is_package=True
            )
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _Submodule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


sys.meta_path.insert(0, _Finder())


def __getattr__(name: str) -> _Placeholder:
    if name.startswith('__'):
        raise AttributeError(name)
    return _Placeholder()
