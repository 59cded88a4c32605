#!/usr/bin/env bash
# Stop the daemons started by .ci/slurm-up.sh, by the PIDs in their pid files (never by name).
set -uo pipefail

for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [[ -s "$pidfile" ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
done
echo "slurm-down: stopped"
