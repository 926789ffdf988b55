// Client-side helpers for tests: every call is bounded by a timeout, so a
// misbehaving server fails a test instead of hanging it.
#pragma once

#include "fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>

namespace course::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// A connected TCP socket to 127.0.0.1:port (throws on failure).
Fd connect_to(std::uint16_t port);

// Sends all of `data`; false if the deadline passes or the connection fails.
bool send_all(int fd, std::string_view data, Millis timeout = 10s);

// Receives until `n` bytes arrived, EOF, an error, or the timeout; returns what arrived.
std::string recv_exactly(int fd, size_t n, Millis timeout = 10s);

// True if nothing at all arrives within `window`: for "this client is NOT served yet".
bool nothing_arrives(int fd, Millis window);

enum class PeerEnd { eof, reset, timeout, data };
// Waits for the server to close the connection. `data` means bytes arrived instead.
PeerEnd wait_closed(int fd, Millis timeout = 5s);
const char* to_string(PeerEnd e);
inline std::ostream& operator<<(std::ostream& os, PeerEnd e) { return os << to_string(e); }

// One complete, polite session: connect, send `message`, read its echo,
// half-close, and wait for the server to close. True if every step worked.
bool echo_session(std::uint16_t port, std::string_view message, Millis timeout = 5s);

// shutdown(SHUT_WR): "I have nothing more to send" (half-close).
void half_close(int fd);
// SO_LINGER {on, 0} then close: the kernel sends RST instead of FIN.
void abort_close(Fd& fd);

// Sends `payload` in random-sized chunks (1..max_chunk bytes) while reading the
// echo at the same time, as a real client must: a server that blocks writing
// to us would otherwise deadlock with us blocked writing to it.
// Returns everything received until payload.size() bytes, EOF, error or timeout.
std::string exchange(int fd, std::string_view payload, std::mt19937& rng, size_t max_chunk = 65536,
                     Millis timeout = 30s);

std::string random_bytes(size_t n, std::uint32_t seed);

// From /proc/<pid>: resident memory, CPU time (user+system), threads, open descriptors.
long rss_kib(pid_t pid);
double cpu_seconds(pid_t pid);
int thread_count(pid_t pid);
int open_fd_count(pid_t pid);
// The system call the process's main thread is blocked in (SYS_read,
// SYS_write, ... from <sys/syscall.h>), or -1 if it is running.
long current_syscall(pid_t pid);
// Waits (bounded, polling /proc every millisecond) until current_syscall(pid) == nr.
bool wait_until_in_syscall(pid_t pid, long nr, Millis timeout = 5s);

// Checks `condition` every millisecond until it holds (true) or `timeout`
// passes (false): for state that has no event to wait on, such as /proc.
//   ASSERT_TRUE(eventually([&] { return open_fd_count(pid) <= 10; }, 2s));
bool eventually(const std::function<bool()>& condition, Millis timeout = 5s);

}  // namespace course::test
