// Chapter 01 tests: the server contract in both modes, then what makes each
// mode what it is (iterative: one client at a time; --threads: a thread per
// client), then the failure cases (EMFILE, EINTR, vanishing clients).
#include "client.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <fstream>
#include <regex>
#include <thread>
#include <vector>

#include <fmt/format.h>

using namespace course;
using namespace course::test;

namespace {

constexpr const char* kServer = SERVER_BIN;

struct Mode {
    const char* name;
    std::vector<std::string> args;
};
void PrintTo(const Mode& m, std::ostream* os) { *os << m.name; }  // names the ctest cases

class BothModes : public testing::TestWithParam<Mode> {
protected:
    ServerProcess start(std::vector<std::string> extra = {}, StartOptions o = {}) {
        auto args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return ServerProcess::start(kServer, args, o);
    }
};

INSTANTIATE_TEST_SUITE_P(Chapter01, BothModes,
                         testing::Values(Mode{"iterative", {}}, Mode{"threads", {"--threads"}}),
                         [](const auto& info) { return std::string(info.param.name); });

void expect_clean_exit_within_2s(ServerProcess& server) {
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << "exited " << e.exited << " code " << e.code << " signal " << e.signal << "\n"
                           << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_NE(server.stderr_text().find("stats: "), std::string::npos) << server.stderr_text();
}

// ---- the contract ----

TEST_P(BothModes, FirstLineOnStdoutIsTheReadyLineWithTheRealPort) {
    auto server = start();
    EXPECT_TRUE(std::regex_match(server.ready_line(), std::regex(R"(listening on 127\.0\.0\.1:[0-9]+)")));
    EXPECT_NE(server.port(), 0);
    EXPECT_EQ(server.stdout_text(), server.ready_line() + "\n");
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, EchoesEightMiBSentInRandomChunksByteForByte) {
    auto server = start();
    Fd conn = connect_to(server.port());
    std::mt19937 rng(2024);
    std::string payload = random_bytes(8 << 20, 1);
    std::string echoed = exchange(conn.get(), payload, rng);
    ASSERT_EQ(echoed.size(), payload.size());
    EXPECT_TRUE(echoed == payload) << "echo differs from what was sent";
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, IsBinarySafeForAllByteValues) {
    auto server = start();
    Fd conn = connect_to(server.port());
    std::string all;
    for (int round = 0; round < 4; ++round)
        for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    ASSERT_TRUE(send_all(conn.get(), all));
    EXPECT_TRUE(recv_exactly(conn.get(), all.size()) == all);
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, HalfCloseEchoesEverythingPendingThenCloses) {
    auto server = start();
    Fd conn = connect_to(server.port());
    std::string payload = random_bytes(4 << 20, 2);  // more than the socket buffers hold
    std::thread sender([&] {
        send_all(conn.get(), payload, 30s);
        half_close(conn.get());  // "I have nothing more to send"; we still read
    });
    std::string echoed = recv_exactly(conn.get(), payload.size(), 30s);
    sender.join();
    EXPECT_TRUE(echoed == payload) << "got " << echoed.size() << " of " << payload.size() << " bytes";
    EXPECT_EQ(wait_closed(conn.get()), PeerEnd::eof);
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, AClientThatResetsDoesNotHurtTheNextOne) {
    auto server = start();
    {
        Fd rude = connect_to(server.port());
        ASSERT_TRUE(send_all(rude.get(), "about to vanish"));
        ASSERT_EQ(recv_exactly(rude.get(), 15), "about to vanish");
        abort_close(rude);  // RST
    }
    Fd next = connect_to(server.port());
    ASSERT_TRUE(send_all(next.get(), "still there?"));
    EXPECT_EQ(recv_exactly(next.get(), 12), "still there?");
    expect_clean_exit_within_2s(server);
}

// A client that sends a lot, never reads, and leaves: the server's write
// fails (ECONNRESET/EPIPE). That must end this connection, not the server.
TEST_P(BothModes, WritingToAClientThatLeftDoesNotKillTheServer) {
    auto server = start();
    for (int i = 0; i < 3; ++i) {
        Fd leaver = connect_to(server.port());
        // Fill the pipe both ways until the server is stuck writing the echo.
        EXPECT_FALSE(send_all(leaver.get(), std::string(64 << 20, 'x'), 500ms));
        abort_close(leaver);
        Fd probe = connect_to(server.port());
        ASSERT_TRUE(send_all(probe.get(), "ok?"));
        EXPECT_EQ(recv_exactly(probe.get(), 3), "ok?") << "round " << i;
    }
    expect_clean_exit_within_2s(server);
    auto stats = server.stats();
    EXPECT_GE(stats["write_err"] + stats["read_err"], 1u) << server.stderr_text();
}

// A blocking write into a full socket buffer, interrupted by a signal, returns
// the bytes it copied so far (or -1/EINTR if none). write_all must go on from
// there. The client reads slowly while SIGUSR1 keeps interrupting the server.
TEST(Chapter01, WritesInterruptedBySignalsContinueWhereTheyStopped) {
    auto server = ServerProcess::start(kServer, {"--trace"});
    Fd conn = connect_to(server.port());
    const std::string payload = random_bytes(16 << 20, 3);
    std::thread sender([&] { send_all(conn.get(), payload, 60s); });
    std::string echoed;
    for (int i = 0; i < 20; ++i) {
        // We are not reading: the buffers fill up and the server sleeps in
        // write(). Interrupt it there, then read a little so it can go on.
        ASSERT_TRUE(wait_until_in_syscall(server.pid(), SYS_write)) << "round " << i;
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

TEST(Chapter01, SigpipeIsIgnoredSoAWriteToAGonePeerCannotKillTheServer) {
    auto server = ServerProcess::start(kServer, {});
    std::ifstream status(fmt::format("/proc/{}/status", server.pid()));
    std::string line;
    unsigned long long ignored = 0;
    while (std::getline(status, line))
        if (line.rfind("SigIgn:", 0) == 0) ignored = std::stoull(line.substr(7), nullptr, 16);
    EXPECT_TRUE(ignored & (1ull << (SIGPIPE - 1))) << "SigIgn mask " << std::hex << ignored;
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, SigtermWhileIdleInAcceptExitsCleanly) {
    auto server = start();
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, SigintWhileAClientIsConnectedAndIdleExitsCleanly) {
    auto server = start();
    Fd idle = connect_to(server.port());
    ASSERT_TRUE(send_all(idle.get(), "hi"));
    ASSERT_EQ(recv_exactly(idle.get(), 2), "hi");  // the server now sleeps in read() on this client
    Exit e = server.stop(5s, SIGINT);
    EXPECT_TRUE(e.clean()) << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_EQ(wait_closed(idle.get()), PeerEnd::eof);
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

// EINTR means "a signal arrived", not "the client left". SIGUSR1 interrupts
// the blocked call; --trace shows the -1 EINTR result, so we know the test
// really exercised that path before checking the client is still served.
TEST_P(BothModes, EintrIsRetriedNotTakenForADisconnect) {
    auto server = start({"--trace"});
    Fd conn = connect_to(server.port());
    ASSERT_TRUE(send_all(conn.get(), "before"));
    ASSERT_EQ(recv_exactly(conn.get(), 6), "before");
    bool interrupted = false;
    for (int i = 0; i < 20 && !interrupted; ++i) {
        server.signal(SIGUSR1);
        interrupted = server.wait_for_stderr("-1 EINTR", 250ms);
    }
    ASSERT_TRUE(interrupted) << server.stderr_text();
    ASSERT_TRUE(send_all(conn.get(), "after"));
    EXPECT_EQ(recv_exactly(conn.get(), 5), "after");
    Fd second = connect_to(server.port());  // and the accept loop survived it too
    conn.reset();
    ASSERT_TRUE(send_all(second.get(), "next"));
    EXPECT_EQ(recv_exactly(second.get(), 4), "next");
    expect_clean_exit_within_2s(server);
}

TEST_P(BothModes, TraceShowsEachSystemCallAndItsResult) {
    auto server = start({"--trace"});
    ASSERT_TRUE(echo_session(server.port(), "hello"));  // returns once the server has closed
    expect_clean_exit_within_2s(server);
    std::string err = server.stderr_text();
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(accept4\(fd=\d+\) = \d+)"))) << err;
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(read\(fd=\d+, len=\d+\) = 5)"))) << err;
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(write\(fd=\d+, len=5\) = 5)"))) << err;
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(read\(fd=\d+, len=\d+\) = 0)"))) << err;
    EXPECT_EQ(err.find("\033["), std::string::npos) << "no colour when stderr is not a terminal";
}

TEST(Chapter01, WithoutTraceStderrHoldsOnlyTheStatsLine) {
    auto server = ServerProcess::start(kServer, {});
    ASSERT_TRUE(echo_session(server.port(), "hello"));  // returns once the server has closed
    expect_clean_exit_within_2s(server);
    std::string err = server.stderr_text();
    EXPECT_EQ(err.rfind("stats: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    auto stats = server.stats();
    EXPECT_GE(stats["read"], 2u);  // "hello", then EOF
    EXPECT_GE(stats["write"], 1u);
}

// ---- bad command lines ----

struct BadCli {
    const char* name;
    std::vector<std::string> args;
    const char* message;  // a part of the one line expected on stderr
};
void PrintTo(const BadCli& b, std::ostream* os) { *os << b.name; }

class BadCommandLine : public testing::TestWithParam<BadCli> {};

INSTANTIATE_TEST_SUITE_P(
    Chapter01, BadCommandLine,
    testing::Values(BadCli{"UnknownFlag", {"--bogus"}, "unknown argument '--bogus'"},
                    BadCli{"PortNotANumber", {"--port", "notanumber"}, "--port expects a whole number"},
                    BadCli{"PortTooLarge", {"--port", "70000"}, "--port must be between 0 and 65535"},
                    BadCli{"PortMissingValue", {"--port"}, "--port expects a value"},
                    BadCli{"SwitchWithValue", {"--threads=yes"}, "--threads takes no value"},
                    BadCli{"BadHost", {"--host", "999.1.1.1", "--port", "0"}, "bad address '999.1.1.1'"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_P(BadCommandLine, PrintsOneClearLineAndExitsNonZero) {
    StartOptions o;
    o.wait_ready = false;
    o.add_port_zero = false;
    auto proc = ServerProcess::start(kServer, GetParam().args, o);
    Exit e = proc.wait();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.signal, 0);
    EXPECT_NE(e.code, 0);
    std::string err = proc.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(GetParam().message), std::string::npos) << err;
    EXPECT_EQ(proc.stdout_text(), "");
}

TEST(Chapter01, PortInUseIsOneClearLineAndExitCode1) {
    auto first = ServerProcess::start(kServer, {});
    StartOptions o;
    o.wait_ready = false;
    auto second = ServerProcess::start(kServer, {"--port", std::to_string(first.port())}, o);
    Exit e = second.wait();
    EXPECT_EQ(e.code, 1);
    EXPECT_EQ(second.stderr_text(), fmt::format("01-blocking: bind 127.0.0.1:{}: Address already in use\n", first.port()));
    expect_clean_exit_within_2s(first);
}

TEST(Chapter01, HelpListsEveryFlagAndExitsZero) {
    StartOptions o;
    o.wait_ready = false;
    o.add_port_zero = false;
    auto proc = ServerProcess::start(kServer, {"--help"}, o);
    EXPECT_EQ(proc.wait().code, 0);
    for (const char* flag : {"--host", "--port", "--trace", "--threads", "--help"})
        EXPECT_NE(proc.stdout_text().find(flag), std::string::npos) << flag;
}

// ---- what the modes demonstrate ----

TEST(Chapter01, IterativeServesASecondClientOnlyAfterTheFirstLeaves) {
    auto server = ServerProcess::start(kServer, {});
    Fd a = connect_to(server.port());
    ASSERT_TRUE(send_all(a.get(), "A"));
    ASSERT_EQ(recv_exactly(a.get(), 1), "A");

    Fd b = connect_to(server.port());  // connect() succeeds: the kernel queued B in the backlog
    ASSERT_TRUE(send_all(b.get(), "B"));
    EXPECT_TRUE(nothing_arrives(b.get(), 300ms)) << "B was served while A was still connected";

    a.reset();  // A leaves; the server goes back to accept() and finds B
    EXPECT_EQ(recv_exactly(b.get(), 1, 2s), "B");
    expect_clean_exit_within_2s(server);
}

TEST(Chapter01, ThreadsServeTwoHundredClientsAtOnce) {
    auto server = ServerProcess::start(kServer, {"--threads"});
    constexpr int kClients = 200;
    std::vector<Fd> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(connect_to(server.port()));
    // Every client is connected before any sends: an iterative server would
    // answer only the first.
    for (int i = 0; i < kClients; ++i) ASSERT_TRUE(send_all(clients[i].get(), fmt::format("client {:04}", i)));
    for (int i = 0; i < kClients; ++i) EXPECT_EQ(recv_exactly(clients[i].get(), 11), fmt::format("client {:04}", i));
    EXPECT_GE(thread_count(server.pid()), kClients + 1) << "one thread per connection, plus main";
    // Interleave: each client again, in reverse order.
    for (int i = kClients - 1; i >= 0; --i) ASSERT_TRUE(send_all(clients[i].get(), "again"));
    for (int i = kClients - 1; i >= 0; --i) EXPECT_EQ(recv_exactly(clients[i].get(), 5), "again");
    expect_clean_exit_within_2s(server);
}

// With --threads and a low RLIMIT_NOFILE, accept() fails with EMFILE. The
// server must close the excess clients at once (the reserved-fd trick), keep
// serving the connected ones, not spin, and serve new clients once
// descriptors are free again.
TEST(Chapter01, ThreadsOutOfDescriptorsClosesExcessClientsWithoutSpinning) {
    constexpr int kLimit = 32;
    constexpr int kClients = 48;
    StartOptions o;
    o.max_open_files = kLimit;
    auto server = ServerProcess::start(kServer, {"--threads", "--trace"}, o);

    std::vector<Fd> served;
    int refused = 0;
    for (int i = 0; i < kClients; ++i) {
        Fd c = connect_to(server.port());
        ASSERT_TRUE(send_all(c.get(), "?"));
        std::string got = recv_exactly(c.get(), 1, 2s);
        if (got == "?") {
            served.push_back(std::move(c));
        } else {
            EXPECT_NE(wait_closed(c.get(), 2s), PeerEnd::timeout) << "client " << i << " left hanging";
            ++refused;
        }
    }
    EXPECT_GE(served.size(), 10u);
    EXPECT_GE(refused, 1);
    for (auto& c : served) {  // the connected clients are still served
        ASSERT_TRUE(send_all(c.get(), "!"));
        EXPECT_EQ(recv_exactly(c.get(), 1), "!");
    }

    // Free some descriptors, then a new client is served again.
    for (int i = 0; i < 5; ++i) served.pop_back();
    for (int i = 0; i < 200 && open_fd_count(server.pid()) >= kLimit; ++i) nothing_arrives(served[0].get(), 10ms);
    Fd late = connect_to(server.port());
    ASSERT_TRUE(send_all(late.get(), "late"));
    EXPECT_EQ(recv_exactly(late.get(), 4, 2s), "late") << "open fds " << open_fd_count(server.pid()) << server.stderr_text();

    expect_clean_exit_within_2s(server);
    auto stats = server.stats();
    // A spinning accept loop would make millions of calls; ours makes about
    // two per refused client (EMFILE, then the accept that takes it).
    EXPECT_LE(stats["accept"], static_cast<std::uint64_t>(3 * kClients)) << server.stderr_text();
    EXPECT_GE(stats["accept_err"], static_cast<std::uint64_t>(refused));
}

}  // namespace
