#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (Debian's slurm-wlm and munge): a controller and one compute
# daemon with this machine's cores, so `hydra/launcher=slurm` can be tried and tested on one box.
#
#   scripts/slurm-local.sh start     # idempotent: already running is fine; ends when `sinfo` shows the node idle
#   scripts/slurm-local.sh status    # the daemons and `sinfo`
#   scripts/slurm-local.sh env       # the lines that point Slurm's commands at this cluster: eval "$(... env)"
#   scripts/slurm-local.sh stop
#
# Everything (config, keys, logs, spool) lives in $RESNET_LAB_SLURM_DIR
# (default ${XDG_STATE_HOME:-$HOME/.local/state}/resnet-lab/slurm). No systemd and no cgroups are needed:
# processes are tracked through /proc (proctrack/linuxproc), tasks are not bound (task/none). There is no
# accounting database: finished jobs are written to $RESNET_LAB_SLURM_DIR/jobcomp.log (JobCompType=jobcomp/filetxt),
# and each MLflow run records its Slurm job id as the tag slurm.job_id.
# Ports: RESNET_LAB_SLURMCTLD_PORT (default 6817) and RESNET_LAB_SLURMD_PORT (default 6818).
set -euo pipefail

STATE="${RESNET_LAB_SLURM_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/resnet-lab/slurm}"
CTLD_PORT="${RESNET_LAB_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${RESNET_LAB_SLURMD_PORT:-6818}"
CONF="$STATE/slurm.conf"
MUNGE_SOCKET="$STATE/munge/munge.socket"
NODE="$(hostname -s)"

usage() {
    echo "usage: $(basename "$0") start|stop|status|env   (state in \$RESNET_LAB_SLURM_DIR, now $STATE)" >&2
    exit 2
}

need() {
    local missing=()
    for tool in munged mungekey slurmctld slurmd sinfo; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        echo "error: ${missing[*]} not found: apt-get install -y slurm-wlm munge" >&2
        exit 1
    fi
}

alive() {  # the process whose id is in pid file $1 runs
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_config() {
    # The node as slurmd sees it (CPUs, sockets, cores, memory), less its up-time line.
    local node_line
    node_line="$(slurmd -C | head -1)"
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster for trying and testing the Slurm launcher.
ClusterName=resnetlab
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No systemd, no cgroups: track job processes through /proc, do not bind tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
# No accounting database (slurmdbd); finished jobs go to a text file.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# A cancelled job gets SIGTERM, then SIGKILL this many seconds later: time to close its MLflow run.
KillWait=30
SchedulerType=sched/backfill
MinJobAge=300
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

write_sacct() {
    # Without slurmdbd, plain sacct answers "accounting storage is disabled"; the completion log has the states.
    local real
    real="$(PATH="${PATH//$STATE\/bin:/}" command -v sacct)"
    mkdir -p "$STATE/bin"
    printf '#!/bin/sh\n# sacct of the local cluster: job states from the job completion log (no slurmdbd)\nexec %s --completion "$@"\n' \
        "$real" >"$STATE/bin/sacct"
    chmod 755 "$STATE/bin/sacct"
}

environment() {
    echo "export SLURM_CONF=$CONF"
    echo "export PATH=$STATE/bin:\$PATH"
}

start_munge() {
    mkdir -p "$STATE/munge"
    chmod 700 "$STATE/munge"
    [[ -s "$STATE/munge/munge.key" ]] || mungekey --create --keyfile="$STATE/munge/munge.key" >/dev/null
    chmod 600 "$STATE/munge/munge.key"
    alive "$STATE/munge/munged.pid" && return
    munged --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed"
}

wait_idle() {
    local state=""
    for _ in $(seq 60); do
        state="$(SLURM_CONF="$CONF" sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)"
        [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]] && return 0
        sleep 1
    done
    echo "error: the node did not become idle (sinfo: ${state:-no answer}); logs in $STATE/*.log" >&2
    exit 1
}

start() {
    need
    mkdir -p "$STATE/ctld" "$STATE/slurmd"
    start_munge
    if ! alive "$STATE/slurmctld.pid"; then
        write_config
        slurmctld -f "$CONF" -i
    fi
    alive "$STATE/slurmd.pid" || slurmd -f "$CONF"
    write_sacct
    wait_idle
    echo "Slurm: node $NODE idle in partition local; for sinfo, sbatch, sacct and the Slurm launcher:"
    environment
}

stop() {
    local pid_file
    for pid_file in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munge/munged.pid"; do
        if alive "$pid_file"; then
            local pid
            pid="$(cat "$pid_file")"
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$pid_file"
    done
    echo "Slurm stopped ($STATE)"
}

status() {
    local name running=0
    for name in munge/munged slurmctld slurmd; do
        if alive "$STATE/$name.pid"; then
            echo "$(basename "$name"): running (pid $(cat "$STATE/$name.pid"))"
        else
            echo "$(basename "$name"): stopped"
            running=1
        fi
    done
    ((running == 0)) && SLURM_CONF="$CONF" sinfo
    return "$running"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) environment ;;
    *) usage ;;
esac
