#include "poll_desc.hpp"

#include "netpoll.hpp"

#include <cstdio>
#include <cstdlib>

namespace course::runtime {

void fatal(const char* what) {
    std::fprintf(stderr, "runtime: %s\n", what);
    std::abort();
}

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

// #region unblock
void PollDesc::poll_unblock(gList& to_run) {
    if (closing_) fatal("unblock on closing polldesc");
    closing_ = true;
    ++rseq_;  // disarms the deadline timers: they will find a new sequence
    ++wseq_;
    if (Waiter rg = netpollunblock(Mode::read, false)) to_run.push_back(rg);
    if (Waiter wg = netpollunblock(Mode::write, false)) to_run.push_back(wg);
}
// #endregion unblock

// #region deadline
void PollDesc::poll_set_deadline(gList& to_run, Mode mode, Clock::time_point d, Clock::time_point now) {
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

bool PollDesc::netpoll_deadline(gList& to_run, Mode mode, std::uint64_t seq) {
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
