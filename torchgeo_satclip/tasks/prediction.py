"""Write the embeddings of ``torchgeo predict`` to files.

:class:`EmbeddingWriter` is a Lightning prediction writer: set it in a
config's ``trainer.callbacks`` and ``torchgeo predict`` writes the location
(and image) embeddings that :meth:`SatCLIPTask.predict_step` returns, with
their points, at the end of the run.
"""

import os
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from .._io import atomic_path

__all__ = ['EmbeddingWriter']

#: Embedding keys of a prediction, in the order they are written.
_KEYS = ('location_embedding', 'image_embedding')


class EmbeddingWriter(BasePredictionWriter):
    """Write predicted embeddings and their points, atomically.

    ``format='parquet'`` writes ``embeddings.parquet`` with ``lon``, ``lat``
    and one list column per embedding (``location_embedding``,
    ``image_embedding``); ``format='npy'`` writes ``points.csv`` (``lon``,
    ``lat``) and ``location_embedding.npy`` (and ``image_embedding.npy``),
    ``(N, embed_dim)`` float32, rows in the order of the points. Every file
    goes to a temporary sibling first and is renamed when complete.
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
            ValueError: on an unknown format.
        """
        super().__init__(write_interval='epoch')
        if format not in ('parquet', 'npy'):
            raise ValueError(f"format must be 'parquet' or 'npy', not {format!r}")
        self.output_dir = Path(output_dir)
        self.format = format

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
            batch_indices: unused.

        Raises:
            ValueError: if the predictions have no ``point``.
        """
        batches = [b for group in _groups(predictions) for b in group]
        if not batches:
            return
        if not all(isinstance(b, dict) and 'point' in b for b in batches):
            raise ValueError(
                "EmbeddingWriter needs predictions with a 'point' and embeddings "
                '(as SatCLIPTask.predict_step returns)'
            )
        points = _stack([b['point'] for b in batches]).astype(np.float64)
        embeddings = {
            key: _stack([b[key] for b in batches]).astype(np.float32)
            for key in _KEYS
            if all(key in b for b in batches)
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.format == 'parquet':
            frame = pd.DataFrame({'lon': points[:, 0], 'lat': points[:, 1]})
            for key, values in embeddings.items():
                frame[key] = list(values)
            with atomic_path(self.output_dir / 'embeddings.parquet') as tmp:
                frame.to_parquet(tmp, index=False)
            return
        frame = pd.DataFrame({'lon': points[:, 0], 'lat': points[:, 1]})
        with atomic_path(self.output_dir / 'points.csv') as tmp:
            frame.to_csv(tmp, index=False)
        for key, values in embeddings.items():
            with (
                atomic_path(self.output_dir / f'{key}.npy') as tmp,
                open(tmp, 'wb') as f,
            ):
                np.save(f, values)


def _groups(predictions: Any) -> list[list[Any]]:
    """Predictions as one list of batches per dataloader."""
    if predictions and isinstance(predictions[0], list):
        return list(predictions)
    return [list(predictions or [])]


def _stack(tensors: list[Any]) -> np.ndarray:
    """Concatenate batch tensors into one NumPy array."""
    return torch.cat([torch.as_tensor(t).detach().cpu() for t in tensors]).numpy()
