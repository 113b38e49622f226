# Helpers for the tool tests; sourced by tests/tools/test_*.sh, which run in
# an empty temporary directory with the tools on PATH, under bash (tests/run.sh
# runs them so): with pipefail a pipeline fails when any stage fails, not only
# the last, so a stage that reads a file whole must not be cut by `head`.
[ -n "${BASH_VERSION:-}" ] || { echo "FAILED: the tool tests run under bash (tests/run.sh)" >&2; exit 1; }
set -eu -o pipefail
PY=/usr/bin/python3
FIX="$SP_ROOT/tests/fixtures"
FMNIST=/usr/share/datasets/fashion-mnist

fail() { echo "FAILED: $*" >&2; exit 1; }

# skip_under_sanitizers REASON: in `make asan` (SP_SAN set), skips the test (status 77,
# REASON shown): for a test whose time goes to work the sanitizers add nothing to
# (a training run's many steps, processes killed before their checks run, a second
# build of the project), where REASON names the tests that run its C paths under them.
skip_under_sanitizers() {
    [ -z "${SP_SAN:-}" ] || { echo "under sanitizers: $*" >&2; exit 77; }
}

# expect_status WANT command...: runs command, stdout to out, stderr to err.
expect_status() {
    want=$1; shift
    set +e
    "$@" >out 2>err
    got=$?
    set -e
    [ "$got" -eq "$want" ] || { cat err >&2; fail "$* exited $got, expected $want"; }
}

# expect_stages "S1 S2 ..." PIPELINE: runs PIPELINE (a bash command line, one
# pipeline, stdout to out, stderr to err) and checks each stage's exit status,
# in order. A stage's want may list alternatives split by "/", as "0/141" for
# a stage that a later stage's early exit may cut with SIGPIPE.
expect_stages() {
    want=$1 cmd=$2
    set +e
    bash -c "$cmd"'
echo "${PIPESTATUS[*]}" > stages' >out 2>err
    set -e
    got=$(cat stages)
    set -f; set -- $want; set +f
    for s in $got; do
        case "/${1:-none}/" in */"$s"/*) ;; *) cat err >&2; fail "$cmd: stage statuses $got, expected $want" ;; esac
        shift || true
    done
    [ $# -eq 0 ] || { cat err >&2; fail "$cmd: stage statuses $got, expected $want"; }
}

# expect_err TEXT: the stderr of the last expect_status is exactly TEXT.
expect_err() {
    printf '%s\n' "$1" > want_err
    diff -u want_err err >&2 || fail "stderr differs"
}

# expect_err_has TEXT: stderr contains TEXT.
expect_err_has() {
    grep -qF -- "$1" err || { cat err >&2; fail "stderr lacks: $1"; }
}

# term_at_step_20 LOG COMMAND...: runs COMMAND (sp-train ARGS, or mpirun ... sp-train
# ARGS: sp-train's arguments last) with --progress-interval 0.001, its output into LOG;
# sends SIGTERM once the progress lines show step 20 of 94 to the process, or under
# mpirun to its rank 1; prints COMMAND's exit status. The target is found at the
# first progress line (pgrep and /proc take tens of milliseconds, in which a small
# net's remaining 74 steps could end), so that step 20 only sends the signal.
term_at_step_20() {
    local log=$1; shift
    rm -f pid
    { "$@" --progress-interval 0.001 2>&1 & echo $! > pid; wait $! && echo "status 0" || echo "status $?"; } | {
        sent= target=
        while IFS= read -r line; do
            printf '%s\n' "$line" >> "$log"
            case $line in
            *"batch "[2-9][0-9]/94*) [ -n "$sent" ] || { kill -TERM "${target:-$(sigterm_target "$1" "$(cat pid)")}"; sent=1; } ;;
            *"batch "*/94*) [ -n "$target" ] || target=$(sigterm_target "$1" "$(cat pid)") ;;
            "status "*) echo "${line#status }" ;;
            esac
        done
    }
}
sigterm_target() { # COMMAND PID: PID itself, or for mpirun its rank 1
    [ "$1" = mpirun ] || { echo "$2"; return; }
    for c in $(pgrep -P "$2"); do
        if tr '\0' '\n' < "/proc/$c/environ" | grep -qx OMPI_COMM_WORLD_RANK=1; then echo "$c"; return; fi
    done
    echo "no rank 1 under mpirun $2" >&2
}

# ---- servers on 127.0.0.1 for the fetch tests; stopped when the test exits ----
# free_port: a port P such that P and P + 1 are free on 127.0.0.1 now (s3_server.sh
# puts its monitor on P + 1), drawn from 20000-32767: below Linux's ephemeral range
# (32768-60999), so another test's outgoing connection cannot take it between this
# check and the server's bind, when tests run side by side (tests/run.sh, SP_JOBS)
free_port() {
    $PY - <<'X'
import random, socket
for _ in range(1000):
    p, held = random.SystemRandom().randrange(20000, 32767), []
    try:
        for q in (p, p + 1):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", q))
    except OSError:
        continue
    finally:
        for s in held:
            s.close()
    print(p)
    break
else:
    raise SystemExit("free_port: no free pair of ports in 20000-32767")
X
}

wait_port() { # PORT: until something listens there (10 s at most)
    $PY - "$1" <<'X'
import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("nothing listens on port " + sys.argv[1])
X
}

stop_servers() {
    [ -f nginx/nginx.pid ] && kill "$(cat nginx/nginx.pid)" 2>/dev/null
    [ -f servers.pids ] && while read -r p; do kill "$p" 2>/dev/null; done < servers.pids
    return 0
}

# start_nginx ROOT [CERT KEY]: serves ROOT at http://127.0.0.1:$NGINX_PORT/
# (and, given a certificate and its key, at https://127.0.0.1:$NGINX_TLS_PORT/),
# logging each request as "GET /path HTTP/1.1 STATUS range=RANGE" to
# nginx/access.log. $NGINX_EXTRA, if set, goes into both server blocks
# (e.g. WebDAV's "dav_methods PUT;" and locations).
start_nginx() {
    mkdir -p nginx/body
    NGINX_PORT=$(free_port)
    tls=""
    if [ $# -ge 3 ]; then
        NGINX_TLS_PORT=$(free_port)
        tls="server { listen 127.0.0.1:$NGINX_TLS_PORT ssl; ssl_certificate $2; ssl_certificate_key $3; root $1; ${NGINX_EXTRA:-} }"
    fi
    user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    cat > nginx/nginx.conf <<X
$user
daemon on;
pid $PWD/nginx/nginx.pid;
error_log $PWD/nginx/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
    log_format t '\$request \$status range=\$http_range';
    access_log $PWD/nginx/access.log t;
    client_body_temp_path $PWD/nginx/body;
    server { listen 127.0.0.1:$NGINX_PORT; root $1; ${NGINX_EXTRA:-} }
    $tls
}
X
    nginx -e "$PWD/nginx/error.log" -c "$PWD/nginx/nginx.conf" || fail "nginx did not start"
    trap stop_servers EXIT
    wait_port "$NGINX_PORT"
    [ -z "$tls" ] || wait_port "$NGINX_TLS_PORT"
}

# make_test_ca: ca.pem (a CA made here) and srv.pem, srv.key (a server
# certificate for 127.0.0.1 that it signs), in the current directory.
make_test_ca() {
    command -v openssl >/dev/null || fail "openssl is missing (scripts/install-deps.sh installs it)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=shardpipe test CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout srv.key -out srv.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out srv.pem 2>/dev/null
}

# start_fault NAME DIR [--tls CERT KEY] [--plain-port N]: the fault server
# (tests/servers/fault_server.py) serving DIR; its port in $FAULT_PORT, its
# request log in NAME.log.
start_fault() {
    name=$1 dir=$2; shift 2
    rm -f "$name.port"
    $PY "$SP_ROOT/tests/servers/fault_server.py" "$dir" "$name.port" "$name.log" "$@" &
    echo $! >> servers.pids
    trap stop_servers EXIT
    i=0
    while [ ! -s "$name.port" ]; do
        i=$((i + 1)); [ $i -lt 200 ] || fail "fault server did not start"; sleep 0.05
    done
    FAULT_PORT=$(cat "$name.port")
    touch "$name.log"
}

# build_reader_dump: builds tests/reader/reader_dump.c here as ./reader_dump,
# against the built libshardpipe-reader through its pkg-config file (exported
# PKG_CONFIG_PATH), as a user of the library would.
build_reader_dump() {
    export PKG_CONFIG_PATH="$(dirname "$SP_BIN")/lib/pkgconfig"
    cc -std=c11 -Wall -Werror ${SP_SAN:-} "$SP_ROOT/tests/reader/reader_dump.c" $(pkg-config --cflags --libs shardpipe-reader) \
        -lxxhash -o reader_dump
}

# ---- the fault and crash tests (test_*_faults.sh) ----
# build_fault_shims: fails the test without fiu-run (the install script
# installs fiu-utils); builds the LD_PRELOAD shims nth_fault.so and
# mkstemp_fault.so (tests/faults/) here and lets ASan-built tools start
# under them.
build_fault_shims() {
    command -v fiu-run >/dev/null || fail "fiu-run is missing: scripts/install-deps.sh installs fiu-utils"
    cc -shared -fPIC -O1 -o nth_fault.so "$SP_ROOT/tests/faults/nth_fault.c" -ldl
    cc -shared -fPIC -O1 -o mkstemp_fault.so "$SP_ROOT/tests/faults/mkstemp_fault.c" -ldl
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
}

# mount_tmpfs_or_skip DIR KIB: a real small disk: mounts a tmpfs of KIB KiB
# on the new directory DIR, unmounted (and any servers stopped) when the test
# exits; skips the test (status 77) where mounting is not allowed.
mount_tmpfs_or_skip() {
    mkdir "$1"
    if ! mount -t tmpfs -o size="$2"k tmpfs "$1" 2>mount.err; then
        echo "SKIP: cannot mount a $2 KiB tmpfs here ($(head -1 mount.err))" >&2
        exit 77
    fi
    trap "umount '$1' 2>/dev/null || true; stop_servers" EXIT
}

# make_fetch_data SEED: the files the fetch tests serve: data/a.bin (300,000
# random bytes from SEED) and data/b.txt.gz, and files.json listing each as
# {"name", "size", "md5"} (a manifest's "files"). data/ must exist.
make_fetch_data() {
    $PY - "$1" <<'X'
import gzip, hashlib, json, random, sys
r = random.Random(int(sys.argv[1]))
open("data/a.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(300000)))
with gzip.GzipFile("data/b.txt.gz", "wb", mtime=0) as g:
    g.write(b"hello from b\n" * 1000)
files = []
for n in ("a.bin", "b.txt.gz"):
    d = open("data/" + n, "rb").read()
    files.append({"name": n, "size": len(d), "md5": hashlib.md5(d).hexdigest()})
json.dump(files, open("files.json", "w"))
X
}

# tv_case MODEL FIXTURES: nn_reference's torchvision check of MODEL on both
# of nn/'s paths: the blocked layout on oneDNN (where this CPU has oneDNN
# kernels, `nn_reference --layout-block` > 0; the run must say it took it)
# and NCHW on nn/'s own gemms (SP_NN_NO_ONEDNN=1).
# (grep reads a here-string, not a pipe: grep -q leaves at its first match,
# and a printf still writing into the pipe then fails the pipeline under
# pipefail with SIGPIPE, a match reported as a miss.)
tv_case() {
    ref="$SP_BIN/../tests/nn_reference"
    out=$("$ref" --net "$1" train "$2") || { printf '%s\n' "$out"; fail "$1 against torchvision (default layout)"; }
    printf '%s\n' "$out"
    if [ "$("$ref" --layout-block)" -gt 0 ]; then
        grep -q "layout: blocked" <<<"$out" || fail "$1 did not run in the blocked layout"
    fi
    out=$(SP_NN_NO_ONEDNN=1 "$ref" --net "$1" train "$2") || { printf '%s\n' "$out"; fail "$1 against torchvision (NCHW)"; }
    printf '%s\n' "$out"
    grep -q "layout: NCHW" <<<"$out" || fail "$1 did not run in NCHW under SP_NN_NO_ONEDNN"
}

# mpirun_loopback NP COMMAND...: COMMAND as NP MPI ranks on this machine over
# loopback TCP (no shared-memory transport), no binding (a rank's --threads may
# use more than one core), oversubscribed. Under AddressSanitizer (make asan)
# the ranks run without leak detection: Open MPI keeps allocations past
# MPI_Finalize and unloads the components that made them, so no suppression
# can name their stacks. As root (CI) the caller exports
# OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
mpirun_loopback() {
    local np=$1
    shift
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" mpirun --oversubscribe -np "$np" --bind-to none --mca pml ob1 \
        --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo "$@"
}
