#!/usr/bin/env python3
"""Bulk flow generator for the failover drill: fills the firewall's table with N NATed UDP
flows so that the backup must hold N synced flows when the active node fails.

  send     (client namespace) one UDP datagram per flow through a raw IPv4 socket from
           the client's address, source ports 1024..65535 to destination port --dport, then
           the same source ports to --dport + 1, and so on (the firewall SNATs everything
           to one address, so one server port can only tell 64512 flows apart), paced at
           --pps. With
           --passes 2 every flow is sent twice, 2.2 s apart, so that a flow that has seen a
           reply is still active after two seconds and becomes ASSURED with the long UDP
           stream timeout (120 s), as in the kernel.
  respond  (server namespace) echoes every datagram received on --port .. --port + N - 1
           back to its sender, so each flow sees a reply (the reply goes to the NAT address
           and is translated back by the firewall).

Prints one JSON line: {"flows": N, "passes": P, "seconds": wall time of sending}.
A raw socket is used because one UDP socket per flow would need N file descriptors, and scapy
sends a few thousand packets per second at best; this sends 50k+ per second when asked.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

PORT_LO, PORT_HI = 1024, 65535
PORTS_PER_SOURCE = PORT_HI - PORT_LO + 1


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def flows_of(a):
    """(source port, destination port) of each of the N flows."""
    for i in range(a.flows):
        yield PORT_LO + i % PORTS_PER_SOURCE, a.dport + i // PORTS_PER_SOURCE


def ports_needed(flows):
    return max(1, (flows + PORTS_PER_SOURCE - 1) // PORTS_PER_SOURCE)


def build(src, dst, sport, dport, payload):
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    length = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    # Total length, id and header checksum are left for the kernel to fill (IP_HDRINCL).
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0x4000, 64,
                     socket.IPPROTO_UDP, 0, s, d)
    return ip + udp


def send(a):
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    packets = [build(a.src, a.dst, sport, dport, b"ctsync-drill")
               for sport, dport in flows_of(a)]
    t0 = time.time()
    sent = 0
    for p in range(a.passes):
        if p:
            time.sleep(2.2)
        start = time.time()
        for i, pkt in enumerate(packets):
            while True:
                try:
                    raw.sendto(pkt, (a.dst, 0))
                    break
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError as e:  # ENOBUFS under a burst: back off and retry
                    if e.errno not in (105, 11):
                        raise
                    time.sleep(0.001)
            sent += 1
            if i % 256 == 255:
                ahead = start + (i + 1) / a.pps - time.time()
                if ahead > 0:
                    time.sleep(ahead)
    print(json.dumps({"flows": len(packets), "passes": a.passes, "packets": sent,
                      "seconds": round(time.time() - t0, 3)}), flush=True)


def respond(a):
    socks = []
    for port in range(a.port, a.port + a.ports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((a.listen, port))
        s.setblocking(False)
        socks.append(s)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            for _ in range(256):  # drain a burst before going back to select
                try:
                    data, peer = s.recvfrom(2048)
                except BlockingIOError:
                    break
                try:
                    s.sendto(data, peer)
                except OSError:
                    pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("send")
    q.add_argument("--flows", type=int, required=True)
    q.add_argument("--src", default="192.0.2.10")
    q.add_argument("--dst", default="198.51.100.20")
    q.add_argument("--dport", type=int, default=7000)
    q.add_argument("--pps", type=float, default=20000)
    q.add_argument("--passes", type=int, default=1)
    q = sub.add_parser("respond")
    q.add_argument("--listen", default="0.0.0.0")
    q.add_argument("--port", type=int, default=7000)
    q.add_argument("--flows", type=int, required=True, help="listen on enough ports for N")
    a = p.parse_args()
    if a.cmd == "respond":
        a.ports = ports_needed(a.flows)
    sys.exit(send(a) if a.cmd == "send" else respond(a))


if __name__ == "__main__":
    main()
