#!/usr/bin/env python3
"""Logs every ARP packet seen on one interface, for the failover drill: the moment the
client's (or server's) segment hears a new MAC address claim a virtual IP is the moment
the VIP moved. Runs in the client and server namespaces, so it sees what hosts see.

Log line: "<wall time> <request|reply> <sender ip> <sender mac> <target ip>".
"""
import argparse
import signal
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dev", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((a.dev, ETH_P_ARP))
    with open(a.log, "a", buffering=1) as log:
        while True:
            frame = s.recv(2048)
            now = time.time()
            if len(frame) < 42:
                continue
            op = struct.unpack_from("!H", frame, 20)[0]
            sha = ":".join(f"{b:02x}" for b in frame[22:28])
            spa = socket.inet_ntoa(frame[28:32])
            tpa = socket.inet_ntoa(frame[38:42])
            kind = {1: "request", 2: "reply"}.get(op, f"op{op}")
            log.write(f"{now:.6f} {kind} {spa} {sha} {tpa}\n")


if __name__ == "__main__":
    main()
