#!/usr/bin/env bash
# The environments the package promises to install on, beside the main one:
#
#   min-py3.10  Python 3.10 (the lowest requires-python allows) with every direct
#               dependency at the lowest version pyproject.toml allows
#               (uv's --resolution lowest-direct);
#   py3.13      the newest Python here, with the newest dependencies.
#
# Each is a fresh virtual environment made by uv (installed with pip if missing)
# and runs the core and mapping tests, plus the checks that depend most on
# versions (worker version check, schedules, the result store). A run that
# collects no test fails. Interpreters: $TASKFLOW_PY310 and $TASKFLOW_PY313, by
# default pyenv's. Environments go under $TASKFLOW_ENVS (default: a temp dir,
# removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

py310=${TASKFLOW_PY310:-$(ls -d /root/.pyenv/versions/3.10.*/bin/python 2>/dev/null | tail -1)}
py313=${TASKFLOW_PY313:-$(ls -d /root/.pyenv/versions/3.13.*/bin/python 2>/dev/null | tail -1)}
tests=(tests/test_run.py tests/test_mapping.py tests/test_states.py tests/test_transitions.py
       tests/test_definition.py tests/test_worker_checks.py tests/test_schedules.py
       tests/test_results_store.py tests/test_checkpoint_trust.py)

command -v uv >/dev/null 2>&1 || pip install -q uv
envs=${TASKFLOW_ENVS:-}
if [ -z "$envs" ]; then
  envs=$(mktemp -d)
  trap 'rm -rf "$envs"' EXIT
fi

run_in() {  # name python [uv pip install options...]
  local name=$1 python=$2
  shift 2
  if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "test-min-versions: no interpreter for $name (set TASKFLOW_PY310 / TASKFLOW_PY313)" >&2
    return 1
  fi
  echo "== $name: $("$python" --version 2>&1) $*"
  uv venv -q -p "$python" "$envs/$name"
  VIRTUAL_ENV="$envs/$name" uv pip install -q "$@" -e ".[test]"
  VIRTUAL_ENV="$envs/$name" uv pip freeze | grep -Ei '^(dask|distributed|cloudpickle|fsspec|croniter|click|sqlalchemy|s3fs)==' | tr '\n' ' '
  echo
  local log status
  log=$(mktemp)
  set +e
  PYTHONPATH=$PWD "$envs/$name/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 5 ] || ! grep -Eq "[0-9]+ passed" "$log"; then
    echo "test-min-versions: no test ran in $name" >&2
    return 1
  fi
  return "$status"
}

failed=0
run_in min-py3.10 "$py310" --resolution lowest-direct || failed=1
run_in py3.13 "$py313" || failed=1
exit "$failed"
