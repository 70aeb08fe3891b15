"""geoclip_location_encoder checks its dtype as every other builder does."""

import pytest
import torch

from torchgeo_satclip.models.geoclip import geoclip_location_encoder

from ..geoclip_weights import random_geoclip_state


@pytest.mark.parametrize('dtype', ['float32', torch.int64, torch.complex64, None])
@pytest.mark.parametrize('weights', [True, False])
def test_dtype_must_be_a_floating_torch_dtype(dtype: object, weights: bool) -> None:
    # With a state dict, dtype went unchecked to nn.Module.to: 'float32' failed
    # as "Invalid device string: 'float32'", torch.int64 as "nn.Module.to
    # only accepts floating point or complex dtypes", and torch.complex64
    # built a complex encoder that failed at its first call ("clamp is not
    # supported for complex types").
    state = random_geoclip_state(8, 16, 4, 2, seed=4) if weights else None
    with pytest.raises(ValueError, match=r'^dtype must be a floating torch dtype'):
        geoclip_location_encoder(state, dtype=dtype)  # type: ignore[arg-type]


def test_floating_dtypes_are_kept() -> None:
    state = random_geoclip_state(8, 16, 4, 2, seed=4)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert geoclip_location_encoder(state, dtype=dtype).dtype == dtype
