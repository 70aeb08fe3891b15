"""Contrastive-loss building blocks of :class:`~torchgeo_satclip.tasks.SatCLIPTask`.

Pure tensor functions, kept apart from the Lightning task so that tests (and
other tasks) can call them directly: the symmetric CLIP loss with optional
cross-device negatives, in-batch retrieval metrics and a seeded spherical k-means for the geo-classification pretext task.
"""

from contextlib import AbstractContextManager
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_int
from ..geo import great_circle_km, lonlat_to_unit

__all__ = [
    'MAX_KMEANS_SEED',
    'ClipOutput',
    'clip_loss',
    'count_distinct_points',
    'float32_math',
    'gather_with_grad',
    'nearest_centroid',
    'retrieval_metrics',
    'spherical_kmeans',
]


#: Largest seed of :func:`spherical_kmeans`: ``torch.Generator`` seeds are 64
#: bits (a negative one it takes modulo ``2**64``, as another seed's alias).
MAX_KMEANS_SEED = 2**64 - 1


class ClipOutput(NamedTuple):
    """Result of :func:`clip_loss`.

    Attributes:
        loss: the symmetric cross-entropy, a scalar.
        logits_image: ``(B, N)`` logits of the local images against all ``N``
            locations (``N = B`` without gathering).
        logits_location: ``(B, N)`` logits of the local locations against all
            images.
        offset: index of the first local sample among the ``N`` gathered ones.
    """

    loss: Tensor
    logits_image: Tensor
    logits_location: Tensor
    offset: int


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(tensor: Tensor) -> tuple[Tensor, int]:
    """All-gather a tensor across processes, keeping the autograd graph.

    Uses ``torch.distributed.nn.functional.all_gather``, whose backward sums
    the gradients of every process into each process's own slice. Every
    process must pass a tensor of the same shape.

    Args:
        tensor: ``(B, ...)`` local tensor.

    Returns:
        The ``(world_size * B, ...)`` concatenation in rank order and the
        offset of this process's slice in it. Without an initialised process
        group of more than one process, the tensor itself and 0.
    """
    if not _distributed():
        return tensor, 0
    from torch.distributed.nn.functional import all_gather

    parts = all_gather(tensor.contiguous())  # type: ignore[no-untyped-call]
    return torch.cat(parts, dim=0), dist.get_rank() * tensor.shape[0]


def float32_math(tensor: Tensor) -> AbstractContextManager[None]:
    """A context in which autocast is off on *tensor*'s device type.

    Under Lightning's ``16-mixed`` or ``bf16-mixed`` precision a matrix
    product of float32 tensors still runs in the low precision; the
    contrastive losses compute their similarities and cross-entropies inside
    this context, on float32 inputs, so that they are float32 throughout.

    Args:
        tensor: a tensor on the device of the computation.

    Returns:
        ``torch.autocast(device_type=tensor.device.type, enabled=False)``.
    """
    return torch.autocast(device_type=tensor.device.type, enabled=False)


def clip_loss(
    image_embedding: Tensor,
    location_embedding: Tensor,
    logit_scale: Tensor,
    gather: bool = False,
) -> ClipOutput:
    """SatCLIP's symmetric contrastive (CLIP) loss.

    Both embeddings are L2-normalised; ``logits = exp(logit_scale) * img @ loc.T``
    and the loss is the mean of the image-to-location and location-to-image
    cross-entropies against the matching pairs. Computed in float32, with
    autocast off (see :func:`float32_math`): under ``bf16-mixed`` the
    similarity products would otherwise run in bfloat16 (eight bits of
    mantissa: errors of a tenth and more in logits of SatCLIP's scale of 100).

    With ``gather``, the normalised embeddings of every process are
    all-gathered with gradients and each process computes the loss of its own
    rows against all ``N`` columns (OpenCLIP's "local loss"): the mean of the
    per-process losses equals the loss of one process on the concatenated
    batch, and, with DDP's gradient averaging, so do the gradients, at
    ``O(B N)`` instead of ``O(N^2)`` cost per process.

    Args:
        image_embedding: ``(B, D)`` image embeddings.
        location_embedding: ``(B, D)`` location embeddings of the same samples.
        logit_scale: scalar, the log of the inverse temperature (a tensor
            of one element).
        gather: take negatives from every process (no-op without an
            initialised process group of several processes).

    Returns:
        The loss, both logit matrices and the local offset.

    Raises:
        ValueError: if an embedding is not a ``(B, D)`` matrix, the two
            differ in shape, or *logit_scale* is not one number (a ``(B,)``
            scale would be broadcast into a scale per column).
    """
    for name, embedding in (
        ('image', image_embedding),
        ('location', location_embedding),
    ):
        if embedding.ndim != 2:
            raise ValueError(
                f'{name} embeddings must be (B, D) matrices, not '
                f'{tuple(embedding.shape)}'
            )
    if image_embedding.shape != location_embedding.shape:
        raise ValueError(
            f'image embeddings {tuple(image_embedding.shape)} and location '
            f'embeddings {tuple(location_embedding.shape)} differ in shape'
        )
    if logit_scale.numel() != 1:
        raise ValueError(
            'logit_scale must be a scalar (one number), not of shape '
            f'{tuple(logit_scale.shape)}: a scale of several would be broadcast '
            'into one per column of the logits'
        )
    with float32_math(image_embedding):
        image = F.normalize(image_embedding.float(), dim=-1)
        location = F.normalize(location_embedding.float(), dim=-1)
        if gather:
            all_image, offset = gather_with_grad(image)
            all_location, _ = gather_with_grad(location)
        else:
            all_image, all_location, offset = image, location, 0
        scale = logit_scale.float().exp().reshape(())
        logits_image = scale * image @ all_location.T
        logits_location = scale * location @ all_image.T
        target = torch.arange(image.shape[0], device=image.device) + offset
        loss = (
            F.cross_entropy(logits_image, target)
            + F.cross_entropy(logits_location, target)
        ) / 2
    return ClipOutput(loss, logits_image, logits_location, offset)


def retrieval_metrics(
    output: ClipOutput, lonlat: Tensor, all_lonlat: Tensor | None = None
) -> dict[str, Tensor]:
    """In-batch retrieval accuracy and the distance to the retrieved location.

    Args:
        output: the result of :func:`clip_loss`.
        lonlat: ``(B, 2)`` true (lon, lat) of the local samples.
        all_lonlat: ``(N, 2)`` (lon, lat) of all gathered samples (default:
            ``lonlat``, for an ungathered loss).

    Returns:
        ``i2l_top1``, ``i2l_top5``, ``l2i_top1``, ``l2i_top5`` (fractions of
        local rows whose match, or a candidate at the same place, is among
        the top 1 or 5 of the ``N`` candidates; top 5 becomes top ``N`` for
        batches under 5; samples at one place have the same location
        embedding, so none of them can be told from the others) and
        ``median_km``, the median great-circle distance between each image's
        true location and the location it retrieves first (for an even
        number of images, the mean of the two middle distances).

    Raises:
        ValueError: if *lonlat* does not have a row per row of the logits, or
            the candidates (*all_lonlat*, else *lonlat*) one per column: a
            gathered output needs *all_lonlat* (its column ``j`` is gathered
            sample ``j``, not local sample ``j``).
    """
    candidates = all_lonlat if all_lonlat is not None else lonlat
    rows, columns = output.logits_image.shape
    if lonlat.shape[0] != rows:
        raise ValueError(
            f'lonlat has {lonlat.shape[0]} rows, but the logits have {rows} '
            '(one per local sample)'
        )
    if candidates.shape[0] != columns:
        gathered = (
            ' (candidates gathered from every process)' if columns != rows else ''
        )
        raise ValueError(
            f'the logits have {columns} columns{gathered}, but all_lonlat has '
            f'{candidates.shape[0]} rows: pass the (lon, lat) of every '
            'candidate, in the order of the columns, as all_lonlat'
        )
    target = torch.arange(rows, device=lonlat.device) + output.offset
    k = min(5, columns)
    metrics: dict[str, Tensor] = {}
    retrieved = output.logits_image.new_empty(0, dtype=torch.long)
    # a candidate at the sample's own place is a hit: samples at one place
    # have the same location embedding, and which of the tied columns topk
    # returns would otherwise decide
    own = lonlat_to_unit(lonlat).to(output.logits_image.device)
    units = lonlat_to_unit(candidates).to(output.logits_image.device)
    for name, logits in (('i2l', output.logits_image), ('l2i', output.logits_location)):
        top = logits.detach().topk(k, dim=1).indices
        same_place = (units[top] - own[:, None]).abs().amax(dim=-1) <= _SAME_PLACE
        hits = (top == target[:, None].to(top.device)) | same_place
        metrics[f'{name}_top1'] = hits[:, 0].float().mean()
        metrics[f'{name}_top5'] = hits.any(dim=1).float().mean()
        if name == 'i2l':
            retrieved = top[:, 0]
    distance = great_circle_km(lonlat.to(candidates.dtype), candidates[retrieved])
    # the mean of the two middle distances of an even batch (torch.median
    # returns the lower one)
    metrics['median_km'] = torch.quantile(distance.double(), 0.5).float()
    return metrics


def nearest_centroid(lonlat: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest (largest cosine) unit-vector centroid of each point.

    Args:
        lonlat: ``(N, 2)`` (longitude, latitude) in degrees.
        centroids: ``(K, 3)`` unit vectors.

    Returns:
        ``(N,)`` long tensor of cluster indices.
    """
    return (lonlat_to_unit(lonlat) @ centroids.double().T).argmax(dim=1)


#: Largest difference of the unit vectors of two points at one place
#: (:func:`retrieval_metrics`), about 6 micrometres on the Earth.
_SAME_PLACE = 1e-12

#: Decimals of the unit vectors compared by :func:`count_distinct_points`
#: (1e-12 of the Earth's radius is about 6 micrometres): a pole under other
#: longitudes, or a point on the antimeridian as -180 and 180, is one place.
_DISTINCT_DECIMALS = 12


def count_distinct_points(lonlat: Tensor) -> int:
    """Number of distinct places among (lon, lat) points.

    Points are compared by their unit vectors, so ``(0, 90)`` and
    ``(50, 90)`` (the north pole) are one place, as are ``(-180, 0)`` and
    ``(180, 0)``.

    Args:
        lonlat: ``(N, 2)`` (longitude, latitude) in degrees.

    Returns:
        How many different places the points are.
    """
    unit = lonlat_to_unit(lonlat.detach().cpu()).round(decimals=_DISTINCT_DECIMALS)
    # + 0.0 turns -0.0 into 0.0
    return int(torch.unique(unit + 0.0, dim=0).shape[0])


def spherical_kmeans(
    lonlat: Tensor, k: int, iterations: int = 50, seed: int = 0
) -> Tensor:
    """Seeded spherical k-means of (lon, lat) points (cosine distance).

    Clusters the points' unit vectors (so clusters wrap across the
    antimeridian and shrink towards the poles correctly). Initialised with
    k-means++ from a ``torch.Generator`` seeded with ``seed``, then Lloyd
    iterations until the assignment stops changing; an empty cluster is
    re-seeded with the point farthest from its centroid. The same points and
    seed give the same centroids on every machine.

    Args:
        lonlat: ``(N, 2)`` (longitude, latitude) in degrees, at least ``k``
            distinct places (:func:`count_distinct_points`).
        k: number of clusters.
        iterations: maximum Lloyd iterations, at least 1.
        seed: seed of the initialisation, 0 to ``MAX_KMEANS_SEED``.

    Returns:
        ``(k, 3)`` float64 unit-vector centroids.

    Raises:
        ValueError: if ``k`` is not a positive integer or exceeds the number
            of points or of distinct places (k-means++ would draw a place
            twice, a cluster no point is nearest to), *iterations* is not an
            integer >= 1, or *seed* not an integer in [0,
            ``MAX_KMEANS_SEED``].
    """
    k = check_int('k', k, minimum=1)
    iterations = check_int('iterations', iterations, minimum=1)
    seed = check_int('seed', seed, minimum=0, maximum=MAX_KMEANS_SEED)
    points = lonlat_to_unit(lonlat.detach().cpu())
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f'k must be in [1, {n}] (the number of points), not {k}')
    distinct = count_distinct_points(lonlat)
    if k > distinct:
        raise ValueError(
            f'k ({k}) is more than the {distinct} distinct places among the {n} '
            'points: some clusters would have no point'
        )
    generator = torch.Generator().manual_seed(seed)
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = 1 - points @ points[first]
    for _ in range(1, k):
        weights = closest.clamp(min=0)
        if float(weights.sum()) <= 0:
            weights = torch.ones(n, dtype=points.dtype)
        index = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(index)
        closest = torch.minimum(closest, 1 - points @ points[index])
    centroids = points[chosen].clone()
    assignment = torch.full((n,), -1, dtype=torch.long)
    for _ in range(iterations):
        similarity = points @ centroids.T
        new_assignment = similarity.argmax(dim=1)
        if torch.equal(new_assignment, assignment):
            break
        assignment = new_assignment
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k)
        for cluster in torch.nonzero(counts == 0).flatten().tolist():
            far = int(similarity.max(dim=1).values.argmin())
            sums[cluster] = points[far]
            similarity[far] = float('inf')
        norms = sums.norm(dim=1, keepdim=True).clamp(min=1e-12)
        centroids = sums / norms
    return centroids
