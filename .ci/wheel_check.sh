#!/usr/bin/env bash
# A wheel built from this tree works on a machine without a compiler: build
# it, install it with torch into a fresh virtual environment, then fit a
# small model with only that environment's bin on PATH (no g++, cc...) and an
# empty HOME, and check that the fit ran on the compiled kernel and wrote
# nothing under HOME. pip's cache (of the calling user) makes reruns fast.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip wheel "$repo" --no-deps -w "$tmp/wheels" -q
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q torch==2.13.0 "$tmp"/wheels/skbpr-*.whl
mkdir "$tmp/home" "$tmp/run"
cp .ci/wheel_smoke.py "$tmp/run/"
cd "$tmp/run"  # away from the source tree, so that the installed wheel is imported
env -i PATH="$tmp/venv/bin" HOME="$tmp/home" "$tmp/venv/bin/python" wheel_smoke.py
if [ -n "$(ls -A "$tmp/home")" ]; then
    echo "the fit wrote under HOME:" >&2
    find "$tmp/home" >&2
    exit 1
fi
echo "wheel check: ok (native backend, no compiler on PATH, nothing written under HOME)"
