/*
 * pipe_duplex: a duplex Pipe carries two messages each way between a parent
 * and its child (seed 001, "Pipe class creates 2 connections which are
 * duplex by default").
 *
 * Each side prints what it receives: the child prints the parent's two
 * messages, the parent the child's two.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_str(mp_connection *conn, const char *s)
{
    if (mp_connection_send(conn, s, strlen(s)) != 0)
        exit(1);
}

static void recv_print(mp_connection *conn)
{
    void *buf;
    size_t len;
    if (mp_connection_recv(conn, &buf, &len) != 0)
        exit(1);
    printf("%.*s\n", (int)len, (char *)buf);
    fflush(stdout);
    free(buf);
}

static int test_func(void *arg, size_t size)
{
    mp_connection *conn = *(mp_connection **)arg;
    recv_print(conn);
    send_str(conn, "Sending from connection held by subprocess ");
    send_str(conn, "Sending from connection held by subprocess 1");
    recv_print(conn);
    return 0;
}

int main(void)
{
    mp_connection *conn1, *conn2;
    if (mp_pipe(true, &conn1, &conn2) != 0)
        return 1;
    mp_process *p = mp_process_new(.target = test_func, .arg = &conn1,
                                   .arg_size = sizeof conn1);
    if (p == NULL || mp_process_start(p) != 0) {
        fprintf(stderr, "pipe_duplex: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    send_str(conn2, "Sending from connection held by parent process ");
    recv_print(conn2);
    recv_print(conn2);
    send_str(conn2, "Sending from connection held by parent process 1");
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    mp_connection_free(conn1);
    mp_connection_free(conn2);
    return 0;
}
