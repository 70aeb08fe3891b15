"""A checkpoint whose hyper_parameters name a part of the encoder twice."""

from typing import Any

import pytest
import torch

from torchgeo_satclip.models import (
    CheckpointError,
    Wrap,
    build_location_encoder,
    load_location_encoder,
)


@pytest.mark.parametrize(
    ('hparams', 'message'),
    [
        # wrap and spherical harmonics with L = 2 both take 4 features: the
        # weights loaded under either, and positional_encoding won silently
        (
            {'le_type': 'sphericalharmonics', 'positional_encoding': 'wrap'},
            r"hyper_parameters\['le_type'\] is 'sphericalharmonics' but "
            r"hyper_parameters\['positional_encoding'\] is 'wrap'",
        ),
        # the error was about missing and unexpected keys of an MLP
        (
            {'le_type': 'wrap', 'pe_type': 'siren', 'location_network': 'mlp'},
            r"hyper_parameters\['pe_type'\] is 'siren' but "
            r"hyper_parameters\['location_network'\] is 'mlp'",
        ),
    ],
)
def test_contradicting_names_of_the_architecture(
    hparams: dict[str, Any], message: str
) -> None:
    torch.manual_seed(0)
    encoder = build_location_encoder('wrap', capacity=8, embed_dim=4)
    checkpoint = {'state_dict': encoder.state_dict(), 'hyper_parameters': hparams}
    with pytest.raises(CheckpointError, match=message):
        load_location_encoder(checkpoint)
    # the same name under both keys is one record
    agreed = {'le_type': 'wrap', 'positional_encoding': 'wrap', 'pe_type': 'siren'}
    checkpoint['hyper_parameters'] = {**agreed, 'location_network': 'siren'}
    assert isinstance(load_location_encoder(checkpoint).posenc, Wrap)
