// Chapter 02: non-blocking I/O and a busy loop (忙轮询).
//
// Every socket is put in O_NONBLOCK mode: accept(2), read(2) and write(2)
// never sleep. When there is nothing to do they fail at once with EAGAIN
// ("try again"). One thread can then serve every client: it sweeps over the
// listening socket and all connections, again and again, doing whatever can
// be done right now.
//
// That is correct, and concurrent, and terribly wasteful: with nothing to do
// the loop still spins at 100% CPU, making millions of calls that all answer
// EAGAIN. --backoff-us N sleeps N microseconds after every sweep: less CPU,
// but every answer may now wait up to N microseconds. Chapter 03 lets the
// kernel tell us when to look.
#include "cli.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <fcntl.h>
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

// #region accept
// Accepts every client that is waiting, until accept says EAGAIN.
// Out of descriptors (EMFILE): the reserved-fd trick, as in chapter 01.
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
        sys::trace_note(fmt::format("fd {}: client {} connected", fd, peer_address(fd)));
        conns[fd].fd = Fd(fd);
    }
}
// #endregion accept

}  // namespace

int main(int argc, char** argv) {
    Cli cli("02-nonblocking-spin", "Non-blocking echo server that busy-polls every socket in one thread.");
    long long backoff_us = 0;
    cli.option("--backoff-us", "N", "sleep N microseconds after each sweep (default 0: spin)", backoff_us, 0, 1'000'000);
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        install_signal_handlers();
        Fd listener = listen_tcp(opt.host, opt.port);
        set_nonblocking(listener.get());  // accept4 returns EAGAIN instead of sleeping
        print_ready_line(listener.get());
        Fd reserve(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        std::map<int, Connection> conns;  // by fd

        // #region sweep
        while (!stop_requested()) {
            accept_clients(listener.get(), reserve, conns);
            for (auto it = conns.begin(); it != conns.end();) {
                auto& [fd, c] = *it;
                bool ok = true;
                if (c.wants_read()) ok = read_some(c);          // usually: -1 EAGAIN
                if (ok && c.wants_write()) ok = write_some(c);  // echo at once
                if (!ok || c.finished()) {
                    sys::trace_note(fmt::format("fd {}: {}, closing", fd, ok ? "done" : "failed"));
                    it = conns.erase(it);  // ~Fd closes the socket
                } else {
                    ++it;
                }
            }
            if (backoff_us > 0) ::usleep(static_cast<useconds_t>(backoff_us));
        }
        // #endregion sweep
    } catch (const std::exception& e) {
        fmt::print(stderr, "02-nonblocking-spin: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
