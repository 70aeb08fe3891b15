"""``torchgeo predict`` writes embeddings with their points (issue 12)."""

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, cast

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from torchgeo_satclip.tasks import EmbeddingWriter, prediction

from .test_satclip import CONF, RECIPES, run

pytestmark = pytest.mark.usefixtures('tiny_timm')


@pytest.mark.parametrize('fmt', ['parquet', 'npy'])
def test_predict_writes_embeddings(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / 'embeddings'
    run(
        [
            'predict',
            '--config',
            str(CONF / 'satclip_s2_100k.yaml'),
            '--trainer.callbacks+=torchgeo_satclip.tasks.EmbeddingWriter',
            f'--trainer.callbacks.output_dir={out}',
            f'--trainer.callbacks.format={fmt}',
        ],
        tmp_path,
    )
    if fmt == 'parquet':
        frame = pd.read_parquet(out / 'embeddings.parquet')
        assert list(frame.columns) == [
            'lon',
            'lat',
            'location_embedding',
            'image_embedding',
        ]
        assert len(frame['location_embedding'].iloc[0]) == 8
    else:
        frame = pd.read_csv(out / 'points.csv')
        embedding = np.load(out / 'location_embedding.npy')
        assert embedding.shape == (len(frame), 8)
        assert np.load(out / 'image_embedding.npy').shape == (len(frame), 8)
    assert len(frame) > 0
    assert frame['lon'].between(-180, 180).all()
    assert not list(out.glob('.*'))  # no temporary leftovers


def test_every_recipe_writes_its_predictions() -> None:
    """`torchgeo predict` with any released-recipe config writes embeddings."""
    import yaml

    assert RECIPES
    outputs = set()
    for path in RECIPES:
        config = yaml.safe_load(path.read_text())
        writers = [
            c
            for c in config['trainer'].get('callbacks', [])
            if c['class_path'] == 'torchgeo_satclip.tasks.EmbeddingWriter'
        ]
        assert len(writers) == 1, path
        outputs.add(writers[0]['init_args']['output_dir'])
    assert len(outputs) == len(RECIPES)  # no two recipes overwrite each other


#: The writer never looks at the task.
_NO_MODULE: Any = None


class _Group:
    """Collectives between threads that stand for the processes of DDP."""

    def __init__(self, world: int) -> None:
        self.barrier = threading.Barrier(world, timeout=20)
        self.slots: list[Any] = [None] * world


class _Strategy:
    """The part of a Lightning strategy that EmbeddingWriter uses, on threads."""

    root_device = torch.device('cpu')

    def __init__(self, group: _Group, rank: int) -> None:
        self.group = group
        self.rank = rank

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        self.group.slots[self.rank] = tensor.clone()
        self.group.barrier.wait()
        out = torch.stack(self.group.slots)
        self.group.barrier.wait()
        return out

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if self.rank == src:
            self.group.slots[src] = obj
        self.group.barrier.wait()
        out = self.group.slots[src]
        self.group.barrier.wait()
        return out


def _trainer(group: _Group, rank: int, loader: Any = None) -> Any:
    return SimpleNamespace(
        world_size=len(group.slots),
        global_rank=rank,
        strategy=_Strategy(group, rank),
        predict_dataloaders=loader,
    )


def _batch(indices: list[int], image: bool = True) -> dict[str, torch.Tensor]:
    """A prediction whose values tell its dataset indices."""
    index = torch.tensor(indices, dtype=torch.float32)[:, None]
    out = {
        'point': torch.cat([index, -index], dim=1),
        'location_embedding': index.repeat(1, 3) + torch.tensor([0.0, 0.25, 0.5]),
    }
    if image:
        out['image_embedding'] = index.repeat(1, 2) / 3
    return out


def _ranks(
    writer: EmbeddingWriter, shares: list[tuple[Any, Any]], loader: Any = None
) -> list[BaseException | None]:
    """Run ``write_on_epoch_end`` on one thread per rank; their errors."""
    group = _Group(len(shares))
    errors: list[BaseException | None] = [None] * len(shares)

    def run(rank: int) -> None:
        predictions, indices = shares[rank]
        try:
            writer.write_on_epoch_end(
                _trainer(group, rank, loader), _NO_MODULE, predictions, indices
            )
        except BaseException as e:  # reported to the test
            errors[rank] = e

    threads = [threading.Thread(target=run, args=(r,)) for r in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), 'a rank hangs'
    return errors


@pytest.mark.parametrize('fmt', ['parquet', 'npy'])
def test_ranks_merge_in_dataset_order(
    fmt: Literal['parquet', 'npy'], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shares of three ranks become every index once, in order (padding gone).

    Unequal shares, a rank without any row of the second loader, a padding
    repeat, a shuffled order, and chunks smaller than a share.
    """
    monkeypatch.setattr(prediction, '_GATHER_ROWS', 2)
    # loader 0: 0..6 shuffled and padded with a repeat of 5 (3 + 3 + 2 rows);
    # loader 1: 0..2 in 2 + 1 + 0 rows, without image embeddings
    shares: list[tuple[Any, Any]] = [
        (
            [[_batch([5, 0]), _batch([3])], [_batch([0, 1], False)]],
            [[[5, 0], [3]], [[0, 1]]],
        ),
        ([[_batch([6, 2, 1])], [_batch([2], False)]], [[[6, 2, 1]], [[2]]]),
        ([[_batch([4, 5])], []], [[[4, 5]], []]),
    ]
    errors = _ranks(EmbeddingWriter(tmp_path, format=fmt), shares)
    assert errors == [None] * 3
    expected = np.r_[np.arange(7), np.arange(3)].astype(np.float64)
    if fmt == 'parquet':
        frame = pd.read_parquet(tmp_path / 'embeddings.parquet')
        assert list(frame.columns) == ['lon', 'lat', 'location_embedding']
        location = np.stack(frame['location_embedding'])
    else:
        frame = pd.read_csv(tmp_path / 'points.csv')
        location = np.load(tmp_path / 'location_embedding.npy')
        assert not (tmp_path / 'image_embedding.npy').exists()
    np.testing.assert_array_equal(frame['lon'], expected)
    np.testing.assert_array_equal(frame['lat'], -expected)
    assert location.dtype == np.float32
    np.testing.assert_array_equal(location, expected[:, None] + [0, 0.25, 0.5])
    assert not list(tmp_path.glob('.*'))


def test_ranks_without_indices_refuse(tmp_path: Path) -> None:
    """Without the samples' dataset indices no rank writes anything."""
    shares: list[tuple[Any, Any]] = [([_batch([0, 2])], [[]]), ([_batch([1])], [[]])]
    errors = _ranks(EmbeddingWriter(tmp_path), shares, loader=object())
    for error in errors:
        assert isinstance(error, RuntimeError)
        assert 'needs the dataset index' in str(error)
    assert not list(tmp_path.iterdir())


def test_rank_0_write_error_reaches_every_rank(tmp_path: Path) -> None:
    """A failed write on rank 0 fails the other ranks too, instead of a hang."""
    blocked = tmp_path / 'file'
    writer = EmbeddingWriter(blocked / 'out')
    blocked.write_text('not a folder')  # after the check of the folder
    shares: list[tuple[Any, Any]] = [([_batch([0])], [[[0]]]), ([_batch([1])], [[[1]]])]
    errors = _ranks(writer, shares)
    assert isinstance(errors[0], OSError)
    assert isinstance(errors[1], RuntimeError)
    assert 'rank 0 failed to write' in str(errors[1])


@pytest.mark.parametrize('tracked', [False, True])
def test_untracked_loader_fails_at_the_first_batch(tracked: bool) -> None:
    """Under DDP, a loader that hides its samples' indices fails at once."""
    loader = SimpleNamespace(seen_batch_indices=[]) if tracked else object()
    trainer = _trainer(_Group(2), 1, loader)
    writer = EmbeddingWriter('unused')
    writer.on_predict_batch_start(trainer, _NO_MODULE, {}, 1)  # not the first batch
    if tracked:
        writer.on_predict_batch_start(trainer, _NO_MODULE, {}, 0)
        return
    with pytest.raises(RuntimeError, match='needs the dataset index'):
        writer.on_predict_batch_start(trainer, _NO_MODULE, {}, 0)
    # a single process needs no index
    single = _trainer(_Group(1), 0, loader)
    writer.on_predict_batch_start(single, _NO_MODULE, {}, 0)


def test_predict_under_bf16_mixed_writes_float32(tmp_path: Path) -> None:
    """The GPU recipes' bf16-mixed: bfloat16 image embeddings are widened to
    float32 when written (NumPy has no bfloat16), not a failure after the
    whole dataset has been predicted."""
    out = tmp_path / 'embeddings'
    run(
        [
            'predict',
            '--config',
            str(CONF / 'satclip_s2_100k.yaml'),
            '--trainer.precision=bf16-mixed',
            '--trainer.callbacks+=torchgeo_satclip.tasks.EmbeddingWriter',
            f'--trainer.callbacks.output_dir={out}',
            '--trainer.callbacks.format=npy',
        ],
        tmp_path,
    )
    points = pd.read_csv(out / 'points.csv')
    for key in ('location_embedding', 'image_embedding'):
        values = np.load(out / f'{key}.npy')
        assert values.dtype == np.float32
        assert values.shape == (len(points), 8)
        assert np.isfinite(values).all()


@pytest.mark.parametrize(
    ('precision', 'moved'), [('16-true', '0.0625'), ('bf16-true', '0.5')]
)
def test_predict_under_true_half_precision_is_refused(
    precision: str, moved: str, tmp_path: Path
) -> None:
    """Lightning would cast the points to half before the task sees them: the
    embeddings, and the coordinates written beside them, of rounded points."""
    out = tmp_path / 'embeddings'
    message = (
        f"precision='{precision}' casts every floating-point tensor of a batch .*"
        f'the \\(lon, lat\\) points included: they would move by up to {moved} '
        f"degrees .* use '{precision.replace('-true', '-mixed')}'"
    )
    with pytest.raises(ValueError, match=message):
        run(
            [
                'predict',
                '--config',
                str(CONF / 'satclip_s2_100k.yaml'),
                f'--trainer.precision={precision}',
                '--trainer.callbacks+=torchgeo_satclip.tasks.EmbeddingWriter',
                f'--trainer.callbacks.output_dir={out}',
            ],
            tmp_path,
        )
    assert not out.exists()


def test_half_precision_moves_points_as_the_message_says() -> None:
    """The message's figures: half a spacing of each type at 128 to 180 degrees."""
    lon = torch.tensor([179.9375 + 1e-6, 179.5 + 1e-6], dtype=torch.float64)
    for dtype, moved in ((torch.float16, 0.0625), (torch.bfloat16, 0.5)):
        error = (lon.to(dtype).double() - lon).abs().max().item()
        assert moved - 1e-5 < error <= moved


def _half(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v if k == 'point' else v.to(torch.bfloat16) for k, v in batch.items()}


def test_ranks_write_bfloat16_predictions(tmp_path: Path) -> None:
    shares: list[tuple[Any, Any]] = [
        ([_half(_batch([1, 0]))], [[[1, 0]]]),
        ([_half(_batch([2]))], [[[2]]]),
    ]
    assert _ranks(EmbeddingWriter(tmp_path), shares) == [None, None]
    frame = pd.read_parquet(tmp_path / 'embeddings.parquet')
    np.testing.assert_array_equal(frame['lon'], [0, 1, 2])
    image = np.stack(frame['image_embedding'])
    expected = _half(_batch([0, 1, 2]))['image_embedding'].float().numpy()
    np.testing.assert_array_equal(image, expected)


def test_a_rank_that_cannot_prepare_fails_every_rank(tmp_path: Path) -> None:
    """Any error preparing one rank's share (here a TypeError) fails the
    others at once, not after a collective's time-out; nothing is written."""
    bad = {'point': torch.zeros(1, 2), 'location_embedding': 'not a tensor'}
    shares: list[tuple[Any, Any]] = [([bad], [[[0]]]), ([], [[]])]
    errors = _ranks(EmbeddingWriter(tmp_path / 'out'), shares)
    assert isinstance(errors[0], TypeError)
    assert isinstance(errors[1], RuntimeError)
    assert 'could not prepare' in str(errors[1])
    assert not (tmp_path / 'out').exists()


def test_a_merge_failure_on_rank_0_reaches_every_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error on rank 0 after the gathering (here a MemoryError while
    merging) fails the other ranks too, instead of leaving them waiting."""

    def no_memory(*args: Any) -> Any:
        raise MemoryError('cannot allocate')

    monkeypatch.setattr(prediction, '_merge', no_memory)
    shares: list[tuple[Any, Any]] = [([_batch([0])], [[[0]]]), ([_batch([1])], [[[1]]])]
    errors = _ranks(EmbeddingWriter(tmp_path / 'out'), shares)
    assert isinstance(errors[0], MemoryError)
    assert isinstance(errors[1], RuntimeError)
    assert 'rank 0 failed to write: MemoryError' in str(errors[1])


def _one_process() -> Any:
    return SimpleNamespace(world_size=1, global_rank=0)


def test_npy_files_of_one_run_only(tmp_path: Path) -> None:
    """A later run without image embeddings removes the earlier run's
    image_embedding.npy, so the folder never mixes two runs."""
    writer = EmbeddingWriter(tmp_path, format='npy')
    writer.write_on_epoch_end(_one_process(), _NO_MODULE, [_batch(list(range(5)))], [])
    assert np.load(tmp_path / 'image_embedding.npy').shape == (5, 2)
    writer.write_on_epoch_end(
        _one_process(), _NO_MODULE, [_batch([0, 1, 2], image=False)], []
    )
    assert len(pd.read_csv(tmp_path / 'points.csv')) == 3
    assert np.load(tmp_path / 'location_embedding.npy').shape == (3, 3)
    assert not (tmp_path / 'image_embedding.npy').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'embedding_writer.json',
        'location_embedding.npy',
        'points.csv',
    ]


@pytest.mark.parametrize(('first', 'then'), [('npy', 'parquet'), ('parquet', 'npy')])
def test_a_run_of_the_other_format_replaces_the_earlier_run(
    first: Literal['parquet', 'npy'], then: Literal['parquet', 'npy'], tmp_path: Path
) -> None:
    """A parquet run into a folder of an earlier npy run left the old
    points.csv and *.npy beside the new parquet (and the reverse), although
    the folder never mixes two runs."""
    files = {
        'npy': [
            'embedding_writer.json',
            'image_embedding.npy',
            'location_embedding.npy',
            'points.csv',
        ],
        'parquet': ['embedding_writer.json', 'embeddings.parquet'],
    }
    EmbeddingWriter(tmp_path, format=first).write_on_epoch_end(
        _one_process(), _NO_MODULE, [_batch([0, 1, 2])], []
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == files[first]
    EmbeddingWriter(tmp_path, format=then).write_on_epoch_end(
        _one_process(), _NO_MODULE, [_batch([5, 6])], []
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == files[then]


@pytest.mark.parametrize('order', ['npy first', 'parquet first'])
def test_two_writers_of_one_run_share_a_folder(order: str, tmp_path: Path) -> None:
    """A config with a parquet and an npy writer into one folder (here
    named through a link) keeps the files of both, whichever writes first."""
    out = tmp_path / 'out'
    for fmt in ('parquet', 'npy'):  # an earlier run of both
        EmbeddingWriter(out, format=fmt).write_on_epoch_end(
            _one_process(), _NO_MODULE, [_batch([0, 1, 2])], []
        )
    (tmp_path / 'link').symlink_to(out)
    writers = [
        EmbeddingWriter(tmp_path / 'link', format='npy'),
        EmbeddingWriter(out, format='parquet'),
    ]
    if order == 'parquet first':
        writers.reverse()
    trainer: Any = SimpleNamespace(world_size=1, global_rank=0, callbacks=writers)
    for writer in writers:
        writer.write_on_epoch_end(
            trainer, _NO_MODULE, [_batch([7, 8], image=False)], []
        )
    assert sorted(p.name for p in out.iterdir()) == [
        'embedding_writer.json',
        'embeddings.parquet',
        'location_embedding.npy',
        'points.csv',
    ]
    assert len(pd.read_parquet(out / 'embeddings.parquet')) == 2
    assert len(pd.read_csv(out / 'points.csv')) == 2


def test_npy_write_failure_keeps_the_earlier_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All files are renamed together: a failure while writing the second
    leaves the first run's files, not new points beside old embeddings."""
    writer = EmbeddingWriter(tmp_path, format='npy')
    writer.write_on_epoch_end(_one_process(), _NO_MODULE, [_batch([0, 1])], [])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr('torchgeo_satclip.tasks.prediction.np.save', full)
    with pytest.raises(OSError, match='No space left'):
        writer.write_on_epoch_end(_one_process(), _NO_MODULE, [_batch([7, 8, 9])], [])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_image_features_with_clip_off_are_written(tmp_path: Path) -> None:
    """With CLIP off, predict_step returns the backbone's image_features."""
    batch = {'point': torch.tensor([[1.5, 2.5]]), 'image_features': torch.ones(1, 6)}
    EmbeddingWriter(tmp_path).write_on_epoch_end(
        _one_process(), _NO_MODULE, [batch], []
    )
    frame = pd.read_parquet(tmp_path / 'embeddings.parquet')
    assert list(frame.columns) == ['lon', 'lat', 'image_features']
    assert np.stack(frame['image_features']).shape == (1, 6)


def test_predictions_without_embeddings_are_refused(tmp_path: Path) -> None:
    batch = {'point': torch.zeros(1, 2), 'logits': torch.zeros(1, 3)}
    with pytest.raises(ValueError, match=r"batch 0 has keys \['logits', 'point'\]"):
        EmbeddingWriter(tmp_path).write_on_epoch_end(
            _one_process(), _NO_MODULE, [batch], []
        )
    assert not list(tmp_path.iterdir())


def test_no_batches_warns_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match='no batches; nothing was written'):
        EmbeddingWriter(tmp_path / 'out').write_on_epoch_end(
            _one_process(), _NO_MODULE, [], []
        )
    assert not (tmp_path / 'out').exists()


def test_the_refused_prediction_is_named(tmp_path: Path) -> None:
    """The message described batch 0 whichever batch was wrong, and said
    ``got keys []`` for the tensors a classification task predicts."""
    good = _batch([0, 1])
    bad = {'point': torch.zeros(1, 2), 'logits': torch.zeros(1, 3)}
    writer = EmbeddingWriter(tmp_path)
    with pytest.raises(ValueError, match=r"batch 1 has keys \['logits', 'point'\]"):
        writer.write_on_epoch_end(_one_process(), _NO_MODULE, [good, bad], [])
    probabilities = torch.full((2, 3), 1 / 3)  # LocationAware*Task.predict_step
    with pytest.raises(ValueError, match=r'batch 0 is a Tensor, not a dict'):
        writer.write_on_epoch_end(_one_process(), _NO_MODULE, [probabilities], [])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('where', ['a file', 'under a file'])
def test_an_output_dir_that_is_no_folder_is_refused_before_the_work(
    where: str, tmp_path: Path
) -> None:
    """``output_dir=embeddings.parquet`` naming an existing file was taken,
    and the run failed only at its end, in mkdir ('File exists')."""
    file = tmp_path / 'embeddings.parquet'
    file.write_bytes(b'old')
    folder = file if where == 'a file' else file / 'sub'
    with pytest.raises(ValueError, match=rf'output_dir {folder}: {file} is a file'):
        EmbeddingWriter(folder)
    # a file that appears after the writer is made: refused as the run starts
    later = tmp_path / 'later'
    writer = EmbeddingWriter(later)
    later.write_bytes(b'')
    with pytest.raises(ValueError, match=rf'output_dir {later}: {later} is a file'):
        writer.on_predict_start(_one_process(), _NO_MODULE)
    assert file.read_bytes() == b'old'


@pytest.mark.parametrize('fmt', ['parquet', 'npy'])
@pytest.mark.parametrize(
    ('batch', 'message'),
    [
        (
            {'point': torch.zeros(3, 2), 'location_embedding': torch.ones(6, 4)},
            r'location_embedding of shape \(6, 4\), expected \(3, embedding size\)',
        ),
        (
            {'point': torch.zeros(3, 2), 'location_embedding': torch.ones(3)},
            r'location_embedding of shape \(3,\), expected \(3, embedding size\)',
        ),
        (
            {'point': torch.zeros(3, 2), 'image_embedding': torch.ones(3, 2, 4)},
            r'image_embedding of shape \(3, 2, 4\), expected \(3, embedding size\)',
        ),
        (
            {'point': torch.zeros(3, 3), 'location_embedding': torch.ones(3, 4)},
            r'point of shape \(3, 3\), expected \(batch size, 2\)',
        ),
    ],
)
def test_predictions_of_mismatched_shapes_are_refused(
    fmt: Literal['parquet', 'npy'],
    batch: dict[str, torch.Tensor],
    message: str,
    tmp_path: Path,
) -> None:
    """Embeddings whose rows are not the points' (or a point that is not
    (lon, lat)) were written as they came: an npy run wrote a points.csv of 3
    rows beside a location_embedding.npy of 6, dropped a point's third column,
    and kept a 1-D or 3-D embedding; now the batch is named and refused."""
    writer = EmbeddingWriter(tmp_path / 'out', format=fmt)
    with pytest.raises(ValueError, match=rf'predicted batch 1: {message}'):
        writer.write_on_epoch_end(
            _one_process(), _NO_MODULE, [_batch([0, 1, 2]), batch], []
        )
    assert not (tmp_path / 'out').exists()


def test_embeddings_of_different_widths_are_refused(tmp_path: Path) -> None:
    """Batches whose embeddings differ in size failed in torch.cat, with a
    message that named neither the embedding nor the batch."""
    first = {'point': torch.zeros(2, 2), 'location_embedding': torch.ones(2, 4)}
    second = {'point': torch.zeros(2, 2), 'location_embedding': torch.ones(2, 5)}
    with pytest.raises(
        ValueError,
        match=r'predicted batch 1: location_embedding of size 5, '
        r'but batch 0 has size 4',
    ):
        EmbeddingWriter(tmp_path).write_on_epoch_end(
            _one_process(), _NO_MODULE, [first, second], []
        )
    assert not list(tmp_path.iterdir())


def test_ranks_refuse_mismatched_rows(tmp_path: Path) -> None:
    """Under DDP an embedding with more rows than points was cut to the
    points' rows in silence (the gather takes a share's first rows)."""
    bad = {'point': torch.zeros(1, 2), 'location_embedding': torch.ones(2, 3)}
    shares: list[tuple[Any, Any]] = [([bad], [[[0]]]), ([_batch([1])], [[[1]]])]
    errors = _ranks(EmbeddingWriter(tmp_path / 'out'), shares)
    assert isinstance(errors[0], ValueError)
    assert 'location_embedding of shape (2, 3)' in str(errors[0])
    assert isinstance(errors[1], RuntimeError)
    assert not (tmp_path / 'out').exists()


def test_npy_flush_failure_keeps_the_earlier_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file was flushed to the disk just before its own rename, so an
    error (or an interrupt) while flushing the second file came after the
    first was renamed: a new .npy beside the earlier run's points.csv. All
    are now flushed before any is renamed."""
    import errno
    import os
    import stat

    writer = EmbeddingWriter(tmp_path, format='npy')
    writer.write_on_epoch_end(_one_process(), _NO_MODULE, [_batch([0, 1])], [])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fsync = os.fsync
    files: list[int] = []

    def failing(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            files.append(fd)
            if len(files) == 2:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        fsync(fd)

    monkeypatch.setattr(os, 'fsync', failing)
    with pytest.raises(OSError, match='Input/output error'):
        writer.write_on_epoch_end(_one_process(), _NO_MODULE, [_batch([7, 8, 9])], [])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    ('fmt', 'theirs'),
    [
        ('parquet', ['points.csv', 'location_embedding.npy']),
        ('npy', ['embeddings.parquet', 'image_embedding.npy']),
    ],
)
def test_files_the_writer_did_not_write_are_left_with_a_warning(
    fmt: Literal['parquet', 'npy'], theirs: list[str], tmp_path: Path
) -> None:
    """A user's points.csv or .npy beside a parquet run (or embeddings.parquet
    beside an npy run) was deleted at the end of the run, because a file of
    that name might be an earlier run's: now only files the writer can show it
    wrote (recorded in its manifest) are removed; others are left, with a
    warning that names them."""
    for name in theirs:
        (tmp_path / name).write_bytes(b'mine')
    writer = EmbeddingWriter(tmp_path, format=fmt)
    with pytest.warns(UserWarning, match='left .* in place') as record:
        writer.write_on_epoch_end(
            _one_process(), _NO_MODULE, [_batch([0, 1], image=False)], []
        )
    for name in theirs:
        assert (tmp_path / name).read_bytes() == b'mine'
        assert any(str(tmp_path / name) in str(w.message) for w in record)


def test_a_file_changed_since_the_writer_wrote_it_is_left(tmp_path: Path) -> None:
    """A file of an earlier run that the user has since replaced is theirs."""
    EmbeddingWriter(tmp_path, format='npy').write_on_epoch_end(
        _one_process(), _NO_MODULE, [_batch([0, 1, 2])], []
    )
    (tmp_path / 'points.csv').write_text('lon,lat\n9.5,9.5\n')
    with pytest.warns(UserWarning, match=r'points\.csv in place'):
        EmbeddingWriter(tmp_path).write_on_epoch_end(
            _one_process(), _NO_MODULE, [_batch([0, 1])], []
        )
    assert (tmp_path / 'points.csv').read_text() == 'lon,lat\n9.5,9.5\n'
    # the earlier run's own .npy files, unchanged, are removed
    assert not list(tmp_path.glob('*.npy'))


def test_a_foreign_manifest_is_refused_before_the_work(tmp_path: Path) -> None:
    """The writer never overwrites a file of its manifest's name it did not write."""
    (tmp_path / 'embedding_writer.json').write_text('{"mine": true}')
    with pytest.raises(ValueError, match=r'embedding_writer\.json.* not the record'):
        EmbeddingWriter(tmp_path)
    assert (tmp_path / 'embedding_writer.json').read_text() == '{"mine": true}'


class _Points(pl.LightningModule):
    """Predicts each batch's points as their own embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def predict_step(self, batch: Any) -> dict[str, torch.Tensor]:
        self.steps += 1
        point = batch['point'] if isinstance(batch, dict) else batch.double()[:, None]
        point = point.expand(-1, 2).double()
        return {'point': point, 'location_embedding': point.float()}


def _predict(loader: Any, out: Path, root: Path) -> _Points:
    trainer = pl.Trainer(
        accelerator='cpu',
        callbacks=[EmbeddingWriter(out)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    model = _Points()
    trainer.predict(model, loader, return_predictions=False)
    return model


def test_a_loader_that_drops_the_last_batch_is_refused(tmp_path: Path) -> None:
    """A ThreadedBatchLoader with drop_last=True (which Lightning cannot
    rebuild, as it rebuilds a DataLoader with drop_last=False to predict) left
    the last sample of 8 out of the files in silence; now it is refused before
    any batch is predicted."""
    import shutil

    from torchgeo_satclip.datamodules import ThreadedBatchLoader
    from torchgeo_satclip.datasets import S2100K, pack_s2_100k

    root = tmp_path / 's2_100k'
    data = Path(__file__).parents[1] / 'data' / 's2_100k'
    shutil.copytree(data, root, ignore=shutil.ignore_patterns('real', 'data.py'))
    pack_s2_100k(root, patch_size=32, shard_size=3, progress=False)
    dataset = S2100K(root, patch_size=32, image_dtype='uint16')
    assert len(dataset) == 8
    out = tmp_path / 'out'
    loader = ThreadedBatchLoader(dataset, 3, drop_last=True, num_threads=1)
    with pytest.raises(
        ValueError,
        match=r'dataloader 0 has drop_last=True \(ThreadedBatchLoader\), so the '
        r'last 2 of its 8 samples would get no embedding.*drop_last=False',
    ):
        _predict(loader, out, tmp_path)
    assert not out.exists()
    _predict(ThreadedBatchLoader(dataset, 3, num_threads=1), out, tmp_path)
    assert len(pd.read_parquet(out / 'embeddings.parquet')) == 8


def test_a_dataloader_with_drop_last_predicts_every_sample(tmp_path: Path) -> None:
    """Lightning rebuilds a prediction DataLoader with drop_last=False: no
    refusal, and every sample is written."""
    from torch.utils.data import DataLoader, Dataset

    samples = cast(Dataset[torch.Tensor], torch.arange(10))  # indexable as one
    loader = DataLoader(samples, batch_size=4, drop_last=True)
    _predict(loader, tmp_path / 'out', tmp_path)
    assert len(pd.read_parquet(tmp_path / 'out' / 'embeddings.parquet')) == 10
