"""producer_consumer: cpu_count * 2 consumers, ten results i * i, every
consumer exits (no order between consumers' lines and results)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pc_common import check_run  # noqa: E402


def check(out, err, code):
    check_run(out, err, code)
