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
