#!/usr/bin/env bash
# Starts a private single-node Slurm (munged, slurmctld, slurmd) with everything under DIR,
# then waits until the node is idle. Used by tests/slurm_test.ts; needs root and the Debian
# packages slurmctld, slurmd, munge (and slurm-client for sbatch/squeue/scancel).
#
#   tests/slurm/start.sh DIR        # prints SLURM_CONF=DIR/slurm.conf on success
#   tests/slurm/start.sh --stop DIR # stops the daemons this script started (by their pid files)
#
# Ports and the munge socket are private, so a Slurm already on the machine is left alone.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

if [ "${1:-}" = "--stop" ]; then
  dir=${2:?usage: start.sh --stop DIR}
  # Only the processes whose pid files this script asked for, one by one.
  for name in slurmd slurmctld munged; do
    pidfile="$dir/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    alive=0
    for name in slurmd slurmctld munged; do
      pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && exit 0
    sleep 0.1
  done
  echo "start.sh: a daemon did not stop within 5 s" >&2
  exit 1
fi

dir=${1:?usage: start.sh DIR}
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 0700 "$dir" "$dir/munge"
# munged refuses a key in a folder others can write; keep the key and socket in DIR/munge.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$dir/munge/munge.key"
socket="$dir/munge/munge.socket"

# Fixed private ports (not Slurm's 6817/6818), overridable for a busy machine.
ctld_port=${KLAL_TEST_SLURMCTLD_PORT:-16817}
slurmd_port=${KLAL_TEST_SLURMD_PORT:-16818}
cpus=$(nproc)

cat >"$dir/slurm.conf" <<EOF
ClusterName=klal-test
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SwitchType=switch/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

munged --force --socket="$socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
# slurmctld and slurmd fork into the background and write their pid files.
slurmctld -c -f "$SLURM_CONF"
slurmd -N localhost -f "$SLURM_CONF"

for _ in $(seq 150); do
  state=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
  if [ "$state" = "idle" ]; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "start.sh: the node did not become idle within 30 s (state: ${state:-unknown})" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/munged.log" >&2 2>/dev/null || true
exit 1
