// The contract, part 6: --trace and the stats line. Each system call that
// matters and its result, one line each; without --trace, only the stats line.
#include "client.hpp"
#include "servers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <string>

namespace course::test::contract {
namespace {

TEST_P(ContractTest, TraceShowsEachSystemCallAndItsResult) {
    auto server = start({"--trace"});
    ASSERT_TRUE(echo_session(server.port(), "hello"));  // returns once the server has closed
    expect_clean_exit_within_2s(server);
    std::string err = server.stderr_text();
    auto head = [&] { return err.substr(0, 4000); };
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(accept4\(fd=\d+\) = \d+)"))) << head();
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(read\(fd=\d+, len=\d+\) = 5\n)"))) << head();
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(write\(fd=\d+, len=5\) = 5\n)"))) << head();
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(read\(fd=\d+, len=\d+\) = 0\n)"))) << head();
    EXPECT_EQ(err.find("\033["), std::string::npos) << "no colour when stderr is not a terminal";
}

TEST_P(ContractTest, WithoutTraceStderrHoldsOnlyTheStatsLine) {
    auto server = start();
    ASSERT_TRUE(echo_session(server.port(), "hello"));  // returns once the server has closed
    expect_clean_exit_within_2s(server);
    std::string err = server.stderr_text();
    EXPECT_EQ(err.rfind("stats: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    auto stats = server.stats();
    EXPECT_GE(stats["read"], 2u);  // "hello", then EOF
    EXPECT_GE(stats["write"], 1u);
}

}  // namespace
}  // namespace course::test::contract
