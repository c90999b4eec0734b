#!/usr/bin/env python3
"""Helpers for regen.sh.

  sink.py freeport udp|tcp   print a currently free port on 127.0.0.1
  sink.py udp PORT           bind 127.0.0.1:PORT/udp and discard everything
  sink.py tcp PORT           listen on 127.0.0.1:PORT/tcp, accept connections,
                             read and discard (for softflowd -P tcp)

A sink is needed even though the captures are taken with tcpdump on lo: without
a bound socket the kernel answers each export datagram with ICMP port
unreachable, and exporters that use a connect()ed UDP socket (fprobe,
softflowd) then get ECONNREFUSED on a later send() and silently lose that
datagram.
"""
import socket
import sys
import threading


def freeport(kind):
    t = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, t) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", port))
    while True:
        s.recv(65535)


def tcp(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)

    def drain(c):
        with c:
            while c.recv(65536):
                pass

    while True:
        c, _ = ls.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    if sys.argv[1] == "freeport":
        print(freeport(sys.argv[2]))
    elif sys.argv[1] == "udp":
        udp(int(sys.argv[2]))
    elif sys.argv[1] == "tcp":
        tcp(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
