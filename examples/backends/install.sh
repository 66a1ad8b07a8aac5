#!/bin/sh
# Installs the backends' own dependencies (pg, @node-rs/bcrypt, @node-rs/argon2, @mongodb-js/saslprep) into
# examples/backends/node_modules from the npm registry; prebuilt binaries come as npm packages,
# nothing is compiled or downloaded from elsewhere. They are never dependencies of the component.
set -eu
cd "$(dirname "$0")"
npm ci --omit=dev --no-audit --no-fund
