// Scheduler: the run queue, the deadline timers and the loop that feeds them
// from the poller: Go's findRunnable in miniature, on one thread.
//
//   loop:
//     run every coroutine in the run queue (FIFO), each until it parks or ends
//     netpoll(delay): delay = 0 if more are runnable, else the time to the
//                     earliest deadline timer, else block
//     what netpoll made runnable joins the run queue (Go: injectglist)
//     fire the deadline timers that are due (their waiters join the run queue)
//
// Every wake-up goes through the run queue: netpoll, close and timers only
// hand waiters over; the loop runs them, one at a time, with Waiter::run()
// (waiter.hpp), so the stack never grows with the number of wake-ups.
#pragma once

#include "netpoll.hpp"
#include "poll_desc.hpp"
#include "task.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace course::runtime {

class Scheduler {
public:
    // "epoll" or "poll" (make_poller). Throws as make_poller does.
    explicit Scheduler(std::string_view poller);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // The scheduler whose run() is running on this thread (go() uses it).
    static Scheduler& current();

    // go(): queue a new coroutine (it frees itself when it finishes).
    void spawn(Task<void> task);
    // Go's ready: make a coroutine runnable.
    void ready(std::coroutine_handle<> h);

    // `co_await sched.yield();` Go's Gosched: to the back of the run queue.
    auto yield() noexcept {
        struct Yield {
            Scheduler& s;
            bool await_ready() noexcept { return false; }
            void await_suspend(std::coroutine_handle<> self) { s.ready(self); }
            void await_resume() noexcept {}
        };
        return Yield{*this};
    }

    // Go's findRunnable loop. Returns when stop() was called (then it has
    // shut down: see below) or when every coroutine started with go() has
    // finished.
    void run();

    // Asks run() to stop. Async-signal-safe: a flag and netpollBreak. The
    // loop then unblocks every open descriptor ("closed") and runs the woken
    // coroutines until they have finished; a frame is never destroyed while
    // parked.
    void stop() noexcept;
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    // --- descriptors (conn.cpp) ------------------------------------------------
    // internal/poll calls the runtime's poll_runtime_* functions by these
    // names (runtime_pollOpen, ...: Go links the two with go:linkname). Ours
    // call the functions of poll_desc.hpp with what Go keeps in the runtime's
    // globals: the pollCache, the Poller, the run queue for the woken. Beyond
    // Go, they keep the list of open descriptors that shutdown walks.
    // {pd, 0}, or {nullptr, errno} when the poller refused the fd.
    std::pair<pollDesc*, int> runtime_pollOpen(int fd);
    // Unregisters the fd and recycles its pollDesc (after runtime_pollUnblock).
    void runtime_pollClose(pollDesc* pd);
    // The first half of closing `pd`: its parked waiters join the run queue.
    // Returns how many there were (Go's returns nothing).
    std::size_t runtime_pollUnblock(pollDesc* pd);
    // poll_runtime_pollSetDeadline, then what Go's does inside: a timer per
    // direction whose deadline is now in the future.
    void runtime_pollSetDeadline(pollDesc* pd, Clock::time_point d, Mode mode);

    Poller& poller() { return *poller_; }
    std::size_t live() const { return detail::live_goroutines; }
    // Entries in the timer heap, stale ones included (tests: the heap stays bounded).
    std::size_t timers_pending() const { return timers_.size(); }

    // The runtime's own counters, "key=value ..." as on the stats line.
    struct Stats {
        std::uint64_t spawned = 0;    // go() calls
        std::uint64_t resumed = 0;    // waiters taken from the run queue and run
        std::uint64_t netpolls = 0;   // calls to netpoll
        std::uint64_t woken = 0;      // waiters netpoll returned
        std::uint64_t timers = 0;     // deadline timers armed
        std::uint64_t expired = 0;    // deadline timers that took effect
        std::size_t open = 0;         // descriptors open now
    };
    const Stats& stats() const { return stats_; }
    std::string stats_text() const;

private:
    void run_ready();
    void fire_timers(Clock::time_point now);
    std::chrono::nanoseconds next_delay() const;
    void shutdown();

    // A deadline timer (Go arms one per pollDesc direction): fires
    // netpolldeadlineimpl(pd, seq, ...) for `mode` at `when`. Stale ones (seq
    // changed: the deadline moved, or the fd was closed) do nothing, and
    // push_timer sweeps them out. pollDescs are never freed, so `pd` stays readable.
    struct Timer {
        Clock::time_point when;
        pollDesc* pd;
        Mode mode;
        std::uintptr_t seq;
        bool operator>(const Timer& o) const { return when > o.when; }
        bool stale() const { return seq != (mode == Mode::read ? pd->rseq : pd->wseq); }
    };
    void push_timer(Timer t);

    std::unique_ptr<Poller> poller_;
    pollCache cache_;
    // The run queue (Go's runq), FIFO: run_ready() runs the waiters that are
    // in it when it starts, in order, then removes them; whatever becomes
    // runnable meanwhile is appended behind them and waits for the next
    // round. The vector keeps its capacity: once warmed up, queueing
    // allocates nothing.
    gList runq_;
    std::vector<Timer> timers_;      // a min-heap on `when`
    std::size_t sweep_at_ = 64;      // push_timer drops the stale timers when the heap reaches this size
    std::vector<pollDesc*> open_;    // open_[fd]: the pollDesc of an open fd, or nullptr
    std::atomic<bool> stop_{false};
    Stats stats_;
    Scheduler* outer_ = nullptr;     // the scheduler current before run() (tests nest none)
};

}  // namespace course::runtime
