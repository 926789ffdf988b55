"""The runner: it measures, writes results.json, and does nothing else.

It installs what is missing (gnuplot-nox for the plots; golang-go and libboost-dev for the two
reference servers, skipped cleanly when they cannot be had; cmake, ninja, taskset), builds the
default CMake preset into build/ and the references into build/bench/, then runs the plan of
common.py: every scenario, every point, every server, `rounds` times, interleaved (round r runs
every server once at every point, in an order rotated by r), a fresh server process each time.
S1-S3 drive the server with build/bin/echo-bench and keep its JSON line whole; S4 and S5 are
measured here, from /proc.

results.json holds the raw data and everything the plots and the report print:

  machine   CPU, cores, memory, kernel, OS, compiler, build type, Go, Boost, gnuplot and Python
            versions; the date, the command line, the mode, whether it pinned, its nice value, and
            the git commit of the tree it measured (with "-dirty" when tracked files were changed)
  config    the scenario parameters (FULL or QUICK below, with --rounds applied)
  timing    per scenario: wall seconds, and the CPU-seconds other processes used meanwhile
  times     seconds for the whole run and for its measuring part
  notes     what went wrong on the way (a package not installed, a low RLIMIT_NOFILE)
  skipped   servers left out, and why
  servers   the servers that ran: label, command, note, read buffer
  runs      one object per run: scenario, point, server, round, ok and error, the server's exit
            code and stats line, and what was measured (`bench`: echo-bench's JSON line)

Pretty-printed at the top and one line per run below, so that two runs diff line by line.
Writing it removes the SVGs beside it: the plots always belong to the results.json next to them.
"""

import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import (BIN, REF_BIN, ROOT, SCENARIOS, SELECT_MAX_IDLE, all_servers, calls, plan, s2_idle,
                     s4_conns)

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
PIN = NCPU >= 2          # server on CPU 1, generator (and this program) on CPU 0
SERVER_CPU, CLIENT_CPU = 1, 0

FULL = dict(
    name="full", rounds=3,
    s1_conns=[1, 10, 100, 1000], s1_duration=2.0, s1_warmup=0.5,
    s2_active=50, s2_idle=[0, 1000, 10000], s2_duration=2.0, s2_warmup=0.5, s2_select_idle=SELECT_MAX_IDLE,
    s3_bytes=1 << 30,
    s4_conns=10000, s4_small_conns=1000,
    s5_conns=100, s5_seconds=3.0,
)
QUICK = dict(
    name="quick", rounds=1,
    s1_conns=[1, 100, 1000], s1_duration=0.5, s1_warmup=0.2,
    s2_active=50, s2_idle=[0, 1000, 10000], s2_duration=0.5, s2_warmup=0.2, s2_select_idle=SELECT_MAX_IDLE,
    s3_bytes=256 << 20,
    s4_conns=10000, s4_small_conns=1000,
    s5_conns=100, s5_seconds=1.0,
)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def server_command(server):
    pin = ["taskset", "-c", str(SERVER_CPU)] if PIN else []
    return pin + [str(server.path)] + server.args + ["--port", "0"]


# ---------------------------------------------------------------- a running server

class Running:
    """A server started for one measurement: pinned, ready line parsed, stopped with SIGTERM."""

    def __init__(self, server, ready_timeout=10.0):
        self.server = server
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(server_command(server), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.pid = self.proc.pid  # taskset execs the server: same process
        line = self._read_line(ready_timeout)
        m = re.match(r"listening on ([0-9.]+):(\d+)\s*$", line or "")
        if not m:
            self.kill()
            raise RuntimeError(f"{server.display_command()}: no ready line (got {line!r}); stderr: {self.stderr()[-300:]!r}")
        self.port = int(m.group(2))

    def _read_line(self, timeout):
        import select
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return buf.decode(errors="replace") or None
            buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace")

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=15.0):
        """SIGTERM; returns (exit code, stats dict or None, stderr text)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
            code = "killed: no exit within %gs of SIGTERM" % timeout
        text = self.stderr()
        self.err.close()
        self.proc.stdout.close()
        stats = None
        for line in text.splitlines():
            if line.startswith("stats: "):
                stats = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        return code, stats, text


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime: fields 14 and 15


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# ---------------------------------------------------------------- echo-bench

class BenchError(Exception):
    pass


def echo_bench(exe, server_pid, port, args, timeout):
    cmd = [str(exe), "--port", str(port)] + [str(a) for a in args] + ["--server-pid", str(server_pid), "--json"]
    if PIN:
        cmd += ["--cpu", str(CLIENT_CPU)]
    for attempt in range(5):
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            return None, f"echo-bench did not finish within {timeout:.0f}s", cmd
        except OSError as e:   # being rebuilt right now (ETXTBSY, EACCES): wait and try again
            if attempt == 4:
                return None, f"cannot run echo-bench: {e}", cmd
            time.sleep(2)
    if r.returncode == 2:
        raise BenchError(f"echo-bench rejected its command line ({' '.join(cmd)}):\n{r.stderr}")
    data = None
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                pass
            break
    if data is None:
        return None, f"echo-bench exit {r.returncode}, no JSON line; stderr: {r.stderr.strip()[-300:]}", cmd
    err = None
    if r.returncode != 0:
        err = f"echo-bench exit {r.returncode} (errors={data.get('errors')}, refused={data.get('refused')}, " \
              f"idle_ok={data.get('idle_ok')}); stderr: {r.stderr.strip()[-300:]}"
        if teardown_only(data, r.stderr):
            data["teardown_note"] = (f"{data.get('errors')} connections saw no EOF within echo-bench's 2 s after "
                                     "its final half-close (the server was slow to close them, after the "
                                     "measurement; the results stand)")
            err = None
    return data, err, cmd


def teardown_only(data, stderr):
    """True if echo-bench's only complaints are late EOFs at the very end, after every probe answered."""
    problems = [ln for ln in stderr.splitlines() if ln.startswith("echo-bench: ") and "further problems" not in ln]
    if not problems or not all("no EOF within" in ln for ln in problems):
        return False
    if data.get("refused"):
        return False
    if data.get("mode") == "idle-active" and data.get("idle_ok") != data.get("idle"):
        return False
    return bool(data.get("round_trips") or data.get("bytes"))


# ---------------------------------------------------------------- scenarios

class Runner:
    def __init__(self, cfg, servers, bench_exe, only):
        self.cfg, self.servers, self.bench_exe, self.only = cfg, servers, bench_exe, only
        self.results = []       # one dict per run
        self.timing = {}

    def server(self, key):
        return self.servers.get(key)

    def plan(self, scenario):
        return plan(self.cfg, scenario, self.servers)

    def run_all(self):
        for scenario in SCENARIOS:
            if self.only and scenario not in self.only:
                continue
            t0 = time.monotonic()
            busy0 = machine_busy()
            ours0 = our_cpu()
            plan = self.plan(scenario)
            total = sum(len(keys) for _, keys in plan) * self.cfg["rounds"]
            done = 0
            log(f"== {scenario}: {total} runs")
            for r in range(self.cfg["rounds"]):
                for point, keys in plan:
                    shift = r % len(keys) if keys else 0
                    for key in keys[shift:] + keys[:shift]:
                        done += 1
                        rec = self.run_one(scenario, point, key, r)
                        self.results.append(rec)
                        status = "ok" if rec["ok"] else "FAILED: " + rec["error"]
                        log(f"   [{done}/{total}] {scenario} {self.point_label(scenario, point, key)} "
                            f"{self.servers[key].label} round {r + 1}: {rec.get('summary', '')} {status}")
                        time.sleep(0.1)   # let the kernel tear down the last run's sockets
            self.timing[scenario] = dict(seconds=time.monotonic() - t0,
                                         other_cpu_s=max(0.0, (machine_busy() - busy0) - (our_cpu() - ours0)))
            log(f"   {scenario} took {self.timing[scenario]['seconds']:.0f}s")

    def point_label(self, scenario, point, key):
        if scenario == "S1":
            return f"{point} conn"
        if scenario == "S2":
            return f"{self.s2_idle(point, key)} idle"
        if scenario == "S3":
            return f"{point >> 20} MiB"
        if scenario == "S4":
            return f"{self.s4_conns(key)} conn"
        return f"{point} idle conn"

    def s2_idle(self, idle, key):
        return s2_idle(self.cfg, idle, key)

    def s4_conns(self, key):
        return s4_conns(self.cfg, key)

    def run_one(self, scenario, point, key, rnd):
        server = self.servers[key]
        rec = dict(scenario=scenario, point=point, server=key, round=rnd + 1, ok=False, error=None)
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                run = Running(server)
                break
            except OSError as e:   # the binary is being rebuilt right now: wait and try again
                if attempt == 2:
                    rec["error"] = f"cannot start the server: {e}"
                    return rec
                time.sleep(2)
            except Exception as e:   # noqa: BLE001 - any failure to start is reported, not fatal
                rec["error"] = str(e)
                return rec
        try:
            getattr(self, "measure_" + scenario)(run, point, key, rec)
        except BenchError:
            run.kill()
            raise
        except Exception as e:   # noqa: BLE001
            rec["error"] = rec["error"] or f"{type(e).__name__}: {e}"
        finally:
            code, stats, text = run.stop()
            rec["exit"] = code
            rec["stats"] = stats
            rec["seconds"] = round(time.monotonic() - t0, 3)
            if code != 0 and not rec["error"]:
                rec["error"] = f"server exit {code}; stderr: {text.strip()[-300:]}"
            if stats is None and not rec["error"]:
                rec["error"] = "no stats line on the server's stderr"
        rec["ok"] = rec["error"] is None
        self.derive(rec)
        return rec

    def derive(self, rec):
        """Per-round-trip system calls from the stats line (chapters only)."""
        c = calls(rec.get("stats"))
        if c and rec["scenario"] in ("S1", "S2") and c.get("write"):
            # Each round trip is one 64-byte message that the server echoes with one write(2)
            # (a 64-byte write into an empty socket buffer is never short), so the server's
            # write count is the number of messages it echoed over its whole life (warm-up and
            # the generator's ramp probes included), like the call counts themselves. In S2 each
            # idle connection's final probe is one more write: not a round trip.
            w = c["write"] - ((rec.get("bench") or {}).get("idle_ok") or 0)
            if w <= 0:
                return
            rec["calls_per_rt"] = sum(c.values()) / w
            rec["calls_per_rt_by_kind"] = {k: v / w for k, v in c.items()}

    # S1: ping-pong, 64 bytes, N connections.
    def measure_S1(self, run, conns, key, rec):
        c = self.cfg
        args = ["--mode", "ping-pong", "--connections", conns, "--idle", 0, "--size", 64,
                "--duration", c["s1_duration"], "--warmup", c["s1_warmup"], "--ramp-batch", 100]
        self.bench(run, rec, args, c["s1_duration"] + c["s1_warmup"] + 60)

    # S2: 50 active ping-pong connections and I idle ones.
    def measure_S2(self, run, idle, key, rec):
        c = self.cfg
        idle = self.s2_idle(idle, key)
        rec["idle"] = idle
        args = ["--mode", "idle-active", "--connections", c["s2_active"], "--idle", idle, "--size", 64,
                "--duration", c["s2_duration"], "--warmup", c["s2_warmup"], "--ramp-batch", 500]
        self.bench(run, rec, args, c["s2_duration"] + c["s2_warmup"] + 120)

    # S3: bulk, B bytes through one connection.
    def measure_S3(self, run, nbytes, key, rec):
        args = ["--mode", "bulk", "--connections", 1, "--bytes", nbytes]
        self.bench(run, rec, args, 180)

    def bench(self, run, rec, args, timeout):
        data, err, cmd = echo_bench(self.bench_exe, run.pid, run.port, args, timeout)
        rec["bench"] = data
        rec["command"] = " ".join(str(a) for a in cmd)
        if err:
            rec["error"] = err
        if data:
            if data.get("round_trips_per_s") is not None:
                rec["summary"] = f"{data['round_trips_per_s']:,.0f} rt/s"
            elif data.get("bytes_per_s") is not None:
                rec["summary"] = f"{data['bytes_per_s'] / 1e9:.2f} GB/s"

    # S4: RSS growth per connection (the method of tools/conn-memory.cpp, to two decimals).
    def measure_S4(self, run, _, key, rec):
        n = self.s4_conns(key)
        rec["connections"] = n
        with socket.create_connection(("127.0.0.1", run.port), timeout=10) as warm:   # warm-up echo
            warm.sendall(b"warm")
            recv_exactly(warm, 4)
            warm.shutdown(socket.SHUT_WR)
            while warm.recv(64):
                pass
        time.sleep(0.05)
        base_rss, base_vm, base_k = proc_status(run.pid, "VmRSS"), proc_status(run.pid, "VmSize"), meminfo("KernelStack")
        socks = open_echoed(run.port, n)
        try:
            time.sleep(0.05)
            rss, vm, k = proc_status(run.pid, "VmRSS"), proc_status(run.pid, "VmSize"), meminfo("KernelStack")
            rec["threads"] = proc_status(run.pid, "Threads")
        finally:
            for s in socks:
                s.close()
        rec["rss_kib_per_conn"] = (rss - base_rss) / n
        rec["vm_kib_per_conn"] = (vm - base_vm) / n
        rec["kstack_kib_per_conn"] = (k - base_k) / n
        rec["summary"] = f"{rec['rss_kib_per_conn']:.2f} KiB/conn"

    # S5: CPU used while N connections sit idle.
    def measure_S5(self, run, n, key, rec):
        secs = self.cfg["s5_seconds"]
        socks = open_echoed(run.port, n)
        try:
            time.sleep(0.1)   # let a thread-per-connection server's threads go to sleep
            c0, t0 = run.cpu_seconds(), time.monotonic()
            time.sleep(secs)
            c1, t1 = run.cpu_seconds(), time.monotonic()
        finally:
            for s in socks:
                s.close()
        rec["idle_seconds"] = t1 - t0
        rec["cpu_percent"] = 100 * (c1 - c0) / (t1 - t0)
        rec["summary"] = f"{rec['cpu_percent']:.1f}% CPU"


def recv_exactly(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            raise RuntimeError("connection closed early")
        got += chunk
    return got


def open_echoed(port, n, batch=200):
    """n connections, each having echoed one byte (so a thread-per-connection server runs every thread).

    Opened `batch` at a time, well under the listen backlog: connect the batch, send on each, then
    read each echo. One at a time would cost a busy-polling server (02) a sweep of every socket it
    holds per connection: quadratic in n."""
    socks = []
    try:
        for first in range(0, n, batch):
            group = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(min(batch, n - first))]
            socks.extend(group)
            for s in group:
                s.sendall(b"x")
            for i, s in enumerate(group):
                if recv_exactly(s, 1) != b"x":
                    raise RuntimeError(f"echo on connection {first + i} failed")
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


# ---------------------------------------------------------------- machine, setup

def machine_busy():
    """CPU-seconds all CPUs spent in user, nice and system mode since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2]) / CLK_TCK


def our_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def first_line(cmd):
    try:
        r = sh(cmd, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except Exception:   # noqa: BLE001
        return None


def apt_install(pkgs, notes):
    """Installs Debian packages; returns True on success. Never fatal."""
    if not shutil.which("apt-get"):
        notes.append(f"apt-get not found: could not install {' '.join(pkgs)}")
        return False
    pre = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if pre is None:
        notes.append(f"not root and no sudo: could not install {' '.join(pkgs)}")
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"-- apt-get install {' '.join(pkgs)}")
    for attempt in range(2):
        r = sh(pre + ["apt-get", "install", "-y", "--no-install-recommends"] + pkgs, env=env, timeout=900)
        if r.returncode == 0:
            return True
        if attempt == 0:
            sh(pre + ["apt-get", "update"], env=env, timeout=600)
    notes.append(f"apt-get install {' '.join(pkgs)} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return False


def boost_version():
    p = Path("/usr/include/boost/version.hpp")
    if not p.exists():
        return None
    m = re.search(r'#define BOOST_LIB_VERSION "([^"]+)"', p.read_text())
    return m.group(1).replace("_", ".") if m else "unknown"


def newer(src_paths, target):
    if not target.exists():
        return True
    t = target.stat().st_mtime
    return any(p.stat().st_mtime > t for p in src_paths)


def build_references(with_refs, install, notes):
    """Builds go-echo and asio-echo into build/bench/; returns {key: reason skipped}."""
    skipped = {}
    REF_BIN.mkdir(parents=True, exist_ok=True)
    if not with_refs:
        return {"go": "--no-references", "asio": "--no-references"}
    # Go
    if not shutil.which("go") and install:
        apt_install(["golang-go"], notes)
    go_src = ROOT / "bench" / "go-echo"
    if not shutil.which("go"):
        skipped["go"] = "golang-go is not installed and could not be installed"
    elif newer(list(go_src.glob("*")), REF_BIN / "go-echo"):
        log("-- go build bench/go-echo")
        env = dict(os.environ, GOPROXY="off", GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
        r = sh(["go", "build", "-o", str(REF_BIN / "go-echo"), "."], cwd=go_src, env=env, timeout=600)
        if r.returncode != 0:
            skipped["go"] = "go build failed: " + r.stderr.strip()[-300:]
    # Boost.Asio
    if not boost_version() and install:
        apt_install(["libboost-dev"], notes)
    src = ROOT / "bench" / "asio-echo" / "asio-echo.cpp"
    cxx = os.environ.get("CXX") or "g++"
    if not boost_version():
        skipped["asio"] = "libboost-dev is not installed and could not be installed"
    elif newer([src], REF_BIN / "asio-echo"):
        log("-- g++ -O2 -std=c++20 bench/asio-echo/asio-echo.cpp")
        r = sh([cxx, "-O2", "-std=c++20", "-o", str(REF_BIN / "asio-echo"), str(src), "-pthread"], timeout=600)
        if r.returncode != 0:
            skipped["asio"] = "the build failed (g++ -O2 -std=c++20 asio-echo.cpp -pthread): " + r.stderr.strip()[-300:]
    return skipped


def build_course(notes):
    log("-- cmake --preset default && cmake --build --preset default")
    for cmd in (["cmake", "--preset", "default"], ["cmake", "--build", "--preset", "default"]):
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:])
            sys.exit(f"tools/benchmark: {' '.join(cmd)} failed")


def machine_info(cfg_name, argv):
    info = {}
    cpu = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu or platform.processor() or "unknown"
    info["cores"] = NCPU
    info["memory_gib"] = round((meminfo("MemTotal") or 0) / 1024 / 1024, 1)
    info["kernel"] = platform.release()
    try:
        os_release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', Path("/etc/os-release").read_text(), re.M))
        info["os"] = os_release.get("PRETTY_NAME")
    except OSError:
        info["os"] = None
    cache = ROOT / "build" / "CMakeCache.txt"
    cxx, build_type = "c++", None
    if cache.exists():
        text = cache.read_text()
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", text, re.M)
        cxx = m.group(1) if m else cxx
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.M)
        build_type = m.group(1) if m else None
    info["compiler"] = first_line([cxx, "--version"])
    info["build_type"] = build_type
    info["go"] = first_line(["go", "version"]) if shutil.which("go") else None
    info["boost"] = boost_version()
    info["gnuplot"] = first_line(["gnuplot", "--version"]) if shutil.which("gnuplot") else None
    info["python"] = platform.python_version()
    info["date"] = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    info["command"] = "tools/benchmark" + "".join(" " + a for a in argv)
    info["mode"] = cfg_name
    info["pinned"] = PIN
    return info


def git_commit():
    """The commit of the tree measured, "-dirty" if tracked files differ from it; None without git."""
    if not shutil.which("git"):
        return None
    r = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], timeout=30)
    if r.returncode != 0:
        return None
    dirty = sh(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--"], timeout=30).returncode != 0
    return r.stdout.strip() + ("-dirty" if dirty else "")


# ---------------------------------------------------------------- a whole run

def run(a, argv, out):
    """Everything tools/benchmark does before the plots and the report. Returns results.json's path."""
    t_start = time.monotonic()
    cfg = dict(QUICK if a.quick else FULL)
    if a.rounds:
        cfg["rounds"] = max(1, a.rounds)
    only = set(a.only.upper().split(",")) if a.only else None
    notes = []

    # S2 and S4 hold 10,000 connections: both ends need the descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < 12000:
            notes.append(f"RLIMIT_NOFILE is {hard}: 10,000-connection runs will fail (raise it: ulimit -n 65536)")

    if not a.no_install:
        if not shutil.which("gnuplot"):
            apt_install(["gnuplot-nox"], notes)
        for tool, pkg in (("cmake", "cmake"), ("ninja", "ninja-build"), ("taskset", "util-linux")):
            if not shutil.which(tool):
                apt_install([pkg], notes)
    if not a.no_build:
        build_course(notes)
    skipped = build_references(not a.no_references, not a.no_install, notes)
    # From here on: this program and the generator on CPU 0, the servers on CPU 1 (the builds above
    # had both CPUs).
    if PIN:
        os.sched_setaffinity(0, {CLIENT_CPU})
    # And at the highest priority (nice -20, inherited by the servers and the generator) when we may:
    # other work on the machine then steals less of their time. The quietness line still reports it.
    niced = False
    if not a.no_nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -20)
            niced = True
        except OSError:
            pass
    bench_exe = Path(a.echo_bench) if a.echo_bench else BIN / "echo-bench"
    if not bench_exe.exists():
        sys.exit(f"tools/benchmark: {bench_exe} not found (build it: cmake --build --preset default)")

    servers = {}
    wanted = set(a.servers.split(",")) if a.servers else None
    for s in all_servers():
        if wanted and s.key not in wanted:
            continue
        if s.key in skipped:
            continue
        if not s.path.exists():
            skipped[s.key] = f"{s.path} not found"
            continue
        servers[s.key] = s

    info = machine_info(cfg["name"], argv)
    info["nice"] = -20 if niced else os.getpriority(os.PRIO_PROCESS, 0)
    info["commit"] = git_commit()
    runner = Runner(cfg, servers, bench_exe, only)
    t_measure = time.monotonic()
    try:
        runner.run_all()
    except BenchError as e:
        sys.exit(f"tools/benchmark: {e}")
    except KeyboardInterrupt:
        log("interrupted: writing what was measured")
    times = dict(total=time.monotonic() - t_start, measure=time.monotonic() - t_measure)

    raw = dict(machine=info, config=runner.cfg, timing=runner.timing, times=times, notes=notes, skipped=skipped,
               servers={k: dict(label=s.label, command=s.display_command(), note=s.note, buffer=s.buffer)
                        for k, s in servers.items()},
               runs=runner.results)
    return write_results(out / "benchmarks", raw)


def write_results(d, raw):
    """d/results.json, pretty at the top and one line per run: small, and a re-run diffs line by line."""
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.svg"):
        old.unlink()
    raw = dict(raw)
    runs = raw.pop("runs")
    head = json.dumps(raw, indent=1, default=str)[:-2]
    body = ",\n  ".join(json.dumps(r, default=str, separators=(",", ":")) for r in runs)
    text = head + ',\n "runs": [\n  ' + body + "\n ]\n}\n"
    path = d / "results.json"
    path.write_text(text.replace(str(ROOT) + "/", ""))
    return path
