# Sourced by the bin/ scripts once they have set $root: the project's environment and what it needs.
# VENV is where runqy is installed (editable, with its test extras): $RUNQY_VENV, else .venv.
VENV="${RUNQY_VENV:-$root/.venv}"

# Create $VENV and install runqy into it when it is missing or setup.cfg changed since the last install.
ensure_venv() {
  local stamp="$VENV/.runqy-installed"
  if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ "$root/setup.cfg" -nt "$stamp" ]; then
    echo "runqy: installing into $VENV" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$root[test]"
    touch "$stamp"
  fi
}

# Install redis-server with apt when it is missing.
ensure_redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "runqy: installing redis-server" >&2
    (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null
  fi
}

# Replace this shell with Python running "$@": $VENV's, or before anything made $VENV,
# ${PYTHON:-python3} with this checkout on PYTHONPATH (enough when it has runqy's dependencies).
exec_python() {
  if [ -x "$VENV/bin/python" ]; then
    exec "$VENV/bin/python" "$@"
  fi
  echo "runqy: $VENV does not exist (bin/dev-server or bin/test creates it); trying ${PYTHON:-python3}," \
       "which needs runqy's dependencies installed" >&2
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" "$@"
}
