# A single-node Slurm 22.05 for the tests: munged, slurmctld and slurmd on 127.0.0.1, started and stopped by PID.
# Sourced by a test after lib.sh. Needs root (the daemons, SlurmUser=root) and
# Debian's slurmctld, slurmd, slurm-client and munge; no systemd, no cgroups:
# ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, no accounting.
#
# start_slurm: makes SLURM_DIR (a new directory under /tmp, short enough for
#   the daemons' Unix sockets) holding munge's own key and socket, slurm.conf,
#   the state and spool directories and the daemons' logs; exports SLURM_CONF
#   so sbatch, squeue, scontrol and scancel talk to this cluster only; starts
#   the daemons and returns once the node is idle (fails after 30 s), with the
#   seconds that took in SLURM_UP_SECONDS. Sets an
#   EXIT trap (replacing any other) that runs stop_slurm and keeps the exit status.
# stop_slurm: cancels this cluster's jobs and waits for them to end, stops
#   slurmd, slurmctld and munged by their PIDs (SIGTERM, then SIGKILL after 10
#   s), kills by PID any step a crashed slurmd left (slurm_leftovers), prints the daemons' logs
#   when the test is failing, and removes SLURM_DIR.
# wait_jobs JOB...: until none of the jobs (array jobs: all their tasks) is
#   pending, running or completing; fails after 90 s.
# job_state JOB: the job's (or array task's, 12_1) JobState, e.g. COMPLETED,
#   FAILED, CANCELLED.

SLURM_PIDS=""

slurm_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

start_slurm() {
    [ "$(id -u)" = 0 ] || fail "start_slurm needs root"
    for t in munged slurmctld slurmd sbatch; do
        command -v "$t" >/dev/null || fail "$t is not installed (Debian: slurmctld slurmd slurm-client munge)"
    done
    SLURM_DIR=$(mktemp -d /tmp/sp-slurm.XXXXXX)
    chmod 711 "$SLURM_DIR"
    trap 'slurm_status=$?; stop_slurm "$slurm_status"; exit "$slurm_status"' EXIT
    local d=$SLURM_DIR
    mkdir -m 711 "$d/munge"
    mkdir "$d/state" "$d/spool" "$d/log"
    (umask 077 && head -c 1024 /dev/urandom > "$d/munge/munge.key")
    munged --foreground --force --socket="$d/munge/socket" --key-file="$d/munge/munge.key" \
        --pid-file="$d/munge/munged.pid" --seed-file="$d/munge/seed" --log-file="$d/log/munged.log" \
        > "$d/log/munged.out" 2>&1 &
    SLURM_MUNGED=$!
    SLURM_PIDS="$SLURM_MUNGED"
    local i=0
    until munge -S "$d/munge/socket" -n 2>/dev/null | unmunge -S "$d/munge/socket" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 200 ] && slurm_alive "$SLURM_MUNGED" || fail "munged did not start: $(cat "$d/log/munged.out")"
        sleep 0.05
    done

    local node ctld_port slurmd_port
    node=$(slurmd -C | head -1)                  # NodeName=HOST CPUs=... RealMemory=...
    SLURM_NODE=${node%% *}; SLURM_NODE=${SLURM_NODE#NodeName=}
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    cat > "$d/slurm.conf" <<X
ClusterName=sptest
SlurmctldHost=$SLURM_NODE(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
X
    export SLURM_CONF="$d/slurm.conf"
    local start
    start=$(date +%s%N)
    slurmctld -D -i -f "$SLURM_CONF" > "$d/log/slurmctld.out" 2>&1 &
    SLURM_CTLD=$!
    slurmd -D -f "$SLURM_CONF" -N "$SLURM_NODE" > "$d/log/slurmd.out" 2>&1 &
    SLURM_SLURMD=$!
    SLURM_PIDS="$SLURM_PIDS $SLURM_CTLD $SLURM_SLURMD"
    i=0
    until [ "$(sinfo -h -n "$SLURM_NODE" -o %T 2>/dev/null)" = idle ]; do
        i=$((i + 1))
        [ $i -lt 300 ] && slurm_alive "$SLURM_CTLD" && slurm_alive "$SLURM_SLURMD" || fail "the test Slurm did not come up"
        sleep 0.1
    done
    SLURM_UP_SECONDS=$(awk "BEGIN { printf \"%.2f\", ($(date +%s%N) - $start) / 1e9 }")
}

# slurm_leftovers: the PIDs of the processes that hold a file under
# SLURM_DIR open, and of all their descendants.
slurm_leftovers() {
    $PY - "$SLURM_DIR/" <<'X'
import os, sys
root, parent, holders = sys.argv[1], {}, set()
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{p}/stat") as f:
            parent[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
        if any(os.readlink(f"/proc/{p}/fd/{fd}").startswith(root) for fd in os.listdir(f"/proc/{p}/fd")):
            holders.add(int(p))
    except OSError:
        pass  # gone meanwhile, or a kernel thread
found = set(holders)
while True:
    more = {p for p, pp in parent.items() if pp in found} - found
    if not more:
        break
    found |= more
print(*sorted(found))
X
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; waits until it has exited.
stop_pid() {
    slurm_alive "$1" || return 0
    kill "$1" 2>/dev/null || true
    local i=0
    while slurm_alive "$1"; do
        i=$((i + 1))
        [ $i -ne 100 ] || kill -KILL "$1" 2>/dev/null || true
        [ $i -lt 200 ] || return 0
        sleep 0.1
    done
    wait "$1" 2>/dev/null || true
}

stop_slurm() {
    local status=${1:-0} i=0 p
    [ -n "${SLURM_DIR:-}" ] && [ -d "$SLURM_DIR" ] || return 0
    if slurm_alive "${SLURM_CTLD:-}" && slurm_alive "${SLURM_SLURMD:-}"; then
        scancel --full --signal=KILL --state=RUNNING --user=root 2>/dev/null || true
        scancel --user=root 2>/dev/null || true
        while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    fi
    # slurmd first (no new steps), the controller, then munge, which both use
    for p in ${SLURM_SLURMD:-} ${SLURM_CTLD:-} ${SLURM_MUNGED:-}; do stop_pid "$p"; done
    # what a crashed slurmd would leave: a slurmstepd (it keeps slurmd.log
    # open) and its job's processes, killed by PID
    for p in $(slurm_leftovers); do kill -KILL "$p" 2>/dev/null || true; done
    if [ "$status" != 0 ] && [ "$status" != 77 ]; then
        for f in "$SLURM_DIR"/log/*; do
            echo "---- $(basename "$f") (last 30 lines)" >&2
            tail -30 "$f" >&2
        done
    fi
    rm -rf "$SLURM_DIR"
    SLURM_DIR=""
}

wait_jobs() {
    local i=0
    while [ -n "$(squeue -h -o %i -j "$(IFS=,; echo "$*")" 2>/dev/null)" ]; do
        i=$((i + 1)); [ $i -lt 900 ] || fail "jobs $* still queued after 90 s: $(squeue 2>&1)"
        sleep 0.1
    done
}

job_state() {
    local s
    s=$(scontrol -o show job "$1") || fail "scontrol show job $1 failed"
    s=${s#*JobState=}
    echo "${s%% *}"
}
