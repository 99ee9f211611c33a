#!/usr/bin/env bash
# Idempotent set-up: a virtual environment with torch, sam2 and this project.
# Re-running takes seconds when nothing changed (a stamp records what was installed).
#   VENV=path            where the environment lives (default: .venv beside this repo)
#   TORCH_INDEX_URL=url  e.g. https://download.pytorch.org/whl/cpu for a small CPU-only torch
#   EXTRAS=test          which extras of the project to install (default: test)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
VENV="${VENV:-$here/.venv}"
EXTRAS="${EXTRAS:-test}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
py="$VENV/bin/python"
stamp="$VENV/.langsam-studio-stamp"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) $TORCH_SPEC $EXTRAS ${TORCH_INDEX_URL:-}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment up to date ($VENV)"
  exit 0
fi

pip_install() {
  # this machine's pip config names index folders that may not exist: drop that noise only
  "$py" -m pip install --disable-pip-version-check -q "$@" \
    2> >(grep -v -e "is neither a file nor a directory" >&2)
}
echo "[setup] installing build tools"
pip_install --upgrade "pip>=24" "setuptools>=77,<82" wheel
echo "[setup] installing $TORCH_SPEC"
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  # shellcheck disable=SC2086
  pip_install $TORCH_SPEC --index-url "$TORCH_INDEX_URL"
else
  # shellcheck disable=SC2086
  pip_install $TORCH_SPEC
fi
if ! "$py" -c "import sam2" 2>/dev/null; then
  echo "[setup] installing sam2 1.1.0 (no build isolation, no CUDA extension)"
  SAM2_BUILD_CUDA=0 pip_install --no-build-isolation "sam2==1.1.0"
fi
echo "[setup] installing langsam-studio[$EXTRAS]"
pip_install -e ".[$EXTRAS]"
echo "$want" > "$stamp"
echo "[setup] done"
