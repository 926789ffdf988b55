#!/usr/bin/env python3
"""Tests of tools/exercise.py's own machinery, on fakes: the check runner (a check that hangs, a test
program that crashes), the starter edits, the failure summaries. The exercises themselves are
proven by the exercise_ID tests (verify), on the real chapters."""
import os
import stat
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["COURSE_CHECK_TIMEOUT"] = "2"
import exercise  # noqa: E402

# A stand-in for a GoogleTest program: A passes, B fails, C hangs, D crashes the program, E passes
# (so the runner must restart the program after C and after D to get E's verdict).
FAKE = r'''#!/bin/sh
filter=${1#--gtest_filter=}
for t in $(echo "$filter" | tr ':' ' '); do
  echo "[ RUN      ] $t"
  case $t in
    S.A) echo "[       OK ] S.A (1 ms)" ;;
    S.B) echo "x.cpp:7: Failure"; echo "Value of: ok"; echo "  Actual: false"; echo "Expected: true";
         echo "the server closed before echoing the last 4 bytes"; echo "[  FAILED  ] S.B, where GetParam() = x (2 ms)" ;;
    S.C) exec sleep 60 ;;
    S.D) kill -SEGV $$ ;;
    S.E) echo "[       OK ] S.E (1 ms)" ;;
  esac
done
'''


class RunnerTest(unittest.TestCase):
    def test_every_check_gets_a_verdict_even_after_a_hang_and_a_crash(self):
        with tempfile.TemporaryDirectory() as d:
            exe = Path(d) / "bin" / "fake_test"
            exe.parent.mkdir()
            exe.write_text(FAKE)
            exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
            checks = [exercise.Check("fake_test", n) for n in ("S.A", "S.B", "S.C", "S.D", "S.E")]
            results = exercise.run_checks(Path(d), "05-epoll-lt", Path("/bin/true"), checks)
        got = {r.check.name: r.status for r in results}
        self.assertEqual(got, {"S.A": "pass", "S.B": "fail", "S.C": "timeout", "S.D": "error", "S.E": "pass"})
        self.assertEqual(results[1].message, "the server closed before echoing the last 4 bytes")
        self.assertLess(results[2].seconds, 10)


class EditsTest(unittest.TestCase):
    SOURCE = "int a;\n    // #region body\n    int f() {\n        return 1;\n    }\n    // #endregion body\nint b;\n"

    def exercise_with(self, edits):
        return exercise.Exercise(id="05.x", chapter="05-epoll-lt", kind="fix", title="t", difficulty=1,
                                 hints=["a", "b"], points=10, file="main.cpp", edits=edits)

    def test_a_region_stub_keeps_the_markers_and_takes_their_indentation(self):
        ex = self.exercise_with([{"region": "body", "stub": "int f() {\n    throw 1;\n}\n"}])
        self.assertEqual(exercise.apply_edits(ex, self.SOURCE),
                         "int a;\n    // #region body\n    int f() {\n        throw 1;\n    }\n"
                         "    // #endregion body\nint b;\n")

    def test_a_bug_must_match_exactly_once(self):
        ex = self.exercise_with([{"find": "int ", "replace": "long "}])
        with self.assertRaisesRegex(ValueError, "occurs 3 times"):
            exercise.apply_edits(ex, self.SOURCE)
        ex = self.exercise_with([{"find": "return 1;", "replace": "return 2;"}])
        self.assertIn("return 2;", exercise.apply_edits(ex, self.SOURCE))

    def test_a_missing_region_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "no region 'gone'"):
            exercise.apply_edits(self.exercise_with([{"region": "gone", "stub": "x"}]), self.SOURCE)


class WordsTest(unittest.TestCase):
    def test_test_names_read_as_sentences(self):
        c = exercise.Check("contract_test", "Contract/ContractTest.SigpipeIsIgnoredSoAWriteToAGonePeerCannotKillTheServer/05_epoll_lt")
        self.assertEqual(c.words, "SIGPIPE is ignored so a write to a gone peer cannot kill the server [05-epoll-lt]")
        self.assertEqual(exercise.Check("x", "Chapter03.RefusesDescriptorsBeyondFdSetsizeAndServesTheRest").words,
                         "Refuses descriptors beyond FD_SETSIZE and serves the rest")

    def test_a_stub_that_stopped_the_server_is_named(self):
        out = "x.cpp:1: Failure\nValue of: e.clean()\n05-epoll-lt: TODO(05.interest): write update_interest\n"
        self.assertEqual(exercise.summarise_failure(out),
                         "the server stopped: 05-epoll-lt: TODO(05.interest): write update_interest")

    def test_without_a_message_the_compared_values_are_shown(self):
        out = ("x.cpp:9: Failure\nExpected equality of these values:\n  echoed.size()\n    Which is: 0\n"
               "  payload.size()\n    Which is: 8\n")
        self.assertEqual(exercise.summarise_failure(out), "echoed.size() = 0, payload.size() = 8")


if __name__ == "__main__":
    unittest.main()
