// The behaviour matrix (docs/comparison.md, written by tools/compare-models.sh).
//
// Contract tests record what they measured for the server they run against:
//
//   comparison::record("03-select", "Idle CPU", "0.0 %");
//
// When the environment variable COMPARISON_MD names a file, a GoogleTest
// listener collects these values and, when the tests end, writes a markdown
// table there: one row per server, one column per property. Each cell holds
// the value measured in this run and a mark added from the test's result:
// ✓ the test passed (the value is what the server's traits expect), ✗ it
// failed. A cell whose test did not run says "not run". Tests that record
// nothing are the shared contract; they are counted in a "Contract" column.
// Without COMPARISON_MD nothing is written and record() only stores a string.
#pragma once

#include <string>
#include <vector>

namespace course::test::comparison {

struct Row {
    std::string name;     // the test parameter's name, e.g. "03-select" (what PrintTo prints)
    std::string command;  // how that server was started, e.g. "03-select --port 0"
    std::string chapter;  // its directory, e.g. "03-select", for a link to the README
};

struct Column {
    std::string name;    // the table header
    std::string legend;  // under the table: what was measured, how, and what each model should show
};

// True when the heavy measurements (10,000 connections, idle CPU over 1 s)
// should run: COMPARISON_MD is set, or COURSE_HEAVY=1. Otherwise tests that
// need them skip those parts, which keeps the CI run short.
bool heavy();

// Records `value` for `row` in `column` while a test runs; the pass/fail mark
// is added when that test ends. A test records "" for each of its columns
// first, so that a failure before the measurement still shows in the cell. A
// test that skips after recording a value (e.g. "n/a: ...") shows that value.
void record(const std::string& row, const std::string& column, const std::string& value);

// What the server says it is (its --help), for the list of models under the
// table. Not a measurement: a test that only describes still counts as contract.
void describe(const std::string& row, const std::string& text);

// If COMPARISON_MD is set, installs the listener that writes the table when
// the test program ends. `command`: how this run was started, for the header.
// Call after testing::InitGoogleTest.
void install_if_requested(std::vector<Row> rows, std::vector<Column> columns, std::string command);

}  // namespace course::test::comparison
