"""pool_map_basic --mpi: the same [1, 4, 9] with MPI workers."""

ARGS = ["--mpi"]


def check(out, err, code):
    assert code == 0, f"exit code {code}\n{err}"
    assert out == "[1, 4, 9]\n", out
