#include <gtest/gtest.h>

#include "fd.hpp"
#include "net.hpp"
#include "sys.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

using namespace course;

namespace {

// A blocking read that gives up after 5 s instead of hanging the test.
void set_receive_timeout(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// Reads exactly `n` bytes (bounded: at most n reads, each with a receive timeout).
std::string read_exactly(int fd, size_t n) {
    set_receive_timeout(fd);
    std::string out;
    char buf[256];
    for (size_t tries = 0; out.size() < n && tries < n; ++tries) {
        ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
        if (r <= 0) break;
        out.append(buf, static_cast<size_t>(r));
    }
    return out;
}

void write_all(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), ssize_t(s.size())); }

Fd accept_one(int listen_fd) { return Fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC)); }

}  // namespace

TEST(Net, ListenOnPortZeroPicksARealPort) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    ASSERT_TRUE(listener.valid());
    std::uint16_t port = local_port(listener.get());
    EXPECT_NE(port, 0);
    EXPECT_EQ(local_address(listener.get()), "127.0.0.1:" + std::to_string(port));
}

TEST(Net, ListeningSocketIsBlockingAndCloseOnExec) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    EXPECT_EQ(::fcntl(listener.get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(listener.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(Net, ConnectAndAcceptRoundTrip) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    Fd client = connect_tcp("127.0.0.1", local_port(listener.get()));
    Fd server = accept_one(listener.get());
    ASSERT_TRUE(server.valid()) << std::strerror(errno);

    // Each side sees the other's address.
    EXPECT_EQ(peer_address(server.get()), local_address(client.get()));
    EXPECT_EQ(peer_address(client.get()), local_address(listener.get()));

    write_all(client.get(), "ping");
    EXPECT_EQ(read_exactly(server.get(), 4), "ping");
    write_all(server.get(), "pong");
    EXPECT_EQ(read_exactly(client.get(), 4), "pong");
}

TEST(Net, PeerAddressOfAnUnconnectedSocketIsUnknown) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    EXPECT_EQ(peer_address(listener.get()), "(unknown peer)");
}

TEST(Net, SecondListenerOnTheSamePortThrowsAddressInUse) {
    Fd first = listen_tcp("127.0.0.1", 0);
    std::uint16_t port = local_port(first.get());
    // SO_REUSEADDR lets a restarted server reuse a port in TIME_WAIT, not share a live listener.
    try {
        Fd second = listen_tcp("127.0.0.1", port);
        FAIL() << "a second listener was allowed on port " << port;
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE);
        std::string what = e.what();
        EXPECT_NE(what.find("bind 127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
        EXPECT_NE(what.find("Address already in use"), std::string::npos) << what;
    }
}

TEST(Net, BadHostThrowsNamingTheHost) {
    for (const std::string host : {"999.1.1.1", "not-an-address.invalid"}) {
        try {
            Fd fd = listen_tcp(host, 0);
            ADD_FAILURE() << "listen_tcp accepted host " << host;
        } catch (const std::runtime_error& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("bad address '" + host + "'"), std::string::npos) << what;
        }
        try {
            Fd fd = connect_tcp(host, 80);
            ADD_FAILURE() << "connect_tcp accepted host " << host;
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(host), std::string::npos) << e.what();
        }
    }
}

TEST(Net, ConnectToAClosedPortThrowsConnectionRefused) {
    // A socket bound but not listening holds the port, so nobody else can take
    // it, and a connection to it is refused.
    Fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    std::uint16_t port = local_port(holder.get());
    try {
        Fd fd = connect_tcp("127.0.0.1", port);
        FAIL() << "connected to a port nobody listens on";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ECONNREFUSED);
        std::string what = e.what();
        EXPECT_NE(what.find("connect 127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
        EXPECT_NE(what.find("Connection refused"), std::string::npos) << what;
    }
}

TEST(Net, Ipv6LoopbackWorksWhenAvailable) {
    Fd listener;
    try {
        listener = listen_tcp("::1", 0);
    } catch (const std::system_error& e) {
        if (e.code().value() == EADDRNOTAVAIL || e.code().value() == EAFNOSUPPORT) GTEST_SKIP() << "no ::1: " << e.what();
        throw;
    }
    std::uint16_t port = local_port(listener.get());
    EXPECT_NE(port, 0);
    EXPECT_EQ(local_address(listener.get()), "[::1]:" + std::to_string(port));

    Fd client = connect_tcp("::1", port);
    Fd server = accept_one(listener.get());
    ASSERT_TRUE(server.valid()) << std::strerror(errno);
    write_all(client.get(), "v6");
    EXPECT_EQ(read_exactly(server.get(), 2), "v6");
}

TEST(Net, SetNonblockingMakesAnEmptyReadReturnEagain) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    Fd client = connect_tcp("127.0.0.1", local_port(listener.get()));
    ASSERT_EQ(::fcntl(client.get(), F_GETFL) & O_NONBLOCK, 0);

    set_nonblocking(client.get());
    ASSERT_NE(::fcntl(client.get(), F_GETFL) & O_NONBLOCK, 0);  // ASSERT: a blocking read would hang
    char c;
    errno = 0;
    EXPECT_EQ(::read(client.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST(Net, SetNonblockingOnABadFdThrows) {
    EXPECT_THROW(set_nonblocking(-1), std::system_error);
}

TEST(Net, PrintReadyLinePrintsExactlyTheContractLine) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    std::uint16_t port = local_port(listener.get());
    testing::internal::CaptureStdout();
    print_ready_line(listener.get());
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "listening on 127.0.0.1:" + std::to_string(port) + "\n");
}

TEST(Net, PrintReadyLineFlushesStdout) {
    // A test harness waits for the ready line on a pipe: it must leave the
    // process at once, not sit in stdio's buffer. Read fd 1 through a pipe
    // without flushing anything ourselves. (When stdout is a terminal, stdio
    // flushes at each newline anyway, so this can only fail when it is not.)
    Fd listener = listen_tcp("127.0.0.1", 0);
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    std::fflush(stdout);
    int saved = ::dup(STDOUT_FILENO);
    ::dup2(p[1], STDOUT_FILENO);
    print_ready_line(listener.get());
    char buf[128];
    ssize_t n = ::read(p[0], buf, sizeof buf);
    std::fflush(stdout);  // if the line was stuck in the buffer, it goes to the pipe, not the terminal
    ::dup2(saved, STDOUT_FILENO);
    ::close(saved);
    ::close(p[0]);
    ::close(p[1]);
    ASSERT_GT(n, 0) << "nothing reached fd 1 before an explicit flush";
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), local_address(listener.get()).insert(0, "listening on ") + "\n");
}

TEST(Net, ThrowErrnoNamesTheCallAndErrnoText) {
    errno = ENOENT;
    try {
        throw_errno("open /nowhere");
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_STREQ(e.what(), "open /nowhere: No such file or directory");
    }
}
