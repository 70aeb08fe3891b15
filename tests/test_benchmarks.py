"""The GPU benchmark suite runs end to end on the CPU (``--quick``), so it never rots."""

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).parents[1]


def gpu_suite_sh(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/gpu_suite.sh --quick ARGS`` with *python*, GPU hidden."""
    env = {**os.environ, 'PYTHON': python, 'CUDA_VISIBLE_DEVICES': ''}
    return subprocess.run(
        ['bash', str(ROOT / 'benchmarks' / 'gpu_suite.sh'), '--quick', *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope='module')
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One ``gpu_suite.sh --quick`` run of the default sections and the CUDA
    tests, shared by the tests that check its parts: one start-up of the
    suite (imports of torch, Lightning and the package) instead of two."""
    out = tmp_path_factory.mktemp('quick')
    sections = ('tests', 'encoder', 'data', 'train', 'cached', 'ddp')
    return out, gpu_suite_sh(sys.executable, '--out', str(out), '--sections', *sections)


def test_gpu_suite_quick(
    quick_run: tuple[Path, subprocess.CompletedProcess[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, result = quick_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / 'gpu_results.json').read_text())
    assert results['errors'] == {}
    sections = results['sections']
    assert set(sections) == {
        'tests',  # asked for: the run is shared with test_gpu_suite_tests_section
        'encoder',
        'encoder_compiled',
        'dataset',
        'data',
        'train',
        'cached',
        'ddp',
    }
    # the run names its sections; these are the default ones
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    assert gpu_suite.parse([]).sections == ['encoder', 'data', 'train', 'cached', 'ddp']
    for degrees in (10, 40):
        for mode in ('float32', 'tf32', 'bf16'):
            for part in ('sh', 'encoder', 'net'):
                assert sections['encoder'][f'{part}_l{degrees}_{mode}_points_per_s'] > 0
    compiled = sections['encoder_compiled']
    assert compiled['encoder_compiled_net_l40_bf16_points_per_s'] > 0
    assert compiled['encoder_eager_l40_bf16_points_per_s'] > 0
    assert sections['data']['packed_1_workers_images_per_s'] > 0
    assert sections['data']['geotiff_1_worker_images_per_s'] > 0
    assert sections['train']['compute_only_images_per_s'] > 0
    assert any(key.startswith('end_to_end_threads_') for key in sections['train'])
    assert any(key.startswith('end_to_end_processes_') for key in sections['train'])
    assert sections['data']['threads_1_images_per_s'] > 0
    assert sections['cached']['cached_500_epochs_minutes'] > 0
    assert sections['ddp']['ddp_backend'] == 'gloo'
    assert results['meta']['quick'] is True
    page = (out / 'gpu_results.md').read_text()
    assert '## train' in page
    assert 'not figures' in page  # a quick run says it is no measurement
    # nothing left behind but the two result files and the CUDA tests' log
    assert sorted(p.name for p in out.iterdir()) == [
        'cuda_tests.log',
        'gpu_results.json',
        'gpu_results.md',
    ]


def test_data_pipeline_runs(tmp_path: Path) -> None:
    """The CPU data benchmark, tiny: every pipeline, the pool ablation too."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / 'benchmarks' / 'data_pipeline.py'),
            '--num-patches',
            '8',
            '--batch-size',
            '4',
            '--workers',
            '1',
            '--passes',
            '1',
            '--tmp',
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    header, row = result.stdout.splitlines()[-2:]
    assert header.split()[:7] == [
        'workers',
        'GeoTIFF',
        'before',
        'packed',
        'threads',
        'no',
        'pool',
    ]
    assert row.split()[0] == '1'
    assert all(float(value.rstrip('x')) > 0 for value in row.split()[1:])
    assert list(tmp_path.iterdir()) == []  # the temporary root is gone


def test_location_encoder_precision_grid() -> None:
    """`--precision --grid` gives the worst error on a grid, checked with mpmath.

    docs/precision.md and the README quote its figures (on 2,001 x 37 grids).
    """
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / 'benchmarks' / 'location_encoder.py'),
            '--precision',
            '--grid',
            '3',
            '2',
            '--lat-range',
            '89.9',
            '90',
        ],
        env={**os.environ, 'PYTHONPATH': str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert '3 latitudes in [89.9, 90] x 2 longitudes' in lines[0]
    worst = {line.split(':')[0].strip(): line for line in lines[1:]}
    assert set(worst) == {'float64', 'float32'}
    for dtype, bound in (('float64', 1e-10), ('float32', 5e-4)):
        error = float(worst[dtype].split(':')[1].split()[0])
        assert 0 < error < bound
        degree = int(worst[dtype].split('degree ')[1].split(',')[0])
        assert 0 <= degree < 40
        assert 'vs mpmath (30 digits) there: ours' in worst[dtype]
    # The grid's latitudes are those asked for: 89.9, 89.95 and 90.
    assert any(f'lat {lat},' in result.stdout for lat in ('89.9', '89.95', '90'))


def test_gpu_suite_tests_section(
    quick_run: tuple[Path, subprocess.CompletedProcess[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--sections tests`` runs the CUDA tests (all skipped without a GPU) and
    reports a failing test by name, as a failed section."""
    quick, result = quick_run  # its sections: tests and the default ones
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads((quick / 'gpu_results.json').read_text())['sections']
    assert figures['tests']['tests_skipped'] > 10
    assert figures['tests']['tests_failed'] == 0
    assert figures['tests']['tests_failures'] == 'none'

    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    # The test files below need no plugin: pytest starts without importing
    # the installed ones (hypothesis alone takes seconds).
    monkeypatch.setenv('PYTEST_DISABLE_PLUGIN_AUTOLOAD', '1')

    failing = tmp_path / 'test_fails.py'
    failing.write_text(
        'import atexit, os\n'
        # a library's message on stderr after pytest's summary line
        "atexit.register(lambda: os.write(2, b'a log line at exit\\n'))\n"
        'def test_fails():\n    assert 1 == 2\n\n'
        'def test_ok():\n    pass\n'
    )
    monkeypatch.setattr(gpu_suite, 'CUDA_TESTS', (str(failing),))
    out = tmp_path / 'out'
    out.mkdir()
    figures = {}
    with pytest.raises(RuntimeError, match=r'CUDA tests failed: .*test_fails'):
        gpu_suite.tests_section(
            figures, gpu_suite.parse(['--quick', '--out', str(out)])
        )
    assert figures['tests_failed'] == 1
    assert figures['tests_passed'] == 1
    assert 'test_fails' in (out / 'cuda_tests.log').read_text()

    # A hung test is stopped at --tests-timeout, with its output so far kept.
    hung = tmp_path / 'test_hangs.py'
    hung.write_text(
        'import time\n'
        'def test_first():\n    print("started", flush=True)\n\n'
        'def test_hangs():\n    time.sleep(600)\n'
    )
    monkeypatch.setattr(gpu_suite, 'CUDA_TESTS', (str(hung),))
    args = gpu_suite.parse(['--quick', '--out', str(out), '--tests-timeout', '8'])
    figures = {}
    with pytest.raises(
        RuntimeError, match=r'ran past --tests-timeout 8 s, last started: .*test_hangs'
    ):
        gpu_suite.tests_section(figures, args)
    assert 8 <= figures['pytest_seconds'] < 48
    log = (out / 'cuda_tests.log').read_text()
    assert 'test_first PASSED' in log
    assert log.rstrip().endswith('test_hangs')  # written as it ran


def test_gpu_suite_cuda_log_written_as_the_tests_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CUDA tests' log grows while pytest runs, so a suite killed from
    the outside (the device's time limit) keeps it up to the running test."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    marker = tmp_path / 'seen.txt'
    log = tmp_path / 'cuda_tests.log'
    probe = tmp_path / 'test_probe.py'
    probe.write_text(
        'from pathlib import Path\n'
        'def test_before():\n    pass\n\n'
        'def test_reads_its_own_log():\n'
        f'    text = Path({str(log)!r}).read_text()\n'
        f'    Path({str(marker)!r}).write_text(text)\n'
    )
    monkeypatch.setattr(gpu_suite, 'CUDA_TESTS', (str(probe),))
    # no plugin needed: pytest starts without importing the installed ones
    monkeypatch.setenv('PYTEST_DISABLE_PLUGIN_AUTOLOAD', '1')
    figures: dict[str, Any] = {}
    gpu_suite.tests_section(
        figures, gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    )
    assert figures['tests_passed'] == 2
    seen = marker.read_text()
    assert 'test_before PASSED' in seen
    assert 'test_reads_its_own_log' in seen


def test_gpu_suite_failed_dataset_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the dataset cannot be made, the data sections are skipped, the
    error is recorded and the run exits with 1 (it used to return 0)."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    def broken(*args: object) -> Path:
        raise OSError('disk full')

    monkeypatch.setattr(gpu_suite, 'make_packed_root', broken)
    argv = ['--quick', '--out', str(tmp_path), '--sections', 'data', 'train']
    with pytest.raises(SystemExit) as exit:
        gpu_suite.main(argv)
    assert exit.value.code == 1
    results = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert results['errors'] == {'dataset': 'OSError: disk full'}
    assert set(results['sections']) == {'dataset'}


@pytest.fixture
def tf32_flags() -> Iterator[None]:
    """Restore the TF32 flags a test sets (monkeypatch cannot: they are
    properties of torch's backend modules, not attributes)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_gpu_suite_labels_a_kernel_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf32_flags: None
) -> None:
    """When the fused kernel fails and ``backend='auto'`` falls back to the
    recurrence, the encoder section labels its figures with the backend that
    ran and fails (it labelled them 'triton'); the TF32 flags are restored."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    from torchgeo_satclip.models import _sh_triton

    module = gpu_suite.SH_MODULE
    args = gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    args.encoder_points = 64
    args.min_seconds = 0.0
    lonlat = gpu_suite.encoder_points(args)
    # The kernel as a CUDA machine without a working Triton would run it.
    monkeypatch.setattr(module, '_KERNEL_FAILED', {})
    monkeypatch.setattr(module, '_auto_kernel', lambda lonlat: True)
    assert gpu_suite.auto_backend(lonlat, 10, torch.float32) == 'triton'

    def broken(*args: object, **kwargs: object) -> torch.Tensor:
        raise RuntimeError('PassManager::run failed')

    monkeypatch.setattr(_sh_triton, 'fused_spherical_harmonics', broken)
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    matmul.allow_tf32, cudnn.allow_tf32 = True, False
    figures: dict[str, object] = {}
    with (
        pytest.warns(RuntimeWarning, match='kernel failed'),
        pytest.raises(RuntimeError, match='fell back to the tensor recurrence'),
    ):
        gpu_suite.encoder_section(figures, args)
    failed = 'torch (kernel failed: RuntimeError: PassManager::run failed)'
    assert figures['sh_auto_backend'] == failed
    for degrees in (10, 40):
        for mode in ('float32', 'tf32', 'bf16'):
            assert figures[f'sh_auto_backend_l{degrees}_{mode}'] == failed
    assert not any('block' in key for key in figures)  # no kernel sweep
    assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, False)

    # The switch for a whole run, and a plain CPU.
    monkeypatch.setattr(module, '_KERNEL_FAILED', {})
    monkeypatch.setattr(module, '_auto_kernel', lambda lonlat: False)
    assert gpu_suite.auto_backend(lonlat, 10, torch.float32) == 'torch'
    monkeypatch.setenv(module.KERNEL_SWITCH, '0')
    assert gpu_suite.auto_backend(lonlat, 10, torch.float32) == (
        f'torch ({module.KERNEL_SWITCH}=0)'
    )


def test_gpu_suite_restores_tf32_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tf32_flags: None
) -> None:
    """A mode that fails half-way leaves the TF32 flags as they were."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    def fails(*args: object) -> None:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        raise RuntimeError('out of memory')

    monkeypatch.setattr(gpu_suite, 'encoder_degrees', fails)
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    matmul.allow_tf32, cudnn.allow_tf32 = False, False
    args = gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    with pytest.raises(RuntimeError, match='out of memory'):
        gpu_suite.encoder_section({}, args)
    assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)


def test_gpu_suite_epochs_feed_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every loader the data and train sections build has at least four
    batches an epoch per worker of the most tried, and every timed batch,
    from the quick run's 24 patches (one epoch was 8 batches of the 4096)."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    from torchgeo_satclip.datamodules.loader import threaded_source
    from torchgeo_satclip.datasets import S2100K

    args = gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    root = gpu_suite.make_packed_root(tmp_path, args.num_patches, 1)
    packed = S2100K(root, layout='packed', image_dtype='uint16')
    geotiff = S2100K(root, layout='geotiff', image_dtype='uint16')
    least = gpu_suite.data_epoch_batches(args)
    assert least >= 4 * max(args.workers)
    assert len(packed) // args.data_batch_size < least  # so the test tests
    kinds = []
    for kind, count, batches, loader in gpu_suite.data_loaders(args, packed, geotiff):
        kinds.append((kind, count))
        assert len(loader) >= max(least, batches + 1), kind
        if kind != 'geotiff':
            assert threaded_source(loader.dataset) is not None
    assert kinds == [
        ('geotiff', 1),
        *(('packed', n) for n in args.workers),
        *(('threads', n) for n in args.workers),
    ]

    least = gpu_suite.train_epoch_batches(args)
    assert least >= max(4 * gpu_suite.train_workers(), args.train_steps + 1)
    common = gpu_suite.recipe_data(args, root)
    for loader in ('threads', 'processes'):
        dm = gpu_suite.LongEpochs(least, num_workers=1, loader=loader, **common)
        dm.setup('fit')
        assert len(dm.train_dataloader()) >= least


@pytest.mark.parametrize(
    ('variants', 'message'),
    [('moco_v2 typo', 'unknown variant typo'), ('satclip satclip', 'named twice')],
)
def test_gassl_demo_checks_variants_first(
    tmp_path: Path, variants: str, message: str
) -> None:
    env = {**os.environ, 'VARIANTS': variants, 'OUT': str(tmp_path / 'out')}
    env['DATA'] = str(tmp_path / 'absent')  # nothing is made before the check
    result = subprocess.run(
        ['bash', str(ROOT / 'benchmarks' / 'gassl_demo.sh')],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / 'absent').exists()


def test_gassl_demo_comparison_runs(tmp_path: Path) -> None:
    """docs/gassl.md's comparison, on a tiny world for one epoch: it never rots."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        'PATH': bin_dir + os.pathsep + os.environ.get('PATH', ''),
        'OUT': str(tmp_path / 'out'),
        'DATA': str(tmp_path / 'demo_t'),
        'POINTS': '120',
        'EPOCHS': '1',
        'BATCH': '16',
        'CUDA_VISIBLE_DEVICES': '',
        'VARIANTS': 'moco_v2 moco_v2_geo moco_v2_tp moco_v2_geo_tp satclip '
        'moco_v2_split8',
        # both cross-validations, 2 folds each: 28 probe fits, not 70
        'PROBE_ARGS': '--folds 2',
    }
    result = subprocess.run(
        ['bash', str(ROOT / 'benchmarks' / 'gassl_demo.sh')],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(
        (tmp_path / 'out' / 'probe' / 'image_probe_results.json').read_text()
    )
    names = {row['encoder'] for row in report['results']}
    assert report['folds'] == 2  # PROBE_ARGS reached the probe
    assert {row['cv'] for row in report['results']} == {'random', 'spatial'}
    assert names == {
        'moco_v2',
        'moco_v2_geo',
        'moco_v2_tp',
        'moco_v2_geo_tp',
        'satclip',
        'moco_v2_split8',
        'random mobilenetv3_small_050',
    }
    # each variant trained what it says: MoCo's parts and the geo head or not
    hparams = {
        name: (tmp_path / 'out' / name).rglob('hparams.yaml')
        for name in ('moco_v2', 'moco_v2_geo_tp', 'satclip', 'moco_v2_split8')
    }
    text = {name: next(paths).read_text() for name, paths in hparams.items()}
    assert 'moco_positives: augmentation' in text['moco_v2']
    assert 'geo_classes: 0' in text['moco_v2']
    assert 'moco_positives: temporal' in text['moco_v2_geo_tp']
    assert 'geo_classes: 20' in text['moco_v2_geo_tp']
    assert 'moco_loss_weight: 0.0' in text['satclip']
    assert 'moco_bn_splits: 1' in text['moco_v2']
    assert 'moco_bn_splits: 8' in text['moco_v2_split8']
    assert 'geo_classes: 0' in text['moco_v2_split8']


def test_device_stubs_stand_in_for_lightly_and_pyogrio() -> None:
    """``benchmarks/gpu_carry.sh`` ships these stubs to the GPU machine, which
    lacks lightly and pyogrio (and kornia_rs, whose wheel would not fit in
    what may travel there): kornia, torchgeo's tasks and datasets, and this
    package's task, import with them in place of the real packages."""
    stubs = ROOT / 'benchmarks' / 'device_stubs'
    code = (
        'import kornia, kornia_rs, lightly, pyogrio, torchgeo.datasets\n'
        'try:\n    import torchgeo.tasks\n'  # torchgeo >= 0.10
        'except ModuleNotFoundError:\n    import torchgeo.trainers\n'
        'from torchgeo_satclip.tasks import SatCLIPTask\n'
        f'assert lightly.__file__.startswith({str(stubs)!r}), lightly.__file__\n'
        "assert pyogrio.__version__.startswith('0 (stub')\n"
        f'assert kornia_rs.__file__.startswith({str(stubs)!r})\n'
        'from lightly.models.modules import heads\n'
        'class Head(heads.SimCLRProjectionHead): pass\n'
        "print('imported')\n"
    )
    env = {**os.environ, 'PYTHONPATH': f'{stubs}{os.pathsep}{ROOT}'}
    result = subprocess.run(
        [sys.executable, '-c', code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == 'imported'


def test_gpu_suite_saves_each_figure_as_it_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped by its time limit keeps the figures of the section it was in."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    args = gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    suite = gpu_suite.Suite(tmp_path, args)
    results, page = tmp_path / 'gpu_results.json', tmp_path / 'gpu_results.md'
    with suite.section('train') as figures:  # it records an error, never raises
        figures['compute_images_per_s'] = 1234.5
        inside = [p.read_text() if p.exists() else '' for p in (results, page)]
    saved = json.loads(inside[0] or '{}')
    assert saved['sections']['train'] == {'compute_images_per_s': 1234.5}
    assert saved['running'] == 'train'
    assert '## train (stopped before its end)' in inside[1]
    assert '| compute_images_per_s | 1,234 |' in inside[1]
    saved = json.loads(results.read_text())
    assert saved['errors'] == {}
    assert 'running' not in saved
    assert saved['sections']['train']['compute_images_per_s'] == 1234.5
    assert 'seconds' in saved['sections']['train']
    assert '(stopped before its end)' not in page.read_text()


def test_gpu_suite_a_failing_loader_leaves_the_other_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the threaded loader fails (it has never run on a GPU), the data
    and train sections record its error per run, go on with the worker
    processes (the train section had lost its baseline, measured after the
    threads) and fail at their end; the train section still gets the
    per-worker rate the data section measured."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    from torchgeo_satclip.datamodules import loader

    def broken(self: object) -> Iterator[dict[str, torch.Tensor]]:
        raise RuntimeError('cudaHostAlloc failed')

    monkeypatch.setattr(loader.ThreadedBatchLoader, '__iter__', broken)
    argv = ['--quick', '--out', str(tmp_path), '--sections', 'data', 'train']
    with pytest.raises(SystemExit) as exit:
        gpu_suite.main(argv)
    assert exit.value.code == 1
    results = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert set(results['errors']) == {'data', 'train'}
    data, train = results['sections']['data'], results['sections']['train']
    assert data['packed_1_workers_images_per_s'] > 0
    assert data['packed_2_workers_images_per_s'] > 0
    for threads in (1, 2):
        assert data[f'threads_{threads}_error'] == 'RuntimeError: cudaHostAlloc failed'
    assert train['per_worker_images_per_s'] > 0
    assert train['compute_only_images_per_s'] > 0
    processes = [key for key in train if key.startswith('end_to_end_processes_')]
    assert any(key.endswith('_images_per_s') for key in processes), train
    thread_runs = [key for key in train if key.startswith('end_to_end_threads_')]
    assert thread_runs, train
    assert all(key.endswith('_error') for key in thread_runs), train
    assert 'end_to_end_threads' in results['errors']['train']


def test_gpu_suite_goes_on_after_its_process_dies(tmp_path: Path) -> None:
    """A process that dies in a section (a compiler's crash: no exception to
    catch) loses that section only: gpu_suite.sh runs the sections left in a
    new process, which keeps the results saved so far and removes the dead
    process's temporary data."""
    marker = tmp_path / 'crashed'
    wrapper = tmp_path / 'crash_once.py'
    wrapper.write_text(
        'import os, sys\n'
        'sys.argv = sys.argv[1:]\n'
        'sys.path.insert(0, os.path.dirname(sys.argv[0]))\n'
        'import gpu_suite\n'
        'def crash(figures, args):\n'
        f'    if not os.path.exists({str(marker)!r}):\n'
        f'        open({str(marker)!r}, "w").close()\n'
        '        figures["before_the_crash"] = 1.0\n'
        '        os.abort()\n'
        '    raise AssertionError("a section that died is not run again")\n'
        'gpu_suite.tests_section = crash\n'
        'gpu_suite.main()\n'
    )
    python = tmp_path / 'python'
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {wrapper} "$@"\n')
    python.chmod(0o755)
    scratch, out = tmp_path / 'tmp', tmp_path / 'out'
    scratch.mkdir()
    result = gpu_suite_sh(
        str(python),
        *('--out', str(out), '--tmp', str(scratch), '--sections', 'tests', 'data'),
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'going on in a new process' in result.stderr
    results = json.loads((out / 'gpu_results.json').read_text())
    assert set(results['errors']) == {'tests'}
    assert 'the process died in this section' in results['errors']['tests']
    assert results['sections']['tests'] == {'before_the_crash': 1.0}
    assert results['sections']['data']['packed_1_workers_images_per_s'] > 0
    assert results['meta']['resumed_after_exit_status'] == [134]  # SIGABRT
    assert 'running' not in results
    assert 'tmp' not in results
    assert list(scratch.iterdir()) == []
    assert 'new process after exit status 134' in (out / 'gpu_results.md').read_text()


def test_gpu_suite_stops_a_hung_section_and_goes_on(tmp_path: Path) -> None:
    """A section that hangs (a stuck DataLoader worker, an NCCL start-up that
    never ends) is stopped by ``--section-timeout``: the stacks are printed,
    the figures it measured are kept, and gpu_suite.sh runs the sections
    left in a new process instead of losing the rest of the run's time."""
    wrapper = tmp_path / 'hang.py'
    wrapper.write_text(
        'import os, sys, time\n'
        'sys.argv = sys.argv[1:]\n'
        'sys.path.insert(0, os.path.dirname(sys.argv[0]))\n'
        'import gpu_suite\n'
        'def hang(figures, args):\n'
        '    if "--resume" in sys.argv:\n'
        '        raise AssertionError("a section that timed out is not run again")\n'
        '    figures["before_the_hang"] = 1.0\n'
        '    time.sleep(600)\n'
        'def compiled(figures, args):\n'
        '    figures["kernel_switch"] = os.environ.get("TORCHGEO_SATCLIP_SH_KERNEL", "unset")\n'
        'gpu_suite.encoder_section = hang\n'
        'gpu_suite.compiled_encoder_section = compiled\n'
        'gpu_suite.main()\n'
    )
    python = tmp_path / 'python'
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {wrapper} "$@"\n')
    python.chmod(0o755)
    out = tmp_path / 'out'
    args = ('--out', str(out), '--sections', 'encoder', '--section-timeout', '3')
    result = gpu_suite_sh(str(python), *args)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'ran past --section-timeout 3 s' in result.stderr
    assert 'in hang' in result.stderr  # where the main thread was stuck
    assert 'exit status 4: going on in a new process' in result.stderr
    results = json.loads((out / 'gpu_results.json').read_text())
    assert set(results['errors']) == {'encoder'}
    assert 'ran past --section-timeout 3 s' in results['errors']['encoder']
    assert results['sections']['encoder']['before_the_hang'] == 1.0
    assert results['sections']['encoder']['seconds'] >= 3
    assert results['meta']['resumed_after_exit_status'] == [4]
    # the section that hung ran the fused kernel: the rest run without it
    assert results['meta']['sh_kernel_off_after'] == 'encoder'
    assert results['sections']['encoder_compiled']['kernel_switch'] == '0'
    assert 'running' not in results
    assert 'timed_out' not in results


def test_gpu_suite_restarts_when_a_section_breaks_the_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section that leaves the GPU broken (a sticky CUDA error: every later
    CUDA call of the process fails) ends the process with exit status 3, and
    ``--resume`` goes on with the sections left, keeping the results."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    def broken(figures: dict[str, Any], args: object) -> None:
        figures['sh_l10_float32_points_per_s'] = 5.0
        raise RuntimeError('CUDA error: an illegal memory access was encountered')

    switch = gpu_suite.SH_MODULE.KERNEL_SWITCH

    def compiled(figures: dict[str, Any], args: object) -> None:
        figures['compiled_net_vs_eager'] = 1.5
        figures['kernel_switch'] = os.environ.get(switch)

    monkeypatch.setenv(switch, '1')  # restored after the test
    monkeypatch.setattr(gpu_suite, 'encoder_section', broken)
    monkeypatch.setattr(gpu_suite, 'compiled_encoder_section', compiled)
    monkeypatch.setattr(gpu_suite, 'cuda_broken', lambda: True)
    argv = ['--quick', '--out', str(tmp_path), '--sections', 'encoder']
    with pytest.raises(SystemExit) as exit:
        gpu_suite.main(argv)
    assert exit.value.code == gpu_suite.RESTART == 3
    results = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert set(results['sections']) == {'encoder'}  # nothing run on a broken GPU
    assert 'left the GPU broken' in results['errors']['encoder']

    monkeypatch.setattr(gpu_suite, 'cuda_broken', lambda: False)
    with pytest.raises(SystemExit) as exit:
        gpu_suite.main([*argv, '--resume', '3'])
    assert exit.value.code == 1
    results = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert results['sections']['encoder']['sh_l10_float32_points_per_s'] == 5.0
    assert results['sections']['encoder_compiled']['compiled_net_vs_eager'] == 1.5
    assert set(results['errors']) == {'encoder'}
    assert results['meta']['resumed_after_exit_status'] == [3]
    # the sections after the kernel's crash ran without it
    assert results['sections']['encoder_compiled']['kernel_switch'] == '0'
    assert results['meta']['sh_kernel_off_after'] == 'encoder'
    assert 'broke_gpu' not in results
    assert (
        'kernel was switched off after the section encoder'
        in (tmp_path / 'gpu_results.md').read_text()
    )


def test_gpu_suite_report_keeps_a_cuda_error_in_its_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CUDA error's message spans lines (PyTorch appends 'Search for
    `cudaError...`' and more on lines of their own): in the Markdown report it
    stays in its table row and its list item, and a '|' in it is no column
    (the rows after it were cut in two, the table broken)."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    error = (
        'AcceleratorError: CUDA error: an illegal memory access was encountered\n'
        'Search for `cudaErrorIllegalAddress` in https://docs.nvidia.com | here\n'
        'Device-side assertions were explicitly omitted.\n'
    )
    results: dict[str, Any] = {
        'meta': {
            'command': 'benchmarks/gpu_suite.sh',
            'gpu': 'GPU',
            'cpu_count': 16,
            'torch': '2.11.0',
            'python': '3.12.3',
            'date': 'today',
            'quick': False,
        },
        'targets': {},
        'sections': {'data': {'packed_1_error': error, 'seconds': 1.5}},
        'errors': {'data': error},
    }
    lines = gpu_suite.markdown(results).splitlines()
    start = lines.index('## data') + 2
    end = lines.index('', start)
    rows = lines[start:end]
    assert len(rows) == 4  # header, rule, the error, the seconds
    for row in rows:
        # three column bars, none escaped: two columns
        assert len(row.replace('\\|', '').split('|')) == 4, row
    assert 'cudaErrorIllegalAddress' in rows[2]
    assert 'explicitly omitted.' in rows[2]
    listed = lines[lines.index('## errors') + 2 :]
    assert listed[0].startswith('- data: AcceleratorError')
    assert 'cudaErrorIllegalAddress' in listed[0]
    assert listed[1] == ''


def test_gpu_suite_broken_gpu_goes_on_in_a_new_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section that leaves the GPU broken ends the process with RESTART, so
    that gpu_suite.sh runs the sections left in a new one, even though the
    broken GPU then fails the peak-memory query too (CUDA may answer any call
    with the sticky error: that error escaped the section and the process
    ended with status 1, which stops gpu_suite.sh)."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    args = gpu_suite.parse(['--quick', '--out', str(tmp_path)])
    suite = gpu_suite.Suite(tmp_path, args)

    def sticky(*args: object, **kwargs: object) -> int:
        raise RuntimeError('CUDA error: an illegal memory access was encountered')

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'max_memory_allocated', sticky)
    monkeypatch.setattr(torch.cuda, 'reset_peak_memory_stats', sticky)
    monkeypatch.setattr(gpu_suite, 'cuda_broken', lambda: True)

    def breaks_the_gpu() -> None:
        with suite.section('encoder') as figures:
            figures['sh_l10_float32_points_per_s'] = 1.0
            sticky()

    with pytest.raises(SystemExit) as stopped:
        breaks_the_gpu()
    assert stopped.value.code == gpu_suite.RESTART
    saved = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert saved['broke_gpu'] == 'encoder'
    assert 'illegal memory access' in saved['errors']['encoder']
    encoder = saved['sections']['encoder']
    assert encoder['sh_l10_float32_points_per_s'] == 1.0
    assert encoder['peak_gpu_memory_gib'].startswith('unknown')


def test_gpu_suite_train_takes_the_rates_of_a_data_section_stopped_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data section stopped by the watchdog keeps the rates it measured,
    but not ``per_worker_best`` (written in its ``finally``): the resumed
    process sized the train section's loaders from ``--per-worker-guess``."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    args = gpu_suite.parse(['--quick', '--out', str(tmp_path), '--sections', 'train'])
    suite = gpu_suite.Suite(tmp_path, args)
    suite.results['sections']['data'] = {
        'geotiff_1_per_worker': 60.0,
        'packed_2_per_worker': 750.0,
        'threads_4_per_thread': 410.0,
        'packed_8_error': 'stopped',
    }
    seen: dict[str, Any] = {}

    def train_section(figures: dict[str, Any], *rest: Any) -> None:
        seen.update(figures)

    monkeypatch.setattr(gpu_suite, 'train_section', train_section)
    gpu_suite.data_sections(suite, args, tmp_path, tmp_path)
    assert seen['per_worker_images_per_s'] == 750.0


def _needs_cuda(decorators: list[ast.expr], source: str) -> bool:
    """Whether one of *decorators* skips the test without CUDA."""
    return any(
        'torch.cuda.is_available()' in (ast.get_source_segment(source, d) or '')
        for d in decorators
    )


def cuda_only_tests() -> set[str]:
    """``path::name`` of every test under tests/ that is skipped without CUDA."""
    found = set()
    for path in sorted((ROOT / 'tests').rglob('test_*.py')):
        source = path.read_text(encoding='utf-8')
        tree = ast.parse(source)
        whole = any(
            isinstance(node, ast.Assign)
            and any(getattr(t, 'id', None) == 'pytestmark' for t in node.targets)
            and 'torch.cuda.is_available()'
            in (ast.get_source_segment(source, node.value) or '')
            for node in tree.body
        )
        name = path.relative_to(ROOT).as_posix()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith('test_'):
                if whole or _needs_cuda(node.decorator_list, source):
                    found.add(f'{name}::{node.name}')
            elif isinstance(node, ast.ClassDef) and node.name.startswith('Test'):
                skipped = whole or _needs_cuda(node.decorator_list, source)
                for method in node.body:
                    if isinstance(method, ast.FunctionDef) and (
                        method.name.startswith('test_')
                        and (skipped or _needs_cuda(method.decorator_list, source))
                    ):
                        found.add(f'{name}::{node.name}::{method.name}')
    return found


def test_gpu_suite_runs_every_cuda_only_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test skipped without CUDA runs nowhere but in ``--sections tests``:
    one missing from CUDA_TESTS is never run at all (the GPU visit is the
    only machine with CUDA)."""
    monkeypatch.syspath_prepend(str(ROOT / 'benchmarks'))
    import gpu_suite

    needed = cuda_only_tests()
    assert 'tests/test_cuda.py::test_uint16_batches_convert_on_the_gpu' in needed
    assert 'tests/models/test_positional.py::test_cuda_matches_cpu' in needed

    def run(test: str) -> bool:
        return any(
            test == listed or test.startswith(f'{listed}::')
            for listed in gpu_suite.CUDA_TESTS
        )

    assert sorted(test for test in needed if not run(test)) == []
    for listed in gpu_suite.CUDA_TESTS:  # and nothing listed that is gone
        assert (ROOT / listed.split('::')[0]).is_file(), listed
        assert '::' not in listed or listed in needed, listed
