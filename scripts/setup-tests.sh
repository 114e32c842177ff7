#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine: the package with its
# test and docs extras (tests/test_docs.py builds the documentation), in one pip
# command so pip resolves boto3/botocore/aiobotocore together, and the system
# programs some tests drive for real (graphviz's dot, a PostgreSQL server,
# Debian's chromium for the browser test). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."

pip install -q -e ".[test,docs]"
python scripts/check_deps.py test docs

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "setup-tests: not root; install these with apt for the full suite: ${need[*]}" >&2
  fi
fi
