#!/usr/bin/env python3
"""Turns the logs of one failover drill run (deploy/drill.sh --out DIR) into its verdict:
DIR/report.txt (tables), DIR/report.json, and DIR/plots/<event>.svg (each stream's
throughput around the failure, with the failure, promotion and VIP-move moments marked).

Inputs, all written by drill.sh and the scripts it starts:
  events/NN-name/event.env    what was done when (t_fail, t_end, nodes, flow counts)
  events/NN-name/{before,after}-fwN-{live,external}.txt   the streams' table lines
  streams/tcp.log             TCP records received by the server (all generations)
  streams/tcp-client-G.log    TCP client errors (a reset ends the stream)
  streams/udp-G.log           UDP records received by the client
  streams/arp-{lan,wan}.log   ARP seen by the client and the server
  nodes/fwN/notify.log        keepalived notify-script steps (deploy/keepalived/ctsync-notify.sh)

A stream survived an event when records sent after the failure arrived, no TCP error was
logged and no gap between arrivals reached DEAD_GAP_S (a TCP stream that stalls longer
than that is considered dead even if it would recover later).
Exit status: 0 when the run met its expectation (every stream survived every event; with
--expect-dead, every stream died in every round), 1 otherwise.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

DEAD_GAP_S = 10.0
BIN_S = 0.1
PRE_S = 5.0
VIPS = {"lan": "192.0.2.1", "wan": "203.0.113.10"}
# Drill MACs: 02:00:c7:<node>:<segment>:01 (deploy/drill.sh mac()).
MACS = {("fw1", "lan"): "02:00:c7:01:01:01", ("fw2", "lan"): "02:00:c7:02:01:01",
        ("fw1", "wan"): "02:00:c7:01:02:01", ("fw2", "wan"): "02:00:c7:02:02:01"}
STREAMS = (("tcp", 40000, 5001), ("udp", 41000, 5002))


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v
    return env


def records(path, gen=None):
    """(arrival, seq, sent, bytes) of the data lines of a receiver log."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 5 and w[2].isdigit() and (gen is None or w[1] == str(gen)):
                out.append((float(w[0]), int(w[2]), float(w[3]), int(w[4])))
    return out


def errors(path, gen, after):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3 and w[2] == "ERROR" and w[1] == str(gen) and float(w[0]) >= after:
                out.append(" ".join(w[3:]))
    return out


def notify_times(path, t_fail):
    """(first MASTER decision, promote done, rc) on one node after t_fail."""
    master = done = rc = None
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) < 6 or float(w[0]) < t_fail - 0.05 or w[3] != "MASTER":
                    continue
                if master is None and w[5] == "start":
                    master = float(w[0])
                elif master is not None and done is None and w[5] == "done":
                    done = float(w[0])
                    rc = int(w[6].split("=")[1])
    return master, done, rc


def vip_move(out, seg, node, t_fail):
    path = os.path.join(out, "streams", f"arp-{seg}.log")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 5 and float(w[0]) >= t_fail and w[2] == VIPS[seg] \
                    and w[3] == MACS[(node, seg)]:
                return float(w[0])
    return None


def nat_of(path, client_port, server_port):
    """The NAT address:port the server sees for a stream, from a conntrack -L line."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            pairs = re.findall(r"(src|dst|sport|dport)=(\S+)", line)
            if len(pairs) < 8:
                continue
            orig, reply = dict(pairs[0:4]), dict(pairs[4:8])
            # Only the flow the client opened: a packet of the server that reached a node
            # without the flow may have created one in the other direction.
            if orig["sport"] == str(client_port) and orig["dport"] == str(server_port) \
                    and orig["src"].startswith("192.0.2."):
                return f"{reply['dst']}:{reply['dport']}"
    return None


def analyse_stream(kind, recs, errs, t_fail, t_end, t_promoted):
    window = [r for r in recs if t_fail - PRE_S <= r[0] <= t_end]
    arrivals = [r[0] for r in window]
    gap, gap_at = 0.0, None
    before = [a for a in arrivals if a < t_fail]
    prev = before[-1] if before else t_fail
    for a in arrivals:
        if a >= prev and a - prev > gap and a >= t_fail:
            gap, gap_at = a - prev, prev
        prev = max(prev, a)
    if t_end - prev > gap:
        gap, gap_at = t_end - prev, prev
    # Records sent once the new node was active arrived, and the stream still delivered in
    # its last second of observation.
    resumed = any(r[2] > max(t_fail, t_promoted or t_fail) for r in window) \
        and any(a > t_end - 1.0 for a in arrivals)
    lost = None
    seqs = sorted({r[1] for r in window})
    if kind == "udp" and seqs:
        lost = (seqs[-1] - seqs[0] + 1) - len(seqs)
    survived = resumed and not errs and gap < DEAD_GAP_S
    return {"survived": survived, "resumed": resumed, "longest_gap_s": round(gap, 3),
            "gap_starts_s": None if gap_at is None else round(gap_at - t_fail, 3),
            "lost_records": lost, "errors": errs}


def throughput(recs, t_fail, t_end):
    n = int((t_end - (t_fail - PRE_S)) / BIN_S) + 1
    bins = [0] * n
    for a, _, _, size in recs:
        i = int((a - (t_fail - PRE_S)) / BIN_S)
        if 0 <= i < n:
            bins[i] += size
    return [(round(-PRE_S + (i + 0.5) * BIN_S, 3), b / BIN_S / 1000.0) for i, b in enumerate(bins)]


def plot(out, name, title, series, marks):
    """Writes plots/<name>.svg with gnuplot (gnuplot-nox); returns its path or None."""
    plots = os.path.join(out, "plots")
    dat = os.path.join(plots, f"{name}.dat")
    with open(dat, "w") as f:
        f.write("# t_since_failure_s tcp_kB_per_s udp_kB_per_s\n")
        for (t, tcp), (_, udp) in zip(series["tcp"], series["udp"]):
            f.write(f"{t} {tcp:.1f} {udp:.1f}\n")
    svg = os.path.join(plots, f"{name}.svg")
    colours = {"failure": "#d62728", "promotion": "#2ca02c", "VIP moved": "#1f77b4"}
    lines = [
        "set terminal svg size 1000,420 dynamic font 'sans,11' background '#ffffff'",
        f"set output '{svg}'",
        f"set title '{title}' noenhanced",
        "set xlabel 'seconds since the failure'",
        "set ylabel 'received kB/s (100 ms bins)'",
        "set grid", "set key outside bottom center horizontal", "set yrange [0:*]",
        "set offsets 0, 0, graph 0.25, 0",
    ]
    for label, t in marks:
        if t is None:
            continue
        c = colours.get(label.split(" (")[0], "#7f7f7f")
        lines.append(f"set arrow from {t:.3f}, graph 0 to {t:.3f}, graph 1 nohead "
                     f"lw 1.5 lc rgb '{c}' dt 2")
    for idx, (label, t) in enumerate(sorted((m for m in marks if m[1] is not None),
                                            key=lambda m: m[1])):
        lines.append(f"set label {idx + 1} '{label} {t:+.2f}s' at {t:.3f}, graph "
                     f"{0.95 - 0.07 * idx:.2f} offset 0.5,0 noenhanced font ',9'")
    lines.append(f"plot '{dat}' using 1:2 with steps lw 1.5 title 'TCP upload (server)', "
                 f"'{dat}' using 1:3 with steps lw 1.5 title 'UDP download (client)'")
    # The script is kept beside the data so a plot can be re-rendered (e.g. to PNG).
    script = os.path.join(plots, f"{name}.gp")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    if not shutil.which("gnuplot"):
        return None
    r = subprocess.run(["gnuplot", script], text=True, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(f"analyze: gnuplot failed for {name}: {r.stderr}\n")
        return None
    return svg


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}{unit}"
    return f"{v}{unit}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--expect-dead", action="store_true")
    a = p.parse_args()
    out = a.out
    drill = read_env(os.path.join(out, "drill.env"))
    sync = drill.get("sync") == "1"
    requested = int(drill.get("flows", "0"))
    events = []
    for d in sorted(glob.glob(os.path.join(out, "events", "*"))):
        env_path = os.path.join(d, "event.env")
        if not os.path.exists(env_path):
            continue
        env = read_env(env_path)
        if "t_fail" not in env or "t_end" not in env:
            continue
        t_fail, t_end = float(env["t_fail"]), float(env["t_end"])
        gen = int(env["gen"])
        to, frm = env["expected_active"], env["from"]
        master, done, rc = notify_times(os.path.join(out, "nodes", to, "notify.log"), t_fail)
        ev = {"name": os.path.basename(d), "kind": env["kind"], "from": frm,
              "expected_active": to, "active_after": env.get("active_after"),
              "generation": gen, "t_fail": t_fail,
              "vrrp_master_s": None if master is None else round(master - t_fail, 3),
              "promoted_s": None if done is None else round(done - t_fail, 3),
              "promote_rc": rc, "flowgen": env.get("flowgen"),
              "sync_wait_s": env.get("sync_wait_s"), "flows": {}, "streams": {}}
        for seg in ("lan", "wan"):
            t = vip_move(out, seg, to, t_fail)
            ev[f"vip_{seg}_moved_s"] = None if t is None else round(t - t_fail, 3)
        for tag in ("before", "after"):
            for n in ("fw1", "fw2"):
                for cache in ("live", "external"):
                    v = env.get(f"flows_{tag}_{n}_{cache}")
                    ev["flows"][f"{tag}_{n}_{cache}"] = None if v in (None, "") else int(v)
        series = {}
        for kind, base, sport in STREAMS:
            if kind == "tcp":
                recs = records(os.path.join(out, "streams", "tcp.log"), gen)
                errs = errors(os.path.join(out, "streams", f"tcp-client-{gen}.log"), gen, t_fail)
                errs += errors(os.path.join(out, "streams", "tcp.log"), gen, t_fail)
            else:
                recs = records(os.path.join(out, "streams", f"udp-{gen}.log"))
                errs = []
            s = analyse_stream(kind, recs, errs, t_fail, t_end, done)
            cport = base + gen
            s["nat_before"] = nat_of(os.path.join(d, f"before-{frm}-live.txt"), cport, sport)
            s["nat_after"] = nat_of(os.path.join(d, f"after-{to}-live.txt"), cport, sport)
            ev["streams"][kind] = s
            series[kind] = throughput(recs, t_fail, t_end)
        marks = [("failure", 0.0), ("promotion (VRRP MASTER)", ev["vrrp_master_s"]),
                 ("promotion done", ev["promoted_s"]),
                 ("VIP moved (LAN)", ev["vip_lan_moved_s"]),
                 ("VIP moved (WAN)", ev["vip_wan_moved_s"])]
        title = (f"{ev['name']}: {frm} -> {to}, sync {'on' if sync else 'off'}, "
                 f"generation {gen}")
        ev["svg"] = plot(out, ev["name"], title, series, marks)
        events.append(ev)

    # Verdict.
    problems = []
    for ev in events:
        for kind, s in ev["streams"].items():
            if a.expect_dead:
                if ev["kind"] == "round" and s["survived"]:
                    problems.append(f"{ev['name']}: {kind} stream survived without sync")
            elif not s["survived"]:
                why = f", {s['errors'][0]}" if s["errors"] else ""
                problems.append(f"{ev['name']}: {kind} stream died "
                                f"(gap {s['longest_gap_s']} s{why})")
        if sync and not a.expect_dead and ev["kind"] == "round" and requested:
            held = ev["flows"].get(f"before_{ev['expected_active']}_external")
            if ev["name"].endswith("cold"):
                held = ev["flows"].get("before_fw1_external")
            # What the backup must hold is what the active held: at large N the first
            # generated flows time out (UDP, 30 s unreplied) before the last are made.
            active = "fw2" if ev["expected_active"] == "fw1" else "fw1"
            live = ev["flows"].get(f"before_{active}_live")
            want = min(requested, live) if live else requested
            if held is None or held < want * 0.95:
                problems.append(f"{ev['name']}: the backup held {held} flows before the "
                                f"failure, the active {live} ({requested} were generated)")
        if not a.expect_dead and ev["active_after"] != ev["expected_active"]:
            problems.append(f"{ev['name']}: {ev['active_after']} active after, "
                            f"expected {ev['expected_active']}")
    rounds = [e for e in events if e["kind"] == "round"]
    if not rounds:
        problems.append("no round completed")
    ok = not problems

    # Report.
    L = []
    L.append(f"ctsync failover drill: sync {'on' if sync else 'OFF (control)'}, "
             f"{requested} extra flows, advert_int {drill.get('advert_int')} s, "
             f"rounds {drill.get('rounds')}")
    L.append("")
    hdr = (f"{'event':<24} {'stream':<6} {'survived':<9} {'longest gap':>12} {'lost':>5}  "
           f"{'NAT before':<20} {'NAT after':<20}")
    L.append(hdr)
    L.append("-" * len(hdr))
    for ev in events:
        for kind, s in ev["streams"].items():
            # "+": the gap was still open when observation ended (the stream never resumed).
            gap = fmt(s["longest_gap_s"], " s") + ("+" if not s["resumed"] else " ")
            L.append(f"{ev['name']:<24} {kind:<6} {'yes' if s['survived'] else 'NO':<9} "
                     f"{gap:>12} {fmt(s['lost_records']):>5}  "
                     f"{fmt(s['nat_before']):<20} {fmt(s['nat_after']):<20}")
    L.append("")
    hdr = (f"{'event':<24} {'from->to':<9} {'VRRP':>7} {'promoted':>9} {'VIP lan':>8} "
           f"{'VIP wan':>8}  flows before fw1 live/ext, fw2 live/ext -> after")
    L.append(hdr)
    L.append("-" * len(hdr))
    for ev in events:
        f = ev["flows"]
        fl = lambda tag: (f"{fmt(f[f'{tag}_fw1_live'])}/{fmt(f[f'{tag}_fw1_external'])}, "
                          f"{fmt(f[f'{tag}_fw2_live'])}/{fmt(f[f'{tag}_fw2_external'])}")
        L.append(f"{ev['name']:<24} {ev['from'] + '->' + ev['expected_active']:<9} "
                 f"{fmt(ev['vrrp_master_s'], 's'):>7} {fmt(ev['promoted_s'], 's'):>9} "
                 f"{fmt(ev['vip_lan_moved_s'], 's'):>8} {fmt(ev['vip_wan_moved_s'], 's'):>8}  "
                 f"{fl('before')} -> {fl('after')}")
    L.append("")
    for ev in events:
        if ev.get("flowgen"):
            L.append(f"{ev['name']}: flow generator {ev['flowgen']}, backup in sync after "
                     f"{ev['sync_wait_s']} s")
    L.append("times are seconds after the failure; VRRP = notify MASTER on the new active, "
             "promoted = ctsyncctl promote returned; VIP = first ARP for the VIP from its MAC")
    L.append("")
    if a.expect_dead:
        L.append("expectation: every stream dies in every round (control without sync)")
    else:
        L.append("expectation: every stream survives every event")
    L.extend(f"  FAIL {x}" for x in problems)
    L.append("RESULT: " + ("PASS" if ok else "FAIL"))
    text = "\n".join(L) + "\n"
    with open(os.path.join(out, "report.txt"), "w") as fh:
        fh.write(text)
    with open(os.path.join(out, "report.json"), "w") as fh:
        json.dump({"ok": ok, "problems": problems, "sync": sync, "events": events}, fh, indent=1)
    sys.stdout.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
