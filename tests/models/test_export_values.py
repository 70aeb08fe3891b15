"""save_official_checkpoint writes only what torch.load(weights_only=True) reads."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from torchgeo_satclip.models import (
    build_location_encoder,
    load_location_encoder,
    save_official_checkpoint,
)

POINTS = torch.tensor([[2.35, 48.86], [-74.0, 40.71]], dtype=torch.float64)
IMAGE = {'vision_layers': 'moco_resnet18'}


def small() -> Any:
    torch.manual_seed(0)
    return build_location_encoder(legendre_polys=3, capacity=8, embed_dim=4).eval()


@pytest.mark.parametrize(
    ('key', 'value', 'kind'),
    [
        ('image_resolution', Path('224'), 'PosixPath|WindowsPath'),
        ('learning_rate', torch.tensor(1e-4), 'Tensor'),
        ('vision_width', object(), 'object'),
        ('weight_decay', [0.01, np.float64(0.1)], 'list'),
    ],
)
def test_hyper_parameters_that_no_loader_reads_are_refused(
    tmp_path: Path, key: str, value: object, kind: str
) -> None:
    # The file was written (pickling the object), and then every
    # weights_only loader, load_location_encoder among them, refused it as
    # "loading it would run code (it calls pathlib.PosixPath)".
    path = tmp_path / 'x.ckpt'
    with pytest.raises(
        ValueError, match=rf"^hyper_parameters\['{key}'\] is a ({kind}) .*expected"
    ):
        save_official_checkpoint(small(), path, hyper_parameters={key: value})
    assert list(tmp_path.iterdir()) == []


def test_numpy_scalars_are_written_as_python_numbers(tmp_path: Path) -> None:
    # A learning rate or a size from a NumPy computation (a sweep, a config
    # read with NumPy) was pickled as numpy.float64 / numpy.int64: the file
    # was refused by load_location_encoder ("it calls numpy._core.
    # multiarray.scalar"), by TorchGeo and by RANGE alike.
    given = {
        'image_resolution': np.int64(224),
        'learning_rate': np.float64(1e-4),
        'eval_downstream': np.bool_(False),
    }
    encoder = small()
    path = save_official_checkpoint(encoder, tmp_path / 'x.ckpt', given)
    hparams = torch.load(path, weights_only=True)['hyper_parameters']
    assert hparams['image_resolution'] == 224
    assert type(hparams['image_resolution']) is int
    assert hparams['learning_rate'] == 1e-4
    assert type(hparams['learning_rate']) is float
    assert hparams['eval_downstream'] is False
    assert torch.equal(load_location_encoder(path)(POINTS), encoder(POINTS))


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (
            {'model.visual.conv1.weight': np.zeros((2, 2))},
            r"^extra_state\['model\.visual\.conv1\.weight'\] is a ndarray, "
            'expected a tensor',
        ),
        (
            {'model.visual.conv1.weight': 1.5},
            r"^extra_state\['model\.visual\.conv1\.weight'\] is a float, "
            'expected a tensor',
        ),
        (
            {1: torch.zeros(1), 'model.visual.conv1.weight': torch.zeros(1)},
            r'^extra_state key 1 is a int, expected a string',
        ),
    ],
)
def test_extra_state_holds_tensors_under_names(
    tmp_path: Path, extra: dict[Any, Any], message: str
) -> None:
    # A NumPy array was written and the file refused by every weights_only
    # loader; a float was written where the official code loads a tensor
    # strictly; a key that is not a string failed with AttributeError
    # ("'int' object has no attribute 'startswith'").
    path = tmp_path / 'x.ckpt'
    with pytest.raises(ValueError, match=message):
        save_official_checkpoint(
            small(),
            path,
            hyper_parameters=IMAGE,
            extra_state={'model.logit_scale': torch.tensor(1.0), **extra},
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ('encoder', 'hint'),
    [
        ('satclip.ckpt', 'load_location_encoder'),
        (torch.nn.Linear(2, 4), 'load_location_encoder'),
    ],
)
def test_encoder_that_is_not_a_location_encoder_is_named(
    tmp_path: Path, encoder: object, hint: str
) -> None:
    # AttributeError: 'str' object has no attribute 'posenc': a checkpoint
    # path passed for the encoder (to convert a file) was not named as such.
    with pytest.raises(
        TypeError, match=rf'^encoder must be a LocationEncoder, got .*{hint}'
    ):
        save_official_checkpoint(encoder, tmp_path / 'x.ckpt')  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
