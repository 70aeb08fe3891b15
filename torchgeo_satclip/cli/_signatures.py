"""Defaults and choices of library functions, read without importing them.

The command line shows the library's own defaults and choices (``--batch-size``
is :func:`~torchgeo_satclip.embed.embed_file`'s ``batch_size``, ``--layout``
choices its ``Literal`` annotation), so the two cannot drift. Importing the
library modules to ask :func:`inspect.signature` would import torch, which
takes seconds, for ``--help``; so :class:`StaticSignature` reads the
function's source with :mod:`ast` instead (a few milliseconds) and evaluates
literal defaults, module-level literal constants and ``Literal[...]``
annotations. Whatever it cannot read that way (no source, a computed
default), it reads by importing the module: always right, only slower.
"""

import ast
import functools
import importlib
import typing
from pathlib import Path
from typing import Any

__all__ = ['StaticSignature', 'constant']

_PACKAGE = __name__.partition('.')[0]
_ROOT = Path(__file__).resolve().parents[1]
#: Generic containers unwrapped to reach a ``Literal`` (``Sequence[Split]``).
_CONTAINERS = frozenset({'Sequence', 'list', 'tuple', 'Iterable', 'Collection'})
#: Names bound to names bound to ... followed at most this deep.
_MAX_DEPTH = 16


class _NotStatic(Exception):
    """The value is not a literal of the source."""


@functools.cache
def _source(module: str) -> tuple[ast.Module, bool] | None:
    """The syntax tree of a module of this package and whether it is a package."""
    head, _, rest = module.partition('.')
    if head != _PACKAGE:
        return None
    base = _ROOT.joinpath(*rest.split('.')) if rest else _ROOT
    for path, package in (
        (base.parent / f'{base.name}.py', False),
        (base / '__init__.py', True),
    ):
        if path.is_file():
            return ast.parse(path.read_bytes(), str(path)), package
    return None


def _parse(module: str) -> ast.Module | None:
    """The syntax tree of a module of this package, None if it has no source."""
    source = _source(module)
    return source[0] if source is not None else None


@functools.cache
def _bindings(module: str) -> dict[str, ast.expr | tuple[str, str]]:
    """The module-level names of a module of this package, unresolved.

    ``NAME = value`` and ``NAME: T = value`` map to ``value``; ``from .x
    import NAME`` (relative: within this package) maps to ``('pkg.x',
    'NAME')``, followed only when looked up (see :func:`_lookup`).
    """
    source = _source(module)
    if source is None:
        return {}
    tree, package = source
    names: dict[str, ast.expr | tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = module.split('.')
            base = parts[: len(parts) - node.level + package]
            origin = '.'.join([*base, node.module] if node.module else base)
            for alias in node.names:
                names[alias.asname or alias.name] = (origin, alias.name)
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            names[target.id] = value
    return names


def _lookup(module: str, name: str) -> tuple[str, ast.expr]:
    """The expression a module-level name is bound to, and the module binding it.

    Raises:
        _NotStatic: if the name is not bound by an assignment of this package.
    """
    seen = set()
    while (module, name) not in seen:
        seen.add((module, name))
        bound = _bindings(module).get(name)
        if bound is None:
            break
        if isinstance(bound, ast.expr):
            return module, bound
        module, name = bound
    raise _NotStatic(name)


def _literal(node: ast.expr, module: str, depth: int = 0) -> Any:
    """Evaluate a literal, or a module-level name bound to one."""
    if isinstance(node, ast.Name) and depth < _MAX_DEPTH:
        origin, value = _lookup(module, node.id)
        return _literal(value, origin, depth + 1)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _NotStatic(ast.unparse(node)) from None


def _literal_choices(node: ast.expr, module: str, depth: int = 0) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` annotation, through aliases and sequences."""
    if depth >= _MAX_DEPTH:
        raise _NotStatic(ast.unparse(node))
    if isinstance(node, ast.Name):
        origin, value = _lookup(module, node.id)
        return _literal_choices(value, origin, depth + 1)
    if isinstance(node, ast.Subscript):
        name = node.value.attr if isinstance(node.value, ast.Attribute) else None
        if isinstance(node.value, ast.Name):
            name = node.value.id
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name == 'Literal':
            return tuple(_literal(elt, module) for elt in elts)
        if name in _CONTAINERS:
            return _literal_choices(elts[0], module, depth + 1)
    raise _NotStatic(ast.unparse(node))


def _runtime_choices(annotation: Any) -> tuple[Any, ...]:
    """:func:`_literal_choices` for an evaluated annotation."""
    while typing.get_origin(annotation) is not typing.Literal:
        args = typing.get_args(annotation)
        if not args:
            raise TypeError(f'{annotation!r} is not a Literal')
        annotation = args[0]
    return typing.get_args(annotation)


class StaticSignature:
    """The defaults and ``Literal`` choices of one function of this package.

    Example::

        embed_file = StaticSignature('torchgeo_satclip.embed', 'embed_file')
        embed_file.default('batch_size')  # 65536, torch not imported
        embed_file.choices('layout')  # ('columns', 'list')
    """

    def __init__(self, module: str, function: str) -> None:
        """Name a function; nothing is read until asked.

        Args:
            module: dotted module name, e.g. ``'torchgeo_satclip.embed'``.
            function: name of a module-level function of that module.
        """
        self.module = module
        self.function = function

    def __repr__(self) -> str:
        """The function's dotted name."""
        return f'{type(self).__name__}({self.module}.{self.function})'

    def _node(self) -> tuple[str, ast.FunctionDef] | None:
        """The function's definition and its module, through re-exports."""
        module, function, seen = self.module, self.function, set()
        while (module, function) not in seen:
            seen.add((module, function))
            tree = _parse(module)
            # the last definition, as Python binds it: the implementation
            # after its @overload stubs (whose defaults are ``...``)
            for node in reversed(tree.body) if tree is not None else ():
                if isinstance(node, ast.FunctionDef) and node.name == function:
                    return module, node
            bound = _bindings(module).get(function)
            if not isinstance(bound, tuple):
                return None
            module, function = bound  # ``from .x import function``: follow it
        return None

    def _parameter(self, name: str) -> tuple[ast.arg, ast.expr | None, str]:
        found = self._node()
        if found is None:
            raise _NotStatic(self.function)
        module, node = found
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (
            len(positional) - len(args.defaults)
        )
        pairs = zip(
            [*positional, *args.kwonlyargs],
            [*defaults, *args.defaults, *args.kw_defaults],
            strict=True,
        )
        for arg, default in pairs:
            if arg.arg == name:
                return arg, default, module
        raise _NotStatic(name)

    def _runtime(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)

    def default(self, parameter: str) -> Any:
        """The default value of a parameter.

        Args:
            parameter: the parameter's name.

        Returns:
            Its default, read from the source when it is a literal (or a
            module-level constant bound to one), else from the imported function.

        Raises:
            LookupError: if the parameter does not exist or has no default.
        """
        try:
            _, node, module = self._parameter(parameter)
            if node is None:
                raise LookupError(f'{self!r}: {parameter} has no default')
            return _literal(node, module)
        except _NotStatic:
            pass
        import inspect

        value = inspect.signature(self._runtime()).parameters[parameter].default
        if value is inspect.Parameter.empty:
            raise LookupError(f'{self!r}: {parameter} has no default')
        return value

    def choices(self, parameter: str) -> tuple[Any, ...]:
        """The values allowed by a parameter's ``Literal`` annotation.

        Args:
            parameter: the parameter's name; its annotation is ``Literal[...]``,
                a module-level alias of one, or a sequence of either.

        Returns:
            The literal values, in the annotation's order.

        Raises:
            TypeError: if the annotation is not such a ``Literal``.
        """
        try:
            arg, _, module = self._parameter(parameter)
            if arg.annotation is not None:
                return _literal_choices(arg.annotation, module)
        except _NotStatic:
            pass
        hints = typing.get_type_hints(self._runtime())
        return _runtime_choices(hints[parameter])


def constant(module: str, name: str) -> Any:
    """A module-level constant of this package, read as :class:`StaticSignature`.

    Args:
        module: dotted module name.
        name: the constant's name.

    Returns:
        Its value.
    """
    try:
        return _literal(ast.Name(name), module)
    except _NotStatic:
        pass
    return getattr(importlib.import_module(module), name)
