"""Four random re-splits of alpaca-eval-dev's 403 prompts (seeds 1-4, same test size as the
manifest's) for the held-out validation: validation_lofo uses known models only, so any prompt
split is fair. Writes /tmp/exp/split{1,2,3,4}/ with the manifest and a link to the samples."""
import json, random, os
D = '/work/shared/datasets/alpaca-eval-dev'
m = json.load(open(D + '/manifest.json'))
allp = m['train_prompts'] + m['test_prompts']
for seed in (1, 2, 3, 4):
    r = random.Random(seed)
    p = allp[:]
    r.shuffle(p)
    mm = dict(m)
    mm['test_prompts'] = p[:len(m['test_prompts'])]
    mm['train_prompts'] = p[len(m['test_prompts']):]
    d = '/tmp/exp/split%d' % seed
    os.makedirs(d, exist_ok=True)
    json.dump(mm, open(d + '/manifest.json', 'w'))
    if not os.path.exists(d + '/samples.jsonl'):
        os.symlink(D + '/samples.jsonl', d + '/samples.jsonl')
