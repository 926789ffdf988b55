#include "poll_desc.hpp"

#include "netpoll.hpp"

#include <cstdio>
#include <cstdlib>

namespace course::runtime {
namespace {

// Go's throw(): a broken invariant of the runtime itself. Not an exception:
// nothing above us could repair it, and unwinding through suspended
// coroutines would only hide where it happened.
[[noreturn]] void fatal(const char* what) {
    std::fprintf(stderr, "runtime: %s\n", what);
    std::abort();
}

}  // namespace

WaitSlot& PollDesc::slot(Mode mode) {
    if (mode == Mode::read_write) fatal("a waiter slot is read or write, not both");
    return mode == Mode::read ? rg_ : wg_;
}

const WaitSlot& PollDesc::slot(Mode mode) const { return const_cast<PollDesc*>(this)->slot(mode); }

void PollDesc::init(int fd, Poller* arm) {
    if (rg_.state == WaitSlot::parked || wg_.state == WaitSlot::parked) fatal("blocked waiter on free polldesc");
    fd_ = fd;
    arm_ = arm;
    closing_ = false;
    event_err_ = false;
    rg_ = {};
    wg_ = {};
    // New sequence numbers: a timer armed by the previous user is now stale.
    ++rseq_;
    ++wseq_;
    rd_ = kNoDeadline;
    wd_ = kNoDeadline;
}

// #region checkerr
PollError PollDesc::netpollcheckerr(Mode mode) const {
    if (closing_) return PollError::closing;
    if ((mode == Mode::read ? rd_ : wd_) == kDeadlineExpired) return PollError::timeout;
    // Only reads report it: a write would fail with a more precise error anyway.
    if (mode == Mode::read && event_err_) return PollError::not_pollable;
    return PollError::none;
}
// #endregion checkerr

PollError PollDesc::poll_reset(Mode mode) {
    PollError err = netpollcheckerr(mode);
    if (err == PollError::none) slot(mode) = {};
    return err;
}

// #region block
std::optional<PollError> PollDesc::netpollblock(Mode mode) {
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
    if (arm_) arm_->netpoll_arm(*this, mode);  // Go calls it in pollWait, on the same platforms
    return std::nullopt;
}

bool PollDesc::netpollblockcommit(Mode mode, Waiter waiter) {
    WaitSlot& s = slot(mode);
    if (s.state != WaitSlot::wait) return false;  // readiness or close came first: don't park
    s.state = WaitSlot::parked;
    s.waiter = waiter;
    return true;
}

PollError PollDesc::netpollblock_resume(Mode mode, std::uint64_t fdseq) {
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
Waiter PollDesc::netpollunblock(Mode mode, bool ioready) {
    WaitSlot& s = slot(mode);
    if (s.state == WaitSlot::ready) return {};  // already noted; nobody to wake
    // An error with nobody waiting needs no note: the next wait checks errors first.
    if (s.state == WaitSlot::nil && !ioready) return {};
    Waiter parked = s.state == WaitSlot::parked ? s.waiter : Waiter{};
    s.state = ioready ? WaitSlot::ready : WaitSlot::nil;
    s.waiter = {};
    return parked;
}

void netpollready(WaiterList& to_run, PollDesc& pd, Mode mode) {
    Waiter rg, wg;
    if (mode == Mode::read || mode == Mode::read_write) rg = pd.netpollunblock(Mode::read, true);
    if (mode == Mode::write || mode == Mode::read_write) wg = pd.netpollunblock(Mode::write, true);
    if (rg) to_run.push_back(rg);
    if (wg) to_run.push_back(wg);
}

void PollDesc::poll_unblock(WaiterList& to_run) {
    if (closing_) fatal("unblock on closing polldesc");
    closing_ = true;
    ++rseq_;  // disarms the deadline timers: they will find a new sequence
    ++wseq_;
    if (Waiter rg = netpollunblock(Mode::read, false)) to_run.push_back(rg);
    if (Waiter wg = netpollunblock(Mode::write, false)) to_run.push_back(wg);
}
// #endregion unblock

// #region deadline
void PollDesc::poll_set_deadline(WaiterList& to_run, Mode mode, Clock::time_point d, Clock::time_point now) {
    if (closing_) return;
    if (d != kNoDeadline && d <= now) d = kDeadlineExpired;
    for (Mode m : {Mode::read, Mode::write}) {
        if (mode != m && mode != Mode::read_write) continue;
        Clock::time_point& dl = m == Mode::read ? rd_ : wd_;
        std::uint64_t& seq = m == Mode::read ? rseq_ : wseq_;
        if (dl != d) {
            dl = d;
            ++seq;  // a timer armed for the old deadline is stale now
        }
        if (dl == kDeadlineExpired) {
            if (Waiter w = netpollunblock(m, false)) to_run.push_back(w);
        }
    }
}

bool PollDesc::netpoll_deadline(WaiterList& to_run, Mode mode, std::uint64_t seq) {
    std::uint64_t& current = mode == Mode::read ? rseq_ : wseq_;
    if (seq != current) return false;  // the deadline was changed, or the fd closed or reused
    Clock::time_point& dl = mode == Mode::read ? rd_ : wd_;
    if (dl == kNoDeadline || dl == kDeadlineExpired) fatal("inconsistent deadline");
    dl = kDeadlineExpired;
    if (Waiter w = netpollunblock(mode, false)) to_run.push_back(w);
    return true;
}
// #endregion deadline

TaggedPointer TaggedPointer::pack(PollDesc* pd, std::uint64_t tag) {
    auto addr = reinterpret_cast<std::uintptr_t>(pd);
    static_assert(sizeof addr == 8, "the tag layout assumes 64-bit pointers");
    static_assert(alignof(PollDesc) >= 8);
    if (addr >> 48 != 0) fatal("PollDesc address does not fit in 48 bits");
    return TaggedPointer{(std::uint64_t{addr} << 16) | (tag & kTagMask)};
}

PollDesc* TaggedPointer::pointer() const { return reinterpret_cast<PollDesc*>(bits >> kTagBits << 3); }

PollDesc* PollCache::alloc() {
    if (first_ == nullptr) {
        auto& block = blocks_.emplace_back(std::make_unique<PollDesc[]>(kBlock));
        for (int i = 0; i < kBlock; ++i) {
            block[i].link_ = first_;
            first_ = &block[i];
        }
    }
    PollDesc* pd = first_;
    first_ = pd->link_;
    pd->link_ = nullptr;
    return pd;
}

void PollCache::free(PollDesc* pd) {
    pd->fdseq_ = (pd->fdseq_ + 1) & TaggedPointer::kTagMask;
    pd->link_ = first_;
    first_ = pd;
}

PollDesc* poll_open(PollCache& cache, Poller& poller, int fd, std::error_code& ec) {
    PollDesc* pd = cache.alloc();
    pd->init(fd, poller.arms() ? &poller : nullptr);
    ec = poller.netpoll_open(fd, pd);
    if (ec) {
        cache.free(pd);
        return nullptr;
    }
    return pd;
}

void poll_close(PollCache& cache, Poller& poller, PollDesc* pd) {
    if (!pd->closing()) fatal("close polldesc w/o unblock");
    if (pd->state(Mode::read) == WaitSlot::parked) fatal("blocked read on closing polldesc");
    if (pd->state(Mode::write) == WaitSlot::parked) fatal("blocked write on closing polldesc");
    poller.netpoll_close(pd->fd());  // an error here (EBADF) means the fd was closed too early: nothing to undo
    cache.free(pd);
}

}  // namespace course::runtime
