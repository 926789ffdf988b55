"""What the runner, the plots and the report share.

The servers (their labels, their read buffers, a note on each), which scenarios run which servers
at which points, and results.json read back: Results answers "the values of this metric for this
server at this point, from the runs that succeeded". The plots and the report read nothing but
results.json, so everything they print about a run (machine, commands, notes, skipped servers,
times) is in it.
"""

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = ROOT / "build" / "bin"
REF_BIN = ROOT / "build" / "bench"

# The kinds of system call the chapters' stats line counts (common/sys.hpp).
SYSCALL_KINDS = ["accept", "read", "write", "close", "shutdown", "select", "poll", "epoll_wait", "epoll_ctl"]

SCENARIOS = ["S1", "S2", "S3", "S4", "S5"]
SELECT_MAX_IDLE = 950   # 50 active + 950 idle + listener + stdio stays under FD_SETSIZE (1024)


class Server:
    def __init__(self, key, label, path, args=(), ref=False, note="", buffer=""):
        self.key, self.label, self.path, self.args, self.ref, self.note = key, label, Path(path), list(args), ref, note
        self.buffer = buffer   # what one read(2) asks for (S3 depends on it)

    def display_command(self):
        try:
            p = self.path.relative_to(ROOT)
        except ValueError:
            p = self.path
        return " ".join([str(p)] + self.args)


def all_servers():
    b = BIN
    return [
        Server("01", "01 blocking", b / "01-blocking", note="one client at a time", buffer="16 KiB on each thread's stack"),
        Server("01t", "01 --threads", b / "01-blocking", ["--threads"], note="a thread per connection",
               buffer="16 KiB on each thread's stack"),
        Server("02", "02 spin", b / "02-nonblocking-spin", note="busy-polls every socket", buffer="64 KiB, one for all"),
        Server("03", "03 select", b / "03-select", buffer="64 KiB, one for all"),
        Server("04", "04 poll", b / "04-poll", buffer="64 KiB, one for all"),
        Server("05", "05 epoll LT", b / "05-epoll-lt", buffer="64 KiB, one for all"),
        Server("06", "06 epoll ET", b / "06-epoll-et", buffer="64 KiB, one for all"),
        Server("07", "07 coroutines", b / "07-netpoller-coroutines",
               buffer="2 KiB per connection; 64 KiB while a read fills it"),
        Server("07p", "07 --poller poll", b / "07-netpoller-coroutines", ["--poller", "poll"],
               buffer="2 KiB per connection; 64 KiB while a read fills it"),
        Server("go", "Go (reference)", REF_BIN / "go-echo", ref=True, note="goroutine per connection",
               buffer="2 KiB per connection"),
        Server("asio", "Asio (reference)", REF_BIN / "asio-echo", ref=True, note="C++20 coroutine per connection",
               buffer="2 KiB per connection"),
    ]


# Which servers each scenario runs, and why the others sit out.
SCENARIO_SERVERS = {
    "S1": ["01", "01t", "02", "03", "04", "05", "06", "07", "go", "asio"],
    "S2": ["01t", "02", "03", "04", "05", "06", "07", "07p", "go", "asio"],
    "S3": ["01", "01t", "02", "03", "04", "05", "06", "07", "go", "asio"],
    "S4": ["01t", "02", "03", "04", "05", "06", "07", "go", "asio"],
    "S5": ["01t", "02", "03", "04", "05", "06", "07", "go", "asio"],
}


def plan(cfg, scenario, servers):
    """[(point, [server keys])] for a scenario, for the servers (keys) that take part in the run."""
    keys = [k for k in SCENARIO_SERVERS[scenario] if k in servers]
    if scenario == "S1":
        return [(n, [k for k in keys if k != "01" or n == 1]) for n in cfg["s1_conns"]]
    if scenario == "S2":
        return [(i, [k for k in keys if k != "03" or i <= 1000]) for i in cfg["s2_idle"]]
    if scenario == "S3":
        return [(cfg["s3_bytes"], keys)]
    if scenario == "S4":
        return [(cfg["s4_conns"], keys)]
    if scenario == "S5":
        return [(cfg["s5_conns"], keys)]
    raise ValueError(scenario)


def select_idle(cfg):
    # results.json files written before the runner recorded it used 950
    return cfg.get("s2_select_idle", SELECT_MAX_IDLE)


def s2_idle(cfg, idle, key):
    """The idle connections a server holds at S2 point `idle` (select stops below FD_SETSIZE)."""
    return min(idle, select_idle(cfg)) if key == "03" else idle


def s4_conns(cfg, key):
    return cfg["s4_small_conns"] if key in ("01t", "03") else cfg["s4_conns"]


def calls(stats):
    """System calls in a stats line: {kind: count}, kinds the chapters count."""
    if not stats:
        return None
    c = {k: stats[k] for k in SYSCALL_KINDS if k in stats}
    return c or None


# ---------------------------------------------------------------- results.json, read back

class Results:
    def __init__(self, raw):
        self.machine = raw["machine"]
        self.cfg = raw["config"]
        self.timing = raw["timing"]
        self.times = raw["times"]
        self.notes = list(raw.get("notes") or [])
        self.skipped = dict(raw.get("skipped") or {})
        self.runs = raw["runs"]
        # Older results.json files carry only label and command per server: the rest is the table's.
        known = {s.key: s for s in all_servers()}
        self.servers = {}
        for k, s in raw["servers"].items():
            d = {"note": "", "buffer": "", **s}
            if k in known:
                for field in ("note", "buffer"):
                    if field not in s:
                        d[field] = getattr(known[k], field)
            self.servers[k] = d

    def keys(self, scenario):
        """The servers of a scenario that took part in this run, in the order of the tables."""
        return [k for k in SCENARIO_SERVERS[scenario] if k in self.servers]

    def plan(self, scenario):
        return plan(self.cfg, scenario, self.servers)

    def planned(self, scenario, key, point):
        return any(p == point and key in keys for p, keys in self.plan(scenario))

    def s2_idle(self, idle, key):
        return s2_idle(self.cfg, idle, key)

    def s4_conns(self, key):
        return s4_conns(self.cfg, key)

    def values(self, scenario, key, metric, point=None):
        """metric(run) of the successful runs of one server in a scenario (at one point), Nones left out."""
        out = []
        for r in self.runs:
            if r["scenario"] != scenario or r["server"] != key or not r["ok"]:
                continue
            if point is not None and r["point"] != point:
                continue
            v = metric(r)
            if v is not None:
                out.append(v)
        return out

    def failures(self, scenario, key, point=None):
        return [r for r in self.runs if r["scenario"] == scenario and r["server"] == key and not r["ok"]
                and (point is None or r["point"] == point)]


def load(path):
    return Results(json.loads(Path(path).read_text()))


def med(v):
    return statistics.median(v) if v else None


def b(name):
    """A metric: field `name` of echo-bench's JSON line."""
    return lambda r: (r.get("bench") or {}).get(name)


def busy_pair(r):
    """(server, generator) share of a core over the measured interval, or None."""
    d = r.get("bench") or {}
    t = d.get("duration_s")
    if not t or d.get("server_cpu_s") is None or d.get("client_cpu_s") is None:
        return None
    return d["server_cpu_s"] / t, d["client_cpu_s"] / t
