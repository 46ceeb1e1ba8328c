/* cpython.c: run bench_cpython.py, parse its JSON. */
#include "cpython.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a small JSON reader ------------------------------------------------ */

/*
 * Enough JSON for what bench_cpython.py prints: objects, arrays, strings,
 * numbers, true/false/null.  Every scalar is handed to a callback with its
 * path (object keys, array indexes as decimal strings).
 */
#define JSON_MAX_DEPTH 8

struct json {
    const char *s; /* NUL-terminated input */
    const char *path[JSON_MAX_DEPTH];
    char keys[JSON_MAX_DEPTH][64];
    int depth;
    void (*scalar)(void *ud, const char *const *path, int depth, const char *str, double num,
                   bool is_num);
    void *ud;
};

static void json_ws(struct json *j)
{
    while (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t')
        j->s++;
}

static int json_string(struct json *j, char *buf, size_t cap)
{
    size_t n = 0;
    if (*j->s != '"')
        return -1;
    j->s++;
    while (*j->s != '"') {
        char c = *j->s++;
        if (c == '\0')
            return -1;
        if (c == '\\') {
            c = *j->s++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u':
                for (int k = 0; k < 4; k++)
                    if (*j->s++ == '\0')
                        return -1;
                c = '?';
                break;
            case '\0':
                return -1;
            default:
                break; /* '"', '\\', '/' stand for themselves */
            }
        }
        if (n + 1 < cap)
            buf[n++] = c;
    }
    j->s++;
    buf[n] = '\0';
    return 0;
}

static int json_value(struct json *j);

static int json_push(struct json *j, const char *key)
{
    if (j->depth >= JSON_MAX_DEPTH)
        return -1;
    snprintf(j->keys[j->depth], sizeof j->keys[0], "%s", key);
    j->path[j->depth] = j->keys[j->depth];
    j->depth++;
    return 0;
}

static int json_object(struct json *j)
{
    j->s++;
    json_ws(j);
    if (*j->s == '}') {
        j->s++;
        return 0;
    }
    for (;;) {
        char key[64];
        json_ws(j);
        if (json_string(j, key, sizeof key) != 0)
            return -1;
        json_ws(j);
        if (*j->s++ != ':')
            return -1;
        if (json_push(j, key) != 0 || json_value(j) != 0)
            return -1;
        j->depth--;
        json_ws(j);
        if (*j->s == ',') {
            j->s++;
            continue;
        }
        if (*j->s == '}') {
            j->s++;
            return 0;
        }
        return -1;
    }
}

static int json_array(struct json *j)
{
    j->s++;
    json_ws(j);
    if (*j->s == ']') {
        j->s++;
        return 0;
    }
    for (int i = 0;; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        if (json_push(j, idx) != 0 || json_value(j) != 0)
            return -1;
        j->depth--;
        json_ws(j);
        if (*j->s == ',') {
            j->s++;
            continue;
        }
        if (*j->s == ']') {
            j->s++;
            return 0;
        }
        return -1;
    }
}

static int json_value(struct json *j)
{
    json_ws(j);
    char c = *j->s;
    if (c == '{')
        return json_object(j);
    if (c == '[')
        return json_array(j);
    if (c == '"') {
        char buf[512];
        if (json_string(j, buf, sizeof buf) != 0)
            return -1;
        j->scalar(j->ud, j->path, j->depth, buf, 0, false);
        return 0;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (size_t k = 0; k < 3; k++) {
        size_t len = strlen(words[k]);
        if (strncmp(j->s, words[k], len) == 0) {
            j->s += len;
            return 0;
        }
    }
    char *end;
    double v = strtod(j->s, &end);
    if (end == j->s)
        return -1;
    j->s = end;
    j->scalar(j->ud, j->path, j->depth, NULL, v, true);
    return 0;
}

static int json_parse(const char *text,
                      void (*scalar)(void *, const char *const *, int, const char *, double,
                                     bool),
                      void *ud)
{
    struct json j = {.s = text, .scalar = scalar, .ud = ud};
    if (json_value(&j) != 0)
        return -1;
    json_ws(&j);
    return *j.s == '\0' ? 0 : -1;
}

/* ---- the figures -------------------------------------------------------- */

static py_fig *fig_get(py_run *run, const char *id)
{
    for (int i = 0; i < run->nfigs; i++)
        if (strcmp(run->figs[i].id, id) == 0)
            return &run->figs[i];
    if (run->nfigs == PY_MAX_FIGS)
        return NULL;
    py_fig *f = &run->figs[run->nfigs++];
    memset(f, 0, sizeof *f);
    snprintf(f->id, sizeof f->id, "%s", id);
    f->status = BENCH_OK;
    return f;
}

/* results/<id>/<field>[/<index>] = value; python, executable at the top. */
static void on_scalar(void *ud, const char *const *path, int depth, const char *str,
                      double num, bool is_num)
{
    py_run *run = ud;
    if (depth == 1 && str != NULL) {
        if (strcmp(path[0], "python") == 0)
            snprintf(run->version, sizeof run->version, "%s", str);
        else if (strcmp(path[0], "executable") == 0)
            snprintf(run->executable, sizeof run->executable, "%s", str);
        return;
    }
    if (depth < 3 || strcmp(path[0], "results") != 0)
        return;
    py_fig *f = fig_get(run, path[1]);
    if (f == NULL)
        return;
    const char *field = path[2];
    if (!is_num) {
        if (strcmp(field, "error") == 0 || strcmp(field, "na") == 0) {
            f->status = field[0] == 'e' ? BENCH_ERR : BENCH_NA;
            snprintf(f->r.why, sizeof f->r.why, "%s", str);
        }
        return;
    }
    if (depth == 4 && strcmp(field, "reps") == 0) {
        if (f->nreps < PY_MAX_REPS)
            f->reps[f->nreps++] = num;
        return;
    }
    if (strcmp(field, "p50") == 0)
        f->r.p50 = num;
    else if (strcmp(field, "p99") == 0)
        f->r.p99 = num;
    else if (strcmp(field, "p999") == 0)
        f->r.p999 = num;
    else if (strcmp(field, "rate") == 0)
        f->r.ops_per_s = num;
    else if (strcmp(field, "bytes_per_s") == 0)
        f->r.bytes_per_s = num;
    else if (strcmp(field, "n") == 0)
        f->r.n = (uint64_t)num;
}

const py_fig *cpython_find(const py_run *run, const char *id)
{
    for (int i = 0; i < run->nfigs; i++)
        if (strcmp(run->figs[i].id, id) == 0)
            return &run->figs[i];
    return NULL;
}

/* ---- running the script ------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void run_fail(py_run *out, int status,
                                                           const char *fmt, ...)
{
    va_list ap;
    out->status = status;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
}

/* Read a whole file into a NUL-terminated malloc'd buffer; NULL on failure. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0)
            break;
        if (len + 1 == cap) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* Wait for pid until the deadline; kill it then.  Returns its status. */
static int wait_until(pid_t pid, uint64_t deadline_ns, bool *timed_out)
{
    int st = 0;
    *timed_out = false;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (bench_ns() >= deadline_ns && !*timed_out) {
            *timed_out = true;
            kill(pid, SIGKILL);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void cpython_run(const char *python, const char *script, const bench_ctx *ctx, int repeats,
                 const char *ids, double timeout, py_run *out)
{
    memset(out, 0, sizeof *out);
    if (access(script, R_OK) != 0) {
        run_fail(out, BENCH_NA, "script %s not found", script);
        return;
    }
    char path[] = "/tmp/mpbench-cpython-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        run_fail(out, BENCH_ERR, "mkstemp: %s", strerror(errno));
        return;
    }
    close(fd);
    char dur[32], warm[32], reps[16];
    snprintf(dur, sizeof dur, "%g", ctx->duration);
    snprintf(warm, sizeof warm, "%g", ctx->warmup);
    snprintf(reps, sizeof reps, "%d", repeats);
    char *argv[] = {(char *)python,       (char *)script,
                    (char *)"--duration", dur,
                    (char *)"--warmup",   warm,
                    (char *)"--repeats",  reps,
                    (char *)"--ids",      (char *)ids,
                    (char *)"--json-out", path,
                    (char *)"--quiet",    NULL};
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        unlink(path);
        run_fail(out, BENCH_ERR, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /*
         * Python's output (progress) goes to our stderr, so that our
         * stdout holds only the report; the figures come back in the file.
         * 127 means python could not be executed at all.
         */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(2, 1);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        execvp(python, argv);
        _exit(127);
    }
    bool timed_out;
    int st = wait_until(pid, bench_ns() + (uint64_t)(timeout * 1e9), &timed_out);
    char *text = read_file(path);
    unlink(path);
    if (timed_out) {
        run_fail(out, BENCH_ERR, "%s timed out after %.0f s", script, timeout);
    } else if (st < 0) {
        run_fail(out, BENCH_ERR, "waitpid: %s", strerror(errno));
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        run_fail(out, BENCH_NA, "%s cannot be run", python);
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        run_fail(out, BENCH_ERR, "%s failed (see its messages above)", script);
    } else if (text == NULL || json_parse(text, on_scalar, out) != 0) {
        run_fail(out, BENCH_ERR, "%s wrote something that is not JSON", script);
    } else {
        out->status = BENCH_OK;
    }
    free(text);
}
