#include "sys.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ratio>
#include <system_error>
#include <utility>

namespace course {

void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

namespace sys {
namespace {

using detail::counters;
using detail::trace_on;

const bool colour = ::isatty(STDERR_FILENO) == 1;
const auto start = std::chrono::steady_clock::now();
const pid_t main_tid = ::getpid();

// The start of every trace line: "  12.345 ms", then " [tid N]" when the
// caller is not the main thread.
std::string line_prefix() {
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::string thread;
    if (pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid)); tid != main_tid) thread = fmt::format(" [tid {}]", tid);
    return colour ? fmt::format("\033[2m{:10.3f} ms{}\033[0m", ms, thread) : fmt::format("{:10.3f} ms{}", ms, thread);
}

// Written with a single write(2) so lines from several threads never interleave.
void write_line(const std::string& line) { [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size()); }

// One trace line: "    12.345 ms read(fd=5, len=16384) = 13".
void emit(const std::string& call, const std::string& result, bool failed) {
    if (colour) {
        const char* res = failed ? "\033[31m" : "\033[32m";
        write_line(fmt::format("{} \033[36m{}\033[0m = {}{}\033[0m\n", line_prefix(), call, res, result));
    } else {
        write_line(fmt::format("{} {} = {}\n", line_prefix(), call, result));
    }
}

const char* errno_name(int e) {
    switch (e) {
        case EAGAIN: return "EAGAIN";
        case EINTR: return "EINTR";
        case EBADF: return "EBADF";
        case EINVAL: return "EINVAL";
        case EMFILE: return "EMFILE";
        case ENFILE: return "ENFILE";
        case ENOMEM: return "ENOMEM";
        case ENOBUFS: return "ENOBUFS";
        case EPIPE: return "EPIPE";
        case ECONNRESET: return "ECONNRESET";
        case ECONNABORTED: return "ECONNABORTED";
        case ENOTCONN: return "ENOTCONN";
        case ETIMEDOUT: return "ETIMEDOUT";
        case EEXIST: return "EEXIST";
        case ENOENT: return "ENOENT";
        default: return nullptr;
    }
}

// Counts a failure that quiet() did not (EAGAIN only while tracing) by kind
// and, when tracing, prints the call. `describe` formats the call only when a
// line is printed. errno is preserved.
template <class Describe>
[[gnu::noinline]] long long note(Call kind, long long result, Describe&& describe) {
    const int saved = errno;
    auto& c = counters[static_cast<int>(kind)];
    if (result < 0) {
        if (saved == EAGAIN || saved == EWOULDBLOCK) c.eagain.fetch_add(1, std::memory_order_relaxed);
        else if (saved == EINTR) c.eintr.fetch_add(1, std::memory_order_relaxed);
        else c.errors.fetch_add(1, std::memory_order_relaxed);
    }
    if (trace_on.load(std::memory_order_relaxed)) {
        std::string res;
        if (result >= 0) {
            res = fmt::format("{}", result);
        } else if (const char* n = errno_name(saved)) {
            res = fmt::format("-1 {} ({})", n, std::strerror(saved));
        } else {
            res = fmt::format("-1 errno {} ({})", saved, std::strerror(saved));
        }
        emit(describe(), res, result < 0);
    }
    errno = saved;
    return result;
}

}  // namespace

const char* call_name(Call c) {
    static constexpr std::array<const char*, kCallKinds> names = {
        "accept", "read", "write", "close", "shutdown", "select", "poll", "epoll_wait", "epoll_ctl"};
    return names[static_cast<int>(c)];
}

namespace detail {

std::array<AtomicCounter, kCallKinds> counters;
std::atomic<bool> trace_on{false};

long long noted_accept4(long long r, int fd) {
    return note(Call::accept, r, [&] { return fmt::format("accept4(fd={})", fd); });
}

long long noted_read(long long r, int fd, size_t len) {
    return note(Call::read, r, [&] { return fmt::format("read(fd={}, len={})", fd, len); });
}

long long noted_write(long long r, int fd, size_t len) {
    return note(Call::write, r, [&] { return fmt::format("write(fd={}, len={})", fd, len); });
}

long long noted_close(long long r, int fd) {
    return note(Call::close, r, [&] { return fmt::format("close(fd={})", fd); });
}

long long noted_shutdown(long long r, int fd, int how) {
    return note(Call::shutdown, r, [&] {
        const char* h = how == SHUT_RD ? "SHUT_RD" : how == SHUT_WR ? "SHUT_WR" : "SHUT_RDWR";
        return fmt::format("shutdown(fd={}, {})", fd, h);
    });
}

long long noted_select(long long r, int nfds) {
    return note(Call::select, r, [&] { return fmt::format("select(nfds={})", nfds); });
}

long long noted_poll(long long r, nfds_t nfds, int timeout_ms) {
    return note(Call::poll, r, [&] { return fmt::format("poll(nfds={}, timeout={})", nfds, timeout_ms); });
}

long long noted_epoll_wait(long long r, int epfd, int max_events, int timeout_ms) {
    return note(Call::epoll_wait, r, [&] {
        return fmt::format("epoll_wait(epfd={}, max={}, timeout={})", epfd, max_events, timeout_ms);
    });
}

long long noted_epoll_ctl(long long r, int epfd, int op, int fd, const epoll_event* event) {
    return note(Call::epoll_ctl, r, [&] {
        const char* o = op == EPOLL_CTL_ADD ? "ADD" : op == EPOLL_CTL_MOD ? "MOD" : "DEL";
        std::string ev;
        if (event != nullptr) {
            const std::pair<unsigned, const char*> bits[] = {{EPOLLIN, "IN"},       {EPOLLOUT, "OUT"},
                                                             {EPOLLRDHUP, "RDHUP"}, {EPOLLET, "ET"},
                                                             {EPOLLONESHOT, "ONESHOT"}};
            for (auto [bit, name] : bits)
                if (event->events & bit) ev += ev.empty() ? name : fmt::format("|{}", name);
        }
        return fmt::format("epoll_ctl(epfd={}, {}, fd={}, {})", epfd, o, fd, ev.empty() ? "-" : ev);
    });
}

}  // namespace detail

void set_trace(bool on) { trace_on.store(on); }
bool tracing() { return trace_on.load(std::memory_order_relaxed); }

void trace_note(const std::string& text) {
    if (!tracing()) return;
    write_line(colour ? fmt::format("{} \033[33m{}\033[0m\n", line_prefix(), text)
                      : fmt::format("{} {}\n", line_prefix(), text));
}

Counter counter(Call c) {
    auto& a = counters[static_cast<int>(c)];
    return {a.calls.load(), a.eagain.load(), a.eintr.load(), a.errors.load()};
}

void reset_counters() {
    for (auto& a : counters) a.calls = a.eagain = a.eintr = a.errors = 0;
}

std::string stats_line() {
    std::string line = "stats:";
    for (int i = 0; i < kCallKinds; ++i) {
        auto kind = static_cast<Call>(i);
        Counter c = counter(kind);
        if (c.calls == 0) continue;
        const char* n = call_name(kind);
        line += fmt::format(" {}={} {}_eagain={} {}_eintr={} {}_err={}", n, c.calls, n, c.eagain, n, c.eintr, n,
                            c.errors);
    }
    return line;
}

void print_stats() { write_line(stats_line() + "\n"); }

}  // namespace sys
}  // namespace course
