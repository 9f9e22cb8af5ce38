#!/bin/bash
# baseline.sh: the textbook baseline (../shared/tools/peer_baseline.py, needs scikit-learn) on the
# manifest split and the four re-splits, for the comparison of "How the style weight was chosen".
PY=${PY:-python3}
$PY /work/shared/tools/peer_baseline.py /work/shared/datasets/alpaca-eval-dev > /tmp/exp/peer_manifest.json
for s in 1 2 3 4; do $PY /work/shared/tools/peer_baseline.py /tmp/exp/split$s > /tmp/exp/peer_split$s.json; done
