#!/usr/bin/env python3
"""Two layering rules of issue 15 that the compiler does not check, enforced by scripts/test.sh.

1. `anyhow` only in binaries: no file of a library (`*/src/**/*.rs` outside `src/bin/`) names it.
   Libraries return their crate's one error enum; `main` turns errors into messages.
2. Handlers stay short: no HTTP handler (an `async fn` in `server/src/api/` or
   `server/src/dashboard/` taking a `State(…)` extractor) is longer than 60 lines, signature and
   doc attributes excluded. Longer logic belongs in the service layer.

Prints each violation and exits 1 if there is any; `--report` also lists the longest handlers.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_HANDLER_LINES = 60


def library_files():
    for crate_src in ROOT.glob("**/src"):
        if "target" in crate_src.parts or ".cache" in crate_src.parts:
            continue
        for f in crate_src.rglob("*.rs"):
            if "bin" not in f.relative_to(crate_src).parts:
                yield f


def anyhow_violations():
    out = []
    for f in sorted(library_files()):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("//")[0]
            if re.search(r"\banyhow\b", code):
                out.append(f"{f.relative_to(ROOT)}:{i}: `anyhow` in a library (use the crate's error enum)")
    return out


def handlers():
    """(file, name, first line, body lines) of every handler."""
    found = []
    for d in ["server/src/api", "server/src/dashboard"]:
        for f in sorted((ROOT / d).rglob("*.rs")):
            lines = f.read_text().splitlines()
            i = 0
            while i < len(lines):
                m = re.match(r"^(pub )?async fn (\w+)", lines[i])
                if not m:
                    i += 1
                    continue
                # The signature runs to the line that opens the body.
                j = i
                while not lines[j].rstrip().endswith("{"):
                    j += 1
                sig = "\n".join(lines[i : j + 1])
                k = j + 1
                while k < len(lines) and lines[k] != "}":
                    k += 1
                if "State(" in sig:
                    found.append((f.relative_to(ROOT), m.group(2), i + 1, k - j - 1))
                i = k + 1
    return found


def main():
    problems = anyhow_violations()
    hs = handlers()
    for f, name, line, n in hs:
        if n > MAX_HANDLER_LINES:
            problems.append(f"{f}:{line}: handler `{name}` has {n} body lines (max {MAX_HANDLER_LINES})")
    if "--report" in sys.argv:
        for f, name, line, n in sorted(hs, key=lambda h: -h[3])[:10]:
            print(f"{n:4} lines  {f}:{line} {name}")
    for p in problems:
        print(p)
    print(f"{len(hs)} handlers (longest {max((h[3] for h in hs), default=0)} lines), {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
