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
//
// The words around the values (the introduction, what each column measures)
// are not in C++: they are read from comparison-prose.md when the table is
// written, so they can be edited, or translated, without a rebuild.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace course::test::comparison {

struct Row {
    std::string name;     // the test parameter's name, e.g. "03-select" (what PrintTo prints)
    std::string command;  // how that server was started, e.g. "03-select --port 0"
    std::string chapter;  // its directory, e.g. "03-select", for a link to the README
};

// The prose of the page, from comparison-prose.md (its own first lines say how it is laid out).
struct Prose {
    std::string intro;           // the paragraph under the title, with its line breaks
    std::string marks;           // under the table: what ✓, ✗, n/a and "not run" mean
    std::string contract_tests;  // the words before the list of the shared contract tests
    std::map<std::string, std::string> legends;  // per column: what it measures, what each model should show
};

// Reads the prose from `path`. Throws std::runtime_error, naming the file,
// if it cannot be read, lacks a section, has one it does not know, or lacks
// a legend for one of `columns` or has one for a column not among them.
Prose read_prose(const std::string& path, const std::vector<std::string>& columns);

// Everything on the page but the prose, each value already written as text.
struct Page {
    std::string date, machine, load, build, command;  // the run: when, where, how
    int passed = 0, failed = 0, skipped = 0;          // tests, of all kinds
    double seconds = 0;                               // how long they took
    std::vector<Row> rows;
    std::vector<std::string> columns;                                  // in table order
    std::map<std::pair<std::string, std::string>, std::string> cells;  // {row, column}: missing is "not run"
    std::map<std::string, std::string> descriptions;                   // per row, from describe()
    std::set<std::string> contract_tests;                              // counted in the Contract column
    std::vector<std::string> failures;                                 // full names of failed tests
};

// The markdown of docs/comparison.md.
std::string render(const Page& page, const Prose& prose);

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

// If COMPARISON_MD is set, reads the prose from `prose_path` (read_prose()
// throws if it is not right) and installs the listener that writes the page
// when the test program ends. `command`: how this run was started, for the
// header. The column named "Contract" counts the tests that record nothing.
// Call after testing::InitGoogleTest.
void install_if_requested(std::vector<Row> rows, std::vector<std::string> columns, std::string command,
                          const std::string& prose_path);

}  // namespace course::test::comparison
