// Tests of the 07-netpoller-coroutines server as a process: what makes this
// chapter different. The shared contract is tested in tests/contract/.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

using namespace course;
using namespace course::test;

namespace {

// COURSE_SERVER_07 if set (a student's or an exercise's server), else this chapter's.
const std::string kServer = server_binary("07", SERVER_BIN);

// One EPOLL_CTL_ADD when a connection is accepted and
// one EPOLL_CTL_DEL before it is closed; nothing in between.
TEST(Chapter07, TwoEpollCtlCallsPerConnection) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_EQ(ping_pong(server.port(), 10, 100, 64), "");  // 1,000 round trips; each client half-closes
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();
    auto stats = server.stats();
    // The break eventfd (ADD), the listener (ADD, and DEL at shutdown), then 2 per client.
    EXPECT_EQ(stats["epoll_ctl"], 3u + 2u * 10u) << server.stderr_text();
    EXPECT_EQ(stats["go"], 11u) << "the accept loop and one coroutine per client";
    EXPECT_EQ(stats["goroutines_left"], 0u);
}

// A 4 KiB message is echoed in two writes (2 KiB into the small buffer,
// then the rest into the large one). With Nagle's algorithm on, the second
// write waits for the ACK of the first, which the client delays (about 40 ms
// on Linux): 100 round trips took 4.4 s. Go turns Nagle off on every TCP
// connection (TCP_NODELAY, in net.newTCPConn), and so does Listener::accept.
TEST(Chapter07, MessagesLargerThanTheSmallBufferAreNotHeldBackByNagle) {
    auto server = ServerProcess::start(kServer, {});
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(ping_pong(server.port(), 1, 100, 4096), "");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2))
        << "100 round trips of 4 KiB: about 40 ms each means the second write waited for a delayed ACK";
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();
}

TEST(Chapter07, ThePollBackendMakesNoEpollCalls) {
    auto server = ServerProcess::start(kServer, {"--poller", "poll"});
    EXPECT_EQ(ping_pong(server.port(), 10, 10, 64), "");
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();
    auto stats = server.stats();
    EXPECT_EQ(stats["epoll_ctl"], 0u);
    EXPECT_EQ(stats["epoll_wait"], 0u);
    EXPECT_GE(stats["poll"], 1u);
}

TEST(Chapter07, ShutdownWithParkedConnectionsFinishesEveryCoroutine) {
    auto server = ServerProcess::start(kServer, {});
    std::vector<Fd> idle;
    for (int i = 0; i < 200; ++i) idle.push_back(connect_to(server.port()));
    ASSERT_TRUE(send_all(idle.back().get(), "x"));
    ASSERT_EQ(recv_exactly(idle.back().get(), 1), "x");  // all accepted before it (FIFO backlog)
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    auto stats = server.stats();
    EXPECT_EQ(stats["go"], 201u);
    EXPECT_EQ(stats["goroutines_left"], 0u) << server.stderr_text();
    for (auto& c : idle) EXPECT_EQ(wait_closed(c.get()), PeerEnd::eof);
}

TEST(Chapter07, TenThousandConcurrentConnections) {
    constexpr int kClients = 10000;
    raise_open_file_limit();
    StartOptions o;
    o.max_open_files = kClients + 100;
    for (const char* poller : {"epoll", "poll"}) {
        SCOPED_TRACE(poller);
        auto server = ServerProcess::start(kServer, {"--poller", poller}, o);
        EXPECT_EQ(many_at_once(server.port(), kClients), "");
        Exit e = server.stop();
        EXPECT_TRUE(e.clean()) << server.stderr_text();
    }
}

// The trace, one entry per line: what each system call did to which fd.
struct TracedCall {
    std::string call;  // "accept4" (fd: its result, -1 if it failed), "ADD", "MOD", "DEL" (epoll_ctl),
                       // "read", "write", "close"
    int fd = -1;
    std::string rest;  // the epoll_ctl events ("IN|OUT|RDHUP|ET"), or the result ("-1 EAGAIN ...")
    int epfd = -1;     // epoll_ctl: the epoll instance
};

std::vector<TracedCall> traced_calls(const std::string& trace) {
    static const std::regex accept_re(R"(accept4\(fd=\d+\) = (-?\d+))");
    static const std::regex ctl_re(R"(epoll_ctl\(epfd=(\d+), (ADD|MOD|DEL), fd=(\d+), ([^)]*)\) = 0)");
    static const std::regex io_re(R"((read|write|close)\(fd=(\d+)[^)]*\) = (.*))");
    std::vector<TracedCall> calls;
    std::istringstream in(trace);
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
        if (std::regex_search(line, m, accept_re)) calls.push_back({"accept4", std::max(std::stoi(m[1]), -1), ""});
        else if (std::regex_search(line, m, ctl_re)) calls.push_back({m[2], std::stoi(m[3]), m[4], std::stoi(m[1])});
        else if (std::regex_search(line, m, io_re)) calls.push_back({m[1], std::stoi(m[2]), m[3]});
    }
    return calls;
}

// Go's netpollopen registers a descriptor once, for everything, edge-triggered,
// when its netFD is made (net.Listen, accept), on the one epoll instance of the
// process; netpollclose deletes it before close(2). Nothing in between, even
// while a goroutine waits to write. Here: one epoll instance for everything;
// the listener is added before the first accept4; each of 5 connections is
// added right after its accept4, before any read, and deleted before its
// close(2); no MOD anywhere, although one connection's echo had to wait
// (write: EAGAIN) while its client did not read.
TEST(Chapter07, EachConnectionIsAddedOnceWhenAcceptedAndDeletedBeforeCloseEvenWhenAWriteWaits) {
    auto server = ServerProcess::start(kServer, {"--trace"});
    std::vector<Fd> clients;
    clients.push_back(connect_to(server.port()));
    ASSERT_TRUE(send_all(clients[0].get(), "x"));
    ASSERT_EQ(recv_exactly(clients[0].get(), 1), "x");
    auto accepted = [&] {
        std::vector<int> fds;
        for (const auto& c : traced_calls(server.stderr_text()))
            if (c.call == "accept4" && c.fd >= 0) fds.push_back(c.fd);
        return fds;
    };
    ASSERT_TRUE(eventually([&] { return !accepted().empty(); })) << server.stderr_text();  // the trace lags a little
    ASSERT_EQ(accepted().size(), 1u) << server.stderr_text();
    const int first = accepted()[0];

    // Client 0 sends without reading until the server's echo write says EAGAIN
    // (the coroutine parks on its write) and the server stops reading.
    auto write_waited = [&, call = fmt::format("write(fd={}, ", first)] {  // a plain search: the trace grows long
        std::string trace = server.stderr_text();
        for (auto at = trace.find(call); at != std::string::npos; at = trace.find(call, at + 1)) {
            auto result = trace.find(") = ", at);
            if (result != std::string::npos && trace.compare(result, 13, ") = -1 EAGAIN") == 0) return true;
        }
        return false;
    };
    std::string payload(32 << 20, '\0');  // more than the socket buffers both ways hold; no two 251-byte runs alike
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i % 251) ^ (i / 251));
    size_t sent = 0;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!write_waited()) {
        ASSERT_LT(sent, payload.size()) << "32 MiB sent and the server's write never had to wait";
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << sent << " bytes sent; the server's write never waited";
        ssize_t n = ::send(clients[0].get(), payload.data() + sent, std::min<size_t>(65536, payload.size() - sent),
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        ASSERT_TRUE(n < 0 && errno == EAGAIN) << std::strerror(errno);
        pollfd p{clients[0].get(), POLLOUT, 0};
        ::poll(&p, 1, 10);  // until we can send more, or look at the trace again
    }

    for (int i = 1; i < 5; ++i) {
        clients.push_back(connect_to(server.port()));
        ASSERT_TRUE(send_all(clients[i].get(), "hello"));
        ASSERT_EQ(recv_exactly(clients[i].get(), 5), "hello");
    }
    EXPECT_TRUE(recv_exactly(clients[0].get(), sent, 20s) == payload.substr(0, sent)) << "client 0's echo";
    for (auto& c : clients) half_close(c.get());
    for (auto& c : clients) ASSERT_EQ(wait_closed(c.get()), PeerEnd::eof);
    ASSERT_TRUE(server.stop().clean()) << server.stderr_text();

    auto calls = traced_calls(server.stderr_text());
    auto find = [&](size_t from, int fd, std::initializer_list<const char*> kinds) {
        for (size_t i = from; i < calls.size(); ++i)
            if (calls[i].fd == fd && std::find(kinds.begin(), kinds.end(), calls[i].call) != kinds.end()) return i;
        return calls.size();
    };
    int adds = 0, dels = 0, mods = 0, connections = 0;
    std::set<int> instances;
    for (const auto& c : calls) {
        if (c.epfd >= 0) instances.insert(c.epfd);
        adds += c.call == "ADD";
        dels += c.call == "DEL";
        mods += c.call == "MOD";
    }
    EXPECT_EQ(mods, 0);
    EXPECT_EQ(instances.size(), 1u) << "one epoll instance for the process";
    for (size_t i = 0; i < calls.size(); ++i) {
        if (calls[i].call != "accept4" || calls[i].fd < 0) continue;
        ++connections;
        int fd = calls[i].fd;
        SCOPED_TRACE(fmt::format("connection on fd {}", fd));
        size_t add = find(i + 1, fd, {"ADD", "MOD", "DEL", "read", "write", "close"});
        ASSERT_LT(add, calls.size());
        EXPECT_EQ(calls[add].call, "ADD") << "registered when accepted, before anyone reads";
        EXPECT_EQ(calls[add].rest, "IN|OUT|RDHUP|ET");
        size_t del = find(add + 1, fd, {"ADD", "MOD", "DEL"});
        ASSERT_LT(del, calls.size());
        EXPECT_EQ(calls[del].call, "DEL");
        EXPECT_EQ(find(add + 1, fd, {"close"}), find(del + 1, fd, {"close"})) << "DEL comes before close(2)";
        EXPECT_LT(find(del + 1, fd, {"close"}), calls.size());
    }
    EXPECT_EQ(connections, 5);
    // Besides: the break eventfd (ADD), and the listener (ADD before the first accept4; DEL at shutdown).
    EXPECT_EQ(adds, 5 + 2);
    EXPECT_EQ(dels, 5 + 1);
    EXPECT_EQ(server.stats()["epoll_ctl"], 2u * 5u + 3u);
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls[0].call, "ADD");  // the eventfd
    EXPECT_EQ(calls[1].call, "ADD");  // the listener, at Listen
    EXPECT_EQ(calls[1].rest, "IN|OUT|RDHUP|ET");
    EXPECT_EQ(calls[2].call, "accept4");  // the accept loop's first try (EAGAIN: nobody there yet)
}

}  // namespace
