"""The geo-classification pretext's k-means: its arguments and its classes."""

from typing import Any

import pytest
import torch

from torchgeo_satclip.tasks import SatCLIPTask
from torchgeo_satclip.tasks._clip import nearest_centroid, spherical_kmeans

from .test_satclip import tiny_task

pytestmark = pytest.mark.usefixtures('tiny_timm')

POINTS = torch.tensor(
    [[0.0, 0.0], [10.0, 5.0], [-100.0, -40.0], [120.0, 60.0], [30.0, -20.0]],
    dtype=torch.float64,
)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        # torch.Generator.manual_seed failed with 'Overflow when unpacking
        # long long', naming nothing; -1 seeded as 2 ** 64 - 1 does
        ({'seed': 2**64}, r'seed must be between 0 and 18446744073709551615'),
        ({'seed': -1}, r'seed must be between 0 and 18446744073709551615, got -1'),
        ({'seed': 0.5}, 'seed must be an integer'),
        # True made one cluster, or failed in torch.bincount
        ({'k': True}, 'k must be an integer, got True'),
        ({'k': 2.0}, 'k must be an integer, got 2.0'),
        # no Lloyd iteration: the k-means++ seeds came back as centroids
        ({'iterations': 0}, 'iterations must be at least 1, got 0'),
        ({'iterations': -3}, 'iterations must be at least 1, got -3'),
    ],
)
def test_spherical_kmeans_refuses_bad_arguments(
    kwargs: dict[str, Any], match: str
) -> None:
    args: dict[str, Any] = {'k': 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        spherical_kmeans(POINTS, **args)


@pytest.mark.parametrize('seed', [2**64, -1, -(2**63) - 1])
def test_geo_kmeans_seed_beyond_64_bits_refused_at_construction(seed: int) -> None:
    """Accepted by the task, it failed only in setup, with torch's overflow."""
    with pytest.raises(
        ValueError, match=r'geo_kmeans_seed must be between 0 and 18446744073709551615'
    ):
        tiny_task(geo_classes=2, geo_loss_weight=1.0, geo_kmeans_seed=seed)


def test_largest_geo_kmeans_seed_fits() -> None:
    task = tiny_task(geo_classes=2, geo_loss_weight=1.0, geo_kmeans_seed=2**64 - 1)
    task.fit_geo_centroids(POINTS)
    assert torch.allclose(
        task.geo_centroids.norm(dim=1), torch.ones(2, dtype=torch.float64)
    )
    assert isinstance(task, SatCLIPTask)
    labels = nearest_centroid(POINTS, task.geo_centroids)
    assert set(labels.tolist()) == {0, 1}


# Two places: repeated rows, the same pole under other longitudes, and the
# antimeridian as -180 and 180 (unit vectors that differ by 2e-16).
TWO_PLACES = [
    torch.tensor([[10.0, 5.0], [-100.0, -40.0]] * 4, dtype=torch.float64),
    torch.tensor([[0.0, 90.0], [50.0, 90.0], [-120.0, 90.0], [3.0, 4.0]]),
    torch.tensor([[180.0, 0.0], [-180.0, 0.0], [3.0, 4.0]], dtype=torch.float64),
]


@pytest.mark.parametrize('points', TWO_PLACES)
def test_more_clusters_than_distinct_points_refused(points: torch.Tensor) -> None:
    """k-means++ drew the same place twice: a class no point ever had."""
    with pytest.raises(ValueError, match=r'k \(3\) .* 2 distinct'):
        spherical_kmeans(points, 3)
    # every one of as many clusters as places is some point's class
    centroids = spherical_kmeans(points, 2)
    assert set(nearest_centroid(points, centroids).tolist()) == {0, 1}


def test_geo_classes_beyond_the_distinct_training_locations_refused() -> None:
    task = tiny_task(geo_classes=3, geo_loss_weight=1.0)
    with pytest.raises(
        ValueError,
        match=r'geo_classes \(3\) needs at least 3 distinct training locations, '
        r'got 8 \(2 distinct\)',
    ):
        task.fit_geo_centroids(TWO_PLACES[0])
    assert not bool(task.geo_centroids.any())  # nothing fitted


@pytest.mark.parametrize('clip', [True, False], ids=['clip', 'clip_off'])
def test_geo_logits_are_float32_under_bf16_autocast(clip: bool) -> None:
    """``bf16-mixed``: the geo head's logits and loss are float32, as CLIP's
    and MoCo's are (they were bfloat16, eight bits of mantissa)."""
    torch.manual_seed(0)
    task = tiny_task(
        geo_classes=3,
        geo_loss_weight=1.0,
        clip_loss_weight=1.0 if clip else 0.0,
    )
    task.fit_geo_centroids(POINTS)
    assert task.geo_head is not None
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    task.geo_head.register_forward_hook(
        lambda module, args, output: seen.append((args[0], output))
    )
    g = torch.Generator().manual_seed(0)
    batch = {'image': torch.rand(4, 13, 16, 16, generator=g), 'point': POINTS[:4]}
    task.eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        _, metrics = task.compute_loss(batch)
    ((features, logits),) = seen
    assert logits.dtype == torch.float32
    # the loss of those logits, computed in float32 throughout
    target = nearest_centroid(POINTS[:4], task.geo_centroids)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            task.geo_head(features.float()), target
        )
    assert metrics['geo_loss'].dtype == torch.float32
    torch.testing.assert_close(metrics['geo_loss'], expected, rtol=1e-6, atol=1e-6)
