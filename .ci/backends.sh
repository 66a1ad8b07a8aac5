#!/usr/bin/env bash
# What the backend tests need (examples/backends): PostgreSQL, whose initdb/pg_ctl the tests use
# to run a throwaway cluster as the postgres user, and the backends' own npm packages, installed
# into examples/backends/node_modules (never dependencies of the component).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  printf '\n==> installing Debian packages: postgresql\n'
  apt-get -o DPkg::Lock::Timeout=900 update -q
  # Keep the package's own server from starting: the tests run their own.
  # An existing policy-rc.d (a container's own) is left as it is.
  created=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created=yes
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get -o DPkg::Lock::Timeout=900 install -y -q postgresql
  if [[ -n $created ]]; then rm -f /usr/sbin/policy-rc.d; fi
fi

printf '\n==> examples/backends: npm ci\n'
examples/backends/install.sh
