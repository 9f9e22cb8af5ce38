#!/bin/bash
# multi.sh NAME ENV... : run on the manifest split and the four re-splits (make_splits.py)
n=$1; shift
/tmp/exp/run.sh $n "$@"
for s in 1 2 3 4; do BENCH_DIR=/tmp/exp/split$s /tmp/exp/run.sh ${n}_s$s "$@"; done
