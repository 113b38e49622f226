# The Slurm scripts with URLs (tests/tools/slurm_lib.sh's one-node Slurm, and
# nginx with WebDAV's PUT on 127.0.0.1, both stopped by PID): submit.sh with
# -w http://.../parts (the jobs' logs in --logs) and -o https://.../out
# (the test's CA): the array uploads each part, the merge job checks them
# through sp-inspect, uploads the merged set and verifies it; it holds the
# single-process run's records. merge.sbatch over URL parts that are missing
# or of another count stops with status 1 naming each, nothing uploaded; -w
# URL without --logs is a usage error. Skips (77) only when not root.
. "$SP_ROOT/tests/tools/lib.sh"
skip_under_sanitizers "Slurm runs the tools test_remote_upload_http runs under them; its time goes to the daemons"
[ "$(id -u)" = 0 ] || { echo "SKIP: the test Slurm runs its daemons as root (SlurmUser=root), and this is not root" >&2; exit 77; }
. "$SP_ROOT/tests/tools/slurm_lib.sh"
SLURM="$SP_ROOT/scripts/slurm"
$PY "$FIX/make_cifar.py" cf --per-batch 41
CONVERT=(--decode -q --shard "-n 48" "$PWD/cf/cifar-10-binary.tar.gz")
sp-unpack cf/cifar-10-binary.tar.gz | sp-decode -q | sp-shard -q -n 48 -o ONE
sp-cat ONE | sort > one.txt

expect_status 2 "$SLURM/submit.sh" -n 2 -w http://127.0.0.1:1/parts -o OUT -- "${CONVERT[@]}"
expect_err_has "submit.sh: -w http://127.0.0.1:1/parts is a URL: name a directory for the jobs' logs with --logs DIR"

start_slurm
mkdir www
make_test_ca
NGINX_EXTRA='client_max_body_size 0; dav_methods PUT; create_full_put_path on;'
start_nginx "$PWD/www" "$PWD/srv.pem" "$PWD/srv.key"
trap 'st=$?; stop_servers; stop_slurm "$st"; exit "$st"' EXIT
P=$NGINX_PORT T=$NGINX_TLS_PORT
export SHARDPIPE_CA_FILE=$PWD/ca.pem SHARDPIPE_CACHE=$PWD/cache # the jobs get the environment

# ---- the array uploads the parts, the merge job uploads the merged set ----
ids=$("$SLURM/submit.sh" -n 2 -w "http://127.0.0.1:$P/parts/" --logs logs -o "https://127.0.0.1:$T/out/" --verify \
    --sbatch --cpus-per-task=1 -- "${CONVERT[@]}")
read -r array merge <<< "$ids"
wait_jobs "$array" "$merge"
states="$(job_state "${array}_0") $(job_state "${array}_1") $(job_state "$merge")"
[ "$states" = "COMPLETED COMPLETED COMPLETED" ] || { cat logs/* >&2; fail "tasks 0 1 and merge ended $states"; }
grep -qx "sp-convert: part 1/2: sp-unpack 0, sp-decode 0, sp-shard 0" "logs/convert-${array}_1.out" || fail "task 1's log"
grep -qx "sp-merge: 2 parts merged into https://127.0.0.1:$T/out/" "logs/merge-$merge.out" || { cat "logs/merge-$merge.out" >&2; fail "the merge's log"; }
for i in 0 1; do [ -s "www/parts/$i/manifest.json" ] || fail "part $i was not uploaded"; done
sp-cat "http://127.0.0.1:$P/out" | sort > merged.txt
cmp -s merged.txt one.txt || fail "the merged set at the URL differs from the single-process run"
$PY -c 'import json, sys; m = json.load(open(sys.argv[1])); assert m["merged_parts"] == 2 and m["total_records"] == 246, m' www/out/manifest.json

# ---- parts missing or of another count: named, status 1, nothing merged ----
expect_status 1 bash "$SLURM/merge.sbatch" --parts 3 -o "http://127.0.0.1:$P/out3" "http://127.0.0.1:$P/parts"
expect_err_has "sp-merge: http://127.0.0.1:$P/parts/0: holds part 0 of 2, not part 0 of 3"
expect_err_has "sp-merge: http://127.0.0.1:$P/parts/2: not a committed part (rerun its task): sp-inspect: http://127.0.0.1:$P/parts/2/manifest.json: HTTP 404: not found"
[ ! -e www/out3 ] || fail "the merge uploaded a set short of a part"
echo ok
