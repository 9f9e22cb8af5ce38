"""Shared data loading, feature caching and per-fold transforms for the style research.

Everything is cached under /work/scratch/style/cache (raw hashed COUNT matrices per block, one
per text variant), so each experiment only does sparse algebra + a classifier fit.
"""
import json, os, re, hashlib
import numpy as np
import scipy.sparse as sp
from collections import defaultdict

D = '/work/shared/datasets/alpaca-eval-dev'
CACHE = '/work/scratch/style/cache'
os.makedirs(CACHE, exist_ok=True)

MAN = json.load(open(D + '/manifest.json'))
UP = MAN['upstream']
ROWS = [json.loads(l) for l in open(D + '/samples.jsonl')]
TEXTS = [r['response'] for r in ROWS]
MODEL = np.array([r['model'] for r in ROWS])
PID = np.array([r['prompt_id'] for r in ROWS])
KNOWN = {m: v['family'] for m, v in MAN['models'].items() if 'family' in v}
SUSP = {m: v['suspect'] for m, v in MAN['models'].items() if 'suspect' in v}
FAM = np.array([KNOWN.get(m, 'SUSPECT') for m in MODEL])
TRAIN_P = sorted(MAN['train_prompts'])
TEST_P = sorted(MAN['test_prompts'])
UP_MODELS = sorted(m for m, f in KNOWN.items() if f == UP)
NULL_FAMS = sorted(set(f for f in KNOWN.values() if f != UP))

# Three prompt folds: fold 0 = the manifest's test prompts; folds 1, 2 = train prompts split in two
# by a hash of the prompt id (fixed, no tuning). Fold k: fit on the other two folds, evaluate on k.
def _h(s):
    return int(hashlib.md5(s.encode()).hexdigest(), 16)
PROMPT_FOLDS = [TEST_P, sorted(p for p in TRAIN_P if _h(p) % 2 == 0),
                sorted(p for p in TRAIN_P if _h(p) % 2 == 1)]

# OpenAI held-out groups for LOFO folds: pairs mixing generations (fixed before any measurement).
UP_GROUPS = [['gpt4', 'text_davinci_001'], ['gpt4_0613', 'gpt35_turbo_instruct'],
             ['gpt4_1106_preview', 'text_davinci_003'], ['gpt-4o-2024-05-13', 'gpt-3.5-turbo-0613']]
assert sorted(sum(UP_GROUPS, [])) == UP_MODELS


def rows_of(models, prompts):
    ps = set(prompts)
    ms = set(models)
    return np.array([i for i in range(len(ROWS)) if MODEL[i] in ms and PID[i] in ps], dtype=np.int64)


# ---------------------------------------------------------------- text variants (desensitization)
NUM_RE = re.compile(r'\d+(?:[.,]\d+)*')
# Names: capitalised words that are not sentence/line initial (crude NER, what a desensitiser
# without a model would do), plus runs of such words. "I" and "I'm" are kept.
NAME_RE = re.compile(r"(?<=[a-z0-9,;:)\]] )(?!I\b|I'|I’)(?:[A-Z][a-zA-Z'’\-]*)(?: (?!I\b)[A-Z][a-zA-Z'’\-]*)*")
MD_LINE = re.compile(r'^(\s*)(#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+|>\s+)', re.M)


def mask_numbers(t):
    return NUM_RE.sub('[NUM]', t)


def mask_names(t):
    return NAME_RE.sub('[NAME]', t)


def strip_markdown(t):
    t = re.sub(r'^\s*```.*$', '', t, flags=re.M)          # code fences (content kept)
    t = re.sub(r'^\s*\|?[\s:|-]*-{3,}[\s:|-]*\|?\s*$', '', t, flags=re.M)  # table rules
    t = re.sub(r'\s*\|\s*', ' ', t)                        # table pipes
    t = MD_LINE.sub(r'\1', t)                              # headers, bullets, numbers, quotes
    t = re.sub(r'\*\*(.+?)\*\*', r'\1', t, flags=re.S)     # bold
    t = re.sub(r'__(.+?)__', r'\1', t, flags=re.S)
    t = re.sub(r'(?<!\w)\*(?!\s)(.+?)(?<!\s)\*(?!\w)', r'\1', t)  # italics
    t = re.sub(r'`([^`]*)`', r'\1', t)                     # inline code
    t = re.sub(r'\n{3,}', '\n\n', t)
    return t.strip()


VARIANTS = {
    'orig': lambda t: t,
    'names': mask_names,
    'numbers': mask_numbers,
    'markdown': strip_markdown,
    'all': lambda t: mask_numbers(mask_names(strip_markdown(t))),
}


def texts(variant='orig'):
    f = VARIANTS[variant]
    return [f(t) for t in TEXTS]


# ---------------------------------------------------------------- feature blocks (raw counts)
FUNCTION_WORDS = set("""a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself just
me more most my myself no nor not now of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves however additionally overall furthermore moreover
therefore thus also may might must shall here's it's i'm you're don't can't won't let's let
please sure certainly absolutely note important ensure essential crucial key various several
overall ultimately additionally typically generally often usually""".split())

TOK_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def toks_lower(t):
    return [w.lower().replace('’', "'") for w in TOK_RE.findall(t)]


def an_rust_words(t):
    """Word uni+bigrams as the Rust tokenizer makes them (lowercased, inner apostrophes kept,
    punctuation as tokens)."""
    w = toks_lower(t)
    return w + [a + ' ' + b for a, b in zip(w, w[1:])]


def line_type(l):
    s = l.strip()
    if not s:
        return 'E'
    if s.startswith('```'):
        return 'C'
    if s.startswith('|'):
        return 'T'
    m = re.match(r'(#{1,6})\s', s)
    if m:
        return 'H%d' % len(m.group(1))
    if re.match(r'[-*+•]\s', s):
        return 'B' + ('b' if re.match(r'[-*+•]\s+\*\*', s) else '') + ('i' if l[:1].isspace() else '')
    if re.match(r'\d{1,3}[.)]\s', s):
        return 'N' + ('b' if re.match(r'\d{1,3}[.)]\s+\*\*', s) else '') + ('i' if l[:1].isspace() else '')
    if s.startswith('**'):
        return 'Pb'
    if s.endswith(':'):
        return 'Pc'
    return 'P'


def an_format(t):
    """Markdown / layout cues: line-type uni..trigrams (with blank lines), first/last line types,
    structure counts in log bins, bold-lead patterns, colon-terminated lines."""
    lines = t.split('\n')
    ty = [line_type(l) for l in lines]
    seq = ['^'] + ty + ['$']
    out = ['lt:' + x for x in ty]
    out += ['lt2:' + a + '>' + b for a, b in zip(seq, seq[1:])]
    out += ['lt3:' + a + '>' + b + '>' + c for a, b, c in zip(seq, seq[1:], seq[2:])]
    ne = [x for x in ty if x != 'E']
    out += ['nel2:' + a + '>' + b for a, b in zip(['^'] + ne, ne + ['$'])]
    cnt = defaultdict(int)
    for x in ne:
        cnt[x[0]] += 1
    for k, v in cnt.items():
        out.append('n%s:%d' % (k, int(np.log2(1 + v))))
    out.append('nlines:%d' % int(np.log2(1 + len(ne))))
    out.append('nchars:%d' % int(2 * np.log2(1 + len(t))))
    out.append('bold:%d' % int(np.log2(1 + t.count('**') // 2)))
    out.append('ends:' + (t.strip()[-1:] if t.strip() else ''))
    return out


def an_first(t):
    """First words of the answer (positional), first words of each paragraph, last words."""
    w = toks_lower(t)
    out = ['F1:' + ' '.join(w[:1]), 'F2:' + ' '.join(w[:2]), 'F3:' + ' '.join(w[:3]),
           'F4:' + ' '.join(w[:4]), 'L2:' + ' '.join(w[-2:]), 'L3:' + ' '.join(w[-3:])]
    for p in re.split(r'\n\s*\n', t.strip())[1:]:
        pw = toks_lower(p)[:2]
        out.append('P1:' + ' '.join(pw[:1]))
        out.append('P2:' + ' '.join(pw))
    # last paragraph's first words (closing offers / summaries: "In conclusion", "Overall")
    paras = re.split(r'\n\s*\n', t.strip())
    if len(paras) > 1:
        out.append('LP2:' + ' '.join(toks_lower(paras[-1])[:2]))
    return out


def an_fwgram(t):
    """Function-word n-grams (1-4): content words replaced by their shape."""
    seq = []
    for w in TOK_RE.findall(t):
        lw = w.lower().replace('’', "'")
        if lw in FUNCTION_WORDS or not w[0].isalnum():
            seq.append(lw)
        elif w.isdigit():
            seq.append('<D>')
        elif w[0].isupper():
            seq.append('<C>')
        else:
            seq.append('<w>')
    out = []
    for n in range(1, 5):
        out += ['|'.join(seq[i:i + n]) for i in range(len(seq) - n + 1)]
    return out


BLOCKS = {
    # baseline's word analyzer (case kept, \b\w+\b|[^\w\s]), uni+bigrams
    'w12': dict(analyzer='word', ngram_range=(1, 2), lowercase=False, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
    'w1': dict(analyzer='word', ngram_range=(1, 1), lowercase=False, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
    'w3': dict(analyzer='word', ngram_range=(3, 3), lowercase=False, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
    'rw12': dict(analyzer=an_rust_words),
    'cwb2': dict(analyzer='char_wb', ngram_range=(2, 2), lowercase=True),
    'cwb3': dict(analyzer='char_wb', ngram_range=(3, 3), lowercase=True),
    'cwb4': dict(analyzer='char_wb', ngram_range=(4, 4), lowercase=True),
    'cwb5': dict(analyzer='char_wb', ngram_range=(5, 5), lowercase=True),
    'c3': dict(analyzer='char', ngram_range=(3, 3), lowercase=False),
    'c4': dict(analyzer='char', ngram_range=(4, 4), lowercase=False),
    'fmt': dict(analyzer=an_format),
    'first': dict(analyzer=an_first),
    'fwg': dict(analyzer=an_fwgram),
}
NFEAT = 1 << 20


_MEM = {}


def block(name, variant='orig'):
    if (name, variant) not in _MEM:
        _MEM[(name, variant)] = _block(name, variant)
    return _MEM[(name, variant)]


def _block(name, variant='orig'):
    """Raw hashed counts (csr, n_texts x 2^20) of one block for one text variant, cached."""
    path = '%s/%s.%s.npz' % (CACHE, name, variant)
    if os.path.exists(path):
        return sp.load_npz(path)
    from sklearn.feature_extraction.text import HashingVectorizer
    hv = HashingVectorizer(n_features=NFEAT, alternate_sign=False, norm=None, **BLOCKS[name])
    X = hv.transform(texts(variant)).tocsr().astype(np.float32)
    X.sum_duplicates()
    sp.save_npz(path, X)
    return X


# ---------------------------------------------------------------- per-fold transform
def tfidf(X, train_rows, idf=True, min_df=1, sublinear=True, fold_bits=None, norm='l2'):
    """Sublinear tf (1 + ln tf), optional smooth idf from `train_rows`, min_df mask from the train
    rows, L2 per row. `fold_bits` folds the 2^20 hash space to 2^k buckets (exact for power-of-2
    hashing)."""
    if fold_bits is not None and fold_bits < 20:
        X = X.tocoo()
        X = sp.csr_matrix((X.data, (X.row, X.col & ((1 << fold_bits) - 1))), shape=(X.shape[0], 1 << fold_bits))
        X.sum_duplicates()
    X = X.tocsr().copy()
    total = np.asarray(X.sum(1)).ravel()  # n-gram occurrences per text (before any transform)
    if sublinear and norm == 'l2':
        X.data = 1.0 + np.log(X.data)
    Xt = X[train_rows]
    df = np.bincount(Xt.indices, minlength=X.shape[1])
    w = np.ones(X.shape[1], dtype=np.float32)
    if idf:
        n = len(train_rows)
        w = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    if min_df > 1:
        w = w * (df >= min_df)
    X = X @ sp.diags(w)
    X = X.tocsr()
    if norm == 'sqrtn':
        # 'direct' form: raw tf x idf / sqrt(#n-grams): a scorer needs no counter (see rustbench)
        nrm = np.sqrt(total)
        nrm[nrm == 0] = 1
        X = (sp.diags(1.0 / nrm) @ X).tocsr()
        # one constant per block (median train-row norm -> 1), stored with the profile
        med = np.median(np.sqrt(np.asarray(X[train_rows].multiply(X[train_rows]).sum(1)).ravel()))
        return (X / max(med, 1e-9)).tocsr().astype(np.float32)
    nrm = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    nrm[nrm == 0] = 1
    return (sp.diags(1.0 / nrm) @ X).tocsr().astype(np.float32)


def design(spec, train_rows, variant='orig', rows=None):
    """spec: list of (group_of_blocks, weight, kwargs). Blocks in one group are normalised jointly.
    Returns the matrix of `rows` (default: all texts) with idf/min_df from `train_rows` (which
    must be a subset of `rows`; indices refer to the full corpus)."""
    rows = np.arange(len(TEXTS)) if rows is None else np.asarray(rows)
    pos = {r: i for i, r in enumerate(rows)}
    trl = np.array([pos[r] for r in train_rows])
    mats = []
    for blocks, wt, kw in spec:
        X = sp.hstack([block(b, variant)[rows] for b in blocks]).tocsr()
        mats.append(tfidf(X, trl, **kw) * wt)
    return sp.hstack(mats).tocsr()


def _fmt_part(prefixes):
    def an(t):
        return [x for x in an_format(t) if x.split(':')[0] in prefixes]
    return an


BLOCKS.update({
    'fmt_lt': dict(analyzer=_fmt_part({'lt', 'lt2', 'lt3', 'nel2'})),
    'fmt_cnt': dict(analyzer=_fmt_part({'nH', 'nB', 'nN', 'nP', 'nC', 'nT', 'nE', 'nlines', 'bold'})),
    'fmt_len': dict(analyzer=_fmt_part({'nchars'})),
    'fmt_end': dict(analyzer=_fmt_part({'ends'})),
})


SENT_SPLIT = re.compile(r'(?<=[.!?])\s+|\n+')


def an_sent(t):
    """Openers of every sentence and every line: first 1 and 2 tokens (discourse markers such as
    'however ,', 'additionally ,', 'overall ,', 'in conclusion'), and line-initial markup + word."""
    out = []
    for s in SENT_SPLIT.split(t.strip()):
        w = toks_lower(s)
        if not w:
            continue
        out.append('S1:' + w[0])
        out.append('S2:' + ' '.join(w[:2]))
    return out


def an_first_rw(t):
    """an_first with the first 5/6 tokens too (longer openings: 'certainly ! here are some')."""
    w = toks_lower(t)
    return an_first(t) + ['F5:' + ' '.join(w[:5]), 'F6:' + ' '.join(w[:6])]


BLOCKS.update({'sent': dict(analyzer=an_sent), 'first6': dict(analyzer=an_first_rw)})
