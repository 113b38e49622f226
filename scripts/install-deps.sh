#!/bin/sh
# Installs the Debian 12 packages shardpipe needs: to build and install it
# (help2man), then those of the tests (the default, or --test) or only those
# of the demo (--demo: Fashion-MNIST and Debian's python3, nothing else), plus
# any packages named as arguments (the benchmarks name their peers). As root
# it runs apt-get; as anyone else it prints the command to run and exits 1
# when something is missing.
# usage: install-deps.sh [--test|--demo|--build] [PACKAGE]...
set -eu

BUILD_PACKAGES="gcc libc6-dev make pkg-config help2man
libarchive-dev libhdf5-dev libzstd-dev libjansson-dev
libxxhash-dev libssl-dev libcurl4-openssl-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev libopenblas-openmp-dev
libdnnl-dev"
# make demo: the dataset, and /usr/bin/python3 for its summary
DEMO_PACKAGES="dataset-fashion-mnist python3"
# make test: the reference implementations, servers and tools the tests check against;
# the Debian packaging tools (tests/tools/test_deb.sh builds the .debs); Ceph's radosgw, the S3
# server of tests/servers/s3_server.sh
TEST_PACKAGES="hdf5-tools zstd python3 python3-h5py python3-numpy python3-xxhash python3-pil python3-png python3-torch
python3-torchvision python3-pip python3-setuptools nginx-light openssl man-db
dataset-fashion-mnist mate-backgrounds python3-zstandard libjpeg-turbo-progs fiu-utils util-linux bsdutils
slurmctld slurmd slurm-client munge parallel openmpi-bin
debhelper dh-python dpkg-dev fakeroot lintian build-essential time python3-sklearn
ceph-mon ceph-osd radosgw curl"

set_for=$TEST_PACKAGES
case "${1:-}" in
    --test) shift ;;
    --demo) set_for=$DEMO_PACKAGES; shift ;;
    --build) set_for=""; shift ;;
esac
PACKAGES="$BUILD_PACKAGES $set_for $*"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages:$missing" >&2
    echo "install-deps: run as root:  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >&2
