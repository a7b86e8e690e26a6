#!/usr/bin/env bash
# The README's test command: sets up everything the tests need on a fresh machine, then runs
# them. Idempotent: a second run installs nothing new.
#  - Debian packages (when missing, and when root): fuse3 + libfuse2 for the examples'
#    throttled storage, chromium for the report's real-browser test.
#  - a virtual environment at .venv (or $IOPROF_VENV) with ioprof installed editable, with the
#    tf and dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${IOPROF_VENV:-.venv}"

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libfuse.so.2 ] \
  || need+=(libfuse2)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "tests/run.sh: installing Debian packages: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "tests/run.sh: missing ${need[*]} (not root): the tests that need them will skip" >&2
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -e '.[tf,dev]'
exec "$venv/bin/python" -m pytest "$@"
