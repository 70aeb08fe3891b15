#!/usr/bin/env python3
"""Images per second per DataLoader worker: S2-100K GeoTIFF vs packed layout.

Builds a temporary S2-100K root of real-shaped patches (12 x 256 x 256 uint16,
LZW, tiled 512 x 512 with pixel interleave like the real files): the three
real sample patches from tests/data/s2_100k/real plus noisy copies of them,
packs it with ``pack_s2_100k``, then times a full pass of a DataLoader over
each layout with 1 and 2 workers, in the same run. Packing is timed too.

    python benchmarks/data_pipeline.py --num-patches 300

It prints the in-process ``__getitem__`` rate of each layout (decoding per
CPU core, no DataLoader) and then DataLoader throughput per worker of three
pipelines: the datamodule's (whole uint16 batches read by ``__getitems__``
into shared memory, ``collate_sample_batch``) on the GeoTIFF layout and on
the packed layout, and, as "before", the packed layout read sample by sample
as float32 and stacked by ``default_collate`` (3 MiB per image collated and
sent between processes); then the same packed batches read by as many
threads of the main process (``ThreadedBatchLoader``, the datamodule's
default for the packed layout), and, as "no pool", the same threads reading
every batch into fresh memory (the loader without its pool of batch blocks,
allocated by ``torch.empty`` as before the pool), with the ratios of the
fastest packed pipeline to GeoTIFF and to "before".
Every pipeline makes one untimed full pass, then ``--passes`` timed ones (3
by default) with the same workers or threads: the steady state of training,
without start-up transients (starting workers, first batch buffers faulted
in); its rate is the images of the timed passes over their time. The packed
shards are freshly written, so they are in the page cache: the packed figure
is the decode-free ceiling; from a cold disk it is bounded by disk bandwidth
(1.5 MiB per patch).
"""

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from torchgeo_satclip.datamodules import ThreadedBatchLoader, collate_sample_batch
from torchgeo_satclip.datasets import S2100K, pack_s2_100k

REAL = Path(__file__).parents[1] / 'tests' / 'data' / 's2_100k' / 'real'


def make_root(root: Path, num_patches: int, seed: int = 0) -> None:
    """Write *num_patches* real-like patches and an index.csv under *root*."""
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    sources = sorted((REAL / 'images').glob('*.tif'))
    lines = ['fn,lon,lat']
    for i in range(num_patches):
        src = sources[i % len(sources)]
        fn = f'patch_{i}.tif'
        if i < len(sources):
            shutil.copy(src, root / 'images' / fn)
        else:
            # a flipped/rotated copy with a small offset and sparse noise: new
            # content that LZW compresses like the real patch (dense noise
            # would make the files larger and slower to decode than real ones)
            with rasterio.open(src) as f:
                profile = f.profile
                image = f.read().astype(np.int32)
            image = np.rot90(image, k=int(rng.integers(4)), axes=(1, 2))
            if rng.random() < 0.5:
                image = image[:, ::-1]
            image = image + int(rng.integers(0, 50))
            mask = rng.random(image.shape) < 0.01
            image[mask] += rng.integers(-20, 21, int(mask.sum()))
            image = np.ascontiguousarray(np.clip(image, 0, 65535).astype(np.uint16))
            with rasterio.open(root / 'images' / fn, 'w', **profile) as dst:
                dst.write(image)
        lines.append(f'{fn},{rng.uniform(-180, 180):.6f},{rng.uniform(-60, 80):.6f}')
    (root / 'index.csv').write_text('\n'.join(lines) + '\n', encoding='utf-8')


def images_per_second(
    dataset: 'Dataset[Any]',
    collate_fn: Callable[..., Any],
    num_workers: int,
    batch_size: int,
    passes: int,
) -> float:
    """Images/s of a DataLoader over *passes* full passes after one untimed."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        collate_fn=collate_fn,
        num_workers=num_workers,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=num_workers > 0,
    )
    return steady_rate(loader, passes)


def steady_rate(loader: Iterable[dict[str, torch.Tensor]], passes: int) -> float:
    """Images/s over *passes* full passes of *loader*, after an untimed one."""
    for _ in loader:
        pass
    count = 0
    start = time.perf_counter()
    for _ in range(passes):
        for batch in loader:
            count += len(batch['image'])
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-patches', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    parser.add_argument(
        '--passes', type=int, default=3, help='timed passes, after an untimed one'
    )
    parser.add_argument('--tmp', default=None, help='parent of the temporary root')
    args = parser.parse_args()
    if args.passes < 1:
        parser.error(f'--passes must be >= 1, not {args.passes}')

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp) / 's2_100k'
        start = time.perf_counter()
        make_root(root, args.num_patches)
        print(f'made {args.num_patches} patches in {time.perf_counter() - start:.1f} s')
        tif_bytes = sum(p.stat().st_size for p in (root / 'images').iterdir())

        start = time.perf_counter()
        result = pack_s2_100k(root, shard_size=128, progress=False)
        seconds = time.perf_counter() - start
        print(
            f'pack (1 process): {args.num_patches / seconds:.1f} patches/s; '
            f'GeoTIFF {tif_bytes / 2**20:.0f} MiB -> packed {result.num_bytes / 2**20:.0f} MiB'
        )

        rates: dict[str, float] = {}
        geotiff = S2100K(root, layout='geotiff')
        packed = S2100K(root, layout='packed')
        for i in range(0, len(geotiff), max(1, len(geotiff) // 10)):
            assert torch.equal(geotiff[i]['image'], packed[i]['image'])

        for name, dataset in (('GeoTIFF', geotiff), ('packed', packed)):
            start = time.perf_counter()
            for i in range(len(dataset)):
                dataset[i]
            rates[name] = len(dataset) / (time.perf_counter() - start)
            print(
                f'in-process __getitem__ (1 core, no DataLoader), {name}: '
                f'{rates[name]:.1f} images/s'
            )
        print(f'ratio per core: {rates["packed"] / rates["GeoTIFF"]:.1f}x')

        # The three pipelines, in the same run:
        # - GeoTIFF: the datamodule's path (uint16 batches) on the GeoTIFF layout;
        # - before: the packed layout read sample by sample as float32 and
        #   stacked by default_collate (this package before batched reads);
        # - packed: the datamodule's path on the packed layout: whole batches
        #   read by __getitems__ into shared memory, uint16, no collation copy.
        pipelines: dict[str, tuple[Dataset[Any], Callable[..., Any]]] = {
            'GeoTIFF': (
                S2100K(root, layout='geotiff', image_dtype='uint16'),
                collate_sample_batch,
            ),
            'before': (PerSample(packed), default_collate),
            'packed': (
                S2100K(root, layout='packed', image_dtype='uint16'),
                collate_sample_batch,
            ),
        }
        check = next(
            iter(
                DataLoader(
                    pipelines['packed'][0],
                    batch_size=4,
                    collate_fn=collate_sample_batch,
                )
            )
        )
        assert torch.equal(
            check['image'].float(), torch.stack([packed[i]['image'] for i in range(4)])
        )
        print(
            f'{"workers":>8} {"GeoTIFF":>10} {"before":>10} {"packed":>10} '
            f'{"threads":>10} {"no pool":>10} {"vs GeoTIFF":>11} {"vs before":>10}  '
            f'(images/s per worker or thread, batch {args.batch_size})'
        )
        for workers in args.workers:
            per_worker = {
                name: images_per_second(
                    dataset, collate, workers, args.batch_size, args.passes
                )
                / workers
                for name, (dataset, collate) in pipelines.items()
            }
            for name, pool in (('threads', True), ('no pool', False)):
                per_worker[name] = (
                    threaded_images_per_second(
                        pipelines['packed'][0],
                        workers,
                        args.batch_size,
                        args.passes,
                        pool=pool,
                    )
                    / workers
                )
            best = max(per_worker['packed'], per_worker['threads'])
            print(
                f'{workers:>8} {per_worker["GeoTIFF"]:>10.1f} '
                f'{per_worker["before"]:>10.1f} {per_worker["packed"]:>10.1f} '
                f'{per_worker["threads"]:>10.1f} {per_worker["no pool"]:>10.1f} '
                f'{best / per_worker["GeoTIFF"]:>10.1f}x '
                f'{best / per_worker["before"]:>9.1f}x'
            )


def threaded_images_per_second(
    dataset: 'Dataset[Any]',
    num_threads: int,
    batch_size: int,
    passes: int,
    *,
    pool: bool = True,
) -> float:
    """Images/s of a ThreadedBatchLoader (see :func:`steady_rate`)."""
    loader = ThreadedBatchLoader(
        dataset, batch_size, num_threads=num_threads, shuffle=True
    )
    if not pool:  # every batch in fresh memory, allocated as before the pool
        loader._buffers.take = lambda shape: torch.empty(shape, dtype=torch.uint16)  # type: ignore[method-assign]
    return steady_rate(loader, passes)


class PerSample(Dataset[dict[str, torch.Tensor]]):
    """A dataset read one sample at a time (no ``__getitems__``)."""

    def __init__(self, dataset: S2100K) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.dataset[index]


if __name__ == '__main__':
    main()
