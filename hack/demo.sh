#!/usr/bin/env bash
# The main job on an embedded default: set up, then show what the operator does with the
# examples. Extra arguments go to `devserver-operator dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh --all
if .venv/bin/devserver-operator dev --help >/dev/null 2>&1; then
  exec .venv/bin/devserver-operator dev "$@"
fi
printf '\n==> children the operator would apply for examples/ (offline render)\n'
exec .venv/bin/devserver-operator render -f examples
