// The behaviour matrix: collects what the contract tests measured and writes
// it as a markdown table (see comparison.hpp).
#include "comparison.hpp"

#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
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

std::string strip(std::string s) {  // spaces and tabs at both ends
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
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
    Writer(std::string path, std::vector<Row> rows, std::vector<std::string> columns, std::string command, Prose prose)
        : path_(std::move(path)), rows_(std::move(rows)), columns_(std::move(columns)), command_(std::move(command)),
          prose_(std::move(prose)), date_(utc_now()), machine_(machine()), load_(load_average()),
          start_(std::chrono::steady_clock::now()) {}

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
        out << render(page(), prose_);
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

    Page page() const {
        const State& s = state();
        Page p;
        p.date = date_;
        p.machine = machine_;
        p.load = load_;
        p.build = build();
        p.command = command_;
        p.passed = s.all.passed;
        p.failed = s.all.failed;
        p.skipped = s.all.skipped;
        p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        p.rows = rows_;
        p.columns = columns_;
        for (const auto& r : rows_)
            for (const auto& c : columns_) {
                if (c == "Contract") {
                    p.cells[{r.name, c}] = contract_cell(r.name);
                } else if (auto it = s.cells.find({r.name, c}); it != s.cells.end()) {
                    p.cells[{r.name, c}] = it->second;
                }
            }
        p.descriptions = s.descriptions;
        p.contract_tests = s.contract_tests;
        p.failures = s.failures;
        return p;
    }

    std::string path_;
    std::vector<Row> rows_;
    std::vector<std::string> columns_;
    std::string command_;
    Prose prose_;
    std::string date_, machine_, load_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace

Prose read_prose(const std::string& path, const std::vector<std::string>& columns) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read it", path));
    std::vector<std::pair<std::string, std::vector<std::string>>> sections;  // heading, lines: in file order
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0)
            sections.push_back({strip(line.substr(3)), {}});
        else if (!sections.empty())  // the note above the first heading is not copied
            sections.back().second.push_back(line);
    }

    std::vector<std::string> problems;
    std::set<std::string> seen;
    Prose prose;
    bool intro = false, marks = false, contract = false;
    for (auto& [heading, lines] : sections) {
        while (!lines.empty() && strip(lines.back()).empty()) lines.pop_back();
        size_t first = 0;
        while (first < lines.size() && strip(lines[first]).empty()) ++first;
        std::string as_written, one_line;  // the introduction keeps its line breaks; the rest is one line each
        for (size_t i = first; i < lines.size(); ++i) {
            std::string l = lines[i];
            l.erase(l.find_last_not_of(" \t") + 1);
            as_written += (i > first ? "\n" : "") + l;
            if (!strip(l).empty()) one_line += (one_line.empty() ? "" : " ") + strip(l);
        }
        if (!seen.insert(heading).second) problems.push_back(fmt::format("\"## {}\" comes twice", heading));
        if (one_line.empty()) problems.push_back(fmt::format("\"## {}\" has no text", heading));
        if (heading == "Introduction") {
            prose.intro = as_written;
            intro = true;
        } else if (heading == "Marks") {
            prose.marks = one_line;
            marks = true;
        } else if (heading == "Contract tests") {
            prose.contract_tests = one_line;
            contract = true;
        } else if (heading.rfind("Column: ", 0) == 0) {
            prose.legends[heading.substr(8)] = one_line;
        } else {
            problems.push_back(fmt::format("\"## {}\" is not a place on the page", heading));
        }
    }
    for (auto [have, heading] : {std::pair{intro, "Introduction"}, {marks, "Marks"}, {contract, "Contract tests"}})
        if (!have) problems.push_back(fmt::format("no \"## {}\"", heading));
    for (const auto& c : columns)
        if (prose.legends.count(c) == 0) problems.push_back(fmt::format("no \"## Column: {}\"", c));
    for (const auto& [name, legend] : prose.legends)
        if (std::find(columns.begin(), columns.end(), name) == columns.end())
            problems.push_back(fmt::format("\"## Column: {}\" is not a column of the table", name));
    if (!problems.empty()) throw std::runtime_error(fmt::format("{}: {}", path, fmt::join(problems, "; ")));
    return prose;
}

std::string render(const Page& p, const Prose& prose) {
    std::ostringstream md;
    md << "# Behaviour matrix: every I/O model against one contract\n\n"
       << prose.intro << "\n\n"
       << "| Run | |\n|---|---|\n"
       << "| Date | " << p.date << " |\n"
       << "| Machine | " << escape(p.machine) << " |\n"
       << "| Load average at start | " << p.load << " (1, 5, 15 min; other work on the machine skews CPU figures) |\n"
       << "| Build | " << p.build << " |\n"
       << "| Command | " << escape(p.command) << " |\n"
       << fmt::format("| Tests | {} passed, {} failed, {} not applicable or not run; {:.0f} s |\n\n", p.passed,
                      p.failed, p.skipped, p.seconds);

    md << "| Model |";
    for (const auto& c : p.columns) md << " " << escape(c) << " |";
    md << "\n|---|";
    for (size_t i = 0; i < p.columns.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& r : p.rows) {
        md << "| **" << escape(r.name) << "** |";
        for (const auto& c : p.columns) {
            auto it = p.cells.find({r.name, c});
            md << " " << escape(it == p.cells.end() ? "not run" : it->second) << " |";
        }
        md << "\n";
    }

    md << "\n" << prose.marks << "\n\n"
       << "## The models\n\n";
    for (const auto& r : p.rows) {
        md << "- **" << r.name << "**: `" << r.command << "` ([chapter](../" << r.chapter << "/README.md))";
        auto d = p.descriptions.find(r.name);
        if (d != p.descriptions.end()) md << ". " << d->second;
        md << "\n";
    }
    md << "\n## What each column measures\n\n";
    for (const auto& c : p.columns) {
        auto legend = prose.legends.find(c);
        md << "- **" << c << "**: " << (legend == prose.legends.end() ? "" : legend->second) << "\n";
    }
    md << "\n" << prose.contract_tests << " `" << fmt::format("{}", fmt::join(p.contract_tests, "`, `")) << "`.\n";
    md << "\n## Failures\n\n";
    if (p.failures.empty()) md << "None.\n";
    for (const auto& f : p.failures) md << "- `" << f << "`\n";
    return md.str();
}

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

void install_if_requested(std::vector<Row> rows, std::vector<std::string> columns, std::string command,
                          const std::string& prose_path) {
    const char* path = std::getenv("COMPARISON_MD");
    if (path == nullptr || *path == '\0') return;
    Prose prose = read_prose(prose_path, columns);
    testing::UnitTest::GetInstance()->listeners().Append(
        new Writer(path, std::move(rows), std::move(columns), std::move(command), std::move(prose)));
}

}  // namespace course::test::comparison
