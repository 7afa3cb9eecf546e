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
