import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

from torchgeo_satclip.cli import _signatures
from torchgeo_satclip.cli._signatures import StaticSignature, constant

PACKAGE = Path(_signatures.__file__).parents[1]
MODULES = [
    'torchgeo_satclip.embed.pipeline',
    'torchgeo_satclip.embed.read',
    'torchgeo_satclip.evaluation.report',
    'torchgeo_satclip.models.location_encoder',
    'torchgeo_satclip.models.weights',
    'torchgeo_satclip.models.released',
    'torchgeo_satclip.datasets.pack',
    'torchgeo_satclip.datasets.demo',
    'torchgeo_satclip.builders.planetary_computer',
    'torchgeo_satclip.evaluation.probe',
    'torchgeo_satclip.evaluation.tasks',
    'torchgeo_satclip.evaluation.plots',
]


def functions(module: str) -> list[str]:
    path = PACKAGE.joinpath(*module.split('.')[1:]).with_suffix('.py')
    tree = ast.parse(path.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


def check_static_signatures(module: str) -> int:
    """Compare the static reading of every function of *module* with the import.

    Returns:
        The number of defaults compared.
    """
    imported = importlib.import_module(module)
    checked = 0
    for name in functions(module):
        function = getattr(imported, name)
        signature = StaticSignature(module, name)
        try:
            hints = typing.get_type_hints(function)
        except TypeError:  # an annotation that does not evaluate (tqdm['int'])
            hints = {}
        for parameter in inspect.signature(function).parameters.values():
            if parameter.default is not inspect.Parameter.empty:
                assert signature.default(parameter.name) == parameter.default
                checked += 1
            annotation = hints.get(parameter.name)
            while typing.get_args(annotation) and (
                typing.get_origin(annotation) is not typing.Literal
            ):
                annotation = typing.get_args(annotation)[0]
            if typing.get_origin(annotation) is typing.Literal:
                choices = typing.get_args(annotation)
                assert signature.choices(parameter.name) == choices, parameter
    return checked


@pytest.mark.parametrize('module', MODULES)
def test_static_defaults_and_choices_match_the_imported_functions(
    module: str,
) -> None:
    assert check_static_signatures(module)


def test_reads_source_without_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_import(name: str) -> None:
        raise AssertionError(f'imported {name}')

    monkeypatch.setattr(
        'torchgeo_satclip.cli._signatures.importlib.import_module', no_import
    )
    probe = StaticSignature('torchgeo_satclip.evaluation.probe', 'run_probes')
    assert probe.default('folds') == 5
    assert probe.default('protocols') == ('linear',)
    assert probe.choices('splits') == ('random', 'spatial', 'range')
    # Split is imported by evaluation.report from evaluation.probe: followed there.
    report = StaticSignature('torchgeo_satclip.evaluation.report', 'probe_report')
    assert report.choices('splits') == ('random', 'spatial', 'range')
    # A function re-exported by a package's __init__: followed to its module,
    # whose own names (the Layout alias) are then looked up there.
    embed_file = StaticSignature('torchgeo_satclip.embed', 'embed_file')
    assert embed_file.default('batch_size') == 65536
    assert embed_file.choices('layout') == ('columns', 'list')
    build = StaticSignature(
        'torchgeo_satclip.builders.planetary_computer', 'build_dataset'
    )
    # A default that is a module constant.
    assert build.default('collection') == 'sentinel-2-l2a'
    assert constant('torchgeo_satclip.builders', 'DEFAULT_API_URL') == constant(
        'torchgeo_satclip.builders.planetary_computer', 'DEFAULT_API_URL'
    )
    assert 'build_dataset' in repr(build)


def test_falls_back_to_the_imported_function(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    encoder = StaticSignature(
        'torchgeo_satclip.models.location_encoder', 'build_location_encoder'
    )
    assert encoder.default('dtype') is torch.float64  # not a literal
    monkeypatch.setattr(_signatures, '_source', lambda module: None)  # no source
    embed_file = StaticSignature('torchgeo_satclip.embed', 'embed_file')
    assert embed_file.default('batch_size') == 65536
    assert embed_file.choices('layout') == ('columns', 'list')
    assert constant('torchgeo_satclip.embed', 'OUTPUT_FORMATS')[0] == '.parquet'


def test_errors() -> None:
    embed_file = StaticSignature('torchgeo_satclip.embed', 'embed_file')
    with pytest.raises(LookupError, match='no default'):
        embed_file.default('encoder')
    with pytest.raises(KeyError):
        embed_file.default('nope')
    with pytest.raises(TypeError, match='not a Literal'):
        embed_file.choices('batch_size')


def test_the_last_definition_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Python binds it: the implementation after ``@overload`` stubs (whose
    defaults are ``...``), the later of two definitions."""
    source = """
from typing import overload

@overload
def f(x: int, n: int = ...) -> int: ...
@overload
def f(x: str, n: int = ...) -> str: ...
def f(x, n=3):
    return x

def g(a=1):
    return a

def g(a=2):
    return a
"""
    real = _signatures._source

    def fake(module: str) -> tuple[ast.Module, bool] | None:
        if module == 'torchgeo_satclip._fake_for_test':
            return ast.parse(source), False
        return real(module)

    monkeypatch.setattr(_signatures, '_source', fake)
    assert StaticSignature('torchgeo_satclip._fake_for_test', 'f').default('n') == 3
    assert StaticSignature('torchgeo_satclip._fake_for_test', 'g').default('a') == 2
