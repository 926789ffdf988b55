// Chapter 01 tests: what makes each mode what it is (iterative: one client at
// a time; --threads: a thread per client), and what only blocking calls can
// get wrong (a write cut short by a signal, SIGTERM while blocked writing).
// The shared contract (echo, half-close, resets, EINTR, EMFILE, slow readers,
// trace, stats, bad command lines, ...) is tested for both modes, as for every
// chapter's server, in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <regex>
#include <thread>
#include <vector>

#include <fmt/format.h>

using namespace course;
using namespace course::test;

namespace {

// This chapter's server, or the one COURSE_SERVER_01 names (a student's, say).
const std::string kServer = server_binary("01", SERVER_BIN);

void expect_clean_exit_within_2s(ServerProcess& server) {
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << "exited " << e.exited << " code " << e.code << " signal " << e.signal << "\n"
                           << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_NE(server.stderr_text().find("stats: "), std::string::npos) << server.stderr_text();
}

// ---- what the modes demonstrate ----

// Each client costs a thread, for as long as it stays connected.
TEST(Chapter01, ThreadsModeRunsOneThreadPerConnection) {
    auto server = ServerProcess::start(kServer, {"--threads"});
#if defined(__SANITIZE_THREAD__)
    const int before = 2;  // ThreadSanitizer starts a background thread of its own
#else
    const int before = thread_count(server.pid());
#endif
    constexpr int kClients = 200;
    std::vector<Fd> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.push_back(connect_to(server.port()));
        std::string msg = fmt::format("client {:04}", i);
        ASSERT_TRUE(send_all(clients.back().get(), msg));
        ASSERT_EQ(recv_exactly(clients.back().get(), msg.size()), msg);  // its thread is running
    }
    EXPECT_GE(thread_count(server.pid()), before + kClients) << "one thread per connection";
    clients.clear();  // they leave: their threads end
    EXPECT_TRUE(eventually([&] { return thread_count(server.pid()) == before; }))
        << thread_count(server.pid()) << " threads left, " << before << " at the start";
    expect_clean_exit_within_2s(server);
}

TEST(Chapter01, HelpExplainsTheThreadsFlag) {
    StartOptions o;
    o.wait_ready = false;
    o.add_port_zero = false;
    auto proc = ServerProcess::start(kServer, {"--help"}, o);
    EXPECT_EQ(proc.wait().code, 0);
    EXPECT_TRUE(std::regex_search(proc.stdout_text(), std::regex(R"(\n  --threads +one thread per connection)")))
        << proc.stdout_text();
}

// ---- blocking calls and signals ----

// A blocking write into a full socket buffer, interrupted by a signal, returns
// the bytes it copied so far (or -1/EINTR if none). write_all must go on from
// there. The client reads slowly while SIGUSR1 keeps interrupting the server.
TEST(Chapter01, WritesInterruptedBySignalsContinueWhereTheyStopped) {
    auto server = ServerProcess::start(kServer, {"--trace"});
    Fd conn = connect_to(server.port());
    const std::string payload = random_bytes(16 << 20, 3);
    std::jthread sender([&] { send_all(conn.get(), payload, 60s); });  // joined however the test ends
    std::string echoed;
    for (int i = 0; i < 20; ++i) {
        // We are not reading: the buffers fill up and the server sleeps in
        // write(). Interrupt it there, then read a little so it can go on.
        if (!wait_until_in_syscall(server.pid(), SYS_write)) {
            ::shutdown(conn.get(), SHUT_RDWR);  // ends the sender's send_all at once
            FAIL() << "round " << i << ": the server never blocked in write()";
        }
        server.signal(SIGUSR1);
        echoed += recv_exactly(conn.get(), 64 << 10, 5s);
    }
    echoed += recv_exactly(conn.get(), payload.size() - echoed.size(), 60s);
    sender.join();
    EXPECT_TRUE(echoed == payload) << "got " << echoed.size() << " bytes, differing from what was sent";
    expect_clean_exit_within_2s(server);

    // Check that the test did what it says: some write() was cut short.
    std::string err = server.stderr_text();
    std::regex write_line(R"(write\(fd=\d+, len=(\d+)\) = (-1 EINTR|\d+))");
    int interrupted = 0;
    for (std::sregex_iterator it(err.begin(), err.end(), write_line), end; it != end; ++it)
        if ((*it)[2] == "-1 EINTR" || (*it)[2] != (*it)[1]) ++interrupted;
    EXPECT_GE(interrupted, 1) << "no write was interrupted; the test proved nothing\n" << err.substr(err.rfind("stats:"));
}

TEST(Chapter01, SigtermWhileBlockedWritingToAClientThatDoesNotReadExitsCleanly) {
    auto server = ServerProcess::start(kServer, {});
    Fd stuck = connect_to(server.port());
    EXPECT_FALSE(send_all(stuck.get(), std::string(64 << 20, 'x'), 500ms));  // server now blocked in write()
    expect_clean_exit_within_2s(server);
}

TEST(Chapter01, SigtermWithManyIdleThreadsExitsCleanly) {
    auto server = ServerProcess::start(kServer, {"--threads"});
    std::vector<Fd> clients;
    for (int i = 0; i < 50; ++i) {
        clients.push_back(connect_to(server.port()));
        ASSERT_TRUE(send_all(clients.back().get(), "x"));
        ASSERT_EQ(recv_exactly(clients.back().get(), 1), "x");
    }
    expect_clean_exit_within_2s(server);
    for (auto& c : clients) EXPECT_EQ(wait_closed(c.get()), PeerEnd::eof);
}

}  // namespace
