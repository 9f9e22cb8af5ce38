import json, sys
keys = ['sample_auroc', 'tpr1', 'pair@10', 'pair@50', 'pair@all', 'sample_auroc_al', 'tpr1_al', 'pair@10_al', 'pair@50_al']
print('%-22s %-5s' % ('config', 'mode') + ''.join('%10s' % k[:10] for k in keys))
seen = {}
for l in open('/work/scratch/style/results_lofo.jsonl'):
    r = json.loads(l)
    seen[(r['config'], r.get('mode', 'rot'))] = r
for (c, m), r in seen.items():
    if len(sys.argv) > 1 and m != sys.argv[1]:
        continue
    print('%-22s %-5s' % (c, m) + ''.join('%10.3f' % r.get('lofo_' + k, float('nan')) for k in keys))
