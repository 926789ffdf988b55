// The contract, part 3: what a model costs, counted. The system calls and CPU
// of an idle server, and the system calls per echo for the same work in
// every model.
#include "client.hpp"
#include "columns.hpp"
#include "proc.hpp"
#include "servers.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include <fmt/format.h>

namespace course::test::contract {
namespace {

using Clock = std::chrono::steady_clock;

// Every system call the stats line counts, of every kind.
std::uint64_t total_calls(std::map<std::string, std::uint64_t> stats) {
    std::uint64_t n = 0;
    for (const char* kind : {"accept", "read", "write", "close", "shutdown", "select", "poll", "epoll_wait", "epoll_ctl"})
        n += stats[kind];
    return n;
}

struct IdleRun {
    std::map<std::string, std::uint64_t> stats;  // the whole run's
    long long traced = 0;                        // lines --trace printed during the window, if on
    double cpu_seconds = 0;                      // the server's, during the window
    double seconds = 0;                          // the window's real length
};

// One client connects and echoes once; the server gets 100 ms to finish with
// it and go to sleep; then nothing happens for `window`; then it is stopped.
IdleRun idle_run(ServerProcess server, Millis window) {
    Fd client = connect_to(server.port());
    EXPECT_TRUE(send_all(client.get(), "hi"));
    EXPECT_EQ(recv_exactly(client.get(), 2), "hi");
    EXPECT_TRUE(nothing_arrives(client.get(), 100ms));  // settling
    IdleRun run;
    const size_t traced_before = server.stderr_text().size();
    const double cpu_before = precise_cpu_seconds(server.pid());
    const auto start = Clock::now();
    EXPECT_TRUE(nothing_arrives(client.get(), window));  // the window
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    run.cpu_seconds = precise_cpu_seconds(server.pid()) - cpu_before;
    const std::string during = server.stderr_text().substr(traced_before);
    run.traced = std::count(during.begin(), during.end(), '\n');
    expect_clean_exit_within_2s(server);
    run.stats = server.stats();
    return run;
}

// A server with nothing to do should sleep in a system call: no calls, no
// CPU. One client echoes once, then stays connected and silent for a window.
// The calls made in the window: for a server that sleeps, the lines --trace
// prints during it. For 02 (too many calls to trace: tracing slows it down
// five times), its stats line minus that of an identical run without the window.
TEST_P(ContractTest, AnIdleServerMakesNoCallsAndUsesNoCpuUnlessItSpins) {
    record(kIdleCalls, "");
    const bool heavy = comparison::heavy();
    if (heavy) record(kIdleCpu, "");
    const Millis window = heavy ? 1000ms : 300ms;
    IdleRun run;
    long long calls = 0;
    if (traits().spins_when_idle) {
        IdleRun without = idle_run(start(), 0ms);
        run = idle_run(start(), window);
        calls = static_cast<long long>(total_calls(run.stats)) - static_cast<long long>(total_calls(without.stats));
        EXPECT_GE(calls, 100) << "calls while idle for " << window.count() << " ms: a spinning server makes thousands";
    } else {
        run = idle_run(start({"--trace"}), window);
        calls = run.traced;
        EXPECT_LE(calls, 5) << "calls while idle for " << window.count() << " ms: it should sleep\n"
                            << "(the lines --trace printed in the window)";
    }
    record(kIdleCalls, thousands(std::llround(static_cast<double>(std::max(calls, 0LL)) / run.seconds)));
    if (heavy) {
        const double percent = 100.0 * run.cpu_seconds / run.seconds;
        record(kIdleCpu, fmt::format("{:.1f} %", percent));
        if (traits().burns_cpu_when_idle)
            EXPECT_GE(percent, 25.0) << "of one core while idle: a spinning server keeps it busy";
        else
            EXPECT_LE(percent, 10.0) << "of one core while idle";
    }
}

// The same work for every model: 10 clients, 100 rounds each of a 64-byte
// message and its echo (1,000 echoes), interleaved as in ping_pong; one client
// after another for an iterative server. The stats line counts the calls.
TEST_P(ContractTest, SystemCallsPerEchoMatchTheModel) {
    for (const char* column : {kCallsPerEcho, kEagainPerEcho, kWaitsPerEcho}) record(column, "");
    constexpr int kClients = 10, kRounds = 100, kEchoes = kClients * kRounds;
    auto server = start();
    if (traits().concurrent) {
        ASSERT_EQ(ping_pong(server.port(), kClients, kRounds, 64), "");
    } else {
        for (int i = 0; i < kClients; ++i) ASSERT_EQ(ping_pong(server.port(), 1, kRounds, 64), "") << "client " << i;
    }
    expect_clean_exit_within_2s(server);
    auto stats = server.stats();
    const std::uint64_t calls = total_calls(stats), eagain = stats["read_eagain"];
    const std::uint64_t waits = stats["select"] + stats["poll"] + stats["epoll_wait"];
    auto per_echo = [&](std::uint64_t n) { return static_cast<double>(n) / kEchoes; };
    record(kCallsPerEcho, fmt::format("{:.2f}", per_echo(calls)));
    record(kEagainPerEcho, fmt::format("{:.2f}", per_echo(eagain)));
    const char* wait_call = traits().wait_call;
    record(kWaitsPerEcho, wait_call ? fmt::format("{:.2f} {}", per_echo(waits), wait_call) : fmt::format("{}", waits));

    const std::string all = server.stderr_text();
    EXPECT_GE(stats["read"] - eagain, static_cast<std::uint64_t>(kEchoes)) << "reads that found data\n" << all;
    EXPECT_GE(stats["write"], static_cast<std::uint64_t>(kEchoes)) << all;
    if (wait_call != nullptr) {
        // About one wait per batch of ready clients: more than one echo per
        // call at best, a few calls per echo at worst, never a loop.
        EXPECT_EQ(waits, stats[wait_call]) << "only " << wait_call << " among the wait calls\n" << all;
        EXPECT_GE(waits, static_cast<std::uint64_t>(kEchoes / 10)) << all;
        EXPECT_LE(waits, static_cast<std::uint64_t>(3 * kEchoes)) << all;
    } else {
        EXPECT_EQ(waits, 0u) << "no readiness call in this model\n" << all;
    }
    switch (traits().eagain_reads) {
        case EagainReads::none:
            EXPECT_LE(eagain, 10u) << all;
            break;
        case EagainReads::one_per_echo:  // one per read that found data, give or take
            EXPECT_GE(eagain, static_cast<std::uint64_t>(kEchoes * 9 / 10)) << all;
            EXPECT_LE(eagain, stats["read"] - eagain + 20) << all;
            break;
        case EagainReads::many:  // usually thousands; fewer when the machine is busy
            EXPECT_GE(eagain, 100u) << all;
            break;
        case EagainReads::unpredictable:
            break;
    }
    // A read, a write and a share of a wait per echo, a few more at most; a
    // spinning server's count grows with the time the work takes instead.
    if (!traits().spins_when_idle) {
        EXPECT_LE(calls, static_cast<std::uint64_t>(4 * kEchoes)) << all;
    }
}

}  // namespace
}  // namespace course::test::contract
