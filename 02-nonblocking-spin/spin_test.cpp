// Chapter 02 tests: what the busy loop costs, counted. The shared contract
// (echo, half-close, resets, SIGTERM, bad command lines, ...) is tested for
// every chapter in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

using namespace course;
using namespace course::test;

namespace {

// This chapter's server, or the one COURSE_SERVER_02 names (a student's, say).
const std::string kServer = server_binary("02", SERVER_BIN);

struct IdleRun {
    std::map<std::string, std::uint64_t> stats;
    double cpu_seconds;
};

// One client connects, echoes once, then stays idle for `window`; the server
// is stopped right after. Returns its stats line and the CPU it used while idle.
IdleRun idle_for(std::vector<std::string> args, Millis window) {
    auto server = ServerProcess::start(kServer, std::move(args));
    Fd client = connect_to(server.port());
    EXPECT_TRUE(send_all(client.get(), "hi"));
    EXPECT_EQ(recv_exactly(client.get(), 2), "hi");
    double before = cpu_seconds(server.pid());
    EXPECT_TRUE(nothing_arrives(client.get(), window));  // the idle period being measured
    double used = cpu_seconds(server.pid()) - before;
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
    return {server.stats(), used};
}

TEST(Chapter02, IdleServerMakesAStormOfCallsThatAllSayEagain) {
    IdleRun spin = idle_for({}, 500ms);
    // A server that slept would make a handful of calls in 0.5 s; this one
    // sweeps the listener and the client again and again.
    EXPECT_GE(spin.stats["read_eagain"], 1000u);
    EXPECT_GE(spin.stats["accept_eagain"], 1000u);
    EXPECT_GE(spin.stats["read_eagain"] + 10, spin.stats["read"]) << "nearly every read found nothing";
}

TEST(Chapter02, BackoffCutsTheCallsAndTheCpuOfAnIdleServer) {
    IdleRun spin = idle_for({}, 1s);
    IdleRun backoff = idle_for({"--backoff-us", "10000"}, 1s);  // one sweep per 10 ms at most
    EXPECT_LE(backoff.stats["read_eagain"], 150u);  // about 100 sweeps in 1 s
    EXPECT_GT(spin.stats["read_eagain"], 20 * backoff.stats["read_eagain"]);
    // CPU: generous bounds, since other tests may share the machine.
    EXPECT_GE(spin.cpu_seconds, 0.2) << "a spinning server should burn a good part of a core";
    EXPECT_LT(backoff.cpu_seconds, spin.cpu_seconds / 3);
}

TEST(Chapter02, HelpNamesTheBackoffFlagAndBadValuesAreRefused) {
    StartOptions o;
    o.wait_ready = false;
    o.add_port_zero = false;
    auto help = ServerProcess::start(kServer, {"--help"}, o);
    EXPECT_EQ(help.wait().code, 0);
    EXPECT_NE(help.stdout_text().find("--backoff-us N"), std::string::npos);
    auto bad = ServerProcess::start(kServer, {"--backoff-us", "-5"}, o);
    EXPECT_EQ(bad.wait().code, 2);
    EXPECT_NE(bad.stderr_text().find("--backoff-us must be between 0 and 1000000"), std::string::npos);
}

}  // namespace
