"""The GPU benchmark suite runs end to end on the CPU (``--quick``), so it never rots."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_gpu_suite_quick(tmp_path: Path) -> None:
    env = {**os.environ, 'PYTHON': sys.executable, 'CUDA_VISIBLE_DEVICES': ''}
    result = subprocess.run(
        [
            'bash',
            str(ROOT / 'benchmarks' / 'gpu_suite.sh'),
            '--quick',
            '--out',
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / 'gpu_results.json').read_text())
    assert results['errors'] == {}
    sections = results['sections']
    assert set(sections) == {'encoder', 'dataset', 'data', 'train', 'cached', 'ddp'}
    for degrees in (10, 40):
        for mode in ('float32', 'tf32', 'bf16'):
            for part in ('sh', 'encoder'):
                assert sections['encoder'][f'{part}_l{degrees}_{mode}_points_per_s'] > 0
    assert sections['data']['packed_1_workers_images_per_s'] > 0
    assert sections['data']['geotiff_1_worker_images_per_s'] > 0
    assert sections['train']['compute_only_images_per_s'] > 0
    assert any(key.startswith('end_to_end_threads_') for key in sections['train'])
    assert any(key.startswith('end_to_end_processes_') for key in sections['train'])
    assert sections['data']['threads_1_images_per_s'] > 0
    assert sections['cached']['cached_500_epochs_minutes'] > 0
    assert sections['ddp']['ddp_backend'] == 'gloo'
    assert results['meta']['quick'] is True
    page = (tmp_path / 'gpu_results.md').read_text()
    assert '## train' in page
    assert 'not figures' in page  # a quick run says it is no measurement
    # nothing left behind but the two result files
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'gpu_results.json',
        'gpu_results.md',
    ]
