// The poller interface: the part of the runtime that waits for the network,
// hidden behind five functions so that nothing above it knows whether epoll,
// kqueue, IOCP or plain poll(2) does the waiting.
//
// Go's runtime/netpoll.go opens with the same list: every platform provides
// netpollinit, netpollopen(fd, pd), netpollclose(fd), netpoll(delay) and
// netpollBreak (plus netpollIsPollDescriptor, which we do not need). They are
// the virtual functions below, with Go's names; the backends are
// netpoll_epoll.cpp (Go's netpoll_epoll.go) and netpoll_poll.cpp (no Go
// counterpart: there to show that the interface is the whole contract).
//
// netpoll() does not return events: it returns the waiters that the events
// made runnable (a gList, as Go's), found through the pollDesc registered with each
// fd. It never runs them: the scheduler queues them and runs them later.
#pragma once

#include "poll_desc.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

namespace course::runtime {

// #region poller
class Poller {
public:
    virtual ~Poller() = default;
    virtual const char* name() const = 0;  // no Go twin: "epoll" or "poll", for messages

    // Go's netpollinit: create the poller and its break fd. Called once, by
    // make_poller. Throws std::system_error if the kernel refuses.
    virtual void netpollinit() = 0;

    // Go's netpollopen: watch `fd` for the rest of its life; `pd` is what
    // netpoll hands to netpollready when the fd becomes ready. Returns an
    // errno value (0: done), as Go's does.
    virtual int netpollopen(int fd, pollDesc* pd) = 0;

    // Go's netpollclose: stop watching `fd`. Call it before close(2). Returns an errno value.
    virtual int netpollclose(int fd) = 0;

    // Go's netpollarm, which only its level-triggered pollers have (AIX's
    // poll, Solaris's event ports): a waiter is about to park on `pd` for
    // `mode`; ask the kernel about that direction from the next call on.
    // netpollblock calls it only if arms() is true (no Go twin: Go knows at
    // compile time, from GOOS); epoll does not need it (every fd is watched
    // for both directions, once, from netpollopen on).
    virtual bool arms() const noexcept { return false; }
    virtual void netpollarm(pollDesc* /*pd*/, Mode /*mode*/) {}

    // Go's netpoll: wait for the network and append the waiters it made
    // runnable to `toRun`. Go returns them as a gList, which findRunnable
    // then hands to injectglist; our scheduler passes its run queue, so that
    // they land there directly. delay < 0 blocks until something happens,
    // delay == 0 only looks, delay > 0 waits at most that long (see timeout_ms
    // below). An interrupted wait (EINTR) appends nothing, so that the caller
    // can look at what the signal handler changed.
    virtual void netpoll(std::chrono::nanoseconds delay, gList& toRun) = 0;

    // The same into a new list, as Go's returns one (tests).
    gList netpoll(std::chrono::nanoseconds delay) {
        gList toRun;
        netpoll(delay, toRun);
        return toRun;
    }

    // Go's netpollBreak: wake a netpoll blocked in another thread, or in this
    // thread when called from a signal handler. Many calls before the poller
    // wakes cost one wake-up. Async-signal-safe.
    virtual void netpollBreak() noexcept = 0;

    // No Go twin: how many netpollBreak calls actually wrote to the break
    // fd (the coalesced ones do not count). For tests and the stats line.
    virtual std::uint64_t break_writes() const noexcept = 0;
};
// #endregion poller

// No Go twin (Go has one poller per platform, chosen when it is built):
// "epoll" or "poll" (the --poller flag), initialised and ready to use.
// Throws std::invalid_argument for any other name.
std::unique_ptr<Poller> make_poller(std::string_view name);

// The backends, each in its own file; make_poller calls netpollinit on them.
std::unique_ptr<Poller> new_epoll_poller();
std::unique_ptr<Poller> new_poll_poller();

// The delay as the millisecond timeout that epoll_wait and poll take, as Go's
// netpoll (netpoll_epoll.go) computes it: whole milliseconds, truncated, except
// that a delay under 1 ms becomes 1 (not 0, which would make a busy loop of
// zero-timeout polls while a deadline is a few microseconds away). So netpoll
// may return up to 1 ms before the earliest timer is due; the scheduler then
// finds no timer due and polls again for what is left.
// #region timeout
inline int timeout_ms(std::chrono::nanoseconds delay) {
    using namespace std::chrono;
    if (delay < nanoseconds::zero()) return -1;  // block until something happens
    if (delay == nanoseconds::zero()) return 0;  // just look
    if (delay < milliseconds(1)) return 1;       // never 0 for a positive delay
    if (delay < seconds(1'000'000)) return static_cast<int>(duration_cast<milliseconds>(delay).count());  // truncated
    return 1'000'000'000;                        // Go's cap: 1e9 ms, 11.5 days
}
// #endregion timeout

}  // namespace course::runtime
