"""``benchmarks/gpu_carry.sh`` counts what travels to the GPU machine, in a scratch repository.

The script's download is skipped (``PYTHON=true``: ``true -m pip ...`` does
nothing), so these tests run offline; the script is copied into a temporary
git repository, whose files it then measures.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MIB = 1 << 20

pytestmark = pytest.mark.skipif(
    shutil.which('git') is None or shutil.which('bash') is None,
    reason='needs git and bash',
)


def git(repo: Path, *args: str) -> None:
    """Run git in *repo*, failing the test on an error."""
    subprocess.run(
        ['git', '-C', str(repo), *args], check=True, capture_output=True, text=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with the script and its stubs committed, and a .gitignore."""
    root = tmp_path / 'repo'
    shutil.copytree(
        ROOT / 'benchmarks' / 'device_stubs', root / 'benchmarks' / 'device_stubs'
    )
    shutil.copy(ROOT / 'benchmarks' / 'gpu_carry.sh', root / 'benchmarks')
    (root / '.gitignore').write_text('ignored/\n', encoding='utf-8')
    git(root, 'init', '-q')
    git(root, 'add', '.')
    git(root, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'x')
    return root


def sparse(path: Path, size: int) -> None:
    """A file of *size* bytes that takes no room on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('wb') as f:
        f.truncate(size)


def carry(repo: Path) -> tuple[subprocess.CompletedProcess[str], int | None]:
    """Run the script (no download); its result and the total MiB it printed."""
    env = {**os.environ, 'PYTHON': 'true'}
    dest = repo.parent / 'whl'
    result = subprocess.run(
        ['bash', str(repo / 'benchmarks' / 'gpu_carry.sh'), str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'with the working tree (\d+) MiB', result.stdout)
    return result, int(found.group(1)) if found else None


def test_counts_the_tracked_files(repo: Path) -> None:
    sparse(repo / 'data.bin', 5 * MIB)
    git(repo, 'add', 'data.bin')
    result, total = carry(repo)
    assert result.returncode == 0, result.stderr
    assert total == 5


def test_a_tracked_file_deleted_from_the_tree_is_left_out(repo: Path) -> None:
    sparse(repo / 'data.bin', 5 * MIB)
    sparse(repo / 'gone.bin', 3 * MIB)
    git(repo, 'add', 'data.bin', 'gone.bin')
    (repo / 'gone.bin').unlink()
    result, total = carry(repo)
    assert result.returncode == 0, result.stderr
    assert 'No such file' not in result.stderr
    assert total == 5


def test_untracked_files_git_does_not_ignore_are_counted(repo: Path) -> None:
    sparse(repo / 'new.bin', 7 * MIB)  # travels with the working tree
    sparse(repo / 'ignored' / 'big.bin', 100 * MIB)  # does not
    result, total = carry(repo)
    assert result.returncode == 0, result.stderr
    assert total == 7


def test_untracked_files_can_pass_the_limit(repo: Path) -> None:
    sparse(repo / 'new.bin', 70 * MIB)
    result, total = carry(repo)
    assert result.returncode == 1
    assert total == 70
    assert 'too large to travel to the GPU machine' in result.stderr


def test_every_file_of_a_long_list_is_counted(repo: Path) -> None:
    # more names than one command line holds (xargs would run du several
    # times, and the last total alone was kept); the large file comes first
    sparse(repo / 'a' / 'large.bin', 9 * MIB)
    many = repo / 'z' / ('d' * 200)
    many.mkdir(parents=True)
    for i in range(1500):
        (many / f'{i:04d}{"f" * 40}.txt').write_bytes(b'')
    git(repo, 'add', '.')
    result, total = carry(repo)
    assert result.returncode == 0, result.stderr
    assert total == 9
