// PollDesc: what the runtime knows about one file descriptor (Go's pollDesc,
// in runtime/netpoll.go).
//
// A PollDesc has two waiter slots, one for a reader and one for a writer (Go's
// rg and wg). Each slot is in one of four states:
//
//   nil     nobody waits and no readiness is noted               (Go: pdNil)
//   ready   readiness arrived while nobody waited; the next wait  (Go: pdReady)
//           consumes it instead of parking. Edge-triggered epoll
//           reports an edge once: forgetting it would stall the fd.
//   wait    a waiter has decided to park but is not parked yet    (Go: pdWait)
//           (here: between netpollblock and netpollblockcommit)
//   parked  a Waiter is stored here: a parked IoOp, or a        (Go: a *g)
//           suspended coroutine
//
// Readiness moves a slot to `ready` and hands the parked Waiter (if any) to
// the caller's list; close and deadlines move it to `nil` and hand the Waiter
// over too, which then finds out why with netpollcheckerr. Nothing here runs
// a Waiter: the scheduler does, from its run queue.
//
// Single-threaded runtime: plain fields, no atomics, no lock. Go needs both
// because its netpoll runs on any thread, concurrently with the goroutines.
#pragma once

#include "task.hpp"
#include "waiter.hpp"

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace course::runtime {

class Poller;


// Which slot: Go passes 'r', 'w' or 'r'+'w' as an int32; so do we.
enum class Mode : int { read = 'r', write = 'w', read_write = 'r' + 'w' };

// Why a wait ended (Go's pollNoError, pollErrClosing, pollErrTimeout,
// pollErrNotPollable, and internal/poll turns them into errors).
enum class PollError {
    none,          // ready, or woken for nothing (a deadline that was moved): retry the syscall
    closing,       // the descriptor is being closed: "use of closed network connection"
    timeout,       // the deadline for this direction has passed: "i/o timeout"
    not_pollable,  // the poller saw only EPOLLERR on this fd (reads only)
};

using Clock = std::chrono::steady_clock;
// Go keeps deadlines as nanotimes with two special values, 0 (none) and -1
// (expired). Ours are time points with the same two special values.
inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();
inline constexpr Clock::time_point kDeadlineExpired = Clock::time_point::min();

// #region slot
// One waiter slot (Go's rg or wg: a uintptr holding pdNil, pdReady, pdWait or a *g).
struct WaitSlot {
    enum State { nil, ready, wait, parked };
    State state = nil;
    Waiter waiter;  // set only while `parked`
};
// #endregion slot

class PollWait;

class PollDesc {
public:
    // Go's poll_runtime_pollOpen, minus the registration: forget everything
    // about the previous user of this PollDesc and start serving `fd`.
    // `arm`: a level-triggered poller to tell before each park (netpoll_arm).
    void init(int fd, Poller* arm = nullptr);

    int fd() const { return fd_; }
    // fdseq changes every time the PollDesc is freed for reuse (PollCache::free);
    // events and waits carry the value they started with, to detect staleness.
    std::uint64_t fdseq() const { return fdseq_; }
    WaitSlot::State state(Mode mode) const { return slot(mode).state; }
    bool closing() const { return closing_; }

    // --- waiting (the coroutine side) -------------------------------------
    // `PollError e = co_await pd.wait(Mode::read);` (Go's poll_runtime_pollWait).
    // Completes without suspending when readiness is already noted or an error
    // is pending; otherwise parks the coroutine until netpoll, close or a
    // deadline hands it back. See PollWait below for the three steps.
    PollWait wait(Mode mode);

    // Go's netpollcheckerr: closing, then an expired deadline, then (reads
    // only) an EPOLLERR-only event.
    PollError netpollcheckerr(Mode mode) const;

    // Go's poll_runtime_pollReset, called before trying the syscall: fails with
    // the pending error, or forgets noted readiness (the syscall is about to
    // find out the truth itself).
    PollError poll_reset(Mode mode);

    // The three steps of a wait, in the order a C++ awaiter calls them. Go has
    // the same three, around gopark:
    //   netpollblock: pollWait's first netpollcheckerr, then netpollblock up to
    //     gopark. Returns a result when the caller must NOT park (readiness was
    //     noted and is now consumed, or an error is pending), or nullopt: the
    //     slot is now `wait` and the caller suspends.
    //   netpollblockcommit: gopark's callback, run once the caller is suspended:
    //     `wait` becomes `parked`. Returns false if the slot left `wait` in
    //     between (never, single-threaded): then the caller must not stay parked.
    //   netpollblock_resume: the rest of netpollblock after gopark returns. The
    //     slot says why we are back: `ready` (I/O) or `nil` (close or deadline,
    //     which netpollcheckerr reports). `fdseq` is the value at the start of
    //     the wait: if the PollDesc has been freed since, we touch nothing.
    std::optional<PollError> netpollblock(Mode mode);
    bool netpollblockcommit(Mode mode, Waiter waiter);
    PollError netpollblock_resume(Mode mode, std::uint64_t fdseq);

    // --- waking (the poller, close and timers) -----------------------------
    // Go's netpollunblock: the slot for `mode` (read or write) is ready
    // (ioready) or must be given up (close, deadline). Returns the parked
    // waiter, if there was one, for the caller to make runnable.
    Waiter netpollunblock(Mode mode, bool ioready);

    // Go's pd.setEventErr: the last event was EPOLLERR and nothing else.
    void set_event_err(bool err) { event_err_ = err; }

    // Go's poll_runtime_pollUnblock, the first half of closing: from now on
    // every wait fails with `closing`, the parked waiters are woken into
    // `to_run`, and the deadline timers are disarmed (rseq/wseq change).
    void poll_unblock(gList& to_run);

    // --- deadlines -----------------------------------------------------------
    // Go's poll_runtime_pollSetDeadline without the timers themselves (the
    // scheduler owns the timers). `d` is kNoDeadline to clear the deadline;
    // a time at or before `now` expires it at once and wakes the parked waiter
    // with `timeout`. Each change of a deadline bumps its sequence number, so
    // a timer armed for the old value is ignored when it fires.
    // After the call, for each direction whose deadline() is a future time,
    // the scheduler arms a timer for deadline(m) that will call
    // netpoll_deadline(to_run, m, seq(m)) with seq(m) read now.
    void poll_set_deadline(gList& to_run, Mode mode, Clock::time_point d, Clock::time_point now);
    Clock::time_point deadline(Mode mode) const { return mode == Mode::read ? rd_ : wd_; }
    std::uint64_t seq(Mode mode) const { return mode == Mode::read ? rseq_ : wseq_; }

    // A deadline timer fired (Go's netpolldeadlineimpl, via netpollReadDeadline
    // and netpollWriteDeadline). `seq` is what seq(mode) was when the timer was
    // armed: if it has changed (new deadline, close, reuse), the timer is stale
    // and ignored. Returns whether it took effect.
    bool netpoll_deadline(gList& to_run, Mode mode, std::uint64_t seq);

private:
    friend class PollCache;

    WaitSlot& slot(Mode mode);
    const WaitSlot& slot(Mode mode) const;

    PollDesc* link_ = nullptr;  // next free PollDesc, while in the cache's free list
    int fd_ = -1;
    std::uint64_t fdseq_ = 0;  // Go: fdseq, "protects against stale pollDesc"
    bool closing_ = false;
    bool event_err_ = false;  // Go: the pollEventErr bit of atomicInfo
    Poller* arm_ = nullptr;   // the poll(2) backend: told before each park
    WaitSlot rg_, wg_;
    std::uint64_t rseq_ = 0, wseq_ = 0;  // Go: rseq/wseq, "protects from stale timers"
    Clock::time_point rd_ = kNoDeadline, wd_ = kNoDeadline;
};

// #region awaiter
// Go's poll_runtime_pollWait as a C++20 awaiter.
//
// An immediately-ready wait never suspends: await_ready() consumes the noted
// readiness (or the pending error) and says "don't suspend", so the coroutine
// simply carries on. No trip through the scheduler, no stack growth: a million
// ready reads in a row cost a million function calls, one after the other.
class PollWait {
public:
    PollWait(PollDesc& pd, Mode mode) : pd_(pd), mode_(mode) {}

    bool await_ready() {
        fdseq_ = pd_.fdseq();
        now_ = pd_.netpollblock(mode_);
        return now_.has_value();
    }
    // Runs after the coroutine is suspended, as gopark's callback does.
    bool await_suspend(std::coroutine_handle<> self) {
        parked_ = true;
        return pd_.netpollblockcommit(mode_, self);
    }
    PollError await_resume() { return parked_ ? pd_.netpollblock_resume(mode_, fdseq_) : *now_; }

private:
    PollDesc& pd_;
    Mode mode_;
    std::uint64_t fdseq_ = 0;
    std::optional<PollError> now_;
    bool parked_ = false;
};
// #endregion awaiter

inline PollWait PollDesc::wait(Mode mode) { return PollWait(*this, mode); }

// Go's netpollready: the poller saw `pd`'s fd ready for `mode`. Wakes the
// parked waiters into `to_run`, or notes the readiness for the next wait.
inline void netpollready(gList& to_run, PollDesc& pd, Mode mode);

// --- the hot path ------------------------------------------------------------
// Every read or write that waits goes through these, so they are defined here,
// inline, for the compiler to fold them into IoOp (conn.cpp) and the pollers.

// Go's throw(): a broken invariant of the runtime itself. Not an exception:
// nothing above us could repair it, and unwinding through suspended
// coroutines would only hide where it happened. (poll_desc.cpp)
[[noreturn]] void fatal(const char* what);
// Poller::netpoll_arm, for a PollDesc that has an arming poller (netpoll.cpp).
void netpoll_arm(Poller& poller, PollDesc& pd, Mode mode);

inline WaitSlot& PollDesc::slot(Mode mode) {
    if (mode == Mode::read_write) fatal("a waiter slot is read or write, not both");
    return mode == Mode::read ? rg_ : wg_;
}

inline const WaitSlot& PollDesc::slot(Mode mode) const { return const_cast<PollDesc*>(this)->slot(mode); }

// #region checkerr
inline PollError PollDesc::netpollcheckerr(Mode mode) const {
    if (closing_) return PollError::closing;
    if ((mode == Mode::read ? rd_ : wd_) == kDeadlineExpired) return PollError::timeout;
    // Only reads report it: a write would fail with a more precise error anyway.
    if (mode == Mode::read && event_err_) return PollError::not_pollable;
    return PollError::none;
}
// #endregion checkerr

inline PollError PollDesc::poll_reset(Mode mode) {
    PollError err = netpollcheckerr(mode);
    if (err == PollError::none) slot(mode) = {};
    return err;
}

// #region block
inline std::optional<PollError> PollDesc::netpollblock(Mode mode) {
    // A closed descriptor or an expired deadline wins over noted readiness:
    // the operation fails at once, as Go's pollWait checks errors first.
    if (PollError err = netpollcheckerr(mode); err != PollError::none) return err;
    WaitSlot& s = slot(mode);
    if (s.state == WaitSlot::ready) {  // sticky readiness: consume it, don't park
        s.state = WaitSlot::nil;
        return PollError::none;
    }
    // One waiter per direction: two coroutines reading the same fd at once is
    // the caller's bug (Go's internal/poll serialises them with fdMutex).
    if (s.state != WaitSlot::nil) fatal("double wait");
    // Go re-checks the errors here, because another thread may have closed the
    // fd between its check and this point. Ours cannot change in between.
    s.state = WaitSlot::wait;
    if (arm_) netpoll_arm(*arm_, *this, mode);  // Go calls it in pollWait, on the same platforms
    return std::nullopt;
}

inline bool PollDesc::netpollblockcommit(Mode mode, Waiter waiter) {
    WaitSlot& s = slot(mode);
    if (s.state != WaitSlot::wait) return false;  // readiness or close came first: don't park
    s.state = WaitSlot::parked;
    s.waiter = waiter;
    return true;
}

inline PollError PollDesc::netpollblock_resume(Mode mode, std::uint64_t fdseq) {
    // Our PollDesc was freed and handed to another fd while we were runnable
    // (the closer did not wait for us): report "closed", touch nothing.
    if (fdseq != fdseq_) return PollError::closing;
    WaitSlot& s = slot(mode);
    if (s.state == WaitSlot::parked) fatal("resumed a waiter that is still parked");
    bool ioready = s.state == WaitSlot::ready;
    s = {};  // consume: the slot is nil again
    // Readiness that arrived before we ran wins over a deadline that expired
    // in the meantime: exactly one result, and the syscall will find the data.
    if (ioready) return PollError::none;
    // Close or deadline. `none` here means a deadline timer woke us but the
    // deadline was moved before we ran: the caller retries, as Go's pollWait does.
    return netpollcheckerr(mode);
}
// #endregion block

// #region unblock
inline Waiter PollDesc::netpollunblock(Mode mode, bool ioready) {
    WaitSlot& s = slot(mode);
    if (s.state == WaitSlot::ready) return {};  // already noted; nobody to wake
    // An error with nobody waiting needs no note: the next wait checks errors first.
    if (s.state == WaitSlot::nil && !ioready) return {};
    Waiter parked = s.state == WaitSlot::parked ? s.waiter : Waiter{};
    s.state = ioready ? WaitSlot::ready : WaitSlot::nil;
    s.waiter = {};
    return parked;
}

inline void netpollready(gList& to_run, PollDesc& pd, Mode mode) {
    Waiter rg, wg;
    if (mode == Mode::read || mode == Mode::read_write) rg = pd.netpollunblock(Mode::read, true);
    if (mode == Mode::write || mode == Mode::read_write) wg = pd.netpollunblock(Mode::write, true);
    if (rg) to_run.push_back(rg);
    if (wg) to_run.push_back(wg);
}
// #endregion unblock

// #region tag
// Go's taggedPointer: a PollDesc pointer and the low bits of its fdseq in one
// 64-bit word, which is what an epoll event can carry (epoll_event.data).
// Layout, as Go's on 64-bit Linux: user-space addresses fit in 48 bits and a
// PollDesc is 8-byte aligned, so the pointer needs only 45 bits:
//
//   bit 63 ............................. 19 | 18 ............ 0
//        PollDesc address >> 3 (45 bits)    |  fdseq (19 bits)
//
// An event carrying an fdseq that is no longer the PollDesc's belongs to a
// previous user of it: it is ignored (see netpoll_epoll.cpp).
struct TaggedPointer {
    static constexpr int kTagBits = 19;
    static constexpr std::uint64_t kTagMask = (std::uint64_t{1} << kTagBits) - 1;

    std::uint64_t bits = 0;

    static TaggedPointer pack(PollDesc* pd, std::uint64_t tag);
    PollDesc* pointer() const { return reinterpret_cast<PollDesc*>(bits >> kTagBits << 3); }
    std::uint64_t tag() const { return bits & kTagMask; }
};
// #endregion tag

// Go's pollCache: where PollDescs come from. They are never freed while the
// cache lives, only recycled ("type-stable"), because a stale event or timer
// may still point at one after its fd was closed; fdseq and rseq/wseq tell the
// stale ones apart. Allocates in blocks, so a PollDesc never moves.
class PollCache {
public:
    PollCache() = default;
    PollCache(const PollCache&) = delete;
    PollCache& operator=(const PollCache&) = delete;

    PollDesc* alloc();
    // Back to the free list. Bumps fdseq, so that events and waits that began
    // with the old value are recognised as stale.
    void free(PollDesc* pd);

private:
    static constexpr int kBlock = 64;
    std::vector<std::unique_ptr<PollDesc[]>> blocks_;
    PollDesc* first_ = nullptr;
};

// Go's poll_runtime_pollOpen: a PollDesc for `fd`, registered with the poller.
// On failure returns nullptr and sets `ec` (ENOMEM, ENOSPC: the caller closes
// the fd and carries on).
PollDesc* poll_open(PollCache& cache, Poller& poller, int fd, std::error_code& ec);

// Go's poll_runtime_pollClose, the second half of closing, after poll_unblock
// and after every coroutine woken by it has run: unregisters the fd and
// recycles the PollDesc. The caller closes the fd afterwards. Closing with a
// coroutine still parked is a fatal error, as in Go: that coroutine would
// wake up on someone else's fd.
void poll_close(PollCache& cache, Poller& poller, PollDesc* pd);

}  // namespace course::runtime
