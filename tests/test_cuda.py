"""CUDA checks of the GPU path; skipped without a GPU (CI has none).

Run on a GPU machine with ``pytest tests/test_cuda.py`` (and the CUDA test of
``tests/models/test_positional.py``); ``benchmarks/gpu_suite.sh`` measures the
speed of the same path.
"""

import shutil
from pathlib import Path
from typing import cast

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from torch import Tensor, nn

from torchgeo_satclip.datamodules import (
    S2100KAugmentation,
    S2100KDataModule,
    ThreadedBatchLoader,
)
from torchgeo_satclip.datasets import S2100K, pack_s2_100k
from torchgeo_satclip.models import (
    _sh_triton,
    build_location_encoder,
    spherical_harmonics,
)
from torchgeo_satclip.tasks import SatCLIPTask
from torchgeo_satclip.tasks._clip import clip_loss
from torchgeo_satclip.tasks._moco import MomentumEncoder, moco_loss

from .tasks.test_moco import bn_encoder, moco_task, pair_batch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')

REAL = Path(__file__).parent / 'data' / 's2_100k' / 'real'


@pytest.fixture(scope='module')
def packed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('cuda') / 's2_100k'
    shutil.copytree(REAL, root)
    pack_s2_100k(root, progress=False)
    return root


def test_uint16_batches_convert_on_the_gpu(packed_root: Path) -> None:
    """Pinned uint16 batches, converted on the GPU, equal the float32 CPU path."""
    dm = S2100KDataModule(
        root=packed_root, batch_size=3, num_workers=1, pin_memory=True
    )
    dm.setup('predict')
    loader = dm.predict_dataloader()  # in dataset order
    assert loader.pin_memory
    batch = next(iter(loader))
    assert batch['image'].dtype == torch.uint16
    assert batch['image'].is_pinned()
    on_gpu = {k: v.to('cuda', non_blocking=True) for k, v in batch.items()}
    aug = S2100KAugmentation(random=False)
    seen = aug(on_gpu)['image']
    assert seen.device.type == 'cuda'
    assert seen.dtype == torch.float32
    # the float32 GeoTIFF path, converted on the same device: bit for bit
    geotiff = S2100K(packed_root, layout='geotiff')
    floats = torch.stack([geotiff[i]['image'] for i in range(3)]).cuda()
    assert torch.equal(seen, aug({'image': floats})['image'])
    # and bit for bit the CPU's: true division on both devices (a Python
    # divisor would make CUDA multiply by its reciprocal instead)
    on_cpu = aug({'image': floats.cpu()})['image']
    assert torch.equal(seen.cpu(), on_cpu)
    # every uint16 value, as the CPU divides it (no crop, no B10 band)
    exact = S2100KAugmentation(random=False, crop_size=None, insert_b10=False)
    every = torch.arange(2**16, dtype=torch.int32).to(torch.uint16)
    every = every.reshape(1, 1, 256, 256)
    divided = exact({'image': every.cuda()})['image'].cpu()
    assert torch.equal(divided, every.float() / 10000)


def test_random_augmentation_on_uint16(packed_root: Path) -> None:
    """Crops, flips, blur and jitter run on a uint16 batch on the GPU."""
    ds = S2100K(packed_root, image_dtype='uint16')
    samples = ds.__getitems__([0, 1, 2])
    batch = {k: v.cuda() for k, v in samples.stacked.items()}  # type: ignore[attr-defined]
    out = S2100KAugmentation()(batch)
    assert out['image'].shape == (3, 13, 224, 224)
    assert out['image'].dtype == torch.float32
    assert torch.isfinite(out['image']).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('degrees', [10, 40])
def test_location_encoder_matches_cpu(dtype: torch.dtype, degrees: int) -> None:
    torch.manual_seed(0)
    encoder = build_location_encoder(legendre_polys=degrees, dtype=dtype).eval()
    lonlat = torch.stack(
        [torch.rand(4096) * 360 - 180, torch.rand(4096) * 180 - 90], 1
    ).to(dtype)
    lonlat[:4] = torch.tensor([[-180, 90], [180, -90], [0, 0], [179.999, 89.999]])
    expected = encoder(lonlat)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        out = encoder.cuda()(lonlat.cuda()).cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    if dtype == torch.float64:
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    else:  # float32 sums of up to L^2 = 1,600 terms, in another order
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def _points(n: int, dtype: torch.dtype) -> Tensor:
    g = torch.Generator().manual_seed(1)
    lonlat = torch.stack(
        [torch.rand(n, generator=g) * 360 - 180, torch.rand(n, generator=g) * 180 - 90],
        1,
    )
    lonlat[:6] = torch.tensor(
        [[-180, 90], [180, -90], [0, 0], [179.999, 89.999], [10, 45], [-10, -45]]
    )
    return lonlat.to(dtype)


@pytest.mark.skipif(
    not _sh_triton.available()
    or not torch.cuda.is_available()
    or torch.cuda.get_device_capability() < (8, 0),
    reason="needs triton and a GPU that 'auto' runs the kernel on (sm_80+)",
)
@pytest.mark.parametrize('degrees', [1, 7, 10, 40, 100])
@pytest.mark.parametrize('num_points', [1, 8192, 8195])
def test_fused_spherical_harmonics_on_cuda(
    degrees: int, num_points: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled kernel, chosen by default on CUDA, against the recurrence.

    8,192 points (divisible by 16) and 8,195 (a ragged batch, its rows
    padded to 8,208) both store several points per instruction; 1 point
    runs a single program per order.
    """
    calls: list[int] = []
    kernel = _sh_triton.fused_spherical_harmonics

    def counted(*args: object, **kwargs: object) -> Tensor:
        calls.append(1)
        return cast(Tensor, kernel(*args, **kwargs))  # type: ignore[arg-type]

    monkeypatch.setattr(_sh_triton, 'fused_spherical_harmonics', counted)
    points = _points(max(num_points, 6), torch.float64)[-num_points:].cuda()
    exact = spherical_harmonics(points, degrees, backend='torch')
    # float32: the tolerance of the reference tests up to L = 40; at L = 100
    # both paths are off by up to 6e-4 (measured in Triton's interpreter).
    f32_atol = 5e-4 if degrees <= 40 else 2e-3
    for dtype, atol in ((torch.float64, 1e-12), (torch.float32, f32_atol)):
        lonlat = points.to(dtype)
        fused = spherical_harmonics(lonlat, degrees)
        recurrence = spherical_harmonics(lonlat, degrees, backend='torch')
        assert fused.dtype == dtype
        # Rows padded to a multiple of 16 points (vectorised stores).
        assert recurrence.stride() == (1, num_points)
        assert fused.stride() == (1, -(-num_points // 16) * 16)
        torch.testing.assert_close(fused.double(), exact, rtol=0, atol=atol)
        torch.testing.assert_close(fused, recurrence, rtol=0, atol=atol)
    assert len(calls) == 2
    lonlat = points.float()
    full = spherical_harmonics(lonlat, degrees)
    narrow = spherical_harmonics(lonlat, degrees, dtype=torch.bfloat16)
    assert torch.equal(narrow, full.to(torch.bfloat16))
    half = spherical_harmonics(lonlat, degrees, dtype=torch.float16)
    assert torch.equal(half, full.to(torch.float16))
    nan = lonlat.clone()
    nan[:, 1] = float('nan')
    assert torch.equal(
        torch.isnan(spherical_harmonics(nan, degrees, dtype=torch.bfloat16)),
        torch.isnan(spherical_harmonics(nan, degrees, backend='torch')),
    )
    tracked = lonlat[:10].clone().requires_grad_(True)
    spherical_harmonics(tracked, degrees).sum().backward()  # the recurrence
    assert len(calls) == 6


def test_bf16_encoder_gets_bf16_harmonics_on_cuda() -> None:
    torch.manual_seed(0)
    encoder = build_location_encoder(
        legendre_polys=40, dtype=torch.float32, dropout=0.0
    ).cuda()
    lonlat = _points(8192, torch.float32).cuda()
    seen: list[torch.dtype] = []
    encoder.nnet.register_forward_pre_hook(lambda m, a: seen.append(a[0].dtype))
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
        out = encoder(lonlat)
        encoder.posenc.backend = 'torch'  # type: ignore[assignment]
        expected = encoder.nnet(spherical_harmonics(lonlat, 40, backend='torch'))
    assert seen[0] == torch.bfloat16
    # The kernel's float32 values differ from the recurrence's in the last
    # bit at most, which can move a bf16 rounding by one step.
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.skipif(not _sh_triton.available(), reason='needs triton')
def test_compiled_encoder_runs_the_kernel_on_cuda() -> None:
    """torch.compile of a location encoder traces the recurrence ('auto' does
    not pick the kernel while compiling; fullgraph works) and gives the
    eager values, which come from the kernel. ``validate=False``: the range
    check branches on the values, which fullgraph cannot trace. L = 10: the
    traced recurrence unrolls over the degrees, and L = 40 took two minutes
    to compile on a 2-core CPU."""
    torch.manual_seed(0)
    encoder = build_location_encoder(
        legendre_polys=10, dtype=torch.float32, dropout=0.0, validate=False
    ).cuda()
    lonlat = _points(4096, torch.float32).cuda()
    with torch.no_grad():
        eager = encoder(lonlat)
        compiled = torch.compile(encoder, fullgraph=True)(lonlat)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_bf16_mixed_training_on_cuda(packed_root: Path) -> None:
    """The GPU recipe's settings train; the location side stays float64."""
    dtypes: dict[str, torch.dtype] = {}

    def remember(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: object, output: Tensor) -> None:
            dtypes[name] = output.dtype

        return hook

    task = SatCLIPTask(
        model='resnet18',
        in_channels=13,
        freeze_backbone=True,
        embed_dim=32,
        legendre_polys=10,
        capacity=64,
        location_dtype='float64',
        channels_last=True,
    )
    task.model.register_forward_hook(remember('image'))
    task.location_encoder.register_forward_hook(remember('location'))
    dm = S2100KDataModule(
        root=packed_root, batch_size=2, val_split_pct=0.0, num_workers=1
    )
    trainer = Trainer(
        accelerator='gpu',
        devices=1,
        precision='bf16-mixed',
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(task, dm)
    assert trainer.global_step == 2
    assert dm.train_dataloader().pin_memory  # chosen because the trainer is on CUDA
    assert dtypes == {'image': torch.bfloat16, 'location': torch.float64}
    assert {p.dtype for p in task.location_encoder.parameters()} == {torch.float64}


@pytest.mark.usefixtures('tiny_timm')
def test_moco_keys_in_shuffled_parts_on_cuda() -> None:
    """moco_bn_splits on a GPU: the keys of a shuffled batch encoded in parts
    come back in the batch's order, and a bf16 training loss is finite."""
    encoder = MomentumEncoder(bn_encoder(), nn.Identity(), queue_size=4, dim=4)
    encoder = encoder.cuda()
    x = torch.randn(8, 3, device='cuda')
    torch.manual_seed(5)
    keys = encoder(x, shuffle_bn=True, splits=2)
    torch.manual_seed(5)
    order = torch.randperm(8, device='cuda')
    with torch.no_grad():
        shuffled = torch.cat(
            [encoder.backbone(x[order[:4]]), encoder.backbone(x[order[4:]])]
        )
    expected = torch.empty_like(shuffled)
    expected[order] = F.normalize(shuffled, dim=1)
    torch.testing.assert_close(keys, expected)

    task = moco_task(moco_bn_splits=2).cuda().train()
    batch = {k: v.cuda() for k, v in pair_batch(8).items()}
    with torch.autocast('cuda', dtype=torch.bfloat16):
        loss, _ = task.compute_loss(batch, enqueue=True)
    assert torch.isfinite(loss)
    loss.backward()


def test_pinned_batches_are_not_reused_before_their_copies(packed_root: Path) -> None:
    """ThreadedBatchLoader's pinned batches, copied to the GPU without
    blocking behind a busy stream, arrive intact: PyTorch's caching host
    allocator lends a block again only after the copy that reads it ran."""
    dataset = S2100K(packed_root, image_dtype='uint16')
    expected = torch.stack([dataset[i]['image'] for i in range(len(dataset))])
    loader = ThreadedBatchLoader(dataset, 1, num_threads=2, prefetch=2, pin_memory=True)
    copies = []
    for _ in range(8):
        for batch in loader:
            assert batch['image'].is_pinned()
            torch.cuda._sleep(5_000_000)  # the copy waits behind this
            copies.append(batch['image'].to('cuda', non_blocking=True))
            del batch  # its block may be lent again at once
    torch.cuda.synchronize()
    arrived = torch.cat(copies).cpu()
    assert torch.equal(arrived, expected.repeat(8, 1, 1, 1))


def test_pinned_float32_batches_stay_pinned(packed_root: Path) -> None:
    """With image_dtype='float32' the loader converts each batch into pinned
    memory, so the converted batch is still copied without blocking."""
    dataset = S2100K(packed_root, image_dtype='float32')
    batch = next(iter(ThreadedBatchLoader(dataset, 3, pin_memory=True)))
    assert batch['image'].dtype == torch.float32
    assert batch['image'].is_pinned()
    assert torch.equal(
        batch['image'], torch.stack([dataset[i]['image'] for i in range(3)])
    )


def test_contrastive_logits_are_float32_under_cuda_bf16_autocast() -> None:
    """The CLIP and MoCo similarities leave autocast: float32 as on the CPU."""
    g = torch.Generator().manual_seed(0)
    image, location = torch.randn(2, 16, 8, generator=g).cuda()
    queue = F.normalize(torch.randn(32, 8, generator=g), dim=1).cuda()
    scale = torch.tensor(4.6, device='cuda')
    with torch.autocast('cuda', dtype=torch.bfloat16):
        clip = clip_loss(image, location, scale)
        moco = moco_loss(image, location, queue, temperature=0.07)
    exact_clip = clip_loss(image, location, scale)
    exact_moco = moco_loss(image, location, queue, temperature=0.07)
    for out, exact in (
        (clip.logits_image, exact_clip.logits_image),
        (moco.logits, exact_moco.logits),
    ):
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, exact, rtol=1e-5, atol=1e-5)


def test_lonlat_of_cuda_bounds_stay_on_cuda(tmp_path: Path) -> None:
    """torchgeo 0.10 batches carry bounds as a (B, 9) tensor, moved to the GPU
    with the batch: the lon/lat read from them follow it (they were made on
    the CPU, and the encoder then met a CPU tensor)."""
    from torchgeo.datasets import RasterDataset, stack_samples

    from torchgeo_satclip._compat import TORCHGEO_AT_LEAST_0_10
    from torchgeo_satclip.transforms import sample_lonlat

    from .transforms.test_location import PARIS, write_utm_tif

    if not TORCHGEO_AT_LEAST_0_10:
        pytest.skip('torchgeo 0.8 bounds are slices or boxes, on no device')
    write_utm_tif(tmp_path / 'paris.tif', PARIS)
    dataset = RasterDataset(paths=str(tmp_path))
    batch = stack_samples([dataset[dataset.bounds], dataset[dataset.bounds]])
    batch['bounds'] = batch['bounds'].cuda()
    lonlat, batched = sample_lonlat(batch, dataset.crs)
    assert batched
    assert lonlat.device.type == 'cuda'
    torch.testing.assert_close(
        lonlat.cpu(),
        torch.tensor([PARIS, PARIS], dtype=torch.float64),
        atol=1e-6,
        rtol=0,
    )
