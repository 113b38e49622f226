# Conversion on a real single-node Slurm (tests/tools/slurm_lib.sh): Fashion-MNIST as a job array of 3 parts plus the merge job.
# scripts/slurm/submit.sh submits the array (convert-array.sbatch) and the
# merge (merge.sbatch, --dependency=afterok); the merged set must hold the
# records of a single-process run: keys, labels and pixel checksums, sorted,
# from sp-cat, and every pixel against the IDX files (check_idx_shards.py).
# Then a task that fails (its part directory is taken by a file): the merge
# is cancelled and nothing is merged; its rerun alone is killed with SIGKILL
# after its first finished shard (SP_WRITER_PAUSE); a second rerun alone
# takes that shard over and the new merge joins all three parts, again equal
# to the single-process run. Every daemon is stopped by PID at the end (and on
# any exit), and checked gone. Skips (77) only when not root.
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "Slurm runs the tools test_convert_parallel runs under them; its time goes to the daemons"
[ "$(id -u)" = 0 ] || { echo "SKIP: the test Slurm runs its daemons as root (SlurmUser=root), and this is not root" >&2; exit 77; }
[ -d "$FMNIST" ] || fail "dataset-fashion-mnist is not installed"
. "$SP_ROOT/tests/tools/slurm_lib.sh"
SUBMIT="$SP_ROOT/scripts/slurm/submit.sh"
CONVERT=(--decode -q --shard "-n 5000" "$FMNIST"/*.gz)

# the single-process run the parts must equal
sp-unpack "$FMNIST"/*.gz | sp-decode -q | sp-shard -q -n 5000 -o ONE
sp-cat ONE | sort > one.txt
[ "$(wc -l < one.txt)" -eq 70000 ] || fail "the single-process run holds $(wc -l < one.txt) records"

# same_as_one SET PARTS: SET holds the single-process run's records, merged
# from the 3 parts in PARTS, each part about a third
same_as_one() {
    sp-cat "$1" | sort > merged.txt
    cmp -s merged.txt one.txt || fail "$1: its records differ from the single-process run's ($(diff merged.txt one.txt | grep -c '^[<>]') lines)"
    $PY - "$1" "$2" <<'X'
import json, sys
out, parts = sys.argv[1], sys.argv[2]
m = json.load(open(f"{out}/manifest.json"))
assert m["merged_parts"] == 3 and m["total_records"] == 70000 and "part" not in m, m
counts = []
for i in range(3):
    p = json.load(open(f"{parts}/{i}/manifest.json"))
    assert p["part"] == {"index": i, "count": 3}, p["part"]
    counts.append(p["total_records"])
assert sum(counts) == 70000 and all(21000 <= c <= 25700 for c in counts), counts
print(out, "parts", counts)
X
}

# task_log PARTS JOB TASK: the array task's log (the convert-array.sbatch's stderr)
task_log() { cat "$1/log/convert-$2_$3.out"; }

start_slurm
echo "the test Slurm was idle after ${SLURM_UP_SECONDS} s"

# 1. the whole array and the merge after it
start=$(date +%s.%N)
ids=$("$SUBMIT" -n 3 -w PA -o A --verify --sbatch --cpus-per-task=1 -- "${CONVERT[@]}")
read -r array merge <<< "$ids"
wait_jobs "$array" "$merge"
for t in 0 1 2; do
    [ "$(job_state "${array}_$t")" = COMPLETED ] || { task_log PA "$array" $t >&2; fail "task $t: $(job_state "${array}_$t")"; }
    task_log PA "$array" $t | grep -qx "sp-convert: part $t/3: sp-unpack 0, sp-decode 0, sp-shard 0" || fail "task $t's log"
done
[ "$(job_state "$merge")" = COMPLETED ] || { cat PA/log/merge-"$merge".out >&2; fail "merge: $(job_state "$merge")"; }
echo "array of 3 and merge: $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s"
same_as_one A PA
$PY "$SP_ROOT/tests/ref/check_idx_shards.py" A "$FMNIST" > ref.txt || { cat ref.txt; fail "A against the IDX files"; }
cat > want <<'X'
train: 60000 records, 0 pixels differ, 0 labels differ, 0 keys differ, 0 checksums differ
test: 10000 records, 0 pixels differ, 0 labels differ, 0 keys differ, 0 checksums differ
X
diff -u want ref.txt || fail "A against the IDX files"

# 2. a task that fails: its part directory is taken by a file, so its
# sp-shard fails; the others complete, the merge is cancelled, nothing merged
mkdir PB
echo "not a directory" > PB/1
ids=$("$SUBMIT" -n 3 -w PB -o B --sbatch --cpus-per-task=1 -- "${CONVERT[@]}")
read -r array merge <<< "$ids"
wait_jobs "$array" "$merge"
states="$(job_state "${array}_0") $(job_state "${array}_1") $(job_state "${array}_2") $(job_state "$merge")"
[ "$states" = "COMPLETED FAILED COMPLETED CANCELLED" ] || fail "tasks 0 1 2 and merge ended $states"
exit_code=$(scontrol -o show job "${array}_1"); exit_code=${exit_code#* ExitCode=}; exit_code=${exit_code%% *}
[ "$exit_code" = 3:0 ] || fail "failed task 1: ExitCode $exit_code, expected 3:0 (sp-shard's system error)"
task_log PB "$array" 1 | grep -qE "^sp-convert: part 1/3: sp-unpack (0|141), sp-decode (0|141), sp-shard 3$" || { task_log PB "$array" 1 >&2; fail "task 1's log"; }
[ ! -e B ] && [ ! -e "PB/log/merge-$merge.out" ] || fail "the merge ran after a failed task"
echo "failed task 1: tasks and merge $states"

# 3. task 1 rerun alone, killed (SIGKILL) once it finished its first shard
rm PB/1
ids=$(SP_WRITER_PAUSE=shard-finished "$SUBMIT" --rerun 1 -n 3 -w PB -o B --sbatch --cpus-per-task=1 -- "${CONVERT[@]}")
read -r array merge <<< "$ids"
i=0
until [ -e PB/1/.sp-pause-shard-finished ]; do
    i=$((i + 1)); [ $i -lt 600 ] || fail "the rerun of task 1 did not finish a shard in 60 s"
    sleep 0.1
done
scancel --full --signal=KILL "${array}_1"
wait_jobs "$array" "$merge"
states="$(job_state "${array}_1") $(job_state "$merge")"
[ "$states" = "CANCELLED CANCELLED" ] || fail "killed task 1 and merge ended $states"
[ ! -e PB/1/manifest.json ] && [ -e PB/1/.sp-journal ] && ls PB/1/.sp-done-train-* > /dev/null || fail "the killed task left: $(ls -A PB/1)"
[ ! -e B ] || fail "the merge ran after a killed task"
rm PB/1/.sp-pause-shard-finished
echo "killed task 1: task and merge $states, left $(ls -A PB/1 | grep -c '^\.sp-done-') finished shard(s)"

# 4. task 1 rerun alone again: it takes over the finished shard, and the new
# merge joins all three parts
ids=$("$SUBMIT" --rerun 1 -n 3 -w PB -o B --verify --sbatch --cpus-per-task=1 -- "${CONVERT[@]}")
read -r array merge <<< "$ids"
wait_jobs "$array" "$merge"
states="$(job_state "${array}_1") $(job_state "$merge")"
[ "$states" = "COMPLETED COMPLETED" ] || { task_log PB "$array" 1 >&2; fail "rerun task 1 and merge ended $states"; }
task_log PB "$array" 1 | grep -q "^sp-shard: 23409 records in 6 shards (train 20054, test 3355), .* in PB/1; 1 shard taken over from an interrupted run$" ||
    { task_log PB "$array" 1 >&2; fail "the rerun of task 1 did not take over the killed run's shard"; }
same_as_one B PB
cmp <(sp-cat PA/1) <(sp-cat PB/1) || fail "the resumed part 1 differs from an uninterrupted one"
echo "rerun task 1: task and merge $states"

# every daemon stopped by PID, the cluster's directory gone
pids=$SLURM_PIDS dir=$SLURM_DIR
stop_slurm 0
for p in $pids; do ! kill -0 "$p" 2>/dev/null || fail "daemon $p still runs after stop_slurm"; done
[ ! -e "$dir" ] || fail "$dir is left behind"
echo ok
