#!/usr/bin/env python3
"""The course's exercises: start, check, hint, diff, reset, trace-diff, grade, export, verify.

Students call it through `tools/course exercise ...`; CMake calls `cmake-targets` and `starter`;
ctest calls `verify ID`. docs/teaching.md is the user's guide (and says how to add an exercise).

An exercise lives in its chapter's `exercises.toml`. A code exercise (kind implement or fix) is a
list of edits to one file of the chapter's server, applied to the reference source to make the
starter: `region = NAME, stub = TEXT` replaces the body of a named region (`// #region NAME`, the
regions the README quotes); `find = TEXT, replace = TEXT` plants a bug (TEXT must occur once).
`fails` lists the checks the starter must fail, and no other. A measure exercise asks for a number
that `measure` counts on this machine; the student writes it in `work/ID/answer.toml`.

The checks of a chapter are its real tests, run against the student's binary: the chapter's own
test program and the contract suite's tests for the chapter, which read the server's path from
COURSE_SERVER_NN (tests/harness/server_process.hpp).

Python 3.11 standard library only (tomllib).
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "work"
HANDOUT_MARK = "handout"  # key in an exercises.toml of an exported handout

CHECK_TIMEOUT = float(os.environ.get("COURSE_CHECK_TIMEOUT", 90))  # seconds a check may run (ctest: 120)
DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}
POINTS = {1: 10, 2: 20, 3: 30}


SKIPPED = 77  # verify's exit status when the build cannot show the exercise's bug (ctest: SKIP_RETURN_CODE)


def die(msg: str, code: int = 2):
    print(f"exercise: error: {msg}", file=sys.stderr)
    sys.exit(code)


def is_tty() -> bool:
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def paint(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if is_tty() else text


# ------------------------------------------------------------------ exercises

@dataclasses.dataclass
class Exercise:
    id: str              # "05.interest"
    chapter: str         # "05-epoll-lt"
    kind: str            # implement | fix | measure
    title: str
    difficulty: int
    hints: list[str]
    points: int
    # code exercises
    file: str = ""       # the chapter file the student edits, e.g. "main.cpp"
    open_at: str = ""    # what to open: "function update_interest (region interest)"
    edits: list[dict] = dataclasses.field(default_factory=list)
    fails: list[str] = dataclasses.field(default_factory=list)
    pitfall: str = ""    # fix: the docs/pitfalls.md row it plants
    needs: str = ""      # a sanitizer without which the starter's bug may go unseen ("undefined")
    # measure exercises
    question: str = ""
    measure: dict = dataclasses.field(default_factory=dict)
    handout: bool = False

    @property
    def nn(self) -> str:
        return self.chapter[:2]

    @property
    def work(self) -> Path:
        return WORK / self.id

    @property
    def is_code(self) -> bool:
        return self.kind != "measure"


def load_exercises() -> list[Exercise]:
    out: list[Exercise] = []
    for path in sorted(ROOT.glob("[0-9][0-9]-*/exercises.toml")):
        chapter = path.parent.name
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            die(f"{path.relative_to(ROOT)}: {e}")
        handout = bool(data.get(HANDOUT_MARK, False))
        for raw in data.get("exercise", []):
            where = f"{path.relative_to(ROOT)}: exercise {raw.get('id', '?')}"
            for key in ("id", "kind", "title", "difficulty", "hints"):
                if key not in raw:
                    die(f"{where}: missing '{key}'")
            if raw["kind"] not in ("implement", "fix", "measure"):
                die(f"{where}: kind must be implement, fix or measure")
            ex = Exercise(id=f"{chapter[:2]}.{raw['id']}", chapter=chapter, kind=raw["kind"],
                          title=raw["title"], difficulty=int(raw["difficulty"]), hints=list(raw["hints"]),
                          points=int(raw.get("points", POINTS.get(int(raw["difficulty"]), 10))),
                          file=raw.get("file", ""), open_at=raw.get("open", ""), edits=list(raw.get("edit", [])),
                          fails=list(raw.get("fails", [])), pitfall=raw.get("pitfall", ""), needs=raw.get("needs", ""),
                          question=raw.get("question", ""), measure=dict(raw.get("measure", {})), handout=handout)
            if ex.is_code and not ex.file:
                die(f"{where}: a code exercise names its 'file'")
            if ex.kind == "measure" and not ex.measure:
                die(f"{where}: a measure exercise has a [exercise.measure] table")
            out.append(ex)
    ids = [e.id for e in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        die(f"duplicate exercise ids: {', '.join(sorted(dupes))}")
    return out


def find(exercises: list[Exercise], ident: str) -> Exercise:
    for ex in exercises:
        if ex.id == ident:
            return ex
    close = difflib.get_close_matches(ident, [e.id for e in exercises], n=3)
    die(f"no exercise '{ident}'" + (f"; did you mean {', '.join(close)}?" if close else
                                      "; `tools/course exercise list` shows them all"))


# ------------------------------------------------------------------ starters

REGION = re.compile(r"^(\s*)(?://|#) #(region|endregion) ([a-z0-9-]+)\s*$")


def region_span(lines: list[str], name: str, where: str) -> tuple[int, int, str]:
    """Index of the '#region NAME' line, of its '#endregion NAME' line, and the marker's indentation."""
    start = end = None
    indent = ""
    for i, line in enumerate(lines):
        m = REGION.match(line)
        if m and m.group(3) == name:
            if m.group(2) == "region":
                start, indent = i, m.group(1)
            elif start is not None:
                end = i
                break
    if start is None or end is None:
        raise ValueError(f"{where}: no region '{name}'")
    return start, end, indent


def apply_edits(ex: Exercise, text: str) -> str:
    """The starter: the reference source with the exercise's edits applied."""
    where = f"{ex.chapter}/{ex.file} ({ex.id})"
    for edit in ex.edits:
        if "region" in edit:
            lines = text.split("\n")
            start, end, indent = region_span(lines, edit["region"], where)
            stub = [(indent + s if s.strip() else "") for s in edit["stub"].rstrip("\n").split("\n")]
            text = "\n".join(lines[:start + 1] + stub + lines[end:])
        elif "find" in edit:
            count = text.count(edit["find"])
            if count != 1:
                raise ValueError(f"{where}: the text to replace occurs {count} times, not once:\n{edit['find']}")
            text = text.replace(edit["find"], edit["replace"])
        else:
            raise ValueError(f"{where}: an edit has either region+stub or find+replace")
    return text


def reference_text(ex: Exercise) -> str:
    return (ROOT / ex.chapter / ex.file).read_text()


def starter_text(ex: Exercise) -> str:
    if ex.handout:  # in a handout the chapter's file is the starter already
        return reference_text(ex)
    return apply_edits(ex, reference_text(ex))


# ------------------------------------------------------------------ building

def preset() -> str:
    return os.environ.get("COURSE_PRESET") or ("ci" if os.environ.get("CI") == "true" else "asan")


def build_dir(p: str) -> Path:
    return ROOT / ("build" if p == "default" else f"build-{p}")


def configure(p: str):
    r = subprocess.run(["cmake", "--preset", p], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        die(f"cmake --preset {p} failed (output above)")


def first_error(log: str) -> str:
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"\berror\b", line) and not line.startswith(("ninja:", "FAILED:")):
            return "\n".join(lines[i:i + 4])
    tail = [line for line in lines if line.strip()][-6:]
    return "\n".join(tail)


def build(p: str, targets: list[str], log_path: Path) -> bool:
    r = subprocess.run(["cmake", "--build", "--preset", p, "--target", *targets], cwd=ROOT,
                       capture_output=True, text=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        print(paint("build failed", "31") + f"; the compiler's first error (whole log: {rel(log_path)}):\n")
        print(first_error(r.stdout + r.stderr))
        return False
    return True


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------ checks

@dataclasses.dataclass
class Check:
    program: str   # the test program in <build>/bin
    name: str      # the full GoogleTest name

    @property
    def words(self) -> str:
        """The test name as a sentence: Contract/ContractTest.HalfCloseEchoes.../05_epoll_lt -> ..."""
        name = self.name
        param = ""
        m = re.match(r"Contract/ContractTest\.(\w+)/(\w+)$", name)
        if m:
            name, param = m.group(1), m.group(2).replace("_", "-")
        else:
            name = name.split(".", 1)[-1]
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
        words = re.sub(r"(?<=[A-Za-z])(?=\d)", " ", words)
        sentence = words[:1].upper() + words[1:].lower()
        for keep in ("EMFILE", "SIGPIPE", "SIGTERM", "SIGINT", "EINTR", "EAGAIN", "EPOLLOUT", "EPOLLRDHUP", "FIN",
                     "RST", "CPU", "RSS"):
            sentence = re.sub(rf"\b{keep}\b", keep, sentence, flags=re.I)
        for said, meant in (("mi b", "MiB"), ("ki b", "KiB"), ("fd setsize", "FD_SETSIZE"), ("epoll wait", "epoll_wait")):
            sentence = re.sub(rf"\b{said}\b", meant, sentence, flags=re.I)
        return f"{sentence} [{param}]" if param else sentence


def test_programs(bdir: Path, ex: Exercise, who: str) -> list[str]:
    """The chapter's test programs that check `who`'s copy (starter or work) of the exercise: CMake
    lists them in build/exercises/ID/who-programs.txt (tools/exercises.cmake). A program that
    compiles the exercise's file is built again with the copy in it, who-ID.PROGRAM; the others
    test the server they are given. Without the list (none is made before configuring): NAME_test."""
    listed = bdir / "exercises" / ex.id / f"{who}-programs.txt"
    if listed.exists():
        return [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    return [f"{ex.chapter}_test"]


def chapter_checks(bdir: Path, chapter: str, programs: list[str]) -> list[Check]:
    """Every check of the chapter: each test in `programs` (the chapter's test programs), and the
    contract suite's tests of this chapter's servers."""
    nn = chapter[:2]
    checks: list[Check] = []
    runs = [(program, "*") for program in programs] + [("contract_test", f"Contract/ContractTest.*/{nn}_*")]
    for program, pattern in runs:
        exe = bdir / "bin" / program
        if not exe.exists():
            die(f"{rel(exe)} is not built")
        r = subprocess.run([exe, "--gtest_list_tests", f"--gtest_filter={pattern}"], capture_output=True, text=True,
                           timeout=60)
        suite = ""
        for line in r.stdout.splitlines():
            if not line.strip() or line.startswith("Running main"):
                continue
            if not line.startswith(" "):
                suite = line.split("#")[0].strip()
            else:
                checks.append(Check(program, suite + line.split("#")[0].strip()))
    return checks


@dataclasses.dataclass
class Result:
    check: Check
    status: str        # pass | fail | timeout | error
    message: str = ""  # the first failure, one line
    output: str = ""   # the test's whole output
    seconds: float = 0.0


def summarise_failure(output: str) -> str:
    """The most useful line of a failed GoogleTest test, for a student: the server's TODO if a stub
    stopped it, else the test's own message, else what GoogleTest compared."""
    lines = [line.rstrip() for line in output.splitlines()]
    for line in lines:
        if "TODO(" in line:
            return f"the server stopped: {line.strip()}"[:300]
    blocks: list[list[str]] = []
    for line in lines:
        if re.match(r"^\S.*:\d+: Failure$", line):
            blocks.append([])
        elif blocks and not line.startswith("[ "):
            blocks[-1].append(line)
    generated = re.compile(r"^(Expected|Value of|Actual|Which is|To be equal to|With diff|\s)")
    for block in blocks:  # the test's own words, if it gave any
        own = [b for b in block if b.strip() and not generated.match(b)]
        if own:
            return own[0].strip()[:300]
    if blocks:  # else what was compared: "echoed.size() = 65536, payload.size() = 8388608"
        block, pairs = blocks[0], []
        for k, b in enumerate(block):
            m = re.match(r"^\s+Which is: (.*)$", b)
            if m and k > 0:
                pairs.append(f"{block[k - 1].strip()} = {m.group(1)}")
            m = re.match(r"^Value of: (.*)$", b)
            if m:
                pairs.append(f"expected true: {m.group(1)}")
        if pairs:
            return ", ".join(pairs)[:300]
        text = " ".join(b.strip() for b in block if b.strip())
        return text[:300]
    for line in lines:
        if "exception" in line.lower():
            return line.strip()[:300]
    return ""


def run_checks(bdir: Path, chapter: str, server: Path, checks: list[Check], progress=None) -> list[Result]:
    """Runs the checks against `server`, each test program once, both at the same time.

    Every check is bounded: one that runs longer than CHECK_TIMEOUT counts as failed and the
    program goes on with the rest; a test program that dies takes only its current check."""
    env = dict(os.environ, **{f"COURSE_SERVER_{chapter[:2]}": str(server)})
    env.pop("COMPARISON_MD", None)
    by_program: dict[str, list[Check]] = {}
    for c in checks:
        by_program.setdefault(c.program, []).append(c)
    runs = {prog: _ProgramRun(bdir / "bin" / prog, todo, env) for prog, todo in by_program.items()}
    results: dict[str, Result] = {}
    while any(not r.done for r in runs.values()):
        for run in runs.values():
            for res in run.step():
                results[res.check.name] = res
                if progress:
                    progress(res)
    return [results[c.name] for c in checks]


class _ProgramRun:
    """One test program, fed the checks still to do; restarted after a check that hangs or crashes."""

    def __init__(self, exe: Path, todo: list[Check], env: dict):
        self.exe, self.todo, self.env = exe, list(todo), env
        self.proc = None
        self.current: Check | None = None
        self.output: list[str] = []
        self.started = 0.0
        self.buf = b""

    @property
    def done(self) -> bool:
        return not self.todo and self.proc is None

    def _start(self):
        filt = ":".join(c.name for c in self.todo)
        self.proc = subprocess.Popen([self.exe, f"--gtest_filter={filt}", "--gtest_color=no", "--gtest_brief=0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def _finish(self, status: str, message: str = "") -> Result:
        check = self.current
        out = "".join(self.output)
        res = Result(check, status, message or (summarise_failure(out) if status != "pass" else ""), out,
                     time.monotonic() - self.started)
        self.todo = [c for c in self.todo if c.name != check.name]
        self.current, self.output = None, []
        return res

    def _kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def step(self) -> list[Result]:
        if self.done:
            return []
        if self.proc is None:
            if not self.todo:
                return []
            self._start()
        out: list[Result] = []
        ready, _, _ = select.select([self.proc.stdout], [], [], 0.05)
        chunk = b""
        if ready:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                chunk = b""
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace") + "\n"
            m = re.match(r"^\[ RUN      \] (\S+)", line)
            if m:
                if self.current is not None:  # no verdict line: count it as failed
                    out.append(self._finish("fail"))
                self.current = next((c for c in self.todo if c.name == m.group(1)), None)
                self.output, self.started = [], time.monotonic()
                continue
            if self.current is None:
                continue
            self.output.append(line)
            if re.match(rf"^\[       OK \] {re.escape(self.current.name)}\b", line):
                out.append(self._finish("pass"))
            elif re.match(rf"^\[  FAILED  \] {re.escape(self.current.name)}\b", line):
                out.append(self._finish("fail"))
            elif re.match(rf"^\[  SKIPPED \] {re.escape(self.current.name)}\b", line):
                out.append(self._finish("pass", "skipped: does not apply to this model"))
        if self.current is not None and time.monotonic() - self.started > CHECK_TIMEOUT:
            self._kill()
            out.append(self._finish("timeout", f"did not finish within {CHECK_TIMEOUT:g} s (a hang?)"))
        elif not chunk and ready and self.proc is not None:  # EOF: the program ended
            self.proc.wait()
            self.proc.stdout.close()
            code = self.proc.returncode
            self.proc = None
            if self.current is not None:  # with what it said last, if that was a stub's TODO
                why = summarise_failure("".join(self.output))
                out.append(self._finish("error", f"the test program died (status {code}) during this check"
                                                 + (f"; {why}" if why.startswith("the server stopped") else "")))
            elif self.todo:  # it ended without running them: say so rather than loop
                for c in list(self.todo):
                    self.current, self.started = c, time.monotonic()
                    out.append(self._finish("error", f"the test program ended (status {code}) before this check"))
        return out


# ------------------------------------------------------------------ measure exercises

def measure(ex: Exercise, server: Path) -> tuple[float, str]:
    """Runs the exercise's measurement against `server`; returns (value, how it was measured)."""
    m = ex.measure
    args = [str(server), "--port", "0", *m.get("flags", [])]
    if m.get("trace"):
        args.append("--trace")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # we hold every client socket
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with ServerRun(args, m.get("max_open_files")) as srv:
        clients, served = [], 0
        for i in range(m.get("clients", 0)):  # one after the other, each says hello once and stays
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            clients.append(c)
            try:
                c.sendall(b"%06d" % i)
                if _recv_exactly(c, 6) == b"%06d" % i:
                    served += 1
            except OSError:
                pass  # refused: closed at once, or reset
        for _ in range(m.get("rounds", 0)):
            for c in clients:
                c.sendall(b"x" * m.get("size", 64))
            for c in clients:
                _recv_exactly(c, m.get("size", 64))
        if m.get("idle_seconds"):
            time.sleep(m["idle_seconds"])  # the quantity is a count over an idle period, not a wait for an event
        threads = _proc_threads(srv.proc.pid)
        for c in clients:
            c.close()
        stats, trace = srv.stop()
    values = dict(stats, served=served, threads=threads)
    if "trace_max" in m:  # the largest number a trace line's pattern captures, e.g. poll's nfds
        found = [int(x) for x in re.findall(m["trace_max"], trace)]
        values["trace_max"] = max(found) if found else 0
    try:
        value = float(eval(m["value"], {"__builtins__": {}}, values))  # a formula over the counters, from our own files
    except ZeroDivisionError:
        value = float("inf")
    return value, m.get("how", m["value"])


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _proc_threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class ServerRun:
    """A server as a child process: waits for its ready line; stop() sends SIGTERM, returns (stats, stderr)."""

    def __init__(self, args: list[str], max_open_files: int | None = None):
        self.args, self.max_open_files = args, max_open_files

    def __enter__(self):
        import resource

        def limit():
            if self.max_open_files:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_open_files, self.max_open_files))
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL,
                                     preexec_fn=limit)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"listening on (\S+):(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            die(f"{self.args[0]} did not print its ready line: {line!r} {self.err.read().decode()[-500:]}")
        self.port = int(m.group(2))
        return self

    def stop(self) -> tuple[dict, str]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.seek(0)
        text = self.err.read().decode(errors="replace")
        stats = {}
        for line in text.splitlines():
            if line.startswith("stats: "):
                stats = {k: int(v) for k, v in (kv.split("=") for kv in line[7:].split())}
        return stats, text

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def read_answer(ex: Exercise) -> float | None:
    path = ex.work / "answer.toml"
    if not path.exists():
        return None
    try:
        value = tomllib.loads(path.read_text()).get("answer")
    except tomllib.TOMLDecodeError as e:
        print(f"  {rel(path)} is not valid TOML ({e}): no answer read; write it as answer = 42")
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def within(ex: Exercise, answer: float | None, measured: float) -> bool:
    if answer is None:
        return False
    tol = ex.measure.get("tolerance", 0)
    if isinstance(tol, str) and tol.endswith("%"):
        return abs(answer - measured) <= abs(measured) * float(tol[:-1]) / 100
    return abs(answer - measured) <= float(tol)


def tolerance_text(ex: Exercise) -> str:
    tol = ex.measure.get("tolerance", 0)
    if isinstance(tol, str):
        return f"within {tol}"
    return "if exact" if tol == 0 else f"within ±{tol:g}"


# ------------------------------------------------------------------ state of the student's copy

def fingerprint(ex: Exercise) -> str:
    h = hashlib.sha256()
    target = ex.work / (ex.file if ex.is_code else "answer.toml")
    if target.exists():
        h.update(target.read_bytes())
    return h.hexdigest()


def status_of(ex: Exercise) -> str:
    if not ex.work.exists():
        return "not started"
    last = ex.work / ".last-check.json"
    if last.exists():
        data = json.loads(last.read_text())
        if data.get("fingerprint") == fingerprint(ex) and data.get("passed") == data.get("total"):
            return "passing"
    return "in progress"


# ------------------------------------------------------------------ commands

def cmd_list(args, exercises):
    rows = [e for e in exercises if not args.chapter or e.chapter.startswith(args.chapter)]
    if not rows:
        die(f"no exercises for '{args.chapter}'")
    width = max(len(e.id) for e in rows)
    chapter = None
    for e in rows:
        if e.chapter != chapter:
            chapter = e.chapter
            print(f"\n{chapter}")
        st = status_of(e)
        colour = {"passing": "32", "in progress": "33"}.get(st, "2")
        print(f"  {e.id:<{width}}  {e.kind:<9}  {DIFFICULTY.get(e.difficulty, '?'):<6}  "
              f"{paint(f'{st:<11}', colour)}  {e.title}")
    print(f"\n{len(rows)} exercises. Start one: tools/course exercise start ID")


def cmd_start(args, exercises):
    ex = find(exercises, args.id)
    if ex.work.exists() and not args.force:
        print(f"{ex.id} is started already: {rel(ex.work)}/ (`tools/course exercise reset {ex.id}` starts again)")
        return
    ex.work.mkdir(parents=True, exist_ok=True)
    (ex.work / ".hints-shown").unlink(missing_ok=True)
    if ex.is_code:
        (ex.work / ex.file).write_text(starter_text(ex))
        print(f"{ex.id}: {ex.title}")
        print(f"  your copy:  {rel(ex.work / ex.file)}   (the reference {ex.chapter}/{ex.file} is untouched)")
        if ex.open_at:
            print(f"  open:       {ex.open_at}")
        print(f"  it builds:  {rel(build_dir(preset()))}/bin/work-{ex.id}, next to {ex.chapter}")
        print(f"  then:       tools/course exercise check {ex.id}    (hints: tools/course exercise hint {ex.id})")
        configure(preset())
    else:
        (ex.work / "answer.toml").write_text(answer_template(ex))
        print(f"{ex.id}: {ex.title}\n\n{ex.question}\n")
        print(f"  your answer goes in: {rel(ex.work / 'answer.toml')}")
        print(f"  then:                tools/course exercise check {ex.id}")


def answer_template(ex: Exercise) -> str:
    return (f"# {ex.id}: {ex.title}\n#\n" + "".join(f"# {line}\n" for line in ex.question.strip().splitlines()) +
            f"#\n# Write your prediction below (a number), then: tools/course exercise check {ex.id}\n"
            f"# The check counts it on this machine and accepts it {tolerance_text(ex)}.\n"
            f"# Put your number in place of the quotes, e.g. answer = 42\nanswer = \"\"\n")


def need_started(ex: Exercise):
    if not ex.work.exists():
        die(f"{ex.id} is not started: tools/course exercise start {ex.id}", 1)


def check_code(ex: Exercise, p: str, server: Path | None = None, quiet=False) -> list[Result] | None:
    """Builds the student's copy (unless `server` is given) and runs every check of the chapter on it."""
    bdir = build_dir(p)
    if server is None:
        configure(p)
        if not quiet:
            print(f"building {rel(ex.work / ex.file)} ({p} preset) ...", flush=True)
        programs = test_programs(bdir, ex, "work")
        if not build(p, [f"work-{ex.id}", *programs, "contract_test"], ex.work / "build.log"):
            return None
        server = bdir / "bin" / f"work-{ex.id}"
    else:
        programs = test_programs(bdir, ex, "work")
    checks = chapter_checks(bdir, ex.chapter, programs)
    order = {name: i for i, name in enumerate(ex.fails)}  # the exercise's own checks first
    checks.sort(key=lambda c: order.get(c.name, len(order)))
    if not quiet:
        print(f"running the {len(checks)} checks of {ex.chapter} against {rel(server)} "
              f"(its own tests and the contract's) ...\n", flush=True)

    def show(res: Result):
        if quiet:
            return
        mark = paint("PASS", "32") if res.status == "pass" else paint("FAIL", "31")
        print(f"  {mark}  {res.check.words}  ({res.seconds:.1f} s)", flush=True)
        if res.status != "pass" and res.message:
            print(f"          {res.message}", flush=True)
    results = run_checks(bdir, ex.chapter, server, checks, show)
    return results


def cmd_check(args, exercises):
    ids = [args.id] if args.id else [e.id for e in exercises if e.work.exists()]
    if not ids:
        die("no exercise is started: tools/course exercise list, then start ID", 1)
    ok = True
    for ident in ids:
        ex = find(exercises, ident)
        need_started(ex)
        ok &= check_one(ex)
    sys.exit(0 if ok else 1)


def check_one(ex: Exercise) -> bool:
    t0 = time.monotonic()
    print(f"== {ex.id}: {ex.title}")
    p = preset()
    if ex.is_code:
        results = check_code(ex, p)
        if results is None:
            # Counted on the course's own test programs: the copies built with the student's file
            # did not build either.
            bdir = build_dir(p)
            own = [t.removeprefix(f"work-{ex.id}.") for t in test_programs(bdir, ex, "work")]
            have = all((bdir / "bin" / t).exists() for t in (*own, "contract_test"))
            total = len(chapter_checks(bdir, ex.chapter, own)) if have else max(1, len(ex.fails))
            print(f"\nScore: 0/{total} (it does not build)")
            save_last(ex, 0, total, [])
            return False
    else:
        results = check_measure(ex, p)
    passed = sum(r.status == "pass" for r in results)
    failed = [r for r in results if r.status != "pass"]
    print()
    if ex.fails:
        own = [r for r in results if r.check.name in ex.fails]
        rest = [r for r in results if r.check.name not in ex.fails]
        print(f"The checks this exercise is about (the starter fails them): "
              f"{sum(r.status == 'pass' for r in own)}/{len(own)} pass")
        print(f"The rest of {ex.chapter}'s checks (they must keep passing): "
              f"{sum(r.status == 'pass' for r in rest)}/{len(rest)} pass")
    if failed:
        shown = (ex.work / ".hints-shown")
        n = int(shown.read_text()) if shown.exists() else 0
        nxt = f"hint {n + 1} of {len(ex.hints)}" if n < len(ex.hints) else "all hints are shown; compare: diff"
        print(f"Not yet: {len(failed)} check(s) fail. Next: tools/course exercise hint {ex.id}   ({nxt})")
        if ex.is_code and not ex.handout:
            print(f"Let the trace find it: tools/course exercise trace-diff {ex.id}")
    else:
        print(paint("All checks pass.", "32"))
    if failed and ex.is_code:
        print(f"The failing checks' whole output: {rel(ex.work / 'checks.log')}")
    print(f"Score: {passed}/{len(results)}   ({time.monotonic() - t0:.0f} s)\n")
    save_last(ex, passed, len(results), results)
    return not failed


def save_last(ex: Exercise, passed: int, total: int, results: list[Result]):
    (ex.work / ".last-check.json").write_text(json.dumps({
        "fingerprint": fingerprint(ex), "passed": passed, "total": total, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "results": [{"name": r.check.name, "program": r.check.program, "words": r.check.words, "status": r.status,
                     "message": r.message, "seconds": round(r.seconds, 2)} for r in results]}, indent=1))
    # The whole output of every failed check (assertions, the server's messages, sanitizer reports
    # that a test printed), for when the one-line summary is not enough.
    (ex.work / "checks.log").write_text("".join(f"==== {r.check.name}: {r.status}\n{r.output}\n"
                                                for r in results if r.status != "pass"))


def check_measure(ex: Exercise, p: str) -> list[Result]:
    bdir = build_dir(p)
    cmd_build_targets(p, [ex.chapter])
    answer = read_answer(ex)
    value, how = measure(ex, bdir / "bin" / ex.chapter)
    ok = within(ex, answer, value)
    check = Check("measure", f"{ex.id}.answer")
    msg = (f"your answer: {'(none: write answer = NUMBER in ' + rel(ex.work / 'answer.toml') + ')' if answer is None else f'{answer:g}'}; "
           f"measured on this machine: {value:g} ({how}); accepted {tolerance_text(ex)}")
    print(f"  {paint('PASS', '32') if ok else paint('FAIL', '31')}  {ex.title}")
    print(f"          {msg}")
    return [Result(check, "pass" if ok else "fail", msg)]


def cmd_build_targets(p: str, targets: list[str]):
    configure(p)
    log = WORK / ".build.log"
    if not build(p, targets, log):
        die("the course itself does not build (log above)", 1)


def cmd_hint(args, exercises):
    ex = find(exercises, args.id)
    state = ex.work / ".hints-shown"
    n = int(state.read_text()) if state.exists() else 0
    k = min(n + 1, len(ex.hints))
    print(f"{ex.id}, hint {k} of {len(ex.hints)}:\n\n{ex.hints[k - 1]}")
    if ex.work.exists():
        state.write_text(str(k))
    if k == len(ex.hints):
        print("\n(That was the last hint.)")


def cmd_diff(args, exercises):
    ex = find(exercises, args.id)
    need_started(ex)
    if not ex.is_code:
        die(f"{ex.id} is a measure exercise: it has no code to compare")
    mine = (ex.work / ex.file).read_text().splitlines(keepends=True)
    other = reference_text(ex).splitlines(keepends=True)
    label = "starter (the handout has no reference)" if ex.handout else "reference"
    if not ex.handout:
        print("(the reference's lines are the '-' lines: this shows the solution)")
    out = list(difflib.unified_diff(other, mine, f"{ex.chapter}/{ex.file} ({label})", rel(ex.work / ex.file)))
    sys.stdout.writelines(out or ["no difference: your copy is the " + label + "\n"])


def cmd_reset(args, exercises):
    ex = find(exercises, args.id)
    if ex.work.exists():
        shutil.rmtree(ex.work)
    args.force = True
    cmd_start(args, exercises)


# ------------------------------------------------------------------ trace-diff

def scripted_client(port: int):
    """The same conversation for both servers: three messages one after the other, each echoed,
    then a half-close with one more message still in flight, then wait for the server to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        for msg in (b"hello\n", b"this is an echo server\n", bytes(range(256)) * 8):
            c.sendall(msg)
            _recv_exactly(c, len(msg))
        c.sendall(b"bye\n")
        c.shutdown(socket.SHUT_WR)
        _recv_exactly(c, 4)
        c.recv(1)  # EOF


NOISE = [(re.compile(r"\x1b\[[0-9;]*m"), ""),
         (re.compile(r"^\s*\d+\.\d+ ms( \[tid \d+\])?\s?"), ""),
         (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT")]


def normalise(trace: str) -> list[str]:
    out: list[str] = []
    for line in trace.splitlines():
        for pat, rep in NOISE:
            line = pat.sub(rep, line)
        if line.startswith("stats: "):
            continue
        if out and (out[-1] == line or out[-1] == line + "   (repeated)"):
            out[-1] = line + "   (repeated)"  # a spinning server's EAGAIN storm, however long
            continue
        out.append(line)
    return out


def traced_run(server: Path) -> list[str]:
    with ServerRun([str(server), "--port", "0", "--trace"]) as srv:
        try:
            scripted_client(srv.port)
        except OSError as e:
            print(f"  (the scripted client got: {e})")
        _, trace = srv.stop()
    return normalise(trace)


def cmd_trace_diff(args, exercises):
    ex = find(exercises, args.id)
    need_started(ex)
    if not ex.is_code:
        die(f"{ex.id} is a measure exercise: there is no code of yours to trace")
    if ex.handout:
        die("a handout has no reference server to compare with")
    p = preset()
    configure(p)
    if not build(p, [f"work-{ex.id}", ex.chapter], ex.work / "build.log"):
        sys.exit(1)
    bdir = build_dir(p)
    print("the same scripted client (3 echoes, then a half-close with 4 bytes in flight) against both, with --trace:")
    ref = traced_run(bdir / "bin" / ex.chapter)
    mine = traced_run(bdir / "bin" / f"work-{ex.id}")
    for i, (a, b) in enumerate(zip(ref, mine)):
        if a != b:
            break
    else:
        if len(ref) == len(mine):
            print("\nthe traces are the same: this conversation does not show the difference "
                  "(the checks' failures say which situation does)")
            return
        i = min(len(ref), len(mine))
    print(f"\nthe first difference is at system call line {i + 1}:\n")
    lo = max(0, i - 4)
    for name, lines in (("reference", ref), ("yours", mine)):
        print(f"  {name}:")
        for j in range(lo, min(len(lines), i + 4)):
            marker = ">" if j == i else " "
            print(f"   {marker} {lines[j]}")
        if i >= len(lines):
            print("   > (the trace ends here)")
        print()


# ------------------------------------------------------------------ grade

def cmd_grade(args, exercises):
    chosen = [find(exercises, i) for i in args.ids] if args.ids else [e for e in exercises if e.work.exists()]
    if not chosen:
        die("no exercise is started", 1)
    tests, per_ex, total, max_total = [], [], 0, 0
    p = preset()
    for ex in chosen:
        if not ex.work.exists():
            results, built = [], False
        elif ex.is_code:
            results = check_code(ex, p, quiet=True)
            built = results is not None
            results = results or []
        else:
            results, built = check_measure(ex, p), True
        passed = built and results and all(r.status == "pass" for r in results)
        got = ex.points if passed else 0
        total += got
        max_total += ex.points
        per_ex.append({"id": ex.id, "kind": ex.kind, "points": got, "max_points": ex.points,
                       "checks_passed": sum(r.status == "pass" for r in results), "checks": len(results),
                       "status": "pass" if passed else ("fail" if built else "error")})
        if not ex.work.exists():
            tests.append({"name": f"{ex.id}: started", "status": "fail", "message": "not started"})
        elif not built:
            log = ex.work / "build.log"
            tests.append({"name": f"{ex.id}: builds", "status": "error",
                          "message": first_error(log.read_text() if log.exists() else "")})
        for r in results:
            tests.append({"name": f"{ex.id}: {r.check.words}", "test_code": r.check.name,
                          "status": "pass" if r.status == "pass" else ("error" if r.status == "error" else "fail"),
                          "message": r.message or None})
        print(f"{ex.id:<16} {got:>3}/{ex.points:<3} checks {per_ex[-1]['checks_passed']}/{len(results)}"
              f"  {per_ex[-1]['status']}")
    status = "pass" if total == max_total else "fail"
    if any(e["status"] == "error" for e in per_ex):
        status = "error"
    report = {"version": 2, "status": status,
              "message": None if status == "pass" else f"{total} of {max_total} points",
              "tests": tests,
              "course": {"score": total, "max_score": max_total, "exercises": per_ex,
                         "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "preset": p}}
    print(f"Score: {total}/{max_total}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json} (Exercism results.json version 2, plus a 'course' object: docs/teaching.md)")
    sys.exit(0 if status == "pass" else 1)


# ------------------------------------------------------------------ classroom and export

def classroom(exercises: list[Exercise]) -> dict:
    """GitHub Classroom's autograding.json: one test per exercise, its points when `grade ID` passes."""
    return {"tests": [{"name": f"{e.id}: {e.title}", "setup": "tools/course deps",
                       "run": f"tools/course exercise grade {e.id}", "input": "", "output": "",
                       "comparison": "included", "timeout": 30, "points": e.points} for e in exercises]}


def classroom_workflow(exercises: list[Exercise]) -> str:
    """A handout's GitHub Classroom workflow: the same tests as autograding.json, run by
    GitHub's command grader, one step per exercise, in the course's reference system."""
    steps, ids = [], []
    for n, e in enumerate(exercises):
        sid = f"ex{n}"
        ids.append(sid)
        steps.append(f"""      - name: "{e.id}"
        id: {sid}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: "{e.id}: {e.title.replace('"', "'")}"
          command: tools/course exercise grade {e.id}
          timeout: 30
          max-score: {e.points}
""")
    results = ",".join(ids)
    env = "\n".join(f"          {i.upper()}_RESULTS: ${{{{ steps.{i}.outputs.result }}}}" for i in ids)
    return f"""# Made by tools/course exercise export: grades the exercises of this handout on every push.
name: Autograding
on: [push, workflow_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  grade:
    if: github.actor != 'github-classroom[bot]'
    runs-on: ubuntu-latest
    container: debian:bookworm
    steps:
      - name: Install git
        run: apt-get update && apt-get install -y --no-install-recommends git ca-certificates
      - uses: actions/checkout@v4
      - name: Install the course's packages
        run: tools/course deps
{"".join(steps)}      - name: Report
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env}
        with:
          runners: {results}
"""


def cmd_classroom(args, exercises):
    text = json.dumps(classroom(exercises), indent=2) + "\n"
    path = ROOT / ".github" / "classroom" / "autograding.json"
    if args.check:
        if not path.exists() or path.read_text() != text:
            die(f"{rel(path)} is out of date: run tools/exercise.py classroom", 1)
        print(f"{rel(path)} is up to date ({len(exercises)} exercises)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {rel(path)}")


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def handout_toml(chapter: str, chosen: list[Exercise]) -> str:
    """The chapter's exercises.toml for a handout: the chosen exercises without their edits (the solution)."""
    out = [f"# Exercises of {chapter} in this handout (made by tools/course exercise export).",
           "# The chapter's source files are the starters; the solutions are not in this repository.",
           f"{HANDOUT_MARK} = true", ""]
    for e in chosen:
        out.append("[[exercise]]")
        for key, val in (("id", e.id.split(".", 1)[1]), ("kind", e.kind), ("title", e.title), ("file", e.file),
                         ("open", e.open_at), ("question", e.question), ("pitfall", e.pitfall)):
            if val:
                out.append(f"{key} = {toml_str(val)}")
        out.append(f"difficulty = {e.difficulty}")
        out.append(f"points = {e.points}")
        if e.fails:
            out.append("fails = [" + ", ".join(toml_str(f) for f in e.fails) + "]")
        out.append("hints = [" + ", ".join(toml_str(h) for h in e.hints) + "]")
        if e.measure:
            out.append("[exercise.measure]")
            for k, v in e.measure.items():
                if k in ("answer", "wrong"):
                    continue  # the verification's reference answer is the solution too
                out.append(f"{k} = {json.dumps(v)}")
        out.append("")
    return "\n".join(out)


def cmd_export(args, exercises):
    dest = Path(args.dir).resolve()
    if dest.exists() and any(dest.iterdir()):
        die(f"{dest} exists and is not empty")
    chosen = [find(exercises, i) for i in args.ids] if args.ids else exercises
    files: dict[tuple[str, str], Exercise] = {}
    for e in chosen:
        if e.is_code:
            key = (e.chapter, e.file)
            if key in files:
                die(f"{files[key].id} and {e.id} both change {e.chapter}/{e.file}: a handout holds one code "
                    f"exercise per chapter file (export them into two handouts)")
            files[key] = e
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    dest.mkdir(parents=True, exist_ok=True)
    for name in tracked.stdout.split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    for (chapter, file), e in files.items():
        (dest / chapter / file).write_text(starter_text(e))  # the solution is not in the handout
    for chapter in sorted({e.chapter for e in exercises}):
        mine = [e for e in chosen if e.chapter == chapter]
        path = dest / chapter / "exercises.toml"
        if mine:
            path.write_text(handout_toml(chapter, mine))
        else:
            path.unlink(missing_ok=True)
    (dest / ".github" / "classroom").mkdir(parents=True, exist_ok=True)
    (dest / ".github" / "classroom" / "autograding.json").write_text(json.dumps(classroom(chosen), indent=2) + "\n")
    # The course's own CI would fail on the starters; the handout runs the grader instead.
    (dest / ".github" / "workflows" / "ci.yml").unlink(missing_ok=True)
    (dest / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (dest / ".github" / "workflows" / "classroom.yml").write_text(classroom_workflow(chosen))
    # The students' copies are their work: pre-started, and committed (not ignored) in the handout.
    gi = dest / ".gitignore"
    gi.write_text("".join(line for line in gi.read_text().splitlines(keepends=True) if line.strip() != "/work/"))
    for e in chosen:
        w = dest / "work" / e.id
        w.mkdir(parents=True, exist_ok=True)
        if e.is_code:
            (w / e.file).write_text(starter_text(e))
        else:
            (w / "answer.toml").write_text(answer_template(e))
    # The READMEs quote the regions the starters replaced: quote the starters instead.
    built = [build_dir(p) / "bin" / "doc-regions" for p in ("default", "asan", "ci")]
    regions = next((str(c) for c in built if c.exists()), None)
    if regions:
        subprocess.run([regions, "update", str(dest)], capture_output=True)
    else:
        print("warning: doc-regions is not built, so the handout's READMEs still quote the solutions' regions "
              "(tools/course build, then export again)")
    print(f"wrote a handout with {len(chosen)} exercise(s) to {dest}:")
    for e in chosen:
        print(f"  {e.id:<16} {e.title}")
    print("Students: tools/course exercise start ID, then check ID. The solutions are not in it; the chapter's\n"
          "own tests fail there until the exercise is solved (they are its checks).")


# ------------------------------------------------------------------ CMake and verification

def cmd_cmake_targets(args, exercises):
    """The exercise targets for CMake (tools/exercises.cmake includes this file)."""
    lines = ["# Generated by tools/exercise.py cmake-targets at configure time: do not edit."]
    for e in exercises:
        if e.is_code and not e.handout:
            lines.append(f"course_exercise_starter({e.id} {e.chapter} {e.file})")
        if not e.handout:
            lines.append(f"course_exercise_verify({e.id} {e.chapter})")
    for e in exercises:
        if e.is_code and (e.work / e.file).exists():
            lines.append(f"course_exercise_work({e.id} {e.chapter} {e.file})")
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def cmd_starter(args, exercises):
    ex = find(exercises, args.id)
    text = starter_text(ex)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text() != text:  # unchanged: keep its time stamp (no rebuild)
        out.write_text(text)


def cmd_verify(args, exercises):
    """CI's proof for one exercise (ctest runs it): see docs/teaching.md, 'What CI proves'."""
    ex = find(exercises, args.id)
    bdir = Path(args.build_dir)
    if ex.needs and ex.needs not in args.sanitize.split(","):
        print(f"{ex.id}: skipped: its starter's bug shows for certain only with -fsanitize={ex.needs} "
              f"(the asan preset; this build has {args.sanitize or 'no sanitizer'})")
        sys.exit(SKIPPED)
    problems: list[str] = []
    if len(ex.hints) < 2 or any(not h.strip() for h in ex.hints):
        problems.append(f"it needs two or three hints, each non-empty (has {len(ex.hints)})")
    t0 = time.monotonic()
    if ex.is_code:
        if not ex.fails:
            problems.append("'fails' lists no check: a starter must fail at least one")
        ref = reference_text(ex)
        start = starter_text(ex)
        if start == ref:
            problems.append("the starter is the reference: the edits change nothing")
        for edit in ex.edits:  # putting the reference region back into the starter gives the reference
            if "region" in edit:
                ref_lines, st_lines = ref.split("\n"), start.split("\n")
                a, b, _ = region_span(ref_lines, edit["region"], ex.id)
                c, d, _ = region_span(st_lines, edit["region"], ex.id)
                if "\n".join(st_lines[:c + 1] + ref_lines[a + 1:b] + st_lines[d:]) != ref and len(ex.edits) == 1:
                    problems.append(f"restoring region {edit['region']} does not give back the reference")
        server = bdir / "bin" / f"starter-{ex.id}"
        checks = chapter_checks(bdir, ex.chapter, test_programs(bdir, ex, "starter"))
        names = {c.name for c in checks}
        for f in ex.fails:
            if f not in names:
                problems.append(f"'fails' names {f}, which is not a check of {ex.chapter}")
        results = run_checks(bdir, ex.chapter, server, checks)
        failed = {r.check.name for r in results if r.status != "pass"}
        listed = set(ex.fails)
        for r in results:
            flag = "FAIL" if r.check.name in failed else "pass"
            want = "fail" if r.check.name in listed else "pass"
            note = "" if (flag == "FAIL") == (want == "fail") else "   <-- expected to " + want
            print(f"  {flag}  {r.check.name}  ({r.seconds:.1f} s){note}" + (f"\n        {r.message}" if r.message and
                                                                          flag == "FAIL" else ""))
        # A check that went the wrong way is run twice more on its own. Wrong again, in either
        # run: the exercise is wrong. Right both times: a rare accident of timing (measured for
        # the planted bugs at about 1 run in 15-35 on a machine loaded far beyond CI's), reported.
        by_name = {c.name: c for c in checks}
        wrong = sorted(((listed - failed) | (failed - listed)) & by_name.keys())  # a listed non-check: above
        for name in wrong:
            again = [r.status != "pass" for _ in range(2)
                     for r in run_checks(bdir, ex.chapter, server, [by_name[name]])]
            if all(f == (name in listed) for f in again):
                print(f"  warning: {name} went the wrong way once, then the right way twice: timing")
                continue
            if name in listed:
                problems.append(f"the starter passes {name}, which it is listed to fail (it passes by accident)")
            else:
                problems.append(f"the starter fails {name}, which is not listed (it fails for a wrong reason)")
    else:
        m = ex.measure
        if "answer" not in m or "wrong" not in m:
            problems.append("a measure exercise gives its reference 'answer' and a 'wrong' one, for this proof")
        else:
            value, how = measure(ex, bdir / "bin" / ex.chapter)
            print(f"  measured {value:g} ({how}); reference answer {m['answer']}, wrong answer {m['wrong']}")
            if not within(ex, float(m["answer"]), value):
                problems.append(f"the reference answer {m['answer']} is not accepted: measured {value:g}")
            if within(ex, float(m["wrong"]), value):
                problems.append(f"the wrong answer {m['wrong']} is accepted too: the check cannot tell")
            if within(ex, None, value):
                problems.append("an empty answer is accepted")
    print(f"{ex.id}: {time.monotonic() - t0:.1f} s")
    if problems:
        for p in problems:
            print(f"{ex.id}: {p}")
        sys.exit(1)
    print(f"{ex.id}: verified")


def cmd_prove(args, exercises):
    """For an instructor's machine: every exercise (or IDS) started, checked (it must fail), the
    reference put back (or the reference answer written), checked again (it must pass in full).
    Uses work/ID and removes it after; refuses an exercise a student has started."""
    import contextlib
    import io
    chosen = [find(exercises, i) for i in args.ids] if args.ids else [e for e in exercises if not e.handout]
    for ex in chosen:
        if ex.work.exists():
            die(f"{ex.id} is started ({rel(ex.work)}): prove would overwrite it; reset or move it first")
    ok = True
    for ex in chosen:
        line = f"{ex.id:<18} {ex.kind:<9}"
        for stage in ("starter", "reference"):
            if stage == "starter":
                ex.work.mkdir(parents=True)
                (ex.work / ex.file).write_text(starter_text(ex)) if ex.is_code else \
                    (ex.work / "answer.toml").write_text(answer_template(ex))
            elif ex.is_code:
                (ex.work / ex.file).write_text(reference_text(ex))
            else:
                (ex.work / "answer.toml").write_text(f"answer = {ex.measure['answer']}\n")
            t0 = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()):
                passed_all = check_one(ex)
            last = json.loads((ex.work / ".last-check.json").read_text())
            good = passed_all == (stage == "reference") and (stage == "reference" or last["passed"] < last["total"])
            ok &= good
            line += (f"  {stage}: {last['passed']:>2}/{last['total']:<2} {time.monotonic() - t0:5.1f} s"
                     f"{'' if good else ' WRONG'}")
        shutil.rmtree(ex.work)
        print(line, flush=True)
    print("every starter scores below the maximum, every reference the maximum" if ok else "some exercise is WRONG")
    sys.exit(0 if ok else 1)


def cmd_lint(args, exercises):
    """Cheap checks over all exercises: every pitfall is a fix exercise, enough exercises per chapter."""
    problems = []
    table = (ROOT / "docs" / "pitfalls.md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| pitfall") and not line.startswith("| ---")]
    planted = {e.pitfall for e in exercises if e.kind == "fix"}
    for row in rows:
        if row not in planted:
            problems.append(f"docs/pitfalls.md row '{row}' is no fix exercise's pitfall")
    for p in planted - set(rows):
        problems.append(f"pitfall '{p}' is not a row of docs/pitfalls.md")
    for chapter in sorted({p.parent.name for p in ROOT.glob("[0-9][0-9]-*/main.cpp")}):
        n = sum(e.chapter == chapter for e in exercises)
        if n < 3:
            problems.append(f"{chapter} has {n} exercises (at least 3)")
    teaching = (ROOT / "docs" / "teaching.md").read_text()
    for e in exercises:
        readme = (ROOT / e.chapter / "README.md").read_text()
        if not re.search(rf"\b{re.escape(e.id)}\b", readme):
            problems.append(f"{e.chapter}/README.md does not name exercise {e.id}")
        if not re.search(rf"\b{re.escape(e.id)}\b", teaching):
            problems.append(f"docs/teaching.md does not name exercise {e.id}")
    known = {e.id for e in exercises}
    for ident in sorted(set(re.findall(r"\b0[1-8]\.[a-z][a-z0-9-]*[a-z0-9]\b", teaching)) - known):
        problems.append(f"docs/teaching.md names {ident}, which is no exercise")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{len(exercises)} exercises; every pitfall row is planted; every chapter has 3 or more")


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(prog="tools/course exercise", description="the course's exercises")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("list", help="every exercise, its kind, difficulty and your status")
    s.add_argument("chapter", nargs="?", default="")
    s = sub.add_parser("start", help="your own copy of the chapter's server, with the exercise applied, in work/ID/")
    s.add_argument("id")
    s.add_argument("--force", action="store_true")
    s = sub.add_parser("check", help="build your copy and run the chapter's checks on it; Score: N/M")
    s.add_argument("id", nargs="?")
    s = sub.add_parser("hint", help="the next hint")
    s.add_argument("id")
    s = sub.add_parser("diff", help="your copy against the reference")
    s.add_argument("id")
    s = sub.add_parser("reset", help="throw your copy away and start again")
    s.add_argument("id")
    s = sub.add_parser("trace-diff", help="the first system call where your server and the reference differ")
    s.add_argument("id")
    s = sub.add_parser("grade", help="every started exercise (or IDs): points, JSON with --json FILE")
    s.add_argument("ids", nargs="*")
    s.add_argument("--json")
    s = sub.add_parser("export", help="a handout repository: the chosen exercises as starters, no solutions")
    s.add_argument("dir")
    s.add_argument("ids", nargs="*")
    s = sub.add_parser("classroom", help="write .github/classroom/autograding.json (--check: is it current?)")
    s.add_argument("--check", action="store_true")
    s = sub.add_parser("cmake-targets", help=argparse.SUPPRESS)
    s.add_argument("out")
    s = sub.add_parser("starter", help=argparse.SUPPRESS)
    s.add_argument("id")
    s.add_argument("out")
    s = sub.add_parser("verify", help="CI: the starter fails exactly its listed checks (ctest runs this)")
    s.add_argument("id")
    s.add_argument("--build-dir", required=True)
    s.add_argument("--sanitize", default="", help="the build's COURSE_SANITIZE")
    sub.add_parser("lint", help="CI: every pitfall is an exercise, every chapter has three")
    s = sub.add_parser("prove", help="instructors: start and check every exercise, then the reference")
    s.add_argument("ids", nargs="*")
    args = ap.parse_args()
    exercises = load_exercises()
    handler = {"list": cmd_list, "start": cmd_start, "check": cmd_check, "hint": cmd_hint, "diff": cmd_diff,
               "reset": cmd_reset, "trace-diff": cmd_trace_diff, "grade": cmd_grade, "export": cmd_export,
               "classroom": cmd_classroom, "cmake-targets": cmd_cmake_targets, "starter": cmd_starter,
               "verify": cmd_verify, "lint": cmd_lint, "prove": cmd_prove}[args.command]
    try:
        handler(args, exercises)
    except ValueError as e:
        die(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
