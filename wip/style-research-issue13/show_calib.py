import json, sys
r = json.load(open(sys.argv[1]))
A = r['A']
print('config', r['config'], 'aligned', r['aligned'])
for s in A:
    print(s, 'thr1%%=%s' % A[s]['threshold_1pct'],
          {k: (A[s][k]['J'], A[s][k]['mu'], A[s][k]['tau'], A[s][k]['null_units_flagged'], A[s][k]['upstream_flagged']) for k in ['null_model', 'null_family']})
print('per-model mean  LOMO  LOFO')
for m in A['LOMO']['per_model_mean']:
    print('  %-28s %7.3f %7.3f' % (m, A['LOMO']['per_model_mean'][m], A['LOFO']['per_model_mean'][m]))
print('nested (F held out; inner calibration without F)')
for F, v in r['B'].items():
    print('  %-12s' % F, ' | '.join('%s fpr1=%.3f fpr5=%.3f set_p=%.3f rank_p=%.3f J=%d Fmean=%.2f mu=%.2f tau=%.2f' % (
        s, v[s]['realized_fpr@0.01'], v[s]['realized_fpr@0.05'], v[s]['set_p'], v[s]['rank_p'], v[s]['J'], v[s]['F_mean'], v[s]['null_mu'], v[s]['null_tau']) for s in v))
