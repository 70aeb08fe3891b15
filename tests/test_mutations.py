"""The curated mutants (``tests/mutations.py``) can still be planted.

A mutant whose snippet no longer occurs exactly once in its file cannot be
applied: the run stops at it, and the bug it stands for goes unchecked. These
tests read the files only (no copy of the repository, no pytest run), so a
change that moves a snippet fails here, beside the change.
"""

import pytest

from .mutations import CANARY, MUTANTS, PACKAGE, ROOT, Mutant

EVERY = [*MUTANTS, CANARY]


def test_mutants_have_distinct_names() -> None:
    names = [m.name for m in EVERY]
    assert len(names) == len(set(names))


@pytest.mark.parametrize('mutant', EVERY, ids=[m.name for m in EVERY])
def test_mutant_snippet_occurs_once_in_its_file(mutant: Mutant) -> None:
    path = ROOT / PACKAGE / mutant.file
    assert path.is_file(), f'{mutant.name}: no file {path}'
    text = path.read_text(encoding='utf-8')
    count = text.count(mutant.original)
    assert count == 1, (
        f'{mutant.name}: its snippet occurs {count} times in {mutant.file} '
        '(expected once): update it to plant the same bug in the current code'
    )
    assert mutant.replacement != mutant.original, f'{mutant.name} changes nothing'


@pytest.mark.parametrize('mutant', EVERY, ids=[m.name for m in EVERY])
def test_mutant_test_files_exist(mutant: Mutant) -> None:
    assert mutant.tests, f'{mutant.name} names no test file'
    missing = [t for t in mutant.tests if not (ROOT / t).is_file()]
    assert not missing, f'{mutant.name}: no test file {missing}'
