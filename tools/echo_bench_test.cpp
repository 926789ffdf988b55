// echo-bench's tests: it runs as a child process against real servers (and one broken in-test server),
// and its --json line is read with plain string search. Nothing here depends on speed: only on
// counts that a correct run must produce exactly, with generous time bounds.
#include "net.hpp"
#include "server_process.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using namespace course;
using namespace course::test;

namespace {

struct Result {
    int status = -1;  // exit status; -1 if it did not exit normally in time
    std::string out;
};

// Runs echo-bench with `args`, collecting stdout (stderr passes through to the test's output).
// Killed (by its pid) if it has not finished in `timeout`.
Result run_bench(const std::vector<std::string>& args, std::chrono::seconds timeout = 60s) {
    int pipefd[2];
    if (::pipe(pipefd) != 0) return {};
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        std::vector<char*> argv{const_cast<char*>(ECHO_BENCH)};
        for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(ECHO_BENCH, argv.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    Result r;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{pipefd[0], POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
            ::kill(pid, SIGKILL);
            break;
        }
        char buf[4096];
        ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n <= 0) break;
        r.out.append(buf, static_cast<size_t>(n));
    }
    ::close(pipefd[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) && std::chrono::steady_clock::now() < deadline ? WEXITSTATUS(st) : -1;
    return r;
}

// The number after "key": in a JSON line; NaN if the key is missing or null.
double field(const std::string& json, const std::string& key) {
    auto at = json.find("\"" + key + "\":");
    if (at == std::string::npos) return std::nan("");
    const char* start = json.c_str() + at + key.size() + 3;
    char* end = nullptr;
    double v = std::strtod(start, &end);
    return end == start ? std::nan("") : v;  // null
}
bool is_null(const std::string& json, const std::string& key) {
    return json.find("\"" + key + "\":null") != std::string::npos;
}

std::vector<std::string> args(std::uint16_t port, std::vector<std::string> more) {
    std::vector<std::string> a{"--port", std::to_string(port), "--json", "--warmup", "0.1"};
    a.insert(a.end(), more.begin(), more.end());
    return a;
}

TEST(EchoBench, PingPongAgainst06) {
    auto server = ServerProcess::start(BIN_06, {});
    Result r = run_bench(args(server.port(), {"--connections", "10", "--duration", "0.3", "--ramp-batch", "3"}));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_GT(field(r.out, "round_trips"), 0) << r.out;
    EXPECT_EQ(field(r.out, "errors"), 0) << r.out;
    EXPECT_EQ(field(r.out, "refused"), 0) << r.out;
    // Bytes are counted as they are verified; a round trip when its last byte is: at each end of the
    // measured interval, each connection may have part of one message on either side.
    EXPECT_NEAR(field(r.out, "bytes"), 64 * field(r.out, "round_trips"), 64 * 10) << r.out;
    EXPECT_GT(field(r.out, "p999_us"), 0) << r.out;
    for (const char* key : {"mode", "connections", "idle", "size", "duration_s", "round_trips", "round_trips_per_s",
                            "p50_us", "p99_us", "p999_us", "bytes", "bytes_per_s", "errors", "refused", "idle_ok",
                            "client_cpu_s", "client_cpu_us_per_rt", "server_cpu_s", "server_cpu_us_per_rt"})
        EXPECT_NE(r.out.find(std::string("\"") + key + "\":"), std::string::npos) << key;
    EXPECT_TRUE(is_null(r.out, "idle_ok")) << r.out;
    EXPECT_TRUE(is_null(r.out, "server_cpu_s")) << "no --server-pid: " << r.out;
    EXPECT_TRUE(server.stop().clean());
}

TEST(EchoBench, ReportsTheServersCpuWithServerPid) {
    auto server = ServerProcess::start(BIN_06, {});
    Result r = run_bench(args(server.port(), {"--connections", "4", "--duration", "0.3", "--server-pid",
                                              std::to_string(server.pid())}));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_GE(field(r.out, "server_cpu_s"), 0) << r.out;
    EXPECT_GE(field(r.out, "server_cpu_us_per_rt"), 0) << r.out;
    EXPECT_TRUE(server.stop().clean());
}

TEST(EchoBench, IdleActiveAgainst07) {
    auto server = ServerProcess::start(BIN_07, {});
    Result r = run_bench(args(server.port(), {"--mode", "idle-active", "--idle", "50", "--connections", "2",
                                              "--duration", "0.3", "--ramp-batch", "20"}));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(field(r.out, "idle_ok"), 50) << r.out;
    EXPECT_GT(field(r.out, "round_trips"), 0) << r.out;
    EXPECT_EQ(field(r.out, "errors"), 0) << r.out;
    EXPECT_TRUE(server.stop().clean());
}

TEST(EchoBench, StalledServerGivesErrorsNotAHang) {
    // SIGSTOP after the ramp is impossible to time from here; stopping it from the start makes the
    // ramp's probe fail instead: every bounded wait must expire and echo-bench must still report.
    auto server = ServerProcess::start(BIN_07, {});
    server.signal(SIGSTOP);
    auto t0 = std::chrono::steady_clock::now();
    Result r = run_bench(args(server.port(), {"--mode", "idle-active", "--idle", "5", "--connections", "1",
                                              "--duration", "0.2"}));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
    server.signal(SIGCONT);
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_GT(field(r.out, "errors"), 0) << r.out;
    EXPECT_LT(field(r.out, "idle_ok"), 5) << r.out;
    EXPECT_TRUE(server.stop().clean());
}

TEST(EchoBench, BulkAgainst06And07) {
    for (const char* bin : {BIN_06, BIN_07}) {
        auto server = ServerProcess::start(bin, {});
        Result r = run_bench(args(server.port(), {"--mode", "bulk", "--bytes", "8388608"}));
        EXPECT_EQ(r.status, 0) << bin << ": " << r.out;
        EXPECT_EQ(field(r.out, "bytes"), 8388608) << bin << ": " << r.out;
        EXPECT_EQ(field(r.out, "errors"), 0) << bin << ": " << r.out;
        EXPECT_EQ(field(r.out, "round_trips"), 0) << bin << ": " << r.out;
        EXPECT_TRUE(is_null(r.out, "p50_us")) << bin << ": " << r.out;
        EXPECT_TRUE(server.stop().clean());
    }
}

// A blocking echo server in a thread that flips one bit of byte `corrupt_at` of every connection's
// stream (the 100th 64-byte message, after echo-bench's 32-byte ramp probe). Serves one
// connection at a time until stop is set.
class CorruptingServer {
public:
    explicit CorruptingServer(size_t corrupt_at) : listener_(listen_tcp("127.0.0.1", 0)) {
        port_ = local_port(listener_.get());
        thread_ = std::thread([this, corrupt_at] { serve(corrupt_at); });
    }
    ~CorruptingServer() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    void serve(size_t corrupt_at) {
        while (!stop_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            int fd = ::accept(listener_.get(), nullptr, nullptr);
            if (fd < 0) continue;
            size_t pos = 0;
            char buf[4096];
            for (;;) {
                pollfd c{fd, POLLIN, 0};
                if (stop_ || ::poll(&c, 1, 50) < 0) break;
                if (c.revents == 0) continue;
                ssize_t n = ::read(fd, buf, sizeof buf);
                if (n <= 0) break;
                if (corrupt_at >= pos && corrupt_at < pos + static_cast<size_t>(n)) buf[corrupt_at - pos] ^= 0x10;
                pos += static_cast<size_t>(n);
                if (::send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
            }
            ::close(fd);
        }
    }
    Fd listener_;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

TEST(EchoBench, CatchesOneCorruptedByte) {
    CorruptingServer server(32 + 99 * 64 + 17);
    Result r = run_bench(args(server.port(), {"--connections", "1", "--duration", "0.5", "--warmup", "0"}));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_GT(field(r.out, "errors"), 0) << r.out;
}

TEST(EchoBench, CatchesACorruptedByteInBulk) {
    CorruptingServer server(32 + 5'000'000);
    Result r = run_bench(args(server.port(), {"--mode", "bulk", "--bytes", "8388608"}));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(field(r.out, "errors"), 1) << r.out;
    EXPECT_LT(field(r.out, "bytes"), 8388608) << r.out;
}

// Two connections whose echoes are crossed after their ramp probes (32 bytes each, echoed
// faithfully): every byte from one goes back on the other. Only payloads that differ between
// connections can notice; identical messages of the same size would pass for echoes.
TEST(EchoBench, CatchesCrossedConnections) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    std::uint16_t port = local_port(listener.get());
    std::thread server([&] {
        auto echo_exactly = [](int fd, size_t n) {
            std::string buf(n, '\0');
            for (size_t got = 0; got < n;) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 5000) <= 0) return;
                ssize_t r = ::read(fd, buf.data() + got, n - got);
                if (r <= 0) return;
                got += static_cast<size_t>(r);
            }
            (void)::send(fd, buf.data(), n, MSG_NOSIGNAL);
        };
        Fd conn[2];
        for (auto& c : conn) {
            pollfd p{listener.get(), POLLIN, 0};
            if (::poll(&p, 1, 5000) <= 0) return;
            c = Fd(::accept(listener.get(), nullptr, nullptr));
            echo_exactly(c.get(), 32);
        }
        for (bool open = true; open;) {
            pollfd p[2] = {{conn[0].get(), POLLIN, 0}, {conn[1].get(), POLLIN, 0}};
            if (::poll(p, 2, 5000) <= 0) return;
            for (int i = 0; i < 2; ++i) {
                if (p[i].revents == 0) continue;
                char buf[4096];
                ssize_t r = ::read(conn[i].get(), buf, sizeof buf);
                if (r <= 0 || ::send(conn[1 - i].get(), buf, static_cast<size_t>(r), MSG_NOSIGNAL) != r) open = false;
            }
        }
    });
    Result r = run_bench(args(port, {"--connections", "2", "--ramp-batch", "1", "--duration", "0.3", "--warmup", "0"}));
    server.join();
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(field(r.out, "errors"), 2) << r.out;
    EXPECT_EQ(field(r.out, "round_trips"), 0) << r.out;
}

TEST(EchoBench, NothingListeningIsRefused) {
    Fd holder = listen_tcp("127.0.0.1", 0);  // a port that is surely free once closed
    std::uint16_t port = local_port(holder.get());
    holder.reset();
    Result r = run_bench(args(port, {"--connections", "5", "--duration", "0.1"}));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_EQ(field(r.out, "refused"), 5) << r.out;
}

TEST(EchoBench, BadCommandLineExits2) {
    EXPECT_EQ(run_bench({}).status, 2) << "--port is required";
    EXPECT_EQ(run_bench({"--port", "1", "--mode", "sideways"}).status, 2);
    EXPECT_EQ(run_bench({"--port", "1", "--size", "0"}).status, 2);
    EXPECT_EQ(run_bench({"--port", "1", "--duration", "soon"}).status, 2);
    EXPECT_EQ(run_bench({"--port", "1", "--idle", "5"}).status, 2) << "--idle without --mode idle-active";
    EXPECT_EQ(run_bench({"--port", "1", "--frobnicate", "3"}).status, 2);
    EXPECT_EQ(run_bench({"--port"}).status, 2);
}

}  // namespace
