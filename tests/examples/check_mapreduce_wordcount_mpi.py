"""mapreduce_wordcount --mpi: the same top 20 as the local run, counted by
MPI workers (their "reading" lines name the worker's process, which is not
a PoolWorker of ours)."""
import importlib.util
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "check_mapreduce_wordcount", os.path.join(HERE, "check_mapreduce_wordcount.py"))
_local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_local)

ARGS = ["--mpi"] + _local.ARGS


def check(out, err, code):
    assert code == 0, f"exit code {code}\n{err}"
    # The local check, with the worker names relaxed and the workers' lines
    # first: under mpiexec their output is forwarded by the MPI runtime and
    # may come after the program's own.
    lines = out.split("\n")
    reading = [re.sub(r"^\S+ reading ", "PoolWorker-1 reading ", l)
               for l in lines if " reading " in l]
    rest = [l for l in lines if " reading " not in l]
    _local.check("\n".join(reading + rest), "", code)
