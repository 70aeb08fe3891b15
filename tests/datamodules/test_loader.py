import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from torchgeo_satclip.datamodules import (
    S2100KDataModule,
    ThreadedBatchLoader,
    collate_sample_batch,
)
from torchgeo_satclip.datamodules.loader import (
    RestartingDataLoader,
    _BatchBuffers,
    threaded_source,
)
from torchgeo_satclip.datasets import S2100K, pack_s2_100k

DATA = Path(__file__).parents[1] / 'data' / 's2_100k'


@pytest.fixture(scope='module')
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('loader') / 's2_100k'
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    return root


@pytest.fixture
def dataset(root: Path) -> S2100K:
    return S2100K(root, patch_size=32, image_dtype='uint16')


def points_of(batches: list[dict[str, torch.Tensor]]) -> list[tuple[float, float]]:
    return [tuple(p.tolist()) for b in batches for p in b['point']]  # type: ignore[misc]


@pytest.mark.parametrize('num_threads', [1, 2, 3])
@pytest.mark.parametrize('batch_size', [1, 3, 8])
def test_same_batches_as_a_dataloader(
    dataset: S2100K, num_threads: int, batch_size: int
) -> None:
    threaded = list(ThreadedBatchLoader(dataset, batch_size, num_threads=num_threads))
    plain = list(DataLoader(dataset, batch_size, collate_fn=collate_sample_batch))
    assert len(threaded) == len(plain)
    for a, b in zip(threaded, plain, strict=True):
        assert a['image'].dtype == torch.uint16
        assert torch.equal(a['image'], b['image'])
        assert torch.equal(a['point'], b['point'])


def test_float32_dataset(root: Path) -> None:
    dataset = S2100K(root, patch_size=32)
    batch = next(iter(ThreadedBatchLoader(dataset, 4)))
    assert batch['image'].dtype == torch.float32
    assert torch.equal(batch['image'][2], dataset[2]['image'])


def test_subsets(dataset: S2100K) -> None:
    inner = Subset(dataset, [7, 5, 3, 1, 0])
    outer = Subset(inner, [4, 1, 2])  # dataset indices 0, 5, 3
    batch = next(iter(ThreadedBatchLoader(outer, 3)))
    expected = torch.stack([dataset[i]['image'] for i in (0, 5, 3)])
    assert torch.equal(batch['image'], expected)


def test_shuffle_covers_everything_and_changes_per_epoch(dataset: S2100K) -> None:
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=4)
    first = points_of(list(loader))
    second = points_of(list(loader))
    everything = points_of([next(iter(ThreadedBatchLoader(dataset, len(dataset))))])
    assert sorted(first) == sorted(second) == sorted(everything)
    assert first != second  # a new order each epoch outside Lightning
    # Lightning sets the epoch: the order is a function of seed and epoch
    again = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=4)
    again.sampler.set_epoch(0)
    assert points_of(list(again)) == first
    again.sampler.set_epoch(1)
    assert points_of(list(again)) == second


def test_drop_last_and_len(dataset: S2100K) -> None:
    assert len(dataset) == 8
    kept = ThreadedBatchLoader(dataset, 3, drop_last=True)
    assert len(kept) == 2
    assert [len(b['image']) for b in kept] == [3, 3]
    loader = ThreadedBatchLoader(dataset, 3)
    assert len(loader) == 3
    assert [len(b['image']) for b in loader] == [3, 3, 2]


@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_share_one_shuffle(dataset: S2100K, world_size: int) -> None:
    per_rank = [
        points_of(
            list(
                ThreadedBatchLoader(
                    dataset, 2, shuffle=True, seed=1, rank=r, world_size=world_size
                )
            )
        )
        for r in range(world_size)
    ]
    lengths = {len(points) for points in per_rank}
    assert lengths == {-(-len(dataset) // world_size)}  # padded, equal lengths
    union = [p for points in per_rank for p in points]
    everything = points_of([next(iter(ThreadedBatchLoader(dataset, len(dataset))))])
    assert set(union) == set(everything)
    assert len(union) - len(set(union)) == len(union) - len(dataset)  # padding only


def test_stopping_early_waits_for_the_threads(dataset: S2100K) -> None:
    loader = ThreadedBatchLoader(dataset, 1, num_threads=2, prefetch=4)
    for batch in loader:
        assert batch['image'].shape[0] == 1
        break  # the batches read ahead are awaited, not left writing
    assert len(list(loader)) == 8


def test_a_failed_read_waits_for_the_rest_of_its_batch(
    dataset: S2100K, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error of one thread reaches the caller only once the other threads
    of its batch are done: they were left writing into the batch (and reading
    the memory maps) after the caller had the exception."""
    import threading

    real_read = dataset.read_files
    failing, slow = dataset.files[0:2], dataset.files[2:4]
    release = threading.Event()
    done = threading.Event()

    def read_files(fns: list[str], out: np.ndarray) -> None:
        if list(fns) == failing:
            raise RuntimeError(f'cannot read {fns[0]}')
        if list(fns) == slow:
            release.wait(0.5)  # long after the failure reached the caller
        real_read(fns, out)
        if list(fns) == slow:
            done.set()

    monkeypatch.setattr(dataset, 'read_files', read_files)
    loader = ThreadedBatchLoader(dataset, 4, num_threads=2, prefetch=1)
    with pytest.raises(RuntimeError, match=f'cannot read {failing[0]}'):
        list(loader)
    assert done.is_set()
    release.set()
    monkeypatch.undo()
    assert len(list(loader)) == 2  # the loader still works


def test_released_batches_are_read_into_the_same_blocks(dataset: S2100K) -> None:
    """Without pinning, blocks come back once released, and values stay right."""
    loader = ThreadedBatchLoader(dataset, 1, num_threads=2, prefetch=1)
    expected = list(DataLoader(dataset, 1, collate_fn=collate_sample_batch))
    for _ in range(2):
        addresses = set()
        for batch, plain in zip(loader, expected, strict=True):
            assert torch.equal(batch['image'], plain['image'])
            addresses.add(batch['image'].data_ptr())
            del batch
        blocks = loader._buffers._blocks[(1, 12, 32, 32)]
        assert len(blocks) < len(expected) == 8  # reused, not one per batch
        # every batch was read into one of the pool's blocks (how many blocks
        # an epoch needs depends on how fast the threads are)
        assert addresses <= {block.ctypes.data for block, _ in blocks}


def test_held_batches_are_never_read_into(dataset: S2100K) -> None:
    loader = ThreadedBatchLoader(dataset, 1, num_threads=2, prefetch=1)
    images = [batch['image'][0] for batch in loader]  # views of every block
    again = [batch['image'][0] for batch in loader]
    expected = [dataset[i]['image'] for i in range(len(dataset))]
    assert len({image.data_ptr() for image in images + again}) == 16
    for image, other, value in zip(images, again, expected, strict=True):
        assert torch.equal(image.float(), value)
        assert torch.equal(other.float(), value)


def test_batch_buffers() -> None:
    buffers = _BatchBuffers(capacity=2)
    first = buffers.take((2, 3))
    address = first.data_ptr()
    row = first[1]
    array = first.numpy()
    del first
    held = [buffers.take((2, 3)) for _ in range(3)]
    assert address not in {t.data_ptr() for t in held}  # a view and an array hold it
    del row
    assert buffers.take((2, 3)).data_ptr() != address  # the array still holds it
    del array
    assert buffers.take((2, 3)).data_ptr() == address
    assert buffers.take((3, 2)).shape == (3, 2)  # another shape: another block
    assert len(buffers._blocks[(2, 3)]) == 2  # at most capacity kept per shape


@pytest.mark.parametrize(
    'kwargs',
    [
        {'layout': 'geotiff'},
        {'mode': 'points'},
        {'transforms': lambda sample: sample},
    ],
)
def test_unsuitable_datasets(root: Path, kwargs: dict[str, object]) -> None:
    dataset = S2100K(root, patch_size=32, **kwargs)  # type: ignore[arg-type]
    assert threaded_source(dataset) is None
    with pytest.raises(ValueError, match='needs an S2100K on the packed layout'):
        ThreadedBatchLoader(dataset, 2)


def test_invalid_arguments(dataset: S2100K) -> None:
    with pytest.raises(ValueError, match='batch_size must be at least 1, got 0'):
        ThreadedBatchLoader(dataset, 0)
    with pytest.raises(ValueError, match='num_threads must be at least 1, got 0'):
        ThreadedBatchLoader(dataset, 2, num_threads=0)
    with pytest.raises(ValueError, match='prefetch must be at least 1, got 0'):
        ThreadedBatchLoader(dataset, 2, prefetch=0)
    with pytest.raises(ValueError, match=r'rank 2 is not in \[0, 2\)'):
        ThreadedBatchLoader(dataset, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match='give both rank and world_size or neither'):
        ThreadedBatchLoader(dataset, 2, rank=1)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        (
            {'batch_size': 2.0},
            r'batch_size must be an integer, got 2\.0 \(type float\)',
        ),
        ({'batch_size': True}, 'batch_size must be an integer, got True'),
        ({'batch_size': None}, 'batch_size must be an integer, got None'),
        ({'num_threads': 2.5}, 'num_threads must be an integer, got 2.5'),
        ({'prefetch': 1.5}, 'prefetch must be an integer, got 1.5'),
        ({'shuffle': 'no'}, "shuffle must be True or False, got 'no'"),
        ({'drop_last': 1}, 'drop_last must be True or False, got 1'),
        ({'pin_memory': None}, 'pin_memory must be True or False, got None'),
        ({'rank': True, 'world_size': 2}, 'rank must be an integer, got True'),
        ({'rank': 0, 'world_size': 0}, 'world_size must be at least 1, got 0'),
        ({'rank': -1, 'world_size': 2}, r'rank -1 is not in \[0, 2\)'),
        ({'seed': 1.5}, r'seed must be an integer, got 1\.5 \(type float\)'),
        ({'seed': True}, 'seed must be an integer, got True'),
        ({'seed': '7'}, "seed must be an integer, got '7'"),
    ],
)
def test_arguments_of_the_wrong_type(
    dataset: S2100K, kwargs: dict[str, Any], message: str
) -> None:
    """Refused when built, naming the argument, as a DataLoader's batch_size is:
    a float batch_size failed later in ``len`` or at the first batch, and a
    flag taken for a size (``batch_size=True``) or a string taken for a flag
    (``shuffle='no'`` shuffled) ran; a seed of another type raised TypeError
    without naming it, or (``True``) seeded the shuffle as 1."""
    arguments: dict[str, Any] = {'batch_size': 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        ThreadedBatchLoader(dataset, **arguments)


def test_numpy_integers_are_sizes(dataset: S2100K) -> None:
    sizes: dict[str, Any] = {'num_threads': np.int32(2), 'prefetch': np.int64(1)}
    loader = ThreadedBatchLoader(dataset, np.int64(3), **sizes)  # type: ignore[arg-type]
    assert (loader.batch_size, loader.num_threads, loader.prefetch) == (3, 2, 1)
    assert type(loader.batch_size) is int
    assert [len(batch['image']) for batch in loader] == [3, 3, 2]


def test_ranks_are_read_when_used(
    dataset: S2100K, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader built before the process group exists splits the data once it
    does: rank and world size come from torch.distributed at every epoch."""
    loader = ThreadedBatchLoader(dataset, 2)
    assert (loader.rank, loader.world_size, len(loader)) == (0, 1, 4)
    whole = points_of(list(loader))
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda: 2)
    monkeypatch.setattr(torch.distributed, 'get_rank', lambda: 1)
    assert (loader.rank, loader.world_size, len(loader)) == (1, 2, 2)
    assert points_of(list(loader)) == whole[1::2]
    # Given values win over the process group's.
    given = ThreadedBatchLoader(dataset, 2, rank=0, world_size=1)
    assert (given.rank, given.world_size, len(given)) == (0, 1, 4)


@pytest.fixture(scope='module')
def temporal_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('loader') / 'temporal'
    shutil.copytree(DATA / 'temporal', root)
    pack_s2_100k(root, patch_size=16, shard_size=3, progress=False)
    return root


@pytest.mark.parametrize('num_threads', [1, 2])
def test_pairs_of_dates_as_a_dataloader(temporal_root: Path, num_threads: int) -> None:
    """Pairs drawn from the same RNG state give a DataLoader's batches, dates too."""
    dataset = S2100K(temporal_root, patch_size=16, image_dtype='uint16', dates='pair')
    for seed in range(3):
        torch.manual_seed(seed)
        threaded = list(ThreadedBatchLoader(dataset, 2, num_threads=num_threads))
        torch.manual_seed(seed)
        plain = list(
            DataLoader(
                dataset,
                2,
                collate_fn=collate_sample_batch,
                generator=torch.Generator(),  # the loader's seed: not the pairs' RNG
            )
        )
        assert len(threaded) == len(plain) == 2
        for a, b in zip(threaded, plain, strict=True):
            assert list(a) == ['image', 'point', 'date']
            assert a['image'].shape[1:] == (2, 12, 16, 16)
            assert a['date'].shape == (len(a['image']), 2)
            assert (a['date'][:, 0] != a['date'][:, 1]).all()
            for key in a:
                assert torch.equal(a[key], b[key])


def test_all_dates_are_not_threaded(temporal_root: Path) -> None:
    dataset = S2100K(temporal_root, patch_size=16, dates='all')
    assert threaded_source(dataset) is None
    with pytest.raises(ValueError, match="with dates 'index' or 'pair'"):
        ThreadedBatchLoader(dataset, 2)


def test_threads_open_each_shard_once_and_one_at_a_time(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards are opened under a lock: each mapped once, and no two headers
    parsed at once (CPython 3.11.7's ``ast.literal_eval``, which ``np.load``
    uses, failed here from concurrent threads with "SystemError: AST
    constructor recursion depth mismatch")."""
    import threading
    import time

    import numpy as np

    real_load = np.load
    inside = 0
    most = 0
    opened: list[str] = []
    count_lock = threading.Lock()

    def slow_load(path: Any, *args: Any, **kwargs: Any) -> object:
        nonlocal inside, most
        with count_lock:
            inside += 1
            most = max(most, inside)
            opened.append(Path(str(path)).name)
        time.sleep(0.05)  # long enough for the other threads to arrive
        try:
            return real_load(path, *args, **kwargs)  # type: ignore[call-overload]
        finally:
            with count_lock:
                inside -= 1

    monkeypatch.setattr('torchgeo_satclip.datasets.s2_100k_files.np.load', slow_load)
    dataset = S2100K(root, patch_size=32, image_dtype='uint16')
    batches = list(ThreadedBatchLoader(dataset, 1, num_threads=3))
    assert len(batches) == len(dataset)
    assert most == 1
    assert len(opened) == len(set(opened)) == 3  # 8 patches in shards of 3


class _RecordTrainPoints(LightningModule):
    """Records the points of every training batch, per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[list[list[float]]] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> Tensor:
        if batch_idx == 0:
            self.seen.append([])
        self.seen[-1].extend(batch['point'].tolist())
        out: Tensor = self.layer(batch['image'].mean().view(1, 1)).sum()
        return out

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        pass

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(root: Path, loader: str, **trainer_kwargs: Any) -> _RecordTrainPoints:
    """Fit a module on S2100KDataModule's *loader*, recording the training points."""
    dm = S2100KDataModule(
        root=root,
        patch_size=32,
        batch_size=2,
        num_workers=0 if loader == 'processes' else 2,
        val_split_pct=0.25,
        crop_size=16,
        jitter=0.0,
        loader=loader,  # type: ignore[arg-type]
    )
    module = _RecordTrainPoints()
    trainer = Trainer(
        accelerator='cpu',
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=dm)
    expected = ThreadedBatchLoader if loader == 'threads' else DataLoader
    assert isinstance(trainer.train_dataloader, expected)
    return module


def test_lightning_overfit_batches(root: Path) -> None:
    """Lightning's overfit_batches (the same first batches, unshuffled, every
    epoch) works as with a DataLoader: Lightning cannot rebuild this loader
    without shuffling, as it does a DataLoader, so it must not shuffle."""
    threads = _fit(root, 'threads', max_epochs=2, overfit_batches=2)
    processes = _fit(root, 'processes', max_epochs=2, overfit_batches=2)
    assert len(threads.seen) == 2
    assert [len(points) for points in threads.seen] == [4, 4]
    assert threads.seen == processes.seen


def test_pin_memory_without_an_accelerator(
    dataset: S2100K, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a DataLoader: a warning, and unpinned batches (a config made for a
    GPU machine, ``pin_memory: true``, still runs on a CPU machine)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    if hasattr(torch, 'accelerator'):
        monkeypatch.setattr(torch.accelerator, 'is_available', lambda: False)
    loader = ThreadedBatchLoader(dataset, 3, num_threads=2, pin_memory=True)
    with pytest.warns(UserWarning, match='no accelerator is found'):
        threaded = list(loader)
    plain = list(DataLoader(dataset, 3, collate_fn=collate_sample_batch))
    assert len(threaded) == len(plain) == 3
    for a, b in zip(threaded, plain, strict=True):
        assert not a['image'].is_pinned()
        assert torch.equal(a['image'], b['image'])
        assert torch.equal(a['point'], b['point'])


def test_any_integer_seeds_the_shuffle(dataset: S2100K) -> None:
    """Numpy integers and integers beyond 64 bits, as the datamodule's split
    takes them (its ``seed`` seeds the training loader too)."""

    def order(seed: object, epoch: int = 0) -> list[tuple[float, float]]:
        loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=seed)  # type: ignore[arg-type]
        loader.sampler.set_epoch(epoch)
        return points_of(list(loader))

    assert order(np.int64(4)) == order(4)
    assert order(np.uint64(2**64 - 1), epoch=1) == order(0)  # what -1 + 1 gives
    assert order(-1) == order(2**64 - 1)
    assert order(2**64 + 4) == order(4)
    assert order(2**70, epoch=3) == order(3)


def test_dataset_is_the_one_given(dataset: S2100K) -> None:
    """As a DataLoader's: ``len(loader.dataset)`` counts the split (as
    ``len(trainer.train_dataloader.dataset)`` does with a DataLoader), and the
    positions of ``seen_batch_indices`` index it."""
    subset = Subset(Subset(dataset, [7, 5, 3, 1, 0]), [4, 1, 2, 0])
    loader = ThreadedBatchLoader(subset, 3, shuffle=True, rank=1, world_size=2)
    assert loader.dataset is subset
    assert isinstance(loader.dataset, Subset)
    torch_loader = DataLoader(subset)
    assert isinstance(torch_loader.dataset, Subset)
    assert len(loader.dataset) == len(torch_loader.dataset) == 4
    batches = list(loader)
    assert len(loader.seen_batch_indices) == len(batches) == 1
    for batch, positions in zip(batches, loader.seen_batch_indices, strict=True):
        assert len(positions) == len(batch['point']) == 2
        for i, position in enumerate(positions):
            sample = loader.dataset[position]
            assert torch.equal(sample['point'], batch['point'][i])
            assert torch.equal(sample['image'], batch['image'][i])


def _epoch_points(dataset: S2100K, epoch: int, **kwargs: Any) -> list[Any]:
    """The points of one epoch of a fresh loader, its epoch set as Lightning does."""
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2, **kwargs)
    loader.sampler.set_epoch(epoch)
    return points_of(list(loader))


def test_two_iterators_at_once(dataset: S2100K) -> None:
    """As a DataLoader's: each iterator has its own epoch and its own record
    of the batches it gave. The second ``iter()`` emptied the one list both
    appended to: the first iterator then recorded the second's positions and
    raised IndexError once that list outgrew its epoch."""
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    first = iter(loader)
    batches = [next(first)]  # the first iterator starts epoch 0
    second = list(loader)  # a whole epoch (1) meanwhile
    batches += list(first)
    assert points_of(batches) == _epoch_points(dataset, 0)
    assert points_of(second) == _epoch_points(dataset, 1)
    # the positions of the latest iterator started, as Lightning's wrapper
    # of a DataLoader's batch sampler records those of its latest
    seen = [dataset[p]['point'].tolist() for b in loader.seen_batch_indices for p in b]
    assert [tuple(p) for p in seen] == points_of(second)
    # in lockstep, one batch each in turn
    loader = ThreadedBatchLoader(dataset, 1, num_threads=1)
    pairs = list(zip(loader, loader, strict=True))
    assert len(pairs) == len(dataset)
    for a, b in pairs:
        assert torch.equal(a['image'], b['image'])
    assert loader.seen_batch_indices == [[i] for i in range(len(dataset))]


def test_state_dict_continues_an_epoch(dataset: S2100K) -> None:
    """A loader given the state of one stopped mid-epoch gives the rest of that
    epoch (without reading the batches before), then the epochs after it."""
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    iterator = iter(loader)
    before = [next(iterator)]
    state = loader.state_dict()
    assert (state['epoch'], state['batches']) == (0, 1)
    assert loader.state_dict() == state
    rest = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    rest.load_state_dict(state)
    assert rest.state_dict() == state  # as loaded, until it iterates
    after = list(rest)
    assert points_of(before + after) == _epoch_points(dataset, 0)
    assert len(rest.seen_batch_indices) == len(after) == 2
    assert (rest.state_dict()['epoch'], rest.state_dict()['batches']) == (0, 3)
    assert points_of(list(rest)) == _epoch_points(dataset, 1)
    # the state of a finished epoch: the next epoch, from its start
    again = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    again.load_state_dict(rest.state_dict())
    assert points_of(list(again)) == _epoch_points(dataset, 2)
    # Lightning sets the epoch after loading: another epoch starts afresh
    other = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    other.load_state_dict(state)
    other.sampler.set_epoch(4)
    assert points_of(list(other)) == _epoch_points(dataset, 4)


@pytest.mark.parametrize(
    ('kwargs', 'changed'),
    [
        ({'batch_size': 2}, 'batch_size 3 -> 2'),
        ({'seed': 5}, 'seed 2 -> 5'),
        ({'shuffle': False}, 'shuffle True -> False'),
        ({'rank': 0, 'world_size': 2}, 'world_size 1 -> 2'),
    ],
)
def test_state_of_another_order_restarts_the_epoch(
    dataset: S2100K, kwargs: dict[str, Any], changed: str
) -> None:
    """Skipping the batches of another order would repeat some samples and
    leave others out: a warning names what changed, and the epoch starts afresh."""
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    next(iter(loader))
    arguments: dict[str, Any] = {'batch_size': 3, 'shuffle': True, 'seed': 2}
    arguments.update(kwargs)
    other = ThreadedBatchLoader(dataset, **arguments)
    whole = ThreadedBatchLoader(dataset, **arguments)
    whole.sampler.set_epoch(0)
    with pytest.warns(
        UserWarning, match=f'{changed}.*starts epoch 0 afresh while Lightning counts'
    ):
        other.load_state_dict(loader.state_dict())
    assert points_of(list(other)) == points_of(list(whole))


def _without_batches(state: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in state.items() if key != 'batches'}


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda state: list(state), 'state_dict must be a dict.*got a list'),
        (_without_batches, "state_dict lacks 'batches'"),
        (
            lambda state: {**state, 'batches': 1.5},
            r"state_dict\['batches'\] must be an integer, got 1.5",
        ),
        (
            lambda state: {**state, 'epoch': -1},
            r"state_dict\['epoch'\] must be at least 0, got -1",
        ),
    ],
)
def test_invalid_states(dataset: S2100K, change: Any, message: str) -> None:
    """Refused, naming the key, the value and what was expected."""
    loader = ThreadedBatchLoader(dataset, 3, shuffle=True, seed=2)
    with pytest.raises(ValueError, match=message):
        loader.load_state_dict(change(loader.state_dict()))


class _RecordTrainBatches(LightningModule):
    """Trains on a shuffling ThreadedBatchLoader, recording every batch's points."""

    def __init__(self, dataset: S2100K, kind: str = 'threads') -> None:
        super().__init__()
        self.dataset = dataset
        self.kind = kind
        self.layer = torch.nn.Linear(1, 1)
        self.seen: list[tuple[float, float]] = []

    def train_dataloader(self) -> ThreadedBatchLoader | RestartingDataLoader:
        if self.kind == 'processes':
            return RestartingDataLoader(self.dataset, batch_size=3, shuffle=True)
        return ThreadedBatchLoader(self.dataset, 3, shuffle=True, seed=2)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> Tensor:
        self.seen.extend(points_of([batch]))
        out: Tensor = self.layer(batch['image'].float().mean().view(1, 1)).sum()
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Preempted(Exception):
    pass


def _train(
    dataset: S2100K, stop_at: int | None, path: Path, kind: str = 'threads'
) -> list[Any]:
    """Train two epochs (resumed from *path* if it exists), recording the points;
    with *stop_at*, save a checkpoint to *path* after that step and stop."""
    from lightning.pytorch import Callback

    class Preempt(Callback):
        def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
            if trainer.global_step == stop_at:
                trainer.save_checkpoint(path)
                raise _Preempted

    module = _RecordTrainBatches(dataset, kind)
    trainer = Trainer(
        accelerator='cpu',
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Preempt()],
    )
    ckpt_path = path if path.exists() else None
    if stop_at is None:
        trainer.fit(module, ckpt_path=ckpt_path)
    else:
        with pytest.raises(_Preempted):
            trainer.fit(module, ckpt_path=ckpt_path)
    return module.seen


def test_lightning_resumes_mid_epoch(dataset: S2100K, tmp_path: Path) -> None:
    """A run resumed from a checkpoint saved mid-epoch continues with that
    epoch's batches not yet seen, in the order of an uninterrupted run
    (Lightning saves and loads the loader's state_dict): it restarted the
    epoch, training again on the batches before the checkpoint."""
    uninterrupted = _train(dataset, None, tmp_path / 'none.ckpt')
    assert uninterrupted == _epoch_points(dataset, 0) + _epoch_points(dataset, 1)
    # epochs of batches of 3, 3 and 2: mid-epoch 0, at its end, mid-epoch 1
    for stop_at, samples in ((1, 3), (3, 8), (5, 14)):
        path = tmp_path / f'step{stop_at}.ckpt'
        before = _train(dataset, stop_at, path)
        assert len(before) == samples
        after = _train(dataset, None, path)
        assert before + after == uninterrupted, stop_at


@pytest.mark.parametrize(
    ('saved', 'resumed', 'message'),
    [
        ('threads', 'processes', 'by the threaded loader, and is resumed with a'),
        ('processes', 'threads', 'by a DataLoader'),
        ('processes', 'processes', 'by a DataLoader'),
    ],
)
def test_resume_mid_epoch_with_the_other_loader(
    dataset: S2100K, tmp_path: Path, saved: str, resumed: str, message: str
) -> None:
    """A checkpoint saved mid-epoch with the threaded loader could not be
    resumed with worker processes (loader: processes, or num_workers: 0
    under auto): Lightning refused it, "The CombinedLoader has 0 stateful
    loaders, but found 1 states". The DataLoader the datamodule gives has a
    state too; either loader restarts the epoch of the other's state, and
    says so, as Lightning says it of a loader without a state."""
    path = tmp_path / 'step1.ckpt'
    before = _train(dataset, 1, path, saved)
    assert len(before) == 3
    with pytest.warns(UserWarning, match=f'saved 1 of 3 batches .*{message}'):
        after = _train(dataset, None, path, resumed)
    # Lightning counts the batch done: the 2 other batches of epoch 0 are the
    # start of a new order, then epoch 1 (8 samples)
    assert len(after) == 6 + 8
    if resumed == 'threads':
        assert after[:6] == _epoch_points(dataset, 0)[:6]


def test_restarting_dataloader_state(dataset: S2100K) -> None:
    loader = RestartingDataLoader(dataset, batch_size=3)
    assert loader.state_dict() == {
        'loader': 'DataLoader',
        'batches': 0,
        'num_batches': 3,
    }
    iterator = iter(loader)
    next(iterator)
    next(iterator)
    assert loader.state_dict()['batches'] == 2
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        loader.load_state_dict({'batches': 3, 'num_batches': 3})  # at the end
        loader.load_state_dict({'batches': 0, 'num_batches': 3})
    for state, error in [
        ([1, 3], 'state_dict must be a dict'),
        ({'batches': 1}, "state_dict lacks 'num_batches'"),
        ({'batches': -1, 'num_batches': 3}, "state_dict\\['batches'\\]"),
        ({'batches': 1.5, 'num_batches': 3}, "state_dict\\['batches'\\]"),
    ]:
        with pytest.raises(ValueError, match=error):
            loader.load_state_dict(state)  # type: ignore[arg-type]


def test_datamodule_processes_loader_has_a_state(root: Path) -> None:
    dm = S2100KDataModule(
        root=root,
        patch_size=32,
        batch_size=2,
        num_workers=0,
        crop_size=16,
        loader='processes',
    )
    dm.setup('fit')
    assert isinstance(dm.train_dataloader(), RestartingDataLoader)


def test_batch_buffers_lend_a_block_once_across_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two iterators in two threads take blocks at once: a block found free
    was lent to both (each found it free before the other marked it lent),
    and the two batches were read into the same memory."""
    import threading
    import time
    import weakref
    from types import SimpleNamespace

    from torchgeo_satclip.datamodules import loader

    def slow_ref(view: Any) -> Any:
        time.sleep(0.05)  # between finding a block free and marking it lent
        return weakref.ref(view)

    buffers = _BatchBuffers(capacity=2)
    buffers.take((2, 3))  # one block, free again at once
    monkeypatch.setattr(loader, 'weakref', SimpleNamespace(ref=slow_ref))
    start = threading.Barrier(2)
    taken: list[Tensor] = []

    def take() -> None:
        start.wait()
        taken.append(buffers.take((2, 3)))

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({t.data_ptr() for t in taken}) == 2


def test_one_thread_pool_for_iterators_started_at_once(
    dataset: S2100K, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two iterators starting in two threads at the same moment could each
    create the loader's thread pool (an unguarded `if self._pool is None`):
    one pool was then never shut down."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from torchgeo_satclip.datamodules import loader as module

    made: list[ThreadPoolExecutor] = []

    class SlowPool(ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)  # between the check and the assignment
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(module, 'ThreadPoolExecutor', SlowPool)
    loader = ThreadedBatchLoader(dataset, 3)
    start = threading.Barrier(2)
    firsts: list[Any] = []

    def first_batch() -> None:
        start.wait()
        firsts.append(next(iter(loader)))

    threads = [threading.Thread(target=first_batch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(firsts) == 2
    assert len(made) == 1
