"""shm_ring_streams: every byte from every producer arrives, checksummed."""

PRODUCERS, FRAMES, SLOT_DATA = 3, 200, 64 * 1024


def expected_bytes(i):
    return sum((f * 7919 + i * 104729) % SLOT_DATA + 1 for f in range(FRAMES))


def check(out, err, code):
    assert code == 0, f"exit code {code}: {err}"
    lines = out.splitlines()
    want = [f"producer {i}: {FRAMES} frames, {expected_bytes(i)} bytes, checksums ok"
            for i in range(PRODUCERS)]
    total = sum(expected_bytes(i) for i in range(PRODUCERS))
    want.append(f"all streams complete: {total} bytes from {PRODUCERS} producers")
    assert lines == want, f"got {lines}, want {want}"
