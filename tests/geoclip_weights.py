"""GeoCLIP weights for the tests: random ones in its layout, a fake installed copy.

Nothing is downloaded: :func:`random_geoclip_state` draws a state dict in
GeoCLIP's layout and :func:`make_fake_distribution` lays it out as an
installed ``geoclip`` distribution (found by ``importlib.metadata``; its
package raises if anything imports it).
"""

import math
from pathlib import Path

import torch

from torchgeo_satclip.models import find_geoclip_weights

__all__ = [
    'SIGMAS',
    'installed_geoclip_weights',
    'make_fake_distribution',
    'random_geoclip_state',
]

SIGMAS = (2.0**0, 2.0**4, 2.0**8)


def random_geoclip_state(
    encoded_size: int = 256,
    capacity: int = 1024,
    embed_dim: int = 512,
    hidden_layers: int = 3,
    sigmas: tuple[float, ...] = SIGMAS,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A state dict in GeoCLIP's layout, float32 as the released file."""
    gen = torch.Generator().manual_seed(seed)

    def linear(dim_out: int, dim_in: int) -> tuple[torch.Tensor, torch.Tensor]:
        bound = 1.0 / math.sqrt(dim_in)  # PyTorch's default Linear init
        weight = (torch.rand(dim_out, dim_in, generator=gen) * 2 - 1) * bound
        bias = (torch.rand(dim_out, generator=gen) * 2 - 1) * bound
        return weight, bias

    state: dict[str, torch.Tensor] = {}
    for i, sigma in enumerate(sigmas):
        prefix = f'LocEnc{i}.'
        state[prefix + 'capsule.0.b'] = (
            torch.randn(encoded_size, 2, generator=gen) * sigma
        )
        dim_in = 2 * encoded_size
        for j in range(hidden_layers):
            k = 2 * j + 1
            weight, bias = linear(capacity, dim_in)
            state[f'{prefix}capsule.{k}.weight'] = weight
            state[f'{prefix}capsule.{k}.bias'] = bias
            dim_in = capacity
        weight, bias = linear(embed_dim, capacity)
        state[prefix + 'head.0.weight'] = weight
        state[prefix + 'head.0.bias'] = bias
    return state


def make_fake_distribution(
    root: Path, state: dict[str, torch.Tensor] | None, with_record: bool = True
) -> Path:
    """An installed 'geoclip' distribution whose package cannot be imported."""
    package = root / 'geoclip'
    (package / 'model' / 'weights').mkdir(parents=True)
    (package / '__init__.py').write_text(
        "raise ImportError('geoclip must not be imported by torchgeo_satclip')\n"
    )
    info = root / 'geoclip-1.3.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: geoclip\nVersion: 1.3.0\n'
    )
    weights = package / 'model' / 'weights' / 'location_encoder_weights.pth'
    lines = ['geoclip/__init__.py,,']
    if state is not None:
        torch.save(state, weights)
        lines.append('geoclip/model/weights/location_encoder_weights.pth,,')
    if with_record:
        (info / 'RECORD').write_text('\n'.join(lines) + '\n')
    return weights


def installed_geoclip_weights() -> Path | None:
    """The weights of a really installed geoclip distribution, or None."""
    try:
        return find_geoclip_weights()
    except LookupError:
        return None
