#!/bin/bash
# A conversion in N parts on one machine under GNU parallel: convert-array.sbatch's parts side by side, then merge.sbatch.
#
# usage: convert-parallel.sh -n N -w PARTS -o OUT [-j JOBS] [--verify] [--] CONVERT-ARGS...
#   -n N          the part count; part I goes to PARTS/I
#   -w PARTS      the parts' directory; GNU parallel's job log is PARTS/log/parallel.joblog
#   -o OUT        the merged shard set, written once every part succeeded: a
#                 directory, or a URL (s3://, http(s)://) it is uploaded to
#   -j JOBS       parts run at once (default: parallel's, one per CPU core)
#   --verify      reread the merged set (sp-verify)
#   CONVERT-ARGS  convert-array.sbatch's options and inputs, as for submit.sh
# Each part's output is printed when it ends, every line tagged "part I/N:".
# When a part fails, or the whole run is killed, the merge is not run and
# running the same command again reruns only the parts that failed or never
# finished (parallel --resume-failed over the job log); sp-shard resumes each
# from the shards it had finished, and then the merge runs.
# Exit status: 0 merged; 1 a part failed (named on stderr), or the merge's
# status; 2 wrong arguments.
set -eu -o pipefail

me=convert-parallel.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { echo "$me: $*" >&2; echo "usage: convert-parallel.sh -n N -w PARTS -o OUT [-j JOBS] [--verify] [--] CONVERT-ARGS..." >&2; exit 2; }
count="" parts_dir="" out="" jobs=() verify=()
while [ $# -gt 0 ]; do
    case "$1" in
        # the comment at the top, less its #SBATCH lines
        -h | --help) sed -n '2,/^[^#]/{/^#SBATCH/d;/^[^#]/d;s/^# \{0,1\}//;s/^#$//;p}' "$0"; exit 0 ;;
        -n) [ $# -ge 2 ] || usage "-n needs a count"; count=$2; shift 2 ;;
        -w) [ $# -ge 2 ] || usage "-w needs a directory"; parts_dir=$2; shift 2 ;;
        -o) [ $# -ge 2 ] || usage "-o needs a directory"; out=$2; shift 2 ;;
        -j) [ $# -ge 2 ] || usage "-j needs a count"; jobs=(-j "$2"); shift 2 ;;
        --verify) verify=(--verify); shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
case "$count" in '' | *[!0-9]* | 0*) usage "-n ${count:-(none)}: not a positive count" ;; esac
[ -n "$parts_dir" ] || usage "no -w PARTS directory"
[ -n "$out" ] || usage "no -o OUT directory"
case "$parts_dir" in *://*) usage "-w $parts_dir: the parts' directory on this machine, not a URL (submit.sh takes one)" ;; esac
[ $# -gt 0 ] || usage "no CONVERT-ARGS (inputs, or --fetch)"
command -v parallel > /dev/null || { echo "$me: GNU parallel is not installed (Debian: parallel)" >&2; exit 1; }

mkdir -p "$parts_dir/log"
joblog="$parts_dir/log/parallel.joblog"
set +e
parallel --will-cite --halt never "${jobs[@]}" --joblog "$joblog" --resume-failed --tagstring "part {}/$count:" \
    -q bash "$here/convert-array.sbatch" --part "{}/$count" -o "$parts_dir" "$@" ::: $(seq 0 $((count - 1)))
status=$?
set -e
if [ "$status" != 0 ]; then
    # the job log's last line for each part: Seq (part + 1) ... Exitval Signal
    failed=$(awk -F'\t' 'NR > 1 { last[$1] = ($7 != 0 || $8 != 0) } END { for (s in last) if (last[s]) print s - 1 }' "$joblog" | sort -n | paste -sd ' ')
    echo "$me: parts failed: ${failed:-(see above)}; not merged. Run the same command again to rerun only those" >&2
    exit 1
fi
bash "$here/merge.sbatch" --parts "$count" -o "$out" "${verify[@]}" "$parts_dir"
