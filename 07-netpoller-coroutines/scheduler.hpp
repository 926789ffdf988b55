// Scheduler: the run queue, the deadline timers and the loop that feeds them
// from the poller. Go's scheduler in miniature, on one thread: one P (Go's
// processor, with its run queue and its timers), one M running it.
//
//   run(), the loop (Go's M calls schedule() forever):
//     run every waiter in the run queue (FIFO), each until it parks or ends
//     findRunnable():
//       netpoll(delay): delay = 0 if more are runnable, else the time to the
//                       earliest deadline timer, else block
//       what netpoll made runnable joins the run queue (Go: injectglist)
//       fire the deadline timers that are due (Go: (*timers).check); their
//       waiters join the run queue
//
// Every wake-up goes through the run queue: netpoll, close and timers only
// hand waiters over; the loop runs them, one at a time, with Waiter::run()
// (waiter.hpp), so the stack never grows with the number of wake-ups.
//
// Names: Go's where there is a Go twin (goready, newproc, Gosched,
// findRunnable, runq, timers, ...), with what differs beside each.
#pragma once

#include "netpoll.hpp"
#include "poll_desc.hpp"
#include "task.hpp"
#include "waiter.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace course::runtime {

// #region timers-type
// Go's timer, as a pollDesc's rt or wt uses it: at `when`, call
// netpolldeadlineimpl for `mode` with `seq`. Go keeps one timer object per
// direction and moves it; ours are heap entries, one per arming, and an entry
// whose seq is no longer the pollDesc's is stale (netpolldeadlineimpl would
// ignore it). pollDescs are never freed, so `pd` stays readable.
struct timer {
    Clock::time_point when;
    pollDesc* pd;
    Mode mode;  // Go's f: netpollReadDeadline or netpollWriteDeadline
    std::uintptr_t seq;

    bool operator>(const timer& o) const { return when > o.when; }
    bool stale() const { return seq != (mode == Mode::read ? pd->rseq : pd->wseq); }  // no Go twin: see above
};

// Go's timers, a P's heap of timers (ours binary, Go's 4-ary).
struct timers {
    std::vector<timer> heap;    // a min-heap on `when`
    std::size_t sweep_at = 64;  // no Go twin: addHeap drops the stale entries when the heap reaches this size

    // Go's (*timers).addHeap, plus the cleaning Go's (*timers).adjust does for
    // its zombies (timers deleted or moved): see scheduler.cpp.
    void addHeap(timer t);
    // Go's (*timers).check: runs the timers due at `now`, waking into toRun.
    // Returns how many took effect (stale ones do not); Go's returns the next
    // wake time too, which ours asks wakeTime for.
    std::size_t check(Clock::time_point now, gList& toRun);
    bool empty() const { return heap.empty(); }
    // Go's (*timers).wakeTime: when the earliest timer is due (only if !empty();
    // Go's returns 0 for none).
    Clock::time_point wakeTime() const { return heap.front().when; }
};
// #endregion timers-type

class Scheduler {
public:
    // "epoll" or "poll" (make_poller). Throws as make_poller does.
    explicit Scheduler(std::string_view poller);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // The scheduler whose run() is running on this thread (go() uses it). Go's
    // nearest is the current P, getg().m.p.
    static Scheduler& current();

    // Go's newproc, what the `go` statement compiles to: queue a new coroutine
    // (it frees itself when it finishes). Go puts it in the P's runnext slot,
    // to run next; ours goes to the back of the run queue.
    void newproc(Task<void> task);
    // Go's goready: make a waiter runnable. Go puts it in runnext too; ours at
    // the back (one queue, FIFO: fairness stays simple to see).
    void goready(Waiter gp);

    // `co_await sched.Gosched();` Go's runtime.Gosched: to the back of the run
    // queue (Go's goes to the global run queue, which on one P comes to the same).
    auto Gosched() noexcept {
        struct Yield {
            Scheduler& s;
            bool await_ready() noexcept { return false; }
            void await_suspend(std::coroutine_handle<> self) { s.goready(self); }
            void await_resume() noexcept {}
        };
        return Yield{*this};
    }

    // The loop: runs until stop() was called (then it has shut down: see
    // below) or until every coroutine started with go() has finished. No Go
    // twin as a whole: Go's M calls schedule() forever and never returns.
    void run();

    // Asks run() to stop. Async-signal-safe: a flag and netpollBreak. The
    // loop then unblocks every open descriptor ("closed") and runs the woken
    // coroutines until they have finished; a frame is never destroyed while
    // parked. No Go twin (a Go program ends when main returns).
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
    // Go's gcount: coroutines started with go() that have not finished.
    std::size_t gcount() const { return detail::live_goroutines; }
    // Entries in the timer heap, stale ones included (tests: the heap stays bounded).
    std::size_t timers_pending() const { return timers_.heap.size(); }

    // The runtime's own counters, "key=value ..." as on the stats line (no Go twin).
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
    void findRunnable();
    void shutdown();

    std::unique_ptr<Poller> poller_;  // no Go twin: Go's poller is the platform's globals
    pollCache pollcache_;             // Go's pollcache (a global there)
    // The run queue (Go's runq), FIFO: run_ready() runs the waiters that are
    // in it when it starts, in order, then removes them; whatever becomes
    // runnable meanwhile is appended behind them and waits for the next
    // round. Go's is a ring of 256 plus a runnext slot and a global queue
    // behind it; ours a vector that keeps its capacity: once warmed up,
    // queueing allocates nothing.
    gList runq_;
    timers timers_;                  // Go's p.timers
    std::vector<pollDesc*> open_;    // no Go twin: open_[fd] is the pollDesc of an open fd, or nullptr
    std::atomic<bool> stop_{false};
    Stats stats_;
    Scheduler* outer_ = nullptr;     // the scheduler current before run() (tests nest none)
};

}  // namespace course::runtime
