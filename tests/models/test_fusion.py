"""The downstream models of :mod:`torchgeo_satclip.models.fusion`."""

import re

import pytest
import torch
from torch import Tensor, nn

from torchgeo_satclip.models import (
    LocationEncoder,
    LocationFusionModel,
    LocationOnlyModel,
    check_location_embedding,
    satclip_location_encoder,
)


def _encoder() -> LocationEncoder:
    return satclip_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)


def _models() -> list[tuple[str, nn.Module]]:
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 5))
    return [
        (
            'fusion',
            LocationFusionModel(backbone, 5, _encoder(), 2, location_input='embedding'),
        ),
        ('only', LocationOnlyModel(_encoder(), 2, location_input='embedding')),
    ]


def _call(kind: str, model: nn.Module, embedding: Tensor) -> Tensor:
    if kind == 'fusion':
        out: Tensor = model(torch.zeros(len(embedding), 3, 2, 2), embedding)
    else:
        out = model(embedding)
    return out


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize(('kind', 'model'), _models(), ids=['fusion', 'only'])
def test_non_finite_precomputed_embedding_is_refused(
    kind: str, model: nn.Module, bad: float
) -> None:
    """A NaN or inf precomputed embedding gave NaN predictions in silence."""
    embedding = torch.randn(3, 4)
    assert torch.isfinite(_call(kind, model, embedding)).all()
    embedding[2, 1] = bad
    message = (
        f'location embedding row 2, column 1 is {bad}: expected finite '
        '(B, 4) embeddings'
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        _call(kind, model, embedding)


def test_check_location_embedding() -> None:
    check_location_embedding(torch.zeros(2, 4), 4)
    check_location_embedding(torch.zeros(0, 4), 4)
    with pytest.raises(
        ValueError, match=re.escape('expects (B, 4) embeddings, got shape (2, 3)')
    ):
        check_location_embedding(torch.zeros(2, 3), 4)
    embedding = torch.zeros(2, 4, dtype=torch.float64)
    embedding[1, 3] = float('nan')
    message = "batch 'location_embedding' row 1, column 3 is nan: expected finite"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_location_embedding(embedding, 4, name="batch 'location_embedding'")


@pytest.mark.parametrize('fusion', ['concat', 'film'])
@pytest.mark.parametrize('location_input', ['lonlat', 'embedding'])
@pytest.mark.parametrize('rows', [1, 2, 6])
def test_one_location_per_image(fusion: str, location_input: str, rows: int) -> None:
    """FiLM broadcast one location over a whole batch of images in silence
    (and concat failed inside torch.cat): the rows must match."""
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 5))
    model = LocationFusionModel(
        backbone, 5, _encoder(), 2, fusion=fusion, location_input=location_input
    )
    if fusion == 'film':
        nn.init.normal_(model.film.weight)  # not the identity it starts as
    images = torch.zeros(4, 3, 2, 2)
    width = 2 if location_input == 'lonlat' else 4
    assert model(images, torch.zeros(4, width)).shape == (4, 2)
    message = (
        f'location has shape ({rows}, {width}) for 4 images: expected one '
        f'location per image, (4, {width})'
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model(images, torch.zeros(rows, width))
