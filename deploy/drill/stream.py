#!/usr/bin/env python3
"""Paced test streams for the failover drill (deploy/drill.sh).

Each stream is a flow from the client (LAN) to the server (WAN) through the firewall's NAT.
Senders stamp every record with (generation, sequence, send time); receivers log one line per
record: "<arrival wall time> <generation> <sequence> <send wall time> <bytes>". Wall time
(time.time()) is used because the logs of several namespaces are compared with each other
and with the notify-script timestamps; all namespaces share the host clock.

  tcp-server  listens on the server; logs every record of every accepted connection.
  tcp-client  connects from the client and sends records at --rate per second (upload).
              A reset or any socket error is logged as "<time> <gen> ERROR <reason>" and
              ends the client: the stream is dead.
  udp-server  waits for a client's hello, then sends records at --rate per second to the
              address the hello came from, i.e. to the NAT binding (download).
  udp-client  sends hellos until the first record arrives, then never sends again, so only
              the firewall's existing NAT binding can carry the stream after a failover (a
              client->server UDP stream would simply be re-NATed to the same port by any
              firewall and would prove nothing).

No threads are shared between streams of different generations: the drill starts a fresh
generation (new client ports) when a round killed the previous one.
"""
import argparse
import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

RECORD = struct.Struct("!IQd")  # generation, sequence, send wall time


def open_log(path):
    # Line-buffered so a killed process leaves complete lines behind.
    return open(path, "a", buffering=1)


def pad(size):
    return b"\0" * max(0, size - RECORD.size)


def tcp_server(a):
    log = open_log(a.log)
    lock = threading.Lock()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.listen, a.port))
    srv.listen(16)

    def serve(conn, peer):
        buf = b""
        gen = -1
        try:
            while True:
                data = conn.recv(65536)
                now = time.time()
                if not data:
                    with lock:
                        log.write(f"{now:.6f} {gen} EOF {peer[0]}:{peer[1]}\n")
                    return
                buf += data
                lines = []
                while len(buf) >= a.size:
                    g, seq, sent = RECORD.unpack_from(buf, 0)
                    gen = g
                    buf = buf[a.size:]
                    lines.append(f"{now:.6f} {g} {seq} {sent:.6f} {a.size}\n")
                with lock:
                    log.writelines(lines)
        except OSError as e:
            with lock:
                log.write(f"{time.time():.6f} {gen} ERROR {errno.errorcode.get(e.errno, e)}\n")
        finally:
            conn.close()

    while True:
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


def tcp_client(a):
    log = open_log(a.log)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.bind_port))
    try:
        s.settimeout(10)
        s.connect((a.server, a.port))
        s.settimeout(None)
    except OSError as e:
        log.write(f"{time.time():.6f} {a.gen} ERROR connect {e}\n")
        return 1
    log.write(f"{time.time():.6f} {a.gen} CONNECTED {s.getsockname()[0]}:{s.getsockname()[1]}\n")
    filler = pad(a.size)
    start = time.time()
    seq = 0
    try:
        while True:
            due = start + seq / a.rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            s.sendall(RECORD.pack(a.gen, seq, time.time()) + filler)
            seq += 1
    except OSError as e:
        log.write(f"{time.time():.6f} {a.gen} ERROR {errno.errorcode.get(e.errno, e)}\n")
        return 1


def udp_server(a):
    log = open_log(a.log)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.listen, a.port))
    s.setblocking(False)
    subscribers = {}  # address -> [generation, next sequence]
    filler = pad(a.size)
    period = 1.0 / a.rate
    next_tick = time.time()
    while True:
        timeout = max(0.0, next_tick - time.time())
        ready, _, _ = select.select([s], [], [], timeout)
        if ready:
            try:
                data, peer = s.recvfrom(2048)
            except OSError:
                data = b""
            if len(data) >= 4 and peer not in subscribers:
                gen = struct.unpack_from("!I", data, 0)[0]
                # A new generation replaces the dead ones: stop spraying their old bindings.
                for old in [p for p, st in subscribers.items() if st[0] < gen]:
                    del subscribers[old]
                subscribers[peer] = [gen, 0]
                log.write(f"{time.time():.6f} {gen} SUBSCRIBED {peer[0]}:{peer[1]}\n")
            continue
        next_tick += period
        now = time.time()
        for peer, st in subscribers.items():
            try:
                s.sendto(RECORD.pack(st[0], st[1], now) + filler, peer)
            except OSError:
                pass  # unreachable or full queue: the receiver's log shows the loss
            st[1] += 1
        if next_tick < now - 1.0:  # suspended for a long time: do not burst to catch up
            next_tick = now


def udp_client(a):
    log = open_log(a.log)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.bind_port))
    hello = struct.pack("!I", a.gen)
    subscribed = False
    last_hello = 0.0
    while True:
        if not subscribed and time.time() - last_hello >= 0.5:
            s.sendto(hello, (a.server, a.port))
            last_hello = time.time()
        ready, _, _ = select.select([s], [], [], 0.5)
        if not ready:
            continue
        data, _ = s.recvfrom(65536)
        now = time.time()
        if len(data) < RECORD.size:
            continue
        g, seq, sent = RECORD.unpack_from(data, 0)
        if not subscribed:
            log.write(f"{now:.6f} {a.gen} SUBSCRIBED {s.getsockname()[1]}\n")
            subscribed = True
        log.write(f"{now:.6f} {g} {seq} {sent:.6f} {len(data)}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("tcp-server", "udp-server"):
        q = sub.add_parser(name)
        q.add_argument("--listen", default="0.0.0.0")
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--log", required=True)
        q.add_argument("--size", type=int, default=1000)
        q.add_argument("--rate", type=float, default=100.0)
    for name in ("tcp-client", "udp-client"):
        q = sub.add_parser(name)
        q.add_argument("--server", required=True)
        q.add_argument("--port", type=int, required=True)
        q.add_argument("--bind-port", type=int, required=True)
        q.add_argument("--gen", type=int, required=True)
        q.add_argument("--log", required=True)
        q.add_argument("--size", type=int, default=1000)
        q.add_argument("--rate", type=float, default=100.0)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    fn = {"tcp-server": tcp_server, "tcp-client": tcp_client,
          "udp-server": udp_server, "udp-client": udp_client}[a.cmd]
    sys.exit(fn(a) or 0)


if __name__ == "__main__":
    main()
