#include "scheduler.hpp"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

namespace course::runtime {
namespace {

thread_local Scheduler* current_scheduler = nullptr;

}  // namespace

Scheduler::Scheduler(std::string_view poller) : poller_(make_poller(poller)) {
    runq_.reserve(256);
    timers_.heap.reserve(64);
    // The first scheduler of a thread is its current one: go() may be called
    // before run() (main starts its first coroutine so).
    if (!current_scheduler) current_scheduler = this;
}

Scheduler::~Scheduler() {
    if (current_scheduler == this) current_scheduler = nullptr;
}

Scheduler& Scheduler::current() {
    if (!current_scheduler) fatal("go() outside Scheduler::run() and with no scheduler");
    return *current_scheduler;
}

void go(Task<void> task) { Scheduler::current().newproc(std::move(task)); }

void Scheduler::newproc(Task<void> task) {
    auto h = task.release();
    h.promise().detached = true;
    ++detail::live_goroutines;
    ++stats_.spawned;
    goready(std::coroutine_handle<>(h));
}

void Scheduler::goready(Waiter gp) { runq_.push_back(gp); }

std::size_t Scheduler::runtime_pollUnblock(pollDesc* pd) {
    const std::size_t before = runq_.size();
    poll_runtime_pollUnblock(pd, runq_);
    return runq_.size() - before;
}

// #region run
// Runs the waiters that are runnable now, in order; those they make runnable
// wait for the next round, after a netpoll(0): a busy connection cannot keep
// the others from being polled.
inline void Scheduler::run_ready() {
    const std::size_t n = runq_.size();
    stats_.resumed += n;
    // By index: running a waiter may append to runq_ (and move its storage).
    for (std::size_t i = 0; i < n; ++i) runq_[i].run();
    runq_.erase(runq_.begin(), runq_.begin() + static_cast<std::ptrdiff_t>(n));  // usually all of it
}

// Go's findRunnable, the part of it one P needs: netpoll, then the timers
// that are due. netpoll blocks only when nothing is runnable, and then no
// longer than the earliest timer; what it makes runnable goes straight into
// the run queue (Go: injectglist). Go checks the timers first and polls after;
// ours polls first, so that the timer netpoll slept until fires in the same
// round (and the waiters netpoll woke run ahead of those a timer woke).
inline void Scheduler::findRunnable() {
    std::chrono::nanoseconds delay(0);
    if (runq_.empty())
        delay = timers_.empty() ? std::chrono::nanoseconds(-1)  // block until the network or a break wakes us
                                : std::max(std::chrono::nanoseconds(0), timers_.wakeTime() - Clock::now());
    const std::size_t before = runq_.size();
    poller_->netpoll(delay, runq_);
    ++stats_.netpolls;
    stats_.woken += runq_.size() - before;
    if (!timers_.empty()) stats_.expired += timers_.check(Clock::now(), runq_);  // no deadline set: no clock read
}

void Scheduler::run() {
    outer_ = current_scheduler == this ? nullptr : current_scheduler;
    current_scheduler = this;
    while (!stopping()) {
        run_ready();
        if (stopping() || (runq_.empty() && gcount() == 0)) break;
        findRunnable();
    }
    if (stopping()) shutdown();
    current_scheduler = outer_;
}
// #endregion run


// #region timers
std::size_t timers::check(Clock::time_point now, gList& toRun) {
    std::size_t fired = 0;
    while (!heap.empty() && heap.front().when <= now) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        timer t = heap.back();
        heap.pop_back();
        // A stale timer (the deadline moved, the fd was closed or reused) is ignored by netpolldeadlineimpl.
        if (netpolldeadlineimpl(t.pd, t.seq, t.mode == Mode::read, t.mode == Mode::write, toRun)) ++fired;
    }
    return fired;
}

void Scheduler::runtime_pollSetDeadline(pollDesc* pd, Clock::time_point d, Mode mode) {
    const std::uintptr_t rseq0 = pd->rseq, wseq0 = pd->wseq;
    // A deadline in the past wakes the parked waiter (with "timed out").
    poll_runtime_pollSetDeadline(pd, d, mode, Clock::now(), runq_);
    // The same deadline again leaves the sequence number alone: its timer is
    // armed already (a second one with the same number would fire on an
    // expired deadline).
    if (pd->rseq != rseq0 && pd->rd != kNoDeadline && pd->rd != kDeadlineExpired) {
        timers_.addHeap({pd->rd, pd, Mode::read, pd->rseq});
        ++stats_.timers;
    }
    if (pd->wseq != wseq0 && pd->wd != kNoDeadline && pd->wd != kDeadlineExpired) {
        timers_.addHeap({pd->wd, pd, Mode::write, pd->wseq});
        ++stats_.timers;
    }
}

// Go deletes or moves a descriptor's timer when its deadline changes. Here
// the old entry stays in the heap, stale, and check ignores it when it comes
// due; but a deadline set before every read would grow the heap by one entry
// per read. So when the heap has doubled since the last sweep, drop every
// stale entry and rebuild it: amortised O(1) extra per timer, and the heap
// never holds more than about twice the live timers.
void timers::addHeap(timer t) {
    if (heap.size() >= sweep_at) {
        std::erase_if(heap, [](const timer& x) { return x.stale(); });
        std::make_heap(heap.begin(), heap.end(), std::greater<>{});
        sweep_at = std::max<std::size_t>(64, 2 * heap.size());
    }
    heap.push_back(t);
    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
}
// #endregion timers

std::pair<pollDesc*, int> Scheduler::runtime_pollOpen(int fd) {
    auto [pd, errno_] = poll_runtime_pollOpen(fd, pollcache_, *poller_);
    if (!pd) return {nullptr, errno_};
    if (static_cast<std::size_t>(fd) >= open_.size()) open_.resize(static_cast<std::size_t>(fd) + 1, nullptr);
    open_[fd] = pd;
    ++stats_.open;
    return {pd, 0};
}

void Scheduler::runtime_pollClose(pollDesc* pd) {
    open_[pd->fd] = nullptr;
    --stats_.open;
    poll_runtime_pollClose(pd, pollcache_, *poller_);
}

void Scheduler::stop() noexcept {
    stop_.store(true, std::memory_order_relaxed);
    poller_->netpollBreak();
}

// #region shutdown
// Unblocks every open descriptor, as if each were being closed: every parked
// coroutine wakes with "closed", and so does every later operation. Then runs
// the run queue until it is empty, so each coroutine finishes (and frees its
// frame) the normal way. Bounded: a coroutine that keeps yielding forever, or
// one parked on something other than a descriptor, is left alone (never destroyed).
void Scheduler::shutdown() {
    for (int round = 0; round < 8 && gcount() > 0; ++round) {
        for (pollDesc* pd : open_)
            if (pd && !pd->closing) poll_runtime_pollUnblock(pd, runq_);
        for (int i = 0; !runq_.empty() && i < 1'000'000; ++i) run_ready();
    }
}
// #endregion shutdown

std::string Scheduler::stats_text() const {
    return fmt::format("go={} resumed={} netpoll={} netpoll_woken={} timers={} timers_expired={} goroutines_left={}",
                       stats_.spawned, stats_.resumed, stats_.netpolls, stats_.woken, stats_.timers, stats_.expired,
                       gcount());
}

}  // namespace course::runtime
