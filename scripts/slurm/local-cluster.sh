#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the tests of
# scripts/slurm/submit.sh against a real scheduler.
#
#   scripts/slurm/local-cluster.sh start   # install (Debian packages), configure, start
#   scripts/slurm/local-cluster.sh stop    # stop the daemons it started
#   scripts/slurm/local-cluster.sh status
#
# Needs root and apt-get (Debian or Ubuntu). The node gets this machine's CPUs
# and memory; processes are tracked without cgroups (proctrack/linuxproc,
# task/none), so it also runs inside a container. The configuration is
# written to /etc/slurm/slurm.conf, the daemons' logs to /var/log/slurm/.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOGS=/var/log/slurm
SPOOL=/var/spool/slurm
RUN=/run/slurm

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "local-cluster: $1 needs root (it installs packages and starts daemons); run it with sudo" >&2
    exit 2
  fi
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  echo "local-cluster: installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

# The memory Slurm may hand out, in MiB: all but 5 % of the machine's.
memory_mib() {
  awk '/^MemTotal:/ { printf "%d\n", $2 / 1024 * 0.95 }' /proc/meminfo
}

write_config() {
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  mkdir -p "$(dirname "$CONF")" "$LOGS" "$SPOOL/ctld" "$SPOOL/d" "$RUN"
  cat >"$CONF" <<CONF
# Written by scripts/slurm/local-cluster.sh: one node, this machine.
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
DependencyParameters=kill_invalid_depend
# Job records stay visible to scontrol for an hour after they end.
MinJobAge=3600
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$(memory_mib) State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged
  fi
}

running() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  need_root start
  install_packages
  write_config
  start_munge
  running "$RUN/slurmctld.pid" || slurmctld
  running "$RUN/slurmd.pid" || slurmd
  # The node registers within seconds; wait until it takes jobs.
  for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
      echo "local-cluster: up ($(nproc) CPUs, $(memory_mib) MiB on $(hostname -s))"
      return
    fi
    sleep 1
  done
  echo "local-cluster: the node did not come up; see $LOGS/slurmctld.log and $LOGS/slurmd.log:" >&2
  sinfo >&2 || true
  tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
  exit 1
}

stop() {
  need_root stop
  local pid
  for daemon in slurmd slurmctld; do
    if running "$RUN/$daemon.pid"; then
      pid=$(cat "$RUN/$daemon.pid")
      kill "$pid"
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  done
  echo "local-cluster: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
