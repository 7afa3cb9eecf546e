# Shared by the scripts: make sure .venv exists and holds this checkout's
# package with the extras the caller needs. Re-installs only when
# pyproject.toml changed since the last install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
python="${PYTHON:-python3}"

ensure_venv() {
  local extras="$1"
  local stamp="$venv/.flowdesk-installed-$extras"
  if [ ! -x "$venv/bin/python" ]; then
    echo "Creating the virtual environment in .venv ..."
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing flowdesk${extras:+ with [$extras]} into .venv ..."
    if [ -n "$extras" ]; then
      "$venv/bin/python" -m pip install --quiet -e ".[$extras]"
    else
      "$venv/bin/python" -m pip install --quiet -e .
    fi
    touch "$stamp"
  fi
}

# The flow editor's code editors are bundled from frontend/ into
# src/flowdesk/web/static/dist with npm. Rebuilt when a source or the lock file
# is newer than the last build; without npm the pages fall back to plain text
# areas, so this warns instead of stopping.
ensure_frontend() {
  local frontend="$root/frontend"
  local dist="$root/src/flowdesk/web/static/dist"
  local stamp="$dist/.built"
  if [ -f "$stamp" ] && [ -z "$(find "$frontend/package.json" \
      "$frontend/package-lock.json" "$frontend/build.mjs" "$frontend/src" \
      -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is not installed, so the flow editor uses plain text areas." >&2
    return 0
  fi
  echo "Building the flow editor's front-end into $dist ..."
  if (cd "$frontend" \
      && { [ "node_modules/.package-lock.json" -nt package-lock.json ] \
           || npm ci --no-audit --no-fund --loglevel=error; } \
      && npm run --silent build); then
    touch "$stamp"
  else
    echo "The front-end did not build; the flow editor uses plain text areas." >&2
  fi
}
