// The contract, part 7: the command line. A bad one is one clear line on
// stderr and a non-zero exit; a port in use too; --help lists every flag.
#include "comparison.hpp"
#include "servers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace course::test::contract {
namespace {

TEST_P(ContractTest, BadCommandLinesPrintOneClearLineAndExitNonZero) {
    struct Case {
        std::vector<std::string> args;
        const char* message;  // a part of the one line expected on stderr
        int code;             // 2: the command line itself; 1: found out when listening
    };
    const Case cases[] = {
        {{"--bogus"}, "unknown argument '--bogus'", 2},
        {{"--port", "notanumber"}, "--port expects a whole number", 2},
        {{"--port", "70000"}, "--port must be between 0 and 65535", 2},
        {{"--port"}, "--port expects a value", 2},
        {{"--trace=yes"}, "--trace takes no value", 2},
        {{"--host", "999.1.1.1", "--port", "0"}, "bad address '999.1.1.1'", 1},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(fmt::format("{}", fmt::join(c.args, " ")));
        auto proc = run_to_exit(c.args);
        Exit e = proc.wait();
        EXPECT_TRUE(e.exited);
        EXPECT_EQ(e.signal, 0);
        EXPECT_EQ(e.code, c.code);
        std::string err = proc.stderr_text();
        EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
        EXPECT_EQ(err.rfind(chapter() + ": ", 0), 0u) << err;
        EXPECT_NE(err.find(c.message), std::string::npos) << err;
        EXPECT_EQ(proc.stdout_text(), "");
    }
}

TEST_P(ContractTest, PortInUseIsOneClearLineAndExitCode1) {
    auto first = start();
    auto second = run_to_exit({"--port", std::to_string(first.port())});
    Exit e = second.wait();
    EXPECT_EQ(e.code, 1);
    EXPECT_EQ(second.stderr_text(),
              fmt::format("{}: bind 127.0.0.1:{}: Address already in use\n", chapter(), first.port()));
    EXPECT_EQ(second.stdout_text(), "");
    expect_clean_exit_within_2s(first);
}

TEST_P(ContractTest, HelpListsEveryFlagAndExitsZero) {
    auto proc = run_to_exit({"--help"});
    Exit e = proc.wait();
    EXPECT_EQ(e.code, 0);
    std::vector<std::string> flags = {"--host", "--port", "--trace", "--help"};
    for (const auto& a : GetParam().args)
        if (a.rfind("--", 0) == 0) flags.push_back(a);  // the entry's own flags
    for (const auto& flag : flags) EXPECT_NE(proc.stdout_text().find(flag), std::string::npos) << flag;
    EXPECT_EQ(proc.stderr_text(), "");
    // Its one-line description (after the usage line and a blank one), for docs/comparison.md.
    std::istringstream help(proc.stdout_text());
    std::string line;
    for (int i = 0; i < 3; ++i) std::getline(help, line);  // the usage, a blank line, the description
    comparison::describe(GetParam().name, line);
}

}  // namespace
}  // namespace course::test::contract
