#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the cluster tests and for
# trying the slurm profiles before a real cluster.
#
#   sudo scripts/slurm_local.sh start    install (Debian packages) if needed, start munge,
#                                        slurmctld and slurmd; idempotent
#   scripts/slurm_local.sh status        exit 0 when the controller answers
#   sudo scripts/slurm_local.sh stop     stop only the daemons this script started
#
# Its files live in one folder ($SPECTRAGRID_SLURM_DIR, default
# ${TMPDIR:-/tmp}/spectragrid-slurm); /etc/slurm/slurm.conf becomes a link to
# the one written there, because the SLURM commands the executor plugin runs
# inside a job (srun) are started without SLURM_CONF and read that path.
# A machine with its own /etc/slurm/slurm.conf is refused, never changed.
# `stop` removes the link again: with a slurm.conf and no controller answering,
# every `snakemake` start with the SLURM plugin installed waits ~9 s for
# `scontrol show config` to time out.
#
# The node has the machine's cores and memory, partitions `main` and `gpu`
# (the names the slurm profiles use), and two
# fake GPUs (gres `gpu:fake:2` backed by character devices): a job asking for
# --gpus=1 is scheduled as on a GPU node and sees CUDA_VISIBLE_DEVICES, but
# torch finds no CUDA device in it. Finished jobs are recorded one per line in
# $DIR/jobcomp.log (job id, name, state, exit code), and `scontrol show job`
# keeps every job's request (GPUs included) for MinJobAge; there is no
# accounting database (sacct), so use squeue as the executor's status command.
set -euo pipefail

DIR="${SPECTRAGRID_SLURM_DIR:-${TMPDIR:-/tmp}/spectragrid-slurm}"
CONF="$DIR/slurm.conf"
ETC_CONF=/etc/slurm/slurm.conf
export SLURM_CONF="$CONF"
# Jobs that finished stay visible to squeue this long: the executor plugin
# reads their final state from squeue when there is no slurmdbd for sacct.
MIN_JOB_AGE=600

log() { echo "slurm_local: $*" >&2; }

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        log "$1 needs root (apt-get, daemons that run jobs): run it with sudo"
        exit 1
    fi
}

controller_up() {
    [[ -f "$CONF" ]] && timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"
}

node_idle() {
    timeout 5 sinfo -h -o "%t" 2>/dev/null | grep -Eq "^(idle|mix|alloc)"
}

install_packages() {
    local missing=()
    for cmd in slurmctld slurmd sbatch munged; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    log "installing slurmctld, slurmd, slurm-client, munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # Another installer (the machine's own, or a second start) may hold dpkg's lock: wait for it.
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged is already serving this machine: use it, never stop it
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        # Debian's package creates the key; a hand-made install may not have.
        mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/started-munged"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    log "munged did not come up"
    exit 1
}

link_etc_config() {
    if [[ -L "$ETC_CONF" && $(readlink "$ETC_CONF") == "$CONF" ]]; then
        return
    fi
    if [[ -e "$ETC_CONF" || -L "$ETC_CONF" ]]; then
        log "$ETC_CONF exists and is not this script's: this machine has its own SLURM set-up; not touching it"
        exit 1
    fi
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -s "$CONF" "$ETC_CONF"
}

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # Leave 1 GiB to the system and the Snakemake process that submits.
    mem_mb=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024))
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/dev"
    for i in 0 1; do
        # Any character device will do: slurmd only hands its index out as
        # CUDA_VISIBLE_DEVICES; /dev/null's numbers keep it harmless.
        [[ -c "$DIR/dev/fakegpu$i" ]] || mknod "$DIR/dev/fakegpu$i" c 1 3
    done
    cat >"$CONF" <<EOF
# Written by spectragrid's scripts/slurm_local.sh: a single-node test cluster.
ClusterName=spectragrid
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# No cgroups: containers rarely delegate them, and a test cluster needs no fencing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Memory is enforced by polling, as without cgroups: a job over its --mem is
# killed (OUT_OF_MEMORY), so a retry with more memory can be seen to work.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# Quiet logs: no MPI library, no mail on this node.
MpiDefault=none
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
# One line per finished job: the record tests read in place of sacct.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
MinJobAge=$MIN_JOB_AGE
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without it a job that asks for no memory is given the whole node.
DefMemPerCPU=500
# The node comes back by itself after a restart of the daemons.
ReturnToService=2
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:fake:2 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# The slurm-gpu profile's GPU partition, on the same node.
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/gres.conf" <<EOF
NodeName=$host Name=gpu Type=fake File=$DIR/dev/fakegpu[0-1]
EOF
}

pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    need_root start
    if controller_up && node_idle && [[ $(readlink "$ETC_CONF" 2>/dev/null) == "$CONF" ]]; then
        log "already running ($CONF)"
        return
    fi
    install_packages
    mkdir -p "$DIR"
    link_etc_config
    start_munge
    write_config
    pid_alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    pid_alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 150); do
        if controller_up && node_idle; then
            log "up: partitions main and gpu, $(nproc) CPUs, gpu:fake:2 ($CONF)"
            return
        fi
        sleep 0.2
    done
    log "the node did not become idle in 30 s; see $DIR/slurmctld.log and $DIR/slurmd.log"
    sinfo -N -l >&2 || true
    stop_daemon "$DIR/slurmd.pid"
    stop_daemon "$DIR/slurmctld.pid"
    exit 1
}

stop_daemon() {
    local pidfile=$1 pid
    pid_alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    need_root stop
    stop_daemon "$DIR/slurmd.pid"
    stop_daemon "$DIR/slurmctld.pid"
    if [[ -L "$ETC_CONF" && $(readlink "$ETC_CONF") == "$CONF" ]]; then
        rm -f "$ETC_CONF"
    fi
    if [[ -f "$DIR/started-munged" ]]; then
        stop_daemon /run/munge/munged.pid
        rm -f "$DIR/started-munged"
    fi
    log "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if controller_up; then
        sinfo -N -o "%N %t %c %m %G"
    else
        echo "not running"
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
