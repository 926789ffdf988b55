// Chapter 06 tests: edge-triggered epoll must drain, and --no-drain shows what
// happens when it does not. The shared contract is tested for every chapter
// in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

using namespace course;
using namespace course::test;

namespace {

// This chapter's server, or the one COURSE_SERVER_06 names (a student's, say).
const std::string kServer = server_binary("06", SERVER_BIN);

// 1 MiB in one burst, sent while the server is stopped (SIGSTOP), so that it
// is all on its way when the server runs again; then the client waits for the
// echo without sending more. Returns how many bytes came back within `window`.
size_t burst_echoed(std::vector<std::string> args, Millis window) {
    auto server = ServerProcess::start(kServer, std::move(args));
    Fd conn = connect_to(server.port());
    std::string burst = random_bytes(1 << 20, 6);
    server.signal(SIGSTOP);
    EXPECT_TRUE(send_all(conn.get(), burst));  // fits in the socket buffers (4 MiB at most)
    server.signal(SIGCONT);
    std::string got = recv_exactly(conn.get(), burst.size(), window);
    EXPECT_TRUE(burst.compare(0, got.size(), got) == 0) << "what did come back must be the start of the burst";
    EXPECT_TRUE(server.stop().clean());
    return got.size();
}

TEST(Chapter06, DrainingEchoesAWholeBurst) { EXPECT_EQ(burst_echoed({}, 10s), size_t{1} << 20); }

TEST(Chapter06, NoDrainStallsBeforeTheBurstIsEchoed) {
    // One read of at most 64 KiB per edge. Edges come while segments of the
    // burst arrive; once all of it sits in the socket, none comes again, and
    // the rest is never read. (Generous window: it never arrives.)
    size_t got = burst_echoed({"--no-drain"}, 1s);
    EXPECT_GT(got, 0u);
    EXPECT_LT(got, size_t{1} << 20) << "the whole burst came back: nothing stalled";
}

// 100 clients connect while the server is stopped; each then sends one byte. Returns how many
// got their echo before `deadline` passed (one deadline for all of them).
int served_of_100_simultaneous(std::vector<std::string> args, Millis deadline) {
    auto server = ServerProcess::start(kServer, std::move(args));
    std::vector<Fd> clients;
    server.signal(SIGSTOP);  // the kernel completes the handshakes and queues them all
    for (int i = 0; i < 100; ++i) clients.push_back(connect_to(server.port()));
    server.signal(SIGCONT);  // one edge on the listener for the 100 of them
    for (auto& c : clients) EXPECT_TRUE(send_all(c.get(), "x"));
    auto end = std::chrono::steady_clock::now() + deadline;
    int served = 0;
    for (auto& c : clients) {
        auto left = std::chrono::duration_cast<Millis>(end - std::chrono::steady_clock::now());
        if (recv_exactly(c.get(), 1, std::max(left, Millis(0))) == "x") ++served;
    }
    clients.clear();
    EXPECT_TRUE(server.stop().clean());
    return served;
}

TEST(Chapter06, DrainingAcceptsEverySimultaneousClient) { EXPECT_EQ(served_of_100_simultaneous({}, 5s), 100); }

TEST(Chapter06, NoDrainLeavesSimultaneousClientsUnaccepted) {
    int served = served_of_100_simultaneous({"--no-drain"}, 500ms);
    EXPECT_GE(served, 1);
    EXPECT_LT(served, 100) << "one accept per edge cannot take 100 clients that arrived together";
}

TEST(Chapter06, OneRegistrationPerConnectionAndAnExtraEagainReadPerEvent) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_EQ(ping_pong(server.port(), 10, 100, 64), "");  // 1,000 round trips of 64 bytes
    ASSERT_TRUE(server.stop().clean());
    auto stats = server.stats();
    EXPECT_EQ(stats["epoll_ctl"], 12u) << "one ADD each for the stop pipe, the listener and 10 clients; no MOD";
    // Draining means reading until EAGAIN: about one extra read per event,
    // so about as many EAGAIN reads as reads that found data.
    EXPECT_GE(stats["read_eagain"], 900u);
    EXPECT_LE(stats["read_eagain"], stats["read"] - stats["read_eagain"] + 20);
}

TEST(Chapter06, ServesTenThousandConcurrentConnections) {
    raise_open_file_limit();
    constexpr int kClients = 10000;
    StartOptions o;
    o.max_open_files = kClients + 100;
    auto server = ServerProcess::start(kServer, {}, o);
    EXPECT_EQ(many_at_once(server.port(), kClients), "");
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
}

}  // namespace
