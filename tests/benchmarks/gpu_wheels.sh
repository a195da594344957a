#!/usr/bin/env bash
# The plate libraries for the lent GPU machine (issue 27), which has python3 3.12 with torch,
# numpy, safetensors, huggingface_hub and opencv but no OpenImageIO, OpenColorIO, OpenEXR or
# OTIO, and no package index. Downloads their cp312 manylinux wheels (about 20 MB; PyAV, 35 MB,
# is left out: no movie path is measured) into gpu_wheels/ at the repository root (ignored by
# git; carry it to the device), then prints the one command to run there.
#
#     bash tests/benchmarks/gpu_wheels.sh          # PY_VERSION=3.13 for another python
#
# vrmbg itself is not installed there by default: gpu_check.py maps vrmbg.core and vrmbg.plugin
# onto the source tree when vrmbg is not importable (the tree is the code under test; an
# install copies it, and would miss a sub-package that pyproject.toml does not list yet).
# INSTALL_VRMBG=1 adds the setuptools wheel and prints the command that installs vrmbg with
# `pip install --no-deps --no-build-isolation --target` first: a python 3.12 venv has no
# setuptools, and without it that install fails (checked with a bare python 3.12).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/gpu_wheels"
PY_VERSION="${PY_VERSION:-3.12}"
PYTHON="${PYTHON:-$( [ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
# The engine's plate, colour and edit libraries at the versions the project tests with, PyYAML
# (OCIO configs, OTIO adapters) and nvidia-ml-py (pynvml: torch.cuda.utilization, the GPU
# busy fraction; it talks to the driver's libnvidia-ml).
PACKAGES=(openimageio==3.2.2.0 opencolorio==2.6.0 OpenEXR==3.5.3 opentimelineio==0.18.1
          otio-cmx3600-adapter==1.0.0 pyyaml==6.0.3 nvidia-ml-py==13.615.71)
if [ "${INSTALL_VRMBG:-0}" = 1 ]; then PACKAGES+=(setuptools==84.2.1); fi

mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # exactly the wheels below, nothing left from an earlier run
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --dest "$DEST" "${PACKAGES[@]}" 2>&1 \
    | grep -v "^WARNING: Location" >&2 || true
for package in "${PACKAGES[@]}"; do  # pip's exit status was filtered above: check each wheel
    stem="$(echo "${package%%==*}" | tr 'A-Z-' 'a-z_')"
    ls "$DEST" | tr 'A-Z' 'a-z' | grep -q "^${stem}-" || { echo "missing: $package" >&2; exit 1; }
done
ls -l "$DEST"/*.whl | awk '{printf "%8.1f MB  %s\n", $5 / 1e6, $NF}'
du -sh "$DEST"

RUN="PYTHONPATH=/tmp/deps python3 tests/benchmarks/gpu_check.py"
SETUP="python3 -m pip install -q --no-index --no-deps --target /tmp/deps gpu_wheels/*.whl"
if [ "${INSTALL_VRMBG:-0}" = 1 ]; then
    SETUP="$SETUP && PYTHONPATH=/tmp/deps python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/vr ."
    RUN="PYTHONPATH=/tmp/deps:/tmp/vr python3 tests/benchmarks/gpu_check.py"
fi
COMMAND="python3 -c 'import sys, torch; print(sys.version, torch.__version__, torch.cuda.is_available())' && $SETUP && $RUN --out \$OUT/gpu_check.json > \$OUT/gpu_check.stdout 2> \$OUT/gpu_check.stderr; tail -c 2500 \$OUT/gpu_check.stderr; python3 -c \"import json; r = json.load(open('\$OUT/gpu_check.json')); print(json.dumps({k: r.get(k) for k in ('elapsed_s', 'summary')}, indent=1)); print({k: v.get('status') for k, v in r['sections'].items()})\""
echo
echo "Device command (${#COMMAND} characters; run tool with carry [\"gpu_wheels\"], timeout_s 560;"
echo "the JSON lands in \$OUT/gpu_check.json, written as each section ends):"
echo
echo "$COMMAND"
