#!/usr/bin/env bash
# Installs MariaDB's server and client from Debian's packages when `mariadbd` is missing.
# The package's own service is not started; cdcflow's tests start throwaway instances.
# apt can fail transiently when another process holds its lock or its cache: retry a few times.
set -euo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  echo "mariadbd present: $(/usr/sbin/mariadbd --version 2>/dev/null || mariadbd --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
for attempt in 1 2 3; do
  if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
     $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client; then
    exit 0
  fi
  echo "apt-get failed (attempt $attempt); retrying in 5 s" >&2
  sleep 5
done
echo "could not install mariadb-server" >&2
exit 1
