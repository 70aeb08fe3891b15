#!/usr/bin/env python3
"""One GPU benchmark suite: encoders, data, training, cached features, DDP.

Run through ``benchmarks/gpu_suite.sh`` (which installs nothing and only
calls this file); ``--quick`` runs every section with tiny sizes on the CPU,
which is what the test suite does so that the script never rots.

Sections, each measured in the same run as its baseline:

``encoder``
    Points per second of the spherical harmonics alone and of the full
    location encoder (SH + SIREN 512 x 2 -> 256, float32 parameters) at
    L = 10 and 40, in strict float32, TF32 and bf16 autocast (the SH are
    computed in float32 and, under autocast, stored in bf16; the linear
    layers run in bf16), each with the fused Triton kernel (the default on
    CUDA) and with the tensor recurrence. Ratios against strict float32 and
    against the recurrence; the network alone on precomputed harmonics
    (``net_*``: what the encoder would reach with free harmonics); the
    float32 error of the kernel and of the recurrence against float64; the
    kernel's speed at a few block sizes.
``encoder_compiled`` (with ``encoder``)
    The L = 40 bf16 encoder with its SIREN compiled by ``torch.compile``
    (harmonics from the default backend), against the eager encoder, and
    the compile time.
``data``
    Images per second per DataLoader worker of the datamodule's path
    (``S2100K.__getitems__`` on the packed layout, uint16 batches,
    ``collate_sample_batch``) and per thread of ``ThreadedBatchLoader`` for
    several counts, and of the GeoTIFF layout with one worker (the baseline).
``train``
    The ResNet18-L10 recipe (frozen ResNet-18 with random weights: nothing is
    downloaded; 13 bands, 224 x 224 crops, SH L=10 + SIREN float64,
    ``bf16-mixed``, channels-last, batch 512) trained by a Lightning
    ``Trainer`` end to end from the packed layout of real-shaped patches
    (rotated/offset copies of the three real S2-100K patches): first the
    compute alone (one batch kept on the GPU, no data loading), which gives
    the number of workers needed to feed it (compute rate / per-worker
    rate), then end to end with the datamodule's default for the packed
    layout (``ThreadedBatchLoader``) with that many threads and with all
    cores, and with as many worker processes (``loader='processes'``) as the
    baseline.
    Peak GPU memory.
``cached``
    Cached-feature training (``CachedFeatureDataModule``): epochs per second
    on the cache and the projected time of 500 epochs of 100k samples, with
    the uncached end-to-end rate as the baseline.
``compile`` (only when asked for)
    Compute-only images/s with ``compile_image_encoder: true`` against eager,
    and the time the compilation adds to the fit.
``tests`` (only when asked for)
    The CUDA tests (``tests/test_cuda.py``, the CUDA test of every
    positional encoding, those of the image probe's features and of
    ``embed_file``'s device: every test skipped without CUDA), run by pytest in
    a subprocess: counts and the
    names of failures. A failure is reported like a failed section.
``ddp``
    A Lightning ``ddp`` run on one device: the time to start the process
    group (NCCL on CUDA, gloo on the CPU) and train a few steps, against the
    same run with the default single-device strategy.

Writes ``gpu_results.json`` and ``gpu_results.md`` into ``--out`` after every
section, so a run stopped by a time limit still leaves what it measured. A
section whose process dies (a compiler's crash), that leaves the GPU broken
(exit status 3) or that runs past ``--section-timeout`` (default 300 s; exit
status 4, after printing where each thread was) costs that section only:
``gpu_suite.sh`` runs the sections left in a new process (``--resume``),
which keeps the results.

    bash benchmarks/gpu_suite.sh --out results/        # on a GPU machine
    bash benchmarks/gpu_suite.sh --quick --out /tmp/q  # anywhere, in a minute
"""

import argparse
import faulthandler
import importlib
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).parent))
from data_pipeline import make_root

from torchgeo_satclip.datamodules import (
    CachedFeatureDataModule,
    S2100KDataModule,
    ThreadedBatchLoader,
    collate_sample_batch,
)
from torchgeo_satclip.datasets import S2100K, pack_s2_100k
from torchgeo_satclip.models import (
    SphericalHarmonics,
    _sh_triton,
    build_location_encoder,
    spherical_harmonics,
)
from torchgeo_satclip.tasks import SatCLIPTask

#: The module of the harmonics (its name is shadowed by the function in
#: ``torchgeo_satclip.models``): where ``backend='auto'`` records the kernel
#: variants that failed, which no public function reports.
SH_MODULE = importlib.import_module('torchgeo_satclip.models.spherical_harmonics')

#: Targets of issue 11 on one H100/H200, printed beside the measured figures.
TARGETS = {
    'encoder_l40_tf32_points_per_s': 25e6,
    'encoder_l40_bf16_points_per_s': 100e6,
    'train_end_to_end_images_per_s': 3000.0,
    'cached_500_epochs_minutes': 30.0,
    'data_images_per_s_per_worker': 1000.0,
}

#: Exit status of a run stopped because a failed section left the GPU broken
#: (a sticky CUDA error: every later section would fail in this process);
#: ``gpu_suite.sh`` then goes on with the sections left in a new process
#: (``--resume``), as it does after the process died (a compiler crash).
RESTART = 3

#: The sections that run the fused harmonics kernel in the suite's own
#: process: after one of them killed the process or broke the GPU, the
#: sections left run with the kernel switched off (``backend='auto'`` on the
#: recurrence), so that the same crash cannot take them along too.
KERNEL_SECTIONS = ('encoder', 'encoder_compiled')

#: Exit status of a run stopped because a section ran past
#: ``--section-timeout`` (a hung DataLoader worker, an NCCL start-up that
#: never ends, a compiler that never returns): the section is recorded as
#: timed out and ``gpu_suite.sh`` goes on with the sections left in a new
#: process, as after :data:`RESTART`.
TIMED_OUT = 4


class _LiveFigures(dict[str, Any]):
    """A section's figures: each new one saves the results at once.

    A run stopped by its time limit in the middle of a section keeps every
    figure that section had measured.
    """

    def __init__(self, save: Callable[[], None]) -> None:
        super().__init__()
        self._save = save

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._save()


class Suite:
    """Results of the sections, saved after each figure and each section."""

    def __init__(self, out: Path, args: argparse.Namespace) -> None:
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.section_timeout: float = args.section_timeout
        self.tests_timeout: float = args.tests_timeout
        # save() runs in the main thread and in the watchdog's
        self._saving = threading.Lock()
        self.results: dict[str, Any] = {
            'meta': meta(args),
            'targets': TARGETS,
            'sections': {},
            'errors': {},
        }

    @contextmanager
    def section(self, name: str) -> Iterator[dict[str, Any]]:
        """Run one section; record its figures, or its error, and save."""
        print(f'\n=== {name}', flush=True)
        figures: dict[str, Any] = _LiveFigures(self.save)
        self.results['sections'][name] = figures
        self.results['running'] = name
        self.save()  # a process that dies in the section leaves its name
        start = time.perf_counter()
        broken = False
        watchdog = self._watchdog(name, figures, start)
        try:
            yield figures
        except Exception as error:  # a failing section must not stop the others
            traceback.print_exc()
            self.results['errors'][name] = f'{type(error).__name__}: {error}'
            if cuda_broken():
                self.results['errors'][name] += (
                    ' (it left the GPU broken: the sections left run in a new process)'
                )
                self.results['broke_gpu'] = name
                broken = True
        finally:
            if watchdog is not None:
                watchdog.cancel()
            figures['seconds'] = round(time.perf_counter() - start, 1)
            if torch.cuda.is_available():
                try:
                    peak = torch.cuda.max_memory_allocated() / 2**30
                    torch.cuda.reset_peak_memory_stats()
                except Exception as error:
                    # A broken GPU may fail even this (CUDA can answer any
                    # call with the sticky error): the restart must go on.
                    figures['peak_gpu_memory_gib'] = f'unknown ({type(error).__name__})'
                else:
                    figures['peak_gpu_memory_gib'] = round(peak, 2)
            self.results['sections'][name] = figures
            self.results.pop('running', None)
            self.save()
        if broken:
            raise SystemExit(RESTART)

    def _watchdog(
        self, name: str, figures: dict[str, Any], start: float
    ) -> threading.Timer | None:
        """Start the timer that ends a section running past its time.

        The tests section has its own limit (``--tests-timeout``, which
        stops pytest and reports the test that hung); its watchdog allows a
        minute more. ``--section-timeout 0`` starts none.
        """
        limit = self.section_timeout
        if limit <= 0:
            return None
        if name == 'tests':
            limit = max(limit, self.tests_timeout + 60.0)
        timer = threading.Timer(limit, self._time_out, (name, figures, start, limit))
        timer.daemon = True
        timer.start()
        return timer

    def _time_out(
        self, name: str, figures: dict[str, Any], start: float, limit: float
    ) -> None:
        """Record section *name* as timed out and end the process.

        Runs in the watchdog's thread while the section is stuck in the main
        thread: it prints every thread's stack (where it hung), saves the
        figures measured so far with the error, stops the child processes
        (DataLoader workers) and exits with :data:`TIMED_OUT`, so that
        ``gpu_suite.sh`` runs the sections left in a new process.
        """
        print(
            f'\nsection {name} ran past --section-timeout {limit:g} s; '
            'where each thread was:',
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        with self._saving:
            self.results['errors'][name] = (
                f'ran past --section-timeout {limit:g} s and was stopped '
                '(the stacks are in the log; the sections left ran in a new '
                'process)'
            )
            self.results['timed_out'] = name
            self.results.pop('running', None)
            dict.__setitem__(figures, 'seconds', round(time.perf_counter() - start, 1))
            self._write()
            for child in multiprocessing.active_children():
                child.kill()
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(TIMED_OUT)

    def resume(self, status: int) -> None:
        """Take up the results of an earlier process of this run.

        That process ended with exit status *status* (:data:`RESTART`,
        :data:`TIMED_OUT`, or killed by a signal) and the results it saved
        are kept; the section
        it was in when it died is recorded as failed, and the temporary
        data it left is removed.
        """
        path = self.out / 'gpu_results.json'
        if not path.exists():
            return
        earlier: dict[str, Any] = json.loads(path.read_text(encoding='utf-8'))
        died_in = earlier.pop('running', None)
        if died_in is not None:
            earlier['errors'][died_in] = (
                f'the process died in this section (exit status {status}); '
                'the sections left ran in a new process'
            )
        earlier['meta'].setdefault('resumed_after_exit_status', []).append(status)
        broke_gpu = earlier.pop('broke_gpu', None)
        timed_out = earlier.pop('timed_out', None)
        culprit = died_in or broke_gpu or timed_out
        if culprit in KERNEL_SECTIONS:
            earlier['meta']['sh_kernel_off_after'] = culprit
        if 'sh_kernel_off_after' in earlier['meta']:
            # in every later process of the run, too
            os.environ[SH_MODULE.KERNEL_SWITCH] = '0'
        stale = earlier.pop('tmp', None)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
        self.results = earlier
        self.save()

    def pending(self, name: str) -> bool:
        """Whether section *name* is still to run (not run by an earlier process)."""
        return name not in self.results['sections']

    def save(self) -> None:
        """Write the JSON and the Markdown table (temporary name, then rename)."""
        with self._saving:
            self._write()

    def _write(self) -> None:
        """:meth:`save` without the lock (its caller holds it)."""
        for name, text in (
            ('gpu_results.json', json.dumps(self.results, indent=2)),
            ('gpu_results.md', markdown(self.results)),
        ):
            tmp = self.out / f'.{name}.{os.getpid()}.tmp'
            tmp.write_text(text + '\n', encoding='utf-8')
            os.replace(tmp, self.out / name)


def meta(args: argparse.Namespace) -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        'command': ' '.join(['benchmarks/gpu_suite.sh', *sys.argv[1:]]),
        'quick': args.quick,
        'python': platform.python_version(),
        'torch': torch.__version__,
        'cpu_count': os.cpu_count(),
        'date': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info['gpu'] = props.name
        info['gpu_memory_gib'] = round(props.total_memory / 2**30, 1)
        info['cuda'] = torch.version.cuda
    else:
        info['gpu'] = None
    return info


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    m = results['meta']
    lines = [
        '# GPU suite results',
        '',
        f'`{m["command"]}` on {m["gpu"] or "the CPU (no GPU)"}, '
        f'{m["cpu_count"]} CPU cores, torch {m["torch"]}, Python {m["python"]}, '
        f'{m["date"]}'
        + (' (**--quick**: tiny sizes, not figures)' if m['quick'] else ''),
        '',
    ]
    if m.get('resumed_after_exit_status'):
        statuses = ', '.join(map(str, m['resumed_after_exit_status']))
        lines += [f'Went on in a new process after exit status {statuses}.', '']
    if m.get('sh_kernel_off_after'):
        lines += [
            f'The fused harmonics kernel was switched off after the section '
            f'{m["sh_kernel_off_after"]} (the later sections ran the recurrence).',
            '',
        ]
    for name, figures in results['sections'].items():
        stopped = ' (stopped before its end)' if results.get('running') == name else ''
        lines += [f'## {name}{stopped}', '', '| figure | value |', '|---|---|']
        for key, value in figures.items():
            shown = f'{value:,.3g}' if isinstance(value, float) else one_line(value)
            if isinstance(value, float) and abs(value) >= 1000:
                shown = f'{value:,.0f}'
            shown = shown.replace('|', r'\|')  # a bar in a value is no column
            lines.append(f'| {key} | {shown} |')
        lines.append('')
    if results['errors']:
        lines += ['## errors', '']
        lines += [
            f'- {name}: {one_line(error)}' for name, error in results['errors'].items()
        ]
        lines.append('')
    lines += ['## targets (issue 11, one H100/H200)', '']
    lines += [f'- {key}: {value:,.0f}' for key, value in results['targets'].items()]
    return '\n'.join(lines)


def one_line(value: object) -> str:
    """*value* as text on one line, for a table cell or a list item.

    A CUDA error's message spans lines (PyTorch adds ``Search for
    `cudaError...```, and more, on lines of their own): left as it is, it
    would end its table row half-way.
    """
    return ' '.join(str(value).split())


def cuda_broken() -> bool:
    """Whether the GPU is in an error state this process cannot leave.

    After an illegal memory access or a failed launch, every later CUDA call
    of the process fails, and so would every later section.
    """
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return False
    try:
        torch.cuda.synchronize()
        torch.ones(1, device='cuda').add_(1).item()
    except Exception:
        return True
    return False


def synchronize() -> None:
    """Wait for the GPU (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rate(
    fn: Callable[[], object], items: int, min_seconds: float, group: int = 10
) -> float:
    """Items per second of *fn* (after two warm-up calls), timed for a while.

    Calls are timed in groups between synchronisations, so that the host's
    time to wait for the device and to launch the next call (tens of
    microseconds) is not counted for every short call: up to *group* calls a
    group, fewer where a group would take over a tenth of *min_seconds* (a
    slow call is timed one at a time, as the overhead is negligible there).
    At least three groups, and *min_seconds* in all.

    Args:
        fn: the call to time.
        items: the items one call processes.
        min_seconds: the least time to time calls for.
        group: the most calls between two synchronisations.

    Returns:
        Items per second, per call.
    """
    fn()
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    once = time.perf_counter() - start
    size = max(1, min(group, int(min_seconds / 10 / max(once, 1e-9))))
    calls = groups = 0
    start = time.perf_counter()
    while True:
        for _ in range(size):
            fn()
        calls += size
        groups += 1
        synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and groups >= 3:
            return items * calls / elapsed


@contextmanager
def measurement(
    figures: dict[str, Any], name: str, failed: list[str]
) -> Iterator[None]:
    """One measurement of a section, which a failure must not end.

    The error is printed, recorded as the figure ``{name}_error`` and *name*
    appended to *failed*; the section goes on with its next measurement (and
    raises at its end, see :func:`raise_failed`), so that one loader that
    fails (``ThreadedBatchLoader`` has never run on a GPU) leaves the
    baselines measured after it.
    """
    try:
        yield
    except Exception as error:
        traceback.print_exc()
        figures[f'{name}_error'] = f'{type(error).__name__}: {error}'
        failed.append(name)


def raise_failed(failed: list[str]) -> None:
    """Fail the section when any of its measurements failed."""
    if failed:
        raise RuntimeError(
            f'failed: {", ".join(failed)} (see their *_error figures); '
            'the other figures were measured'
        )


# ------------------------------------------------------------------ encoder
def encoder_section(figures: dict[str, Any], args: argparse.Namespace) -> None:
    """Spherical harmonics and the full encoder, float32 / TF32 / bf16.

    Each figure is measured with the default backend (``auto``: the fused
    Triton kernel on CUDA) and with the tensor recurrence (``_torch`` keys),
    in the same run. In bf16 mode the harmonics are asked for in bf16, as the
    encoder asks for them under autocast.
    """
    lonlat = encoder_points(args)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        for degrees in (10, 40):
            encoder_degrees(figures, args, lonlat, degrees)
            encoder_accuracy(figures, lonlat[: 1 << 16], degrees)
    finally:
        # Restored even when a mode failed: the later sections must not run
        # in TF32 because this one stopped half-way.
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    labels = [
        value for key, value in figures.items() if key.startswith('sh_auto_backend_')
    ]
    fused = all(label == 'triton' for label in labels)
    figures['sh_auto_backend'] = (
        labels[0] if len(set(labels)) == 1 else 'mixed (see sh_auto_backend_*)'
    )
    if fused:
        sweep_blocks(figures, args, lonlat)
    failed = sorted({label for label in labels if 'kernel failed' in label})
    if failed:
        # The figures stay (measured, and labelled with what ran), but the
        # run must show that the kernel's figures are the recurrence's.
        raise RuntimeError(
            f'the fused kernel fell back to the tensor recurrence: {"; ".join(failed)}'
        )


def encoder_degrees(
    figures: dict[str, Any], args: argparse.Namespace, lonlat: Tensor, degrees: int
) -> None:
    """The encoder section's figures at L = *degrees*, in each mode.

    Sets the TF32 flags of each mode and leaves them set (the caller
    restores them). After each mode, ``sh_auto_backend_l{L}_{mode}`` records
    the backend ``'auto'`` really ran (see :func:`auto_backend`).
    """
    device = args.device
    n = args.encoder_points
    encoder = build_location_encoder(
        legendre_polys=degrees, dtype=torch.float32, dropout=0.0
    ).to(device)
    encoder.eval()
    posenc = encoder.posenc
    assert isinstance(posenc, SphericalHarmonics)
    for mode in ('float32', 'tf32', 'bf16'):
        torch.backends.cuda.matmul.allow_tf32 = mode == 'tf32'
        torch.backends.cudnn.allow_tf32 = mode == 'tf32'
        autocast = torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=mode == 'bf16'
        )
        sh_dtype = torch.bfloat16 if mode == 'bf16' else None
        for backend in ('auto', 'torch'):
            suffix = '' if backend == 'auto' else '_torch'
            posenc.backend = backend

            def sh() -> Tensor:
                with torch.no_grad():
                    return spherical_harmonics(
                        lonlat, degrees, dtype=sh_dtype, backend=backend
                    )

            def full() -> Tensor:
                with torch.no_grad(), autocast:
                    return cast(Tensor, encoder(lonlat))

            for part, fn in (('sh', sh), ('encoder', full)):
                value = rate(fn, n, args.min_seconds)
                key = f'{part}{suffix}_l{degrees}_{mode}_points_per_s'
                figures[key] = value
                print(f'{key:<46} {value:>16,.0f}', flush=True)
        posenc.backend = 'auto'
        # The network alone, on the harmonics the encoder would hand it:
        # with the two figures above, where the encoder's time goes.
        with torch.no_grad():
            features = spherical_harmonics(lonlat, degrees, dtype=sh_dtype)

        def net(features: Tensor = features) -> Tensor:
            with torch.no_grad(), autocast:
                return cast(Tensor, encoder.nnet(features))

        key = f'net_l{degrees}_{mode}_points_per_s'
        figures[key] = rate(net, n, args.min_seconds)
        print(f'{key:<46} {figures[key]:>16,.0f}', flush=True)
        # 13.4 GB in float32 at L = 40: not kept into the next mode.
        del features, net
        for part in ('sh', 'encoder'):
            figures[f'{part}_l{degrees}_{mode}_auto_vs_torch'] = (
                figures[f'{part}_l{degrees}_{mode}_points_per_s']
                / figures[f'{part}_torch_l{degrees}_{mode}_points_per_s']
            )
        stored = torch.bfloat16 if mode == 'bf16' else torch.float32
        label = auto_backend(lonlat, degrees, stored)
        figures[f'sh_auto_backend_l{degrees}_{mode}'] = label
        print(f'backend auto, L = {degrees}, {mode}: {label}', flush=True)
    for mode in ('tf32', 'bf16'):
        ratio = (
            figures[f'encoder_l{degrees}_{mode}_points_per_s']
            / figures[f'encoder_l{degrees}_float32_points_per_s']
        )
        figures[f'encoder_l{degrees}_{mode}_vs_float32'] = ratio


def auto_backend(lonlat: Tensor, degrees: int, stored: torch.dtype) -> str:
    """The backend ``spherical_harmonics(backend='auto')`` runs for these points.

    ``'triton'`` when it runs the fused kernel; else ``'torch'``, with why
    when it is not simply a device without the kernel: the kernel failed to
    compile or launch for this variant earlier in the run (``'auto'`` then
    warns once and runs the recurrence from then on) or the environment
    switch turned it off.

    Args:
        lonlat: the points measured (their device and dtype).
        degrees: ``L``.
        stored: the dtype the kernel would store the harmonics in (bfloat16
            when they are asked for in bf16, else the points' float dtype).

    Returns:
        The label, e.g. ``'torch (kernel failed: RuntimeError: ...)'``.
    """
    variant = (str(lonlat.device), degrees, lonlat.dtype, stored)
    failures: dict[tuple[str, int, torch.dtype, torch.dtype], str] = (
        SH_MODULE._KERNEL_FAILED
    )
    if variant in failures:
        return f'torch (kernel failed: {failures[variant]})'
    if SH_MODULE._auto_kernel(lonlat):
        return 'triton'
    switch: str = SH_MODULE.KERNEL_SWITCH
    if os.environ.get(switch) == '0':
        return f'torch ({switch}=0)'
    return 'torch'


def encoder_points(args: argparse.Namespace) -> Tensor:
    """The encoder sections' random (lon, lat) points, on the device."""
    n = args.encoder_points
    g = torch.Generator(device='cpu').manual_seed(0)
    return torch.stack(
        [torch.rand(n, generator=g) * 360 - 180, torch.rand(n, generator=g) * 180 - 90],
        1,
    ).to(args.device)


def compiled_encoder_section(figures: dict[str, Any], args: argparse.Namespace) -> None:
    """The L = 40 bf16 encoder with its network compiled (``torch.compile``).

    The same encoder timed eager, then with its SIREN compiled in place
    (``nn.Module.compile``: the encoder's own forward, range check and bf16
    harmonics from the default backend included), which fuses each layer's
    scaling and sine into one pass over its output: how much of the bf16
    encoder's time the network's element-wise passes take. Its own section,
    so that a compiler failure leaves the encoder section whole.
    """
    lonlat = encoder_points(args)
    encoder = build_location_encoder(
        legendre_polys=40, dtype=torch.float32, dropout=0.0
    ).to(args.device)
    encoder.eval()
    autocast = torch.autocast(args.device.type, dtype=torch.bfloat16)

    def encode() -> Tensor:
        with torch.no_grad(), autocast:
            out: Tensor = encoder(lonlat)
            return out

    eager = 'encoder_eager_l40_bf16_points_per_s'
    figures[eager] = rate(encode, lonlat.shape[0], args.min_seconds)
    figures['sh_auto_backend_eager'] = auto_backend(lonlat, 40, torch.bfloat16)
    encoder.nnet.compile()
    start = time.perf_counter()
    encode()
    synchronize()
    figures['compile_seconds'] = time.perf_counter() - start
    compiled = 'encoder_compiled_net_l40_bf16_points_per_s'
    figures[compiled] = rate(encode, lonlat.shape[0], args.min_seconds)
    for key in (eager, compiled):
        print(f'{key:<46} {figures[key]:>16,.0f}', flush=True)
    figures['compiled_net_vs_eager'] = figures[compiled] / figures[eager]


def encoder_accuracy(figures: dict[str, Any], lonlat: Tensor, degrees: int) -> None:
    """Largest float32 error of each backend against float64, and between them."""
    with torch.no_grad():
        exact = spherical_harmonics(lonlat.double(), degrees, backend='torch')
        auto = spherical_harmonics(lonlat, degrees)
        recurrence = spherical_harmonics(lonlat, degrees, backend='torch')
    figures[f'sh_l{degrees}_float32_max_error'] = float(
        (auto.double() - exact).abs().max()
    )
    figures[f'sh_torch_l{degrees}_float32_max_error'] = float(
        (recurrence.double() - exact).abs().max()
    )
    figures[f'sh_l{degrees}_float32_auto_vs_torch_max_diff'] = float(
        (auto - recurrence).abs().max()
    )


def sweep_blocks(
    figures: dict[str, Any], args: argparse.Namespace, lonlat: Tensor
) -> None:
    """Points/s of the fused kernel at L = 40 (bf16 out) for a few block sizes."""
    for block in (128, 256, 512, 1024):

        def fused() -> Tensor:
            return cast(
                Tensor,
                _sh_triton.fused_spherical_harmonics(
                    lonlat, 40, 'satclip', torch.float32, torch.bfloat16, block=block
                ),
            )

        key = f'sh_l40_bf16_block{block}_points_per_s'
        figures[key] = rate(fused, lonlat.shape[0], args.min_seconds)
        print(f'{key:<46} {figures[key]:>16,.0f}', flush=True)


# --------------------------------------------------------------------- data
def _make_part(job: tuple[Path, int, int]) -> None:
    """Worker of :func:`make_packed_root`: patches [start, start + count)."""
    root, start, count = job
    make_root(root, count, seed=start)


def make_packed_root(parent: Path, num_patches: int, processes: int) -> Path:
    """A packed S2-100K root of real-shaped patches, written in parallel."""
    root = parent / 's2_100k'
    processes = max(1, min(processes, num_patches // 8 or 1))
    per = math.ceil(num_patches / processes)
    jobs = [
        (parent / f'part_{k}', k * per, min(per, num_patches - k * per))
        for k in range(processes)
        if num_patches - k * per > 0
    ]
    if len(jobs) == 1:
        _make_part(jobs[0])
    else:
        with multiprocessing.get_context('spawn').Pool(len(jobs)) as pool:
            pool.map(_make_part, jobs)
    (root / 'images').mkdir(parents=True)
    lines = ['fn,lon,lat']
    for part, start, _ in jobs:
        rows = (part / 'index.csv').read_text(encoding='utf-8').splitlines()[1:]
        for row in rows:
            fn, lon, lat = row.split(',')
            new = f'p{start}_{fn}'
            os.replace(part / 'images' / fn, root / 'images' / new)
            lines.append(f'{new},{lon},{lat}')
        shutil.rmtree(part)
    (root / 'index.csv').write_text('\n'.join(lines) + '\n', encoding='utf-8')
    workers = processes if processes > 1 else 0
    pack_s2_100k(root, shard_size=512, num_workers=workers, progress=False)
    return root


def drain_rate(loader: Any, batch_size: int, batches: int) -> float:
    """Images per second over *batches* batches of *loader*, epochs chained.

    The first batch (worker or thread start-up) is not timed.
    """
    seen = 0
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    while seen < batches * batch_size:
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        seen += len(batch['image'])
    return seen / (time.perf_counter() - start)


def long_epochs(dataset: Any, batch_size: int, batches: int) -> Any:
    """*dataset*, with its indices repeated so that an epoch has *batches* batches.

    A :class:`~torch.utils.data.Subset` of the whole dataset, as many times
    over as needed for at least *batches* full batches of *batch_size* (the
    dataset itself when it holds them already): no more data on disk, and
    an epoch long enough that every worker gets work and no epoch restarts
    inside a timed window.

    Args:
        dataset: the dataset (an S2100K, which the threaded loader still
            recognises under the Subset).
        batch_size: samples a batch.
        batches: the least number of full batches an epoch must hold.

    Returns:
        The dataset or the Subset.
    """
    size = len(dataset)
    times = math.ceil(batches * batch_size / size)
    if times <= 1:
        return dataset
    return Subset(dataset, list(range(size)) * times)


def data_epoch_batches(args: argparse.Namespace) -> int:
    """Batches an epoch of the data section's loaders holds at least.

    Four a worker of the most workers tried, and every batch a rate times
    (plus the first, not timed).
    """
    most: int = max(args.workers)
    return cast(int, max(4 * most, args.data_batches * most + 1))


def train_workers() -> int:
    """The most workers or threads the train section feeds the recipe with."""
    return max(1, (os.cpu_count() or 1) - 2)


def train_epoch_batches(args: argparse.Namespace) -> int:
    """Batches an epoch of the train section's loaders holds at least.

    Four a worker of the most workers used, and every step of a fit (plus
    one).
    """
    return cast(int, max(4 * train_workers(), args.train_steps + 1))


def data_loaders(
    args: argparse.Namespace, packed: S2100K, geotiff: S2100K
) -> Iterator[tuple[str, int, int, Any]]:
    """The data section's loaders, one at a time, with what each is timed for.

    Yields:
        ``(kind, workers, batches, loader)``: kind ``'geotiff'`` (a
        DataLoader over the GeoTIFF layout), ``'packed'`` (a DataLoader over
        the packed layout) or ``'threads'`` (a ThreadedBatchLoader), its
        worker or thread count and the batches to time.
    """
    batch = args.data_batch_size
    epoch = data_epoch_batches(args)
    small = min(batch, 16)  # decoding GeoTIFFs: slow
    yield 'geotiff', 1, 8, dataloader(long_epochs(geotiff, small, epoch), 1, small)
    for workers in args.workers:
        loader = dataloader(long_epochs(packed, batch, epoch), workers, batch)
        yield 'packed', workers, args.data_batches * workers, loader
    for threads in args.workers:
        threaded = ThreadedBatchLoader(
            long_epochs(packed, batch, epoch),
            batch,
            shuffle=True,
            drop_last=True,
            num_threads=threads,
            pin_memory=torch.cuda.is_available(),
        )
        yield 'threads', threads, args.data_batches * threads, threaded


def dataloader(dataset: Any, workers: int, batch_size: int) -> DataLoader[Any]:
    """A shuffling DataLoader of full batches over *dataset*, as the datamodule's."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=True,
        collate_fn=collate_sample_batch,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(0),
    )


def data_section(figures: dict[str, Any], args: argparse.Namespace, root: Path) -> None:
    """Per-worker images/s of the packed uint16 path; GeoTIFF as baseline."""
    packed = S2100K(root, layout='packed', image_dtype='uint16')
    geotiff = S2100K(root, layout='geotiff', image_dtype='uint16')
    tif = float('nan')
    failed: list[str] = []
    for kind, count, batches, loader in data_loaders(args, packed, geotiff):
        value = float('nan')
        with measurement(figures, f'{kind}_{count}', failed):
            value = drain_rate(loader, loader.batch_size, batches)
        del loader  # its workers stop before the next loader's start
        if math.isnan(value):
            continue
        if kind == 'geotiff':
            tif = value
            figures['geotiff_1_worker_images_per_s'] = tif
            print(f'GeoTIFF, 1 worker: {tif:,.0f} images/s', flush=True)
            continue
        name, unit = ('packed', 'worker') if kind == 'packed' else ('threads', 'thread')
        counted = f'{name}_{count}_workers' if kind == 'packed' else f'{name}_{count}'
        figures[f'{counted}_images_per_s'] = value
        figures[f'{counted}_per_{unit}'] = value / count
        print(
            f'{name}, {count:>2} {unit}s: {value:>8,.0f} images/s, '
            f'{value / count:>7,.0f} per {unit}, '
            f'{value / count / tif:.1f}x GeoTIFF per worker',
            flush=True,
        )
    figures['packed_1_worker_vs_geotiff'] = (
        figures.get('packed_1_workers_images_per_s', float('nan')) / tif
    )
    figures['threads_1_vs_geotiff'] = (
        figures.get('threads_1_images_per_s', float('nan')) / tif
    )
    raise_failed(failed)


# -------------------------------------------------------------------- train
class StepTimer(Callback):
    """Wall time of the training steps after the first few."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.times: list[float] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        synchronize()
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        times = self.times[self.skip :]
        if len(times) < 2:
            raise RuntimeError(f'too few steps timed ({len(self.times)})')
        return (times[-1] - times[0]) / (len(times) - 1)


def recipe_task(args: argparse.Namespace, compile: bool = False) -> SatCLIPTask:
    """The ResNet18-L10 recipe's task (random frozen backbone)."""
    with warnings.catch_warnings():  # random weights time as trained ones
        warnings.filterwarnings('ignore', message='.*backbone is random')
        return SatCLIPTask(
            compile_image_encoder=compile,
            model='resnet18',
            weights=None,
            in_channels=13,
            freeze_backbone=True,
            embed_dim=256,
            legendre_polys=10,
            capacity=512,
            num_hidden_layers=2,
            location_dropout=0.5,
            location_dtype='float64',
            channels_last=True,
        )


def trainer_for(args: argparse.Namespace, steps: int, **kwargs: Any) -> Trainer:
    """A quiet Trainer for *steps* optimiser steps."""
    options: dict[str, Any] = {
        'accelerator': 'gpu' if torch.cuda.is_available() else 'cpu',
        'devices': 1,
        'max_steps': steps,
        'precision': args.precision,
        'limit_val_batches': 0,
        'num_sanity_val_steps': 0,
        'logger': False,
        'enable_checkpointing': False,
        'enable_progress_bar': False,
        'enable_model_summary': False,
        'benchmark': torch.cuda.is_available(),  # cudnn autotuning, fixed sizes
    }
    options.update(kwargs)
    return Trainer(**options)


class OneBatch(S2100KDataModule):
    """The datamodule, but every training batch is the same one (no loading)."""

    def train_dataloader(self) -> Any:
        loader = super().train_dataloader()
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        batch = {key: value.to(device) for key, value in next(iter(loader)).items()}
        return Repeat(batch, len(loader) * 1000)


class LongEpochs(S2100KDataModule):
    """The datamodule, its training split repeated (see :func:`long_epochs`)."""

    def __init__(self, epoch_batches: int, **kwargs: Any) -> None:
        """Make epochs of at least *epoch_batches* batches; *kwargs*: the datamodule's."""
        super().__init__(**kwargs)
        self.epoch_batches = epoch_batches

    def setup(self, stage: str) -> None:
        """Set up as the datamodule does, then repeat the training split."""
        super().setup(stage)
        if stage == 'fit' and self.train_dataset is not None:
            self.train_dataset = long_epochs(
                self.train_dataset, self.batch_size, self.epoch_batches
            )


class Repeat:
    """An iterable of the same batch, *times* times (a DataLoader stand-in)."""

    def __init__(self, batch: dict[str, Tensor], times: int) -> None:
        self.batch = batch
        self.times = times

    def __len__(self) -> int:
        return self.times

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for _ in range(self.times):
            yield self.batch


def recipe_data(args: argparse.Namespace, root: Path, **extra: Any) -> dict[str, Any]:
    """Datamodule arguments of the recipe's batches (no validation split)."""
    return {
        'root': root,
        'batch_size': args.train_batch_size,
        'val_split_pct': 0.0,
        'crop_size': args.crop_size,
        **extra,
    }


def train_section(
    figures: dict[str, Any], args: argparse.Namespace, root: Path
) -> None:
    """Compute-only and end-to-end images/s of the ResNet18-L10 recipe."""
    common = recipe_data(args, root)
    steps = args.train_steps
    skip = 3
    # 1. compute alone: one batch, reused, no DataLoader workers at all
    timer = StepTimer(skip)
    dm: S2100KDataModule = OneBatch(num_workers=0, **common)
    trainer_for(args, steps, callbacks=[timer]).fit(recipe_task(args), dm)
    compute = args.train_batch_size / timer.seconds_per_step()
    figures['compute_only_images_per_s'] = compute
    print(f'compute only: {compute:,.0f} images/s', flush=True)
    per_worker = figures.get('per_worker_images_per_s') or args.per_worker_guess
    needed = max(1, math.ceil(compute / per_worker))
    figures['workers_needed_estimate'] = needed
    most = train_workers()
    # the datamodule's default for the packed layout (threads), with the
    # estimate and with most cores; worker processes as the baseline
    runs = [('threads', n) for n in sorted({min(needed, most), most})]
    runs.append(('processes', most))
    failed: list[str] = []
    for loader, workers in runs:
        name = f'end_to_end_{loader}_{workers}'
        timer = StepTimer(skip)
        with measurement(figures, name, failed):
            dm = LongEpochs(
                train_epoch_batches(args), num_workers=workers, loader=loader, **common
            )
            trainer_for(args, steps, callbacks=[timer]).fit(recipe_task(args), dm)
            value = args.train_batch_size / timer.seconds_per_step()
        if name in failed:
            continue
        figures[f'{name}_images_per_s'] = value
        figures[f'{name}_vs_compute'] = value / compute
        print(
            f'end to end, {loader}, {workers}: {value:,.0f} images/s '
            f'({value / compute:.0%} of compute alone)',
            flush=True,
        )
    raise_failed(failed)


def compile_section(
    figures: dict[str, Any], args: argparse.Namespace, root: Path
) -> None:
    """Compute-only images/s with ``compile_image_encoder``, vs eager."""
    common = recipe_data(args, root, num_workers=0)
    for compile in (False, True):
        timer = StepTimer(skip=5)
        start = time.perf_counter()
        trainer = trainer_for(args, args.train_steps + 5, callbacks=[timer])
        trainer.fit(recipe_task(args, compile=compile), OneBatch(**common))
        name = 'compiled' if compile else 'eager'
        figures[f'{name}_fit_seconds'] = time.perf_counter() - start
        value = args.train_batch_size / timer.seconds_per_step()
        figures[f'{name}_compute_only_images_per_s'] = value
        print(f'{name}: {value:,.0f} images/s', flush=True)
    figures['compiled_vs_eager'] = (
        figures['compiled_compute_only_images_per_s']
        / figures['eager_compute_only_images_per_s']
    )


# ------------------------------------------------------------------- cached
def cached_section(
    figures: dict[str, Any], args: argparse.Namespace, root: Path, cache: Path
) -> None:
    """Cached-feature epochs/s and 500 epochs of 100k, projected."""
    task = recipe_task(args)
    dm = CachedFeatureDataModule(
        root=root,
        batch_size=args.train_batch_size,
        val_split_pct=0.0,
        crop_size=args.crop_size,
        cache_dir=str(cache),
        num_workers=min(8, os.cpu_count() or 1),
    )
    # the task hands its frozen backbone to the datamodule at setup, and the
    # cache is built on the trainer's device before the first step
    timer = StepTimer(skip=2)
    epochs = args.cached_epochs
    start = time.perf_counter()
    trainer_for(args, -1, max_epochs=epochs, callbacks=[timer]).fit(task, dm)
    figures['build_cache_and_first_step_seconds'] = timer.times[0] - start
    step = timer.seconds_per_step()
    samples = len(dm.train_dataset)  # type: ignore[arg-type]
    steps_per_epoch = samples // args.train_batch_size
    figures['cached_samples'] = samples
    figures['cached_steps_per_s'] = 1 / step
    figures['cached_images_per_s'] = args.train_batch_size / step
    per_100k = (100_000 // args.train_batch_size) * step
    figures['cached_epochs_of_100k_per_s'] = 1 / per_100k
    figures['cached_500_epochs_minutes'] = 500 * per_100k / 60
    print(
        f'cached: {args.train_batch_size / step:,.0f} images/s '
        f'({steps_per_epoch} steps per epoch here); 500 epochs of 100k: '
        f'{500 * per_100k / 60:.1f} min',
        flush=True,
    )


# ---------------------------------------------------------------------- ddp
def ddp_section(figures: dict[str, Any], args: argparse.Namespace, root: Path) -> None:
    """Start-up and a few steps under ``ddp`` on one device, vs the default."""
    common = recipe_data(args, root, num_workers=0)
    for strategy in ('auto', 'ddp'):
        start = time.perf_counter()
        dm = OneBatch(**common)
        trainer = trainer_for(args, 3, strategy=strategy)
        trainer.fit(recipe_task(args), dm)
        seconds = time.perf_counter() - start
        figures[f'{strategy}_3_steps_seconds'] = seconds
        print(f'{strategy}: fit of 3 steps in {seconds:.1f} s', flush=True)
    figures['ddp_start_overhead_seconds'] = (
        figures['ddp_3_steps_seconds'] - figures['auto_3_steps_seconds']
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        figures['ddp_backend'] = torch.distributed.get_backend()
        torch.distributed.destroy_process_group()


# -------------------------------------------------------------------- tests
#: The CUDA tests the suite runs (``--sections tests``): every test that is
#: skipped without CUDA, which runs nowhere else (``tests/test_benchmarks.py``
#: checks that none is missing).
CUDA_TESTS = (
    'tests/test_cuda.py',
    'tests/models/test_positional.py::test_cuda_matches_cpu',
    'tests/evaluation/test_image_probe.py::test_image_features_on_cuda_match_the_cpu',
    'tests/evaluation/test_image_probe.py::'
    'test_image_features_give_the_backbone_back_on_its_device',
    'tests/test_embed.py::test_embed_file_puts_the_encoder_back_on_its_device',
)


def tests_section(figures: dict[str, Any], args: argparse.Namespace) -> None:
    """Run the CUDA tests with pytest; raise if any failed.

    pytest writes straight into ``cuda_tests.log``, unbuffered and verbose
    (each test's name as it starts), so a run killed from the outside, by
    ``timeout`` or the device's time limit, leaves the log up to the test
    that was running.
    """
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, '-m', 'pytest', '-v', '-p', 'no:cacheprovider']
    command += ['-rfE', '--durations=5', *CUDA_TESTS]
    log = args.out / 'cuda_tests.log'
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    start = time.perf_counter()
    with log.open('w', encoding='utf-8') as stream:
        try:
            run = subprocess.run(
                command,
                cwd=root,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=args.tests_timeout,
            )
        except subprocess.TimeoutExpired:
            # A hung test must not eat the time the other sections need.
            timed_out = True
        else:
            timed_out = False
    figures['pytest_seconds'] = time.perf_counter() - start
    output = log.read_text(encoding='utf-8', errors='replace')
    print(output[-4000:], flush=True)
    if timed_out:
        running = [
            line.split(' ')[0]
            for line in output.splitlines()
            if '::' in line and not line.startswith(('FAILED ', 'ERROR '))
        ]
        where = f', last started: {running[-1]}' if running else ''
        raise RuntimeError(
            f'the CUDA tests ran past --tests-timeout {args.tests_timeout:g} s'
            f'{where} (their output so far: {log})'
        )
    # pytest's summary line: the last line of its output that counts
    # outcomes (library messages may follow it).
    counted = [
        line
        for line in output.splitlines()
        if re.search(r'\d+ (passed|failed|skipped|error)', line)
    ]
    summary = counted[-1] if counted else ''
    for outcome in ('passed', 'failed', 'skipped', 'error'):
        found = re.search(rf'(\d+) {outcome}', summary)
        figures[f'tests_{outcome}'] = int(found.group(1)) if found else 0
    failures = [
        line.split(' ', 1)[1].split(' - ')[0]
        for line in output.splitlines()
        if line.startswith(('FAILED ', 'ERROR '))
    ]
    figures['tests_failures'] = ', '.join(failures) or 'none'
    if run.returncode not in (0, 5):  # 5: nothing collected
        raise RuntimeError(f'CUDA tests failed: {figures["tests_failures"]}')


# --------------------------------------------------------------------- main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; --quick shrinks every size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('.'))
    parser.add_argument('--quick', action='store_true', help='tiny sizes on the CPU')
    parser.add_argument(
        '--sections',
        nargs='+',
        default=['encoder', 'data', 'train', 'cached', 'ddp'],
        choices=['tests', 'encoder', 'data', 'train', 'cached', 'ddp', 'compile'],
        help='sections to run (not run by default: tests, the CUDA tests; '
        'compile, compile_image_encoder timed against eager)',
    )
    parser.add_argument('--tmp', default=None, help='parent of the temporary data')
    parser.add_argument(
        '--tests-timeout',
        type=float,
        default=240.0,
        help='seconds the CUDA tests may take (section tests; default 240)',
    )
    parser.add_argument(
        '--section-timeout',
        type=float,
        default=300.0,
        help='seconds one section may take before it is stopped and the '
        'sections left run in a new process (0: no limit; default 300)',
    )
    parser.add_argument(
        '--patches', type=int, default=None, help='patches to make (default 4096)'
    )
    parser.add_argument(
        '--workers', type=int, nargs='+', default=None, help='worker counts to try'
    )
    parser.add_argument(
        '--resume',
        type=int,
        default=None,
        metavar='STATUS',
        help='go on with the sections an earlier process of this run (which '
        'ended with exit status STATUS) left, keeping its results in --out '
        '(gpu_suite.sh passes it)',
    )
    args = parser.parse_args(argv)
    patches, workers = args.patches, args.workers
    cuda = torch.cuda.is_available() and not args.quick
    args.device = torch.device('cuda' if cuda else 'cpu')
    cores = os.cpu_count() or 1
    if args.quick:
        # 64: every encoder figure is 5 calls or more at L = 10 and 40, in
        # three modes, with two backends (2,048 points took minutes on a
        # loaded 2-core CI machine)
        args.encoder_points = 64
        args.min_seconds = 0.05
        args.num_patches = 24
        args.workers = [1, 2]
        args.data_batch_size = 4
        args.data_batches = 2
        args.train_batch_size = 4
        args.crop_size = 32
        args.train_steps = 6
        args.cached_epochs = 2
        args.precision = 'bf16-mixed'
        args.per_worker_guess = 100.0
        args.processes = 1
    else:
        args.encoder_points = 1 << 21
        args.min_seconds = 1.0
        args.num_patches = 4096
        args.workers = sorted({1, 2, 4, 8, max(1, cores - 2)})
        args.data_batch_size = 512
        args.data_batches = 3
        args.train_batch_size = 512
        args.crop_size = 224
        args.train_steps = 25
        args.cached_epochs = 4
        args.precision = 'bf16-mixed' if cuda else '32-true'
        args.per_worker_guess = 1000.0
        args.processes = cores
    if patches is not None:
        args.num_patches = patches
    if workers is not None:
        args.workers = workers
    return args


def best_rate(figures: dict[str, Any]) -> float | None:
    """The best images/s per worker or thread among a data section's figures."""
    rates = [
        v
        for k, v in figures.items()
        if k.endswith(('_per_worker', '_per_thread')) and isinstance(v, int | float)
    ]
    return max(rates, default=None)


def data_sections(
    suite: Suite, args: argparse.Namespace, root: Path, tmp: Path
) -> None:
    """The sections that read the packed dataset at *root*, as asked for."""
    per_worker: float | None = None
    if not suite.pending('data'):  # measured by an earlier process of the run
        # the rates it kept, even if the watchdog stopped it before its
        # finally below could record the best
        per_worker = best_rate(suite.results['sections'].get('data', {}))
    if 'data' in args.sections and suite.pending('data'):
        with suite.section('data') as figures:
            try:
                data_section(figures, args, root)
            finally:
                # the best rate measured, even when another loader failed
                per_worker = best_rate(figures)
                if per_worker is not None:
                    figures['per_worker_best'] = per_worker
    if 'train' in args.sections and suite.pending('train'):
        with suite.section('train') as figures:
            if per_worker is not None:
                figures['per_worker_images_per_s'] = per_worker
            train_section(figures, args, root)
    if 'cached' in args.sections and suite.pending('cached'):
        with suite.section('cached') as figures:
            cached_section(figures, args, root, tmp / 'cache')
    if 'ddp' in args.sections and suite.pending('ddp'):
        with suite.section('ddp') as figures:
            ddp_section(figures, args, root)
    if 'compile' in args.sections and suite.pending('compile'):
        with suite.section('compile') as figures:
            compile_section(figures, args, root)


def main(argv: list[str] | None = None) -> None:
    """Run the sections asked for and write the results."""
    args = parse(argv)
    if args.quick and torch.cuda.is_available():
        # the quick run is the CPU check of the script; hide the GPU
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    torch.set_float32_matmul_precision('highest')
    suite = Suite(args.out, args)
    if args.resume is not None:
        suite.resume(args.resume)
    print(json.dumps(suite.results['meta']), flush=True)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        # removed by a later process if this one dies (see Suite.resume)
        suite.results['tmp'] = tmp
        root: Path | None = None
        needs_data = {
            name
            for name in ('data', 'train', 'cached', 'ddp', 'compile')
            if name in args.sections and suite.pending(name)
        }
        if 'tests' in args.sections and suite.pending('tests'):
            with suite.section('tests') as figures:
                tests_section(figures, args)
        if 'encoder' in args.sections:
            if suite.pending('encoder'):
                with suite.section('encoder') as figures:
                    encoder_section(figures, args)
            if suite.pending('encoder_compiled'):
                with suite.section('encoder_compiled') as figures:
                    compiled_encoder_section(figures, args)
        # an earlier process's dataset went with its temporary folder
        if needs_data and (
            suite.pending('dataset') or 'dataset' not in suite.results['errors']
        ):
            with suite.section('dataset') as figures:
                start = time.perf_counter()
                root = make_packed_root(Path(tmp), args.num_patches, args.processes)
                figures['patches'] = args.num_patches
                figures['make_and_pack_seconds'] = time.perf_counter() - start
        if root is not None:  # None: no data asked for, or making it failed
            data_sections(suite, args, root, Path(tmp))
    suite.results.pop('tmp')
    suite.save()
    print(f'\nwrote {args.out / "gpu_results.md"} and gpu_results.json')
    if suite.results['errors']:
        print('errors:', json.dumps(suite.results['errors'], indent=2))
        raise SystemExit(1)


if __name__ == '__main__':
    main()
