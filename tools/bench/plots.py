"""The plots: SVGs drawn by gnuplot from results.json, into the directory that holds it.

    s1-throughput.svg, s1-cpu.svg   S1: round trips per second and server CPU per round trip
                                    against connections (medians; 01 without --threads left out)
    s2-throughput.svg, s2-cpu.svg   S2: the same against active + idle connections
    s3-bulk.svg                     S3: GB/s per server, bars with the min-max
    s4-memory.svg                   S4: RSS growth per idle connection, bars with the min-max

A plot with no data is not drawn. Without gnuplot nothing is drawn and nothing is removed: SVGs
already there were drawn from the same results.json (the runner removes them when it writes a new
one). gnuplot reads its data from files named relative to its working directory, so that no
temporary path ends up in an SVG: the same results.json always gives the same files.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from .common import b, med, select_idle

# name in the report -> file
FILES = {
    "s1": "s1-throughput.svg", "s1cpu": "s1-cpu.svg", "s2": "s2-throughput.svg", "s2cpu": "s2-cpu.svg",
    "s3": "s3-bulk.svg", "s4": "s4-memory.svg",
}

PLOT_HEAD = """set terminal svg size 820,500 dynamic enhanced font 'sans,12' background rgb 'white'
set grid
set key outside right top
set style data linespoints
"""


# One look per server in every plot: colour, point type, dash type (references dashed).
STYLE = {
    "01t": ("#7f7f7f", 1, 1), "02": ("#d62728", 2, 1), "03": ("#ff7f0e", 4, 1), "04": ("#bcbd22", 6, 1),
    "05": ("#2ca02c", 8, 1), "06": ("#17becf", 10, 1), "07": ("#1f3fbf", 7, 1), "07p": ("#9467bd", 12, 1),
    "go": ("#000000", 3, 2), "asio": ("#8c564b", 5, 2),
}


def gnuplot(script, cwd, path, problems):
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True, timeout=120, cwd=cwd)
    if r.returncode != 0:
        problems.append("gnuplot failed: " + r.stderr.strip()[-300:])
        path.unlink(missing_ok=True)   # half an SVG must not be linked
        return False
    return True


def plot_lines(path, title, xlabel, ylabel, series, problems, logx=True, logy=False, xtics=None):
    """series: [(label, [(x, y), ...], server key)]"""
    series = [x for x in series if x[1]]
    if not series:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, (lab, pts, key) in enumerate(series):
            (Path(tmp) / f"{i}.dat").write_text("".join(f"{x} {y}\n" for x, y in pts))
            color, point, dash = STYLE.get(key, ("#000000", 1, 1))
            plots.append(f"'{i}.dat' using 1:2 title '{lab}' lw 2 lc rgb '{color}' pt {point} dt {dash}")
        s = PLOT_HEAD + f"set output '{path}'\nset title '{title}'\nset xlabel '{xlabel}'\nset ylabel '{ylabel}'\n"
        if logx:
            s += "set logscale x\n"
        if logy:
            s += "set logscale y\n"
        if xtics:
            s += "set xtics (" + ", ".join(f"'{lab}' {x}" for lab, x in xtics) + ")\n"
        s += "plot " + ", \\\n     ".join(plots) + "\n"
        return gnuplot(s, tmp, path, problems)


def plot_bars(path, title, ylabel, bars, problems, logy=False, label_fmt="%.1f"):
    """bars: [(label, value, lo, hi)]"""
    bars = [x for x in bars if x[1] is not None]
    if not bars:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bars.dat").write_text("".join(f"{i} \"{lab}\" {v} {lo} {hi}\n"
                                                    for i, (lab, v, lo, hi) in enumerate(bars)))
        s = PLOT_HEAD + f"""set output '{path}'
set title '{title}'
set ylabel '{ylabel}'
set key off
set style fill solid 0.6 border -1
set boxwidth 0.7
set xtics rotate by -30
set yrange [0:*]
set xrange [-0.6:{len(bars) - 0.4}]
{"set logscale y" if logy else ""}
plot 'bars.dat' using 1:3:xtic(2) with boxes lc rgb '#4a7ab5', \\
     '' using 1:4:(0):($5-$4) with vectors nohead lc rgb 'black' lw 1.5, \\
     '' using 1:3:(sprintf('{label_fmt}', $3)) with labels nopoint offset 2.2,0.6
"""
        return gnuplot(s, tmp, path, problems)


def make(res, d):
    """Draws the plots of Results `res` into directory d. Returns (files drawn, problems), or None
    when gnuplot is not installed."""
    if not shutil.which("gnuplot"):
        return None
    d = Path(d).resolve()
    d.mkdir(parents=True, exist_ok=True)
    c = res.cfg
    drawn, problems = [], []

    def label(k):
        return res.servers[k]["label"]

    # S1 throughput and CPU vs connections
    ser, cpu = [], []
    for k in res.keys("S1"):
        if k == "01":
            continue
        pts, cpts = [], []
        for n in c["s1_conns"]:
            v = res.values("S1", k, b("round_trips_per_s"), n)
            if v:
                pts.append((n, med(v)))
            v = res.values("S1", k, b("server_cpu_us_per_rt"), n)
            if v:
                cpts.append((n, med(v)))
        ser.append((label(k), pts, k))
        cpu.append((label(k), cpts, k))
    if plot_lines(d / FILES["s1"], "S1 ping-pong, 64 B: round trips per second",
                  "connections (log scale)", "round trips/s (median)", ser, problems):
        drawn.append(FILES["s1"])
    if plot_lines(d / FILES["s1cpu"], "S1 ping-pong, 64 B: server CPU per round trip",
                  "connections (log scale)", "server CPU µs per round trip (median)", cpu, problems):
        drawn.append(FILES["s1cpu"])
    # S2 throughput and CPU vs idle connections
    ser, cpu = [], []
    for k in res.keys("S2"):
        pts, cpts = [], []
        for i in c["s2_idle"]:
            idle = res.s2_idle(i, k)
            v = res.values("S2", k, b("round_trips_per_s"), i)
            if v:
                pts.append((c["s2_active"] + idle, med(v)))
            v = res.values("S2", k, b("server_cpu_us_per_rt"), i)
            if v:
                cpts.append((c["s2_active"] + idle, med(v)))
        ser.append((label(k), pts, k))
        cpu.append((label(k), cpts, k))
    xt = [(f"{c['s2_active']}+{i:,}", c["s2_active"] + i) for i in c["s2_idle"]]
    xlabel = f"connections: active + idle (log scale; select at {c['s2_active']}+{select_idle(c)})"
    if plot_lines(d / FILES["s2"], f"S2 {c['s2_active']} active + N idle connections: throughput",
                  xlabel, "round trips/s (median)", ser, problems, xtics=xt):
        drawn.append(FILES["s2"])
    if plot_lines(d / FILES["s2cpu"], f"S2 {c['s2_active']} active + N idle connections: server CPU per round trip",
                  xlabel, "server CPU µs per round trip (median, log scale)", cpu, problems, logy=True, xtics=xt):
        drawn.append(FILES["s2cpu"])
    # S3 bars
    bars = []
    for k in res.keys("S3"):
        v = res.values("S3", k, lambda r: (r["bench"]["bytes_per_s"] or 0) / 1e9 if r.get("bench") else None)
        if v:
            bars.append((label(k), med(v), min(v), max(v)))
    if plot_bars(d / FILES["s3"], f"S3 bulk: {c['s3_bytes'] >> 20} MiB through one connection",
                 "GB/s (median, min-max)", bars, problems, label_fmt="%.2f"):
        drawn.append(FILES["s3"])
    # S4 bars
    bars = []
    for k in res.keys("S4"):
        v = res.values("S4", k, lambda r: r.get("rss_kib_per_conn"))
        if v:
            n = res.s4_conns(k)
            bars.append((label(k) + (f" ({n:,})" if n != c["s4_conns"] else ""), med(v), min(v), max(v)))
    if plot_bars(d / FILES["s4"], "S4 server RSS growth per idle connection",
                 f"KiB per connection (median, min-max; {c['s4_conns']:,} connections unless marked)", bars,
                 problems, label_fmt="%.2f"):
        drawn.append(FILES["s4"])
    return drawn, problems
