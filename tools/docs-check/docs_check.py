#!/usr/bin/env python3
"""docs-check: the diagrams in the Markdown docs render, and every test they cite exists.

  docs_check.py mermaid ROOT          every ```mermaid block of ROOT/**/*.md parses with mermaid's
                                      own parser (parse-mermaid.mjs, run by node, from the packages
                                      that `tools/course deps` installs in tools/docs-check/node_modules)
  docs_check.py tests ROOT PROGRAM... every test that ROOT/**/*.md cites is one of the tests that
                                      the GoogleTest programs PROGRAM... list (--gtest_list_tests)

Each problem is reported as FILE:LINE: message, FILE relative to ROOT; then, only when the exit
status is 1, one summary line. Exit status: 0 all good, 1 problems found, 2 bad arguments or a
program that cannot be run, 77 skipped: no node (or too old, or its packages are missing), which
is reported and becomes a failure (1) when CI=true.

Which Markdown is read: ROOT/**/*.md, but not in directories named build*, node_modules, hidden
ones (.git), ROOT/work (students' exercise copies), or any whose name ends in "testdata" (the
fixtures of this check and of doc-regions, broken on purpose; the tests check them one by one).
Fenced code blocks are ``` or ~~~ fences, indented or not; a fence inside a longer fence is text.

What counts as citing a test. Only code (inline `code` spans and fenced blocks) is read, never
plain prose, and a test is named the way GoogleTest lists it: SUITE.NAME, where a parameterised
suite has its instantiation in front (Contract/ContractTest) and each case its parameter behind
(NAME/03_select). Call the build's suites with that prefix and any /N type index removed its
"base suites" (ContractTest, Chapter05, Pollers/Runtime -> Runtime).
  1. A whole span of the form [PREFIX/]SUITE.NAME[/PARAM] is a citation when SUITE is a base suite
     of the build, or looks like one: ChapterNN with two digits, or a capitalised name ending in
     Test or Tests. It must name an existing test, PREFIX and PARAM included when given
     (ContractTest.X and Contract/ContractTest.X both name every instantiation of X).
     A NAME of one capital letter is a placeholder (`ChapterNN.X`, `Contract/ContractTest.X`),
     not a citation.
  2. A whole span that is one UpperCamelCase word (letters and digits, a capital first, at least
     one lower-case letter) of three or more parts is a bare test name: a part is a capital with
     the lower-case letters and digits after it, or a run of capitals, an acronym
     (`ASlowReaderStallsNobodyElse` has five parts, `VmRSS` two). It must be the NAME of some test
     of the build, unless it is one of the words in NOT_TESTS below, which the docs use for code:
     `SetReadDeadline` (Go), a build type. All-capitals words (`EPOLLOUT`) and words of one or
     two parts (`PollDesc`) are never test names here.
     (The list is written by hand on purpose: a renamed test's old name often lives on in a
     comment or a test's own expectations, so "it occurs in the code" would hide it.)
  3. Anywhere in code (inside longer spans, and in fenced blocks other than mermaid), a token
     [PREFIX/]SUITE.NAME[/PARAM] whose SUITE is exactly a suite of the build is a citation, unless
     a * or ? follows it (a --gtest_filter pattern).
The tests themselves are the truth: the names come from the programs, not from the sources.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = 77
MIN_NODE = 18

# ------------------------------------------------------------------ reading the Markdown


def skipped_dir(root, path):
    name = path.name
    return (name.startswith("build") or name.startswith(".") or name == "node_modules"
            or name.endswith("testdata") or (path.parent == root and name == "work"))


def markdown_files(root):
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not skipped_dir(root, here / d))
        found += [here / f for f in sorted(filenames) if f.endswith(".md")]
    return found


FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def split_blocks(lines):
    """Yields ("fence", info, first_body_line, body_lines) and ("text", first_line, lines).
    Line numbers are 1-based. An unclosed fence runs to the end of the file, as on GitHub."""
    i, n = 0, len(lines)
    text_start, text = 1, []
    while i < n:
        m = FENCE.match(lines[i])
        if not m or (m.group(2)[0] == "`" and "`" in m.group(3)):
            text.append(lines[i])
            i += 1
            continue
        if text:
            yield ("text", text_start, text)
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        closing = re.compile(r"^\s*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        body, j = [], i + 1
        while j < n and not closing.match(lines[j]):
            # The fence's own indentation is not part of the text (CommonMark).
            line = lines[j]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            j += 1
        yield ("fence", info.split()[0].lower() if info else "", i + 2, body)
        i = j + 1
        text_start, text = i + 1, []
    if text:
        yield ("text", text_start, text)


def code_spans(first_line, lines):
    """The inline code spans of some text lines: (line, content), CommonMark's pairing of
    backtick runs (a run of n backticks is closed by the next run of exactly n)."""
    # Paragraphs may carry a span across a line break; a blank line ends every span.
    spans = []
    para, para_line = [], first_line
    for k, line in enumerate(lines + [""]):
        if line.strip():
            if not para:
                para_line = first_line + k
            para.append(line)
            continue
        if para:
            spans += _spans_of(para_line, "\n".join(para))
            para = []
    return spans


def _spans_of(first_line, text):
    runs = [(m.start(), len(m.group())) for m in re.finditer(r"(?<!\\)`+", text)]
    spans, k = [], 0
    while k < len(runs):
        start, length = runs[k]
        close = next((c for c in range(k + 1, len(runs)) if runs[c][1] == length), None)
        if close is None:
            k += 1
            continue
        content = text[start + length:runs[close][0]].replace("\n", " ").strip()
        spans.append((first_line + text.count("\n", 0, start), content))
        k = close + 1
    return spans


def read_lines(path):
    return path.read_text(encoding="utf-8").split("\n")


# ------------------------------------------------------------------ mermaid


def node_problem():
    """Why the mermaid check cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed (`tools/course deps` installs it)"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(version.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return f"{node} --version did not print a version"
    if major < MIN_NODE:
        return f"node {version.strip()} is too old, {MIN_NODE} or newer is needed"
    for package in ("mermaid", "dompurify"):
        if not (HERE / "node_modules" / package / "package.json").is_file():
            return (f"the npm package {package} is not in {HERE / 'node_modules'} "
                    "(`tools/course deps` installs it)")
    return None


def check_mermaid(root):
    blocks = []  # (file, fence line, first body line, text)
    for md in markdown_files(root):
        for block in split_blocks(read_lines(md)):
            if block[0] == "fence" and block[1] == "mermaid":
                blocks.append((md.relative_to(root), block[2] - 1, block[2], "\n".join(block[3]) + "\n"))
    if not blocks:
        print(f"docs-check: no mermaid blocks under {root}")
        return 0

    why = node_problem()
    if why:
        if os.environ.get("CI") == "true":
            print(f"docs-check: error: {why}; with CI=true the mermaid check must run", file=sys.stderr)
            return 1
        print(f"docs-check: SKIPPED: the {len(blocks)} mermaid blocks were not parsed: {why}")
        return SKIP

    run = subprocess.run(["node", str(HERE / "parse-mermaid.mjs")], input=json.dumps([b[3] for b in blocks]),
                         capture_output=True, text=True, timeout=120)
    try:
        results = json.loads(run.stdout)
        assert run.returncode == 0 and len(results) == len(blocks)
    except (ValueError, AssertionError):
        print(f"docs-check: error: parse-mermaid.mjs failed (status {run.returncode}):\n{run.stderr}", file=sys.stderr)
        return 2

    bad = 0
    for (md, fence_line, body_line, text), error in zip(blocks, results):
        if error is None:
            continue
        bad += 1
        # Point at the line mermaid names (counted from the block's first line), or at the one that
        # holds the offset it names; else at the fence.
        line = fence_line
        if m := re.search(r"\bon line (\d+)", error):
            line = body_line + int(m.group(1)) - 1
        elif m := re.search(r"\bat offset: (\d+)", error):
            line = body_line + text.count("\n", 0, int(m.group(1)))
        message = error.strip().replace("\n", "\n    ")
        print(f"{md}:{line}: {message}")
    files = len({b[0] for b in blocks})
    if bad:
        print(f"docs-check: {bad} of {len(blocks)} mermaid blocks do not parse")
        return 1
    print(f"docs-check: {len(blocks)} mermaid blocks in {files} files parse")
    return 0


# ------------------------------------------------------------------ cited tests

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
QUALIFIED = re.compile(rf"^(?:(?P<prefix>{IDENT})/)?(?P<suite>{IDENT})\.(?P<name>{IDENT})(?:/(?P<param>\w+))?$")
BARE = re.compile(r"^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$")
PART = re.compile(r"[A-Z][a-z0-9]+|[A-Z]+(?![a-z0-9])|[A-Z]+(?=[A-Z][a-z0-9])")
SUITE_LIKE = re.compile(r"^(?:Chapter[0-9]{2}|[A-Z]\w*Tests?)$")
# Bare words of rule 2 that name code, not tests. Add a word here only if it is not a test.
NOT_TESTS = frozenset({
    "ErrNotPollable", "SetReadDeadline", "SetWriteDeadline",  # Go's internal/poll and net.Conn
    "RelWithDebInfo",  # a CMake build type
})


class Tests:
    """The tests of the build, as --gtest_list_tests prints them."""

    def __init__(self):
        self.full = set()   # "Contract/ContractTest.X/03_select", "Chapter05.Y"
        self.suites = set()  # "Contract/ContractTest", "Chapter05"
        self.bases = {}      # base suite -> {(suite, name, param)}
        self.names = set()   # "X", "Y"

    def add(self, suite, case):
        name, _, param = case.partition("/")
        parts = suite.split("/")
        while len(parts) > 1 and parts[-1].isdigit():  # typed tests: Suite/0
            parts.pop()
        self.full.add(f"{suite}.{case}")
        self.suites.add(suite)
        self.bases.setdefault(parts[-1], set()).add((suite, name, param))
        self.names.add(name)

    def exists(self, prefix, suite, name, param):
        for s, n, p in self.bases.get(suite, ()):
            if n == name and (param is None or p == param) and (prefix is None or s == f"{prefix}/{suite}"):
                return True
        return False


def list_tests(programs):
    tests = Tests()
    for program in programs:
        try:
            run = subprocess.run([program, "--gtest_list_tests"], capture_output=True, text=True, timeout=60)
        except OSError as e:
            print(f"docs-check: error: cannot run {program} ({e.strerror}); build the tests first", file=sys.stderr)
            return None
        if run.returncode != 0:
            print(f"docs-check: error: {program} --gtest_list_tests failed (status {run.returncode}):\n{run.stderr}",
                  file=sys.stderr)
            return None
        suite = None
        for line in run.stdout.splitlines():
            if re.match(r"^\S+\.$", line.split("#")[0].rstrip()):  # "Suite." (maybe "  # TypeParam = ...")
                suite = line.split("#")[0].rstrip()[:-1]
            elif line.startswith("  ") and suite:  # "  Name/param  # GetParam() = ..."
                tests.add(suite, line.split("#")[0].strip())
    if not tests.full:
        print(f"docs-check: error: no tests listed by {' '.join(programs)}", file=sys.stderr)
        return None
    return tests


def check_span(span, tests):
    """Rules 1 and 2 for a whole span: "" if it cites an existing test, else the problem; False if
    it is a placeholder or in NOT_TESTS (no test in it), None if it has neither form."""
    m = QUALIFIED.match(span)
    if m:
        prefix, suite, name, param = m.group("prefix", "suite", "name", "param")
        if suite not in tests.bases and not SUITE_LIKE.match(suite):
            return None
        if re.fullmatch(r"[A-Z]", name):
            return False  # a placeholder
        return "" if tests.exists(prefix, suite, name, param) else f"no test {span} in this build"
    if BARE.match(span) and len(PART.findall(span)) >= 3:
        if span in tests.names:
            return ""
        if span in NOT_TESTS:
            return False
        return f"no test named {span} in this build (if it is not a test: NOT_TESTS in docs_check.py)"
    return None


def tokens_in_code(text, tests):
    """Rule 3: SUITE.NAME tokens of the build's suites inside longer code."""
    for m in re.finditer(rf"(?<![\w/.])((?:{IDENT}/)?{IDENT})\.({IDENT})(?:/(\w+))?(?![\w*?/.])", text):
        suite, name, param = m.group(1), m.group(2), m.group(3)
        if suite in tests.suites or suite in tests.bases:
            prefix, _, base = suite.rpartition("/")
            yield m.group(0), prefix or None, base, name, param


def check_tests(root, programs):
    tests = list_tests(programs)
    if tests is None:
        return 2
    problems, cited, files = [], 0, 0
    for md in markdown_files(root):
        rel = md.relative_to(root)
        before = cited
        for block in split_blocks(read_lines(md)):
            if block[0] == "text":
                for line, span in code_spans(block[1], block[2]):
                    problem = check_span(span, tests)
                    if problem is False:
                        continue
                    if problem is not None:
                        cited += 1
                        if problem:
                            problems.append(f"{rel}:{line}: {problem}")
                        continue
                    for token, prefix, suite, name, param in tokens_in_code(span, tests):
                        cited += 1
                        if not tests.exists(prefix, suite, name, param):
                            problems.append(f"{rel}:{line}: no test {token} in this build")
            elif block[1] != "mermaid":
                for k, line_text in enumerate(block[3]):
                    for token, prefix, suite, name, param in tokens_in_code(line_text, tests):
                        cited += 1
                        if not tests.exists(prefix, suite, name, param):
                            problems.append(f"{rel}:{block[2] + k}: no test {token} in this build")
        files += cited > before
    for p in problems:
        print(p)
    if problems:
        print(f"docs-check: {len(problems)} of {cited} cited tests do not exist "
              f"(the tests of {len(programs)} programs, {len(tests.full)} in all)")
        return 1
    print(f"docs-check: {cited} citations in {files} files checked against {len(tests.full)} tests "
          f"of {len(programs)} programs, all exist")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "mermaid" and len(argv) == 2:
        return check_mermaid(Path(argv[1]).resolve())
    if len(argv) >= 3 and argv[0] == "tests":
        return check_tests(Path(argv[1]).resolve(), argv[2:])
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
