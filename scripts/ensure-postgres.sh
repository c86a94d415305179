#!/usr/bin/env bash
# Makes sure the local PostgreSQL cluster is up (idempotent): starts it if it is down.
set -u
ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
ready && { echo "PostgreSQL is up"; exit 0; }
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
    [ "$status" = online ] || pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || true
  done
fi
for _ in $(seq 1 30); do ready && { echo "PostgreSQL is up"; exit 0; }; sleep 1; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
