"""The region ``build.json`` records, whichever way it was given.

``build_dataset`` takes the region as an argument (a mapping, a GeoJSON file
or a :class:`Region`) or inside ``config=BuildConfig(region=...)``. Both must
record the same geometry (the region as sampled: unioned, split at the
antimeridian, normalised), so that a root built one way resumes the other
way; and a ``build.json`` written before they did (the argument's region
unioned, the config's as written) must still resume with the call that
wrote it. The point stream stays the one of the region given.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import shapely  # type: ignore[import-untyped]
from shapely.geometry import mapping, shape  # type: ignore[import-untyped]

from torchgeo_satclip.builders import BuildConfig, build_dataset
from torchgeo_satclip.geo import Region

from .fake_stac import SCENES, FakeStacServer
from .test_planetary_computer import index_rows, run_options


def overlapping_halves() -> dict[str, Any]:
    """Two overlapping rectangles inside scene A (their union is one polygon).

    Written so, the region is not what its union is: the argument's form
    and the config's form of the region differ until the builder records
    one geometry for both.
    """
    west, south, east, north = shape(SCENES['A'].box(300)).bounds
    width, height = east - west, north - south
    w, e = west + 0.1 * width, east - 0.1 * width
    s, n = south + 0.1 * height, north - 0.1 * height
    middle = (w + e) / 2
    left = shapely.box(w, s, middle + 0.1 * width, n)
    right = shapely.box(middle - 0.1 * width, s, e, n)
    geometry: dict[str, Any] = json.loads(
        json.dumps(mapping(shapely.MultiPolygon([left, right])))
    )
    return geometry


#: A region across the antimeridian, with continuous longitudes (Fiji).
FIJI = {
    'type': 'Polygon',
    'coordinates': [[[177, -19], [182, -19], [182, -15], [177, -15], [177, -19]]],
}


def old_argument_record(region: dict[str, Any]) -> dict[str, Any] | None:
    """The region a ``build_dataset(region=...)`` recorded before the fix."""
    return BuildConfig(region=mapping(Region(region).geometry)).region


def write_build_json(root: Path, config: BuildConfig) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / 'build.json').write_text(config.to_json(), encoding='utf-8')


@pytest.mark.parametrize('region', [overlapping_halves(), FIJI])
def test_both_forms_record_the_same_region(
    tmp_path: Path, server: FakeStacServer, region: dict[str, Any]
) -> None:
    options = run_options(server)
    build_dataset(tmp_path / 'arg', 0, region=region, land=False, **options)
    config = BuildConfig(region=region, land=False)
    build_dataset(tmp_path / 'config', 0, config=config, **options)
    text = (tmp_path / 'arg' / 'build.json').read_text(encoding='utf-8')
    assert (tmp_path / 'config' / 'build.json').read_text(encoding='utf-8') == text
    # A copy of the recipe from build.json records the same, too.
    copy = BuildConfig.from_json(text)
    build_dataset(tmp_path / 'copy', 0, config=copy, **options)
    assert (tmp_path / 'copy' / 'build.json').read_text(encoding='utf-8') == text
    # A GeoJSON file and a Region are the same region.
    path = tmp_path / 'region.geojson'
    path.write_text(json.dumps({'type': 'Feature', 'geometry': region}))
    for given in (path, Region(region)):
        root = tmp_path / type(given).__name__
        build_dataset(root, 0, region=given, land=False, **options)
        assert (root / 'build.json').read_text(encoding='utf-8') == text


@pytest.mark.parametrize('region', [overlapping_halves(), FIJI])
def test_either_form_resumes_the_other(
    tmp_path: Path, server: FakeStacServer, region: dict[str, Any]
) -> None:
    options = run_options(server)
    config = BuildConfig(region=region, land=False)
    build_dataset(tmp_path / 'a', 0, region=region, land=False, **options)
    build_dataset(tmp_path / 'a', 0, config=config, **options)
    build_dataset(tmp_path / 'b', 0, config=config, **options)
    build_dataset(tmp_path / 'b', 0, region=region, land=False, **options)


@pytest.mark.parametrize('region', [overlapping_halves(), FIJI])
@pytest.mark.parametrize('form', ['argument', 'config'])
def test_build_json_written_before_resumes(
    tmp_path: Path, server: FakeStacServer, region: dict[str, Any], form: str
) -> None:
    """A root of the old code resumes with the call that made it, or the other."""
    old = BuildConfig(
        region=old_argument_record(region) if form == 'argument' else region,
        land=False,
    )
    write_build_json(tmp_path, old)
    text = (tmp_path / 'build.json').read_text(encoding='utf-8')
    options = run_options(server)
    build_dataset(tmp_path, 0, region=region, land=False, **options)
    build_dataset(tmp_path, 0, config=BuildConfig(region=region, land=False), **options)
    build_dataset(tmp_path, 0, config=BuildConfig.from_json(text), **options)
    # The record is left as the build that made it wrote it.
    assert (tmp_path / 'build.json').read_text(encoding='utf-8') == text


def test_other_region_still_refused(tmp_path: Path, server: FakeStacServer) -> None:
    options = run_options(server)
    write_build_json(tmp_path, BuildConfig(region=overlapping_halves(), land=False))
    with pytest.raises(ValueError, match=r'built with other parameters .*region: '):
        build_dataset(tmp_path, 0, region=SCENES['A'].box(300), land=False, **options)
    # A build.json whose region is no region (edited by hand) is told apart.
    broken = json.loads((tmp_path / 'build.json').read_text(encoding='utf-8'))
    broken['region']['coordinates'][0][0][1][1] = 89.0  # the ring crosses itself
    (tmp_path / 'build.json').write_text(json.dumps(broken), encoding='utf-8')
    with pytest.raises(ValueError, match=r'built with other parameters .*region: '):
        build_dataset(tmp_path, 0, region=overlapping_halves(), land=False, **options)


def test_resumed_in_the_other_form_continues_the_stream(
    tmp_path: Path, server: FakeStacServer
) -> None:
    """Same points as one run: the stream is the region's, whatever its form."""
    region = overlapping_halves()
    options = run_options(server)
    build_dataset(tmp_path / 'a', 1, region=region, land=False, **options)
    config = BuildConfig(region=region, land=False)
    result = build_dataset(tmp_path / 'a', 2, config=config, **options)
    assert result.num_resumed == 1
    assert result.complete
    build_dataset(tmp_path / 'b', 2, region=region, land=False, **options)
    assert sorted(index_rows(tmp_path / 'a')) == sorted(index_rows(tmp_path / 'b'))
