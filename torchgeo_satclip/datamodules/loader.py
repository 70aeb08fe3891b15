"""Batches of S2-100K read by threads straight into pinned memory.

A ``DataLoader`` with worker processes pays three times for every batch of the
packed layout, none of them for reading: the worker fills fresh shared memory
(a page fault and a zeroed page every 4 KiB), the main process maps it, and
the pin-memory thread copies it once more into page-locked memory. Measured on
one H200 machine with 16 cores, that capped loading at about 1,400 images/s
whatever the number of workers, a seventh of what a frozen ResNet-18 consumes.

:class:`ThreadedBatchLoader` removes all three: threads of the main process
copy the patches from the memory maps (the copies release the GIL) directly
into a page-locked batch from PyTorch's caching host allocator, which hands
the same blocks out again once a batch and its asynchronous copy to the GPU
are done (without pinning, on the CPU, a small pool of ordinary blocks does
the same: a block is lent again once no tensor of it is left). Nothing is
pickled or sent between processes and no page is faulted after the first
batches. It is an iterable of batches with a
``len`` and a ``sampler.set_epoch`` (which Lightning calls each epoch), so
Lightning takes it wherever it takes a ``DataLoader``; it shards the samples
across ranks itself under DDP (as ``DistributedSampler`` would). It has a
``state_dict`` and a ``load_state_dict``, which Lightning saves in a
checkpoint and loads when a run resumes from it: a run resumed mid-epoch
continues that epoch with the batches not yet seen, in the same order.
"""

import math
import threading
import warnings
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, SequentialSampler, Subset

from .._checks import check_flag, check_int
from ..datasets import S2100K

__all__ = [
    'EpochSampler',
    'RestartingDataLoader',
    'ThreadedBatchLoader',
    'threaded_source',
]

#: The ``loader`` entry of a :class:`RestartingDataLoader` state.
_DATALOADER_STATE = 'DataLoader'


def _restart_warning(batches: int, num_batches: int, kind: str) -> str:
    """The warning of a loader that cannot continue a checkpoint's epoch."""
    return (
        f'the checkpoint was saved {batches} of {num_batches} batches into an '
        f'epoch by {kind}, which cannot continue it: the loader starts the '
        f'epoch afresh while Lightning counts its first {batches} batches as '
        f'done, so the other {num_batches - batches} are drawn from a new order '
        '(some samples are trained on twice in this epoch, others not at all). '
        'To resume mid-epoch, save and resume with the threaded loader '
        "(loader='threads')"
    )


class EpochSampler:
    """The epoch of a :class:`ThreadedBatchLoader`, which Lightning sets."""

    def __init__(self) -> None:
        """Start at epoch 0."""
        self.epoch = 0
        self.explicit = False

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (the shuffle of epoch *e* depends on seed and *e*).

        Args:
            epoch: the epoch.
        """
        self.epoch = epoch
        self.explicit = True


class _SequentialEpochSampler(SequentialSampler, EpochSampler):
    """The epoch of a loader that does not shuffle, a ``SequentialSampler``.

    Lightning takes a loader whose sampler is no ``SequentialSampler`` for a
    shuffling one: with ``overfit_batches`` it then tries to rebuild it as a
    ``DataLoader`` with another sampler, which fails for this loader.
    """

    def __init__(self, size: int) -> None:
        """Start at epoch 0, over the positions ``0 .. size - 1``.

        Args:
            size: the number of samples of the loader's dataset.
        """
        SequentialSampler.__init__(self, range(size))
        EpochSampler.__init__(self)


def threaded_source(dataset: Any) -> tuple[S2100K, list[int]] | None:
    """The S2100K under *dataset* and the indices it selects, if threads suit it.

    Args:
        dataset: a dataset, possibly wrapped in (nested)
            :class:`~torch.utils.data.Subset`.

    Returns:
        ``(s2100k, indices)`` when the dataset is this package's S2100K in
        ``'both'`` mode on the packed layout without *transforms*, reading
        one date or pairs of dates (not ``dates='all'``); else None.
    """
    indices: list[int] | None = None
    while isinstance(dataset, Subset):
        outer = list(dataset.indices)
        indices = outer if indices is None else [outer[i] for i in indices]
        dataset = dataset.dataset
    if not isinstance(dataset, S2100K):
        return None
    if dataset.packed is None or dataset.transforms is not None:
        return None
    if dataset.mode != 'both' or dataset.dates == 'all':
        return None
    return dataset, list(range(len(dataset))) if indices is None else indices


class _BatchBuffers:
    """Batch arrays in ordinary memory, handed out again once released.

    The CPU counterpart of PyTorch's caching host allocator for pinned
    batches: a fresh array of a batch would be zeroed and faulted in, page by
    page, for every batch (on two cores, a third of the time of a threaded
    read). Each block is lent as a new ndarray view that the returned tensor
    holds (``torch.from_numpy``); the pool keeps only a weak reference to
    that view, so a block is lent again only once every tensor made from it
    is gone, however long the consumer keeps a batch. Safe to use from
    several threads (iterators of one loader in different threads).
    """

    def __init__(self, capacity: int) -> None:
        """Keep at most *capacity* blocks per batch shape.

        Args:
            capacity: blocks kept per shape (more batches alive at once get
                arrays of their own, freed as usual).
        """
        self.capacity = capacity
        self._blocks: dict[
            tuple[int, ...], list[tuple[NDArray[np.uint16], weakref.ref[Any]]]
        ] = {}
        # held from finding a block free to marking it lent
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A uint16 tensor of *shape* (uninitialized) that nothing else uses.

        Args:
            shape: its shape.

        Returns:
            The tensor.
        """
        with self._lock:
            blocks = self._blocks.setdefault(shape, [])
            for i, (block, lent) in enumerate(blocks):
                if lent() is None:
                    view = block.view()
                    blocks[i] = (block, weakref.ref(view))
                    return torch.from_numpy(view)
            block = np.empty(shape, dtype=np.uint16)
            view = block.view()
            if len(blocks) < self.capacity:
                blocks.append((block, weakref.ref(view)))
            return torch.from_numpy(view)


class _Pass:
    """One iteration over a :class:`ThreadedBatchLoader`: its own state."""

    def __init__(self, epoch: int) -> None:
        """Start an iteration over the batches of *epoch*.

        Args:
            epoch: the epoch whose order it follows.
        """
        self.epoch = epoch
        #: Batches of the epoch done: yielded (and, resumed, skipped).
        self.batches = 0
        #: The positions in the dataset of every batch yielded.
        self.seen: list[list[int]] = []


class RestartingDataLoader(DataLoader[Any]):
    """A ``DataLoader`` whose place in an epoch goes into a checkpoint.

    It cannot continue an epoch (its sampler keeps no place), but Lightning
    refuses to resume a checkpoint holding a train loader's state with a
    loader that has none, so without this a run saved with
    :class:`ThreadedBatchLoader` could not be resumed with worker processes.
    :meth:`load_state_dict` accepts the state of either loader and restarts
    the epoch, with a warning when the checkpoint was saved mid-epoch (which
    Lightning itself warns of only for a loader without a state): Lightning
    counts the batches done before the checkpoint, so the rest of that epoch
    is the start of a new order, as with a plain ``DataLoader``.
    """

    _batches = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        """Yield the batches of an epoch, counting them for :meth:`state_dict`."""
        self._batches = 0
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The batches of the latest epoch done, for a checkpoint.

        Returns:
            ``loader`` (``'DataLoader'``), ``batches`` and ``num_batches``.
        """
        return {
            'loader': _DATALOADER_STATE,
            'batches': self._batches,
            'num_batches': len(self),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take a checkpoint's loader state: the epoch starts afresh.

        Args:
            state_dict: what :meth:`state_dict` or
                :meth:`ThreadedBatchLoader.state_dict` returned.

        Raises:
            ValueError: if *state_dict* is not a dict, or its ``batches`` or
                ``num_batches`` is no integer of at least 0.
        """
        kind = (
            'a DataLoader'
            if isinstance(state_dict, Mapping)
            and state_dict.get('loader') == _DATALOADER_STATE
            else 'the threaded loader, and is resumed with a DataLoader'
        )
        _warn_of_restart(state_dict, kind)


def _warn_of_restart(state_dict: Any, kind: str) -> None:
    """Warn that a state saved mid-epoch by *kind* restarts its epoch.

    Raises:
        ValueError: as :func:`_batch_counts`.
    """
    batches, num_batches = _batch_counts(state_dict)
    if 0 < batches < num_batches:
        warnings.warn(
            _restart_warning(batches, num_batches, kind), UserWarning, stacklevel=3
        )


def _batch_counts(state_dict: Any) -> tuple[int, int]:
    """The ``batches`` and ``num_batches`` of a loader state, checked."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            "state_dict must be a dict (from a loader's state_dict), got a "
            f'{type(state_dict).__name__}'
        )
    counts = []
    for key in ('batches', 'num_batches'):
        if key not in state_dict:
            raise ValueError(
                f'state_dict lacks {key!r}: a loader state has it, got '
                f'{sorted(map(str, state_dict))}'
            )
        counts.append(check_int(f'state_dict[{key!r}]', state_dict[key], minimum=0))
    return counts[0], counts[1]


class ThreadedBatchLoader:
    """Batches of a packed S2-100K read by threads into (pinned) memory.

    Yields ``{'image': (B, C, H, W) uint16, 'point': (B, 2) float64}`` (float32
    images when the dataset's ``image_dtype`` is float32), the batches a
    ``DataLoader`` with :func:`~torchgeo_satclip.datamodules.collate_sample_batch`
    gives, with the same values. Pairs of dates (``dates='pair'``) give
    ``image`` ``(B, 2, C, H, W)`` and every other tensor the dataset draws
    with them (:meth:`~torchgeo_satclip.datasets.S2100K.draw`: ``date``
    ``(B, 2)``); the pairs are drawn in the main process, batch after batch,
    from torch's global RNG.

    Each iterator has its own epoch and progress, as a ``DataLoader``'s
    does. :meth:`state_dict` tells where the latest one is in its epoch;
    Lightning saves it in every checkpoint, and gives it to
    :meth:`load_state_dict` when a run resumes from one, so a run resumed
    from a checkpoint saved mid-epoch continues that epoch with the batches
    not yet seen, in the order of the uninterrupted run (the same seed,
    epoch, batch size and number of ranks; with other settings the epoch
    starts afresh, with a warning).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        num_threads: int = 4,
        pin_memory: bool = False,
        prefetch: int = 2,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        """Initialize a new ThreadedBatchLoader.

        Args:
            dataset: an S2100K on the packed layout without transforms, or a
                (nested) Subset of one (see :func:`threaded_source`).
            batch_size: samples per batch.
            shuffle: a new seeded order every epoch.
            drop_last: drop the last incomplete batch.
            num_threads: reading threads.
            pin_memory: allocate batches in page-locked memory (needs CUDA);
                without it they come from a small pool of ordinary blocks,
                each lent again once no tensor of its batch is left. Where no
                accelerator is found it is ignored with a warning, as a
                ``DataLoader`` does.
            prefetch: batches read ahead of the one being used.
            seed: seed of the shuffle (the same on every rank): any
                integer, a numpy one too, as the datamodule's split takes
                (taken modulo 2**64, which keeps the order of every seed
                ``torch.Generator`` accepts).
            rank: this process's rank (default: from ``torch.distributed``,
                read at every epoch and length, so a loader built before the
                process group exists still splits the data once it does).
            world_size: number of ranks (default: from ``torch.distributed``,
                read as ``rank`` is).

        Raises:
            ValueError: on an unsuitable dataset, or an invalid argument (the
                sizes, ranks and seed are integers, a bool is none, and the
                flags are True or False).
        """
        source = threaded_source(dataset)
        if source is None:
            raise ValueError(
                'ThreadedBatchLoader needs an S2100K on the packed layout, in '
                "'both' mode, without transforms, with dates 'index' or 'pair' "
                '(or a Subset of one)'
            )
        batch_size = check_int('batch_size', batch_size, minimum=1)
        num_threads = check_int('num_threads', num_threads, minimum=1)
        prefetch = check_int('prefetch', prefetch, minimum=1)
        for name, flag in (
            ('shuffle', shuffle),
            ('drop_last', drop_last),
            ('pin_memory', pin_memory),
        ):
            check_flag(name, flag)
        if (rank is None) != (world_size is None):
            raise ValueError(
                f'give both rank and world_size or neither, not rank={rank} and '
                f'world_size={world_size}'
            )
        if rank is not None and world_size is not None:
            rank = check_int('rank', rank)
            world_size = check_int('world_size', world_size, minimum=1)
            _check_rank(rank, world_size)
        #: The dataset given, as a ``DataLoader`` keeps it: the positions of
        #: :attr:`seen_batch_indices` index it, and ``len`` is its length.
        self.dataset: Any = dataset
        #: The S2100K read, and the index in it of each position of
        #: :attr:`dataset`.
        self.source, self.indices = source
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.num_threads = num_threads
        self.pin_memory = pin_memory
        self.prefetch = prefetch
        self.seed = check_int('seed', seed)
        self._rank = rank
        self._world_size = world_size
        #: Lightning calls ``sampler.set_epoch(epoch)`` at every epoch. Without
        #: *shuffle* it is a ``SequentialSampler``, by which Lightning tells
        #: a loader that does not shuffle (``overfit_batches`` needs one).
        self.sampler: EpochSampler = (
            EpochSampler() if shuffle else _SequentialEpochSampler(len(self.indices))
        )
        #: None, as a ``DataLoader`` without a batch sampler: Lightning reads
        #: it (and :attr:`sampler`) to tell whether a loader shuffles.
        self.batch_sampler = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()  # two iterators may start at once
        # the latest iteration started (its epoch, positions and progress)
        self._latest: _Pass | None = None
        # (epoch, batches done) of a loaded state, for the next iteration
        self._resume: tuple[int, int] | None = None
        # the batches read ahead, the one being used, one the consumer may
        # still hold (Lightning fetches one ahead) and one spare
        self._buffers = _BatchBuffers(prefetch + 4)

    @property
    def seen_batch_indices(self) -> list[list[int]]:
        """The positions in the dataset of every batch of the latest iteration.

        Those the latest iterator started (its first batch asked for) has
        yielded so far, as Lightning records them for a prediction
        ``DataLoader`` (so that :class:`~torchgeo_satclip.tasks.EmbeddingWriter`
        can merge the shares of several processes in dataset order). Each
        iterator keeps its own list: an iterator started meanwhile does not
        change another's.
        """
        return [] if self._latest is None else self._latest.seen

    @property
    def rank(self) -> int:
        """This process's rank: as given, else ``torch.distributed``'s now."""
        return self._ranks()[0]

    @property
    def world_size(self) -> int:
        """The number of ranks: as given, else ``torch.distributed``'s now."""
        return self._ranks()[1]

    def _ranks(self) -> tuple[int, int]:
        """``(rank, world_size)``, from ``torch.distributed`` unless given."""
        if self._rank is not None and self._world_size is not None:
            return self._rank, self._world_size
        distributed = (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        )
        if not distributed:
            return 0, 1
        rank, world_size = (
            torch.distributed.get_rank(),
            torch.distributed.get_world_size(),
        )
        _check_rank(rank, world_size)
        return rank, world_size

    def _num_samples(self, world_size: int) -> int:
        """Samples per rank and epoch over *world_size* ranks (padded)."""
        return math.ceil(len(self.indices) / world_size)

    def __len__(self) -> int:
        """Number of batches per epoch.

        Returns:
            The number of batches of this rank.
        """
        n = self._num_samples(self.world_size)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self, epoch: int) -> list[int]:
        """This rank's positions in the loader's dataset for *epoch*.

        Positions index the dataset the loader was given (a Subset's own
        positions); ``self.indices[position]`` is the S2-100K index read.
        """
        rank, world_size = self._ranks()
        indices = list(range(len(self.indices)))
        if self.shuffle:
            seed = (self.seed + epoch) % 2**64
            generator = torch.Generator().manual_seed(seed)
            permutation = torch.randperm(len(indices), generator=generator).tolist()
            indices = [indices[i] for i in permutation]
        total = self._num_samples(world_size) * world_size
        if total > len(indices):  # pad by repeating, as DistributedSampler does
            repeats = math.ceil(total / max(len(indices), 1))
            indices = (indices * repeats)[:total]
        return indices[rank:total:world_size]

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        """Yield the batches of one epoch, reading ahead in the threads.

        Yields:
            The batches.

        Raises:
            RuntimeError: if an image cannot be read (the message names the
                file), once no thread writes into its batch any more.
        """
        pin = self.pin_memory and _can_pin()
        if self.pin_memory and not pin:
            warnings.warn(
                "'pin_memory' is true but no accelerator is found: the "
                'ThreadedBatchLoader does not pin its batches',
                stacklevel=2,
            )
        progress = _Pass(self.sampler.epoch)
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == progress.epoch:
            progress.batches = resume[1]  # the batches before are not read
        order = self._order(progress.epoch)
        if not self.sampler.explicit:
            self.sampler.epoch += 1  # outside Lightning: a new order next time
        else:
            self.sampler.explicit = False
        starts = range(0, len(order), self.batch_size)
        batches = [order[i : i + self.batch_size] for i in starts]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        self._latest = progress
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.num_threads, thread_name_prefix='s2100k-read'
                )
        pending: deque[tuple[dict[str, Tensor], list[Future[None]]]] = deque()
        next_batch = progress.batches
        try:
            while pending or next_batch < len(batches):
                while next_batch < len(batches) and len(pending) <= self.prefetch:
                    read = [self.indices[i] for i in batches[next_batch]]
                    pending.append(self._submit(read, pin))
                    next_batch += 1
                # popped once read: if a thread fails, the finally below
                # waits for the other threads of its batch too
                batch, futures = pending[0]
                for future in futures:
                    future.result()
                pending.popleft()
                if self.source.image_dtype == 'float32':
                    # Converted into page-locked memory when pinning: the
                    # float32 batch is the one copied to the device.
                    image = batch['image']
                    converted = torch.empty(
                        image.shape, dtype=torch.float32, pin_memory=pin
                    )
                    batch['image'] = converted.copy_(image)
                progress.seen.append(batches[progress.batches])
                progress.batches += 1
                yield batch
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()
                for future in futures:
                    if not future.cancelled():
                        future.exception()  # wait: the buffer must outlive it

    def state_dict(self) -> dict[str, Any]:
        """Where the latest iteration is in its epoch, for a checkpoint.

        Lightning saves it in a checkpoint and gives it to
        :meth:`load_state_dict` when a run resumes from that checkpoint.

        Returns:
            ``epoch`` and ``batches`` (the batches of that epoch done), and
            what the order of the batches depends on: ``batch_size``,
            ``drop_last``, ``shuffle``, ``seed``, ``num_samples`` (the
            dataset's length), ``world_size`` and ``num_batches`` (the
            batches of an epoch per rank). All plain ints and bools.
        """
        if self._resume is not None:  # loaded, and not iterated since
            epoch, batches = self._resume
        elif self._latest is not None:
            epoch, batches = self._latest.epoch, self._latest.batches
        else:
            epoch, batches = self.sampler.epoch, 0
        return {'epoch': int(epoch), 'batches': batches, **self._layout()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a state of :meth:`state_dict`, as Lightning resumes.

        The next iteration of the saved epoch gives the batches of it not
        yet done, in the same order, without reading those before (pairs of
        dates are drawn for the batches read only). A state saved at the end
        of an epoch starts the next one. Lightning sets the epoch after
        loading: another epoch than the saved one starts from its start. A
        state saved with another order of the batches (another
        ``batch_size``, ``drop_last``, ``shuffle``, ``seed``, dataset length
        or ``world_size``) restarts the saved epoch, with a warning.

        Args:
            state_dict: what :meth:`state_dict` returned.

        Raises:
            ValueError: if *state_dict* is not a dict, lacks a key, or holds
                an epoch or a number of batches that is no integer of at
                least 0; the message names the key and the value.
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                'state_dict must be a dict (from ThreadedBatchLoader.state_dict), '
                f'got a {type(state_dict).__name__}'
            )
        if state_dict.get('loader') == _DATALOADER_STATE:
            # saved with worker processes, which keep no order to continue
            self._resume = None
            _warn_of_restart(state_dict, 'a DataLoader')
            return
        layout = self._layout()
        for key in ('epoch', 'batches', *layout):
            if key not in state_dict:
                raise ValueError(
                    f'state_dict lacks {key!r}: a ThreadedBatchLoader.state_dict '
                    f'has {sorted(("epoch", "batches", *layout))}, got '
                    f'{sorted(map(str, state_dict))}'
                )
        epoch = check_int("state_dict['epoch']", state_dict['epoch'], minimum=0)
        batches, num_batches = _batch_counts(state_dict)
        self._resume = None
        self.sampler.epoch = epoch
        self.sampler.explicit = False
        if batches >= num_batches:  # the epoch was done: the next one
            self.sampler.epoch = epoch + 1
            return
        if batches == 0:
            return
        changed = [
            f'{key} {state_dict[key]!r} -> {value!r}'
            for key, value in layout.items()
            if state_dict[key] != value
        ]
        if changed:
            warnings.warn(
                f'the ThreadedBatchLoader state was saved {batches} batches '
                f'into epoch {epoch} with another order of the batches '
                f'({", ".join(changed)}): the loader starts epoch {epoch} '
                f'afresh while Lightning counts its first {batches} batches as '
                'done, so the rest of the epoch is drawn from a new order (some '
                'samples are trained on twice in it, others not at all); resume '
                'with the same settings to continue it',
                stacklevel=2,
            )
            return
        self._resume = (epoch, batches)

    def _layout(self) -> dict[str, Any]:
        """What the order of the batches depends on, for :meth:`state_dict`."""
        return {
            'batch_size': self.batch_size,
            'drop_last': self.drop_last,
            'shuffle': self.shuffle,
            'seed': self.seed % 2**64,
            'num_samples': len(self.indices),
            'world_size': self.world_size,
            'num_batches': len(self),
        }

    def _submit(
        self, indices: Sequence[int], pin: bool
    ) -> tuple[dict[str, Tensor], list[Future[None]]]:
        """Draw one batch, allocate it (pinned if *pin*) and start reading it."""
        fns, fields = self.source.draw(indices)
        shape = self.source.batch_shape(len(indices))
        if pin:
            image = torch.empty(shape, dtype=torch.uint16, pin_memory=True)
            fields = {key: value.pin_memory() for key, value in fields.items()}
        else:
            image = self._buffers.take(shape)
        out = image.view(len(fns), *shape[-3:]).numpy()
        chunk = -(-len(fns) // self.num_threads)
        assert self._pool is not None
        futures = [
            self._pool.submit(
                self.source.read_files, fns[i : i + chunk], out[i : i + chunk]
            )
            for i in range(0, len(fns), chunk)
        ]
        return {'image': image, **fields}, futures

    def __del__(self) -> None:
        """Stop the threads."""
        pool = getattr(self, '_pool', None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _can_pin() -> bool:
    """Whether memory can be pinned: an accelerator is found (``DataLoader``'s test)."""
    accelerator = getattr(torch, 'accelerator', None)  # torch >= 2.6
    if accelerator is None:
        return torch.cuda.is_available()
    return bool(accelerator.is_available())


def _check_rank(rank: int, world_size: int) -> None:
    """Raise ``ValueError`` unless ``0 <= rank < world_size``."""
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} is not in [0, {world_size})')
