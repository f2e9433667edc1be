#!/usr/bin/env bash
# The whole test suite: builds and installs rjit from this checkout, then runs the Rust tests
# (each in its own process with cargo-nextest when available: the hook is process-global) and
# the Python tests (which include CPython's own regression tests under RJIT=1).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check pytest numpy coverage hypothesis
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps .

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run
else
    cargo test
fi

# Run from tests/python so `import rjit` is the installed package, not ./pyshim.
cd tests/python
python3 -m pytest -q "$@"
