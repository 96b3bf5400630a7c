# Shared by scripts/run.sh and scripts/test.sh: find Python 3.11, keep .venv in step with
# the pinned requirements, check Debian packages.

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "galaxylab needs Python 3.11 (Django 5.2 LTS and the pinned torch==2.13.0 wheel); set PYTHON=/path/to/python3.11" >&2
  return 1
}

# ensure_venv REQUIREMENTS_FILE: creates .venv if missing and installs the pinned
# requirements when they changed since the last install (a hash stamp in .venv).
ensure_venv() {
  local requirements=$1
  if [ ! -x .venv/bin/python ]; then
    local python
    python=$(find_python)
    echo "==> creating .venv with $python"
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-$(basename "$requirements")"
  local digest
  digest=$(cat "$requirements" requirements.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "==> installing $requirements into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements"
    echo "$digest" > "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# ensure_debian_packages PKG...: installs missing packages when root, otherwise says what to run.
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    echo "missing Debian packages; install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}
