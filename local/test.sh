#!/usr/bin/env bash
# Run the tests: bash local/test.sh [pytest arguments]. No tests collected counts as a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source local/bootstrap.sh

status=0
.venv/bin/pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; counting that as a failure" >&2
fi
exit "$status"
