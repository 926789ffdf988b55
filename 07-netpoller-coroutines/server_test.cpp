// Tests of the 07-netpoller-coroutines server as a process: what makes this
// chapter different. The shared contract is tested in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

using namespace course;
using namespace course::test;

namespace {

constexpr const char* kServer = SERVER_BIN;

// Issue 5, behaviour 1: one EPOLL_CTL_ADD when a connection is accepted and
// one EPOLL_CTL_DEL before it is closed; nothing in between.
TEST(Chapter07, TwoEpollCtlCallsPerConnection) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_EQ(ping_pong(server.port(), 10, 100, 64), "");  // 1,000 round trips; each client half-closes
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();
    auto stats = server.stats();
    // The break eventfd (ADD), the listener (ADD, and DEL at shutdown), then 2 per client.
    EXPECT_EQ(stats["epoll_ctl"], 3u + 2u * 10u) << server.stderr_text();
    EXPECT_EQ(stats["go"], 11u) << "the accept loop and one coroutine per client";
    EXPECT_EQ(stats["goroutines_left"], 0u);
}

TEST(Chapter07, ThePollBackendMakesNoEpollCalls) {
    auto server = ServerProcess::start(kServer, {"--poller", "poll"});
    EXPECT_EQ(ping_pong(server.port(), 10, 10, 64), "");
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();
    auto stats = server.stats();
    EXPECT_EQ(stats["epoll_ctl"], 0u);
    EXPECT_EQ(stats["epoll_wait"], 0u);
    EXPECT_GE(stats["poll"], 1u);
}

TEST(Chapter07, ShutdownWithParkedConnectionsFinishesEveryCoroutine) {
    auto server = ServerProcess::start(kServer, {});
    std::vector<Fd> idle;
    for (int i = 0; i < 200; ++i) idle.push_back(connect_to(server.port()));
    ASSERT_TRUE(send_all(idle.back().get(), "x"));
    ASSERT_EQ(recv_exactly(idle.back().get(), 1), "x");  // all accepted before it (FIFO backlog)
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    auto stats = server.stats();
    EXPECT_EQ(stats["go"], 201u);
    EXPECT_EQ(stats["goroutines_left"], 0u) << server.stderr_text();
    for (auto& c : idle) EXPECT_EQ(wait_closed(c.get()), PeerEnd::eof);
}

TEST(Chapter07, HalfCloseAfterDataEchoesAllThenCloses) {
    auto server = ServerProcess::start(kServer, {});
    Fd conn = connect_to(server.port());
    std::string payload = random_bytes(300'000, 7);
    ASSERT_TRUE(send_all(conn.get(), payload));  // fits in the buffers both ways at most partially...
    half_close(conn.get());                      // ...the server echoes as it reads; we read below
    EXPECT_TRUE(recv_exactly(conn.get(), payload.size()) == payload);
    EXPECT_EQ(wait_closed(conn.get()), PeerEnd::eof);
    EXPECT_TRUE(server.stop().clean());
}

TEST(Chapter07, TenThousandConcurrentConnections) {
    constexpr int kClients = 10000;
    raise_open_file_limit();
    StartOptions o;
    o.max_open_files = kClients + 100;
    for (const char* poller : {"epoll", "poll"}) {
        SCOPED_TRACE(poller);
        auto server = ServerProcess::start(kServer, {"--poller", poller}, o);
        EXPECT_EQ(many_at_once(server.port(), kClients), "");
        Exit e = server.stop();
        EXPECT_TRUE(e.clean()) << server.stderr_text();
    }
}

}  // namespace
