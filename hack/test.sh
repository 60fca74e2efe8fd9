#!/usr/bin/env bash
# The whole test suite, from a fresh machine: setup, lint, types, generated files, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh --all

step() { printf '\n==> %s\n' "$*"; }
step "ruff (lint and format)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "mypy --strict on the package"
.venv/bin/mypy
step "import layers"
.venv/bin/lint-imports
step "generated CRDs are current"
.venv/bin/devserver-operator crds --check crds
.venv/bin/devserver-operator reference --check docs/reference.md
.venv/bin/devserver-operator manifests --check .
step "pytest, with branch coverage"
# Two workers, each with its own control plane and n8n: most tests wait on servers, so two
# files at a time halve the wall time on two cores. A file stays on one worker (its
# module-scoped fixtures, e.g. the fuzz run, are built once).
# Coverage (pyproject.toml, [tool.coverage.*]) measures both workers and every operator
# process the tests start, and combines them: the table below, HTML and XML in coverage/.
rm -rf coverage && mkdir -p coverage/data
.venv/bin/pytest -n 2 --dist loadfile --durations=15 \
  --cov --cov-report=term-missing:skip-covered --cov-report=html --cov-report=xml "$@"
# The floors hold for the whole suite; a run of a part (arguments) only reports.
if [ "$#" -eq 0 ]; then
  step "coverage floors (api/ and builders/ >= 95 %, all >= 85 %)"
  .venv/bin/python hack/coverage_floors.py
fi
