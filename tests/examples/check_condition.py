"""condition: the stage_2 workers run only after s1 notifies."""


def check(out, err, code):
    assert code == 0, f"exit code {code}"
    lines = out.splitlines()
    want = ["Starting s1", "s1 done and ready for stage 2",
            "Starting stage_2[1]", "stage_2[1] running",
            "Starting stage_2[2]", "stage_2[2] running"]
    assert sorted(lines) == sorted(want), out
    done = lines.index("s1 done and ready for stage 2")
    assert lines.index("Starting s1") < done, out
    for i in (1, 2):
        assert lines.index(f"Starting stage_2[{i}]") < \
            lines.index(f"stage_2[{i}] running"), out
        assert done < lines.index(f"stage_2[{i}] running"), out
    assert err == "", err
