// Workloads that several chapters' tests run, so that their stats lines can be
// compared for the same work. Header-only.
#pragma once

#include "client.hpp"

#include <sys/resource.h>

#include <string>
#include <vector>

#include <fmt/format.h>

namespace course::test {

// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (tests
// that hold thousands of client sockets).
inline void raise_open_file_limit() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

// `clients` connections; `rounds` times, each sends `size` bytes, then each
// reads its echo (so the server must serve them interleaved). Then every
// client half-closes and waits for the server to close, so that the server's
// counters include the whole exchange. Returns an empty string on success,
// else what went wrong.
inline std::string ping_pong(std::uint16_t port, int clients, int rounds, size_t size) {
    std::vector<Fd> conns;
    for (int i = 0; i < clients; ++i) conns.push_back(connect_to(port));
    for (int r = 0; r < rounds; ++r) {
        for (int i = 0; i < clients; ++i) {
            std::string msg = fmt::format("{:0{}}", i * 100000 + r, size);
            if (!send_all(conns[i].get(), msg)) return fmt::format("client {} round {}: send failed", i, r);
        }
        for (int i = 0; i < clients; ++i) {
            std::string msg = fmt::format("{:0{}}", i * 100000 + r, size);
            if (recv_exactly(conns[i].get(), size) != msg) return fmt::format("client {} round {}: bad echo", i, r);
        }
    }
    for (auto& c : conns) half_close(c.get());
    for (auto& c : conns)
        if (PeerEnd e = wait_closed(c.get()); e != PeerEnd::eof) return fmt::format("at the end: {}", to_string(e));
    return "";
}

// `n` clients connected at the same time, each echoing one distinct message.
// Connects in batches of 500, and waits after each batch until the server has
// echoed for the batch's last client, so the listen backlog never overflows.
// Returns an empty string on success, else what went wrong.
inline std::string many_at_once(std::uint16_t port, int n) {
    std::vector<Fd> clients;
    clients.reserve(static_cast<size_t>(n));
    auto msg = [](int i) { return fmt::format("{:06}", i); };
    for (int i = 0; i < n; ++i) {
        clients.push_back(connect_to(port));
        if (i % 500 == 499 || i == n - 1) {
            if (!send_all(clients[i].get(), msg(i)) || recv_exactly(clients[i].get(), 6) != msg(i))
                return fmt::format("client {} was not served while connecting", i);
        }
    }
    for (int i = 0; i < n; ++i)
        if (i % 500 != 499 && i != n - 1 && !send_all(clients[i].get(), msg(i))) return fmt::format("send {}", i);
    for (int i = 0; i < n; ++i)
        if (i % 500 != 499 && i != n - 1 && recv_exactly(clients[i].get(), 6) != msg(i))
            return fmt::format("client {}: bad echo", i);
    return "";
}

}  // namespace course::test
