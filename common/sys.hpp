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

#include <cstdint>
#include <string>

namespace course::sys {

// The kinds of call the stats line counts, in the order it prints them.
enum class Call { accept, read, write, close, shutdown, select, poll, epoll_wait, epoll_ctl };
inline constexpr int kCallKinds = 9;
const char* call_name(Call c);

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags);
ssize_t read(int fd, void* buf, size_t len);
ssize_t write(int fd, const void* buf, size_t len);
int close(int fd);
int shutdown(int fd, int how);
int select(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* timeout);
int poll(pollfd* fds, nfds_t nfds, int timeout_ms);
int epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms);
int epoll_ctl(int epfd, int op, int fd, epoll_event* event);

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
