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
// (poll_desc.hpp), so the stack never grows with the number of wake-ups.
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
#include <system_error>
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
    // Go's pollUnblock, the first half of closing `pd`: its parked waiters
    // join the run queue. Returns how many there were.
    std::size_t poll_unblock(PollDesc& pd);

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

    // Asks run() to stop. Async-signal-safe: a flag and netpoll_break. The
    // loop then unblocks every open descriptor ("closed") and runs the woken
    // coroutines until they have finished; a frame is never destroyed while
    // parked.
    void stop() noexcept;
    bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

    // --- descriptors (used by net.cpp) ---------------------------------------
    // poll_open/poll_close of poll_desc.hpp, plus the list of open descriptors
    // that shutdown walks.
    PollDesc* poll_open(int fd, std::error_code& ec);
    void poll_close(PollDesc* pd);
    // poll_set_deadline, then a timer per direction whose deadline is in the future.
    void set_deadline(PollDesc& pd, Mode mode, Clock::time_point deadline);

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
    // netpoll_deadline(mode, seq) on `pd` at `when`. Stale ones (seq changed:
    // the deadline moved, or the fd was closed) do nothing, and push_timer
    // sweeps them out. PollDescs are never freed, so `pd` stays readable.
    struct Timer {
        Clock::time_point when;
        PollDesc* pd;
        Mode mode;
        std::uint64_t seq;
        bool operator>(const Timer& o) const { return when > o.when; }
        bool stale() const { return seq != pd->seq(mode); }
    };
    void push_timer(Timer t);

    std::unique_ptr<Poller> poller_;
    PollCache cache_;
    // The run queue (Go's runq), FIFO: run_ready() runs the waiters that are
    // in it when it starts, in order, then removes them; whatever becomes
    // runnable meanwhile is appended behind them and waits for the next
    // round. The vector keeps its capacity: once warmed up, queueing
    // allocates nothing.
    gList runq_;
    std::vector<Timer> timers_;      // a min-heap on `when`
    std::size_t sweep_at_ = 64;      // push_timer drops the stale timers when the heap reaches this size
    std::vector<PollDesc*> open_;    // open_[fd]: the PollDesc of an open fd, or nullptr
    std::atomic<bool> stop_{false};
    Stats stats_;
    Scheduler* outer_ = nullptr;     // the scheduler current before run() (tests nest none)
};

}  // namespace course::runtime
