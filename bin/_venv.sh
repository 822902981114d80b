# Sourced by bin/test and bin/dev-server: create .venv and install runqy into it
# when it is missing or setup.cfg changed since the last install.
VENV="${RUNQY_VENV:-$root/.venv}"
if ! command -v redis-server >/dev/null 2>&1; then
  echo "runqy: installing redis-server" >&2
  (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null
fi
stamp="$VENV/.runqy-installed"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "runqy: installing into $VENV" >&2
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  touch "$stamp"
fi
