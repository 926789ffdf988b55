// Chapter 04: poll(2).
//
// poll asks the same question as select, with a better interface: an array of
// {fd, events, revents} entries instead of three bitmaps. There is no
// FD_SETSIZE: any descriptor can be watched, and the answer goes into revents,
// so the requests need not be rebuilt from scratch.
//
// What poll does not change: every call hands the kernel the whole array, the
// kernel checks every entry, and the server scans every entry for an answer.
// With 10,000 connections of which one is active, each call still costs
// 10,000 checks. Chapter 05 keeps the list inside the kernel instead.
#include "cli.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
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

// #region accept
// Accepts every client that is waiting, until accept says EAGAIN.
// Out of descriptors (EMFILE): the reserved-fd trick, as in chapter 01.
void accept_clients(int listen_fd, Fd& reserve, std::vector<Connection>& conns, std::vector<pollfd>& fds) {
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
            return;  // EAGAIN: nobody is waiting. (EMFILE with no spare: try again next time.)
        }
        sys::trace_note(fmt::format("fd {}: client {} connected", fd, peer_address(fd)));
        conns.emplace_back().fd = Fd(fd);
        fds.push_back(pollfd{fd, 0, 0});  // revents 0: not looked at until the next poll
    }
}
// #endregion accept

// #region compact
// Removes closed connections from both arrays in one pass, keeping
// conns[i] and fds[kFirstConnection + i] together. Done after the answers of
// this poll call have all been handled, so no entry moves under our feet.
constexpr size_t kFirstConnection = 2;  // fds[0]: the stop pipe, fds[1]: the listener

// #region compact-function
void compact(std::vector<Connection>& conns, std::vector<pollfd>& fds) {
    size_t kept = 0;
    for (size_t i = 0; i < conns.size(); ++i) {
        if (!conns[i].fd) continue;
        if (kept != i) {
            conns[kept] = std::move(conns[i]);
            fds[kFirstConnection + kept] = fds[kFirstConnection + i];
        }
        ++kept;
    }
    conns.resize(kept);
    fds.resize(kFirstConnection + kept);
}
// #endregion compact-function
// #endregion compact

}  // namespace

int main(int argc, char** argv) {
    Cli cli("04-poll", "Echo server that waits for all its sockets with poll(2).");
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        install_signal_handlers();
        Fd listener = listen_tcp(opt.host, opt.port);
        set_nonblocking(listener.get());  // accept4 returns EAGAIN instead of sleeping
        print_ready_line(listener.get());
        Fd reserve(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        std::vector<pollfd> fds = {{stop_fd(), POLLIN, 0}, {listener.get(), POLLIN, 0}};
        std::vector<Connection> conns;  // conns[i] is watched by fds[kFirstConnection + i]

        // #region loop
        while (!stop_requested()) {
            for (size_t i = 0; i < conns.size(); ++i) {  // what each connection wants right now
                fds[kFirstConnection + i].events = static_cast<short>((conns[i].wants_read() ? POLLIN : 0) |
                                                                      (conns[i].wants_write() ? POLLOUT : 0));
            }

            int ready = sys::poll(fds.data(), fds.size(), -1);  // sleeps until something is ready
            if (ready < 0) {
                if (errno == EINTR) continue;  // a signal; the loop condition looks at the stop flag
                throw_errno("poll");
            }

            if (fds[1].revents & POLLIN) accept_clients(listener.get(), reserve, conns, fds);
            // The answers are in revents: find them by looking at every entry.
            for (size_t i = 0; i < conns.size(); ++i) {
                Connection& c = conns[i];
                short revents = fds[kFirstConnection + i].revents;
                bool ok = true;
                // POLLHUP and POLLERR come even when not asked for; read() then says EOF or the error.
                if ((revents & (POLLIN | POLLHUP | POLLERR)) && c.wants_read()) ok = read_some(c);
                if (ok && c.wants_write()) ok = write_some(c);  // echo at once; poll waits for the rest
                if (!ok || c.finished()) {
                    sys::trace_note(fmt::format("fd {}: {}, closing", c.fd.get(), ok ? "done" : "failed"));
                    c.fd.reset();  // closes it; compact() drops the entry
                }
            }
            compact(conns, fds);
        }
        // #endregion loop
    } catch (const std::exception& e) {
        fmt::print(stderr, "04-poll: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
