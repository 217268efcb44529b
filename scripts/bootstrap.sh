# Sourced by ./whoosh and ./test: make sure uv and the workspace's environment exist.
# Installs nothing system-wide: uv goes into .tools/ if it is not on PATH already.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$ROOT/.tools/bin/uv" ]; then
  UV="$ROOT/.tools/bin/uv"
else
  echo "whoosh: installing uv into $ROOT/.tools (first run only)" >&2
  python3 -m venv "$ROOT/.tools" && "$ROOT/.tools/bin/pip" install -q uv >&2 || {
    echo "whoosh: could not install uv; install it (https://docs.astral.sh/uv/) and retry" >&2
    exit 1
  }
  UV="$ROOT/.tools/bin/uv"
fi
export UV_PROJECT="$ROOT"
"$UV" sync --quiet --frozen --all-packages --project "$ROOT" >&2 || {
  echo "whoosh: 'uv sync' failed; see the messages above" >&2
  exit 1
}
