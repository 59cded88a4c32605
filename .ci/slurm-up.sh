#!/usr/bin/env bash
# Stand up a real single-node SLURM (slurmctld + slurmd + munge) on localhost, with one fake GPU.
# Needs root and Debian/Ubuntu packages. Idempotent: does nothing when this node is already idle.
# Tear down with `bash .ci/slurm-down.sh`.
set -euo pipefail

if command -v sinfo >/dev/null && [[ "$(timeout 5 sinfo -h -o %t 2>/dev/null)" == idle* ]]; then
  echo "slurm-up: already running"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "slurm-up: needs root (it installs packages and starts daemons)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/fakegpu
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  mungekey -c -f -k /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# SLURM refuses a plain file as a GPU device; a character device (here /dev/null's numbers) is accepted.
[[ -c /var/lib/fakegpu/nvidia0 ]] || mknod /var/lib/fakegpu/nvidia0 c 1 3

cat >/etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
JobAcctGatherType=jobacct_gather/none
KillWait=5
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=${host} Name=gpu File=/var/lib/fakegpu/nvidia0" >/etc/slurm/gres.conf

running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
running /run/slurmctld.pid || /usr/sbin/slurmctld
running /run/slurmd.pid || /usr/sbin/slurmd

for _ in $(seq 60); do
  state=$(sinfo -h -o %t 2>/dev/null || true)
  if [[ "$state" == idle* ]]; then
    echo "slurm-up: node ${host} idle (${cpus} CPUs, ${mem_mb} MB, 1 fake GPU)"
    exit 0
  fi
  sleep 0.5
done
echo "slurm-up: node did not become idle (state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
