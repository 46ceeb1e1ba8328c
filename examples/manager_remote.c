/*
 * manager_remote: a manager served on AF_INET and used by two separate
 * programs (the "using a remote manager" example of the multiprocessing
 * documentation: a server holding a queue, a client that puts 'hello' into
 * it and another that gets it).
 *
 *   manager_remote serve PORT   the server: serve_forever until shut down
 *   manager_remote put PORT     a client: queue.put('hello')
 *   manager_remote get PORT     a client: print(queue.get())
 *   manager_remote              the operator: picks a free port, runs the
 *                               three above as separate programs (nothing
 *                               shared but the socket), then shuts the
 *                               server down.
 *
 * The server listens on 127.0.0.1 rather than on every interface (Python's
 * ('', 50000)), so that running the example opens nothing to the network.
 */
#include <libmp.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define AUTHKEY "abracadabra"

/* The server's queue, made on the first get_queue() (Python's
 * register('get_queue', callable=lambda: queue)). */
static mp_queue *queue;

static void *get_queue(const mp_val *args)
{
    if (queue == NULL)
        queue = mp_queue_new();
    return queue;
}

static mp_manager *new_manager(int port)
{
    return mp_manager_new(.host = "127.0.0.1", .port = port, .authkey = AUTHKEY,
                          .authkey_len = strlen(AUTHKEY));
}

static int serve(int port)
{
    mp_manager *m = new_manager(port);
    if (m == NULL || mp_manager_register(m, .type_name = "get_queue", .create = get_queue,
                                         .kind = MP_PROXY_QUEUE) != 0)
        return 1;
    printf("server: serving the queue\n");
    fflush(stdout);
    int r = mp_manager_serve_forever(m);
    printf("server: shut down\n");
    fflush(stdout);
    mp_manager_free(m);
    mp_queue_free(queue);
    return r == 0 ? 0 : 1;
}

/* m.connect(), retried while the server is still starting. */
static mp_manager *connect_to(int port)
{
    for (int i = 0; i < 200; i++) {
        mp_manager *m = new_manager(port);
        if (m == NULL)
            return NULL;
        int r = mp_manager_connect(m);
        if (r == 0)
            return m;
        mp_manager_free(m);
        if (r != -ECONNREFUSED)
            return NULL;
        nanosleep(&(struct timespec){0, 50000000}, NULL);
    }
    return NULL;
}

static int client(int port, bool put)
{
    mp_manager *m = connect_to(port);
    if (m == NULL)
        return 1;
    mp_proxy *q = mp_manager_create(m, "get_queue", NULL);
    if (q == NULL)
        return 1;
    int r;
    if (put) {
        r = mp_proxy_put(q, MP_STR("hello"), MP_FOREVER);
        printf("put: queue.put('hello')\n");
    } else {
        mp_val *v;
        r = mp_proxy_get(q, MP_FOREVER, &v);
        if (r == 0) {
            char *s = mp_val_repr(v);
            printf("get: queue.get() -> %s\n", s ? s : "?");
            free(s);
            mp_val_free(v);
        }
    }
    fflush(stdout);
    mp_proxy_free(q);
    mp_manager_free(m);
    return r == 0 ? 0 : 1;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t run(const char *mode, int port)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    char *argv[] = {"manager_remote", (char *)mode, portstr, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0)
        return -1;
    return pid;
}

static int wait_ok(pid_t pid)
{
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int operator(void)
{
    int port = free_port();
    if (port <= 0)
        return 1;
    fflush(stdout);
    pid_t server = run("serve", port);
    int ok = wait_ok(run("put", port));
    ok &= wait_ok(run("get", port));
    /* Stop the server: any client holding the authkey may. */
    mp_manager *m = connect_to(port);
    if (m != NULL) {
        mp_manager_shutdown(m);
        mp_manager_free(m);
    } else if (server > 0) {
        kill(server, SIGTERM);
    }
    ok &= wait_ok(server);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return operator();
    if (argc != 3)
        return 2;
    int port = atoi(argv[2]);
    if (strcmp(argv[1], "serve") == 0)
        return serve(port);
    if (strcmp(argv[1], "put") == 0 || strcmp(argv[1], "get") == 0)
        return client(port, strcmp(argv[1], "put") == 0);
    return 2;
}
