// Chapter 04 tests: poll has no descriptor limit and sleeps while idle. The
// shared contract is tested for every chapter in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

using namespace course;
using namespace course::test;

namespace {

// This chapter's server, or the one COURSE_SERVER_04 names (a student's, say).
const std::string kServer = server_binary("04", SERVER_BIN);

TEST(Chapter04, ServesFiveThousandConcurrentConnections) {
    raise_open_file_limit();
    constexpr int kClients = 5000;
    StartOptions o;
    o.max_open_files = kClients + 100;
    auto server = ServerProcess::start(kServer, {}, o);
    EXPECT_EQ(many_at_once(server.port(), kClients), "");
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
}

TEST(Chapter04, SameWorkloadNeedsNoEagainReads) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_EQ(ping_pong(server.port(), 10, 100, 64), "");  // 1,000 round trips of 64 bytes
    ASSERT_TRUE(server.stop().clean());
    auto stats = server.stats();
    EXPECT_LE(stats["read_eagain"], 10u);
    EXPECT_GE(stats["read"], 1000u);
    EXPECT_LE(stats["poll"], 3000u);
    EXPECT_GE(stats["poll"], 100u);
}

TEST(Chapter04, AnIdleServerSleepsInPoll) {
    auto server = ServerProcess::start(kServer, {});
    Fd client = connect_to(server.port());
    ASSERT_TRUE(send_all(client.get(), "hi"));
    ASSERT_EQ(recv_exactly(client.get(), 2), "hi");
    EXPECT_TRUE(nothing_arrives(client.get(), 500ms));
    ASSERT_TRUE(server.stop().clean());
    auto stats = server.stats();
    EXPECT_LE(stats["poll"], 5u) << "poll calls in 0.5 s of idleness: it should sleep, not spin";
    EXPECT_EQ(stats["read_eagain"], 0u);
}

}  // namespace
