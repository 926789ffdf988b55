// Tests of the harness's readers of kernel state (proc.hpp, sock_diag.hpp)
// and of its bulk-transfer helpers (stream.hpp): the contract tests decide
// with them, without sleeps, when the bytes are where a test needs them.
#include "client.hpp"
#include "local_peer.hpp"
#include "net.hpp"
#include "proc.hpp"
#include "server_process.hpp"
#include "sock_diag.hpp"
#include "stream.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>

using namespace course;
using namespace course::test;

namespace {

constexpr const char* kServer = SERVER_BIN;  // chapter 01: one thread, asleep in accept() while idle

TEST(SockDiag, SeesTheBytesThatEachEndHasNotReadYet) {
    LocalPeer p;
    ASSERT_TRUE(p.server);
    const std::uint16_t client_port = local_port(p.client.get()), server_port = local_port(p.listener.get());
    ASSERT_TRUE(send_all(p.client.get(), std::string(1000, 'c')));
    ASSERT_TRUE(send_all(p.server.get(), std::string(300, 's')));
    std::pair<TcpQueues, TcpQueues> q;
    EXPECT_TRUE(eventually([&] {
        q = loopback_queues(client_port, server_port);
        return q.first.found && q.second.found && q.first.tx == 0 && q.second.tx == 0;  // all acknowledged
    })) << "tx: client " << q.first.tx << ", server " << q.second.tx;
    EXPECT_EQ(q.first.rx, 300);   // what the server sent, unread by the client
    EXPECT_EQ(q.second.rx, 1000);  // what the client sent, unread by the server
    EXPECT_EQ(q.first.state, TCP_ESTABLISHED);
    EXPECT_EQ(recv_exactly(p.server.get(), 1000), std::string(1000, 'c'));
    EXPECT_TRUE(eventually([&] { return tcp_queues(server_port, client_port).rx == 0; }));
    EXPECT_FALSE(tcp_queues(server_port, server_port).found) << "no such connection";
}

TEST(SockDiag, TcpStateFollowsAHalfClose) {
    LocalPeer p;
    ASSERT_TRUE(p.server);
    EXPECT_EQ(tcp_state(p.client.get()), TCP_ESTABLISHED);
    half_close(p.client.get());
    EXPECT_TRUE(eventually([&] { return tcp_state(p.client.get()) == TCP_FIN_WAIT2; }))
        << "state " << tcp_state(p.client.get());
    EXPECT_EQ(tcp_state(p.server.get()), TCP_CLOSE_WAIT);
    EXPECT_EQ(tcp_state(-1), -1);
}

TEST(Proc, SeesAServerAsleepThenStoppedAndTheSignalsItIgnores) {
    auto server = ServerProcess::start(kServer, {});
    EXPECT_TRUE(eventually([&] { return every_thread_is(server.pid(), "S"); })) << "idle in accept()";
    {
        Paused paused(server);
        EXPECT_TRUE(eventually([&] { return every_thread_is(server.pid(), "Tt"); })) << "after SIGSTOP";
        EXPECT_FALSE(every_thread_is(server.pid(), "S"));
    }  // SIGCONT
    EXPECT_TRUE(eventually([&] { return every_thread_is(server.pid(), "S"); })) << "after SIGCONT";
    EXPECT_TRUE(ignored_signals(server.pid()) & (1ull << (SIGPIPE - 1))) << "the server ignores SIGPIPE";
    EXPECT_FALSE(ignored_signals(server.pid()) & (1ull << (SIGTERM - 1))) << "and stops on SIGTERM";
    EXPECT_TRUE(server.stop().clean());
    EXPECT_FALSE(every_thread_is(server.pid(), "SRT")) << "a process that is gone has no threads";
}

TEST(Proc, PreciseCpuSecondsCountsTheCpuThisProcessUses) {
    const double before = precise_cpu_seconds(::getpid()), coarse_before = cpu_seconds(::getpid());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (cpu_seconds(::getpid()) - coarse_before < 0.2 && std::chrono::steady_clock::now() < deadline) {
    }  // reading /proc is the work: user and system time
    const double used = precise_cpu_seconds(::getpid()) - before;
    EXPECT_GE(used, 0.15) << "0.2 s of CPU by the clock ticks";
    EXPECT_LE(used, 0.5);
}

TEST(Stream, SenderStallsWhenNobodyReadsAndEverythingArrivesOnceRead) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    Fd ours(sv[0]), theirs(sv[1]);
    const std::string block = random_bytes(64 << 10, 9);
    constexpr size_t kTotal = 16 << 20;  // more than a socket pair's buffers
    StreamSender sender(ours.get(), block, kTotal);
    EXPECT_TRUE(sender.wait_until_stalled(10s));
    EXPECT_LT(sender.sent(), kTotal);
    bool mismatch = true;
    EXPECT_EQ(receive_repeated_block(theirs.get(), block, kTotal, 30s, 5s, mismatch), kTotal);
    EXPECT_FALSE(mismatch);
    EXPECT_EQ(sender.wait_sent(10s), kTotal);
    EXPECT_EQ(wait_closed(theirs.get()), PeerEnd::eof) << "the sender half-closes when all is sent";
}

TEST(Stream, ReceiveRepeatedBlockStopsAtTheFirstWrongByte) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    Fd ours(sv[0]), theirs(sv[1]);
    const std::string block = random_bytes(1000, 10);
    std::string sent = block + block + block;
    sent[2345] = static_cast<char>(~sent[2345]);
    ASSERT_TRUE(send_all(ours.get(), sent));
    bool mismatch = false;
    EXPECT_EQ(receive_repeated_block(theirs.get(), block, sent.size(), 5s, 1s, mismatch), 2345u);
    EXPECT_TRUE(mismatch);
}

TEST(Stream, ANarrowClientHasSmallBuffersAndSegments) {
    Fd listener = listen_tcp("127.0.0.1", 0);
    Fd client = connect_through_narrow_buffers(local_port(listener.get()));
    int rcvbuf = 0, mss = 0;
    socklen_t len = sizeof rcvbuf;
    ASSERT_EQ(::getsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len), 0);
    len = sizeof mss;
    ASSERT_EQ(::getsockopt(client.get(), IPPROTO_TCP, TCP_MAXSEG, &mss, &len), 0);
    EXPECT_LE(rcvbuf, 8192) << "4 KiB asked, doubled by the kernel";
    EXPECT_LE(mss, 1024);
    EXPECT_EQ(tcp_state(client.get()), TCP_ESTABLISHED);
}

}  // namespace
