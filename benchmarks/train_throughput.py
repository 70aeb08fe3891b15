#!/usr/bin/env python3
"""End-to-end SatCLIP training throughput: GeoTIFF vs packed, uncached vs cached.

Trains :class:`~torchgeo_satclip.tasks.SatCLIPTask` (timm backbone, frozen,
random weights so nothing is downloaded; spherical harmonics L=10 + SIREN) with
a Lightning ``Trainer`` on a temporary S2-100K root of real-like patches
(``benchmarks/data_pipeline.py``'s ``make_root``), in the same run:

1. GeoTIFF layout, backbone every step (the original recipe's cost model);
2. packed layout, backbone every step;
3. packed layout, cached backbone features (``CachedFeatureDataModule``),
   after building the cache once (timed separately).

For each it prints images per second end to end (data included) and the mean
step time split into data wait (DataLoader, transfer and on-device
augmentation: the time between one step's end and the next step's start) and
compute (forward, backward, optimiser), plus ratios against the first.

    python benchmarks/train_throughput.py                      # resnet18, 13 x 224 (GPU)
    python benchmarks/train_throughput.py --crop-size 64 --num-patches 48 \
        --batch-size 8 --steps 10 --num-workers 1 --threads 1  # tiny, CPU

Reference point: the original reports ~290 images/s on one A100 (500 epochs
of 100k images in about 2 days).
"""

import argparse
import importlib.util
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from torchgeo_satclip.datamodules import CachedFeatureDataModule, S2100KDataModule
from torchgeo_satclip.datasets import pack_s2_100k
from torchgeo_satclip.tasks import SatCLIPTask


def _make_root() -> Any:
    spec = importlib.util.spec_from_file_location(
        'data_pipeline', Path(__file__).with_name('data_pipeline.py')
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_root


class StepTimer(Callback):
    """Data wait and compute time of every training step."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.computes: list[float] = []
        self._end: float | None = None
        self._start = 0.0

    def _sync(self, pl_module: LightningModule) -> None:
        if pl_module.device.type == 'cuda':
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> None:
        self._sync(pl_module)
        self._end = time.perf_counter()

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()
        if self._end is not None:
            self.waits.append(self._start - self._end)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        self._sync(pl_module)
        self._end = time.perf_counter()
        self.computes.append(self._end - self._start)


def run(
    name: str, task: SatCLIPTask, dm: S2100KDataModule, args: argparse.Namespace
) -> dict[str, float]:
    timer = StepTimer()
    trainer = Trainer(
        accelerator=args.accelerator,
        devices=1,
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        precision=args.precision,
        callbacks=[timer],
    )
    trainer.fit(task, dm)
    # drop the first step (worker start-up, allocation, lazy init)
    waits, computes = timer.waits[1:], timer.computes[1:]
    if not computes:
        raise SystemExit('need --steps >= 2')
    wait = sum(waits) / len(waits)
    compute = sum(computes) / len(computes)
    result = {
        'images_per_s': args.batch_size / (wait + compute),
        'wait_ms': 1000 * wait,
        'compute_ms': 1000 * compute,
    }
    print(
        f'{name:<28} {result["images_per_s"]:10.1f} img/s   step '
        f'{1000 * (wait + compute):8.1f} ms = data wait {result["wait_ms"]:8.1f} ms '
        f'+ compute {result["compute_ms"]:8.1f} ms',
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='resnet18')
    parser.add_argument('--legendre-polys', type=int, default=10)
    parser.add_argument('--crop-size', type=int, default=224)
    parser.add_argument('--num-patches', type=int, default=512)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--num-workers', type=int, default=4)
    parser.add_argument('--views', type=int, default=1)
    parser.add_argument(
        '--accelerator', default='gpu' if torch.cuda.is_available() else 'cpu'
    )
    parser.add_argument('--precision', default='32-true')
    parser.add_argument(
        '--location-dtype', default='float64', choices=['float32', 'float64']
    )
    parser.add_argument(
        '--threads', type=int, default=0, help='torch CPU threads (0: default)'
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 's2_100k'
        start = time.perf_counter()
        _make_root()(root, args.num_patches)
        pack_s2_100k(root, progress=False)
        print(
            f'{args.num_patches} patches written and packed in '
            f'{time.perf_counter() - start:.1f} s; {args.model} frozen, '
            f'13 x {args.crop_size}, L={args.legendre_polys}, batch {args.batch_size}, '
            f'{args.steps} steps, {args.num_workers} workers, {args.accelerator}',
            flush=True,
        )
        with warnings.catch_warnings():  # random weights time as trained ones
            warnings.filterwarnings('ignore', message='.*backbone is random')
            task = SatCLIPTask(
                model=args.model,
                freeze_backbone=True,
                legendre_polys=args.legendre_polys,
                location_dtype=args.location_dtype,
                validate_locations=False,
            )
        common: dict[str, Any] = {
            'batch_size': args.batch_size,
            'num_workers': args.num_workers,
            'crop_size': args.crop_size,
            'root': str(root),
        }
        results = {
            'geotiff, uncached': run(
                'geotiff, uncached',
                task,
                S2100KDataModule(**common, layout='geotiff'),
                args,
            ),
            'packed, uncached': run(
                'packed, uncached',
                task,
                S2100KDataModule(**common, layout='packed'),
                args,
            ),
        }
        cached = CachedFeatureDataModule(
            **common,
            layout='packed',
            feature_views=args.views,
            cache_dir=str(Path(tmp) / 'cache'),
        )
        cached.set_feature_extractor(task.feature_extractor())
        start = time.perf_counter()
        cached.setup('fit')
        build = time.perf_counter() - start
        size = len(cached.dataset)  # type: ignore[arg-type]
        print(
            f'feature cache of {size} images x {args.views} view(s) built in '
            f'{build:.1f} s ({size * args.views / build:.1f} img/s)',
            flush=True,
        )
        results['packed, cached features'] = run(
            'packed, cached features', task, cached, args
        )

    base = results['geotiff, uncached']['images_per_s']
    print('\nspeed-up against geotiff, uncached:')
    for name, result in results.items():
        print(f'  {name:<28} x{result["images_per_s"] / base:8.1f}')


if __name__ == '__main__':
    main()
