"""The documentation builds with Sphinx, warnings as errors."""

from pathlib import Path

import pytest
from sphinx.cmd.build import build_main

DOCS = Path(__file__).parents[1] / 'docs'


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # Sphinx/MyST internals
@pytest.mark.filterwarnings('ignore::PendingDeprecationWarning')
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    status = build_main(
        ['-W', '--keep-going', '-q', '-b', 'html', str(DOCS), str(tmp_path)]
    )
    assert status == 0
    api = (tmp_path / 'api.html').read_text()
    for name in (
        'torchgeo_satclip.models.weights.load_location_encoder',
        'torchgeo_satclip.models.spherical_harmonics.SphericalHarmonics',
        'torchgeo_satclip.datasets.s2_100k.S2100K',
        'torchgeo_satclip.tasks.satclip.SatCLIPTask',
    ):
        assert f'id="{name}"' in api, name


def test_yaml_examples_use_full_class_paths() -> None:
    """Every class_path in the docs and README imports as written."""
    import importlib
    import re

    pages = [*DOCS.glob('*.md'), DOCS.parent / 'README.md']
    found = 0
    for page in pages:
        for path in re.findall(r'class_path:\s*([\w.]+)', page.read_text()):
            module, _, name = path.rpartition('.')
            assert module, f'{page.name}: class_path {path!r} is not a full dotted path'
            assert hasattr(importlib.import_module(module), name), (page.name, path)
            found += 1
    assert found > 0


def test_intersphinx_on_online_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online builds link to torch, torchgeo and lightning; offline ones skip it."""
    import runpy

    offline = runpy.run_path(str(DOCS / 'conf.py'))
    assert 'sphinx.ext.intersphinx' not in offline['extensions']
    monkeypatch.setenv('SATCLIP_DOCS_ONLINE', '1')
    online = runpy.run_path(str(DOCS / 'conf.py'))
    assert 'sphinx.ext.intersphinx' in online['extensions']
    assert {'torch', 'torchgeo', 'lightning'} <= set(online['intersphinx_mapping'])
