// BreakFd: how netpollBreak wakes a poller that is blocked in epoll_wait or
// poll (Go's netpollEventFd and netpollWakeSig, in netpoll_epoll.go).
//
// The poller watches an eventfd among its sockets; netpollBreak writes to it,
// which makes the blocked call return. Both backends use this one.
#pragma once

#include "fd.hpp"

#include <atomic>
#include <cstdint>

namespace course::runtime {

class BreakFd {
public:
    // Creates the eventfd (non-blocking, close-on-exec). Throws std::system_error.
    void open();
    int fd() const { return netpollEventFd.get(); }

    // Go's netpollBreak. Writes to the eventfd only if no break is pending
    // already (Go's netpollWakeSig): a thousand breaks before the poller
    // wakes are one write and one wake-up.
    // Async-signal-safe, because a SIGTERM handler calls it: a lock-free
    // atomic, one write(2), errno preserved. That is also why it calls
    // ::write and not sys::write, whose --trace line allocates.
    void wake() noexcept;

    // Called by the poller when the eventfd is readable: reads the counter back
    // to 0, then allows the next break to write again. In that order: cleared
    // first, a break landing between the two would set the flag and write, and
    // our read would swallow its write, leaving the flag set with nothing to
    // read: every later break would be skipped.
    void drain();

    // How many times wake() actually wrote to the eventfd (tests count them).
    std::uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }

private:
    static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler needs a lock-free flag");
    Fd netpollEventFd;  // Go's netpollEventFd
    std::atomic<bool> netpollWakeSig{false};  // Go's netpollWakeSig (a uint32 there)
    std::atomic<std::uint64_t> writes_{0};
};

}  // namespace course::runtime
