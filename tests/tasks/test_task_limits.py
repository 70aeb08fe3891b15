"""SatCLIPTask's argument checks, on both sides of each limit."""

import math
import re
from typing import Any

import pytest
import torch

from .test_satclip import fixed_batch, tiny_task

pytestmark = pytest.mark.usefixtures('tiny_timm')


@pytest.mark.parametrize(
    'kwargs',
    [
        {'temperature': 1e-6},
        {'logit_scale_max': None},
        {'logit_scale_max': 1e-6},
        {'logit_scale_max': 100},
        {'geo_classes': 0, 'geo_loss_weight': 0.0},
        {'geo_classes': 1, 'geo_loss_weight': 1e-6},
        {'geo_classes': 1, 'geo_loss_weight': 0.0},
    ],
)
def test_accepted(kwargs: dict[str, Any]) -> None:
    task = tiny_task(**kwargs)
    assert task.hparams['geo_classes'] == kwargs.get('geo_classes', 0)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'temperature': 0.0}, 'temperature'),
        ({'temperature': -1e-6}, 'temperature'),
        ({'geo_classes': -1}, 'geo_classes'),
        ({'geo_classes': 1, 'geo_loss_weight': -1e-6}, 'geo_loss_weight'),
        ({'geo_classes': 0, 'geo_loss_weight': 1e-6}, 'geo_classes >= 1'),
    ],
)
def test_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_task(**kwargs)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        *(
            (
                {'logit_scale_max': value},
                f'logit_scale_max must be a finite real number above 0, not {value}',
            )
            for value in (0.0, -1.0, math.nan, math.inf)
        ),
        *(
            (
                {'temperature': value},
                f'temperature must be a finite real number above 0, not {value}',
            )
            for value in (math.nan, math.inf, -math.inf)
        ),
        (
            {'temperature': True},
            'temperature must be a finite real number above 0, not True (bool)',
        ),
        (
            {'logit_scale_max': '100'},
            "logit_scale_max must be a finite real number above 0, not '100' (str)",
        ),
    ],
)
def test_refused_before_the_first_step(kwargs: dict[str, Any], message: str) -> None:
    """Refused in ``__init__``, naming the argument and the value.

    ``logit_scale_max=0`` failed at the first step with "math domain error",
    and ``temperature=nan`` trained on a NaN loss.
    """
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny_task(**kwargs)


@pytest.mark.parametrize('maximum', [1e-6, 100.0])
def test_logit_scale_max_gives_a_finite_loss(maximum: float) -> None:
    task = tiny_task(logit_scale_max=maximum)
    loss, _ = task.compute_loss(fixed_batch())
    assert torch.isfinite(loss)
