#!/bin/bash
# Submits a conversion to Slurm: the job array of its N parts, and the merge job that runs once they all succeeded.
#
# usage: submit.sh -n N -w PARTS -o OUT [--logs DIR] [--rerun LIST] [--verify] [--sbatch OPT]... [--] CONVERT-ARGS...
#   -n N            the part count: an array of N tasks, 0 .. N-1
#   -w PARTS        where the parts go (PARTS/0 .. PARTS/N-1) and the jobs'
#                   logs (PARTS/log/convert-JOB_TASK.out, merge-JOB.out); on a
#                   file system every node sees, or a URL (s3://BUCKET/PREFIX,
#                   http(s)://HOST/PATH) the parts are uploaded to
#   -o OUT          the merged shard set: a directory, or a URL it is
#                   uploaded to
#   --logs DIR      the jobs' logs go to DIR (default PARTS/log; needed when
#                   PARTS is a URL)
#   --rerun LIST    submit only these tasks again (sbatch's --array syntax:
#                   1 or 0,3-5), with the same CONVERT-ARGS: a part that failed
#                   or was killed is redone alone (sp-shard resumes it from the
#                   shards it finished), then the merge joins all N parts
#   --verify        the merge job rereads the merged set (sp-verify)
#   --sbatch OPT    one option for sbatch, for both jobs (repeatable), e.g.
#                   --sbatch --partition=cpu --sbatch --cpus-per-task=4
#   CONVERT-ARGS    the options and inputs of convert-array.sbatch, e.g.
#                   --decode "--resize 224" --shard "-s 1G" ILSVRC2012_img_train.tar
# The merge job is submitted with --dependency=afterok:ARRAY and
# --kill-on-invalid-dep=yes: when a task fails Slurm cancels it, and the
# rerun submits a new one. Relative paths are taken from the current directory,
# which both jobs run in. Prints "ARRAYJOB MERGEJOB" on stdout.
# Exit status: 0 both jobs submitted, 2 wrong arguments, else sbatch's.
set -eu -o pipefail

me=submit.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { echo "$me: $*" >&2; echo "usage: submit.sh -n N -w PARTS -o OUT [--logs DIR] [--rerun LIST] [--verify] [--sbatch OPT]... [--] CONVERT-ARGS..." >&2; exit 2; }
count="" parts_dir="" out="" logs="" rerun="" verify=() sbatch_opts=()
while [ $# -gt 0 ]; do
    case "$1" in
        # the comment at the top, less its #SBATCH lines
        -h | --help) sed -n '2,/^[^#]/{/^#SBATCH/d;/^[^#]/d;s/^# \{0,1\}//;s/^#$//;p}' "$0"; exit 0 ;;
        -n) [ $# -ge 2 ] || usage "-n needs a count"; count=$2; shift 2 ;;
        -w) [ $# -ge 2 ] || usage "-w needs a directory"; parts_dir=$2; shift 2 ;;
        -o) [ $# -ge 2 ] || usage "-o needs a directory or URL"; out=$2; shift 2 ;;
        --logs) [ $# -ge 2 ] || usage "--logs needs a directory"; logs=$2; shift 2 ;;
        --rerun) [ $# -ge 2 ] || usage "--rerun needs task indices"; rerun=$2; shift 2 ;;
        --verify) verify=(--verify); shift ;;
        --sbatch) [ $# -ge 2 ] || usage "--sbatch needs an option"; sbatch_opts+=("$2"); shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
case "$count" in '' | *[!0-9]* | 0*) usage "-n ${count:-(none)}: not a positive count" ;; esac
[ -n "$parts_dir" ] || usage "no -w PARTS directory"
[ -n "$out" ] || usage "no -o OUT directory"
[ $# -gt 0 ] || usage "no CONVERT-ARGS (inputs, or --fetch)"
case "$parts_dir" in
    http://* | https://* | s3://*) [ -n "$logs" ] || usage "-w $parts_dir is a URL: name a directory for the jobs' logs with --logs DIR" ;;
    file://*) usage "-w $parts_dir: give the directory itself, not a file:// URL" ;;
    *) logs=${logs:-$parts_dir/log} ;;
esac
tasks="0-$((count - 1))"
if [ -n "$rerun" ]; then
    # indices and ranges within 0 .. N-1 (the array script checks again)
    IFS=, read -r -a items <<< "$rerun"
    for item in "${items[@]}"; do
        case "$item" in
            '' | *[!0-9-]* | -* | *- | *-*-*) usage "--rerun $rerun: not a list of tasks such as 1 or 0,3-5" ;;
        esac
        for i in ${item/-/ }; do
            [ "$((10#$i))" -lt "$count" ] || usage "--rerun $rerun: task $i is not one of 0 .. $((count - 1))"
        done
    done
    tasks=$rerun
fi

mkdir -p "$logs"
array=$(sbatch --parsable "${sbatch_opts[@]}" --array="$tasks" --output="$logs/convert-%A_%a.out" \
    "$here/convert-array.sbatch" --parts "$count" -o "$parts_dir" "$@")
array=${array%%;*}
merge=$(sbatch --parsable "${sbatch_opts[@]}" --dependency="afterok:$array" --kill-on-invalid-dep=yes \
    --output="$logs/merge-%j.out" "$here/merge.sbatch" --parts "$count" -o "$out" "${verify[@]}" "$parts_dir")
merge=${merge%%;*}
echo "$me: tasks $tasks of $count parts: array job $array; merge into $out: job $merge (after the array succeeds)" >&2
echo "$array $merge"
