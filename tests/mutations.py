"""Curated mutation testing: plant plausible bugs, one at a time, and see who notices.

Not a test module (pytest does not collect it): run it by hand,

    python tests/mutations.py                 # every mutant
    python tests/mutations.py clip-i2l-axis   # only these mutants
    python tests/mutations.py --list          # the mutants, one line each

It copies the repository (without ``.git`` and caches) into a temporary
directory, checks that the copy's tests pass unmutated and that a deliberately
broken canary is caught (so the copy, not the worktree or the editable install,
is what the tests import), then applies each mutant to the copy's file, runs
the mutant's test files there with ``pytest -x -q`` under a time-out, and
restores the file. The real files are never edited. A mutant is *killed* when
pytest fails (or times out), and *survives* when it passes. Exit status 1 when
any mutant survives.

Each mutant is a file, an exact snippet that must occur exactly once in it,
its replacement, the test files that should catch it and what the bug is.
``tests/test_mutations.py`` (collected, fast) checks that every snippet still
occurs exactly once and every test file exists, so a mutant cannot go stale.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'torchgeo_satclip'
TIMEOUT = 600


@dataclass(frozen=True)
class Mutant:
    """One planted bug."""

    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    description: str


MUTANTS = [
    # ------------------------------------------------------------------ geo
    Mutant(
        'lonlat-lat-limit-torch',
        'geo/lonlat.py',
        '(lonlat[:, 1].abs() > 90)',
        '(lonlat[:, 1].abs() >= 90)',
        ('tests/geo/test_lonlat.py',),
        'tensor validation refuses the poles (latitude exactly +-90)',
    ),
    Mutant(
        'lonlat-lon-limit-numpy',
        'geo/lonlat.py',
        '| (np.abs(lonlat[:, 0]) > 180)',
        '| (np.abs(lonlat[:, 0]) >= 180)',
        ('tests/geo/test_lonlat.py',),
        'array validation refuses the antimeridian (longitude exactly +-180)',
    ),
    Mutant(
        'great-circle-cos-of-longitude',
        'geo/lonlat.py',
        'torch.cos(a[..., 1]) * torch.cos(b[..., 1])',
        'torch.cos(a[..., 0]) * torch.cos(b[..., 0])',
        ('tests/geo/test_lonlat.py',),
        'haversine weighs the longitude term by cos(longitude), not cos(latitude)',
    ),
    Mutant(
        'jitter-clamps-longitude',
        'geo/lonlat.py',
        'lon = torch.remainder(moved[..., 0] + 180.0, 360.0) - 180.0',
        'lon = moved[..., 0].clamp(-180.0, 180.0)',
        ('tests/geo/test_lonlat.py',),
        'jitter clamps longitude at the antimeridian instead of wrapping it',
    ),
    Mutant(
        'sampling-planar-box-weights',
        'geo/sampling.py',
        'sine = np.sin(np.radians(north)) - np.sin(np.radians(south))',
        'sine = north - south',
        ('tests/geo/test_sampling.py',),
        'polygons weighted by planar, not spherical, area of their boxes',
    ),
    Mutant(
        'sampling-uniform-latitude',
        'geo/sampling.py',
        'sin_lat = rng.uniform(np.sin(np.radians(south)), np.sin(np.radians(north)), n)',
        'sin_lat = np.sin(np.radians(rng.uniform(south, north, n)))',
        ('tests/geo/test_sampling.py',),
        'points uniform in latitude (crowding the poles), not on the sphere',
    ),
    # --------------------------------------------------------------- models
    Mutant(
        'encoder-computes-in-network-dtype',
        'models/location_encoder.py',
        'coords = lonlat.to(compute_dtype(dtype))',
        'coords = lonlat.to(dtype)',
        ('tests/models/test_location_encoder.py',),
        'bfloat16 networks compute the spherical harmonics in bfloat16',
    ),
    Mutant(
        'encoder-skips-validation',
        'models/location_encoder.py',
        'if self.validate:',
        'if not self.validate:',
        ('tests/models/test_location_encoder.py',),
        'the location encoder stops validating its input',
    ),
    Mutant(
        'sh-max-degree-off-by-one',
        'models/spherical_harmonics.py',
        "'legendre_polys', legendre_polys, minimum=1, maximum=MAX_LEGENDRE_POLYS\n",
        "'legendre_polys', legendre_polys, minimum=1, maximum=MAX_LEGENDRE_POLYS - 1\n",
        ('tests/models/test_spherical_harmonics.py',),
        'the documented maximum number of degrees (100) is refused',
    ),
    Mutant(
        'rff-float32-phases',
        'models/positional.py',
        'exact = coords.to(torch.float64)',
        'exact = coords',
        ('tests/models/test_positional.py', 'tests/models/test_geoclip.py'),
        'random Fourier phases in float32 again: GeoCLIP in float32 off by 3e-5',
    ),
    Mutant(
        'geoclip-branches-averaged',
        'models/networks.py',
        '            out = out + branch(block)\n        return out',
        '            out = out + branch(block)\n        return out / self.num_branches',
        ('tests/models/test_geoclip.py',),
        "GeoCLIP's branch outputs averaged instead of summed",
    ),
    Mutant(
        'geoclip-hidden-layer-order',
        'models/geoclip.py',
        "converted[f'nnet.branches.{i}.layers.{2 * j}.{param}'] = tensor",
        "converted[f'nnet.branches.{i}.layers.{2 * (len(hidden) - 1 - j)}.{param}'] = tensor",
        ('tests/models/test_geoclip.py',),
        "GeoCLIP's capsule layers loaded in reverse order (shapes still fit)",
    ),
    Mutant(
        'geoclip-posenc-not-restored',
        'models/weights.py',
        '    return _restore_positional_state(encoder, checkpoint, str(path))',
        '    return encoder',
        ('tests/tasks/test_geoclip_start.py',),
        "a task checkpoint's GeoCLIP frequencies replaced by seeded ones on load",
    ),
    # ------------------------------------------------------------- datasets
    Mutant(
        'index-lon-lat-swapped',
        'datasets/s2_100k_files.py',
        'coords.append((lon, lat))',
        'coords.append((lat, lon))',
        ('tests/datasets/test_s2_100k.py',),
        'index.csv read latitude first',
    ),
    Mutant(
        'index-accepts-loose-numbers',
        'datasets/s2_100k_files.py',
        "if not text.isascii() or '_' in text:",
        'if False:',
        ('tests/datasets/test_bad_inputs.py',),
        "float() reads '1_0', Arabic-Indic digits and 'True'-like text",
    ),
    Mutant(
        'index-accepts-ragged-rows',
        'datasets/s2_100k_files.py',
        'if len(fields) != width:',
        'if len(fields) < width:',
        ('tests/datasets/test_bad_inputs.py',),
        'a row with extra fields (a decimal comma) is read by position',
    ),
    Mutant(
        'index-accepts-duplicate-files',
        'datasets/s2_100k_files.py',
        'if fn in first:',
        'if fn in first and False:',
        ('tests/datasets/test_bad_inputs.py',),
        'a file listed twice in index.csv or nodata.csv is accepted',
    ),
    Mutant(
        'nodata-fraction-unbounded',
        'datasets/s2_100k_files.py',
        'if not 0 <= number <= 1:  # NaN fails too',
        'if number < 0:',
        ('tests/datasets/test_bad_inputs.py',),
        'nodata fractions above 1 or NaN are accepted',
    ),
    Mutant(
        'geotiff-size-unchecked',
        'datasets/s2_100k_files.py',
        'if size is not None and (src.height, src.width) != size:',
        'if False:',
        ('tests/datasets/test_bad_inputs.py', 'tests/datasets/test_s2_100k.py'),
        'a patch of another size is returned as it is',
    ),
    Mutant(
        'packed-files-csv-unpinned',
        'datasets/s2_100k_files.py',
        'if not as_packed:',
        'if False:',
        ('tests/datasets/test_packed_integrity.py',),
        'an edited or reordered files.csv is served',
    ),
    Mutant(
        'packed-shard-content-unsampled',
        'datasets/s2_100k_files.py',
        'if sampled_sha256(path) != entry.sample_sha256:',
        'if False:',
        ('tests/datasets/test_packed_integrity.py',),
        'a shard overwritten by another of the same size is served',
    ),
    Mutant(
        'packed-full-verify-skips-hash',
        'datasets/s2_100k_files.py',
        'if digest.hexdigest() != entry.sha256:',
        'if False:',
        ('tests/datasets/test_packed_integrity.py',),
        'verify=True misses a bit flip between the sampled blocks',
    ),
    Mutant(
        'packed-source-size-unchecked',
        'datasets/s2_100k_files.py',
        'if stat.st_size != recorded.size:',
        'if False:',
        ('tests/datasets/test_packed_integrity.py',),
        'a source GeoTIFF replaced after packing is not noticed by its size',
    ),
    Mutant(
        'pack-resume-trusts-changed-sources',
        'datasets/pack.py',
        'if not fingerprint.same_stat(stat) and (',
        'if False and (',
        ('tests/datasets/test_packed_integrity.py',),
        'pack keeps a shard whose source GeoTIFF changed',
    ),
    Mutant(
        'nodata-any-band',
        'datasets/s2_100k_files.py',
        'return float(np.mean(~np.any(image != 0, axis=0)))',
        'return float(np.mean(np.any(image == 0, axis=0)))',
        ('tests/datasets/test_s2_100k.py', 'tests/datasets/test_pack.py'),
        'a pixel counts as nodata when 0 in any band, not in every band',
    ),
    Mutant(
        'exclude-nodata-at-threshold',
        'datasets/s2_100k.py',
        'keep = np.array([f <= max_nodata_fraction for f in fractions], dtype=bool)',
        'keep = np.array([f < max_nodata_fraction for f in fractions], dtype=bool)',
        ('tests/datasets/test_s2_100k.py',),
        'a patch exactly at max_nodata_fraction is excluded',
    ),
    Mutant(
        'dataset-refuses-zero-nodata-threshold',
        'datasets/s2_100k.py',
        "'max_nodata_fraction', max_nodata_fraction, minimum=0, below=1",
        "'max_nodata_fraction', max_nodata_fraction, positive=True, below=1",
        ('tests/datasets/test_s2_100k.py',),
        'max_nodata_fraction=0 (exclude any nodata) refused',
    ),
    # ---------------------------------------------------------- datamodules
    Mutant(
        'split-may-leave-no-validation',
        'datamodules/s2_100k.py',
        'num_val = max(num_val, 1)',
        'num_val = max(num_val, 0)',
        ('tests/datamodules/test_s2_100k.py',),
        'a small positive val_split_pct rounds to an empty validation set',
    ),
    Mutant(
        'split-refuses-zero-validation',
        'datamodules/s2_100k.py',
        "val_split_pct = check_real('val_split_pct', val_split_pct, minimum=0, below=1)\n    seed",
        "val_split_pct = check_real('val_split_pct', val_split_pct, positive=True, below=1)\n    seed",
        ('tests/datamodules/test_s2_100k.py',),
        'split_indices refuses val_split_pct=0 (no validation set)',
    ),
    Mutant(
        'jitter-in-deterministic-mode',
        'datamodules/s2_100k.py',
        'self.jitter = jitter if random else 0.0',
        'self.jitter = jitter',
        ('tests/datamodules/test_s2_100k.py',),
        'the deterministic (validation) augmentation still jitters the points',
    ),
    Mutant(
        'b10-appended-not-inserted',
        'datamodules/s2_100k.py',
        '[image[:, :B10_INDEX], zeros, image[:, B10_INDEX:]], 1',
        '[image[:, :B10_INDEX], image[:, B10_INDEX:], zeros], 1',
        ('tests/datamodules/test_s2_100k.py',),
        'the empty B10 band is appended last instead of inserted in place',
    ),
    # --------------------------------------------------------- tasks/_clip
    Mutant(
        'clip-i2l-from-location-logits',
        'tasks/_clip.py',
        "(('i2l', output.logits_image), ('l2i', output.logits_location))",
        "(('i2l', output.logits_location), ('l2i', output.logits_image))",
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'image-to-location metrics computed from the location-to-image logits',
    ),
    Mutant(
        'clip-topk-wrong-dimension',
        'tasks/_clip.py',
        'top = logits.detach().topk(k, dim=1).indices',
        'top = logits.detach().topk(k, dim=0).indices.T',
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'top-k taken down the columns instead of along each row',
    ),
    Mutant(
        'clip-offset-ignored',
        'tasks/_clip.py',
        'target = torch.arange(rows, device=lonlat.device) + output.offset',
        'target = torch.arange(rows, device=lonlat.device)',
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'gathered metrics compare local rows with the first rows of all ranks',
    ),
    Mutant(
        'clip-median-from-local-points',
        'tasks/_clip.py',
        'candidates[retrieved]',
        'lonlat[retrieved]',
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'median_km looks retrieved columns up in the local points, not all_lonlat',
    ),
    Mutant(
        'clip-median-is-mean',
        'tasks/_clip.py',
        "metrics['median_km'] = torch.quantile(distance.double(), 0.5).float()",
        "metrics['median_km'] = distance.mean().float()",
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'median_km reports the mean distance',
    ),
    Mutant(
        'clip-median-is-lower-middle',
        'tasks/_clip.py',
        "metrics['median_km'] = torch.quantile(distance.double(), 0.5).float()",
        "metrics['median_km'] = distance.median().float()",
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'median_km of an even batch is the lower middle distance (torch.median)',
    ),
    Mutant(
        'clip-top5-is-top1',
        'tasks/_clip.py',
        'k = min(5, columns)',
        'k = min(1, columns)',
        ('tests/tasks/test_clip.py', 'tests/tasks/test_satclip.py'),
        'top-5 accuracy computed from the top 1 only',
    ),
    Mutant(
        'task-refuses-one-geo-class',
        'tasks/satclip.py',
        'if geo_loss_weight > 0 and geo_classes < 1:',
        'if geo_loss_weight > 0 and geo_classes <= 1:',
        ('tests/tasks/test_task_limits.py', 'tests/tasks/test_satclip.py'),
        'the geo pretext refuses a single class (the limit is geo_classes >= 1)',
    ),
    # ---------------------------------------------------------------- embed
    Mutant(
        'embed-parquet-row-numbers-restart',
        'embed/table_points.py',
        'def where(i: int, start: int = first) -> str:',
        'def where(i: int, start: int = 0) -> str:',
        ('tests/test_embed.py',),
        'a bad Parquet row after the first batch is reported with a wrong number',
    ),
    Mutant(
        'embed-csv-low-precision',
        'embed/write.py',
        '_csv_text(embedding.column(i))',
        '_csv_text(pc.round(embedding.column(i), 3))',
        ('tests/test_embed.py', 'tests/test_embed_outputs.py'),
        'CSV output rounds float32 embeddings to 3 decimals',
    ),
    Mutant(
        'embed-csv-batches-one-too-large',
        'embed/csv_points.py',
        'take = min(self.batch_size - count, len(record))',
        'take = min(self.batch_size + 1 - count, len(record))',
        ('tests/test_embed.py',),
        'CSV batches hold more than batch_size rows (memory bound broken)',
    ),
    # ------------------------------------------------------------- builders
    Mutant(
        'builder-no-nodata-check',
        'builders/reading.py',
        'if np.mean(bands[_GRID_BAND] == 0) > max_nodata_fraction:',
        'if False:',
        ('tests/builders/test_nodata.py', 'tests/builders/test_planetary_computer.py'),
        'the builder never rejects a patch for nodata',
    ),
    Mutant(
        'builder-nodata-at-threshold',
        'builders/reading.py',
        'if np.mean(bands[_GRID_BAND] == 0) > max_nodata_fraction:',
        'if np.mean(bands[_GRID_BAND] == 0) >= max_nodata_fraction:',
        ('tests/builders/test_nodata.py', 'tests/builders/test_planetary_computer.py'),
        'a patch with exactly max_nodata_fraction nodata is rejected',
    ),
    Mutant(
        'builder-window-not-shifted-inside',
        'builders/reading.py',
        'col_off = min(max(round(col - size / 2), 0), src.width - size)',
        'col_off = max(round(col - size / 2), 0)',
        ('tests/builders/test_nodata.py', 'tests/builders/test_planetary_computer.py'),
        'a window near the east edge of a scene runs off it',
    ),
    Mutant(
        'retry-one-too-many',
        'builders/reading.py',
        'if not _is_transient(error) or attempt >= self.max_retries:',
        'if not _is_transient(error) or attempt > self.max_retries:',
        ('tests/builders/test_stac_reading.py',),
        'a transient error is retried max_retries + 1 times',
    ),
    Mutant(
        'stac-cloud-maximum-inclusive',
        'builders/stac.py',
        'if _cloud_cover(item) < max_cloud_cover',
        'if _cloud_cover(item) <= max_cloud_cover',
        ('tests/builders/test_stac_reading.py',),
        'an item exactly at the cloud maximum is kept ("below" means strictly)',
    ),
    # ----------------------------------------------------------- evaluation
    Mutant(
        'folds-refuse-one-point-per-fold',
        'evaluation/probe.py',
        'if n < folds:',
        'if n <= folds:',
        ('tests/evaluation/test_probe.py',),
        'random k-fold refuses exactly k points',
    ),
    Mutant(
        'spatial-block-keys-collide',
        'evaluation/probe.py',
        'np.stack([col, row], axis=1), axis=0, return_inverse=True',
        'col + row, axis=0, return_inverse=True',
        ('tests/evaluation/test_probe.py',),
        'spatial blocks on the same anti-diagonal merge into one block',
    ),
    Mutant(
        'references-wrong-split',
        'evaluation/references.py',
        "'R2', value, 'linear', 'range', RANGE_SOURCE",
        "'R2', value, 'linear', 'random', RANGE_SOURCE",
        ('tests/evaluation/test_references.py',),
        "RANGE's own-split figures compared with random k-fold results",
    ),
]

#: A mutant that must be caught: proves the copy is what the tests import.
CANARY = Mutant(
    'canary',
    'geo/lonlat.py',
    'return 2 * EARTH_RADIUS_KM * torch.asin(torch.sqrt(h.clamp(0, 1)))',
    'raise RuntimeError("canary: the copy is what is tested")',
    ('tests/geo/test_lonlat.py',),
    'great_circle_km raises (must be killed)',
)


def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {'.git', '__pycache__', '.mypy_cache', '.ruff_cache', '.pytest_cache'}
    skip |= {'.hypothesis', 'lightning_logs', '.venv', '.ci-legs'}
    return {name for name in names if name in skip or name.endswith('.egg-info')}


def _pytest(copy: Path, tests: tuple[str, ...]) -> tuple[bool, str, float]:
    """Run pytest in the copy; return (passed, last line, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE='1')
    command = [
        sys.executable,
        '-m',
        'pytest',
        '-x',
        '-q',
        '-p',
        'no:cacheprovider',
        *tests,
    ]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return False, f'timed out after {TIMEOUT} s', time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, lines[-1] if lines else '', time.monotonic() - started


def _snippet_count(copy: Path, mutant: Mutant) -> str:
    """The text of a mutant's file in the copy; exit unless the snippet is once in it."""
    text = (copy / PACKAGE / mutant.file).read_text()
    count = text.count(mutant.original)
    if count != 1:
        raise SystemExit(
            f'{mutant.name}: the snippet occurs {count} times in {mutant.file}'
        )
    return text


def _tests(copy: Path, mutant: Mutant) -> tuple[str, ...]:
    """The mutant's test files that exist (a new one may not exist yet)."""
    return tuple(t for t in mutant.tests if (copy / t).is_file())


def _run(copy: Path, mutant: Mutant) -> tuple[bool, str, float]:
    """Whether the tests pass with the mutant applied (it survives)."""
    path = copy / PACKAGE / mutant.file
    text = _snippet_count(copy, mutant)
    path.write_text(text.replace(mutant.original, mutant.replacement))
    try:
        return _pytest(copy, _tests(copy, mutant))
    finally:
        path.write_text(text)


def main() -> int:
    """Run the mutants given on the command line (default: all)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('names', nargs='*', help='mutants to run (default: all)')
    parser.add_argument('--list', action='store_true', help='list the mutants')
    args = parser.parse_args()
    if args.list:
        for m in MUTANTS:
            print(f'{m.name:38} {m.file:28} {m.description}')
        return 0
    known = {m.name: m for m in MUTANTS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f'unknown mutants: {", ".join(unknown)}')
    mutants = [known[name] for name in args.names] or MUTANTS
    with tempfile.TemporaryDirectory(prefix='mutants-') as tmp:
        copy = Path(tmp) / 'repo'
        shutil.copytree(ROOT, copy, ignore=_ignore)
        for mutant in mutants:  # every snippet must be where it is expected
            _snippet_count(copy, mutant)
        files = tuple(sorted({t for m in mutants for t in _tests(copy, m)}))
        passed, line, seconds = _pytest(copy, files)
        print(f'baseline (unmutated copy): {line} [{seconds:.0f} s]', flush=True)
        if not passed:
            print('the unmutated copy fails its tests: fix that first')
            return 2
        survived, line, _ = _run(copy, CANARY)
        if survived:
            print('the canary survived: the tests do not import the copy')
            return 2
        print(f'canary killed: {line}', flush=True)
        survivors = []
        for mutant in mutants:
            survived, line, seconds = _run(copy, mutant)
            status = 'SURVIVED' if survived else 'killed'
            print(f'{status:8} {mutant.name:38} [{seconds:4.0f} s] {line}', flush=True)
            if survived:
                survivors.append(mutant)
    print()
    for mutant in survivors:
        print(f'survivor: {mutant.name} ({mutant.file}): {mutant.description}')
    rate = len(survivors) / len(mutants)
    print(f'survival rate: {len(survivors)}/{len(mutants)} = {rate:.0%}')
    return 1 if survivors else 0


if __name__ == '__main__':
    sys.exit(main())
