// Tests of the test harness itself: if these helpers lied, every chapter's
// tests would pass or fail for the wrong reason.
#include "client.hpp"
#include "net.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

using namespace course;
using namespace course::test;

namespace {

constexpr const char* kServer = SERVER_BIN;  // chapter 01 is the simplest real server to drive

StartOptions no_ready_line(std::chrono::milliseconds timeout = 10s) {
    StartOptions o;
    o.wait_ready = false;
    o.add_port_zero = false;
    o.ready_timeout = timeout;
    return o;
}

TEST(ServerProcess, StartsServerReadsPortAndStopsItCleanly) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_GT(server.port(), 0);
    EXPECT_EQ(server.ready_line(), fmt::format("listening on 127.0.0.1:{}", server.port()));
    Fd conn = connect_to(server.port());
    ASSERT_TRUE(send_all(conn.get(), "ping"));
    EXPECT_EQ(recv_exactly(conn.get(), 4), "ping");
    conn.reset();
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << "code " << e.code << " signal " << e.signal;
    EXPECT_GE(server.stats()["accept"], 1u) << server.stderr_text();
}

TEST(ClientHelpers, EchoSessionSucceedsAgainstAnEchoServerOnly) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_TRUE(echo_session(server.port(), "one whole session"));
    // A peer that accepts but never echoes: the session fails (after its timeout).
    Fd silent = listen_tcp("127.0.0.1", 0);
    EXPECT_FALSE(echo_session(local_port(silent.get()), "anyone?", 200ms));
    server.stop();
}

TEST(ServerProcess, ReportsAProgramThatCannotBeExecuted) {
    try {
        ServerProcess::start("/nonexistent/server", {});
        FAIL() << "start() should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot run /nonexistent/server"), std::string::npos) << e.what();
    }
}

TEST(ServerProcess, ThrowsWithTheChildsStderrWhenItExitsWithoutReadyLine) {
    StartOptions o;
    o.add_port_zero = false;
    try {
        ServerProcess::start("/bin/sh", {"-c", "echo 'cannot listen' >&2; exit 3"}, o);
        FAIL() << "start() should have thrown";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot listen"), std::string::npos) << e.what();
    }
}

TEST(ServerProcess, GivesUpWaitingForAReadyLineAfterTheTimeoutAndKillsTheChild) {
    StartOptions o;
    o.add_port_zero = false;
    o.ready_timeout = 300ms;
    auto begin = std::chrono::steady_clock::now();
    EXPECT_THROW(ServerProcess::start("/bin/sh", {"-c", "exec sleep 30"}, o), std::runtime_error);
    // The destructor killed and reaped the child: we did not wait 30 s.
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 10s);
}

TEST(ServerProcess, WaitReturnsTheExitCodeAndOutputOfAProcessThatEndsByItself) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "echo out; echo err >&2; exit 7"}, no_ready_line());
    Exit e = proc.wait();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 7);
    EXPECT_EQ(proc.stdout_text(), "out\n");
    EXPECT_EQ(proc.stderr_text(), "err\n");
}

TEST(ServerProcess, StopReportsTheSignalThatKilledAProcessIgnoringNothing) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "exec sleep 30"}, no_ready_line());
    Exit e = proc.stop(5s, SIGKILL);
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.signal, SIGKILL);
    EXPECT_FALSE(e.clean());
}

TEST(ServerProcess, StopKillsAProcessThatIgnoresSigterm) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "trap '' TERM; echo ready >&2; while :; do sleep 1; done"},
                                     no_ready_line());
    ASSERT_TRUE(proc.wait_for_stderr("ready"));  // the trap is installed
    Exit e = proc.stop(300ms);
    EXPECT_FALSE(e.exited);  // had to be killed
    EXPECT_FALSE(proc.running());
}

TEST(ServerProcess, AppliesTheOpenFileLimitToTheChild) {
    StartOptions o = no_ready_line();
    o.max_open_files = 64;
    auto proc = ServerProcess::start("/bin/sh", {"-c", "ulimit -n"}, o);
    proc.wait();
    EXPECT_EQ(proc.stdout_text(), "64\n");
}

TEST(ServerProcess, WaitForStderrSeesTextAsItArrives) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "echo one >&2; sleep 30; echo two >&2"}, no_ready_line());
    EXPECT_TRUE(proc.wait_for_stderr("one", 5s));
    EXPECT_FALSE(proc.wait_for_stderr("two", 100ms));  // still sleeping
    proc.stop(5s, SIGKILL);
}

TEST(ServerProcess, ChildStdinIsEmpty) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "read x; echo \"[$x] $?\""}, no_ready_line());
    proc.wait();
    EXPECT_EQ(proc.stdout_text(), "[] 1\n");  // read hit EOF at once: /dev/null, not the terminal
}

TEST(ParseStats, ReadsKeyValuePairs) {
    auto s = parse_stats("stats: accept=3 accept_eagain=0 read=12 read_eagain=5");
    EXPECT_EQ(s.size(), 4u);
    EXPECT_EQ(s["accept"], 3u);
    EXPECT_EQ(s["read"], 12u);
    EXPECT_EQ(s["read_eagain"], 5u);
}

// A listener in this process, to check the client helpers against a peer we control.
struct LocalPeer {
    Fd listener = listen_tcp("127.0.0.1", 0);
    Fd client = connect_to(local_port(listener.get()));
    Fd server{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)};
};

TEST(ClientHelpers, RecvExactlyReturnsWhatArrivedWhenTheTimeoutPasses) {
    LocalPeer p;
    ASSERT_TRUE(send_all(p.server.get(), "abc"));
    EXPECT_EQ(recv_exactly(p.client.get(), 10, 200ms), "abc");
}

TEST(ClientHelpers, WaitClosedTellsEofFromResetFromTimeout) {
    LocalPeer p;
    EXPECT_EQ(wait_closed(p.client.get(), 100ms), PeerEnd::timeout);
    p.server.reset();
    EXPECT_EQ(wait_closed(p.client.get()), PeerEnd::eof);

    LocalPeer q;
    abort_close(q.server);
    EXPECT_EQ(wait_closed(q.client.get()), PeerEnd::reset);

    LocalPeer r;
    ASSERT_TRUE(send_all(r.server.get(), "x"));
    EXPECT_EQ(wait_closed(r.client.get()), PeerEnd::data);
}

TEST(ClientHelpers, HalfCloseDeliversEofToThePeerButKeepsReceiving) {
    LocalPeer p;
    half_close(p.client.get());
    EXPECT_EQ(wait_closed(p.server.get()), PeerEnd::eof);
    ASSERT_TRUE(send_all(p.server.get(), "still here"));
    EXPECT_EQ(recv_exactly(p.client.get(), 10), "still here");
}

TEST(ClientHelpers, NothingArrivesIsFalseOnceDataIsThere) {
    LocalPeer p;
    EXPECT_TRUE(nothing_arrives(p.client.get(), 50ms));
    ASSERT_TRUE(send_all(p.server.get(), "x"));
    EXPECT_FALSE(nothing_arrives(p.client.get(), 2s));
}

TEST(ClientHelpers, ExchangeSendsAndReceivesMoreThanTheSocketBuffersHold) {
    LocalPeer p;
    // A tiny echo on the other end, in a thread.
    std::thread echo([fd = p.server.get()] {
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0 || !send_all(fd, std::string_view(buf, static_cast<size_t>(n)))) break;
        }
    });
    std::mt19937 rng(1);
    std::string payload = random_bytes(8 << 20, 42);
    EXPECT_TRUE(exchange(p.client.get(), payload, rng) == payload);
    half_close(p.client.get());
    echo.join();
}

TEST(ClientHelpers, SendAllGivesUpWhenThePeerNeverReads) {
    LocalPeer p;
    EXPECT_FALSE(send_all(p.client.get(), std::string(64 << 20, 'x'), 300ms));
}

TEST(ProcReaders, ReadPlausibleValuesForThisProcess) {
    EXPECT_GT(rss_kib(::getpid()), 100);
    EXPECT_GE(cpu_seconds(::getpid()), 0.0);
    EXPECT_GE(thread_count(::getpid()), 1);
    int before = open_fd_count(::getpid());
    Fd extra(::dup(0));
    EXPECT_EQ(open_fd_count(::getpid()), before + 1);
}

TEST(ProcReaders, SeeWhichSystemCallAProcessIsBlockedIn) {
    auto proc = ServerProcess::start("/bin/sh", {"-c", "exec sleep 30"}, no_ready_line());
    EXPECT_TRUE(wait_until_in_syscall(proc.pid(), SYS_clock_nanosleep));
    EXPECT_FALSE(wait_until_in_syscall(proc.pid(), SYS_write, 50ms));
    proc.stop(5s, SIGKILL);
}

TEST(Eventually, ReturnsOnceTheConditionHoldsOrFalseAfterTheTimeout) {
    int calls = 0;
    EXPECT_TRUE(eventually([&] { return ++calls == 3; }));
    EXPECT_EQ(calls, 3);  // checked again until it held, and no more
    auto begin = std::chrono::steady_clock::now();
    EXPECT_FALSE(eventually([] { return false; }, 50ms));
    auto waited = std::chrono::steady_clock::now() - begin;
    EXPECT_GE(waited, 50ms);
    EXPECT_LT(waited, 5s);
}

TEST(RandomBytes, IsDeterministicPerSeedAndCoversAllByteValues) {
    EXPECT_EQ(random_bytes(1000, 7), random_bytes(1000, 7));
    EXPECT_NE(random_bytes(1000, 7), random_bytes(1000, 8));
    std::string s = random_bytes(1 << 16, 3);
    bool seen[256] = {};
    for (unsigned char c : s) seen[c] = true;
    EXPECT_EQ(std::count(std::begin(seen), std::end(seen), true), 256);
}

}  // namespace
