// The server contract (docs/overview.md, "The server contract"), tested the
// same way for every chapter's server. One test suite, parameterised over a
// table of servers; a chapter's own tests (01-blocking/blocking_test.cpp, ...)
// test only what makes that chapter different.
//
// A test that does not apply to a server's model says so with GTEST_SKIP,
// decided by the server's traits, so a new chapter is one more table row.
//
// The suite, by topic, each file read in one sitting:
//   servers.hpp, servers.cpp   the table of servers, their Traits, the fixture
//   echo_test.cpp              start, echo, half-close
//   many_clients_test.cpp      many clients: together, and how many at once
//   cost_test.cpp              what it costs: idle calls and CPU, calls per echo
//   bad_peers_test.cpp         resets, leavers, stalled and slow readers, EMFILE
//   signals_test.cpp           SIGTERM, SIGINT, EINTR
//   trace_test.cpp             --trace and the stats line
//   command_line_test.cpp      bad command lines, port in use, --help
// Helpers that are not about the contract are in tests/harness (client.hpp,
// proc.hpp, sock_diag.hpp, stream.hpp, workload.hpp).
//
// The behaviour matrix (docs/comparison.md): the tests that measure how the
// models differ (concurrency, connections, idle cost, slow reader, EMFILE,
// system calls per echo) record their values with record(), in the columns
// of columns.hpp; with COMPARISON_MD=path set, comparison.cpp writes them as
// a table at the end, with the words of comparison-prose.md around them.
// tools/compare-models.sh runs this with everything on. The heavy parts
// (10,000 connections, idle CPU) run only then or with COURSE_HEAVY=1.
#include "columns.hpp"
#include "comparison.hpp"
#include "servers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#ifndef COURSE_COMPARISON_PROSE
#error "COURSE_COMPARISON_PROSE: the path of comparison-prose.md (tests/CMakeLists.txt)"
#endif

namespace course::test::contract {

INSTANTIATE_TEST_SUITE_P(Contract, ContractTest, testing::ValuesIn(servers()), [](const auto& info) {
    std::string name = info.param.name;
    std::replace(name.begin(), name.end(), '-', '_');  // gtest names: letters, digits, '_'
    return name;
});

}  // namespace course::test::contract

// Our own main (not gtest_main): it installs the behaviour-matrix writer when
// COMPARISON_MD is set. The prose comes from COMPARISON_PROSE if set (another
// language, say), else from tests/contract/comparison-prose.md.
int main(int argc, char** argv) {
    using namespace course::test;
    std::vector<std::string> words;
    if (const char* md = std::getenv("COMPARISON_MD")) words.push_back(fmt::format("COMPARISON_MD={}", md));
    words.insert(words.end(), argv, argv + argc);  // before InitGoogleTest removes its flags
    std::string command = fmt::format("`{}`", fmt::join(words, " "));
    if (const char* via = std::getenv("COMPARISON_COMMAND")) command = fmt::format("`{}`, which ran {}", via, command);
    testing::InitGoogleTest(&argc, argv);

    std::vector<comparison::Row> rows;
    for (const contract::Server& s : contract::servers()) {
        const std::string chapter = s.chapter;  // the row's command names the chapter, whichever binary ran
        std::string cmd = chapter;
        for (const auto& a : s.args) cmd += " " + a;
        rows.push_back({s.name, cmd + " --port 0", chapter});
    }
    std::vector<std::string> columns(std::begin(contract::kColumns), std::end(contract::kColumns));
    const char* prose = std::getenv("COMPARISON_PROSE");
    try {
        comparison::install_if_requested(std::move(rows), std::move(columns), command,
                                         prose != nullptr && *prose != '\0' ? prose : COURSE_COMPARISON_PROSE);
    } catch (const std::exception& e) {
        fmt::print(stderr, "contract_test: {}\n", e.what());
        return 2;
    }
    return RUN_ALL_TESTS();
}
