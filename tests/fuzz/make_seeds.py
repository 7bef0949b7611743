#!/usr/bin/env python3
"""Writes the seed corpora of the ctsync fuzz targets (tests/fuzz/*_fuzz.cc).

Usage: make_seeds.py OUT_DIR [--root REPO]

OUT_DIR/<target>/ receives one file per seed, named by its SHA-1, so running the script
again adds nothing twice. Sources:
  - tests/oracle/scenarios/*/scenario.json: every frame alone, and every scenario as one
    multi-frame input (packet_pipeline_fuzz); ruleset_v4 / ruleset_v6 (rules_parser_fuzz);
  - deploy/ctsyncd.conf.example and the string literals of
    tests/tools/ctsyncd/config_test.cc (config_parser_fuzz);
  - hand-built protobuf messages (encoded here, stdlib only) for the flow codec, the store
    records, export files and sync batches.
The record framing (kind, 2-byte big-endian length, body) is the one of
tests/fuzz/fuzz_input.h.
"""

import argparse
import hashlib
import json
import pathlib
import re
import struct

# ----------------------------------------------------------------------------- framing


def record(kind, body):
    return bytes([kind]) + struct.pack(">H", len(body)) + body


# ------------------------------------------------------------------- protobuf encoding


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""


def f_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data if data else b""


def ip4(text):
    return bytes(int(x) for x in text.split("."))


def ip6(text):
    import ipaddress

    return ipaddress.IPv6Address(text).packed


def tuple_msg(src, dst, sport, dport, proto, family=2):
    return (f_bytes(1, src) + f_bytes(2, dst) + f_varint(3, sport) + f_varint(4, dport) +
            f_varint(5, family) + f_varint(6, proto))


def tcp_dir(end, maxend, maxwin, maxack, scale=7, flags=0):
    return (f_varint(1, end) + f_varint(2, maxend) + f_varint(3, maxwin) + f_varint(4, maxack) +
            f_varint(5, scale) + f_varint(6, flags))


WALL_MS = 1_700_000_000_000  # the fuzz targets' wall clock (store, flow codec)

# Kernel IPS_* bits.
IPS_EXPECTED, IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED = 1, 2, 4, 8
IPS_SRC_NAT, IPS_DST_NAT = 16, 32
IPS_SRC_NAT_DONE, IPS_DST_NAT_DONE = 128, 256


def flow_msg(orig, reply, status, timeout_ms=120_000, tcp=b"", helper=b"", master=b"",
             zone=0, mark=0, seq_adjust=(), flow_id=1):
    m = (f_bytes(1, orig) + f_bytes(2, reply) + f_varint(3, status) + f_varint(4, zone) +
         f_varint(5, mark) + f_varint(6, timeout_ms) + f_varint(7, WALL_MS) + f_bytes(8, tcp) +
         f_bytes(9, helper) + f_bytes(10, master) + f_varint(13, flow_id) +
         f_varint(17, WALL_MS - 5000))
    for sa in seq_adjust:
        m += varint(14 << 3 | 2) + varint(len(sa)) + sa
    return m


def sample_flows():
    """A handful of valid flows of each kind the codec knows."""
    lan, srv, pub = ip4("192.0.2.10"), ip4("198.51.100.20"), ip4("203.0.113.5")
    est = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED
    tcp_state = (f_varint(1, 3) +  # ESTABLISHED
                 f_bytes(2, tcp_dir(1001, 66536, 65535, 5001)) +
                 f_bytes(3, tcp_dir(5001, 66536, 65535, 1001)) + f_varint(4, 1))
    flows = {
        "tcp_snat": flow_msg(tuple_msg(lan, srv, 40021, 80, 6), tuple_msg(srv, pub, 80, 40021, 6),
                             est | IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE,
                             timeout_ms=432_000_000, tcp=tcp_state),
        "udp": flow_msg(tuple_msg(lan, srv, 5000, 53, 17), tuple_msg(srv, lan, 53, 5000, 17),
                        IPS_CONFIRMED | IPS_SEEN_REPLY, timeout_ms=30_000, flow_id=2),
        "icmp": flow_msg(tuple_msg(lan, srv, 77, 8 << 8, 1), tuple_msg(srv, lan, 77, 0, 1),
                         IPS_CONFIRMED, timeout_ms=30_000, flow_id=3),
        "tcp_v6": flow_msg(
            tuple_msg(ip6("2001:db8:1::10"), ip6("2001:db8:2::20"), 40000, 443, 6, 10),
            tuple_msg(ip6("2001:db8:2::20"), ip6("2001:db8:1::10"), 443, 40000, 6, 10),
            est, timeout_ms=432_000_000, tcp=tcp_state, flow_id=4),
        "ftp_ctl": flow_msg(tuple_msg(lan, srv, 40021, 21, 6), tuple_msg(srv, pub, 21, 40021, 6),
                            est | IPS_SRC_NAT | IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE,
                            timeout_ms=432_000_000, tcp=tcp_state, helper=b"ftp",
                            seq_adjust=(f_varint(1, 1050) + f_varint(3, 1),
                                        f_varint(1, 0)), flow_id=5),
        "ftp_data": flow_msg(tuple_msg(srv, pub, 20, 50000, 6), tuple_msg(lan, srv, 50000, 20, 6),
                             IPS_CONFIRMED | IPS_EXPECTED | IPS_DST_NAT | IPS_DST_NAT_DONE |
                             IPS_SRC_NAT_DONE, timeout_ms=120_000,
                             master=tuple_msg(lan, srv, 40021, 21, 6), flow_id=6),
        "zone_mark": flow_msg(tuple_msg(lan, srv, 4000, 4000, 17),
                              tuple_msg(srv, lan, 4000, 4000, 17), IPS_CONFIRMED,
                              zone=7, mark=0x2A, flow_id=7),
        "generic_gre": flow_msg(tuple_msg(lan, srv, 0, 0, 47), tuple_msg(srv, lan, 0, 0, 47),
                                IPS_CONFIRMED, timeout_ms=600_000, flow_id=8),
    }
    return flows


# ------------------------------------------------------------------------------ CRC32C


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# ------------------------------------------------------------------- storage formats


def flow_key(zone, family, proto, src, dst, sport, dport):
    return (struct.pack(">HBB", zone, family, proto) + src + dst +
            struct.pack(">HH", sport, dport))


def flow_value(key, body):
    return struct.pack("<I", crc32c(key + body)) + body


def export_file(flows):
    """flows: list of (stream, proto::Flow bytes)."""
    out = bytearray(b"CTSNAPX1")

    def frame(kind, payload):
        crc = crc32c(payload)
        out.extend(kind + struct.pack("<II", len(payload), crc) + payload)
        return crc

    frame(b"H", f_varint(1, 1) + f_bytes(2, b"1") + f_varint(3, WALL_MS) + f_bytes(4, b"fuzz"))
    records_crc = 0
    for stream, body in flows:
        crc = frame(b"R", f_varint(1, stream) + f_bytes(2, body))
        records_crc = crc32c(struct.pack("<I", crc), records_crc)
    frame(b"T", f_varint(1, len(flows)) + f_varint(2, records_crc))
    return bytes(out)


# ---------------------------------------------------------------------- sync messages

MSG_DATA, MSG_ACK, MSG_NACK, MSG_ALIVE, MSG_RESYNC_REQ, MSG_RESYNC_DONE = range(1, 7)


def flow_update(kind, flow=b"", original=b"", zone=0):
    return f_varint(1, kind) + f_bytes(2, flow) + f_bytes(3, original) + f_varint(4, zone)


def batch(seq, updates, resync=False, wall_ms=WALL_MS):
    m = f_varint(1, seq) + f_varint(2, wall_ms)
    for u in updates:
        m += varint(3 << 3 | 2) + varint(len(u)) + u
    return m + f_varint(4, 1 if resync else 0)


def signed(msg_type, payload, flags=0, peer=0, incarnation=0):
    # Kind 1 of sync_datagram_fuzz: body[0] picks the type (1 + body[0] % 6).
    kind = 1 | peer << 2 | incarnation << 3
    return record(kind, bytes([msg_type - 1, flags]) + payload)


# -------------------------------------------------------------------------- builders


def pipeline_seeds(scenarios):
    seeds = []
    for sc in scenarios:
        stream = b""
        for p in sc["packets"]:
            frame = bytes.fromhex(p["frame_hex"])
            seeds.append(frame)
            wan = 1 if p.get("inject") == "wan" else 0
            step = min(126, int(p.get("delay_before_ms", 0)) // 1000)
            stream += record(step << 1 | wan, frame)
        seeds.append(stream)
    return seeds


# Every match, target and command of core/rules/README.md at least once.
RICH_RULES_V4 = """*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i lan0 -p tcp -m tcp --dport 21 -j CT --helper ftp
-A PREROUTING -p udp -m udp --sport 53 -j NOTRACK
-A PREROUTING -i wan+ -j CT --zone 7
-A OUTPUT -p udp -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [10:600]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:marks - [0:0]
-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-xmark 0x2a/0xff
-A PREROUTING -m connmark --mark 0x2a/0xff -j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff
-A PREROUTING -m mark ! --mark 0x1 -j marks
-A marks -p tcp -m multiport --dports 22,80,443:445 -j MARK --set-mark 0x1
-A marks -j MARK --or-mark 0x100
-A marks -j RETURN
-A POSTROUTING -m state --state ESTABLISHED -j CONNMARK --save-mark
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -d 203.0.113.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.0.2.10:8080
-A PREROUTING -i lan0 -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353-5354 --random
-A POSTROUTING -s 192.0.2.0/255.255.255.0 -o wan0 -p udp -j SNAT --to-source 203.0.113.5-203.0.113.6:1024-2048 --persistent
-A POSTROUTING -o wan0 -j MASQUERADE --random-fully
-A INPUT -p tcp -j SNAT --to-source 192.0.2.1
COMMIT
*filter
:INPUT DROP [5:300]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:lan_in - [0:0]
-N extra
-P OUTPUT ACCEPT
[3:180] -A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN --dport 22 -j REJECT --reject-with tcp-reset
-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT
-A INPUT -p tcp --syn -j LOG --log-prefix "new tcp: " --log-level 6
-I INPUT 1 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctproto tcp --ctorigsrc 192.0.2.0/24 --ctorigdstport 80:90 --ctstatus ASSURED --ctdir ORIGINAL -j ACCEPT
-A FORWARD -m conntrack --ctreplsrc 198.51.100.0/24 --ctrepldst 203.0.113.5 --ctstate SNAT,DNAT -j ACCEPT
-A FORWARD -i lan0 -g lan_in
-A FORWARD -f -j DROP
-A FORWARD ! -s 10.0.0.0/8 ! -i lan0 -p 47 -j ACCEPT
-A FORWARD -p icmp -j REJECT --reject-with icmp-admin-prohibited
-A lan_in -o wan0 -m conntrack --ctstate NEW -j ACCEPT
-A lan_in -j extra
-A extra -p udp -m multiport --ports 1000:2000,3000 -j REJECT
COMMIT
"""

RICH_RULES_V6 = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT
-A FORWARD -s 2001:db8:1::/64 -d 2001:db8:2::20/128 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -p udp -j REJECT --reject-with icmp6-port-unreachable
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 2001:db8:2::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8:1::10]:8080
-A POSTROUTING -o wan0 -j SNAT --to-source 2001:db8:2::5
COMMIT
"""


def rules_seeds(scenarios):
    seeds = [RICH_RULES_V4.encode(), RICH_RULES_V6.encode(),
             RICH_RULES_V4.replace("\n", "\r\n").encode()]
    for sc in scenarios:
        for key in ("ruleset_v4", "ruleset_v6"):
            if sc.get(key):
                seeds.append(sc[key].encode())
    return seeds


def c_string_literals(text):
    """Raw strings R"(...)" and ordinary "..." literals (adjacent ones joined)."""
    out = [m.group(1) for m in re.finditer(r'R"\((.*?)\)"', text, re.S)]
    plain = re.sub(r'R"\(.*?\)"', "", text, flags=re.S)
    for m in re.finditer(r'((?:"(?:[^"\\\n]|\\.)*"\s*)+)', plain):
        parts = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(1))
        s = "".join(parts)
        s = s.encode().decode("unicode_escape")
        if len(s) > 3:
            out.append(s)
    return out


def config_seeds(root):
    seeds = []
    example = root / "deploy" / "ctsyncd.conf.example"
    if example.exists():
        text = example.read_text()
        seeds.append(text.encode())
        seeds.append(re.sub(r"mac auto", "mac 02:00:00:00:00:99", text).encode())
    test = root / "tests" / "tools" / "ctsyncd" / "config_test.cc"
    if test.exists():
        for s in c_string_literals(test.read_text()):
            seeds.append(s.encode())
            if "mac auto" in s:
                seeds.append(s.replace("mac auto", "mac 02:00:00:00:00:99").encode())
    return seeds


def flow_codec_seeds():
    return list(sample_flows().values())


def store_seeds():
    flows = sample_flows()
    lan, srv = ip4("192.0.2.10"), ip4("198.51.100.20")
    keys = {
        "tcp_snat": flow_key(0, 2, 6, lan, srv, 40021, 80),
        "udp": flow_key(0, 2, 17, lan, srv, 5000, 53),
        "icmp": flow_key(0, 2, 1, lan, srv, 77, 8 << 8),
        "tcp_v6": flow_key(0, 10, 6, ip6("2001:db8:1::10"), ip6("2001:db8:2::20"), 40000, 443),
        "ftp_ctl": flow_key(0, 2, 6, lan, srv, 40021, 21),
        "ftp_data": flow_key(0, 2, 6, srv, ip4("203.0.113.5"), 20, 50000),
        "zone_mark": flow_key(7, 2, 17, lan, srv, 4000, 4000),
        "generic_gre": flow_key(0, 2, 47, lan, srv, 0, 0),
    }
    seeds = []
    everything = b""
    for name, body in flows.items():
        key = keys[name]
        rec = record(0, bytes([len(key)]) + key + flow_value(key, body))
        seeds.append(rec)
        everything += rec
        seeds.append(record(3, key))
    seeds.append(everything)
    # The same flows as the peers' (external stream).
    seeds.append(b"".join(record(1, bytes([len(keys[n])]) + keys[n] + flow_value(keys[n], b))
                          for n, b in flows.items()))
    exp = export_file([(0, b) for b in flows.values()] + [(1, flows["udp"])])
    seeds.append(exp)
    seeds.append(record(2, exp))
    seeds.append(exp[: len(exp) // 2])  # truncated
    return seeds


def sync_seeds():
    flows = sample_flows()
    ups = [flow_update(1, b) for b in flows.values()]
    lan, srv = ip4("192.0.2.10"), ip4("198.51.100.20")
    destroy = flow_update(3, original=tuple_msg(lan, srv, 5000, 53, 17))
    seeds = []
    # Signed, in order, then a destroy, a gap, an alive, a resync request and done.
    s = b"".join(signed(MSG_DATA, batch(i + 1, [u])) for i, u in enumerate(ups))
    s += signed(MSG_DATA, batch(len(ups) + 1, [destroy]))
    s += signed(MSG_DATA, batch(len(ups) + 5, [ups[0]]), flags=2)
    s += record(3, struct.pack(">H", 50))
    s += signed(MSG_ALIVE, f_varint(1, len(ups) + 5) + f_varint(2, 1) + f_varint(4, 0))
    s += signed(MSG_ACK, f_varint(1, 1) + f_varint(2, 1) + f_varint(3, 0))
    s += signed(MSG_NACK, f_varint(1, 1) + f_varint(2, 1) +
                f_bytes(3, f_varint(1, 1) + f_varint(2, 3)))
    s += signed(MSG_RESYNC_REQ, f_varint(1, 1) + f_varint(2, 1))
    s += signed(MSG_RESYNC_DONE, f_varint(1, 3) + f_varint(2, 8))
    s += record(3 | 8, struct.pack(">H", 1))  # promote
    s += record(3 | 4, struct.pack(">H", 600))  # ten minutes
    seeds.append(s)
    # One signed batch with every flow, as a resync dump, from the second peer.
    seeds.append(signed(MSG_DATA, batch(1, ups, resync=True), peer=1))
    # Direct batches (kind 2).
    seeds.append(record(2, batch(1, ups)) + record(2, batch(2, [destroy])) +
                 record(3 | 16, b"\x00\x01"))
    # A structurally valid datagram with a wrong tag (kind 0).
    payload = batch(1, ups[:1])
    header = (b"CTSY" + bytes([1, MSG_DATA]) + struct.pack(">HIQQI", 0, 2, 1, 1, len(payload)))
    seeds.append(record(0, header + payload + b"\x00" * 32))
    return seeds


def write(out_dir, target, seeds):
    d = out_dir / target
    d.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        (d / hashlib.sha1(s).hexdigest()).write_bytes(s)
    return len(set(seeds))


def main():
    here = pathlib.Path(__file__).resolve()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=pathlib.Path)
    ap.add_argument("--root", type=pathlib.Path, default=here.parent.parent.parent)
    args = ap.parse_args()
    scen_dir = args.root / "tests" / "oracle" / "scenarios"
    scenarios = [json.loads(p.read_text()) for p in sorted(scen_dir.glob("*/scenario.json"))]
    counts = {
        "packet_pipeline_fuzz": write(args.out_dir, "packet_pipeline_fuzz",
                                      pipeline_seeds(scenarios)),
        "rules_parser_fuzz": write(args.out_dir, "rules_parser_fuzz", rules_seeds(scenarios)),
        "config_parser_fuzz": write(args.out_dir, "config_parser_fuzz", config_seeds(args.root)),
        "sync_datagram_fuzz": write(args.out_dir, "sync_datagram_fuzz", sync_seeds()),
        "store_reader_fuzz": write(args.out_dir, "store_reader_fuzz", store_seeds()),
        "flow_codec_fuzz": write(args.out_dir, "flow_codec_fuzz", flow_codec_seeds()),
    }
    for target, n in counts.items():
        print(f"make_seeds: {n:4d} seeds for {target}")


if __name__ == "__main__":
    main()
