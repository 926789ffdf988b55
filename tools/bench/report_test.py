#!/usr/bin/env python3
"""Tests of the report half of tools/benchmark, on the committed docs/benchmarks/results.json (no
server runs): `tools/benchmark --from-json` into a temporary directory must give every table, with
cells that agree with the raw runs, and exactly the committed docs/benchmarks.md; the analysis must
be dated for that results.json, and a report from any other run must say that it is not."""
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from bench import common, plots, report  # noqa: E402

RESULTS = ROOT / "docs" / "benchmarks" / "results.json"
PAGE = ROOT / "docs" / "benchmarks.md"
IMAGE = re.compile(r"^!\[[^\]]*\]\(benchmarks/[\w-]+\.svg\)$")


def generate(results, out):
    """tools/benchmark --from-json RESULTS --out OUT --no-plots; returns the page it wrote."""
    r = subprocess.run(["sh", str(ROOT / "tools" / "benchmark"), "--from-json", str(results), "--out", str(out),
                        "--no-plots"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"tools/benchmark --from-json failed ({r.returncode}):\n{r.stderr}")
    return (Path(out) / "benchmarks.md").read_text()


def without_images(text):
    """The page without its plot lines (and the blank line after each): plots need gnuplot."""
    out, skip = [], False
    for line in text.splitlines():
        if skip and not line:
            skip = False
            continue
        skip = bool(IMAGE.match(line))
        if not skip:
            out.append(line)
    return out


def tables(text):
    """{heading of the section: [table, ...]} for the generated sections (the analysis left out);
    a table is its list of rows, a row the list of its cells."""
    found, section, cur = {}, None, None
    for line in text.splitlines() + [""]:
        if line.startswith("## "):
            section = line[3:]
        if line.startswith("|") and section != "Analysis":
            if cur is None:
                cur = []
                found.setdefault(section, []).append(cur)
            cur.append([c.strip() for c in line.strip("|").split("|")])
        else:
            cur = None
    return found


class ReportFromCommittedResults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.before = RESULTS.read_bytes()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.page = generate(RESULTS, cls.tmp.name)
        cls.raw = json.loads(cls.before)
        cls.tables = tables(cls.page)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_results_json_is_only_read(self):
        self.assertEqual(RESULTS.read_bytes(), self.before, "the report changed docs/benchmarks/results.json")
        copy = Path(self.tmp.name) / "benchmarks" / "results.json"
        self.assertEqual(copy.read_bytes(), self.before, "--from-json must copy results.json as it is")

    def test_every_table_is_there(self):
        res = common.Results(self.raw)
        counts = {"Machine": 1, "Targets": 1}
        for s in common.SCENARIOS:
            heading = next((h for h in self.tables if h and h.startswith(s + " ")), None)
            self.assertIsNotNone(heading, f"no section for {s}")
            counts[heading] = {"S1": 6, "S2": 3}.get(s, 1)
            labels = [res.servers[k]["label"] for k in res.keys(s)]
            first = self.tables[heading][0]
            self.assertEqual([row[0] for row in first[2:]], labels, f"{s}: one row per server, in order")
        self.assertEqual({h: len(t) for h, t in self.tables.items()}, counts)
        self.assertEqual(len(self.tables["Targets"][0]) - 2, len(report.targets(res)))

    def test_s1_cells_agree_with_the_raw_runs(self):
        """Recomputed here from the runs: median (min-max) of round trips per second, or n/a."""
        res = common.Results(self.raw)
        (heading,) = [h for h in self.tables if h and h.startswith("S1 ")]
        rows = {row[0]: row[1:] for row in self.tables[heading][0][2:]}
        checked = 0
        for k in res.keys("S1"):
            for j, n in enumerate(self.raw["config"]["s1_conns"]):
                v = [r["bench"]["round_trips_per_s"] for r in self.raw["runs"]
                     if r["scenario"] == "S1" and r["server"] == k and r["point"] == n and r["ok"]]
                if not v:
                    self.assertEqual(rows[res.servers[k]["label"]][j], "n/a")
                    continue
                want = "{} ({}-{})".format(*(f"{x / 1000:.1f}k" for x in (statistics.median(v), min(v), max(v))))
                self.assertEqual(rows[res.servers[k]["label"]][j], want, f"S1 {k} at {n} connections")
                checked += 1
        self.assertGreater(checked, 30)

    def test_the_committed_page_is_what_the_report_makes(self):
        want, got = without_images(PAGE.read_text()), without_images(self.page)
        for i, (a, b) in enumerate(zip(want, got)):
            self.assertEqual(a, b, f"docs/benchmarks.md line {i + 1} (of the page without plot lines) differs "
                                   "from what tools/benchmark --report-only makes of results.json: run it")
        self.assertEqual(len(want), len(got), "docs/benchmarks.md and the generated page differ in length")

    def test_the_analysis_is_for_this_run_and_included(self):
        written, discussed, body = report.read_analysis(report.ANALYSIS)
        self.assertEqual(discussed, self.raw["machine"]["date"],
                         "docs/benchmarks-analysis.md discusses another run than docs/benchmarks/results.json")
        self.assertIn(f"Written by hand on {written} for this run", self.page)
        self.assertIn(body, self.page)
        self.assertNotIn("these tables are from", self.page)


@unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed (tools/benchmark installs gnuplot-nox)")
class PlotsFromCommittedResults(unittest.TestCase):
    def test_the_committed_plots_are_what_gnuplot_draws(self):
        with tempfile.TemporaryDirectory() as d:
            drawn, problems = plots.make(common.load(RESULTS), d)
            self.assertEqual(problems, [])
            self.assertEqual(sorted(drawn), sorted(plots.FILES.values()))
            for name in drawn:
                self.assertEqual((Path(d) / name).read_bytes(), (RESULTS.parent / name).read_bytes(),
                                 f"docs/benchmarks/{name} is not what the plots make of results.json")


class ReportFromAnotherRun(unittest.TestCase):
    def test_says_the_analysis_is_older_than_the_tables(self):
        raw = json.loads(RESULTS.read_text())
        _, discussed, _ = report.read_analysis(report.ANALYSIS)
        raw["machine"]["date"] = "2031-01-01 00:00 UTC"
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "results.json"
            src.write_text(json.dumps(raw))
            page = generate(src, Path(d) / "out")
            same = generate(RESULTS, Path(d) / "same")
        self.assertIn(f"**The analysis below was written for the run of {discussed}; these tables are from "
                      "2031-01-01 00:00 UTC.**", page)
        self.assertNotIn("for this run", page)
        # the tables do not depend on the date
        self.assertEqual(tables(page), tables(same))


if __name__ == "__main__":
    unittest.main()
