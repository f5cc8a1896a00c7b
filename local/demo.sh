#!/usr/bin/env bash
# Run the demo: bash local/demo.sh [smartgrid demo arguments].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source local/bootstrap.sh

exec .venv/bin/smartgrid demo "$@"
