// Chapter 06: epoll, edge-triggered (边缘触发).
//
// With EPOLLET, epoll reports a change, not a state: "this socket became
// readable" once, when data arrives, and not again until more data arrives.
// That is why every socket here is registered once, for everything
// (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET), as Go's runtime does, and never
// touched again with epoll_ctl: no EPOLLOUT toggling, no MOD calls.
//
// The price: after an event, the server must do all the work it can until the
// kernel says EAGAIN: accept until EAGAIN, read until EAGAIN, write until
// EAGAIN or done. Stop earlier and nothing will remind you: the data sits in
// the socket while the server waits for an edge that never comes (a stall).
// --no-drain makes that mistake on purpose: one accept and one read per event.
#include "cli.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course;

namespace {

// #region connection
// What the server keeps per client; the same in chapters 02-06.
constexpr size_t kMaxPending = 256 * 1024;  // echo bytes we hold for one client, at most
constexpr size_t kReadChunk = 64 * 1024;

struct Connection {
    Fd fd;
    std::string pending;  // bytes read from the client, not yet written back
    size_t sent = 0;      // how many bytes of `pending` are written already
    bool eof = false;     // the client half-closed: echo what is pending, then close

    size_t unsent() const { return pending.size() - sent; }
    // Backpressure: a client that does not read its echo stops being read
    // from, so it cannot make us buffer without limit.
    bool wants_read() const { return !eof && unsent() < kMaxPending; }
    bool wants_write() const { return unsent() > 0; }
    bool finished() const { return eof && unsent() == 0; }
};

bool is_transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// One read(2). Returns false if the connection failed and must be closed.
bool read_some(Connection& c) {
    static char buf[kReadChunk];
    if (c.sent > 0 && c.sent >= c.pending.size() / 2) {  // drop what is written already
        c.pending.erase(0, c.sent);
        c.sent = 0;
    }
    ssize_t n = sys::read(c.fd.get(), buf, std::min(sizeof buf, kMaxPending - c.unsent()));
    if (n > 0) c.pending.append(buf, static_cast<size_t>(n));
    else if (n == 0) c.eof = true;
    return n >= 0 || is_transient(errno);  // EAGAIN: nothing to read now. ECONNRESET: gone.
}

// #region write-some
// One write(2) of what is pending. Returns false if the connection failed.
bool write_some(Connection& c) {
    ssize_t n = sys::write(c.fd.get(), c.pending.data() + c.sent, c.unsent());
    if (n < 0) return is_transient(errno);  // EAGAIN: the socket buffer is full. EPIPE: gone.
    c.sent += static_cast<size_t>(n);  // maybe fewer than asked: the rest waits for the next turn
    if (c.sent == c.pending.size()) {
        c.pending.clear();
        c.sent = 0;
    }
    return true;
}
// #endregion write-some
// #endregion connection

// #region edge
// A connection and what the last edges told us. An edge sets a flag; only
// EAGAIN clears it. Between the two the socket is known to be ready, whether
// or not we use it now (chapter 07's "sticky readiness" is the same idea).
struct Watched {
    Connection conn;
    bool can_read = false;
    bool can_write = false;
};

// #region pump
// Makes all the progress possible now, since no event will come to remind us:
// read until EAGAIN (or until the echo buffer is full), write until EAGAIN or
// done, and again, as long as either side moves.
bool pump(Watched& w, bool no_drain) {
    Connection& c = w.conn;
    for (bool moved = true; moved;) {
        moved = false;
        if (w.can_read && c.wants_read()) {
            size_t before = c.unsent();
            if (!read_some(c)) return false;
            if (c.eof || c.unsent() > before) moved = true;
            else w.can_read = false;  // EAGAIN: wait for the next edge
            if (no_drain) w.can_read = false;  // the bug: one read per event
        }
        if (w.can_write && c.wants_write()) {
            size_t before = c.unsent();
            if (!write_some(c)) return false;
            if (c.unsent() < before) moved = true;
            else w.can_write = false;  // EAGAIN: wait for EPOLLOUT's edge
        }
    }
    return true;
}
// #endregion pump
// #endregion edge

// #region accept
// Accepts until EAGAIN: the listener's edge announced all waiting clients at
// once. Out of descriptors (EMFILE): the reserved-fd trick, as in chapter 01;
// here it is not optional, since no new edge would come for those clients.
void accept_clients(int listen_fd, Fd& reserve, int ep, std::vector<Watched>& table, bool no_drain) {
    for (;;) {
        int fd = sys::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve) {
            reserve.reset();  // free one descriptor, take the waiting client
            fd = sys::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            reserve = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (fd >= 0 && !reserve) {  // still no room: close it at once (EOF, or RST if it sent data)
                sys::trace_note(fmt::format("fd {}: out of descriptors, closing the new client", fd));
                sys::close(fd);
                reserve = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
                continue;
            }
        }
        if (fd < 0) {
            if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) throw_errno("accept4");
            if (errno == ECONNABORTED || errno == EINTR) continue;
            return;  // EAGAIN: nobody is waiting. (EMFILE with no spare: try again at the next edge.)
        }
        sys::trace_note(fmt::format("fd {}: client {} connected", fd, peer_address(fd)));
        if (static_cast<size_t>(fd) >= table.size()) table.resize(static_cast<size_t>(fd) + 1);
        table[fd] = Watched{};
        table[fd].conn.fd = Fd(fd);
        // Registered once for everything, for its whole life.
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.fd = fd;
        if (sys::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
        if (no_drain) return;  // the bug: one accept per event
    }
}
// #endregion accept

}  // namespace

int main(int argc, char** argv) {
    Cli cli("06-epoll-et", "Echo server on an edge-triggered epoll event loop.");
    bool no_drain = false;
    cli.flag("--no-drain", "demonstration bug: one accept/read per event instead of until EAGAIN (stalls)", no_drain);
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        install_signal_handlers();
        Fd listener = listen_tcp(opt.host, opt.port);
        set_nonblocking(listener.get());  // accept4 returns EAGAIN instead of sleeping
        print_ready_line(listener.get());
        Fd reserve(::open("/dev/null", O_RDONLY | O_CLOEXEC));

        Fd ep(::epoll_create1(EPOLL_CLOEXEC));
        if (!ep) throw_errno("epoll_create1");
        for (int fd : {stop_fd(), listener.get()}) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLET;
            ev.data.fd = fd;
            if (sys::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) < 0) throw_errno("epoll_ctl");
        }
        std::vector<Watched> table;  // indexed by fd: table[fd] is the connection on fd

        // #region loop
        constexpr int kMaxEvents = 256;
        epoll_event events[kMaxEvents];
        while (!stop_requested()) {
            int ready = sys::epoll_wait(ep.get(), events, kMaxEvents, -1);  // sleeps; returns only ready fds
            if (ready < 0) {
                if (errno == EINTR) continue;  // a signal; the loop condition looks at the stop flag
                throw_errno("epoll_wait");
            }
            for (int i = 0; i < ready; ++i) {
                int fd = events[i].data.fd;
                std::uint32_t ev = events[i].events;
                if (fd == stop_fd()) continue;
                if (fd == listener.get()) {
                    accept_clients(listener.get(), reserve, ep.get(), table, no_drain);
                    continue;
                }
                Watched& w = table[fd];
                // EPOLLRDHUP (the client half-closed) means "readable": read
                // what is left, up to EOF. Closing now would lose that data.
                if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w.can_read = true;
                if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) w.can_write = true;
                bool ok = pump(w, no_drain);
                if (!ok || w.conn.finished()) {
                    sys::trace_note(fmt::format("fd {}: {}, closing", fd, ok ? "done" : "failed"));
                    w = Watched{};  // closing the fd also removes it from the epoll set
                }
            }
        }
        // #endregion loop
    } catch (const std::exception& e) {
        fmt::print(stderr, "06-epoll-et: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
