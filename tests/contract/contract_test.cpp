// The server contract (docs/overview.md, "The server contract"), tested the
// same way for every chapter's server. One test suite, parameterised over a
// table of servers; a chapter's own tests (01-blocking/blocking_test.cpp, ...)
// test only what makes that chapter different.
//
// A test that does not apply to a server's model says so with GTEST_SKIP,
// decided by the server's traits, so a new chapter is one more table row.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>
#include <vector>

#include <fmt/format.h>

using namespace course;
using namespace course::test;

namespace {

using Clock = std::chrono::steady_clock;

// What a server's I/O model lets us expect of it, beyond the contract.
struct Traits {
    // Serves many clients at the same time. False for 01's iterative mode: a
    // second client waits in the listen backlog until the first one leaves.
    bool concurrent = true;
    // While idle, sleeps in a traced system call (accept, read, write, select,
    // poll, epoll_wait), so SIGUSR1 makes that call return -1 EINTR and --trace
    // shows it. False for 02: its calls never sleep. (With --backoff-us it
    // sleeps in usleep(3), which --trace does not show and which has nothing
    // to retry: an interrupted back-off is only a shorter one.)
    bool blocks_in_syscalls = true;
    // Calls accept/read again and again while idle (02, with or without
    // back-off), so its call counts grow with time, not with the work done.
    bool spins_when_idle = false;
    // Holds at most a bounded amount of memory for a client that sends but
    // does not read its echo (backpressure). The contract: true for all.
    bool bounded_memory_per_slow_reader = true;
};

struct Server {
    const char* name;               // the test name suffix, e.g. "03-select" (as 03_select)
    const char* binary;             // from CMake: $<TARGET_FILE:chapter>
    std::vector<std::string> args;  // the chapter flags this entry runs with
    Traits traits;
};
void PrintTo(const Server& s, std::ostream* os) { *os << s.name; }  // names the ctest cases

// A chapter whose target does not exist yet has no BIN_NN (tests/CMakeLists.txt).
std::vector<Server> servers() {
    std::vector<Server> table;
#ifdef HAVE_01
    table.push_back({"01-iterative", BIN_01, {}, {.concurrent = false}});
    table.push_back({"01-threads", BIN_01, {"--threads"}, {}});
#endif
#ifdef HAVE_02
    table.push_back({"02-spin", BIN_02, {}, {.blocks_in_syscalls = false, .spins_when_idle = true}});
    table.push_back({"02-spin-backoff", BIN_02, {"--backoff-us", "1000"},
                     {.blocks_in_syscalls = false, .spins_when_idle = true}});
#endif
#ifdef HAVE_03
    table.push_back({"03-select", BIN_03, {}, {}});
#endif
#ifdef HAVE_04
    table.push_back({"04-poll", BIN_04, {}, {}});
#endif
#ifdef HAVE_05
    table.push_back({"05-epoll-lt", BIN_05, {}, {}});
#endif
#ifdef HAVE_06
    table.push_back({"06-epoll-et", BIN_06, {}, {}});
#endif
#ifdef HAVE_07
    table.push_back({"07-netpoller", BIN_07, {}, {}});
    table.push_back({"07-netpoller-poll", BIN_07, {"--poller", "poll"}, {}});
#endif
    return table;
}

class ContractTest : public testing::TestWithParam<Server> {
protected:
    const Traits& traits() const { return GetParam().traits; }
    // The program name the server uses in its messages: its file name.
    std::string chapter() const { return std::filesystem::path(GetParam().binary).filename().string(); }

    // The entry's flags, then `extra`; the harness adds --port 0 and waits for the ready line.
    ServerProcess start(std::vector<std::string> extra = {}, StartOptions o = {}) const {
        auto args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return ServerProcess::start(GetParam().binary, args, o);
    }
    // For a run that is expected to end by itself (--help, a bad command line).
    ServerProcess run_to_exit(std::vector<std::string> extra) const {
        StartOptions o;
        o.wait_ready = false;
        o.add_port_zero = false;
        return start(std::move(extra), o);
    }
};

INSTANTIATE_TEST_SUITE_P(Contract, ContractTest, testing::ValuesIn(servers()), [](const auto& info) {
    std::string name = info.param.name;
    std::replace(name.begin(), name.end(), '-', '_');  // gtest names: letters, digits, '_'
    return name;
});

void expect_clean_exit_within_2s(ServerProcess& server) {
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << "exited " << e.exited << " code " << e.code << " signal " << e.signal << "\n"
                           << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_NE(server.stderr_text().find("stats: "), std::string::npos) << server.stderr_text();
}

// ---- start, echo, half-close ----

TEST_P(ContractTest, FirstLineOnStdoutIsTheReadyLineWithTheRealPort) {
    auto server = start();
    EXPECT_TRUE(std::regex_match(server.ready_line(), std::regex(R"(listening on 127\.0\.0\.1:[0-9]+)")));
    EXPECT_NE(server.port(), 0);
    EXPECT_EQ(server.stdout_text(), server.ready_line() + "\n");
    expect_clean_exit_within_2s(server);
}

TEST_P(ContractTest, EchoesEightMiBSentInRandomChunksByteForByte) {
    auto server = start();
    Fd conn = connect_to(server.port());
    std::mt19937 rng(2024);
    std::string payload = random_bytes(8 << 20, 1);
    std::string echoed = exchange(conn.get(), payload, rng);
    ASSERT_EQ(echoed.size(), payload.size());
    EXPECT_TRUE(echoed == payload) << "echo differs from what was sent";
    expect_clean_exit_within_2s(server);
}

TEST_P(ContractTest, IsBinarySafeForAllByteValues) {
    auto server = start();
    Fd conn = connect_to(server.port());
    std::string all;
    for (int round = 0; round < 4; ++round)
        for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
    ASSERT_TRUE(send_all(conn.get(), all));
    EXPECT_TRUE(recv_exactly(conn.get(), all.size()) == all);
    expect_clean_exit_within_2s(server);
}

TEST_P(ContractTest, HalfCloseEchoesEverythingPendingThenCloses) {
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

// ---- many clients ----

// Every client is connected before any sends, and every round each one sends
// before any reads its echo: only a server that serves them all at once can
// answer. (An iterative server would answer the first client only.)
TEST_P(ContractTest, TwoHundredClientsInterleavePingPongs) {
    if (!traits().concurrent) GTEST_SKIP() << "serves one client at a time by design";
    auto server = start();
    // 200 clients, 10 rounds, a distinct 9-byte message per client and round;
    // then each half-closes and must see the server close. Bounded per call.
    EXPECT_EQ(ping_pong(server.port(), 200, 10, 9), "");
    expect_clean_exit_within_2s(server);
}

// ---- bad peers ----

TEST_P(ContractTest, AClientThatResetsDoesNotHurtTheNextOne) {
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
TEST_P(ContractTest, WritingToAClientThatLeftDoesNotKillTheServer) {
    auto server = start();
    for (int i = 0; i < 3; ++i) {
        Fd leaver = connect_to(server.port());
        // Fill the pipe both ways until the server cannot write the echo.
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

TEST_P(ContractTest, SigpipeIsIgnoredSoAWriteToAGonePeerCannotKillTheServer) {
    auto server = start();
    std::ifstream status(fmt::format("/proc/{}/status", server.pid()));
    std::string line;
    unsigned long long ignored = 0;
    while (std::getline(status, line))
        if (line.rfind("SigIgn:", 0) == 0) ignored = std::stoull(line.substr(7), nullptr, 16);
    EXPECT_TRUE(ignored & (1ull << (SIGPIPE - 1))) << "SigIgn mask " << std::hex << ignored;
    expect_clean_exit_within_2s(server);
}

// Streams `total` bytes (`block` repeated) to `fd` from its own thread, and
// never reads. It reports a stall when it finds no room to send for 300 ms:
// the socket buffers both ways and the server's buffer for this client are
// then full, and the server has stopped reading from it. When everything is
// sent, it half-closes.
class StreamSender {
public:
    StreamSender(int fd, const std::string& block, size_t total)
        : thread_([this, fd, &block, total] { run(fd, block, total); }) {}
    ~StreamSender() {
        quit_ = true;  // a test that failed half-way: stop within one poll timeout
        thread_.join();
    }
    // True once the sender has stalled; false if it finished first or the timeout passed.
    bool wait_until_stalled(Millis timeout) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, timeout, [&] { return stalled_ || over_; });
        return stalled_;
    }
    // Waits for the sender to end (all sent, an error, or its own 100 s deadline).
    size_t wait_sent(Millis timeout) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, timeout, [&] { return over_; });
        return sent_;
    }
    size_t sent() {
        std::lock_guard lock(mu_);
        return sent_;
    }

private:
    void run(int fd, const std::string& block, size_t total) {
        auto deadline = Clock::now() + 100s;
        size_t sent = 0;
        while (sent < total && !quit_ && Clock::now() < deadline) {
            size_t offset = sent % block.size();
            size_t len = std::min(block.size() - offset, total - sent);
            ssize_t n = ::send(fd, block.data() + offset, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<size_t>(n);
                std::lock_guard lock(mu_);
                sent_ = sent;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) break;
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 300) == 0) {
                std::lock_guard lock(mu_);
                stalled_ = true;
                cv_.notify_all();
            }
        }
        if (sent == total) half_close(fd);
        std::lock_guard lock(mu_);
        over_ = true;
        cv_.notify_all();
    }

    std::mutex mu_;
    std::condition_variable cv_;
    size_t sent_ = 0;
    bool stalled_ = false, over_ = false;
    std::atomic<bool> quit_{false};
    std::thread thread_;  // last: starts after the members it uses exist
};

// Receives up to `total` bytes and checks each piece against `block` repeated,
// at the piece's offset, without keeping what arrived. Returns the number of
// bytes that arrived and matched; stops at the first difference (`mismatch`),
// EOF, an error, the timeout, or when nothing arrives for `idle`.
size_t receive_repeated_block(int fd, const std::string& block, size_t total, Millis timeout, Millis idle,
                              bool& mismatch) {
    auto deadline = Clock::now() + timeout;
    std::string buf(block.size(), '\0');
    size_t received = 0;
    mismatch = false;
    while (received < total) {
        ssize_t n = ::recv(fd, buf.data(), std::min(buf.size(), total - received), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            auto left = std::min(std::chrono::duration_cast<Millis>(deadline - Clock::now()), idle).count();
            pollfd p{fd, POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) break;
            continue;
        }
        if (n <= 0) break;  // EOF or error
        for (size_t done = 0; done < static_cast<size_t>(n);) {
            size_t offset = (received + done) % block.size();
            size_t len = std::min(static_cast<size_t>(n) - done, block.size() - offset);
            if (std::memcmp(buf.data() + done, block.data() + offset, len) != 0) {
                mismatch = true;
                return received + done;
            }
            done += len;
        }
        received += static_cast<size_t>(n);
    }
    return received;
}

// A client that sends and never reads ends up stalled: its echo fills every
// buffer on the way back, the server stops reading from it, and TCP stops the
// client. From then on a server that waits properly makes no system calls
// for it at all. One that keeps asking to read a connection whose echo buffer
// is full (EPOLLIN, POLLIN, or the fd left in select's read set) is woken
// again and again for data it will not take: a busy loop that --trace shows.
TEST_P(ContractTest, AStalledClientCostsNoSystemCalls) {
    if (traits().spins_when_idle) GTEST_SKIP() << "this server makes calls all the time by design";
    auto server = start({"--trace"});
    Fd conn = connect_to(server.port());
    // Send until nothing more goes in for 300 ms: every buffer is full.
    const std::string chunk(1 << 16, 'x');
    bool stalled = false;
    for (int i = 0; i < 4096 && !stalled; ++i) {  // at most 256 MiB
        ssize_t n = ::send(conn.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            pollfd p{conn.get(), POLLOUT, 0};
            stalled = ::poll(&p, 1, 300) == 0;
        }
    }
    ASSERT_TRUE(stalled) << "the client never stalled: does the server read without limit?";
    const size_t before = server.stderr_text().size();
    pollfd p{conn.get(), POLLOUT, 0};
    ASSERT_EQ(::poll(&p, 1, 300), 0);  // 300 ms more, still stalled: the window we look at
    std::string during = server.stderr_text().substr(before);
    EXPECT_LE(std::count(during.begin(), during.end(), '\n'), 5) << "calls made while stalled:\n"
                                                                 << during.substr(0, 2000);
    conn.reset();
    expect_clean_exit_within_2s(server);
}

// Client A sends 256 MiB and does not read. The server must stop reading
// from A once its bounded buffer for A is full (backpressure), keep serving
// B, and not grow: a server that buffered A's echo would grow by hundreds of
// MiB. Then A reads, and all 256 MiB must come back intact.
TEST_P(ContractTest, ASlowReaderStallsNobodyElseAndCannotMakeTheServerGrow) {
    if (!traits().concurrent) GTEST_SKIP() << "serves one client at a time by design: the slow reader is all it serves";
    if (!traits().bounded_memory_per_slow_reader) GTEST_SKIP() << "does not bound its buffer per client";
    constexpr size_t kBlock = 1 << 20;
    constexpr size_t kTotal = 256 << 20;    // far more than all the socket buffers in between
    constexpr long kMaxGrowthKib = 64 << 10;  // 64 MiB
    auto server = start();
    Fd a = connect_to(server.port());
    Fd b = connect_to(server.port());
    ASSERT_TRUE(send_all(b.get(), "warm-up", 2s));
    ASSERT_EQ(recv_exactly(b.get(), 7, 2s), "warm-up") << "B not served while A is connected";
    const long rss_before = rss_kib(server.pid());
    ASSERT_GT(rss_before, 0);

    const std::string block = random_bytes(kBlock, 5);
    StreamSender sender(a.get(), block, kTotal);
    ASSERT_TRUE(sender.wait_until_stalled(30s))
        << "A's sender never stalled: the server took " << sender.sent() << " bytes from A, who reads nothing";

    // A is stuck: B is still answered at once, and the server does not grow.
    long rss_max = rss_kib(server.pid());
    for (int i = 0; i < 20; ++i) {
        std::string ping = fmt::format("ping {:02}\n", i);
        ASSERT_TRUE(send_all(b.get(), ping, 2s)) << "ping " << i;
        ASSERT_EQ(recv_exactly(b.get(), ping.size(), 2s), ping) << "B not answered within 2 s while A is stalled";
        rss_max = std::max(rss_max, rss_kib(server.pid()));
    }
    EXPECT_LE(rss_max - rss_before, kMaxGrowthKib)
        << "server RSS grew from " << rss_before << " KiB to " << rss_max << " KiB while A sent "
        << sender.sent() << " bytes and read none";
    EXPECT_LT(sender.sent(), kTotal) << "the server read all of A's 256 MiB while A read nothing";

    // Now A reads: everything comes back, in order, then the server closes
    // (A half-closed after its last byte).
    bool mismatch = false;
    size_t received = receive_repeated_block(a.get(), block, kTotal, 90s, 10s, mismatch);
    ASSERT_FALSE(mismatch) << "echo differs from what was sent at byte " << received;
    ASSERT_EQ(received, kTotal) << "(stopped: EOF, an error, or nothing for 10 s)";
    EXPECT_EQ(sender.wait_sent(10s), kTotal);
    EXPECT_EQ(wait_closed(a.get()), PeerEnd::eof);
    expect_clean_exit_within_2s(server);
}

// With a low RLIMIT_NOFILE, accept() fails with EMFILE. The server must close
// the excess clients at once (they see EOF or a reset, not silence), keep
// serving the connected ones, not spin on accept, and serve new clients once
// descriptors are free again.
TEST_P(ContractTest, OutOfDescriptorsClosesExcessClientsAndRecovers) {
    if (!traits().concurrent) GTEST_SKIP() << "serves one client at a time: never holds enough descriptors to run out";
    constexpr int kLimit = 32;
    constexpr int kClients = 48;
    StartOptions o;
    o.max_open_files = kLimit;
    auto server = start({}, o);

    std::vector<Fd> served;
    int refused = 0;
    for (int i = 0; i < kClients; ++i) {
        Fd c = connect_to(server.port());
        ASSERT_TRUE(send_all(c.get(), "?"));
        if (recv_exactly(c.get(), 1, 2s) == "?") {
            served.push_back(std::move(c));
        } else {
            ASSERT_NE(wait_closed(c.get(), 2s), PeerEnd::timeout) << "client " << i << " left hanging";
            ++refused;
        }
    }
    EXPECT_GE(served.size(), 10u);
    EXPECT_GE(refused, 1) << "the limit was never reached: the test proved nothing";
    for (auto& c : served) {  // the connected clients are still served
        ASSERT_TRUE(send_all(c.get(), "!"));
        ASSERT_EQ(recv_exactly(c.get(), 1), "!");
    }

    // Five clients leave; once the server has closed their descriptors, a new
    // client is served again. (The table was full: at most kLimit open. Not
    // "kLimit - 5": a server may hold its spare descriptor or not at any moment.)
    for (int i = 0; i < 5; ++i) served.pop_back();
    EXPECT_TRUE(eventually([&] { return open_fd_count(server.pid()) <= kLimit - 4; }, 5s))
        << "open fds " << open_fd_count(server.pid()) << " of at most " << kLimit;
    Fd late = connect_to(server.port());
    ASSERT_TRUE(send_all(late.get(), "late"));
    EXPECT_EQ(recv_exactly(late.get(), 4, 2s), "late") << "open fds " << open_fd_count(server.pid()) << "\n"
                                                      << server.stderr_text();

    expect_clean_exit_within_2s(server);
    if (!traits().spins_when_idle) {
        // A loop that spins on EMFILE would make thousands of calls; a correct
        // one makes about two per refused client (EMFILE, then the accept that
        // takes it). Not counted: the accept that says EAGAIN, "nobody is
        // waiting", with which a non-blocking server ends each round of accepts.
        auto stats = server.stats();
        EXPECT_LE(stats["accept"] - stats["accept_eagain"], static_cast<std::uint64_t>(3 * kClients))
            << server.stderr_text();
    }
}

// ---- signals ----

TEST_P(ContractTest, SigtermWhileIdleExitsCleanly) {
    auto server = start();
    expect_clean_exit_within_2s(server);
}

TEST_P(ContractTest, SigintWhileAClientIsConnectedAndIdleExitsCleanly) {
    auto server = start();
    Fd idle = connect_to(server.port());
    ASSERT_TRUE(send_all(idle.get(), "hi"));
    ASSERT_EQ(recv_exactly(idle.get(), 2), "hi");  // the server now waits for this client
    Exit e = server.stop(5s, SIGINT);
    EXPECT_TRUE(e.clean()) << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_EQ(wait_closed(idle.get()), PeerEnd::eof);
}

// EINTR means "a signal arrived", not "the client left". SIGUSR1 interrupts
// the call the server sleeps in; --trace shows the -1 EINTR result, so we know
// the test really exercised that path before checking the client is still served.
TEST_P(ContractTest, EintrIsRetriedNotTakenForADisconnect) {
    if (!traits().blocks_in_syscalls) GTEST_SKIP() << "never sleeps in a system call, so a signal cannot interrupt one";
    auto server = start({"--trace"});
    Fd conn = connect_to(server.port());
    ASSERT_TRUE(send_all(conn.get(), "before"));
    ASSERT_EQ(recv_exactly(conn.get(), 6), "before");
    bool interrupted = false;
    for (int i = 0; i < 20 && !interrupted; ++i) {
        server.signal(SIGUSR1);
        interrupted = server.wait_for_stderr("-1 EINTR", 250ms);
    }
    ASSERT_TRUE(interrupted) << server.stderr_text().substr(0, 4000);
    ASSERT_TRUE(send_all(conn.get(), "after"));
    EXPECT_EQ(recv_exactly(conn.get(), 5), "after");
    Fd second = connect_to(server.port());  // and the accept loop survived it too
    conn.reset();
    ASSERT_TRUE(send_all(second.get(), "next"));
    EXPECT_EQ(recv_exactly(second.get(), 4), "next");
    expect_clean_exit_within_2s(server);
}

// ---- trace and stats ----

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

// ---- the command line ----

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
}

}  // namespace
