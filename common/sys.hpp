// Traced, counted system calls.
//
// Each function here has exactly the signature and the result of the system
// call it is named after: -1 with errno set on failure. Chapters call them
// instead of the bare ::read, ::accept4, ... so that `--trace` prints one line
// per call and the stats line on exit counts calls and EAGAIN results per kind.
// They add nothing else: no retry on EINTR, no error handling. That stays in
// the chapter, where the lesson is. With --trace on they format and allocate,
// so they are not async-signal-safe: never call them from a signal handler.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>

namespace course::sys {

// The kinds of call the stats line counts, in the order it prints them.
enum class Call { accept, read, write, close, shutdown, select, poll, epoll_wait, epoll_ctl };
inline constexpr int kCallKinds = 9;
const char* call_name(Call c);

namespace detail {
// Per kind of call: how often it was made, and how it failed. Relaxed
// atomics: the server in thread-per-connection mode counts from many threads;
// nobody reads the counters to synchronise anything.
struct AtomicCounter {
    std::atomic<std::uint64_t> calls{0}, eagain{0}, eintr{0}, errors{0};
};
extern std::array<AtomicCounter, kCallKinds> counters;
extern std::atomic<bool> trace_on;

// The common cases, success or EAGAIN while not tracing, are counted here,
// inline in the caller: a few instructions, since this cost is part of every
// chapter's per-round-trip cost. Returns false for everything else, which
// the noted_* functions below (sys.cpp) count and, when tracing, print;
// they preserve errno and return the result unchanged.
inline bool quiet(Call kind, long long result) noexcept {
    AtomicCounter& c = counters[static_cast<int>(kind)];
    c.calls.fetch_add(1, std::memory_order_relaxed);
    if (trace_on.load(std::memory_order_relaxed)) return false;
    if (result >= 0) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
    c.eagain.fetch_add(1, std::memory_order_relaxed);
    return true;
}

long long noted_accept4(long long r, int fd);
long long noted_read(long long r, int fd, size_t len);
long long noted_write(long long r, int fd, size_t len);
long long noted_close(long long r, int fd);
long long noted_shutdown(long long r, int fd, int how);
long long noted_select(long long r, int nfds);
long long noted_poll(long long r, nfds_t nfds, int timeout_ms);
long long noted_epoll_wait(long long r, int epfd, int max_events, int timeout_ms);
long long noted_epoll_ctl(long long r, int epfd, int op, int fd, const epoll_event* event);
}  // namespace detail

inline int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
    int r = ::accept4(fd, addr, len, flags);
    return detail::quiet(Call::accept, r) ? r : static_cast<int>(detail::noted_accept4(r, fd));
}
inline ssize_t read(int fd, void* buf, size_t len) {
    ssize_t r = ::read(fd, buf, len);
    return detail::quiet(Call::read, r) ? r : detail::noted_read(r, fd, len);
}
inline ssize_t write(int fd, const void* buf, size_t len) {
    ssize_t r = ::write(fd, buf, len);
    return detail::quiet(Call::write, r) ? r : detail::noted_write(r, fd, len);
}
inline int close(int fd) {
    int r = ::close(fd);
    return detail::quiet(Call::close, r) ? r : static_cast<int>(detail::noted_close(r, fd));
}
inline int shutdown(int fd, int how) {
    int r = ::shutdown(fd, how);
    return detail::quiet(Call::shutdown, r) ? r : static_cast<int>(detail::noted_shutdown(r, fd, how));
}
inline int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* timeout) {
    int r = ::select(nfds, rd, wr, ex, timeout);
    return detail::quiet(Call::select, r) ? r : static_cast<int>(detail::noted_select(r, nfds));
}
inline int poll(pollfd* fds, nfds_t nfds, int timeout_ms) {
    int r = ::poll(fds, nfds, timeout_ms);
    return detail::quiet(Call::poll, r) ? r : static_cast<int>(detail::noted_poll(r, nfds, timeout_ms));
}
inline int epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms) {
    int r = ::epoll_wait(epfd, events, max_events, timeout_ms);
    return detail::quiet(Call::epoll_wait, r) ? r
                                              : static_cast<int>(detail::noted_epoll_wait(r, epfd, max_events, timeout_ms));
}
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
    int r = ::epoll_ctl(epfd, op, fd, event);
    return detail::quiet(Call::epoll_ctl, r) ? r : static_cast<int>(detail::noted_epoll_ctl(r, epfd, op, fd, event));
}

// --trace: one line per call on stderr, coloured when stderr is a terminal.
void set_trace(bool on);
bool tracing();
// A free-form trace line ("client 127.0.0.1:5000 connected"), printed only
// when tracing, in the same format as the syscall lines.
void trace_note(const std::string& text);

struct Counter {
    std::uint64_t calls = 0;
    std::uint64_t eagain = 0;  // -1 with EAGAIN/EWOULDBLOCK: "nothing to do now"
    std::uint64_t eintr = 0;   // -1 with EINTR: interrupted by a signal
    std::uint64_t errors = 0;  // any other -1
};
Counter counter(Call c);
void reset_counters();

// "stats: accept=1 accept_eagain=0 accept_eintr=0 accept_err=0 read=..."
// Every kind called at least once appears with its four counts.
std::string stats_line();
// Writes stats_line() to stderr; chapters call it once, on exit.
void print_stats();

}  // namespace course::sys

namespace course {

// For a call that must not fail (socket, bind, epoll_ctl, ...): throws
// std::system_error(errno) whose what() is "<what>: <strerror(errno)>".
// The failures a server expects (EAGAIN, EINTR, ECONNRESET, ...) are the
// chapter's to handle, never thrown.
[[noreturn]] void throw_errno(const std::string& what);

}  // namespace course
