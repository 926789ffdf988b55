// Chapter 03: select(2), the first I/O multiplexing (I/O 多路复用) call.
//
// Chapter 02 asked every socket "anything for me?" again and again. select
// asks the kernel instead: "here are the sockets I care about; sleep until at
// least one of them is ready, then tell me which". The server sleeps while
// nothing happens, and each call that returns has work to do.
//
// The price is in the interface. The sets are bitmaps indexed by descriptor
// number, FD_SETSIZE (1024) bits long: a descriptor >= 1024 cannot be watched
// at all. select overwrites the sets with its answer, so they are rebuilt
// before every call, and both the kernel and the server scan them from 0 to
// the highest descriptor: the cost of every call grows with the number of
// connections, even when only one of them is active.
#include "cli.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <map>
#include <string>

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

void report_fd_setsize(int fd) {
    static bool warned = false;
    if (!warned) {
        fmt::print(stderr, "03-select: descriptor {} does not fit in an fd_set (FD_SETSIZE {}): "
                           "closing clients beyond the limit\n", fd, FD_SETSIZE);
        warned = true;
    }
    sys::trace_note(fmt::format("fd {}: >= FD_SETSIZE ({}), select cannot watch it: closing", fd, FD_SETSIZE));
}

// #region accept
// Accepts every client that is waiting, until accept says EAGAIN.
// Out of descriptors (EMFILE): the reserved-fd trick, as in chapter 01.
// A descriptor >= FD_SETSIZE does not fit in an fd_set: FD_SET on it would
// write past the end of the set (memory corruption). Close such a client.
void accept_clients(int listen_fd, Fd& reserve, std::map<int, Connection>& conns) {
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
        if (fd >= FD_SETSIZE) {
            report_fd_setsize(fd);
            sys::close(fd);
            continue;
        }
        sys::trace_note(fmt::format("fd {}: client {} connected", fd, peer_address(fd)));
        conns[fd].fd = Fd(fd);
    }
}
// #endregion accept

}  // namespace

int main(int argc, char** argv) {
    Cli cli("03-select", "Echo server that waits for all its sockets with select(2).");
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        install_signal_handlers();
        Fd listener = listen_tcp(opt.host, opt.port);
        set_nonblocking(listener.get());  // accept4 returns EAGAIN instead of sleeping
        print_ready_line(listener.get());
        Fd reserve(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        std::map<int, Connection> conns;  // by fd

        // #region loop
        while (!stop_requested()) {
            // select overwrites the sets with its answer: build them anew
            // every time, from what each connection wants right now.
            fd_set readable, writable;
            FD_ZERO(&readable);
            FD_ZERO(&writable);
            FD_SET(listener.get(), &readable);
            FD_SET(stop_fd(), &readable);  // SIGINT/SIGTERM make it readable
            int max_fd = std::max(listener.get(), stop_fd());
            // #region build-sets
            for (auto& [fd, c] : conns) {  // every fd here is < FD_SETSIZE (see accept_clients)
                if (c.wants_read()) FD_SET(fd, &readable);
                if (c.wants_write()) FD_SET(fd, &writable);
                max_fd = std::max(max_fd, fd);
            }
            // #endregion build-sets

            int ready = sys::select(max_fd + 1, &readable, &writable, nullptr, nullptr);  // sleeps
            if (ready < 0) {
                if (errno == EINTR) continue;  // a signal; the loop condition looks at the stop flag
                throw_errno("select");
            }

            if (FD_ISSET(listener.get(), &readable)) accept_clients(listener.get(), reserve, conns);
            // The answer is a set, not a list: find the ready ones by testing
            // every connection, ready or not.
            for (auto it = conns.begin(); it != conns.end();) {
                auto& [fd, c] = *it;
                bool ok = true;
                if (FD_ISSET(fd, &readable)) ok = read_some(c);
                if (ok && c.wants_write()) ok = write_some(c);  // echo at once; select waits for the rest
                if (!ok || c.finished()) {
                    sys::trace_note(fmt::format("fd {}: {}, closing", fd, ok ? "done" : "failed"));
                    it = conns.erase(it);  // ~Fd closes the socket
                } else {
                    ++it;
                }
            }
        }
        // #endregion loop
    } catch (const std::exception& e) {
        fmt::print(stderr, "03-select: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
