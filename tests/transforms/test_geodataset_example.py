"""The GeoDataset example of docs/geodataset.md, run verbatim."""

import re
from pathlib import Path

import pytest
import torch

from torchgeo_satclip.models import build_location_encoder, save_official_checkpoint

from .test_location import PARIS, write_utm_tif

PAGE = Path(__file__).parents[2] / 'docs' / 'geodataset.md'


def test_the_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r'```python\n(.*?)```', PAGE.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'data' / 'rasters').mkdir(parents=True)
    write_utm_tif(tmp_path / 'data' / 'rasters' / 'paris.tif', PARIS)
    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=3, capacity=16, embed_dim=256)
    save_official_checkpoint(encoder, tmp_path / 'satclip-resnet18-l10.ckpt')
    namespace: dict[str, object] = {}
    exec(compile(block, str(PAGE), 'exec'), namespace)
    features = namespace['features']
    assert isinstance(features, torch.Tensor)
    assert features.shape == (4, 256)
    assert features.dtype == torch.float32
    # Every sample's box lies around Paris: its embedding is Paris's, to the
    # few metres a random 8-pixel window moves the centre.
    paris = encoder.eval()(torch.tensor([PARIS], dtype=torch.float64)).float()
    torch.testing.assert_close(features, paris.expand(4, -1), atol=1e-3, rtol=1e-3)
