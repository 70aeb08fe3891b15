"""The floor plan of docs/architecture.md, checked on the source.

Every import between the package's parts (module level, inside functions and
under ``TYPE_CHECKING`` alike) is read from the syntax tree and must go down
the floor plan or stay in its own part; no part imports another part's
private module or private name. There is no list of exceptions.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = 'torchgeo_satclip'
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: Floors, bottom first. A part may import parts of lower floors only.
#: ``_io``, ``_errors``, ``_checks``, ``_lazy``, ``_compat`` and ``_nn`` are
#: the package's own plumbing (atomic writes, the base of errors whose message
#: says everything, argument checks, lazy re-exports, the torchgeo 0.8/0.10
#: differences, a caller's module borrowed in eval mode); ``geo`` knows points
#: and maps, nothing else.
PLUMBING = ('_io', '_errors', '_checks', '_lazy', '_compat', '_nn')
FLOORS: tuple[tuple[str, ...], ...] = (
    (*PLUMBING, 'geo'),
    ('models', 'datasets'),
    ('transforms', 'datamodules', 'builders', 'embed'),
    ('tasks', 'evaluation'),
    ('__init__',),
    ('cli',),
)
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}


@dataclass(frozen=True)
class Edge:
    """One import of ``target`` (a dotted module, maybe with a name) in ``source``."""

    source: str  # dotted module that imports
    target: str  # dotted module imported from
    name: str | None  # the name imported from it (``from m import name``)
    line: int

    def __str__(self) -> str:
        what = f'{self.target}.{self.name}' if self.name else self.target
        return f'{self.source}:{self.line} imports {what}'


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def iter_edges(root: Path) -> Iterator[Edge]:
    """Every import of the package by itself, relative ones resolved."""
    for path in sorted(root.rglob('*.py')):
        source = module_name(path, root)
        package = source if path.name == '__init__.py' else source.rpartition('.')[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split('.')[0] == root.name:
                        yield Edge(source, alias.name, None, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')
                    base = base[: len(base) - (node.level - 1)]
                    target = '.'.join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ''
                if target.split('.')[0] != root.name:
                    continue
                for alias in node.names:
                    yield Edge(source, target, alias.name, node.lineno)


def part_of(module: str) -> str:
    """The part (subpackage or top-level module) a dotted module belongs to."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def violations(root: Path) -> list[str]:
    found = []
    for edge in iter_edges(root):
        source, target = part_of(edge.source), part_of(edge.target)
        if edge.name is not None and edge.target == root.name:
            # ``from torchgeo_satclip import models``: the part is the name,
            # unless it is a name defined by the package's ``__init__``.
            is_part = (root / edge.name).is_dir() or (root / f'{edge.name}.py').exists()
            target = edge.name if is_part else '__init__'
        if source not in FLOOR:
            found.append(f'{edge}: {source!r} is not on the floor plan')
            continue
        if target not in FLOOR:
            found.append(f'{edge}: {target!r} is not on the floor plan')
            continue
        if source == target:
            continue
        if FLOOR[target] >= FLOOR[source]:
            found.append(
                f'{edge}: {source} (floor {FLOOR[source]}) may not import '
                f'{target} (floor {FLOOR[target]})'
            )
        inner = edge.target.split('.')[2:]  # below the part
        if target not in PLUMBING and any(p.startswith('_') for p in inner):
            found.append(f"{edge}: another part's private module")
        dunder = (
            edge.name is not None
            and edge.name.startswith('__')
            and edge.name.endswith('__')
        )
        if edge.name and edge.name.startswith('_') and not dunder:
            found.append(f"{edge}: another part's private name")
    return found


def test_the_package_follows_the_floor_plan() -> None:
    assert violations(ROOT) == []


def test_every_part_is_on_the_floor_plan() -> None:
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()}
    parts = {p for p in parts if not p.startswith(('.', '__pycache__'))}
    parts.discard('py')  # py.typed
    missing = {p for p in parts if (ROOT / p).is_dir() or (ROOT / f'{p}.py').exists()}
    assert missing - set(FLOOR) == set()


def test_geo_imports_nothing_of_the_package() -> None:
    assert [
        str(e)
        for e in iter_edges(ROOT)
        if part_of(e.source) == 'geo' and part_of(e.target) != 'geo'
    ] == []


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


@pytest.mark.parametrize(
    ('files', 'expected'),
    [
        # An upward import hidden inside a function.
        (
            {
                'datasets/demo.py': 'def f():\n    from ..evaluation.tasks import g\n',
                'evaluation/tasks.py': '',
            },
            'torchgeo_satclip.datasets.demo:2 imports '
            'torchgeo_satclip.evaluation.tasks.g: datasets (floor 1) may not '
            'import evaluation (floor 3)',
        ),
        # Sideways, on the same floor.
        (
            {'models/a.py': 'from torchgeo_satclip.datasets import S\n'},
            'models (floor 1) may not import datasets (floor 1)',
        ),
        # Down the floors, but into a private module.
        (
            {'builders/b.py': 'from ..datasets._files import BANDS\n'},
            "another part's private module",
        ),
        # Down the floors, but a private name.
        (
            {'tasks/t.py': 'from ..models.weights import _hparams\n'},
            "another part's private name",
        ),
        # geo is the bottom: it may import nothing else.
        (
            {'geo/__init__.py': 'import torchgeo_satclip.models\n'},
            'geo (floor 0) may not import models (floor 1)',
        ),
        # A new part must be placed on the plan.
        (
            {'newpart/x.py': 'from ..geo import f\n'},
            "'newpart' is not on the floor plan",
        ),
        # A name that the package's __init__ defines is on the __init__ floor.
        (
            {'models/m.py': 'from .. import __version__\n'},
            'models (floor 1) may not import __init__ (floor 4)',
        ),
    ],
)
def test_the_check_finds(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = violations(write(tmp_path, files))
    assert any(expected in v for v in found), found


def test_the_check_allows(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            '__init__.py': 'from .models import LocationEncoder\n',
            'models/__init__.py': 'from .weights import load\nfrom ..geo import f\n',
            'models/weights.py': 'from ._private import x\nfrom .._io import atomic_path\n',
            'tasks/t.py': 'from ..models import load\nfrom ..transforms.location import g\n',
            'cli.py': 'def main():\n    from .embed import embed_file\n',
        },
    )
    assert violations(root) == []
