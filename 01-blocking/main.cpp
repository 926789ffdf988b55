// Chapter 01: blocking I/O.
//
// The simplest echo server there is: accept(2) a client, read(2) what it sends
// and write(2) it back until it leaves, then accept the next one. Every call
// blocks: the thread sleeps in the kernel until the call can complete.
//
//   default     iterative: one client at a time. A second client's connect()
//               succeeds (the kernel completes the handshake and queues the
//               connection in the listen backlog), but nobody reads from it
//               until the first client has left.
//   --threads   one thread per connection: clients are served at the same
//               time, and each one costs a thread: a stack, a kernel task,
//               and a context switch whenever it wakes up.
#include "cli.hpp"
#include "fd.hpp"
#include "net.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

using namespace course;

namespace {

constexpr size_t kBufferSize = 16 * 1024;

// #region write-all
// A blocking write(2) normally sends everything, but not always: a signal
// that arrives after part of the data was copied makes it return a short
// count. Continue from where it stopped, never from the start of the buffer.
bool write_all(int fd, const char* data, size_t len) {
    while (len > 0) {
        ssize_t n = sys::write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR && !stop_requested()) continue;  // a signal, not the client
            return false;  // EPIPE, ECONNRESET: the client is gone (SIGPIPE is ignored)
        }
        data += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}
// #endregion write-all

// #region serve
// Echoes one client until it closes its side, fails, or the server stops.
void serve(int fd) {
    sys::trace_note(fmt::format("fd {}: client {} connected", fd, peer_address(fd)));
    char buf[kBufferSize];
    while (!stop_requested()) {
        ssize_t n = sys::read(fd, buf, sizeof buf);  // sleeps until data, EOF or an error
        if (n > 0) {
            // Echo exactly the n bytes read, not the whole buffer.
            if (!write_all(fd, buf, static_cast<size_t>(n))) break;
        } else if (n == 0) {
            // EOF: the client shut down its sending side (or closed). All it
            // sent has been echoed already, because we echo before reading on.
            break;
        } else if (errno == EINTR) {
            // A signal interrupted the read. If it was SIGTERM, the loop
            // condition ends it; any other signal: the client is still there,
            // read again. (Treating EINTR as a disconnect is a classic bug.)
        } else {
            break;  // ECONNRESET: the client aborted.
        }
    }
    sys::trace_note(fmt::format("fd {}: done, closing", fd));
}
// #endregion serve

// #region threads
// --threads: the connections whose threads are alive. On shutdown, a thread
// blocked in read(2) cannot be interrupted by a flag; shutdown(2) on its
// socket wakes it (read returns 0, write fails with EPIPE).
class LiveConnections {
public:
    void add(int fd) {
        std::lock_guard lock(mu_);
        fds_.insert(fd);
    }
    // Called before the fd is closed, so shutdown_all() never touches a number
    // that close() has freed and accept() may already have handed out again.
    void remove(int fd) {
        std::lock_guard lock(mu_);
        fds_.erase(fd);
        if (fds_.empty()) empty_.notify_all();
    }
    void shutdown_all() {
        std::lock_guard lock(mu_);
        for (int fd : fds_) sys::shutdown(fd, SHUT_RDWR);
    }
    bool wait_until_empty(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return empty_.wait_for(lock, timeout, [&] { return fds_.empty(); });
    }

private:
    std::mutex mu_;
    std::condition_variable empty_;
    std::set<int> fds_;
};

LiveConnections live;  // static storage: outlives every connection thread

void spawn_connection_thread(Fd conn) {
    // The new thread inherits this signal mask: SIGINT/SIGTERM/SIGALRM/SIGUSR1
    // are blocked in it, so they always reach the main thread in accept().
    sigset_t block, old;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGALRM, SIGUSR1}) sigaddset(&block, sig);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    int fd = conn.get();
    live.add(fd);
    try {
        std::thread([conn = std::move(conn)]() mutable {
            serve(conn.get());
            live.remove(conn.get());
        }).detach();  // conn is closed when the thread's lambda is destroyed
    } catch (const std::system_error& e) {
        // No more threads (EAGAIN): the lambda, and with it conn, is gone.
        live.remove(fd);
        fmt::print(stderr, "01-blocking: cannot start a thread ({}): client dropped\n", e.what());
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}
// #endregion threads

// #region emfile
// accept(2) fails with EMFILE when the process has no free descriptor. Linux
// checks that before it looks at the backlog, so a blocking accept returns
// EMFILE at once, again and again: the loop spins, and a waiting client hangs
// until it gives up. The reserved-fd trick: hold one spare descriptor for this
// moment. Free it, accept, and take the spare back. If that fails, we really
// are out of descriptors: close the client at once (it sees the connection
// end, EOF or RST, instead of silence).
// If it works, descriptors were freed while we waited: serve the client.
Fd open_reserve() { return Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

int accept_with_reserve(int listen_fd, Fd& reserve) {
    static bool warned = false;
    if (!warned) {
        fmt::print(stderr, "01-blocking: out of file descriptors: closing new clients until some leave\n");
        warned = true;
    }
    if (!reserve) {  // the spare could not be taken back last time: wait instead of spinning
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        reserve = open_reserve();
        return -1;
    }
    reserve.reset();
    int fd = sys::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);  // sleeps until a client comes
    reserve = open_reserve();
    if (fd < 0 || reserve) return fd;  // an error, or there is room again: serve this client
    sys::trace_note(fmt::format("fd {}: no descriptor to spare, closing the new client", fd));
    sys::close(fd);
    reserve = open_reserve();
    return -1;
}
// #endregion emfile

}  // namespace

int main(int argc, char** argv) {
    Cli cli("01-blocking", "Blocking echo server: one client at a time, or one thread per client.");
    bool threads = false;
    cli.flag("--threads", "one thread per connection (default: one client at a time)", threads);
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        install_signal_handlers();
        Fd listener = listen_tcp(opt.host, opt.port);
        print_ready_line(listener.get());
        Fd reserve = open_reserve();

        // #region accept-loop
        while (!stop_requested()) {
            int fd = sys::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);  // sleeps until a client comes
            if (fd < 0 && (errno == EMFILE || errno == ENFILE)) fd = accept_with_reserve(listener.get(), reserve);
            if (fd < 0) {
                if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK) throw_errno("accept4");
                // EINTR (a signal: the loop checks stop_requested), ECONNABORTED
                // (the client left while queued), a refused client: go on.
                continue;
            }
            if (threads) {
                spawn_connection_thread(Fd(fd));
            } else {
                Fd conn(fd);
                serve(conn.get());  // nobody else is served until this returns
            }
        }
        // #endregion accept-loop

        if (threads) {
            live.shutdown_all();
            if (!live.wait_until_empty(std::chrono::milliseconds(1500))) {
                fmt::print(stderr, "01-blocking: connection threads did not finish in time\n");
                sys::print_stats();
                std::_Exit(1);
            }
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "01-blocking: {}\n", e.what());
        return 1;
    }
    sys::print_stats();
    return 0;
}
