# Sourced by scripts/run and scripts/test: make .venv with the pinned requirements.
# Usage: . scripts/setup.sh requirements.txt|requirements-dev.txt
set -euo pipefail
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Local Video Server needs Python 3.11 or newer (found: $("$py" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv ..." >&2
  if ! "$py" -m venv .venv 2>/dev/null; then
    # Debian ships venv's pip bootstrap separately (python3-venv).
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing Debian's python3-venv ..." >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    if ! "$py" -m venv .venv; then
      echo "python3 -m venv failed: on Debian, install it with: sudo apt-get install -y python3-venv" >&2
      exit 1
    fi
  fi
fi
stamp=".venv/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-$req"
if [ ! -e "$stamp" ]; then
  echo "Installing $req into .venv ..." >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
export FLASK_APP=app
