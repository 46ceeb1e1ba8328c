/*
 * fuzz_forkserver: the forkserver's request reader (forkserver.c,
 * serve_request), which reads a request header, the table of fds and the
 * fds from an authenticated client, checks them and answers.  The harness
 * includes forkserver.c to reach that static function (the static
 * library's copy of the file is then not linked).  Nothing the fuzzer
 * sends can pass request_check (the process object must be a live one in
 * the arena), so no child is ever forked; a request that fails the check is
 * answered into the peer's buffer.
 */
#include "../src/forkserver.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (mp__heap_init() != 0)
        abort();
    int peer;
    int fd = fuzz_stream(data, size, &peer);
    if (fd < 0)
        return 0;
    struct client cl = {.fd = fd, .pidfd = -1, .id = 1, .pid = 0};
    while (serve_request(&server, &cl) == 0) {
    }
    close(fd);
    close(peer);
    return 0;
}
