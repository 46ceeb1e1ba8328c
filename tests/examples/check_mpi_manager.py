"""mpi_manager: MPI workers fill a manager's dict over TCP; the program
reads the 20 squares (1 + 4 + ... + 400 = 2870) back through its proxy."""


def check(out, err, code):
    assert code == 0, f"exit code {code}\n{err}"
    lines = out.splitlines()
    assert lines == ["tasks run outside this process: 20 of 20",
                     "squares: 20 entries, sum 2870"], out
