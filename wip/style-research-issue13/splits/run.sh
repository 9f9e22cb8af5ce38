#!/bin/bash
# usage: run.sh NAME [ENV=VAL ...]
name=$1; shift
cd /work/main && env "$@" target/release/pedigree bench ${BENCH_DIR:-../shared/datasets/alpaca-eval-dev} > /tmp/exp/$name.json 2>/tmp/exp/$name.err
python3 - "$name" <<'PY'
import json,sys
d=json.load(open('/tmp/exp/%s.json'%sys.argv[1]))
v=d['validation_lofo']
ks=['sample_auroc_upstream','sample_tpr_at_1fpr_upstream','sample_auroc_student','suspect_auroc@10','suspect_auroc@50','suspect_auroc@all']
print('%-18s'%sys.argv[1], ' '.join('%.3f'%d[k] for k in ks), '| val %.3f | %.3f %.3f %.3f'%(v['sample_auroc'],v['model_auroc@10'],v['model_auroc@50'],v['model_auroc@all']), '| rps %.0f'%d['scored_responses_per_second'])
PY
