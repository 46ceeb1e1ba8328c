"""exitcode: 1 for exit(1), 0, 0, 1 for the error (reported on stderr),
-15 for the terminated process."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    names = ["exit_error", "exit_ok", "return_value", "raises", "terminated"]
    codes = [1, 0, 0, 1, -15]
    assert out.splitlines() == (
        [f"Starting process for {n}" for n in names]
        + [f"{n}.exitcode = {c}" for n, c in zip(names, codes)]), out
    assert err.splitlines() == ["Process raises:",
                                "RuntimeError: There was an error!"], err
