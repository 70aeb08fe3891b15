"""Write the embeddings of ``torchgeo predict`` to files.

:class:`EmbeddingWriter` is a Lightning prediction writer: set it in a
config's ``trainer.callbacks`` and ``torchgeo predict`` writes the location
(and image) embeddings that :meth:`SatCLIPTask.predict_step` returns, with
their points, at the end of the run.

Under a multi-process strategy (DDP) every process predicts its own share of
the samples. The writer then gathers all shares on rank 0, in chunks, puts
the samples back in dataset order by the dataset index of each one (which
Lightning records for a ``DataLoader``), drops the repeats a padding sampler
adds, and rank 0 writes the same files a single process would.
"""

import json
import os
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities.combined_loader import CombinedLoader

from .._io import atomic_path, atomic_write, flush_file

__all__ = ['EmbeddingWriter']

#: Embedding keys of a prediction, in the order they are written
#: (``image_features``: the backbone's pooled features, which
#: ``SatCLIPTask.predict_step`` returns with CLIP off).
_KEYS = ('location_embedding', 'image_embedding', 'image_features')

#: The file in which a writer records the files it wrote into its folder
#: (each one's size and modification time), so that a later run removes an
#: earlier run's files only, never a file it cannot show it wrote.
_MANIFEST = 'embedding_writer.json'

#: What the manifest's ``writer`` says, which tells it from another file.
_WRITER = 'torchgeo_satclip.tasks.EmbeddingWriter'

#: Rows per collective call when gathering the predictions of all processes,
#: which bounds the memory of one transfer (rows x (3 + embedding sizes) x 8
#: bytes per process).
_GATHER_ROWS = 8192


class EmbeddingWriter(BasePredictionWriter):
    """Write predicted embeddings and their points, atomically.

    ``format='parquet'`` writes ``embeddings.parquet`` with ``lon``, ``lat``
    and one list column per embedding (``location_embedding``,
    ``image_embedding``, or with CLIP off ``image_features``);
    ``format='npy'`` writes ``points.csv`` (``lon``, ``lat``) and one
    ``<embedding>.npy`` each, ``(N, size)`` float32 (half-precision
    predictions are widened), rows in the order of the points. Every file
    goes to a temporary sibling first; the files of one run are renamed
    together once all are complete, and then an ``.npy`` of an embedding the
    run did not predict is removed, and so are the files of the other format
    an earlier run left (``embeddings.parquet``; ``points.csv`` and the
    ``.npy``), unless another ``EmbeddingWriter`` of the same trainer writes
    that format into the same folder: the folder never mixes two runs.

    Only files an ``EmbeddingWriter`` wrote are removed: it records each file
    it writes (its size and modification time) in ``embedding_writer.json``
    beside them, and a file of one of those names that is not recorded there,
    or has changed since, is left in place with a warning that names it. A
    folder whose ``embedding_writer.json`` is not such a record is refused
    before the work.

    Every sample is written: a prediction loader that drops its last
    incomplete batch (``drop_last=True``) is refused before the work.
    Lightning rebuilds a ``DataLoader`` with ``drop_last=False`` to predict,
    but not another loader (a
    :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader`).

    Under a multi-process strategy (``ddp`` on several devices) rank 0
    writes the files, with every sample of the prediction dataset once, in
    dataset order: the content a single-process run writes. This needs the
    dataset index of every predicted sample, which Lightning records for a
    ``DataLoader`` (any sampler, Lightning's own distributed one included)
    and :class:`~torchgeo_satclip.datamodules.ThreadedBatchLoader` records
    itself (``seen_batch_indices``); a loader that reports none is refused at
    its first batch.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        format: Literal['parquet', 'npy'] = 'parquet',
    ) -> None:
        """Initialise the writer.

        Args:
            output_dir: folder of the files (created if needed).
            format: ``'parquet'`` or ``'npy'`` (with a CSV of the points).

        Raises:
            ValueError: on an unknown format, an ``output_dir`` that is a
                file or lies under one, or one whose ``embedding_writer.json``
                is not a writer's record.
        """
        super().__init__(write_interval='epoch')
        if format not in ('parquet', 'npy'):
            raise ValueError(f"format must be 'parquet' or 'npy', not {format!r}")
        self.output_dir = Path(output_dir)
        self.format = format
        self._check_folder()

    def _check_folder(self) -> None:
        """Refuse an output folder that is a file, or lies under one.

        And one whose manifest is not a writer's record (see
        :func:`_read_manifest`).
        """
        for path in (self.output_dir, *self.output_dir.parents):
            if path.exists():
                if not path.is_dir():
                    raise ValueError(
                        f'output_dir {self.output_dir}: {path} is a file; '
                        'EmbeddingWriter writes its files into a folder: name '
                        'a folder (it is created if needed)'
                    )
                break
        _read_manifest(self.output_dir)

    def on_predict_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> None:
        """Check the output folder again, and the loaders, before the work.

        Args:
            trainer: the trainer.
            pl_module: the task.

        Raises:
            ValueError: if ``output_dir`` is now a file or lies under one, or
                its ``embedding_writer.json`` is not a writer's record; or if
                a prediction loader drops its last incomplete batch
                (``drop_last=True``), whose samples would be missing from the
                files.
        """
        self._check_folder()
        for i, loader in enumerate(_loaders(trainer.predict_dataloaders)):
            _check_drop_last(loader, i, self.output_dir)

    def on_predict_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Under several processes, check that the samples' indices are known.

        Checked at the first batch of each loader (Lightning's record of a
        ``DataLoader``'s indices exists once the loader is iterated), so that
        an unsuitable loader fails before the whole dataset is predicted.

        Args:
            trainer: the trainer.
            pl_module: the task.
            batch: the batch.
            batch_idx: its index in the loader.
            dataloader_idx: the index of its loader.

        Raises:
            RuntimeError: under several processes, if the prediction loader
                does not report the dataset indices of its batches.
        """
        if trainer.world_size <= 1 or batch_idx != 0:
            return
        loaders = _loaders(trainer.predict_dataloaders)
        loader = loaders[dataloader_idx] if dataloader_idx < len(loaders) else None
        if _seen_batch_indices(loader) is None:
            raise RuntimeError(_untracked(trainer, loader))

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Any,
        batch_indices: Any,
    ) -> None:
        """Write every batch's embeddings and points.

        Args:
            trainer: the trainer.
            pl_module: the task.
            predictions: the outputs of ``predict_step`` (dicts with ``point``
                and the embeddings), one list per dataloader or one list.
            batch_indices: the dataset indices of every batch's samples, one
                list per dataloader (Lightning's ``epoch_batch_indices``);
                used under several processes only, to merge their shares.

        Raises:
            ValueError: if the predictions have no ``point``.
            RuntimeError: under several processes, if the dataset indices of
                the samples are unknown, or if writing failed on rank 0.
        """
        if trainer.world_size > 1:
            self._write_distributed(trainer, predictions, batch_indices)
            return
        batches = [b for group in _groups(predictions) for b in group]
        if not batches:
            _warn_nothing(self.output_dir)
            return
        _check_batches(batches)
        points, embeddings = _arrays(batches)
        self._write(points, embeddings, self._shared(trainer))

    def _shared(self, trainer: pl.Trainer) -> set[str]:
        """The formats other writers of this trainer write into this folder."""
        here = self.output_dir.resolve()
        return {
            c.format
            for c in getattr(trainer, 'callbacks', None) or []
            if isinstance(c, EmbeddingWriter)
            and c is not self
            and c.output_dir.resolve() == here
        }

    def _write(
        self,
        points: np.ndarray,
        embeddings: dict[str, np.ndarray],
        shared: set[str] | None = None,
    ) -> None:
        """Write the files of ``points`` (float64) and ``embeddings`` (float32).

        All temporary files are written and flushed to the disk before any
        is renamed: a failure leaves the earlier files as they were. Once
        they are renamed, an earlier run's files that this run does not
        replace are removed, if the manifest shows that a writer wrote them
        (others are left, with a warning), and the manifest records the
        files of this run.

        Args:
            points: the points.
            embeddings: the embeddings by key.
            shared: the formats other writers of this run write into the
                same folder, whose files are left there.
        """
        shared = shared or set()
        manifest = _read_manifest(self.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({'lon': points[:, 0], 'lat': points[:, 1]})
        if self.format == 'parquet':
            for key, values in embeddings.items():
                frame[key] = list(values)
            with atomic_path(self.output_dir / 'embeddings.parquet') as tmp:
                frame.to_parquet(tmp, index=False)
            written = ['embeddings.parquet']
            stale = []
            if 'npy' not in shared:  # an earlier npy run's files
                stale = ['points.csv', *(f'{key}.npy' for key in _KEYS)]
        else:
            with ExitStack() as stack:  # every rename waits for the last write
                tmp = stack.enter_context(atomic_path(self.output_dir / 'points.csv'))
                frame.to_csv(tmp, index=False)
                temporaries = [tmp]
                for key, values in embeddings.items():
                    tmp = stack.enter_context(
                        atomic_path(self.output_dir / f'{key}.npy')
                    )
                    with open(tmp, 'wb') as f:
                        np.save(f, values)
                    temporaries.append(tmp)
                for tmp in temporaries:  # the slow part, before the first rename
                    flush_file(tmp)
            written = ['points.csv', *(f'{key}.npy' for key in embeddings)]
            # an earlier run's embedding this run has not
            stale = [f'{key}.npy' for key in _KEYS if key not in embeddings]
            if 'parquet' not in shared:  # an earlier parquet run's file
                stale.append('embeddings.parquet')
        for name in stale:
            _remove_if_written(self.output_dir / name, manifest)
        for name in written:
            manifest[name] = _fingerprint(self.output_dir / name)
        _write_manifest(self.output_dir, manifest)

    def _write_distributed(
        self, trainer: pl.Trainer, predictions: Any, batch_indices: Any
    ) -> None:
        """Gather every process's share on rank 0, merge and write it there.

        Every process takes part in the same collective calls, whatever its
        share (even none), and every one raises if any one failed, so no
        process waits forever for another. No process returns before rank 0
        has written the files (or failed to).
        """
        strategy = trainer.strategy
        groups = _groups(predictions)
        error: BaseException | None = None
        try:
            shares = [
                _share(trainer, group, i, batch_indices)
                for i, group in enumerate(groups)
            ]
        except Exception as e:  # any: the other processes must not wait
            error, shares = e, []
        _agree(
            trainer,
            error,
            'EmbeddingWriter: rank(s) {ranks} could not prepare their '
            'predictions (see their error); nothing was written',
        )
        gathered = [_gather(trainer, share) for share in shares]
        message: str | None = None
        if trainer.global_rank == 0:
            try:
                parts = [_merge(*g) for g in gathered if g is not None]
                if not parts:
                    _warn_nothing(self.output_dir)
                else:
                    points = np.concatenate([p for p, _ in parts])
                    keys = [k for k in _KEYS if all(k in e for _, e in parts)]
                    self._write(
                        points,
                        {k: np.concatenate([e[k] for _, e in parts]) for k in keys},
                        self._shared(trainer),
                    )
            except BaseException as e:
                strategy.broadcast(f'{type(e).__name__}: {e}', src=0)
                raise
        message = strategy.broadcast(message, src=0)
        if message is not None:
            raise RuntimeError(f'EmbeddingWriter: rank 0 failed to write: {message}')


def _fingerprint(path: Path) -> list[int]:
    """What the manifest records of a file: its size and modification time."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_manifest(folder: Path) -> dict[str, list[int]]:
    """The files a writer recorded in ``folder``, with their fingerprints.

    Args:
        folder: the output folder.

    Returns:
        Each recorded file's name and :func:`_fingerprint`; empty without a
        manifest.

    Raises:
        ValueError: if ``folder`` holds a file of the manifest's name that is
            not a writer's record (which the writer must not overwrite).
    """
    path = folder / _MANIFEST
    try:
        text = path.read_text(encoding='utf-8')
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f'output_dir {folder}: cannot read {path} ({error}); EmbeddingWriter '
            'records the files it writes there'
        ) from error
    try:
        record = json.loads(text)
        files = record['files'] if record.get('writer') == _WRITER else None
    except (ValueError, AttributeError, KeyError, TypeError):
        files = None
    if not isinstance(files, dict) or not all(
        isinstance(v, list) and len(v) == 2 and all(type(n) is int for n in v)
        for v in files.values()
    ):
        raise ValueError(
            f'output_dir {folder}: {path} is not the record of an EmbeddingWriter '
            f'(a JSON object with "writer": "{_WRITER}" and the files it '
            'wrote), and the writer would overwrite it: move that file, or '
            'choose another output_dir'
        )
    return {str(name): list(value) for name, value in files.items()}


def _write_manifest(folder: Path, files: dict[str, list[int]]) -> None:
    """Record the files a writer wrote into ``folder`` (atomically)."""
    record = {'writer': _WRITER, 'files': dict(sorted(files.items()))}
    text = json.dumps(record, indent=1) + '\n'

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding='utf-8')

    atomic_write(folder / _MANIFEST, write)


def _remove_if_written(path: Path, manifest: dict[str, list[int]]) -> None:
    """Remove an earlier run's file, if the manifest shows a writer wrote it.

    A file that is not recorded, or has changed since it was, is left in
    place with a warning that names it. Either way it leaves the manifest.

    Args:
        path: a file of the other format, or of an embedding not predicted.
        manifest: the recorded files, updated.
    """
    recorded = manifest.pop(path.name, None)
    if not os.path.lexists(path):
        return
    if path.is_file() and recorded == _fingerprint(path):
        path.unlink()
        return
    warnings.warn(
        f'EmbeddingWriter: left {path} in place: it is not part of this run, '
        'but no EmbeddingWriter recorded writing it (or it has changed since), '
        "so it may be yours; remove it yourself if it is an earlier run's",
        UserWarning,
        stacklevel=4,
    )


def _agree(trainer: pl.Trainer, error: BaseException | None, failure: str) -> None:
    """Raise on every process if any process failed, else return on all.

    One collective call, which every process makes whatever happened to it,
    so that none waits forever in a later one for a process that gave up.

    Args:
        trainer: the trainer.
        error: what this process failed with, or None.
        failure: the message of the others' ``RuntimeError``; ``{ranks}``
            is replaced by the ranks that failed.

    Raises:
        BaseException: *error*, on a process that failed.
        RuntimeError: on the others, if any process failed.
    """
    strategy = trainer.strategy
    flag = torch.tensor([int(error is not None)], device=strategy.root_device)
    failed = strategy.all_gather(flag)
    if bool(failed.any()):
        if error is not None:
            raise error
        ranks = torch.nonzero(failed.flatten().cpu()).flatten().tolist()
        raise RuntimeError(failure.replace('{ranks}', str(ranks)))


class _Share:
    """One process's predictions of one dataloader, with their dataset indices."""

    def __init__(
        self,
        indices: np.ndarray,
        points: np.ndarray | None,
        embeddings: dict[str, np.ndarray],
    ) -> None:
        self.indices = indices
        self.points = points
        self.embeddings = embeddings


def _share(
    trainer: pl.Trainer, group: list[Any], dataloader_idx: int, batch_indices: Any
) -> _Share:
    """This process's rows of one dataloader, with their dataset indices."""
    if not group:
        return _Share(np.zeros(0, np.int64), None, {})
    _check_batches(group)
    per_batch = _indices_of(trainer, dataloader_idx, batch_indices)
    if per_batch is None or len(per_batch) != len(group):
        raise RuntimeError(
            _untracked(trainer, None)
            + f' (dataloader {dataloader_idx}: {len(group)} batches, '
            f'indices of {0 if per_batch is None else len(per_batch)})'
        )
    rows = [len(torch.as_tensor(b['point'])) for b in group]
    sizes = [len(i) for i in per_batch]
    if rows != sizes:
        raise RuntimeError(
            f'EmbeddingWriter: the batches of dataloader {dataloader_idx} have '
            f'{rows} samples but their recorded dataset indices {sizes}'
        )
    indices = np.fromiter(
        (int(i) for batch in per_batch for i in batch), np.int64, sum(sizes)
    )
    if (indices < 0).any():
        raise RuntimeError(
            f'EmbeddingWriter: negative dataset index in dataloader {dataloader_idx}'
        )
    points, embeddings = _arrays(group)
    return _Share(indices, points, embeddings)


def _gather(
    trainer: pl.Trainer, share: _Share
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """All shares of one dataloader on rank 0, as they came (see :func:`_merge`).

    The rows travel in chunks of :data:`_GATHER_ROWS` per process, as float64
    (which holds the indices, the float64 points and any embedding value
    exactly), and rank 0 stores each chunk at once as the final types, so
    memory stays about that of the result. Every process makes the same
    collective calls; one that rank 0 cannot make (it cannot hold the
    result) is refused on every process.

    Args:
        trainer: the trainer.
        share: this process's rows of the dataloader.

    Returns:
        On rank 0, the dataset indices (-1: a row that only pads a share) and
        the ``point`` (float64) and embeddings (float32) of every process's
        rows, or None when no process has any; None on the other ranks.

    Raises:
        RuntimeError: if the processes' predictions differ in shape, or rank
            0 cannot allocate the result.
        MemoryError: on rank 0, if it cannot allocate the result.
    """
    strategy = trainer.strategy
    device = strategy.root_device
    # every share's shape: rows, point width, then each embedding's width
    # (-1: absent); a process without rows knows none of the widths
    local = [len(share.indices), -1] + [-1] * len(_KEYS)
    if share.points is not None:
        local[1] = share.points.shape[1]
        for k, key in enumerate(_KEYS):
            if key in share.embeddings:
                local[2 + k] = share.embeddings[key].shape[1]
    meta = strategy.all_gather(torch.tensor(local, device=device)).cpu()
    meta = meta.reshape(-1, len(local))
    with_rows = meta[meta[:, 0] > 0]
    if len(with_rows) == 0:
        return None
    # an embedding that some process lacks is written by none (as a single
    # process writes only the embeddings every batch has)
    present = (with_rows[:, 2:] >= 0).all(dim=0).tolist()
    widths = [1] + [2 + k for k, there in enumerate(present) if there]
    if bool((with_rows[:, widths] != with_rows[0, widths]).any()):
        raise RuntimeError(
            'EmbeddingWriter: the processes predicted different shapes '
            f'(rows, point width, embedding widths per process): {meta.tolist()}'
        )
    width = int(with_rows[0, 1])
    fields = [('point', width)] + [
        (key, int(with_rows[0, 2 + k])) for k, key in enumerate(_KEYS) if present[k]
    ]
    most = int(meta[:, 0].max())
    columns = 1 + sum(dim for _, dim in fields)
    world = trainer.world_size
    rank0 = trainer.global_rank == 0
    total = world * most if rank0 else 0
    error: MemoryError | None = None
    try:
        indices = np.empty(total, np.int64)
        values = {
            name: np.empty((total, dim), np.float64 if name == 'point' else np.float32)
            for name, dim in fields
        }
    except MemoryError as e:  # the others must not wait in the chunks' calls
        error = e
    _agree(
        trainer,
        error,
        'EmbeddingWriter: rank 0 cannot hold the gathered predictions '
        f'({world * most} rows); nothing was written',
    )
    for begin in range(0, most, _GATHER_ROWS):
        end = min(begin + _GATHER_ROWS, most)
        chunk = np.full((end - begin, columns), -1.0)  # index -1: padding
        mine = slice(begin, min(end, len(share.indices)))
        count = max(0, mine.stop - begin)
        if count:
            chunk[:count, 0] = share.indices[mine]
            column = 1
            for name, dim in fields:
                source = share.points if name == 'point' else share.embeddings[name]
                assert source is not None
                chunk[:count, column : column + dim] = source[mine]
                column += dim
        out = strategy.all_gather(torch.from_numpy(chunk).to(device))
        if not rank0:
            continue
        for rank, part in enumerate(out.cpu().numpy()):
            rows = slice(rank * most + begin, rank * most + end)
            indices[rows] = part[:, 0]
            column = 1
            for name, dim in fields:
                values[name][rows] = part[:, column : column + dim]
                column += dim
    if not rank0:
        return None
    return indices, values


def _merge(
    indices: np.ndarray, values: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gathered rows in dataset order, each dataset index once.

    Args:
        indices: the dataset index of each row (-1: padding).
        values: ``point`` and the embeddings, one row each.

    Returns:
        The points (float64) and embeddings (float32) of every dataset index
        once, in index order (a padding sampler's repeat is dropped).
    """
    order = np.argsort(indices, kind='stable')
    order = order[indices[order] >= 0]  # drop the rows that only pad a share
    _, first = np.unique(indices[order], return_index=True)
    keep = order[first]  # each dataset index once: a padding repeat is gone
    points = values.pop('point')[keep]
    return points, {name: array[keep] for name, array in values.items()}


def _check_batches(batches: list[Any]) -> None:
    """Raise ``ValueError`` unless every batch has a point and an embedding.

    Every batch must be a dict with a ``point`` of shape ``(B, 2)`` and at
    least one key of :data:`_KEYS`, each embedding of shape ``(B, size)``
    with the size of that embedding in the other batches; the message names
    the first batch that is not, and what it is. (Values without a shape are
    left to the conversion, which refuses them.)
    """
    sizes: dict[str, tuple[int, int]] = {}  # embedding: (size, first batch)
    for i, b in enumerate(batches):
        if isinstance(b, dict) and 'point' in b and any(k in b for k in _KEYS):
            _check_shapes(b, i, sizes)
            continue
        if isinstance(b, dict):
            found = f'has keys {sorted(b)}'
        else:
            found = f'is a {type(b).__name__}, not a dict'
        raise ValueError(
            "EmbeddingWriter needs predictions with a 'point' and at least one "
            f'of {", ".join(_KEYS)} (as SatCLIPTask.predict_step returns); '
            f'predicted batch {i} {found}'
        )


def _check_shapes(
    batch: dict[str, Any], index: int, sizes: dict[str, tuple[int, int]]
) -> None:
    """Refuse a batch whose embeddings' rows are not its points'.

    Args:
        batch: one prediction, with a ``point`` and an embedding.
        index: its position among the predicted batches.
        sizes: each embedding's size and the first batch that had it,
            updated.

    Raises:
        ValueError: naming the batch, the value, its shape and what was
            expected.
    """
    where = f'EmbeddingWriter: predicted batch {index}:'
    point = getattr(batch['point'], 'shape', None)
    if point is None:
        return
    if len(point) != 2 or point[1] != 2:
        raise ValueError(
            f'{where} point of shape {tuple(point)}, expected (batch size, 2): '
            'one (longitude, latitude) per sample'
        )
    for key in _KEYS:
        shape = getattr(batch.get(key), 'shape', None)
        if shape is None:
            continue
        if len(shape) != 2 or shape[0] != point[0]:
            raise ValueError(
                f'{where} {key} of shape {tuple(shape)}, expected '
                f'({point[0]}, embedding size): one embedding per point'
            )
        size, first = sizes.setdefault(key, (int(shape[1]), index))
        if shape[1] != size:
            raise ValueError(
                f'{where} {key} of size {shape[1]}, but batch {first} has size '
                f'{size}: every batch must have embeddings of one size'
            )


def _arrays(batches: list[Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The points (float64) and embeddings (float32) of ``batches``, in order."""
    points = _stack([b['point'] for b in batches]).astype(np.float64)
    embeddings = {
        key: _stack([b[key] for b in batches]).astype(np.float32)
        for key in _KEYS
        if all(key in b for b in batches)
    }
    return points, embeddings


def _loaders(iterables: Any) -> list[Any]:
    """The prediction loaders, in the order of their ``dataloader_idx``."""
    if iterables is None:
        return []
    return list(CombinedLoader(iterables, mode='sequential').flattened)


def _check_drop_last(loader: Any, index: int, output_dir: Path) -> None:
    """Refuse a prediction loader that drops its last incomplete batch.

    Its ``drop_last``, or its batch sampler's, is read (Lightning's wrapper of
    a prediction loader's batch sampler keeps the wrapped one's attributes).

    Args:
        loader: a prediction loader.
        index: its ``dataloader_idx``.
        output_dir: the writer's folder, for the message.

    Raises:
        ValueError: naming the loader, how many samples it would drop (where
            its sampler has a length) and the repair.
    """
    batch_sampler = getattr(loader, 'batch_sampler', None)
    owner = next(
        (o for o in (loader, batch_sampler) if getattr(o, 'drop_last', False) is True),
        None,
    )
    if owner is None:
        return
    sampler = getattr(owner, 'sampler', None)
    size = getattr(owner, 'batch_size', None)
    try:
        samples = len(sampler)  # type: ignore[arg-type]
    except TypeError:
        samples = None
    if isinstance(samples, int) and isinstance(size, int) and size > 0:
        left = samples % size
        dropped = (
            f'the last {left} of its {samples} samples'
            if left
            else f'none of its {samples} samples now (batches of {size}), but '
            'the last incomplete batch of any other number of samples'
        )
    else:
        dropped = 'the samples of its last incomplete batch'
    raise ValueError(
        f'EmbeddingWriter: prediction dataloader {index} has drop_last=True '
        f'({type(owner).__name__}), so {dropped} would get no embedding and '
        f'be missing from the files in {output_dir}; build the prediction '
        'loader with drop_last=False'
    )


def _seen_batch_indices(loader: Any) -> list[Any] | None:
    """The dataset indices of each batch a loader gave, if it records them.

    Lightning wraps the batch sampler of a prediction ``DataLoader`` in one
    that records them as ``seen_batch_indices``; a loader of another kind
    may record them itself under the same name.
    """
    for owner in (getattr(loader, 'batch_sampler', None), loader):
        seen = getattr(owner, 'seen_batch_indices', None)
        if isinstance(seen, list):
            return seen
    return None


def _indices_of(
    trainer: pl.Trainer, dataloader_idx: int, batch_indices: Any
) -> Sequence[Any] | None:
    """The dataset indices of each batch of one dataloader, if known."""
    if (
        isinstance(batch_indices, Sequence)
        and len(batch_indices) > dataloader_idx
        and batch_indices[dataloader_idx]
    ):
        found: Sequence[Any] = batch_indices[dataloader_idx]
        return found
    loaders = _loaders(trainer.predict_dataloaders)
    if len(loaders) > dataloader_idx:
        return _seen_batch_indices(loaders[dataloader_idx])
    return None


def _untracked(trainer: pl.Trainer, loader: Any) -> str:
    """The error for a loader that does not report its samples' indices."""
    what = 'a prediction loader' if loader is None else type(loader).__name__
    return (
        f'EmbeddingWriter under {trainer.world_size} processes needs the dataset '
        'index of every predicted sample, to write each sample once and in '
        f'dataset order, but {what} does not report them (Lightning records '
        'them for a torch DataLoader, as seen_batch_indices of its batch '
        'sampler, or as its own seen_batch_indices): predict with a '
        'DataLoader or on a single device'
    )


def _groups(predictions: Any) -> list[list[Any]]:
    """Predictions as one list of batches per dataloader."""
    if predictions and isinstance(predictions[0], list):
        return list(predictions)
    return [list(predictions or [])]


def _stack(tensors: list[Any]) -> np.ndarray:
    """Concatenate batch tensors into one NumPy array.

    Half-precision values (``bf16-mixed`` or ``16-mixed`` predictions, which
    NumPy cannot hold or which :func:`_gather` sends as float64) are widened
    to float32, exactly.
    """
    out = torch.cat([torch.as_tensor(t).detach().cpu() for t in tensors])
    if out.is_floating_point() and out.element_size() < 4:
        out = out.float()
    return out.numpy()


def _warn_nothing(output_dir: Path) -> None:
    """Warn that a prediction gave no batches, so nothing was written."""
    warnings.warn(
        f'EmbeddingWriter: the prediction gave no batches; nothing was written '
        f'to {output_dir} (files already there are left as they were)',
        UserWarning,
        stacklevel=3,
    )
