#!/bin/sh
# The reference trainer's recipes end to end against their figures (make
# reproduce): bench/reproduce.py's usage. DATA defaults to data (cifar10 and
# mnist shard sets made by the project's tools), OUT to build/reproduce.
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- data build/reproduce
exec /usr/bin/python3 bench/reproduce.py "$@"
