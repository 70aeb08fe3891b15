"""Point tasks as a TorchGeo dataset and datamodule, for the location-only tasks.

``PointDataset`` serves a built-in task (``air_temperature``, ``koppen``, ...)
or a user CSV as samples ``{'point': (lon, lat), 'label': target}``;
``PointDataModule`` splits it (seeded) for ``torchgeo fit`` with
:class:`~torchgeo_satclip.tasks.LocationRegressionTask` or
:class:`~torchgeo_satclip.tasks.LocationClassificationTask`.
"""

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import random_split
from torchgeo.datamodules import NonGeoDataModule
from torchgeo.datasets import NonGeoDataset

from .tasks import check_csv_kind, load_task, task_from_csv

__all__ = ['PointDataModule', 'PointDataset']


class PointDataset(NonGeoDataset):  # type: ignore[misc]
    """Points with labels: ``{'point': float32 (2,), 'label': target}``."""

    def __init__(
        self,
        task: str = 'air_temperature',
        path: str | None = None,
        target: str | None = None,
        lon_column: str = 'lon',
        lat_column: str = 'lat',
        num_points: int = 5000,
        seed: int = 0,
        standardize: bool = True,
        transforms: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        kind: Literal['auto', 'regression', 'classification'] = 'auto',
    ) -> None:
        """Initialise the dataset.

        Args:
            task: a built-in task name (ignored when ``path`` is given).
            path: a CSV of points with a ``target`` column.
            target: the target column of ``path``.
            lon_column: longitude column of ``path``.
            lat_column: latitude column of ``path``.
            num_points: points of the sampled built-in tasks.
            seed: sampling seed of the built-in tasks.
            standardize: scale regression targets to zero mean and unit
                variance (``mean``/``std`` attributes keep the scale).
            transforms: applied to each sample.
            kind: what the targets of ``path`` are: 'regression',
                'classification' (for example more than 20 integer class
                codes, which 'auto' reads as a regression target), or 'auto'
                (see :func:`~torchgeo_satclip.evaluation.task_from_csv`);
                a built-in task has its own.

        Raises:
            ValueError: if *kind* is not one of the three, ``path`` is given
                without ``target``, the CSV is refused by
                :func:`~torchgeo_satclip.evaluation.task_from_csv` (a
                non-finite regression target among others), or a regression
                label is not finite once standardised as float32.
        """
        check_csv_kind(kind)  # before a built-in task, which does not read it
        if path is not None:
            if target is None:
                raise ValueError('a CSV path needs target= (the target column)')
            self.task = task_from_csv(path, target, lon_column, lat_column, kind)
        else:
            self.task = load_task(task, num_points, seed)
        self.points = torch.from_numpy(self.task.lonlat.astype(np.float32))
        values = self.task.target
        self.mean, self.std = 0.0, 1.0
        self.standardize = standardize
        if self.task.kind == 'regression':
            self.labels = self._regression_labels(values, standardize)
        else:
            self.labels = torch.from_numpy(values.astype(np.int64))
        self.transforms = transforms

    def fit_standardization(self, indices: Sequence[int] | np.ndarray | Tensor) -> None:
        """Standardise the labels with the mean and std of *indices* only.

        :class:`PointDataModule` passes its training split, so that the
        validation and test targets do not shape the training labels. Does
        nothing for a classification task or with ``standardize=False``.

        Args:
            indices: the points whose targets give ``mean`` and ``std``
                (integers from 0 to ``len(self) - 1``).

        Raises:
            ValueError: if *indices* is empty or holds anything but such an
                integer (a negative index would wrap to a point from the end,
                1.5 or ``True`` be read as 1), naming the first and the range
                expected, or as :class:`PointDataset`.
        """
        if self.task.kind != 'regression' or not self.standardize:
            return
        # a tensor's items are tensors: its numbers are the indices
        given = indices.tolist() if isinstance(indices, Tensor) else list(indices)
        if not given:
            raise ValueError('fit_standardization needs at least one point')
        count = len(self.task.target)
        for item, index in enumerate(given):
            if isinstance(index, bool | np.bool_) or not isinstance(
                index, numbers.Integral
            ):
                raise ValueError(
                    f'fit_standardization: indices hold {index!r} (item {item}, '
                    f'from 0): expected integers, the points of the task from 0 '
                    f'to {count - 1}'
                )
            if not 0 <= int(index) < count:
                raise ValueError(
                    f'fit_standardization: indices hold {index!r} (item {item}, '
                    f'from 0), outside the task of {count} points: expected 0 to '
                    f'{count - 1}'
                )
        fit = np.asarray(given, dtype=np.int64)
        self.labels = self._regression_labels(self.task.target, True, fit)

    def _regression_labels(
        self,
        values: np.ndarray,
        standardize: bool,
        fit: np.ndarray | None = None,
    ) -> Tensor:
        """The float32 labels of a regression task, checked to be finite.

        Args:
            values: the task's float targets.
            standardize: scale to zero mean and unit variance first (sets
                ``mean`` and ``std``).
            fit: the points whose targets give ``mean`` and ``std`` (default:
                all).

        Returns:
            ``(N,)`` float32 labels.

        Raises:
            ValueError: naming the task, its source and the first point whose
                label is not finite (a non-finite target of a task not read
                by :func:`task_from_csv`, or targets so large that their
                mean, standard deviation or float32 label overflows).
        """
        values = np.asarray(values, dtype=np.float64)
        source = f' ({self.task.source})' if self.task.source else ''
        with np.errstate(over='ignore', invalid='ignore'):
            if standardize and np.isfinite(values).all():
                sample = values if fit is None else values[fit]
                self.mean, self.std = float(sample.mean()), float(sample.std() or 1.0)
                if not (math.isfinite(self.mean) and math.isfinite(self.std)):
                    raise ValueError(
                        f'task {self.task.name!r}{source}: the targets (from '
                        f'{float(values.min())!r} to {float(values.max())!r}) have mean '
                        f'{self.mean} and std {self.std}; expected finite targets '
                        'small enough to standardise in float64'
                    )
            labels = ((values - self.mean) / self.std).astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(labels))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f'task {self.task.name!r}{source}: the target of point {i} '
                f'(from 0, at lon/lat {tuple(self.task.lonlat[i].tolist())}) is '
                f'{float(values[i])!r}, which gives the label {labels[i]} with mean '
                f'{self.mean} and std {self.std}; expected finite targets small '
                'enough for float32'
            )
        return torch.from_numpy(labels)

    def __len__(self) -> int:
        """Return the number of points."""
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Return one point and its label.

        Args:
            index: the point's index.

        Returns:
            The sample.
        """
        sample = {'point': self.points[index], 'label': self.labels[index]}
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample


class PointDataModule(NonGeoDataModule):  # type: ignore[misc]
    """A seeded train/val/test split of a :class:`PointDataset`."""

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        val_split_pct: float = 0.2,
        test_split_pct: float = 0.2,
        **kwargs: Any,
    ) -> None:
        """Initialise the datamodule.

        Args:
            batch_size: points per batch.
            num_workers: data-loading processes.
            val_split_pct: fraction of points for validation.
            test_split_pct: fraction of points for testing.
            **kwargs: arguments of :class:`PointDataset`.

        Raises:
            ValueError: if a fraction is not a number in [0, 1) or the two
                leave no training point (their sum is 1 or more).
        """
        for name, value in (
            ('val_split_pct', val_split_pct),
            ('test_split_pct', test_split_pct),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not 0 <= value < 1
            ):
                raise ValueError(f'{name} must be a number in [0, 1), not {value!r}')
        if val_split_pct + test_split_pct >= 1:
            raise ValueError(
                f'val_split_pct {val_split_pct} + test_split_pct {test_split_pct} '
                'must be below 1: the rest is the training split'
            )
        super().__init__(PointDataset, batch_size, num_workers, **kwargs)
        self.val_split_pct = val_split_pct
        self.test_split_pct = test_split_pct

    def setup(self, stage: str) -> None:
        """Load the points and split them (seed 0).

        Regression targets are standardised with the mean and std of the
        training split alone (:meth:`PointDataset.fit_standardization`).

        Args:
            stage: 'fit', 'validate', 'test' or 'predict'.

        Raises:
            ValueError: if the split leaves no training point, or a fraction
                above 0 gives no point.
        """
        dataset = PointDataset(**self.kwargs)
        test = round(len(dataset) * self.test_split_pct)
        val = round(len(dataset) * self.val_split_pct)
        for name, fraction, count in (
            ('val_split_pct', self.val_split_pct, val),
            ('test_split_pct', self.test_split_pct, test),
        ):
            if fraction > 0 and count == 0:
                raise ValueError(
                    f'{name} {fraction} of {len(dataset)} points gives none: '
                    f'use more points, a larger {name}, or {name}=0 for no split'
                )
        train = len(dataset) - val - test
        if train < 1:
            raise ValueError(
                f'{len(dataset)} points leave no training point after {val} for '
                f'validation and {test} for testing'
            )
        generator = torch.Generator().manual_seed(0)
        self.train_dataset, self.val_dataset, self.test_dataset = random_split(
            dataset, [train, val, test], generator
        )
        dataset.fit_standardization(self.train_dataset.indices)

    def on_after_batch_transfer(
        self, batch: dict[str, Tensor], dataloader_idx: int
    ) -> dict[str, Tensor]:
        """Return the batch unchanged: points need no image augmentation.

        Args:
            batch: the batch.
            dataloader_idx: index of its dataloader.

        Returns:
            The batch.
        """
        return batch
