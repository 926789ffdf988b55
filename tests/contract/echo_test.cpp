// The contract, part 1: start, echo, half-close. The ready line, a byte-exact
// echo of large and binary payloads, and the half-close in its three
// shapes: after the data, arriving together with the data, and while the
// server still holds echo it could not write yet (two tests: one for the
// servers that read on meanwhile, one for those that wait in the write).
#include "client.hpp"
#include "net.hpp"
#include "proc.hpp"
#include "servers.hpp"
#include "sock_diag.hpp"
#include "stream.hpp"

#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include <random>
#include <regex>
#include <string>
#include <thread>
#include <utility>

namespace course::test::contract {
namespace {

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

// The client sends 100 KiB and its FIN while the server is stopped (SIGSTOP),
// so that when it runs again both are waiting: its first wake-up for them
// says "readable" and "the peer hung up" at once (for epoll: EPOLLIN and
// EPOLLRDHUP in one event), and its reads return the data first, EOF after
// it. A server that takes the hang-up for "close now" loses the data; the
// contract says: echo everything, then close. The server is stopped while it
// sleeps, waiting for the next event, and the kernel's acknowledgement of our
// FIN says that all of it has arrived: no timing involved.
TEST_P(ContractTest, DataAndFinArrivingTogetherAreAllEchoed) {
    auto server = start();
    Fd conn = connect_to(server.port());
    ASSERT_TRUE(send_all(conn.get(), "hello"));
    ASSERT_EQ(recv_exactly(conn.get(), 5), "hello");  // accepted and watched
    // Asleep, every thread of it: waiting for the next event, not still
    // busy with the first echo (a server that sleeps in a call; 02 never does).
    if (traits().blocks_in_syscalls) {
        ASSERT_TRUE(eventually([&] { return !server.running() || every_thread_is(server.pid(), "S"); }, 10s))
            << "the server did not go back to sleep after the first echo";
    }
    ASSERT_TRUE(server.running()) << "the server died after the first echo:\n" << server.stderr_text();
    Paused paused(server);
    ASSERT_TRUE(eventually([&] { return every_thread_is(server.pid(), "Tt"); }, 10s)) << "SIGSTOP did not stop it";

    const std::string payload = random_bytes(100 << 10, 7);  // fits in the server's receive buffer
    ASSERT_TRUE(send_all(conn.get(), payload));
    half_close(conn.get());
    // FIN_WAIT2: the server's kernel has acknowledged our FIN, so every byte
    // before it too: all of it waits in the server's socket.
    ASSERT_TRUE(eventually([&] { return tcp_state(conn.get()) == TCP_FIN_WAIT2; }, 10s))
        << "the data and the FIN did not reach the stopped server (TCP state " << tcp_state(conn.get()) << ")";
    paused.resume();

    std::string echoed = recv_exactly(conn.get(), payload.size(), 10s);
    EXPECT_EQ(echoed.size(), payload.size()) << "got back " << echoed.size() << " of " << payload.size()
                                             << " bytes: the server saw the FIN and closed before echoing the data "
                                                "that came with it";
    EXPECT_TRUE(payload.compare(0, echoed.size(), echoed) == 0) << "the echo differs from what was sent";
    EXPECT_EQ(wait_closed(conn.get(), 10s), PeerEnd::eof) << "after the echo, the server must close the connection";
    expect_clean_exit_within_2s(server);
}


// The half-close arrives while the server still holds echo bytes it cannot
// write: a server that closes on EOF without looking at what it still holds
// loses them; the contract says: echo everything pending, then close. (The
// pitfall in docs/pitfalls.md; Connection::finished() in 02-06 guards it.)
//
// To make that moment certain rather than likely, the client does not read
// at first, and sends 32 KiB at a time until the server has read everything
// sent so far and holds at least 128 KiB of it unsent: once our receive
// buffer and its send buffer are full, its writes fail and the echo stays in
// its own buffer. How much it holds is what we sent minus what the kernel
// shows in the queues in between (tcp_queues()). Still under its 256 KiB
// limit, it goes on reading, so it reads our FIN at once; only then do we
// read. Its send buffer is full, so at that moment it can write almost none
// of what it holds.
TEST_P(ContractTest, HalfCloseWhileTheServerStillHoldsUnsentEchoLosesNothing) {
    if (!traits().reads_while_echo_is_pending)
        GTEST_SKIP() << "writes each piece in full before it reads the next, so it never reads the EOF with echo "
                        "bytes still waiting";
    constexpr size_t kChunk = 32 << 10;
    constexpr long long kHeld = 128 << 10;  // + kChunk at most: under the servers' 256 KiB limit
    constexpr size_t kMaxSent = 8 << 20;    // 4 MiB of send buffer would be the most, if TCP_MAXSEG were ignored
    auto server = start();
    Fd conn = connect_through_narrow_buffers(server.port());
    const std::uint16_t client_port = local_port(conn.get());
    const std::string block = random_bytes(kChunk, 8);  // sent again and again: byte i is block[i % kChunk]
    std::pair<TcpQueues, TcpQueues> q;  // ours, the server's
    size_t sent = 0;
    long long held = 0;
    while (held < kHeld) {
        ASSERT_LT(sent, kMaxSent) << "the server never held back more than " << held << " bytes of the echo";
        ASSERT_TRUE(send_all(conn.get(), block));
        sent += kChunk;
        // The server has read all we sent: nothing left in our send queue or in its receive queue.
        ASSERT_TRUE(eventually(
            [&] {
                if (!server.running()) return true;  // reported below, without waiting 10 s
                q = loopback_queues(client_port, server.port());
                return q.first.found && q.second.found && q.first.tx == 0 && q.second.rx == 0;
            },
            10s))
            << "the server stopped reading after " << sent << " bytes sent, holding about " << held
            << " bytes of echo (queues: ours tx " << q.first.tx << ", the server's rx " << q.second.rx << ")";
        ASSERT_TRUE(server.running()) << "the server died while the client was sending:\n" << server.stderr_text();
        held = static_cast<long long>(sent) - q.second.tx - q.first.rx;  // not in its send queue nor in our receive queue
    }
    half_close(conn.get());
    // Our FIN is acknowledged and the server has read it (its receive queue
    // is empty again), or it has closed its end already (a server that takes
    // the FIN's event for "close now" never reads it).
    ASSERT_TRUE(eventually(
        [&] {
            q = loopback_queues(client_port, server.port());
            const bool open = q.second.state == TCP_ESTABLISHED || q.second.state == TCP_CLOSE_WAIT;
            return q.first.tx == 0 && (!q.second.found || !open || q.second.rx == 0);
        },
        10s))
        << "the server did not read the EOF (queues: ours tx " << q.first.tx << ", the server's rx " << q.second.rx
        << ")";

    std::string echoed = recv_exactly(conn.get(), sent + 1, 10s);  // returns at EOF (or 1 byte too many)
    const PeerEnd end = wait_closed(conn.get(), 10s);
    EXPECT_EQ(echoed.size(), sent) << "the server closed before echoing the last "
                                   << static_cast<long long>(sent) - static_cast<long long>(echoed.size())
                                   << " bytes (of " << sent << "): it held about " << held
                                   << " bytes of echo when it read the EOF, and closed without writing them";
    size_t same = 0;  // how many leading bytes came back right
    while (same < echoed.size() && echoed[same] == block[same % kChunk]) ++same;
    EXPECT_EQ(same, echoed.size()) << "the echo differs from what was sent at byte " << same;
    EXPECT_EQ(end, PeerEnd::eof) << "after the echo the server must close the connection";
    expect_clean_exit_within_2s(server);
}

// The same moment for a server that writes each piece in full before it
// reads the next (01, 07): its model cannot read the EOF early, because it is
// blocked (01) or parked (07) in a write that cannot finish when the FIN
// arrives, behind bytes it has not read yet. What can still go wrong is the
// wake-up: the FIN makes the kernel report a hang-up (EPOLLRDHUP, in the same
// event as EPOLLIN), and a runtime that takes that for "the peer is gone" and
// fails the parked write loses everything the server had not echoed yet.
//
// The client does not read, and sends 16 KiB at a time until the server stops
// reading: everything sent has reached it, yet bytes wait in its receive queue
// while it sleeps, and the echo is backed up to our receive queue. Then the
// server is stopped (SIGSTOP), the FIN goes in and is acknowledged by its
// kernel, and it is let go (SIGCONT): its first event after that reports the
// hang-up while its write is still waiting, before we read a single byte.
TEST_P(ContractTest, HalfCloseWhileTheServerIsBlockedWritingTheEchoLosesNothing) {
    if (traits().reads_while_echo_is_pending)
        GTEST_SKIP() << "reads on while its echo is pending: HalfCloseWhileTheServerStillHoldsUnsentEchoLosesNothing "
                        "tests this moment for it";
    if (!traits().blocks_in_syscalls) GTEST_SKIP() << "never sleeps, so there is no moment when it has stopped reading";
    constexpr size_t kChunk = 16 << 10;   // fits in the server's receive window, so our send queue empties
    constexpr size_t kMaxSent = 4 << 20;  // far more than the buffers in between hold
    auto server = start();
    Fd conn = connect_through_narrow_buffers(server.port());
    const std::uint16_t client_port = local_port(conn.get());
    const std::string block = random_bytes(kChunk, 9);  // byte i of the stream is block[i % kChunk]
    std::pair<TcpQueues, TcpQueues> q;                   // ours, the server's
    // Everything we sent is in the server's kernel (our send queue is empty),
    // the server sleeps, and it still leaves bytes unread: it is waiting to write.
    auto stopped_reading = [&] {
        q = loopback_queues(client_port, server.port());
        return q.first.found && q.second.found && q.first.tx == 0 && q.second.rx > 0 && q.second.tx > 0 &&
               every_thread_is(server.pid(), "S");
    };
    size_t sent = 0;
    for (;;) {
        ASSERT_LT(sent, kMaxSent) << "the server read everything for " << sent << " bytes without stopping";
        ASSERT_TRUE(send_all(conn.get(), block));
        sent += kChunk;
        // Settled: all of it reached the server's kernel, and the server sleeps.
        ASSERT_TRUE(eventually(
            [&] {
                if (!server.running()) return true;  // reported below, without waiting 10 s
                q = loopback_queues(client_port, server.port());
                return q.first.found && q.first.tx == 0 && every_thread_is(server.pid(), "S");
            },
            10s))
            << "the server did not take what we sent and go back to sleep (queues: ours tx " << q.first.tx
            << ", the server's rx " << q.second.rx << ")";
        ASSERT_TRUE(server.running()) << "the server died while the client was sending:\n" << server.stderr_text();
        // Still so a moment later: a server that was only about to read has read by then.
        if (stopped_reading() && (std::this_thread::sleep_for(20ms), stopped_reading())) break;
    }
    const long long unread = q.second.rx;  // the server's receive queue: not echoed yet, not even read

    {
        Paused paused(server);
        ASSERT_TRUE(eventually([&] { return every_thread_is(server.pid(), "Tt"); }, 10s)) << "SIGSTOP did not stop it";
        half_close(conn.get());
        // FIN_WAIT2: the stopped server's kernel has acknowledged our FIN.
        ASSERT_TRUE(eventually([&] { return tcp_state(conn.get()) == TCP_FIN_WAIT2; }, 10s))
            << "the FIN did not reach the stopped server (TCP state " << tcp_state(conn.get()) << ")";
    }  // SIGCONT: the hang-up is the first thing it hears, while its write still waits

    std::string echoed = recv_exactly(conn.get(), sent + 1, 10s);  // returns at EOF (or 1 byte too many)
    const PeerEnd end = wait_closed(conn.get(), 10s);
    EXPECT_EQ(echoed.size(), sent) << "the server closed before echoing the last "
                                   << static_cast<long long>(sent) - static_cast<long long>(echoed.size())
                                   << " bytes (of " << sent << "; " << unread
                                   << " of them still unread in its socket when the FIN came): the hang-up ended "
                                      "a write that was waiting for the client to read";
    size_t same = 0;  // how many leading bytes came back right
    while (same < echoed.size() && echoed[same] == block[same % kChunk]) ++same;
    EXPECT_EQ(same, echoed.size()) << "the echo differs from what was sent at byte " << same;
    EXPECT_EQ(end, PeerEnd::eof) << "after the echo the server must close the connection";
    expect_clean_exit_within_2s(server);
}

}  // namespace
}  // namespace course::test::contract
