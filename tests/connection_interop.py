#!/usr/bin/env python3
"""The Python side of test_connection's interoperability tests.

Usage:
    connection_interop.py listen  FAMILY ADDRESS AUTHKEY [PROTO]
    connection_interop.py connect FAMILY ADDRESS AUTHKEY [PROTO]
    connection_interop.py handles unix    ADDRESS AUTHKEY

FAMILY is "unix" (ADDRESS a path, or "@name" for a Linux abstract name) or "inet" (ADDRESS "host:port"; port 0
lets the listener choose).  AUTHKEY is hex, or "-" for none.  PROTO is
"native" (the default: this Python's own multiprocessing.connection
handshake) or "sha256" / "sha384" / "sha3_256": the CPython 3.12 handshake
with that digest, done by hand here over a connection made without
authkey, so that the modern protocol is exercised whatever this Python's
version is.

"handles" connects, receives an fd with reduction.recv_handle, sends
b"got:" + what it reads from it, then sends with send_handle the read end
of a pipe holding b"pipe from python", and waits for b"quit".

A listener prints "ADDRESS <family> <address>" once it is listening.
Both sides then run the same exchange: the listener waits for messages and
answers each with b"py:" + message until it receives b"quit", to which it
answers b"bye"; the connecting side first sends b"hello from python", then
does the same.  Exit status: 0 when the exchange completed, 3 on
AuthenticationError (before any data passed), 4 when the peer hung up
during the handshake, 1 on any other failure.
"""
import hashlib
import hmac
import os
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Listener

CHALLENGE = b"#CHALLENGE#"
WELCOME = b"#WELCOME#"
FAILURE = b"#FAILURE#"


def deliver_312(conn, key, digest):
    """CPython 3.12's deliver_challenge, written out."""
    message = b"{%s}" % digest.encode() + os.urandom(40)
    conn.send_bytes(CHALLENGE + message)
    reply = conn.recv_bytes(256)
    if len(reply) in (16, 20):
        name, mac = "md5", reply
    elif reply.startswith(b"{") and b"}" in reply[:10]:
        end = reply.index(b"}")
        name, mac = reply[1:end].decode(), reply[end + 1:]
    else:
        conn.send_bytes(FAILURE)
        raise AuthenticationError("bad reply")
    expected = hmac.new(key, message, name).digest()
    if not hmac.compare_digest(expected, mac):
        conn.send_bytes(FAILURE)
        raise AuthenticationError("digest received was wrong")
    conn.send_bytes(WELCOME)


def answer_312(conn, key):
    """CPython 3.12's answer_challenge, written out (modern form only)."""
    message = conn.recv_bytes(256)
    if not message.startswith(CHALLENGE):
        raise AuthenticationError("expected a challenge")
    message = message[len(CHALLENGE):]
    end = message.index(b"}")
    name = message[1:end].decode()
    conn.send_bytes(b"{%s}" % name.encode() +
                    hmac.new(key, message, name).digest())
    if conn.recv_bytes(256) != WELCOME:
        raise AuthenticationError("digest sent was rejected")


def parse_address(family, text):
    if family == "inet":
        host, port = text.rsplit(":", 1)
        return (host, int(port))
    if text.startswith("@"):
        return "\0" + text[1:]  # libmp spells Linux abstract names with '@'
    return text


def echo(conn):
    while True:
        msg = conn.recv_bytes()
        if msg == b"quit":
            conn.send_bytes(b"bye")
            return
        conn.send_bytes(b"py:" + msg)


def handles(conn):
    from multiprocessing import reduction
    fd = reduction.recv_handle(conn)
    with os.fdopen(fd, "rb") as f:
        conn.send_bytes(b"got:" + f.read())
    r, w = os.pipe()
    os.write(w, b"pipe from python")
    os.close(w)
    reduction.send_handle(conn, r, os.getppid())
    os.close(r)
    if conn.recv_bytes() != b"quit":
        raise RuntimeError("expected quit")
    conn.send_bytes(b"bye")


def main():
    mode, family, address, keyhex = sys.argv[1:5]
    proto = sys.argv[5] if len(sys.argv) > 5 else "native"
    key = None if keyhex == "-" else bytes.fromhex(keyhex)
    native_key = key if proto == "native" else None
    address = parse_address(family, address)
    try:
        if mode == "listen":
            with Listener(address, authkey=native_key) as listener:
                shown = listener.address
                if family == "inet":
                    shown = "%s:%d" % shown
                print("ADDRESS", family, shown, flush=True)
                conn = listener.accept()
                if proto != "native" and key is not None:
                    deliver_312(conn, key, proto)
                    answer_312(conn, key)
                echo(conn)
                conn.close()
        elif mode == "handles":
            conn = Client(address, authkey=native_key)
            handles(conn)
            conn.close()
        else:
            conn = Client(address, authkey=native_key)
            if proto != "native" and key is not None:
                answer_312(conn, key)
                deliver_312(conn, key, proto)
            conn.send_bytes(b"hello from python")
            echo(conn)
            conn.close()
    except AuthenticationError as e:
        print("AUTHFAIL", e, flush=True)
        return 3
    except EOFError:
        print("EOF", flush=True)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
