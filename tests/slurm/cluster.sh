#!/usr/bin/env bash
# A single-node Slurm cluster on localhost for the tests: installs slurm-wlm and munge
# (Debian packages) when missing, writes its own slurm.conf under $SLURM_TEST_DIR, and starts
# munged (unless one is running), slurmctld and slurmd on their own ports, pid files and
# state folders, so it does not disturb another cluster on the same machine. Needs root.
#
#   source tests/slurm/cluster.sh; cluster_up; ...; cluster_down
#
# cluster_up exports SLURM_CONF, so sbatch/srun/squeue/scontrol talk to this cluster.
set -euo pipefail

SLURM_TEST_DIR="${SLURM_TEST_DIR:-/tmp/synthsweep-slurm}"
SLURM_TEST_PORT="${SLURM_TEST_PORT:-16817}"       # slurmctld; slurmd uses the next port
SLURM_TEST_MAX_ARRAY="${SLURM_TEST_MAX_ARRAY:-5}"  # small, so the tests see the cap

_started_munge=0

cluster_install() {
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm: installing slurmctld slurmd slurm-client munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
  fi
}

cluster_conf() {
  local node cpus mem d="$SLURM_TEST_DIR"
  node="$(hostname -s)"
  # More CPUs than the machine has (config_overrides below accepts it), so that the elements
  # of an array really start together.
  cpus="${SLURM_TEST_CPUS:-8}"
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  mkdir -p "$d/state" "$d/spool" "$d/log" "$d/run"
  cat > "$d/slurm.conf" <<EOF
ClusterName=synthsweeptest
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire seconds before it starts again (default 120)
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldPort=${SLURM_TEST_PORT}
SlurmdPort=$((SLURM_TEST_PORT + 1))
MaxArraySize=${SLURM_TEST_MAX_ARRAY}
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  export SLURM_CONF="$d/slurm.conf"
}

_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

_stop() {
  if _alive "$1"; then
    local pid; pid="$(cat "$1")"; kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
  fi
  rm -f "$1"
}

cluster_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge; chmod 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  _started_munge=1
  for _ in $(seq 50); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1
  done
  echo "slurm: munge does not work" >&2; return 1
}

cluster_up() {
  cluster_install
  cluster_down_daemons
  rm -rf "$SLURM_TEST_DIR"
  cluster_conf
  cluster_munge
  local d="$SLURM_TEST_DIR" node st
  node="$(hostname -s)"
  slurmctld -c -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 150); do
    st="$(sinfo -h -n "$node" -o %t 2>/dev/null || true)"
    case "$st" in
      idle|mix|alloc) echo "slurm: node $node $st (config $SLURM_CONF)"; return 0;;
      down*|drain*) scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true;;
    esac
    sleep 0.2
  done
  echo "slurm: node never became idle" >&2; tail -20 "$d"/log/*.log >&2; return 1
}

cluster_down_daemons() {
  _stop "$SLURM_TEST_DIR/run/slurmd.pid"
  _stop "$SLURM_TEST_DIR/run/slurmctld.pid"
}

cluster_down() {
  cluster_down_daemons
  if [ "$_started_munge" = 1 ]; then _stop /run/munge/munged.pid; fi
}

# Waits until job $1 (and all its array elements) left the queue; fails after $2 seconds.
wait_job() {
  local id="$1" limit="${2:-300}" t=0
  while squeue -h -j "$id" 2>/dev/null | grep -q .; do
    sleep 0.5; t=$((t + 1))
    if [ "$t" -gt $((limit * 2)) ]; then
      echo "job $id still queued after ${limit}s:" >&2; squeue >&2; return 1
    fi
  done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-up}" in
    up) cluster_up;;
    down) cluster_conf; cluster_down_daemons;;
    *) echo "usage: $0 up|down" >&2; exit 2;;
  esac
fi
