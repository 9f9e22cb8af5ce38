"""Port of detector/src/identity.rs's patterns (same regexes) run over all 12,491 alpaca-eval-dev
answers: counts per kind x attributed family x model, and every non-disclaimer match with context,
to see which matches are self-identification and which are content / generic disclaimers."""
import re, json, sys
from collections import Counter, defaultdict
from common import TEXTS, MODEL, KNOWN, SUSP

FAMILY_NAMES = [
    ("openai", r"open\s?ai|chat\s?gpt|gpt-?[345](?:\.5)?(?:-turbo|o)?|text-davinci|davinci"),
    ("anthropic", r"anthropic|claude"),
    ("google", r"google|gemini|bard|palm ?2?|deepmind"),
    ("meta", r"meta(?: ai)?|llama ?[0-9]?|facebook"),
    ("mistral", r"mistral(?: ai)?|mixtral"),
    ("cohere", r"cohere|command[- ]r"),
    ("alibaba", r"alibaba|qwen|通义千问|阿里"),
    ("deepseek", r"deepseek|深度求索"),
    ("baidu", r"baidu|ernie|文心一言|百度"),
    ("zhipu", r"zhipu|chatglm|智谱"),
    ("microsoft", r"microsoft|bing|copilot|微软"),
]
ANY = '|'.join(p for _, p in FAMILY_NAMES)
NAME_RES = [(f, re.compile(r'(?i)^(?:%s)$' % p)) for f, p in FAMILY_NAMES]
PATTERNS = [
    ("creator", r"(?i)\b(?:developed|created|trained|built|made|designed|programmed)\s+by\s+(?:the\s+)?(?:team\s+at\s+)?(?P<name>%s)\b" % ANY),
    ("model_name", r"(?i)\b(?:i\s+am|i'm|i’m|my\s+name\s+is|this\s+is)\s+(?:an?\s+)?(?:(?:ai|large\s+language|language)\s+model\s+(?:called|named)\s+)?(?P<name>%s)\b" % ANY),
    ("ai_disclaimer", r"(?i)\bas an ai(?:\s+language)?\s+model\b|\bas an ai(?:\s+assistant)?\b"),
    ("knowledge_cutoff", r"(?i)\b(?:knowledge\s+cut-?off|training\s+(?:data\s+)?cut-?off|as\s+of\s+my\s+(?:last\s+)?(?:knowledge\s+)?update|my\s+training\s+data\s+(?:only\s+)?(?:goes|extends)\s+(?:up\s+)?(?:to|until))\b(?:[^.\n]{0,40}?(?:(?:january|february|march|april|may|june|july|august|september|october|november|december)\s+)?(?P<year>20[0-9]{2}))?"),
    ("creator", r"(?i)(?:由|被)\s*(?P<name>%s)\s*(?:公司)?\s*(?:开发|训练|创建|打造|研发)" % ANY),
    ("model_name", r"(?i)我(?:是|叫)\s*(?:一个)?\s*(?P<name>%s)" % ANY),
    ("ai_disclaimer", r"作为一个?(?:人工智能|AI)(?:语言)?模型"),
    ("base_model", r"(?i)\b(?:based\s+on|built\s+on(?:\s+top\s+of)?|powered\s+by|(?:a\s+)?(?:fine-?tuned\s+)?(?:version|variant)\s+of|fine-?tuned\s+(?:from|on))\s+(?:the\s+|an?\s+)?(?P<name>%s)\b" % ANY),
    ("creator", r"(?i)\b(?:created|developed|trained|made|built|designed)\s+me\s+(?:is|was|are|were)\s+(?:the\s+)?(?:team\s+at\s+)?(?P<name>%s)\b" % ANY),
    ("base_model", r"(?i)基于\s*(?P<name>%s)" % ANY),
    ("creator", r"(?i)我的(?:开发者|创造者|创建者|训练者|开发团队|开发公司)(?:是|为)\s*(?P<name>%s)" % ANY),
    ("knowledge_cutoff", r"(?:我的)?(?:知识|训练数据)(?:截止|更新)(?:日期|时间)?(?:[^。\n]{0,10}?(?P<year>20[0-9]{2}))?"),
]
PATTERNS = [(k, re.compile(p)) for k, p in PATTERNS]


def family_of(n):
    for f, r in NAME_RES:
        if r.match(n.strip()):
            return f
    return 'unknown'


def find_claims(t):
    out = []
    for kind, r in PATTERNS:
        for m in r.finditer(t):
            if m.groupdict().get('name'):
                fam = family_of(m.group('name'))
            elif kind == 'knowledge_cutoff':
                fam = 'openai' if m.groupdict().get('year') in ('2021', '2022') else 'unknown'
            else:
                fam = 'openai'
            if any(o[0] == kind and o[2][0] < m.end() and m.start() < o[2][1] for o in out):
                continue
            out.append((kind, fam, (m.start(), m.end()), m.group(0)))
    return sorted(out, key=lambda c: c[2][0])


# ------------------------------------------------------------------ proposed split
# Explicit self-identification: a first-person anchor (I / I'm / me / my / as an AI ... / 我) in the
# same clause as a named maker or model. Everything else that names a maker ("ChatGPT, developed by
# OpenAI, is ...") is content, not a claim. Generic disclaimers never name a family.
SELF = r"(?:\b(?:i\s+am|i'm|i’m|i\s+was|i've\s+been|i\s+have\s+been|my\s+name\s+is|call\s+me)\b|\bas\s+an?\s+(?:ai|artificial\s+intelligence|(?:large\s+)?language\s+model)(?:\s+(?:ai|language\s+model|model|assistant|chatbot|system))?\b)"
GAP = r"[^.!?\n]{0,60}?"      # same clause, bounded
EXPLICIT = [
    ("self_name", r"(?i)(?:\bi\s+am|\bi'm|\bi’m|\bmy\s+name\s+is|\bcall\s+me)\s+(?:an?\s+(?:ai|(?:large\s+)?language\s+model|assistant|chatbot)\s+(?:called|named|known\s+as)\s+)?(?P<name>%s)\b" % ANY),
    ("self_creator", r"(?i)%s%s\b(?:developed|created|trained|built|made|designed|programmed|owned)\s+by\s+(?:the\s+)?(?:team\s+at\s+|researchers\s+at\s+)?(?P<name>%s)\b" % (SELF, GAP, ANY)),
    ("self_creator", r"(?i)\b(?:created|developed|trained|made|built|designed)\s+me\s+(?:is|was|are|were)\s+(?:the\s+)?(?:team\s+at\s+)?(?P<name>%s)\b" % ANY),
    ("self_base", r"(?i)(?:\bi\s+am|\bi'm|\bi’m|\bi\s+was|\bmy\s+(?:model|architecture)\s+is)%s\b(?:based\s+on|built\s+on(?:\s+top\s+of)?|powered\s+by|(?:a\s+)?(?:fine-?tuned\s+)?(?:version|variant)\s+of|fine-?tuned\s+(?:from|on))\s+(?:the\s+|an?\s+)?(?P<name>%s)\b" % (GAP, ANY)),
    ("self_creator", r"(?i)我(?:是|乃)?\s*(?:一个)?[^。！？\n]{0,20}?(?:由|被)\s*(?P<name>%s)\s*(?:公司)?\s*(?:开发|训练|创建|打造|研发)" % ANY),
    ("self_name", r"(?i)我(?:是|叫)\s*(?:一个)?\s*(?P<name>%s)" % ANY),
    ("self_base", r"(?i)我[^。！？\n]{0,10}?基于\s*(?P<name>%s)" % ANY),
    ("self_creator", r"(?i)我的(?:开发者|创造者|创建者|训练者|开发团队|开发公司)(?:是|为)\s*(?P<name>%s)" % ANY),
]
GENERIC = [
    ("ai_disclaimer", r"(?i)\bas\s+an?\s+(?:ai|artificial\s+intelligence)(?:\s+(?:language\s+model|model|assistant|chatbot))?\b"),
    ("ai_disclaimer", r"(?i)\bi(?:'m|\s+am)\s+(?:just\s+|only\s+)?an?\s+(?:ai|artificial\s+intelligence|language\s+model|large\s+language\s+model)(?:\s+(?:language\s+model|model|assistant))?\b"),
    ("ai_disclaimer", r"作为一个?(?:人工智能|AI)(?:语言)?(?:模型|助手)"),
    ("knowledge_cutoff", PATTERNS[3][1].pattern),
    ("knowledge_cutoff", PATTERNS[11][1].pattern),
]
EXPLICIT = [(k, re.compile(p)) for k, p in EXPLICIT]
GENERIC = [(k, re.compile(p if isinstance(p, str) else p)) for k, p in GENERIC]


AMBIGUOUS = re.compile(r'(?i)^(?:bard|palm ?2?|gemini|llama ?[0-9]?|meta(?: ai)?|claude|bing|ernie|copilot|command[- ]r|davinci)$')


def proposed(t):
    ex = []
    for kind, r in EXPLICIT:
        for m in r.finditer(t):
            nm = m.group('name')
            if AMBIGUOUS.match(nm) and not nm[0].isupper():
                continue
            fam = family_of(nm)
            if fam == 'meta' and re.match(r'(?i)meta\b', m.group('name')) and re.match(r'[-\w]', t[m.end():m.end() + 1] or ' '):
                continue
            if not any(a <= m.start() < b or m.start() <= a < m.end() for _, _, (a, b), _ in ex):
                ex.append((kind, fam, (m.start(), m.end()), m.group(0)))
    gen = []
    for kind, r in GENERIC:
        for m in r.finditer(t):
            if not any(a <= m.start() < b for _, (a, b), _ in gen):
                gen.append((kind, (m.start(), m.end()), m.group(0)))
    return ex, gen


if __name__ == '__main__':
    by = defaultdict(Counter)
    examples = defaultdict(list)
    pby = defaultdict(Counter)
    pex = defaultdict(list)
    for t, m in zip(TEXTS, MODEL):
        for kind, fam, span, txt in find_claims(t):
            by[m][(kind, fam)] += 1
            if kind != 'ai_disclaimer':
                a, b = span
                examples[(kind, fam)].append((m, t[max(0, a - 70):b + 30].replace('\n', ' ')))
        ex, gen = proposed(t)
        for kind, fam, span, txt in ex:
            pby[m][('EXPLICIT', fam)] += 1
            a, b = span
            pex[fam].append((m, t[max(0, a - 70):b + 30].replace('\n', ' ')))
        for kind, span, txt in gen:
            pby[m][('GENERIC', kind)] += 1
    tot = Counter()
    for m in by:
        tot.update(by[m])
    print('## current identity.rs, all answers: (kind, family) -> count')
    for k, v in sorted(tot.items(), key=lambda x: -x[1]):
        print(k, v)
    print('\n## per model (current)')
    for m in sorted(by):
        print(m, dict(by[m]))
    print('\n## every current non-disclaimer match with context')
    for k, xs in examples.items():
        print('###', k, len(xs))
        for m, c in xs[:40]:
            print('  [%s] ...%s...' % (m, c))
    print('\n## proposed: per model')
    for m in sorted(pby):
        print(m, dict(pby[m]))
    print('\n## proposed explicit matches with context')
    for f, xs in pex.items():
        print('###', f, len(xs))
        for m, c in xs[:40]:
            print('  [%s] ...%s...' % (m, c))
    # unit cases from the issue
    cases = ["… As an AI product, they're currently working on …",
             "As an AI language model developed by OpenAI, I cannot browse the internet.",
             "I am ChatGPT, a large language model trained by OpenAI.",
             "我是由OpenAI开发的人工智能助手。", "作为一个人工智能语言模型，我不能",
             "As an AI language model, I don't have personal opinions.",
             "ChatGPT is a language model developed by OpenAI that can chat.",
             "GPT-3, created by OpenAI, was released in 2020.",
             "The app is powered by OpenAI's API.", "Alpaca is a fine-tuned version of LLaMA.",
             "I'm based on GPT-4.", "This is Google's policy.", "this is meta-analysis territory",
             "ChatGPT是由OpenAI开发的。", "Hi! I'm Claude, made by Anthropic.",
             "My knowledge cutoff is September 2021.", "I'm an AI assistant created by Anthropic to be helpful.",
             "As a language model AI developed by OpenAI, my responses are generated.",
             "You see, I am a bard. A humble minstrel.", "I am Gemini, a model from Google.",
             "I'm a large language model called GPT-4.", "As an AI, I was trained by OpenAI on lots of text."]
    print('\n## cases: current vs proposed')
    for c in cases:
        print(repr(c))
        print('   current :', [(k, f) for k, f, _, _ in find_claims(c)])
        ex, gen = proposed(c)
        print('   proposed: explicit', [(k, f) for k, f, _, _ in ex], 'generic', [k for k, _, _ in gen])
