#!/bin/bash
# multi.sh NAME ENV... : run on dev split + split1 + split2
n=$1; shift
/tmp/exp/run.sh $n "$@"
BENCH_DIR=/tmp/exp/split1 /tmp/exp/run.sh ${n}_s1 "$@"
BENCH_DIR=/tmp/exp/split2 /tmp/exp/run.sh ${n}_s2 "$@"
