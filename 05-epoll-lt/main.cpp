// Chapter 05: epoll, level-triggered (水平触发).
//
// select and poll take the whole list of sockets on every call, and answer by
// marking it: both sides scan everything, every time. epoll splits the two
// jobs. epoll_ctl registers interest once, into a set the kernel keeps; the
// kernel puts a socket on a ready list when its state changes; epoll_wait
// hands back only the ready ones. A call costs O(ready), not O(connections).
//
// Level-triggered is epoll's default and means what poll meant: "this socket
// is readable" is reported on every epoll_wait for as long as it is true. So
// one read per event is enough: whatever is left will be reported again. The
// one thing to get right is EPOLLOUT: a socket with room in its send buffer
// is always writable, so interest in EPOLLOUT must be registered only while
// there is output pending, or every epoll_wait returns at once (a busy loop).
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

// #region interest
// A connection and the events it is registered for in the epoll set.
struct Watched {
    Connection conn;
    std::uint32_t events = 0;  // what epoll watches for it now
};

void watch(int ep, Watched& w, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = w.conn.fd.get();  // epoll_wait gives this back: it is how we find the connection
    if (sys::epoll_ctl(ep, w.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, w.conn.fd.get(), &ev) < 0)
        throw_errno("epoll_ctl");
    w.events = events;
}

// #region update-interest
// Asks for EPOLLIN while we want to read, EPOLLOUT only while output is
// pending. epoll_ctl is a system call: make it only when the answer changes.
void update_interest(int ep, Watched& w) {
    std::uint32_t want = (w.conn.wants_read() ? EPOLLIN : 0u) | (w.conn.wants_write() ? EPOLLOUT : 0u);
    if (want != w.events) watch(ep, w, want);
}
// #endregion update-interest
// #endregion interest

// #region accept
// Accepts every client that is waiting, until accept says EAGAIN.
// Out of descriptors (EMFILE): the reserved-fd trick, as in chapter 01.
void accept_clients(int listen_fd, Fd& reserve, int ep, std::vector<Watched>& table) {
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
        if (static_cast<size_t>(fd) >= table.size()) table.resize(static_cast<size_t>(fd) + 1);
        table[fd] = Watched{};
        table[fd].conn.fd = Fd(fd);
        watch(ep, table[fd], EPOLLIN);
    }
}
// #endregion accept

}  // namespace

int main(int argc, char** argv) {
    Cli cli("05-epoll-lt", "Echo server on a level-triggered epoll event loop.");
    bool keep_epollout = false;
    cli.flag("--keep-epollout", "demonstration bug: leave EPOLLOUT armed (a busy loop)", keep_epollout);
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
            ev.events = EPOLLIN;
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
                    accept_clients(listener.get(), reserve, ep.get(), table);
                    continue;
                }
                Watched& w = table[fd];
                Connection& c = w.conn;
                bool ok = true;
                // EPOLLHUP and EPOLLERR come even when not asked for; read() then says EOF or the error.
                // One read is enough: if more is left, the next epoll_wait says so again.
                if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c.wants_read()) ok = read_some(c);
                if (ok && c.wants_write()) ok = write_some(c);  // echo at once; EPOLLOUT for the rest
                if (!ok || c.finished()) {
                    sys::trace_note(fmt::format("fd {}: {}, closing", fd, ok ? "done" : "failed"));
                    w = Watched{};  // closing the fd also removes it from the epoll set
                } else if (keep_epollout) {
                    if (w.events != (EPOLLIN | EPOLLOUT)) watch(ep.get(), w, EPOLLIN | EPOLLOUT);
                } else {
                    update_interest(ep.get(), w);
                }
            }
        }
        // #endregion loop
    } catch (const std::exception& e) {
        fmt::print(stderr, "05-epoll-lt: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
