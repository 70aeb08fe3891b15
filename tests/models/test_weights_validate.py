"""The factory's ``validate`` (``satclip_location_encoder(validate=)``).

Input validation is a property of the encoder, not of its architecture: the
factory turns it on or off for a new encoder and for loaded weights alike.
"""

import re
from pathlib import Path

import pytest
import torch

from torchgeo_satclip.models import (
    LocationEncoder,
    build_location_encoder,
    satclip_location_encoder,
)

from .test_weights import official_checkpoint

#: A latitude out of range: refused only by a validating encoder.
BAD = torch.tensor([[0.0, 95.0]], dtype=torch.float64)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An official-layout checkpoint file (random weights, L = 3)."""
    path = tmp_path / 'satclip.ckpt'
    torch.save(official_checkpoint(legendre_polys=3, capacity=8, embed_dim=4), path)
    return path


def test_loaded_weights_can_be_built_without_validation(checkpoint: Path) -> None:
    encoder = satclip_location_encoder(weights=checkpoint, validate=False)
    assert encoder.validate is False
    with torch.no_grad():
        out = encoder(BAD)  # not refused: no check
    assert out.shape == (1, 4)


def test_loaded_weights_from_a_state_dict_without_validation() -> None:
    state = official_checkpoint(legendre_polys=3, capacity=8, embed_dim=4)
    assert satclip_location_encoder(weights=state, validate=False).validate is False


def test_loaded_weights_validate_by_default(checkpoint: Path) -> None:
    for encoder in (
        satclip_location_encoder(weights=checkpoint),
        satclip_location_encoder(weights=checkpoint, validate=True),
    ):
        assert encoder.validate is True
        with pytest.raises(ValueError, match='latitude'):
            encoder(BAD)


def test_validation_does_not_change_the_weights(checkpoint: Path) -> None:
    checked = satclip_location_encoder(weights=checkpoint)
    unchecked = satclip_location_encoder(weights=checkpoint, validate=False)
    good = torch.tensor([[2.35, 48.86], [-180.0, -90.0]], dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(checked(good), unchecked(good))


@pytest.mark.parametrize('validate', [True, False])
def test_new_encoder_takes_validate(validate: bool) -> None:
    encoder = satclip_location_encoder(legendre_polys=3, validate=validate)
    assert encoder.validate is validate
    assert satclip_location_encoder().validate is True


@pytest.mark.parametrize('value', [0, 1, 'no'])
def test_validate_must_be_a_bool(checkpoint: Path, value: object) -> None:
    message = f'validate must be True or False, got {value!r}'
    for weights in (None, checkpoint):
        with pytest.raises(ValueError, match=f'^{re.escape(message)}'):
            satclip_location_encoder(weights, validate=value)  # type: ignore[arg-type]


def test_bad_validate_is_refused_before_reading_the_file(tmp_path: Path) -> None:
    missing = tmp_path / 'missing.ckpt'
    with pytest.raises(ValueError, match='validate must be True or False'):
        satclip_location_encoder(missing, validate='yes')  # type: ignore[arg-type]


def test_validate_is_refused_with_a_built_encoder() -> None:
    built = build_location_encoder(legendre_polys=3)
    with pytest.raises(ValueError, match=r'validate=False cannot be applied'):
        satclip_location_encoder(built, validate=False)
    assert built.validate is True  # the caller's encoder is left as it was
    assert satclip_location_encoder(built) is built


def test_validate_is_no_architecture_argument() -> None:
    """It reaches the encoder, not build_location_encoder's **posenc_kwargs."""
    encoder = satclip_location_encoder(
        positional_encoding='wrap', network='linear', validate=False
    )
    assert isinstance(encoder, LocationEncoder)
    assert encoder.validate is False
