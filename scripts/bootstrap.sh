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
# --compile-bytecode and compileall: every service is a fresh Python process, and where
# PYTHONDONTWRITEBYTECODE is set (some sandboxes and CI images set it) nothing would ever be
# cached, so each start compiled ~6,000 modules from source again (2-4 s of CPU per service
# instead of ~1 s). Both skip what is already compiled (~0.5 s together).
"$UV" sync --quiet --frozen --all-packages --compile-bytecode --project "$ROOT" >&2 || {
  echo "whoosh: 'uv sync' failed; see the messages above" >&2
  exit 1
}
"$ROOT/.venv/bin/python" -m compileall -q -j0 "$ROOT/shared" "$ROOT/services" "$ROOT/cli" >/dev/null || {
  echo "whoosh: compiling the workspace's sources failed; see the messages above" >&2
  exit 1
}
