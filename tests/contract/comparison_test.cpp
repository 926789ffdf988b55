// Tests of the behaviour matrix's page (comparison.hpp) that need no server:
// the prose file is complete, a broken one is refused with the reason, and
// render() writes docs/comparison.md again, byte for byte, from the values
// in it. That last one fails when the prose (or the layout) changed and the
// page was not regenerated since: run `tools/course compare`.
#include "columns.hpp"
#include "comparison.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course::test;
using namespace course::test::comparison;

namespace {

const std::vector<std::string> kColumnNames(std::begin(contract::kColumns), std::end(contract::kColumns));

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A prose file of our own, removed when the test ends.
class TempProse {
public:
    explicit TempProse(const std::string& text) {
        char name[] = "/tmp/comparison-prose-XXXXXX";
        int fd = ::mkstemp(name);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path_ = name;
        std::ofstream(path_) << text;
    }
    ~TempProse() { std::remove(path_.c_str()); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// The prose file with `from` replaced by `to` (which must occur).
std::string edited_prose(const std::string& from, const std::string& to) {
    std::string text = read_file(COURSE_COMPARISON_PROSE);
    auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("not in the prose file: " + from);
    return text.replace(at, from.size(), to);
}

// The message read_prose() throws for `text`, or "" if it accepts it.
std::string problem_with(const std::string& text) {
    TempProse file(text);
    try {
        read_prose(file.path(), kColumnNames);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

// The cells of a table line "| a | b \| c |" -> {"a", "b | c"} (escape() writes '|' as "\|").
std::vector<std::string> cells_of(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (line[i] == '|') {
            cells.push_back(cell.size() >= 2 ? cell.substr(1, cell.size() - 2) : cell);  // " x " -> "x"
            cell.clear();
        } else {
            cell += line[i];
        }
    }
    return cells;
}

// The values of a page that render() wrote: the inverse of render(), for the
// parts that are not prose. Throws if a part is missing.
Page values_of(const std::string& markdown, const Prose& prose) {
    Page p;
    std::istringstream in(markdown);
    std::string line, section;
    bool tests = false, header = false;
    const std::regex model(R"(- \*\*(.+?)\*\*: `(.*?)` \(\[chapter\]\(\.\./(.+?)/README\.md\)\)(?:\. (.*))?)");
    const std::regex totals(R"(\| Tests \| (\d+) passed, (\d+) failed, (\d+) not applicable or not run; (\d+) s \|)");
    const std::string contract_lead = prose.contract_tests + " `";
    std::smatch m;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            section = line.substr(3);
        } else if (std::regex_match(line, m, totals)) {
            p.passed = std::stoi(m[1]);
            p.failed = std::stoi(m[2]);
            p.skipped = std::stoi(m[3]);
            p.seconds = std::stod(m[4]);
            tests = true;
        } else if (line.rfind("| Load average at start | ", 0) == 0) {
            std::string value = cells_of(line).at(1);
            p.load = value.substr(0, value.find(" (1, 5, 15 min"));
        } else if (line.rfind("| Date | ", 0) == 0 || line.rfind("| Machine | ", 0) == 0 ||
                   line.rfind("| Build | ", 0) == 0 || line.rfind("| Command | ", 0) == 0) {
            auto c = cells_of(line);
            (c[0] == "Date" ? p.date : c[0] == "Machine" ? p.machine : c[0] == "Build" ? p.build : p.command) = c.at(1);
        } else if (line.rfind("| Model |", 0) == 0) {
            auto c = cells_of(line);
            p.columns.assign(c.begin() + 1, c.end());
            header = true;
        } else if (line.rfind("| **", 0) == 0) {
            auto c = cells_of(line);
            std::string row = c.at(0).substr(2, c[0].size() - 4);  // "**name**"
            for (size_t i = 1; i < c.size() && i <= p.columns.size(); ++i) p.cells[{row, p.columns[i - 1]}] = c[i];
        } else if (section == "The models" && std::regex_match(line, m, model)) {
            p.rows.push_back({m[1], m[2], m[3]});
            if (m[4].matched) p.descriptions[m[1]] = m[4];
        } else if (line.rfind(contract_lead, 0) == 0 && line.size() > contract_lead.size() + 2) {
            std::string list = line.substr(contract_lead.size(), line.size() - contract_lead.size() - 2);  // "a`, `b"
            for (size_t at = 0; at != std::string::npos;) {
                size_t next = list.find("`, `", at);
                p.contract_tests.insert(list.substr(at, next == std::string::npos ? next : next - at));
                at = next == std::string::npos ? next : next + 4;
            }
        } else if (section == "Failures" && line.rfind("- `", 0) == 0) {
            p.failures.push_back(line.substr(3, line.size() - 4));
        }
    }
    if (!tests || !header || p.rows.empty()) throw std::runtime_error("not a page render() wrote");
    return p;
}

// The first line where `a` and `b` differ, both versions, for a failure message.
std::string first_difference(const std::string& a, const std::string& b) {
    std::istringstream x(a), y(b);
    std::string l, r;
    for (int n = 1;; ++n) {
        bool more_l = static_cast<bool>(std::getline(x, l)), more_r = static_cast<bool>(std::getline(y, r));
        if (!more_l && !more_r) return "they differ only in the last newline";
        if (l != r || more_l != more_r) return fmt::format("line {}:\n  rendered: {}\n  on file:  {}", n, l, r);
    }
}

TEST(ComparisonPage, TheProseFileHasALegendForEveryColumnAndNoOther) {
    Prose prose = read_prose(COURSE_COMPARISON_PROSE, kColumnNames);  // throws, naming the problem, if not
    EXPECT_EQ(prose.legends.size(), kColumnNames.size());
    EXPECT_NE(prose.intro.find('\n'), std::string::npos) << "the introduction keeps its line breaks";
    for (const auto& [column, legend] : prose.legends)
        EXPECT_EQ(legend.find('\n'), std::string::npos) << column << ": a legend is one line of the page";
}

TEST(ComparisonPage, AProseFileThatDoesNotFitTheTableIsRefusedWithTheReason) {
    EXPECT_EQ(problem_with(read_file(COURSE_COMPARISON_PROSE)), "");
    EXPECT_NE(problem_with(edited_prose("## Column: Idle CPU", "## Column: Idle cpu")).find("no \"## Column: Idle CPU\""),
              std::string::npos);
    EXPECT_NE(problem_with(edited_prose("## Column: Idle CPU", "## Column: Idle cpu")).find("Idle cpu\" is not a column"),
              std::string::npos);
    EXPECT_NE(problem_with(edited_prose("## Marks", "## Mark")).find("no \"## Marks\""), std::string::npos);
    EXPECT_NE(problem_with(edited_prose("## Marks", "## Mark")).find("\"## Mark\" is not a place"), std::string::npos);
    EXPECT_NE(problem_with(edited_prose("## Column: EMFILE\n", "## Column: EMFILE\n\n## Column: Waits/echo\n"))
                  .find("\"## Column: EMFILE\" has no text"),
              std::string::npos);
    EXPECT_NE(problem_with(edited_prose("## Column: EMFILE\n", "## Column: Waits/echo\n")).find("comes twice"),
              std::string::npos);
    EXPECT_NE(problem_with("").find("no \"## Introduction\""), std::string::npos);
    EXPECT_THROW(read_prose("/nonexistent/comparison-prose.md", kColumnNames), std::runtime_error);
}

TEST(ComparisonPage, RenderWritesDocsComparisonMdAgainFromItsValues) {
    const std::string on_file = read_file(COURSE_COMPARISON_MD);
    ASSERT_FALSE(on_file.empty()) << COURSE_COMPARISON_MD;
    const Prose prose = read_prose(COURSE_COMPARISON_PROSE, kColumnNames);
    const Page page = values_of(on_file, prose);
    EXPECT_EQ(page.columns, kColumnNames) << "the page's columns are not the table's: regenerate it";
    const std::string rendered = render(page, prose);
    EXPECT_TRUE(rendered == on_file) << "docs/comparison.md is not what render() writes from its values and "
                                        "tests/contract/comparison-prose.md: regenerate it (tools/course compare). "
                                     << first_difference(rendered, on_file);
}

}  // namespace
