"""MoCo-v2 building blocks of :class:`~torchgeo_satclip.tasks.SatCLIPTask`.

Plain modules and tensor functions, kept apart from the Lightning task so that
tests can drive them directly: the MLP projection head of MoCo-v2, the
momentum (key) encoder with its queue of negative keys, the momentum update,
the InfoNCE loss against the queue, and the shuffled batch norm of the key
encoder across processes, or across parts of the batch on one process (He et
al., CVPR 2020; Chen et al., 2020).

Under DDP every process enqueues the keys of the whole global batch, gathered
in rank order, so the queue is the same tensor on every process.
"""

import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_int, check_real
from ._clip import float32_math

__all__ = [
    'MoCoOutput',
    'MomentumEncoder',
    'gather_no_grad',
    'in_parts',
    'mlp_head',
    'moco_loss',
    'momentum_update',
]


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_no_grad(tensor: Tensor) -> Tensor:
    """All-gather a tensor across processes, without gradients.

    Args:
        tensor: ``(B, ...)`` local tensor, the same shape on every process.

    Returns:
        The ``(world_size * B, ...)`` concatenation in rank order (the tensor
        itself without a process group of several processes).
    """
    _, world = _world()
    if world == 1:
        return tensor
    tensor = tensor.detach().contiguous()
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=0)


def in_parts(encode: Callable[[Tensor], Tensor], image: Tensor, parts: int) -> Tensor:
    """*encode* applied to *parts* consecutive parts of a batch, concatenated.

    Each part goes through the encoder on its own, so its batch-norm layers
    (in training) normalise it with its own statistics, as *parts* devices
    of one process each would: MoCo's way to emulate shuffled batch norm on
    one GPU. Parts differ in size by at most one image
    (:func:`torch.tensor_split`), and have at least two images each (a batch
    of fewer than ``2 * parts`` images is cut in fewer parts), so that every
    part has batch statistics.

    Args:
        encode: the encoder.
        image: ``(B, ...)`` a batch.
        parts: the number of parts.

    Returns:
        ``encode`` of every part, concatenated in batch order.
    """
    parts = min(parts, image.shape[0] // 2)
    if parts <= 1:
        return encode(image)
    chunks = image.tensor_split(parts)
    return torch.cat([encode(chunk) for chunk in chunks])


def mlp_head(in_features: int, hidden_features: int, out_features: int) -> nn.Module:
    """MoCo-v2's projection head: Linear, ReLU, Linear.

    Args:
        in_features: width of the backbone's pooled features.
        hidden_features: width of the hidden layer (MoCo-v2: the backbone's).
        out_features: width of the keys and queries (MoCo-v2: 128).

    Returns:
        The head.
    """
    return nn.Sequential(
        nn.Linear(in_features, hidden_features),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_features, out_features),
    )


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, momentum: float) -> None:
    """Move the key encoder towards the query encoder: ``k = m k + (1 - m) q``.

    Only parameters are updated, as in MoCo; buffers (batch-norm running
    statistics) of the key encoder follow its own forward passes.

    Args:
        key: the momentum encoder.
        query: the encoder trained by back-propagation (same architecture).
        momentum: m in [0, 1].

    Raises:
        ValueError: if *momentum* is not a real number in [0, 1], or the two
            encoders' parameters differ in number or shape (nothing is
            updated then).
    """
    m = check_real('momentum', momentum)
    if not 0 <= m <= 1:
        raise ValueError(f'momentum must be in [0, 1], got {m}')
    keys = list(key.named_parameters())
    queries = list(query.parameters())
    if len(keys) != len(queries):
        raise ValueError(
            f'the key encoder has {len(keys)} parameters and the query encoder '
            f'{len(queries)}: expected a copy of the query encoder'
        )
    for (name, k), q in zip(keys, queries, strict=True):
        if k.shape != q.shape:
            raise ValueError(
                f'key encoder parameter {name} of shape {tuple(k.shape)}, query '
                f'encoder parameter of shape {tuple(q.shape)}: expected a copy of '
                'the query encoder'
            )
    for (_, k), q in zip(keys, queries, strict=True):
        k.mul_(m).add_(q.detach(), alpha=1 - m)


class MoCoOutput(NamedTuple):
    """Result of :func:`moco_loss`.

    Attributes:
        loss: the InfoNCE cross-entropy, a scalar.
        logits: ``(B, 1 + K)`` logits, the positive in column 0.
        accuracy: fraction of queries whose positive ranks first.
    """

    loss: Tensor
    logits: Tensor
    accuracy: Tensor


def moco_loss(
    query: Tensor, key: Tensor, queue: Tensor, temperature: float
) -> MoCoOutput:
    """InfoNCE of each query against its key (positive) and the queue (negatives).

    ``logits = [q . k, q . queue^T] / temperature`` with q and k
    L2-normalised here (the queue holds normalised keys), and the loss is the
    cross-entropy with the positive as the target class (column 0). Computed
    in float32, with autocast off (``bf16-mixed`` would otherwise run the
    products with the queue in bfloat16).

    Args:
        query: ``(B, D)`` queries.
        key: ``(B, D)`` keys of the same samples (no gradient needed).
        queue: ``(K, D)`` normalised negative keys.
        temperature: the softmax temperature.

    Returns:
        The loss, the logits and the top-1 accuracy of the positive.

    Raises:
        ValueError: if the shapes disagree, or *temperature* is not a finite
            number above 0.
    """
    temperature = check_real('temperature', temperature, positive=True)
    if (
        query.shape != key.shape
        or query.ndim != 2
        or queue.shape[1:] != query.shape[1:]
    ):
        raise ValueError(
            f'MoCo queries {tuple(query.shape)}, keys {tuple(key.shape)} and queue '
            f'{tuple(queue.shape)} must be (B, D), (B, D) and (K, D)'
        )
    with float32_math(query):
        q = F.normalize(query.float(), dim=1)
        k = F.normalize(key.detach().float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negative = q @ queue.detach().float().T
        logits = torch.cat([positive, negative], dim=1) / temperature
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)
    accuracy = (logits.detach().argmax(dim=1) == 0).float().mean()
    return MoCoOutput(loss, logits, accuracy)


class MomentumEncoder(nn.Module):
    """MoCo's key encoder (a momentum copy of backbone and head) and its queue.

    Its parameters never need gradients; :meth:`update` moves them towards
    the query encoder, :meth:`forward` computes normalised keys (with
    shuffled batch norm across processes, or parts of the batch on one
    process, when asked) and :meth:`enqueue`
    replaces the oldest keys of the queue, first in, first out.

    Attributes:
        queue: ``(K, D)`` normalised keys, initialised with random unit
            vectors from a fixed seed (the same on every process).
        queue_ptr: index of the oldest key, where the next keys go.
    """

    queue: Tensor
    queue_ptr: Tensor

    def __init__(
        self, backbone: nn.Module, head: nn.Module, queue_size: int, dim: int
    ) -> None:
        """Initialize a new MomentumEncoder from copies of the query encoder.

        Args:
            backbone: the query backbone (deep-copied).
            head: the query projection head (deep-copied).
            queue_size: K, the number of negative keys kept.
            dim: D, the width of the keys.

        Raises:
            ValueError: if *queue_size* or *dim* is not a positive integer.
        """
        super().__init__()
        queue_size = check_int('queue_size', queue_size, minimum=1)
        dim = check_int('dim', dim, minimum=1)
        self.backbone = copy.deepcopy(backbone)
        self.head = copy.deepcopy(head)
        self.requires_grad_(False)
        generator = torch.Generator().manual_seed(0)
        queue = F.normalize(torch.randn(queue_size, dim, generator=generator), dim=1)
        self.register_buffer('queue', queue)
        self.register_buffer('queue_ptr', torch.zeros((), dtype=torch.long))

    def update(self, backbone: nn.Module, head: nn.Module, momentum: float) -> None:
        """Momentum update of backbone and head from the query encoder.

        Args:
            backbone: the query backbone.
            head: the query head.
            momentum: m.
        """
        momentum_update(self.backbone, backbone, momentum)
        momentum_update(self.head, head, momentum)

    @torch.no_grad()
    def forward(
        self, image: Tensor, shuffle_bn: bool = False, splits: int = 1
    ) -> Tensor:
        """Normalised keys of images, without gradients.

        With *shuffle_bn* under a process group of several processes, the
        images of the global batch are gathered, shuffled by a permutation
        drawn on rank 0 and broadcast, split back into per-process batches for
        the key encoder (so that batch-norm statistics mix samples of other
        processes), and the keys are unshuffled: MoCo's shuffled batch norm,
        which stops the model from finding the positive through the batch
        statistics it shares with its query. On one process the same happens
        across *splits* parts of the batch, each encoded on its own (its own
        batch-norm statistics), as if on as many devices; with one part it is
        a no-op.

        Args:
            image: ``(B, C, H, W)`` images (equal B on every process when
                shuffling).
            shuffle_bn: shuffle the batch across processes (or parts).
            splits: parts of the batch on one process (see :func:`in_parts`).

        Returns:
            ``(B, D)`` L2-normalised keys in float32.
        """
        rank, world = _world()
        if not shuffle_bn or (world == 1 and splits == 1):
            return self._encode(image)
        if world == 1:
            permutation = torch.randperm(image.shape[0], device=image.device)
            keys = in_parts(self._encode, image[permutation], splits)
            restored = torch.empty_like(keys)
            restored[permutation] = keys
            return restored
        local = image.shape[0]
        images = gather_no_grad(image)
        permutation = torch.randperm(images.shape[0], device=image.device)
        dist.broadcast(permutation, src=0)
        mine = permutation[rank * local : (rank + 1) * local]
        keys = self._encode(images[mine])
        shuffled = gather_no_grad(keys)
        restored = torch.empty_like(shuffled)
        restored[permutation] = shuffled
        return restored[rank * local : (rank + 1) * local]

    def _encode(self, image: Tensor) -> Tensor:
        """L2-normalised float32 keys of one batch of images."""
        return F.normalize(self.head(self.backbone(image)).float(), dim=1)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Replace the oldest keys of the queue with *keys* (in order).

        Wraps around the end of the queue; of more keys than the queue holds,
        only the last K are kept. The caller passes the same keys on every
        process (the gathered global batch) to keep the queues equal.

        Args:
            keys: ``(N, D)`` normalised keys.

        Raises:
            ValueError: if *keys* is not ``(N, D)`` (the queue is left as it is).
        """
        size, dim = self.queue.shape
        if keys.ndim != 2 or keys.shape[1] != dim:
            raise ValueError(
                f'MoCo enqueue: expected (N, {dim}) keys for the queue of shape '
                f'{tuple(self.queue.shape)}, got {tuple(keys.shape)}'
            )
        keys = keys.detach().to(self.queue.dtype)
        if keys.shape[0] > size:
            keys = keys[-size:]
        n = keys.shape[0]
        start = int(self.queue_ptr)
        index = (torch.arange(n, device=self.queue.device) + start) % size
        self.queue.index_copy_(0, index, keys)
        self.queue_ptr.fill_((start + n) % size)
