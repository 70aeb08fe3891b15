"""Bad arguments to ``pack_s2_100k`` and ``make_demo_dataset``, refused first.

Generated, table-driven: values of the wrong type (a bool is not a count) and
out of range, and roots that are not datasets. Each case names the argument
or the file, and nothing is written.
"""

import re
from pathlib import Path
from typing import Any

import pytest

from torchgeo_satclip._errors import DataError
from torchgeo_satclip.datasets import pack_s2_100k, verify_packed
from torchgeo_satclip.datasets.demo import make_demo_dataset

PACK: list[tuple[str, Any, str]] = [
    *(
        ('shard_size', v, 'shard_size must be an integer')
        for v in (True, 2.5, '8', None)
    ),
    *(('shard_size', v, 'shard_size must be positive') for v in (0, -1, -1024)),
    *(
        ('num_workers', v, 'num_workers must be an integer')
        for v in (False, 1.5, '2', None)
    ),
    *(('num_workers', v, 'num_workers must be >= 0') for v in (-1, -8)),
    # a string is truthy: overwrite='false' deleted the packed layout
    *(
        (name, v, f'{name} must be True or False, got {v!r}')
        for name in ('overwrite', 'progress')
        for v in ('false', 0, None)
    ),
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / 'dataset'
    (root / 'images').mkdir(parents=True)
    (root / 'index.csv').write_text('fn,lon,lat\npatch_0.tif,1.0,2.0\n')
    return root


@pytest.mark.parametrize(
    ('name', 'value', 'fragment'), PACK, ids=[f'{n}={v!r}' for n, v, _ in PACK]
)
def test_pack_arguments(dataset: Path, name: str, value: Any, fragment: str) -> None:
    before = sorted(dataset.rglob('*'))
    with pytest.raises(ValueError, match=re.escape(fragment)):
        pack_s2_100k(dataset, **{'progress': False, name: value})
    assert sorted(dataset.rglob('*')) == before


@pytest.mark.parametrize(
    ('setup', 'error', 'fragment'),
    [
        ('absent', FileNotFoundError, 'index.csv not found'),
        ('file', FileNotFoundError, 'index.csv not found'),
        # faults of the data (the command line's exit status 1), still
        # caught by the ``except`` of the error they were before
        ('empty-index', (DataError, ValueError), 'index.csv lists no files'),
        ('missing-images', (DataError, FileNotFoundError), '1 files listed in'),
    ],
)
def test_pack_roots(
    tmp_path: Path,
    setup: str,
    error: type[Exception] | tuple[type[Exception], ...],
    fragment: str,
) -> None:
    root = tmp_path / 'root'
    if setup == 'file':
        root.write_text('x')
    elif setup == 'empty-index':
        root.mkdir()
        (root / 'index.csv').write_text('fn,lon,lat\n')
    elif setup == 'missing-images':
        (root / 'images').mkdir(parents=True)
        (root / 'index.csv').write_text('fn,lon,lat\npatch_0.tif,1,2\n')
    errors = error if isinstance(error, tuple) else (error,)
    with pytest.raises(errors[0], match=re.escape(fragment)) as info:
        pack_s2_100k(root, progress=False)
    assert all(isinstance(info.value, e) for e in errors), type(info.value).__mro__
    assert isinstance(info.value, DataError) == (setup not in ('absent', 'file'))
    assert str(root) in str(info.value)
    assert not (root / 'packed').exists() or setup == 'missing-images'


DEMO: list[tuple[str, Any, str]] = [
    *(
        (name, v, f'{name} must be an integer')
        for name in ('num_patches', 'size', 'seed')
        for v in (True, 2.5, '4', None)
    ),
    *(
        (name, v, f'{name} must be positive')
        for name in ('num_patches', 'size')
        for v in (0, -3)
    ),
    ('seed', -1, 'seed must be >= 0'),
]


@pytest.mark.parametrize(
    ('name', 'value', 'fragment'), DEMO, ids=[f'{n}={v!r}' for n, v, _ in DEMO]
)
def test_demo_arguments(tmp_path: Path, name: str, value: Any, fragment: str) -> None:
    kwargs: dict[str, Any] = {'num_patches': 2, 'size': 4, name: value}
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make_demo_dataset(tmp_path / 'demo', progress=False, **kwargs)
    assert not (tmp_path / 'demo').exists()


@pytest.mark.parametrize('value', ['false', 0, None])
def test_verify_progress_is_a_flag(dataset: Path, value: Any) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f'progress must be True or False, got {value!r}')
    ):
        verify_packed(dataset, progress=value)
