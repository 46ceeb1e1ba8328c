"""mapreduce_wordcount: one "reading" line per file, then the top 20 word
counts of the project's docs/*.md, equal to a single-process count done
here with the example's rules (bytes: ASCII letters, ASCII white space)."""
import collections
import glob
import os
import re
import string

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = sorted(glob.glob(os.path.join(HERE, "..", "..", "docs", "*.md")))

STOP_WORDS = {b"a", b"an", b"and", b"are", b"as", b"be", b"for", b"if", b"in",
              b"is", b"it", b"of", b"or", b"py", b"rst", b"the", b"to", b"with"}
TR = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))


def count():
    counts = collections.Counter()
    for name in ARGS:
        with open(name, "rb") as f:
            for line in f:
                if line.lstrip().startswith(b".."):
                    continue
                for word in line.translate(TR).split():
                    word = word.lower()
                    if word.isalpha() and word not in STOP_WORDS:
                        counts[word.decode()] += 1
    return counts


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    assert err == "", err
    assert ARGS, "no docs/*.md"
    lines = out.split("\n")
    reading = [l for l in lines if " reading " in l]
    assert sorted(l.split(" reading ", 1)[1] for l in reading) == sorted(ARGS), reading
    for l in reading:
        assert re.fullmatch(r"PoolWorker-\d+ reading .+", l), l
    i = lines.index("TOP 20 WORDS BY FREQUENCY")
    assert lines[i - 1] == "" and lines[i + 1] == "", lines[i - 1:i + 2]
    rows = [l for l in lines[i + 2:] if l]
    counts = count()
    want = counts.most_common()
    assert len(rows) == min(20, len(want)), rows
    width = max(len(r.split(":")[0].rstrip()) for r in rows) + 1
    got = []
    for r in rows:
        m = re.fullmatch(r"(\S+) *: *(\d+)", r)
        assert m, r
        assert len(r.split(":")[0]) == width and len(r.split(": ")[1]) >= 5, r
        got.append((m.group(1), int(m.group(2))))
    # Every count is right, the order descends, and nothing with a higher
    # count than the 20th was left out (ties at the cut may go either way).
    for w, c in got:
        assert counts[w] == c, (w, c, counts[w])
    assert [c for _, c in got] == sorted((c for _, c in got), reverse=True), got
    last = got[-1][1]
    assert {w for w, c in want if c > last} <= {w for w, _ in got}, (want[:25], got)
