"""The report: docs/benchmarks.md from results.json and the hand-written analysis.

What is generated is what follows from the data by rule: the machine and method of the run, for
every scenario its tables (median and, in brackets, the min-max over the rounds, "n/a" where a
server does not run, "[N failed]" where runs failed), S2's ratios of CPU per round trip, and the
targets: ratios of medians against the thresholds issue 6 set, met or missed. Nothing generated
says what the numbers mean.

That is the analysis, written by hand in docs/benchmarks-analysis.md for one run, which it names:

    - **Written**: YYYY-MM-DD
    - **Run discussed**: <machine.date of that run's results.json, e.g. 2026-12-02 00:32 UTC>

The report includes the analysis as it is (its title left out, its headings one level down) and
says which run it was written for. When results.json is from another run, the report says so
plainly above the analysis: the tables are then newer than the words.
"""

import re
from pathlib import Path

from .common import ROOT, SYSCALL_KINDS, b, busy_pair, calls, med, select_idle
from .plots import FILES

ANALYSIS = ROOT / "docs" / "benchmarks-analysis.md"


class AnalysisError(Exception):
    pass


# The Go release whose sources chapter 07's names and comments follow (its README says so).
CHAPTER_07_GO_MINOR = 27


def fmt_num(x, digits=None):
    if x is None:
        return "-"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"


def cell(v, f, nfail=0):
    if not v:
        return "failed" if nfail else "-"
    s = f(med(v))
    if len(v) > 1:
        s += f" ({f(min(v))}-{f(max(v))})"
    if nfail:
        s += f" [{nfail} failed]"
    return s


def skipped_label(key):
    return {"go": "Go reference", "asio": "Asio reference"}.get(key, key)


def read_analysis(path):
    """(written, run discussed, body). The page is its title, a header that ends with the list that
    holds Written and Run discussed, and the body: the part after that list, headings one level down."""
    text = Path(path).read_text()
    written = re.search(r"^- \*\*Written\*\*: (\d{4}-\d\d-\d\d)\s*$", text, re.M)
    run = re.search(r"^- \*\*Run discussed\*\*: (.+?)\s*$", text, re.M)
    if not written or not run:
        raise AnalysisError(f"{path}: needs the lines '- **Written**: YYYY-MM-DD' and "
                            "'- **Run discussed**: <the date of the run in its results.json>'")
    lines = text.splitlines()
    if not lines[0].startswith("# "):
        raise AnalysisError(f"{path}: the first line must be its title ('# ...')")
    start = text[:max(written.end(), run.end())].count("\n") + 1   # the line after the later of the two
    while start < len(lines) and lines[start].startswith("- **"):
        start += 1
    body, fence = [], False
    for line in lines[start:]:
        if line.startswith("```"):
            fence = not fence
        body.append("#" + line if line.startswith("#") and not fence else line)
    text = "\n".join(body).strip("\n")
    if not text:
        raise AnalysisError(f"{path}: nothing after the list of Written and Run discussed")
    return written.group(1), run.group(1), text


def targets(res):
    """[(target, wanted, ratio dict, met, measured)]: the ratios issue 6 set as targets."""
    n = 1000 if 1000 in res.cfg["s1_conns"] else max(res.cfg["s1_conns"])
    rows = []
    rt = b("round_trips_per_s")
    cpu = b("server_cpu_us_per_rt")
    mem = lambda r: r.get("rss_kib_per_conn")  # noqa: E731

    def ratio(scenario, a, bkey, metric, point=None):
        va, vb = res.values(scenario, a, metric, point), res.values(scenario, bkey, metric, point)
        if not va or not vb:
            return None
        return dict(a=med(va), b=med(vb), ratio=med(va) / med(vb), lo=min(va) / max(vb), hi=max(va) / min(vb))

    if "go" in res.servers and "07" in res.servers:
        x = ratio("S1", "07", "go", rt, n)
        if x:
            rows.append((f"07 vs Go: throughput at {n:,} connections (S1)", "≥ 1.0x", x, x["ratio"] >= 1.0,
                         f"{fmt_rate(x['a'])} vs {fmt_rate(x['b'])} rt/s"))
        x = ratio("S1", "07", "go", cpu, n)
        if x:
            rows.append((f"07 vs Go: server CPU per round trip at {n:,} connections (S1)", "≤ 1.0x", x,
                         x["ratio"] <= 1.0, f"{fmt_num(x['a'])} vs {fmt_num(x['b'])} µs"))
        x = ratio("S4", "07", "go", mem)
        if x:
            rows.append((f"07 vs Go: memory per idle connection at {res.cfg['s4_conns']:,} connections (S4)",
                         "≤ 0.5x", x, x["ratio"] <= 0.5, f"{fmt_num(x['a'])} vs {fmt_num(x['b'])} KiB"))
    for k in ("05", "06"):
        if "asio" in res.servers and k in res.servers:
            x = ratio("S1", k, "asio", rt, n)
            if x:
                rows.append((f"{k} vs Asio: throughput at {n:,} connections (S1)", "≥ 1.0x", x, x["ratio"] >= 1.0,
                             f"{fmt_rate(x['a'])} vs {fmt_rate(x['b'])} rt/s"))
    return rows


class Report:
    def __init__(self, res, out_dir, analysis=ANALYSIS, problems=()):
        self.res, self.out = res, Path(out_dir)
        self.analysis = Path(analysis)
        self.problems = list(problems)   # from drawing the plots: printed, not kept in results.json
        self.lines = []

    def w(self, s=""):
        self.lines.append(s)

    def label(self, k):
        return self.res.servers[k]["label"]

    def m(self, scenario, key, metric, point=None):
        return self.res.values(scenario, key, metric, point)

    def plot(self, name, alt):
        """The image line of a plot, if its SVG is there (drawn from this results.json)."""
        if (self.out / "benchmarks" / FILES[name]).exists():
            self.w(f"![{alt}](benchmarks/{FILES[name]})")
            self.w()

    def table(self, scenario, points, metric, fmt, head=None, raw=False):
        """Rows: servers; columns: points. raw: metric gives (server, generator) busy shares."""
        pts_head = head or [str(p) for p in points]
        self.w("| server | " + " | ".join(pts_head) + " |")
        self.w("| --- |" + " ---: |" * len(points))
        for k in self.res.keys(scenario):
            cells = []
            for p in points:
                if not self.res.planned(scenario, k, p):
                    cells.append("n/a")
                    continue
                if raw:
                    v = self.m(scenario, k, metric, p)
                    cells.append(f"{100 * med([x[0] for x in v]):.0f}% / {100 * med([x[1] for x in v]):.0f}%" if v else "-")
                    continue
                cells.append(cell(self.m(scenario, k, metric, p), fmt, len(self.res.failures(scenario, k, p))))
            self.w(f"| {self.label(k)} | " + " | ".join(cells) + " |")
        self.w()

    def gen_command(self, scenario):
        """The echo-bench command line of a scenario's first run, with placeholders for what varies."""
        for r in self.res.runs:
            if r["scenario"] == scenario and r.get("command"):
                cmd = r["command"].split()
                cmd[0] = "echo-bench"
                for flag, ph in (("--port", "PORT"), ("--server-pid", "PID"), ("--connections", None),
                                 ("--idle", None)):
                    if flag in cmd:
                        i = cmd.index(flag)
                        if ph:
                            cmd[i + 1] = ph
                        elif scenario == "S1" and flag == "--connections":
                            cmd[i + 1] = "N"
                        elif scenario == "S2" and flag == "--idle":
                            cmd[i + 1] = "I"
                return " ".join(cmd)
        return "echo-bench"

    def s2_ratios(self):
        c = self.res.cfg
        lo, hi = min(c["s2_idle"]), max(c["s2_idle"])
        parts = []
        for k in self.res.keys("S2"):
            top = hi if k != "03" else max(i for i in c["s2_idle"] if i <= 1000)
            a = self.m("S2", k, b("server_cpu_us_per_rt"), lo)
            z = self.m("S2", k, b("server_cpu_us_per_rt"), top)
            if a and z and med(a):
                parts.append(f"{self.label(k)} {med(z) / med(a):.1f}x (at {self.res.s2_idle(top, k):,} idle)")
        if not parts:
            return ""
        return "Server CPU per round trip with the most idle connections, relative to none: " + ", ".join(parts) + "."

    # The document --------------------------------------------------------
    def write(self):
        res, i, c, w = self.res, self.res.machine, self.res.cfg, self.w
        rounds = c["rounds"]
        ran = {r["scenario"] for r in res.runs}
        written, discussed, analysis = read_analysis(self.analysis)
        w("# Benchmarks")
        w()
        w("<!-- Generated by tools/benchmark from benchmarks/results.json, with the analysis of "
          "benchmarks-analysis.md: do not edit by hand; edit that page, or re-run (tools/benchmark --report-only "
          "regenerates this page from results.json). -->")
        w()
        commit = f", commit {i['commit']}" if i.get("commit") else ""
        w(f"Generated by `{i['command']}` ({i['mode']} mode) on {i['date']}{commit}; the run took "
          f"{res.times['total'] / 60:.1f} minutes ({res.times['measure'] / 60:.1f} measuring). "
          f"Raw numbers: [benchmarks/results.json](benchmarks/results.json). "
          f"Re-run with `tools/benchmark` (or `tools/course bench`; full: about 13 minutes on 2 cores) or "
          f"`tools/benchmark --quick` (under 2 minutes: fewer points, one round, shorter runs).")
        w()
        w("## Analysis")
        w()
        if discussed == i["date"]:
            w(f"Written by hand on {written} for this run (of {discussed}), in "
              "[benchmarks-analysis.md](benchmarks-analysis.md); the tables after it are generated.")
        else:
            w(f"**The analysis below was written for the run of {discussed}; these tables are from {i['date']}.** "
              "The numbers it quotes are that run's, and what it concludes may no longer hold: compare before "
              "you trust it (written by hand on "
              f"{written}, in [benchmarks-analysis.md](benchmarks-analysis.md)).")
        w()
        w(analysis)
        w()
        w("## Machine")
        w()
        w("| | |")
        w("| --- | --- |")
        w(f"| CPU | {i['cpu']}, {i['cores']} cores online |")
        w(f"| memory | {i['memory_gib']} GiB |")
        w(f"| system | {i['os']}, Linux {i['kernel']} |")
        w(f"| compiler | {i['compiler']}; CMake preset `default` ({i['build_type']}: -O2 -g) |")
        w(f"| Go | {i['go'] or 'not installed: Go reference skipped'} |")
        w(f"| Boost | {i['boost'] or 'not installed: Asio reference skipped'} |")
        w(f"| plots | {i['gnuplot'] or 'gnuplot not installed: no plots'} |")
        w()
        go = re.search(r"go1\.(\d+)", i.get("go") or "")
        if go and int(go.group(1)) < CHAPTER_07_GO_MINOR:
            w(f"**The Go reference is older than the Go chapter 07 follows.** It is Debian 12's Go 1.{go.group(1)}; "
              f"chapter 07's names and comments follow Go 1.{CHAPTER_07_GO_MINOR}'s sources. The design the benchmark "
              "exercises is the same in both: one edge-triggered registration per connection, a goroutine parked "
              "on `EAGAIN` and made runnable by `netpoll`. What changed in between is off the per-message path: "
              "the tagged `pollDesc` pointer against stale events (1.21), `netpollBreak` on an eventfd and the "
              "rewritten timers (1.23).")
            w()
        other = sum(t["other_cpu_s"] for t in res.timing.values())
        meas = sum(t["seconds"] for t in res.timing.values()) or 1
        w(f"**Quietness.** While it measured, other processes on the machine used {other:.0f} CPU-seconds, "
          f"{100 * other / (meas * i['cores']):.1f}% of the machine's {i['cores']} cores over {meas:.0f} s "
          "(all CPU time in user and system mode, from /proc/stat, less this program's and its children's); "
          "per scenario: "
          + ", ".join(f"{s} {t['other_cpu_s']:.0f} CPU-s over {t['seconds']:.0f} s" for s, t in res.timing.items())
          + ".")
        for note in res.notes + self.problems:
            w()
            w(f"Note: {note}")
        w()
        w("## Method")
        w()
        pin = ("each server runs pinned to CPU 1 (`taskset -c 1`), the load generator `build/bin/echo-bench` "
               "(and this program) on CPU 0" if i.get("pinned") else "the machine has one CPU: nothing is pinned, "
               "server and generator share it")
        nice = i.get("nice", 0)
        pin += (f"; all of them run at nice {nice} (the highest priority), so that other work on the machine "
                "steals less of their time" if nice < 0 else "")
        w(f"- **Pinning**: {pin}. Go sets GOMAXPROCS from the CPU affinity mask, so the Go reference runs its "
          "goroutines on one core like the C++ servers; Asio runs a single-threaded `io_context`.")
        w(f"- **Rounds**: every configuration runs {rounds} time{'s' if rounds > 1 else ''}, interleaved: round r "
          "runs every server once at every point (the order of the servers rotated by r), a fresh server process "
          "each time. Tables give the median" + (" and, in brackets, the min-max" if rounds > 1 else "") + ".")
        w("- **Server CPU** comes from /proc/PID/stat (utime + stime, 10 ms ticks) over echo-bench's measurement "
          "window (after its warm-up). **Latency** is the round-trip time the generator sees.")
        w("- **System calls per round trip** come from the server's `stats:` line at SIGTERM (chapters only: "
          "Go and Asio count none). Each 64-byte message is echoed with one write(2), so the count of writes is "
          "the number of messages the server echoed over its life (the generator's probes at the end of a "
          "ramp are a handful more); calls are divided by it. They include connection set-up and warm-up, "
          "spread over every message.")
        w("- **Servers**: " + "; ".join(f"{s['label']}: `{s['command']}`" + (f" ({s['note']})" if s['note'] else "")
                                       for s in res.servers.values()) + ". The references are in "
          "[bench/](../bench/): [Go](../bench/go-echo/main.go), goroutine per connection, and "
          "[Boost.Asio](../bench/asio-echo/asio-echo.cpp), a C++20 coroutine per connection; both read into a "
          "2 KiB buffer per connection, as chapter 07 does until a read fills it.")
        for k, why in res.skipped.items():
            w(f"- **Skipped: {skipped_label(k)}**: {why}.")
        w("- **Left out**: 01 without `--threads` serves one client at a time, so it runs only where one "
          "connection is meaningful (S1 at 1 connection, S3); with more connections the others wait behind the "
          "first. 03 select cannot watch a descriptor ≥ FD_SETSIZE (1024): it runs S1 up to 1,000 connections, "
          f"S2 at {c['s2_active']} active + {select_idle(c)} idle instead of 1,000 idle and not at 10,000, S4 at "
          f"{c['s4_small_conns']:,} connections. `07 --poller poll` (chapter 07 on poll(2) instead of epoll) runs "
          "only in S2, where the difference shows.")
        w()

        if "S1" in ran:
            self.s1()
        if "S2" in ran:
            self.s2()
        if "S3" in ran:
            self.s3()
        if "S4" in ran:
            self.s4()
        if "S5" in ran:
            self.s5()

        w("## Targets")
        w()
        w("Ratios of medians; in brackets the extremes (worst against best run of each side). "
          "The analysis above says what they mean.")
        w()
        w("| target | wanted | measured | ratio | verdict |")
        w("| --- | --- | --- | --- | --- |")
        rows = targets(res)
        for name, want, x, ok, meas in rows:
            limit = float(re.search(r"[0-9.]+", want).group())
            d = 3 if abs(round(x["ratio"], 2) - limit) < 0.015 else 2   # 0.495 must not print as 0.50
            w(f"| {name} | {want} | {meas} | {x['ratio']:.{d}f}x ({x['lo']:.{d}f}-{x['hi']:.{d}f}) | "
              f"{'**met**' if ok else '**missed**'} |")
        if not rows:
            w("| (no reference server ran: no target could be checked) | | | | |")
        w()
        notes = [r for r in res.runs if (r.get("bench") or {}).get("teardown_note")]
        if notes:
            w("## Notes on runs")
            w()
            for r in notes:
                w(f"- {r['scenario']} {self.label(r['server'])} point {r['point']} round {r['round']}: "
                  f"{r['bench']['teardown_note']}.")
            w()
        fails = [r for r in res.runs if not r["ok"]]
        if fails:
            w("## Failed runs")
            w()
            for r in fails:
                w(f"- {r['scenario']} {self.label(r['server'])} point {r['point']} round {r['round']}: "
                  f"{r['error']}")
            w()
        return "\n".join(self.lines)

    def s1(self):
        c, w = self.res.cfg, self.w
        conns = c["s1_conns"]
        head = [f"{x:,} conn" for x in conns]
        w(f"## S1 ping-pong, 64 bytes, {', '.join(f'{x:,}' for x in conns)} connections")
        w()
        w(f"Each connection sends 64 bytes and waits for the echo, again and again: {c['s1_warmup']:g} s warm-up, "
          f"{c['s1_duration']:g} s measured. Generator: `{self.gen_command('S1')}`.")
        w()
        self.plot("s1", "S1 throughput")
        w("Round trips per second:")
        w()
        self.table("S1", conns, b("round_trips_per_s"), fmt_rate, head=head)
        w("p99 latency, µs:")
        w()
        self.table("S1", conns, b("p99_us"), fmt_num, head=head)
        w("Server CPU per round trip, µs:")
        w()
        self.plot("s1cpu", "S1 server CPU per round trip")
        self.table("S1", conns, b("server_cpu_us_per_rt"), fmt_num, head=head)
        w("System calls per round trip (server; chapters only):")
        w()
        self.table("S1", conns, lambda r: r.get("calls_per_rt"), lambda x: fmt_num(x, 2), head=head)
        w("Who was saturated: the share of its core the server / the generator used over the measured "
          "interval (CPU time from /proc and getrusage over wall time). Where the generator is near 100% and "
          "the server is not, the generator limits the throughput and the server's CPU per round trip is the "
          "better comparison.")
        w()
        self.table("S1", conns, busy_pair, lambda x: x, head=head, raw=True)
        top = max(conns)
        w(f"Which calls, at {top:,} connections (median per round trip):")
        w()
        w("| server | calls per round trip |")
        w("| --- | --- |")
        for k in self.res.keys("S1"):
            recs = [r for r in self.res.runs if r["scenario"] == "S1" and r["server"] == k and r["point"] == top
                    and r["ok"] and r.get("calls_per_rt_by_kind")]
            if not recs:
                continue
            kinds = sorted({kk for r in recs for kk in r["calls_per_rt_by_kind"]}, key=SYSCALL_KINDS.index)
            parts = []
            for kk in kinds:
                v = med([r["calls_per_rt_by_kind"].get(kk, 0) for r in recs])
                if v >= 0.005:
                    parts.append(f"{kk} {v:.2f}")
            w(f"| {self.label(k)} | {', '.join(parts)} |")
        w()

    def s2(self):
        c, w = self.res.cfg, self.w
        idles = c["s2_idle"]
        act = c["s2_active"]
        sel = select_idle(c)
        w(f"## S2 {act} active connections plus 0 to {max(idles):,} idle ones")
        w()
        w(f"The experiment that made epoll famous: {act} connections do ping-pong (64 bytes) while more and more "
          "connections sit idle; the idle ones are probed with an echo at the end (every probe must succeed). "
          f"{c['s2_warmup']:g} s warm-up, {c['s2_duration']:g} s measured. select and poll hand the kernel the "
          "whole set of descriptors on every call and scan it on return, so their cost per round trip should grow "
          "with the idle connections; epoll keeps the interest list in the kernel and returns only ready "
          "descriptors, so it should stay flat. Generator: "
          f"`{self.gen_command('S2')}`. What was measured:")
        w()
        self.plot("s2", "S2 throughput")
        self.plot("s2cpu", "S2 server CPU per round trip")
        head = [f"{x:,} idle" + (f" (select: {sel})" if sel < x <= 1000 else "") for x in idles]
        w("Round trips per second:")
        w()
        self.table("S2", idles, b("round_trips_per_s"), fmt_rate, head=head)
        w("Server CPU per round trip, µs:")
        w()
        self.table("S2", idles, b("server_cpu_us_per_rt"), fmt_num, head=head)
        w("p99 latency, µs:")
        w()
        self.table("S2", idles, b("p99_us"), fmt_num, head=head)
        w("(System calls per round trip are left out here: the idle connections' set-up, spread over the few "
          "round trips of a slow server, would swamp them. They are in results.json; S1 has them.)")
        w()
        w(self.s2_ratios())
        w()

    def s3(self):
        c, w = self.res.cfg, self.w
        w(f"## S3 bulk: {c['s3_bytes'] >> 20:,} MiB through one connection")
        w()
        w("One connection streams the bytes while reading the echo back; the generator verifies every byte. "
          "Here the size of the server's read buffer decides the number of system calls per MiB: chapters "
          "02-06 read into one 64 KiB buffer shared by all connections (they copy what they cannot write yet "
          "into the connection's pending output), 01 into 16 KiB on the thread's stack. The two "
          "references give every connection its own 2 KiB buffer, the choice that keeps an idle connection "
          "small (S4), and up to 32 times the calls per MiB of a 64 KiB buffer; 07 starts with 2 KiB in the "
          "coroutine's frame and reads into 64 KiB from the heap once a read fills it, giving it back before "
          "the read parks (its `RecvBuffer`). "
          f"Generator: `{self.gen_command('S3')}`.")
        w()
        self.plot("s3", "S3 bulk")
        w("| server | read buffer | GB/s | server CPU, s | server CPU per GiB, s | system calls per MiB |")
        w("| --- | --- | ---: | ---: | ---: | ---: |")
        gib = c["s3_bytes"] / (1 << 30)
        f2 = lambda x: fmt_num(x, 2)  # noqa: E731
        for k in self.res.keys("S3"):
            nf = len(self.res.failures("S3", k))
            gb = self.m("S3", k, lambda r: r["bench"]["bytes_per_s"] / 1e9
                        if r.get("bench") and r["bench"].get("bytes_per_s") else None)
            cs = self.m("S3", k, b("server_cpu_s"))
            cg = [x / gib for x in cs]
            cm = self.m("S3", k, lambda r: sum(calls(r["stats"]).values()) / (c["s3_bytes"] / (1 << 20))
                        if calls(r.get("stats")) else None)
            w(f"| {self.label(k)} | {self.res.servers[k]['buffer']} | {cell(gb, f2, nf)} | {cell(cs, f2)} | "
              f"{cell(cg, f2)} | {cell(cm, fmt_num)} |")
        w()

    def s4(self):
        c, w = self.res.cfg, self.w
        w(f"## S4 memory per idle connection, {c['s4_conns']:,} connections")
        w()
        w("Measured by the runner with the method of `build/bin/conn-memory` (to two decimals instead of one): "
          "start the server, do one echo, read its VmRSS from /proc/PID/status; open N connections that each "
          "echo one byte (so a thread-per-connection server has run every thread); read VmRSS again. "
          "RSS counts the pages the process touched, not kernel memory: socket buffers, and for a thread its "
          "kernel stack (the KernelStack column: system-wide, from /proc/meminfo, so noisy on a busy machine). "
          f"01 `--threads` and 03 select are measured at {c['s4_small_conns']:,} connections.")
        w()
        self.plot("s4", "S4 memory")
        w("| server | connections | RSS KiB/conn | VmSize KiB/conn | KernelStack KiB/conn | threads |")
        w("| --- | ---: | ---: | ---: | ---: | ---: |")
        f2 = lambda x: fmt_num(x, 2)  # noqa: E731
        for k in self.res.keys("S4"):
            nf = len(self.res.failures("S4", k))
            th = self.m("S4", k, lambda r: r.get("threads"))
            w(f"| {self.label(k)} | {self.res.s4_conns(k):,} | "
              f"{cell(self.m('S4', k, lambda r: r.get('rss_kib_per_conn')), f2, nf)} | "
              f"{cell(self.m('S4', k, lambda r: r.get('vm_kib_per_conn')), f2)} | "
              f"{cell(self.m('S4', k, lambda r: r.get('kstack_kib_per_conn')), f2)} | {f'{th[-1]:,}' if th else '-'} |")
        w()

    def s5(self):
        c, w = self.res.cfg, self.w
        w(f"## S5 idle CPU: {c['s5_conns']} idle connections for {c['s5_seconds']:g} s")
        w()
        w(f"Measured by the runner: open {c['s5_conns']} connections that each echo one byte, then hold them "
          f"idle for {c['s5_seconds']:g} s and read the server's CPU time from /proc/PID/stat before and after "
          "(10 ms ticks). The system calls are the server's whole life, set-up included.")
        w()
        w("| server | CPU, % of one core | system calls (whole run) |")
        w("| --- | ---: | ---: |")
        for k in self.res.keys("S5"):
            nf = len(self.res.failures("S5", k))
            cp = self.m("S5", k, lambda r: r.get("cpu_percent"))
            cl = self.m("S5", k, lambda r: sum(calls(r["stats"]).values()) if calls(r.get("stats")) else None)
            w(f"| {self.label(k)} | {cell(cp, lambda x: fmt_num(x, 1), nf)} | {cell(cl, lambda x: f'{x:,.0f}')} |")
        w()


def write(res, out, analysis=ANALYSIS, problems=()):
    """out/benchmarks.md from Results `res`; returns its path."""
    out = Path(out)
    text = Report(res, out, analysis, problems).write()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "benchmarks.md"
    path.write_text(text)
    return path
