"""SatCLIPTask's argument checks, on both sides of each limit."""

from typing import Any

import pytest

from .test_satclip import tiny_task

pytestmark = pytest.mark.usefixtures('tiny_timm')


@pytest.mark.parametrize(
    'kwargs',
    [
        {'temperature': 1e-6},
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
