# Conversion on one machine under GNU parallel (scripts/slurm/convert-parallel.sh): Fashion-MNIST in 3 parts, then the merge.
# The merged set must hold the records of a single-process run (keys, labels
# and pixel checksums from sp-cat, sorted). Then a part that fails (its
# directory is taken by a file): status 1, the part named, nothing merged;
# the same command again, killed (SIGKILL to every process of it) once
# the rerun part finished a shard (SP_WRITER_PAUSE), reruns only that part;
# and once more to the end: the part takes over the finished shard, and the
# merged set again equals the single-process run.
. "$SP_ROOT/tests/tools/lib.sh"
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
command -v parallel > /dev/null || fail "GNU parallel (Debian: parallel) is not installed"
CONVERT=(--decode -q --shard "-n 5000" "$FMNIST"/*.gz)
RUN=(bash "$SP_ROOT/scripts/slurm/convert-parallel.sh" -n 3 -j 2 --verify)

sp-unpack "$FMNIST"/*.gz | sp-decode -q | sp-shard -q -n 5000 -o ONE
sp-cat ONE | sort > one.txt
[ "$(wc -l < one.txt)" -eq 70000 ] || fail "the single-process run holds $(wc -l < one.txt) records"

# same_as_one SET: SET holds the single-process run's records, from 3 parts
same_as_one() {
    sp-cat "$1" | sort > merged.txt
    cmp -s merged.txt one.txt || fail "$1: its records differ from the single-process run's"
    $PY -c 'import json, sys; m = json.load(open(sys.argv[1] + "/manifest.json")); assert m["merged_parts"] == 3 and m["total_records"] == 70000, m' "$1"
}
# runs_of PARTS: how often each part ran, from the job log ("1 2 1")
runs_of() { awk -F'\t' 'NR > 1 { n[$1]++ } END { print n[1] + 0, n[2] + 0, n[3] + 0 }' "$1/log/parallel.joblog"; }

# 1. the three parts and the merge
expect_status 0 "${RUN[@]}" -w PA -o A -- "${CONVERT[@]}"
for t in 0 1 2; do
    grep -qx "part $t/3:	sp-convert: part $t/3: sp-unpack 0, sp-decode 0, sp-shard 0" err || { cat err >&2; fail "part $t's output"; }
done
same_as_one A
[ "$(runs_of PA)" = "1 1 1" ] || fail "parts ran $(runs_of PA) times"

# 2. part 1 fails: named, nothing merged
mkdir PB
echo "not a directory" > PB/1
expect_status 1 "${RUN[@]}" -w PB -o B -- "${CONVERT[@]}"
expect_err_has "convert-parallel.sh: parts failed: 1; not merged. Run the same command again to rerun only those"
grep -qE "^part 1/3:	sp-convert: part 1/3: sp-unpack (0|141), sp-decode (0|141), sp-shard 3$" err || { cat err >&2; fail "part 1's output"; }
[ ! -e B ] || fail "merged after a failed part"
rm PB/1

# 3. the same command again, killed (every process of its session: parallel
# gives each part a process group of its own) once the rerun part 1 (the only
# one) finished its first shard, as a machine that goes down
kill_session() { # SIGKILL to each process of the run's session, by PID, until none is left
    local i=0
    while pids=$(ps -o pid= -s "$run") && [ -n "$pids" ]; do
        kill -KILL $pids 2>/dev/null || true
        i=$((i + 1)); [ $i -lt 50 ] || fail "the killed run's processes live on: $(ps -o pid,args -s "$run")"
        sleep 0.1
    done
}
SP_WRITER_PAUSE=shard-finished setsid "${RUN[@]}" -w PB -o B -- "${CONVERT[@]}" > killed.out 2>&1 &
run=$!
trap 'kill -KILL "$run" 2> /dev/null; kill_session 2> /dev/null' EXIT # (its paused part would wait for ever)
i=0 # (until setsid has made it a session leader: ps shows the shell's session before)
until [ "$(ps -o sid= -p "$run" | tr -d ' ')" = "$run" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the run is not a session of its own"
    sleep 0.05
done
i=0
until [ -e PB/1/.sp-pause-shard-finished ]; do
    i=$((i + 1)); [ $i -lt 600 ] || { kill_session; fail "the rerun of part 1 did not finish a shard in 60 s"; }
    sleep 0.1
done
kill_session
trap - EXIT
st=0; wait "$run" || st=$?
[ "$st" = 137 ] || fail "the killed run ended with status $st"
[ ! -e PB/1/manifest.json ] && ls PB/1/.sp-done-train-* > /dev/null || fail "the killed part left: $(ls -A PB/1)"
[ ! -e B ] || fail "merged after a killed run"
rm PB/1/.sp-pause-shard-finished

# 4. once more: only part 1 runs, taking over its finished shard
expect_status 0 "${RUN[@]}" -w PB -o B -- "${CONVERT[@]}"
[ "$(runs_of PB)" = "1 2 1" ] || fail "parts ran $(runs_of PB) times, expected 1 2 1 (part 1: failed, then rerun; the killed run logged nothing)"
grep -q "^part 1/3:	sp-shard: 23409 records in 6 shards (train 20054, test 3355), .* in PB/1; 1 shard taken over from an interrupted run$" err ||
    { cat err >&2; fail "the rerun of part 1 did not take over the killed run's shard"; }
! grep -q "^part [02]/3:" err || fail "parts 0 and 2 ran again"
same_as_one B
cmp <(sp-cat PA/1) <(sp-cat PB/1) || fail "the resumed part 1 differs from an uninterrupted one"
echo ok
