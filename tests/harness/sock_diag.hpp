// What the kernel knows about a TCP connection on this machine: the state of
// our own end (TCP_INFO), and the queues of either end, ours or another
// process's (NETLINK_SOCK_DIAG, as ss(8) asks). For tests that must know
// where the bytes are, rather than guess with a sleep.
#pragma once

#include <cstdint>
#include <utility>

namespace course::test {

// The TCP state of our end (TCP_ESTABLISHED, TCP_FIN_WAIT1, ...), -1 on error.
int tcp_state(int fd);

// The kernel's queues of one end of a TCP connection: tx, the bytes written
// and not yet acknowledged by the peer (sent or not); rx, the bytes received
// and not yet read (a FIN counts 1 until it is read). The numbers ss(8) and
// /proc/net/tcp show.
struct TcpQueues {
    bool found = false;
    int state = 0;  // TCP_ESTABLISHED, TCP_CLOSE_WAIT (the peer's FIN came), TCP_LAST_ACK (then we closed), ...
    long long tx = 0, rx = 0;
};

// The end of the loopback connection with ports `local_port` and
// `remote_port`, from the kernel's socket diagnostics: one exact lookup, so
// its cost does not grow with the sockets on the machine. /proc/net/tcp lists
// them all, and after a test with 10,000 connections their TIME_WAIT entries
// make every read of it take 10 ms or more. The socket may be another
// process's (the server's): the table is the machine's. found is false when
// there is no such connection (any more). Throws if the netlink socket cannot
// be opened or asked.
TcpQueues tcp_queues(std::uint16_t local_port, std::uint16_t remote_port);

// Both ends of the loopback connection between `client_port` and `server_port`: {the client's, the server's}.
std::pair<TcpQueues, TcpQueues> loopback_queues(std::uint16_t client_port, std::uint16_t server_port);

}  // namespace course::test
