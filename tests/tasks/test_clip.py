"""Retrieval metrics on matrices whose two directions disagree.

A permutation matrix retrieves the same pairs in both directions and along
both axes, so it cannot tell image-to-location from location-to-image, nor a
top-k along the rows from one down the columns. Every matrix here is
many-to-one or otherwise non-symmetric, and every expected figure is worked
out by hand in the comments.
"""

import math
import re

import pytest
import torch

from torchgeo_satclip.geo import EARTH_RADIUS_KM
from torchgeo_satclip.tasks._clip import ClipOutput, clip_loss, retrieval_metrics

KM_PER_DEGREE = math.pi / 180 * EARTH_RADIUS_KM  # along the equator


def equator(*longitudes: float) -> torch.Tensor:
    """Points on the equator: their distances are |dlon| degrees of arc."""
    return torch.tensor([[lon, 0.0] for lon in longitudes], dtype=torch.float64)


def ranked(*orders: list[int]) -> torch.Tensor:
    """Logits whose row i ranks the columns in ``orders[i]``, best first."""
    n = len(orders[0])
    logits = torch.zeros(len(orders), n)
    for row, order in enumerate(orders):
        for rank, column in enumerate(order):
            logits[row, column] = float(n - rank)
    return logits


def check(metrics: dict[str, torch.Tensor], expected: dict[str, float]) -> None:
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name].item() == pytest.approx(value, rel=1e-6), name


def test_many_to_one_through_clip_loss() -> None:
    # Image i is e_0 + e_i / 2: every image is closest to location 0 (cosine
    # 1 / sqrt(1.25) against 0.5 / sqrt(1.25) for its own), while location i
    # (e_i) is closest to image i. Image-to-location: only image 0 retrieves
    # its own location first, every other one retrieves it second.
    locations = torch.eye(7)
    images = locations[0] + locations / 2
    out = clip_loss(images, locations, torch.tensor(math.log(10.0)))
    assert not torch.allclose(out.logits_image, out.logits_image.T)
    lonlat = equator(0, 1, 2, 3, 10, 20, 40)
    # Every image retrieves the location at longitude 0: the distances are
    # 0, 1, 2, 3, 10, 20 and 40 degrees, whose median is 3 (the mean is 76/7).
    check(
        retrieval_metrics(out, lonlat),
        {
            'i2l_top1': 1 / 7,
            'i2l_top5': 1.0,
            'l2i_top1': 1.0,
            'l2i_top5': 1.0,
            'median_km': 3 * KM_PER_DEGREE,
        },
    )


def test_each_direction_from_its_own_logits() -> None:
    logits_image = ranked(  # image i against the 7 locations
        [0, 1, 2, 3, 4, 5, 6],  # top 1 hit
        [0, 2, 3, 4, 5, 6, 1],  # own last: top 5 miss
        [0, 1, 3, 4, 5, 2, 6],  # own 6th: top 5 miss
        [0, 3, 1, 2, 4, 5, 6],  # own 2nd: top 5 hit
        [0, 4, 1, 2, 3, 5, 6],  # own 2nd
        [0, 1, 2, 3, 5, 4, 6],  # own 5th: top 5 hit
        [0, 6, 1, 2, 3, 4, 5],  # own 2nd
    )
    logits_location = ranked(  # location i against the 7 images
        [0, 1, 2, 3, 4, 5, 6],  # top 1 hit
        [1, 0, 2, 3, 4, 5, 6],  # top 1 hit
        [2, 0, 1, 3, 4, 5, 6],  # top 1 hit
        [6, 0, 1, 2, 4, 5, 3],  # own last
        [6, 0, 1, 2, 3, 4, 5],  # own 6th
        [6, 0, 1, 2, 3, 4, 5],  # own last
        [5, 6, 0, 1, 2, 3, 4],  # own 2nd: top 5 hit
    )
    out = ClipOutput(torch.tensor(0.0), logits_image, logits_location, 0)
    # i2l retrieves location 0 for every image: distances 0, 1, 2, 3, 10, 20,
    # 40 degrees, median 3.
    check(
        retrieval_metrics(out, equator(0, 1, 2, 3, 10, 20, 40)),
        {
            'i2l_top1': 1 / 7,
            'i2l_top5': 5 / 7,
            'l2i_top1': 3 / 7,
            'l2i_top5': 4 / 7,
            'median_km': 3 * KM_PER_DEGREE,
        },
    )


def test_gathered_rows_use_the_offset_and_all_lonlat() -> None:
    # Rank 1 of 2 with 3 samples each: local rows are samples 3, 4 and 5 of
    # the 6 gathered ones, so their targets are columns 3, 4 and 5.
    logits_image = ranked(
        [3, 0, 1, 2, 4, 5],  # image 3: hit; retrieves sample 3
        [0, 1, 2, 3, 5, 4],  # image 4: own last; retrieves sample 0
        [1, 5, 0, 2, 3, 4],  # image 5: own 2nd; retrieves sample 1
    )
    logits_location = ranked(
        [0, 1, 2, 4, 5, 3],  # location 3: own last
        [4, 0, 1, 2, 3, 5],  # location 4: hit
        [5, 0, 1, 2, 3, 4],  # location 5: hit
    )
    out = ClipOutput(torch.tensor(0.0), logits_image, logits_location, 3)
    all_lonlat = equator(0, 1, 2, 3, 10, 20)
    # Samples at longitudes 3, 10 and 20 retrieve longitudes 3, 0 and 1:
    # 0, 10 and 19 degrees, median 10.
    check(
        retrieval_metrics(out, all_lonlat[3:], all_lonlat),
        {
            'i2l_top1': 1 / 3,
            'i2l_top5': 2 / 3,
            'l2i_top1': 2 / 3,
            'l2i_top5': 2 / 3,
            'median_km': 10 * KM_PER_DEGREE,
        },
    )


def test_small_batch_top5_is_top_n() -> None:
    # Three candidates: every match is within the top 5 (= top 3), but only
    # one row in each direction finds its own first.
    logits_image = ranked([0, 1, 2], [0, 2, 1], [0, 1, 2])
    logits_location = ranked([1, 0, 2], [1, 0, 2], [1, 0, 2])
    out = ClipOutput(torch.tensor(0.0), logits_image, logits_location, 0)
    metrics = retrieval_metrics(out, equator(0, 5, 10))
    assert metrics['i2l_top1'].item() == pytest.approx(1 / 3)
    assert metrics['l2i_top1'].item() == pytest.approx(1 / 3)
    assert metrics['i2l_top5'].item() == metrics['l2i_top5'].item() == 1.0
    # retrieved: 0, 0, 0: distances 0, 5 and 10 degrees
    assert metrics['median_km'].item() == pytest.approx(5 * KM_PER_DEGREE)


def test_median_km_of_an_even_batch_is_the_mean_of_the_middle_two() -> None:
    """torch.median gave the lower of the two middle distances (1 degree
    here): a batch of four reported the second-smallest error, not the
    median (numpy.median's 2 degrees)."""
    logits = ranked([0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3])
    out = ClipOutput(torch.tensor(0.0), logits, logits.clone(), 0)
    # every image retrieves location 0: distances 0, 1, 3 and 10 degrees
    metrics = retrieval_metrics(out, equator(0, 1, 3, 10))
    assert metrics['median_km'].item() == pytest.approx(2 * KM_PER_DEGREE)
    assert metrics['median_km'].dtype == torch.float32


def test_clip_loss_is_float32_under_bf16_autocast() -> None:
    """``bf16-mixed`` leaves the logits float32 and equal to the float32 ones.

    Autocast ran the similarity products in bfloat16 although the embeddings
    were cast to float32 first: at a logit scale of 100 the logits were off
    by up to 0.15 here and came back as bfloat16.
    """
    g = torch.Generator().manual_seed(0)
    image = torch.randn(512, 256, generator=g)
    location = image + 4 * torch.randn(512, 256, generator=g)
    logit_scale = torch.tensor(math.log(100.0))
    img = torch.nn.functional.normalize(image, dim=-1)
    loc = torch.nn.functional.normalize(location, dim=-1)
    logits = 100.0 * img @ loc.T
    target = torch.arange(512)
    loss = (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    ) / 2
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = clip_loss(image, location, logit_scale)
    for name in ('logits_image', 'logits_location', 'loss'):
        assert getattr(out, name).dtype == torch.float32, name
    torch.testing.assert_close(out.logits_image, logits, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out.logits_location, logits.T, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out.loss, loss, rtol=1e-5, atol=1e-5)


def test_clip_loss_gradients_are_float32_under_bf16_autocast() -> None:
    """The gradients with respect to the embeddings are those of float32."""
    g = torch.Generator().manual_seed(1)
    image = torch.randn(64, 32, generator=g)
    location = torch.randn(64, 32, generator=g)
    scale = torch.tensor(math.log(100.0))
    grads = []
    for autocast in (False, True):
        x = image.clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = clip_loss(x, location, scale).loss
        loss.backward()  # outside autocast, as Lightning does
        assert x.grad is not None
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_gathered_output_needs_every_candidate() -> None:
    # Rank 1 of 2 with 3 samples each: columns 0..5 are the gathered samples.
    # Without all_lonlat, column j was read as local row j: images 3, 4 and 5
    # retrieve columns 0, 1 and 2 (samples of rank 0) and were measured
    # against the local samples 0, 1 and 2 (distance 0), in silence.
    logits = ranked([0, 1, 2, 3, 4, 5], [1, 0, 2, 3, 4, 5], [2, 0, 1, 3, 4, 5])
    out = ClipOutput(torch.tensor(0.0), logits, logits, 3)
    lonlat = equator(3, 10, 20)
    message = (
        'the logits have 6 columns (candidates gathered from every process), '
        'but all_lonlat has 3 rows'
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        retrieval_metrics(out, lonlat)
    with pytest.raises(ValueError, match=re.escape(message)):
        retrieval_metrics(out, lonlat, equator(0, 1, 2))
    # the local rows must be the logits' rows
    with pytest.raises(ValueError, match=re.escape('lonlat has 2 rows')):
        retrieval_metrics(out, lonlat[:2], equator(0, 1, 2, 3, 10, 20))


@pytest.mark.parametrize('shape', [(4,), (2, 3, 4), (3, 3, 3)])
def test_clip_loss_needs_matrices(shape: tuple[int, ...]) -> None:
    # (3, 3, 3) gave "Expected target size [3, 3], got [3]", a vector an
    # IndexError, neither naming the embeddings
    embedding = torch.randn(*shape)
    message = f'embeddings must be (B, D) matrices, not {shape}'
    with pytest.raises(ValueError, match=re.escape(message)):
        clip_loss(embedding, embedding.clone(), torch.tensor(1.0))


@pytest.mark.parametrize('shape', [(3,), (3, 1), (1, 3), (0,)])
def test_clip_loss_needs_one_logit_scale(shape: tuple[int, ...]) -> None:
    # a (B,) scale was broadcast into a scale per column, (0,) into an empty
    # loss, without a word
    torch.manual_seed(0)
    image, location = torch.randn(3, 4), torch.randn(3, 4)
    message = f'logit_scale must be a scalar (one number), not of shape {shape}'
    with pytest.raises(ValueError, match=re.escape(message)):
        clip_loss(image, location, torch.ones(shape))


def test_clip_loss_takes_a_one_element_logit_scale() -> None:
    torch.manual_seed(0)
    image, location = torch.randn(3, 4), torch.randn(3, 4)
    scalar = clip_loss(image, location, torch.tensor(2.0))
    one = clip_loss(image, location, torch.tensor([2.0]))
    assert one.loss.shape == ()
    torch.testing.assert_close(one.loss, scalar.loss)
    torch.testing.assert_close(one.logits_image, scalar.logits_image)


def test_a_candidate_at_the_same_place_is_a_hit() -> None:
    """Two samples at one place have the same location embedding: which of
    the two tied columns topk returned decided a hit or a miss, so a perfect
    encoder scored 3/4 on this batch (and 1/2 with the order reversed)."""
    locations = torch.eye(4)[[0, 1, 1, 2]]  # samples 1 and 2 at one place
    images = locations + 0.01 * torch.eye(4)[[1, 2, 3, 0]]
    out = clip_loss(images, locations, torch.tensor(math.log(100.0)))
    lonlat = torch.tensor(
        [[0.0, 0.0], [10.0, 10.0], [10.0, 10.0], [50.0, -20.0]], dtype=torch.float64
    )
    check(
        retrieval_metrics(out, lonlat),
        {
            'i2l_top1': 1.0,
            'i2l_top5': 1.0,
            'l2i_top1': 1.0,
            'l2i_top5': 1.0,
            'median_km': 0.0,
        },
    )
    # the same place under other coordinates (the antimeridian) is one too
    lonlat[1:3] = torch.tensor([[180.0, 0.0], [-180.0, 0.0]], dtype=torch.float64)
    assert retrieval_metrics(out, lonlat)['i2l_top1'].item() == 1.0
    # a place a metre away is another place: a tie lost is a miss
    lonlat[1:3] = torch.tensor([[10.0, 10.0], [10.00001, 10.0]], dtype=torch.float64)
    assert retrieval_metrics(out, lonlat)['i2l_top1'].item() == 0.75
