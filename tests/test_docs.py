"""The documentation builds with Sphinx, and the commands, names and paths it gives exist."""

import argparse
import ast
import importlib
import inspect
import re
import types
from pathlib import Path
from typing import Any

import pytest
from sphinx.cmd.build import build_main

DOCS = Path(__file__).parents[1] / 'docs'


@pytest.mark.filterwarnings('ignore::DeprecationWarning')  # Sphinx/MyST internals
@pytest.mark.filterwarnings('ignore::PendingDeprecationWarning')
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    status = build_main(
        ['-W', '--keep-going', '-q', '-b', 'html', str(DOCS), str(tmp_path)]
    )
    assert status == 0
    api = (tmp_path / 'api.html').read_text()
    for name in (
        'torchgeo_satclip.models.weights.load_location_encoder',
        'torchgeo_satclip.models.spherical_harmonics.SphericalHarmonics',
        'torchgeo_satclip.datasets.s2_100k.S2100K',
        'torchgeo_satclip.tasks.satclip.SatCLIPTask',
    ):
        assert f'id="{name}"' in api, name


def test_yaml_examples_use_full_class_paths() -> None:
    """Every class_path in the docs and README imports as written."""
    import importlib
    import re

    pages = [*DOCS.glob('*.md'), DOCS.parent / 'README.md']
    found = 0
    for page in pages:
        for path in re.findall(r'class_path:\s*([\w.]+)', page.read_text()):
            module, _, name = path.rpartition('.')
            assert module, f'{page.name}: class_path {path!r} is not a full dotted path'
            assert hasattr(importlib.import_module(module), name), (page.name, path)
            found += 1
    assert found > 0


def test_intersphinx_on_online_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online builds link to torch, torchgeo and lightning; offline ones skip it."""
    import runpy

    offline = runpy.run_path(str(DOCS / 'conf.py'))
    assert 'sphinx.ext.intersphinx' not in offline['extensions']
    monkeypatch.setenv('SATCLIP_DOCS_ONLINE', '1')
    online = runpy.run_path(str(DOCS / 'conf.py'))
    assert 'sphinx.ext.intersphinx' in online['extensions']
    assert {'torch', 'torchgeo', 'lightning'} <= set(online['intersphinx_mapping'])


#: Pages whose commands, names and paths are checked against the code: the
#: README, every docs page but cli.md (the parser's own ``--help``, checked by
#: test_cli_reference.py) and the configs, whose comments give commands.
CHECKED_PAGES = sorted(
    [
        DOCS.parent / 'README.md',
        *(p for p in DOCS.glob('*.md') if p.name != 'cli.md'),
        *DOCS.glob('*.rst'),
        *(DOCS.parent / 'configs').glob('*.yaml'),
    ]
)


def code_lines(text: str) -> list[str]:
    """The code of a page: lines of fenced blocks and comments, inline spans.

    Continuation lines (a trailing backslash, in a YAML comment too) are
    joined, and an inline span's line breaks become spaces.
    """
    text = re.sub(r'\\\n[\s#]*', ' ', text)
    fence = re.compile(r'^```[^\n]*\n(.*?)^```', re.S | re.M)
    lines = [line for block in fence.findall(text) for line in block.splitlines()]
    prose = fence.sub('', text)
    lines += [
        ' '.join(span.split())
        for span in re.findall(r'`([^`\n]+(?:\n[^`\n]+)*)`', prose)
    ]
    lines += [line for line in text.splitlines() if line.lstrip().startswith('#')]
    return lines


def command_words(line: str, command: str) -> list[list[str]]:
    """The words after each *command* in *line*, up to a shell operator."""
    pattern = rf'(?<![\w/-]){re.escape(command)}((?:[ \t]+[^\s|;&)#`]+)*)'
    return [match.group(1).split() for match in re.finditer(pattern, line)]


def flag(word: str) -> str | None:
    """The option a command-line word names (``--size`` of ``--size=3``), if any."""
    match = re.fullmatch(r'(--?[A-Za-z][\w-]*)(=.*)?', word)
    return match.group(1) if match else None


def test_documented_cli_options_exist() -> None:
    """Every `torchgeo-satclip SUB --option` in the docs is an option of SUB."""
    from torchgeo_satclip.cli import build_parser

    parser = build_parser()
    (subparsers,) = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    top = {f for a in parser._actions for f in a.option_strings}
    found, wrong = 0, []
    for page in CHECKED_PAGES:
        for line in code_lines(page.read_text()):
            for words in command_words(line, 'torchgeo-satclip'):
                found += 1
                options, sub = top, None
                for word in words:
                    name = flag(word)
                    if name is None and sub is None:
                        sub = word
                        if sub not in subparsers.choices:
                            wrong.append(f'{page.name}: no subcommand {sub!r}: {line}')
                            break
                        sub_parser = subparsers.choices[sub]
                        options = {
                            f for a in sub_parser._actions for f in a.option_strings
                        }
                    elif name is not None and name not in options:
                        where = f'torchgeo-satclip {sub}' if sub else 'torchgeo-satclip'
                        wrong.append(f'{page.name}: {where} has no {name}: {line}')
    assert found > 20
    assert not wrong, '\n'.join(wrong)


def script_options(path: Path) -> set[str]:
    """The options a benchmark script's parser declares (``add_argument``)."""
    options = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == 'add_argument'
        ):
            options |= {
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            }
    return options


def test_documented_benchmark_options_exist() -> None:
    """Every `benchmarks/NAME.py --option` (or `.sh`) in the docs is in its parser."""
    found, wrong = 0, []
    for page in CHECKED_PAGES:
        for line in code_lines(page.read_text()):
            for script in sorted(set(re.findall(r'benchmarks/\w+\.(?:py|sh)', line))):
                # A shell wrapper passes its options to the script of its name.
                path = DOCS.parent / script
                parser = path.with_suffix('.py')
                options = script_options(parser) if parser.exists() else set()
                for words in command_words(line, script):
                    found += 1
                    for word in words:
                        option = flag(word)
                        if option and option not in options:
                            wrong.append(
                                f'{page.name}: {script} has no {option}: {line}'
                            )
    assert found > 5
    assert not wrong, '\n'.join(wrong)


def test_documented_names_import() -> None:
    """Every `torchgeo_satclip.a.b` named in the docs imports or is an attribute."""
    found, wrong = set(), []
    for page in CHECKED_PAGES:
        for name in set(re.findall(r'torchgeo_satclip(?:\.\w+)+', page.read_text())):
            found.add(name)
            parts = name.split('.')
            for i in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module('.'.join(parts[:i]))
                except ModuleNotFoundError:
                    continue
                for j, part in enumerate(parts[i:], i):
                    if not hasattr(obj, part):
                        wrong.append(
                            f'{page.name}: {".".join(parts[:j])} has no {part}'
                        )
                        break
                    obj = getattr(obj, part)
                break
    assert len(found) > 50
    assert not wrong, '\n'.join(sorted(wrong))


def test_documented_repository_paths_exist() -> None:
    """Every `configs/...`, `benchmarks/...`, `tests/...` path in the docs exists."""
    root = DOCS.parent
    found, wrong = 0, []
    prefixes = 'configs|benchmarks|tests|examples|docs|torchgeo_satclip'
    for page in CHECKED_PAGES:
        for path in re.findall(
            rf'(?<![\w/.-])(?:{prefixes})/[\w./-]*', page.read_text()
        ):
            path = path.rstrip('.-')
            if path.startswith('docs/_build'):  # the Sphinx build's output
                continue
            found += 1
            if not (root / path).exists():
                wrong.append(f'{page.name}: {path}')
    assert found > 20
    assert not wrong, '\n'.join(sorted(set(wrong)))


def test_readme_packed_speed_up_is_performance_md_s() -> None:
    """The README's packed-vs-GeoTIFF factor is the range of performance.md's table."""
    table = (DOCS / 'performance.md').read_text().split('## This machine')[1]
    ratios = []
    for row in re.findall(r'^\| \d+ \| \d+ \|.*\|$', table, re.M):
        cells = [float(c.replace(',', '')) for c in row.strip('|').split('|')]
        geotiff, threads = cells[2], cells[5]
        ratios.append(threads / geotiff)
    assert len(ratios) == 4
    readme = ' '.join((DOCS.parent / 'README.md').read_text().split())
    low, high = round(min(ratios)), round(max(ratios))
    assert f'reads {low} to {high} times as many images per loader thread' in readme


def test_precision_worst_cases_lie_on_their_grids() -> None:
    """Each worst-case latitude precision.md gives is a latitude of its grid.

    The page quotes `location_encoder.py --precision --grid`: a grid of N
    latitudes from LOW to HIGH (-90 to 90 when it names none), and the
    latitude of the worst error on it, rounded to two decimals.
    """
    text = ' '.join((DOCS / 'precision.md').read_text().split())
    grids = re.findall(
        r'grid of ([\d,]+) latitudes (?:from (-?[\d.]+) to (-?[\d.]+) )?'
        r'by \d+ longitudes.*?at latitude (-?[\d.]+)',
        text,
    )
    for count, low, high, latitude in grids:
        n, lo, hi = int(count.replace(',', '')), float(low or -90), float(high or 90)
        step = (hi - lo) / (n - 1)
        nearest = lo + round((float(latitude) - lo) / step) * step
        assert lo <= nearest <= hi
        assert abs(nearest - float(latitude)) <= 0.005 + 1e-9, (
            f'latitude {latitude} is not on the grid of {n} latitudes '
            f'from {lo:g} to {hi:g} (nearest: {nearest:.5f})'
        )
    assert len(grids) >= 2  # the whole sphere and next to the pole


#: The six released checkpoint files on the Hugging Face hub, in MB, smallest
#: and largest (the hub's file lists, as the SatCLIP spec of the project records
#: them): nothing here downloads them, so the docs may only quote this range.
CHECKPOINT_MB = (57, 130)


def test_checkpoint_sizes_are_the_hubs() -> None:
    """Every size the README and docs give for the released checkpoints is the hub's."""
    found, wrong = 0, []
    for page in CHECKED_PAGES:
        text = ' '.join(page.read_text().split())
        for sentence in re.split(r'(?<=[.:;])\s', text):
            if not re.search(r'checkpoint|SATCLIP_\w+_L\d+|SatCLIP weights', sentence):
                continue
            if re.search(r'(?:hundreds|tens) of megabytes', sentence):
                wrong.append(f'{page.name}: {sentence}')
            for size in re.findall(r'(\d+) MB', sentence):
                found += 1
                if not CHECKPOINT_MB[0] <= int(size) <= CHECKPOINT_MB[1]:
                    wrong.append(f'{page.name}: {size} MB: {sentence}')
            for low, high in re.findall(r'(\d+) to (\d+) MB', sentence):
                if (int(low), int(high)) != CHECKPOINT_MB:
                    wrong.append(f'{page.name}: {low} to {high} MB: {sentence}')
            if re.search(r'about \d+ MB', sentence):
                wrong.append(f'{page.name}: one size for all: {sentence}')
    assert found >= 1
    assert not wrong, '\n'.join(wrong)


def test_full_s2_100k_size_is_its_packed_size() -> None:
    """A size in GB the docs give for the full S2-100K is the packed layout's.

    12 bands x 256 x 256 uint16 values per patch, 100,000 patches: 157 GB
    (as `pack --help` says); the packed layout is what its page faults and
    page cache concern.
    """
    packed = round(12 * 256 * 256 * 2 * 100_000 / 1e9)
    found, wrong = 0, []
    for page in [*CHECKED_PAGES, DOCS / 'cli.md']:
        text = ' '.join(page.read_text().split())
        for sentence in re.split(r'(?<=[.;])\s', text):
            if not re.search(r'S2-100K|full set', sentence):
                continue
            for size in re.findall(r'(\d+) GB\b', sentence):
                found += 1
                if int(size) != packed:
                    wrong.append(f'{page.name}: {size} GB, not {packed}: {sentence}')
    assert found >= 2
    assert not wrong, '\n'.join(wrong)


def init_parameters(*classes: type) -> set[str]:
    """The constructor parameters of *classes*."""
    return {name for cls in classes for name in inspect.signature(cls).parameters} - {
        'args',
        'kwargs',
    }


def test_documented_config_keys_exist() -> None:
    """Every `key: value` and `--model.init_args.key` in the docs is an argument."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from torchgeo_satclip import datamodules, tasks
    from torchgeo_satclip.datasets import S2100K

    def classes(module: types.ModuleType) -> list[type]:
        return [
            obj
            for name in module.__all__
            if inspect.isclass(obj := getattr(module, name))
        ]

    groups = {
        'model.init_args': init_parameters(*classes(tasks)),
        'data.init_args': init_parameters(*classes(datamodules)),
        'data.dict_kwargs': init_parameters(S2100K),
        'trainer': init_parameters(Trainer),
    }
    anywhere = set().union(*groups.values()) | init_parameters(ModelCheckpoint)
    found, wrong = 0, []
    for page in CHECKED_PAGES:
        if page.suffix == '.yaml':  # whole configs: instantiated by the task tests
            continue
        text = page.read_text()
        for group, key in re.findall(
            r'--(model\.init_args|data\.init_args|data\.dict_kwargs|trainer)\.(\w+)',
            text,
        ):
            found += 1
            if key not in groups[group]:
                wrong.append(f'{page.name}: --{group}.{key}')
        for key in re.findall(r'`([a-z][a-z0-9_]*): [^`\n]+`', text):
            found += 1
            if key not in anywhere:
                wrong.append(f'{page.name}: `{key}: ...`')
    assert found > 30
    assert not wrong, '\n'.join(sorted(set(wrong)))


#: The package's parts whose public names the docs call.
PARTS = (
    'geo',
    'models',
    'datasets',
    'datamodules',
    'tasks',
    'transforms',
    'builders',
    'embed',
    'evaluation',
)


def test_documented_keyword_arguments_exist() -> None:
    """Every `Name(..., keyword=...)` of a package name in the docs is accepted."""
    public: dict[str, Any] = {}
    for part in PARTS:
        module = importlib.import_module(f'torchgeo_satclip.{part}')
        public |= {name: getattr(module, name) for name in module.__all__}
    call = re.compile(r'\b([A-Za-z_]\w*)(?:\.(\w+))?\(([^()]*(?:\([^()]*\)[^()]*)*)\)')
    found, wrong = 0, []
    for page in CHECKED_PAGES:
        for name, method, args in call.findall(page.read_text()):
            if name not in public:
                continue
            target = getattr(public[name], method) if method else public[name]
            parameters = inspect.signature(target).parameters
            if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
                continue
            for keyword in re.findall(r'(?<![=\w.])(\w+)=(?!=)', args):
                found += 1
                if keyword not in parameters:
                    wrong.append(
                        f'{page.name}: {name}{"." + method if method else ""}({keyword}=)'
                    )
    assert found > 15
    assert not wrong, '\n'.join(sorted(set(wrong)))
