"""producer_consumer_joinable: as producer_consumer, and the results are
printed only after tasks.join(): every consumer line comes first."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pc_common import check_run  # noqa: E402


def check(out, err, code):
    lines, n = check_run(out, err, code)
    first_result = next(i for i, l in enumerate(lines) if l.startswith("Result: "))
    assert all(l.startswith("Result: ") for l in lines[first_result:]), \
        "a consumer line after the first result: tasks.join() returned early"
    assert first_result == 1 + 10 + n, lines
