// Chapter 05 tests: level-triggered epoll, counted. The shared contract is
// tested for every chapter in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <thread>

using namespace course;
using namespace course::test;

namespace {

// This chapter's server, or the one COURSE_SERVER_05 names (a student's, say).
const std::string kServer = server_binary("05", SERVER_BIN);

std::map<std::string, std::uint64_t> idle_stats(std::vector<std::string> args) {
    auto server = ServerProcess::start(kServer, std::move(args));
    Fd client = connect_to(server.port());
    EXPECT_TRUE(send_all(client.get(), "hi"));
    EXPECT_EQ(recv_exactly(client.get(), 2), "hi");
    EXPECT_TRUE(nothing_arrives(client.get(), 300ms));  // idle
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
    return server.stats();
}

// The classic LT mistake, on purpose: a socket with room in its send buffer
// is always writable, so an armed EPOLLOUT makes every epoll_wait return at once.
TEST(Chapter05, LeavingEpolloutArmedIsABusyLoop) {
    auto stats = idle_stats({"--keep-epollout"});
    EXPECT_GE(stats["epoll_wait"], 1000u) << "epoll_wait calls in 0.3 s with EPOLLOUT left armed";
}

TEST(Chapter05, SameWorkloadOneEpollWaitPerEventAndNoEagainReads) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_EQ(ping_pong(server.port(), 10, 100, 64), "");  // 1,000 round trips of 64 bytes
    ASSERT_TRUE(server.stop().clean());
    auto stats = server.stats();
    EXPECT_LE(stats["read_eagain"], 10u);
    EXPECT_GE(stats["read"], 1000u);
    EXPECT_LE(stats["epoll_wait"], 3000u);
    EXPECT_GE(stats["epoll_wait"], 100u) << "about one epoll_wait per batch of ready clients";
    // Echoes of 64 bytes always fit the send buffer: EPOLLOUT is never needed,
    // so the only epoll_ctl calls are the ADDs (stop pipe, listener, 10 clients).
    EXPECT_EQ(stats["epoll_ctl"], 12u);
}

// A client that sends without reading: output piles up, so EPOLLOUT is armed
// (MOD), and at the 256 KiB limit reading stops too (MOD). When the client
// reads again, interest goes back to EPOLLIN alone (MOD). One epoll_ctl per
// change of interest, never one per event.
TEST(Chapter05, EpolloutIsArmedOnlyWhileOutputIsPending) {
    auto server = ServerProcess::start(kServer, {"--trace"});
    Fd conn = connect_to(server.port());
    const std::string payload = random_bytes(32 << 20, 5);
    std::jthread sender([&] { send_all(conn.get(), payload, 60s); });  // joined however the test ends
    // Not reading yet: wait until the server has stopped reading from us.
    if (!server.wait_for_stderr(", MOD, fd=", 10s)) {
        ::shutdown(conn.get(), SHUT_RDWR);  // ends the sender's send_all at once
        FAIL() << "no epoll_ctl MOD while the client does not read";
    }
    std::string echoed = recv_exactly(conn.get(), payload.size(), 60s);
    sender.join();
    EXPECT_TRUE(echoed == payload);
    half_close(conn.get());
    EXPECT_EQ(wait_closed(conn.get(), 10s), PeerEnd::eof);
    ASSERT_TRUE(server.stop().clean());

    std::string err = server.stderr_text();
    EXPECT_NE(err.find("MOD, fd="), std::string::npos);
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(MOD, fd=\d+, (IN\|)?OUT\) = 0)"))) << "EPOLLOUT armed";
    EXPECT_TRUE(std::regex_search(err, std::regex(R"(MOD, fd=\d+, IN\) = 0)"))) << "and disarmed again";
    auto stats = server.stats();
    EXPECT_LE(stats["epoll_ctl"] * 4, stats["epoll_wait"]) << "epoll_ctl calls should be rare next to events";
}

TEST(Chapter05, ServesTenThousandConcurrentConnections) {
    raise_open_file_limit();
    constexpr int kClients = 10000;
    StartOptions o;
    o.max_open_files = kClients + 100;
    auto server = ServerProcess::start(kServer, {}, o);
    EXPECT_EQ(many_at_once(server.port(), kClients), "");
    EXPECT_TRUE(server.stop().clean()) << server.stderr_text();
}

// epoll tells when a descriptor that can be "not ready" (a socket, a pipe, a
// terminal) becomes ready. A regular file is never "not ready": a read returns
// data or end of file at once, and any wait for the disk happens inside the
// read. So epoll_ctl refuses it (EPERM), and poll reports it readable and
// writable at once, even at end of file. epoll is not asynchronous file I/O.
TEST(Chapter05, EpollRefusesARegularFileThatPollReportsReadyAtOnce) {
    std::string path = ::testing::TempDir() + "course-05-regular-XXXXXX";
    Fd file(::mkstemp(path.data()));
    ASSERT_TRUE(file) << path << ": " << std::strerror(errno);
    ::unlink(path.c_str());
    ASSERT_EQ(::write(file.get(), "data", 4), 4);
    ASSERT_EQ(::lseek(file.get(), 0, SEEK_SET), 0);

    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    ASSERT_TRUE(ep);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.fd = file.get();
    errno = 0;
    EXPECT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, file.get(), &ev), -1);
    EXPECT_EQ(errno, EPERM) << std::strerror(errno);

    pollfd p{file.get(), POLLIN | POLLOUT, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 1);  // timeout 0: ready now, without waiting
    EXPECT_EQ(p.revents, POLLIN | POLLOUT);
    char buf[16];
    EXPECT_EQ(::read(file.get(), buf, sizeof buf), 4);
    EXPECT_EQ(::read(file.get(), buf, sizeof buf), 0);  // end of file...
    p.revents = 0;
    EXPECT_EQ(::poll(&p, 1, 0), 1);  // ...and still "readable"
    EXPECT_TRUE(p.revents & POLLIN);

    // The same calls on an empty pipe: poll says not ready, and epoll takes it.
    int ends[2];
    ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
    Fd rd(ends[0]), wr(ends[1]);
    pollfd q{rd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&q, 1, 0), 0);
    ev.events = EPOLLIN;
    ev.data.fd = rd.get();
    EXPECT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, rd.get(), &ev), 0) << std::strerror(errno);
}

}  // namespace
