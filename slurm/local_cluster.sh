#!/usr/bin/env bash
# A one-node SLURM on this machine, for the test suite and for trying the slurm launcher without a
# cluster. Needs root and Debian/Ubuntu packages slurm-wlm + munge. Idempotent: every step checks
# first, so running it while the cluster is up changes nothing.
#
#   slurm/local_cluster.sh install   apt-get the packages when a binary is missing
#   slurm/local_cluster.sh start     install if needed, write slurm.conf, start munged/slurmctld/slurmd,
#                                    wait until the node is idle (the default)
#   slurm/local_cluster.sh status    exit 0 when the partition answers and the node can take jobs
#   slurm/local_cluster.sh stop      stop the daemons this script started
#
# Exit codes: 0 ok, 3 not root, 4 packages missing and not installable, 5 the daemons did not come up,
# 6 a slurm.conf this script did not write is in place (left untouched).
# The cluster: partition "debug" (default), one node = this machine (all its CPUs, 90% of its memory),
# select/cons_tres, proctrack/linuxproc, task/none, no accounting, daemons run as root, a requeued job
# held 10 s instead of 120 s (AuthInfo=cred_expire, below).
set -uo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by proxbin slurm/local_cluster.sh"
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
PARTITION=debug
NODE=$(hostname -s)
# SLURM holds a requeued job for the job credential's lifetime (AuthInfo=cred_expire, default 120 s) so
# that it never starts while slurmd still holds the previous run's revoked credential (a start inside
# that window dies with "Job credential revoked"). A one-node test cluster needs no two minutes: 10 s
# lets a requeued job restart by itself quickly, and still covers job start-up on this machine.
CRED_EXPIRE=10

die() { echo "local_cluster: $2" >&2; exit "$1"; }
have_binaries() { command -v slurmctld && command -v slurmd && command -v munged && command -v sbatch; } >/dev/null 2>&1

install() {
  [ "$(id -u)" -eq 0 ] || die 3 "must run as root (it installs packages and starts system daemons)"
  have_binaries && return 0
  echo "local_cluster: installing slurm-wlm and munge with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } >/tmp/proxbin-slurm-apt.log 2>&1 \
    || die 4 "apt-get could not install slurm-wlm and munge (log: /tmp/proxbin-slurm-apt.log)"
  have_binaries || die 4 "slurm-wlm/munge installed but slurmctld, slurmd, munged or sbatch is still missing"
}

start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key >/dev/null 2>&1 || true
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge 2>/dev/null
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged --force >/dev/null 2>&1 || /usr/sbin/munged --force >/dev/null 2>&1
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  die 5 "munged did not start (see /var/log/munge/munged.log)"
}

write_conf() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die 6 "$CONF exists and was not written by this script; it was left untouched"
  fi
  local cpus mem
  cpus=$(nproc --all)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$CONF_DIR" "$STATE" "$SPOOL" "$LOGS"
  local tmp
  tmp=$(mktemp "$CONF_DIR/.slurm.conf.XXXXXX")
  cat >"$tmp" <<CONF
$MARK
ClusterName=proxbin
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
SchedulerParameters=sched_interval=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; else mv "$tmp" "$CONF"; chmod 644 "$CONF"; CONF_CHANGED=1; fi
}

# Every query is bounded: with the controller down, SLURM's clients retry for a long time.
ctl_up() { timeout 5 scontrol ping 2>/dev/null | grep -q UP; }
node_state() { timeout 5 sinfo -h -p "$PARTITION" -o %T 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle*|mixed*|allocated*|completing*) return 0 ;; *) return 1 ;; esac; }
status() { ctl_up && node_ready; }
# alive = the pid file names a process that is not a zombie (a container's PID 1 may never reap them)
running() {
  local pid
  pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && ps -o stat= -p "$pid" 2>/dev/null | grep -qv '^Z'
}

start() {
  install
  start_munge
  write_conf
  if status; then
    # daemons already up with an older slurm.conf of ours: make them read the new one
    [ "${CONF_CHANGED:-0}" -eq 0 ] || timeout 30 scontrol reconfigure || die 5 "scontrol reconfigure failed"
    echo "local_cluster: up (partition $PARTITION, node $NODE)"; return 0
  fi
  running /run/slurmctld.pid || slurmctld || die 5 "slurmctld did not start (see $LOGS/slurmctld.log)"
  SECONDS=0
  until ctl_up; do
    [ "$SECONDS" -lt 30 ] || die 5 "slurmctld does not answer: $(tail -3 "$LOGS/slurmctld.log" 2>/dev/null)"
    sleep 0.2
  done
  running /run/slurmd.pid || slurmd || die 5 "slurmd did not start (see $LOGS/slurmd.log)"
  SECONDS=0
  until node_ready; do
    [ "$SECONDS" -lt 60 ] || die 5 "node $NODE did not become idle: $(timeout 5 sinfo -h -o '%T %E' 2>&1 | head -1) (see $LOGS/)"
    # a node left down/drained by an earlier stop comes back here
    case "$(node_state)" in down*|drain*) timeout 5 scontrol update nodename="$NODE" state=resume 2>/dev/null ;; esac
    sleep 0.2
  done
  echo "local_cluster: up (partition $PARTITION, node $NODE)"
}

stop() {
  local f
  for f in /run/slurmd.pid /run/slurmctld.pid; do
    running "$f" || continue
    kill "$(cat "$f" 2>/dev/null)" 2>/dev/null
    SECONDS=0
    while running "$f" && [ "$SECONDS" -lt 30 ]; do sleep 0.2; done
  done
  return 0
}

case "${1:-start}" in
  install) install ;;
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) die 2 "unknown command '$1'; use one of install, start, status, stop" ;;
esac
