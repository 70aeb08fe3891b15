"""``embed`` imports only what it needs: torchvision only for named weights.

torchvision (imported for the weights' ``WeightsEnum``) costs about two
seconds of every run, with the ``torch._dynamo`` it imports, and pandas
(which ``pa.array`` imports) a third of one; a random encoder or a checkpoint
file needs neither. Each command runs in a fresh interpreter, which reports
its ``sys.modules`` at the end. Speed itself is measured by
``benchmarks/embed_cli.py``, not here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch

from torchgeo_satclip.models import (
    SatCLIPWeights,
    build_location_encoder,
    save_official_checkpoint,
)

REPO = Path(__file__).parents[1]

#: Modules a run with a random encoder or a checkpoint file must not import:
#: the weights members and what they need, and the heavy libraries of the
#: other commands.
NOT_NEEDED = (
    'torchgeo_satclip.models.released',
    'torchvision',
    'torch._dynamo',
    'pandas',
    'lightning',
    'torchgeo',
    'timm',
    'kornia',
    'matplotlib',
    'sklearn',
)

#: Runs the command line, then prints its exit status and ``sys.modules``.
RUN = (
    'import json, sys\n'
    'from torchgeo_satclip.cli import main\n'
    'status = main(sys.argv[1:])\n'
    'print(json.dumps({"status": status, "modules": sorted(sys.modules)}))\n'
)


def embed(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``torchgeo-satclip embed ARGS --quiet`` in a fresh interpreter.

    Returns:
        The modules it imported.
    """
    done = subprocess.run(
        [sys.executable, '-c', RUN, 'embed', *args, '--quiet'],
        env={**os.environ, 'PYTHONPATH': str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert report['status'] == 0, done.stdout
    modules: list[str] = report['modules']
    return modules


def imported(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(f'{name}.') for m in modules)


@pytest.fixture
def one_point(tmp_path: Path) -> Path:
    path = tmp_path / 'one.csv'
    path.write_text('id,lon,lat\nparis,2.35,48.86\n')
    return path


@pytest.mark.parametrize(
    ('weights', 'output', 'options'),
    [
        ('random', 'out.parquet', ('--legendre-polys', '3')),
        ('checkpoint', 'out.parquet', ('--layout', 'list')),
        ('checkpoint', 'out.npy', ()),
    ],
)
def test_a_random_encoder_or_a_checkpoint_file_needs_no_torchvision(
    weights: str,
    output: str,
    options: tuple[str, ...],
    one_point: Path,
    tmp_path: Path,
) -> None:
    if weights == 'checkpoint':
        torch.manual_seed(0)
        encoder = build_location_encoder(legendre_polys=3, embed_dim=4, capacity=8)
        weights = str(save_official_checkpoint(encoder, tmp_path / 'w.ckpt'))
    modules = embed(
        str(one_point), str(tmp_path / output), '--weights', weights, *options
    )
    assert 'torchgeo_satclip.embed.pipeline' in modules  # the run got that far
    assert (tmp_path / output).exists()
    assert [name for name in NOT_NEEDED if imported(modules, name)] == []


def test_a_weights_name_still_loads_its_weights_enum_member(
    one_point: Path, tmp_path: Path
) -> None:
    """A name needs the members: they are imported then, and load as before."""
    member = SatCLIPWeights.SATCLIP_RESNET18_L10
    torch.manual_seed(0)
    encoder = build_location_encoder(**member.architecture())
    # Cached where the member's download would put it: nothing is downloaded.
    hub = tmp_path / 'torch' / 'hub' / 'checkpoints'
    hub.mkdir(parents=True)
    cached = save_official_checkpoint(encoder, hub / Path(member.url).name)
    env = {'TORCH_HOME': str(tmp_path / 'torch')}

    by_name = tmp_path / 'by_name.parquet'
    modules = embed(str(one_point), str(by_name), '--weights', member.name, env=env)
    assert imported(modules, 'torchgeo_satclip.models.released')
    assert imported(modules, 'torchvision')
    by_path = tmp_path / 'by_path.parquet'
    embed(str(one_point), str(by_path), '--weights', str(cached))
    assert pq.read_table(by_name).equals(pq.read_table(by_path))
    assert pq.read_table(by_name).num_columns == 3 + 256
