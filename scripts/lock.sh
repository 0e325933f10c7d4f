#!/usr/bin/env bash
# Regenerate requirements.lock: the runtime dependencies of pyproject.toml (not the dev extras), at
# the exact versions pip resolves today, installed into a throw-away virtual environment.
# The Docker image installs exactly these (`pip install --no-deps -r requirements.lock`).
# Run it (`make lock`) after changing the dependencies in pyproject.toml, and commit the result.
set -euo pipefail

python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check .
{
  echo "# The image's Python dependencies, exactly: regenerate with \`make lock\` (scripts/lock.sh)."
  echo "# From pyproject.toml's [project] dependencies, resolved for $("$work/venv/bin/python" --version)."
  "$work/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude channel-bridge
} >requirements.lock.new
mv requirements.lock.new requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages" >&2
