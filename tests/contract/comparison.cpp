// The behaviour matrix: collects what the contract tests measured and writes
// it as a markdown table (see comparison.hpp).
#include "comparison.hpp"

#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#ifndef COURSE_BUILD_TYPE
#define COURSE_BUILD_TYPE "unknown"
#endif

namespace course::test::comparison {
namespace {

using Key = std::pair<std::string, std::string>;  // row, column

struct Tally {
    int passed = 0, failed = 0, skipped = 0;
};

struct State {
    std::vector<std::pair<Key, std::string>> pending;  // recorded by the running test
    std::map<Key, std::string> cells;                  // finished: value and mark
    std::map<std::string, Tally> contract;             // per row: tests that recorded nothing
    std::map<std::string, std::string> descriptions;   // per row, from describe()
    std::set<std::string> contract_tests;              // their names, for the legend
    std::vector<std::string> failures;                 // full names of failed tests
    Tally all;
};

State& state() {
    static State s;
    return s;
}

std::string first_line_of(const std::string& path, const std::string& prefix) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    return "";
}

std::string trim(std::string s) {
    s.erase(0, s.find_first_not_of(" \t:"));
    s.erase(s.find_last_not_of(" \t\n") + 1);
    return s;
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

std::string machine() {
    std::string cpu = trim(first_line_of("/proc/cpuinfo", "model name"));
    if (cpu.empty()) cpu = "unknown CPU";
    utsname u{};
    ::uname(&u);
    return fmt::format("{}, {} cores, Linux {} ({})", cpu, ::sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine);
}

std::string compiler() {
#if defined(__clang__)
    return fmt::format("clang {}", __clang_version__);
#elif defined(__GNUC__)
    return fmt::format("g++ {}", __VERSION__);
#else
    return "unknown compiler";
#endif
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return fmt::format("{} {} {}", one, five, fifteen);
}

std::string build() {
    std::string b = fmt::format("{}, {}", COURSE_BUILD_TYPE, compiler());
#if defined(__SANITIZE_ADDRESS__)
    b += ", AddressSanitizer";
#endif
#if defined(__SANITIZE_THREAD__)
    b += ", ThreadSanitizer";
#endif
    return b;
}

std::string escape(const std::string& s) {  // a '|' would end the cell
    std::string out;
    for (char c : s) {
        if (c == '|') out += '\\';
        out += c;
    }
    return out;
}

class Writer : public testing::EmptyTestEventListener {
public:
    Writer(std::string path, std::vector<Row> rows, std::vector<Column> columns, std::string command)
        : path_(std::move(path)), rows_(std::move(rows)), columns_(std::move(columns)), command_(std::move(command)),
          date_(utc_now()), machine_(machine()), load_(load_average()), start_(std::chrono::steady_clock::now()) {}

    void OnTestStart(const testing::TestInfo&) override { state().pending.clear(); }

    void OnTestEnd(const testing::TestInfo& info) override {
        State& s = state();
        const testing::TestResult& r = *info.result();
        const bool failed = r.Failed(), skipped = !failed && r.Skipped();
        Tally& all = s.all;
        (failed ? all.failed : skipped ? all.skipped : all.passed)++;
        if (failed) s.failures.push_back(fmt::format("{}.{}", info.test_suite_name(), info.name()));
        if (s.pending.empty()) {  // a contract test: counted, not a column of its own
            if (info.value_param() == nullptr) return;
            Tally& t = s.contract[info.value_param()];
            (failed ? t.failed : skipped ? t.skipped : t.passed)++;
            std::string name = info.name();
            s.contract_tests.insert(name.substr(0, name.find('/')));
            return;
        }
        for (auto& [key, value] : s.pending) {
            std::string cell;
            if (failed)
                cell = "✗ " + (value.empty() ? std::string("failed before measuring") : value);
            else if (skipped)
                cell = value.empty() ? "not run" : value;
            else
                cell = value + " ✓";
            s.cells[key] = cell;
        }
        s.pending.clear();
    }

    void OnTestProgramEnd(const testing::UnitTest&) override {
        std::ofstream out(path_);
        out << document();
        out.close();
        if (out)
            fmt::print("comparison: wrote {}\n", path_);
        else
            fmt::print(stderr, "comparison: could not write {}\n", path_);
    }

private:
    std::string contract_cell(const std::string& row) const {
        auto it = state().contract.find(row);
        if (it == state().contract.end()) return "not run";
        const Tally& t = it->second;
        std::string cell = fmt::format("{}/{} {}", t.passed, t.passed + t.failed, t.failed ? "✗" : "✓");
        if (t.skipped) cell += fmt::format(" ({} n/a)", t.skipped);
        return cell;
    }

    std::string document() const {
        const State& s = state();
        auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        std::ostringstream md;
        md << "# Behaviour matrix: every I/O model against one contract\n\n"
           << "Generated by `tools/compare-models.sh`: do not edit by hand. Every cell below is a value\n"
           << "measured in the run described here, by the contract tests in\n"
           << "[tests/contract/contract_test.cpp](../tests/contract/contract_test.cpp), which also state what\n"
           << "each model is expected to show (its `Traits`). Run it again on your machine: the counts\n"
           << "should match closely, the CPU and memory figures roughly.\n\n"
           << "| Run | |\n|---|---|\n"
           << "| Date | " << date_ << " |\n"
           << "| Machine | " << escape(machine_) << " |\n"
           << "| Load average at start | " << load_ << " (1, 5, 15 min; other work on the machine skews CPU figures) |\n"
           << "| Build | " << build() << " |\n"
           << "| Command | " << escape(command_) << " |\n"
           << fmt::format("| Tests | {} passed, {} failed, {} not applicable or not run; {:.0f} s |\n\n",
                          s.all.passed, s.all.failed, s.all.skipped, secs);

        md << "| Model |";
        for (const auto& c : columns_) md << " " << escape(c.name) << " |";
        md << "\n|---|";
        for (size_t i = 0; i < columns_.size(); ++i) md << "---|";
        md << "\n";
        for (const auto& r : rows_) {
            md << "| **" << escape(r.name) << "** |";
            for (const auto& c : columns_) {
                std::string cell;
                if (c.name == "Contract") {
                    cell = contract_cell(r.name);
                } else {
                    auto it = s.cells.find({r.name, c.name});
                    cell = it == s.cells.end() ? "not run" : it->second;
                }
                md << " " << escape(cell) << " |";
            }
            md << "\n";
        }

        md << "\n✓: measured, and what the model is expected to show (the test passed). "
           << "✗: the test failed (see below). n/a: the property does not apply to the model. "
           << "not run: the test did not run (filtered out, or a heavy part without COURSE_HEAVY=1).\n\n"
           << "## The models\n\n";
        for (const auto& r : rows_) {
            md << "- **" << r.name << "**: `" << r.command << "` ([chapter](../" << r.chapter << "/README.md))";
            auto d = s.descriptions.find(r.name);
            if (d != s.descriptions.end()) md << ". " << d->second;
            md << "\n";
        }
        md << "\n## What each column measures\n\n";
        for (const auto& c : columns_) md << "- **" << c.name << "**: " << c.legend << "\n";
        md << "\nThe shared contract tests, counted in the Contract column: `"
           << fmt::format("{}", fmt::join(s.contract_tests, "`, `")) << "`.\n";
        md << "\n## Failures\n\n";
        if (s.failures.empty()) md << "None.\n";
        for (const auto& f : s.failures) md << "- `" << f << "`\n";
        return md.str();
    }

    std::string path_;
    std::vector<Row> rows_;
    std::vector<Column> columns_;
    std::string command_, date_, machine_, load_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace

bool heavy() {
    const char* md = std::getenv("COMPARISON_MD");
    const char* h = std::getenv("COURSE_HEAVY");
    return (md != nullptr && *md != '\0') || (h != nullptr && std::string(h) == "1");
}

void record(const std::string& row, const std::string& column, const std::string& value) {
    auto& pending = state().pending;
    for (auto& [key, v] : pending)
        if (key == Key{row, column}) {
            v = value;
            return;
        }
    pending.push_back({{row, column}, value});
}

void describe(const std::string& row, const std::string& text) { state().descriptions[row] = text; }

void install_if_requested(std::vector<Row> rows, std::vector<Column> columns, std::string command) {
    const char* path = std::getenv("COMPARISON_MD");
    if (path == nullptr || *path == '\0') return;
    testing::UnitTest::GetInstance()->listeners().Append(
        new Writer(path, std::move(rows), std::move(columns), std::move(command)));
}

}  // namespace course::test::comparison
