// Chapter 04 tests: poll has no descriptor limit and sleeps while idle. The
// shared contract is tested for every chapter in tests/contract/.
#include "client.hpp"
#include "net.hpp"
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

// poll(2) takes an array of {fd, events}: a descriptor's number is just a value
// in it. The setup of Chapter03.RefusesAFewClientsWhoseDescriptorNumbersAreAbove1023
// (numbers 16-1023 already open in the server): of 20 clients, all but the few
// that fit below 16 get numbers from 1024 on, and every one of them is served.
TEST(Chapter04, ServesAFewClientsWhoseDescriptorNumbersAreAbove1023) {
    StartOptions o;
    o.max_open_files = 1200;
    o.inherited_fds = InheritedFds{16, 1024 - 16};
    auto server = ServerProcess::start(kServer, {"--trace"}, o);

    std::vector<Fd> clients;
    for (int i = 0; i < 20; ++i) clients.push_back(connect_to(server.port()));
    for (int round = 0; round < 2; ++round) {  // all of them watched at once, twice
        for (int i = 0; i < 20; ++i) ASSERT_TRUE(send_all(clients[i].get(), fmt::format("{:02}", i)));
        for (int i = 0; i < 20; ++i) ASSERT_EQ(recv_exactly(clients[i].get(), 2, 2s), fmt::format("{:02}", i));
    }
    for (auto& c : clients)  // the trace lags a little behind the echo
        ASSERT_TRUE(server.wait_for_stderr(fmt::format("127.0.0.1:{} connected", local_port(c.get()))));
    std::string trace = server.stderr_text();
    int high = 0;
    for (auto& c : clients) {
        int fd = server_fd_of(trace, local_port(c.get()));
        ASSERT_GE(fd, 3) << trace;
        EXPECT_TRUE(fd < 16 || fd >= 1024) << "fd " << fd << " should be taken by the inherited block";
        if (fd >= 1024) ++high;
    }
    EXPECT_GE(high, 7) << "at most 13 numbers are free below 16";
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
}

}  // namespace
