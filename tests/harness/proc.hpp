// More of a process's state from /proc, for tests (client.hpp has the first
// readers: rss_kib, cpu_seconds, thread_count, open_fd_count, current_syscall),
// and a server paused with SIGSTOP for as long as a test needs.
#pragma once

#include "server_process.hpp"

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <string_view>
#include <utility>

namespace course::test {

// CPU time used by all the threads of `pid`, in seconds, from the nanosecond
// counters in /proc/PID/task/*/schedstat (cpu_seconds() counts 10 ms clock
// ticks: too coarse for "0.3 %"). Falls back to cpu_seconds().
double precise_cpu_seconds(pid_t pid);

// The state of every thread of `pid` is one of `states` (the letter after the
// name in /proc/PID/task/TID/stat: R running, S asleep in a call, T stopped).
bool every_thread_is(pid_t pid, std::string_view states);

// The signals `pid` ignores (SigIgn in /proc/PID/status): bit N-1 for signal N; 0 if unreadable.
std::uint64_t ignored_signals(pid_t pid);

// SIGSTOP now; SIGCONT on resume() or, if a check failed first, when the test ends.
class Paused {
public:
    explicit Paused(ServerProcess& server) : server_(server) { server_.signal(SIGSTOP); }
    ~Paused() { resume(); }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;
    void resume() {
        if (std::exchange(paused_, false)) server_.signal(SIGCONT);
    }

private:
    ServerProcess& server_;
    bool paused_ = true;
};

}  // namespace course::test
