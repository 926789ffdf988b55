// poll_desc.cpp: the definitions of poll_desc.hpp, in the order of Go's
// runtime/netpoll.go (then the tagged pointer, from tagptr_64bit.go). Each
// function says what it does in our words and, where ours differs from Go's,
// how and why.
//
// The slots. A pollDesc has two, rg for a reader and wg for a writer, each
// one word: pdNil, pdReady, pdWait, or the bits of a parked Waiter (Go: a *g).
//
//   pdNil    nobody waits and no readiness is noted
//   pdReady  readiness arrived while nobody waited; the next wait consumes it
//            instead of parking. Edge-triggered epoll reports an edge once:
//            forgetting it would stall the fd.
//   pdWait   a waiter has decided to park but is not parked yet (between
//            netpollblock and netpollblockcommit)
//   Waiter   parked: a parked IoOp (conn.hpp), or a suspended coroutine
//
// Readiness moves a slot to pdReady and hands the parked Waiter (if any) to
// the caller's list; close and deadlines move it to pdNil and hand the Waiter
// over too, which then finds out why with netpollcheckerr. Nothing here runs
// a Waiter: the scheduler does, from its run queue.
#include "poll_desc.hpp"

#include "netpoll.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace course::runtime {

// Go's throw, whose messages start with "runtime: " as these do.
void fatal(const char* what) {
    std::fprintf(stderr, "runtime: %s\n", what);
    std::abort();
}

namespace {

// Go's pollBlockSize: the pollCache takes memory in blocks of this many bytes.
constexpr std::size_t pollBlockSize = 4 * 1024;

// No Go twin as a function: the two lines that open Go's netpollblock and
// netpollunblock, choosing gpp, the slot for `mode`. A slot is read or write.
std::uintptr_t* slot(pollDesc* pd, Mode mode) {
    if (mode == Mode::read_write) fatal("a waiter slot is read or write, not both");
    return mode == Mode::read ? &pd->rg : &pd->wg;
}

}  // namespace

// Go keeps the error bit in atomicInfo, with the low bits of fdseq beside it,
// and ignores an event for an older fdseq (seq 0: always set). Ours is a plain
// bool; netpoll has checked fdseq against the event's tag already, so the
// check here only repeats it.
void pollDesc::setEventErr(bool b, std::uintptr_t seq) {
    if (seq != 0 && seq != fdseq) return;
    eventErr = b;
}

// Allocates, forgets everything about the previous user of the pollDesc, and
// registers the fd with the poller. New rseq/wseq: a timer armed by the
// previous user is now stale. Go keeps fdseq away from 0, which setEventErr
// takes as "any": so do we. On failure (ENOMEM, ENOSPC from epoll_ctl) the
// pollDesc goes back to the cache and the caller closes the fd.
std::pair<pollDesc*, int> poll_runtime_pollOpen(int fd, pollCache& cache, Poller& netpoll) {
    pollDesc* pd = cache.alloc();
    if (pd->wg != pdNil && pd->wg != pdReady) fatal("blocked write on free polldesc");
    if (pd->rg != pdNil && pd->rg != pdReady) fatal("blocked read on free polldesc");
    pd->fd = fd;
    if (pd->fdseq == 0) pd->fdseq = 1;
    pd->closing = false;
    pd->setEventErr(false, 0);
    pd->rseq++;
    pd->rg = pdNil;
    pd->rd = kNoDeadline;
    pd->wseq++;
    pd->wg = pdNil;
    pd->wd = kNoDeadline;
    // Go calls netpollarm only on the platforms whose poller is level-triggered;
    // ours has both kinds of poller at once, so the pollDesc remembers.
    pd->poller = netpoll.arms() ? &netpoll : nullptr;
    if (int e = netpoll.netpollopen(fd, pd); e != 0) {
        cache.free(pd);
        return {nullptr, e};
    }
    return {pd, 0};
}

// The second half of closing, after poll_runtime_pollUnblock and after every
// waiter woken by it has run: unregisters the fd and recycles the pollDesc;
// the caller closes the fd afterwards. Closing with a waiter still parked is
// fatal, as in Go: that waiter would wake up on someone else's fd.
void poll_runtime_pollClose(pollDesc* pd, pollCache& cache, Poller& netpoll) {
    if (!pd->closing) fatal("close polldesc w/o unblock");
    if (pd->wg != pdNil && pd->wg != pdReady) fatal("blocked write on closing polldesc");
    if (pd->rg != pdNil && pd->rg != pdReady) fatal("blocked read on closing polldesc");
    netpoll.netpollclose(pd->fd);  // an error here (EBADF) means the fd was closed too early: nothing to undo
    cache.free(pd);
}

// Back to the free list. fdseq is bumped (within the bits a tag can hold), so
// that events and waits that began with the old value are recognised as stale.
void pollCache::free(pollDesc* pd) {
    pd->fdseq = (pd->fdseq + 1) & ((std::uintptr_t{1} << taggedPointerBits) - 1);
    pd->link = first;
    first = pd;
}

// Called before trying the system call (internal/poll's prepareRead and
// prepareWrite): fails with the pending error, or forgets noted readiness,
// since the system call is about to find out the truth itself.
int poll_runtime_pollReset(pollDesc* pd, Mode mode) {
    int errcode = netpollcheckerr(pd, mode);
    if (errcode != pollNoError) return errcode;
    if (mode == Mode::read) pd->rg = pdNil;
    else if (mode == Mode::write) pd->wg = pdNil;
    return pollNoError;
}

// poll_runtime_pollWait is the awaiter PollWait, in poll_desc.hpp: a C++
// function cannot suspend its caller, so the loop of Go's pollWait is split
// where gopark is. Its steps, in Go's order:
//   netpollcheckerr; an error: return it             PollWait::await_ready
//   (level-triggered pollers: netpollarm)            netpollblock, below
//   loop: netpollblock; it parks; woken not ready:   await_suspend, after_gopark
//         netpollcheckerr again; an error: return it after_gopark
//         none: a moved deadline woke it, loop       the caller retries its call
// IoOp (conn.cpp) takes the same steps without a coroutine of its own.

// #region deadline
// Without the timers: Go arms, moves and stops pd's two timers here; ours are
// the scheduler's (Scheduler::runtime_pollSetDeadline arms one after this call
// for each direction whose deadline is in the future). Go's `d` is relative
// (a duration from now, <= 0 for expired); ours is a time point, and one at or
// before `now` expires the deadline at once. Each change of a deadline bumps
// its sequence number (Go bumps it only when a timer was running), so that a
// timer armed for the old value is ignored when it fires. An expired deadline
// wakes the waiter parked in that direction.
void poll_runtime_pollSetDeadline(pollDesc* pd, Clock::time_point d, Mode mode, Clock::time_point now, gList& toRun) {
    if (pd->closing) return;
    if (d != kNoDeadline && d <= now) d = kDeadlineExpired;
    if ((mode == Mode::read || mode == Mode::read_write) && pd->rd != d) {
        pd->rd = d;
        pd->rseq++;  // invalidates the timer armed for the old deadline
    }
    if ((mode == Mode::write || mode == Mode::read_write) && pd->wd != d) {
        pd->wd = d;
        pd->wseq++;
    }
    Waiter rg, wg;
    if (pd->rd == kDeadlineExpired) rg = netpollunblock(pd, Mode::read, false);
    if (pd->wd == kDeadlineExpired) wg = netpollunblock(pd, Mode::write, false);
    if (rg) toRun.push_back(rg);
    if (wg) toRun.push_back(wg);
}
// #endregion deadline

// #region unblock
// The first half of closing: from now on every wait fails with
// pollErrClosing, the parked waiters are handed over, and the deadline timers
// are disarmed (rseq/wseq change: the scheduler's timers are stale now; Go
// stops its own timers here). Go readies the waiters itself (netpollgoready);
// ours go into toRun, for the caller to queue.
void poll_runtime_pollUnblock(pollDesc* pd, gList& toRun) {
    if (pd->closing) fatal("unblock on closing polldesc");
    pd->closing = true;
    pd->rseq++;
    pd->wseq++;
    Waiter rg = netpollunblock(pd, Mode::read, false);
    Waiter wg = netpollunblock(pd, Mode::write, false);
    if (rg) toRun.push_back(rg);
    if (wg) toRun.push_back(wg);
}

// netpollready is defined in poll_desc.hpp, inline: see there.
// #endregion unblock

// #region checkerr
// Why a wait must fail, in this order: the fd is closing; the deadline for
// this direction has passed; (reads only) the last event was an error and
// nothing else. Go reads the three from atomicInfo; ours from the fields.
int netpollcheckerr(pollDesc* pd, Mode mode) {
    if (pd->closing) return pollErrClosing;
    if ((mode == Mode::read && pd->rd == kDeadlineExpired) || (mode == Mode::write && pd->wd == kDeadlineExpired))
        return pollErrTimeout;
    // Only reads report it: a write would fail with a more precise error anyway.
    if (mode == Mode::read && pd->eventErr) return pollErrNotPollable;
    return pollNoError;
}
// #endregion checkerr

// #region block
// gopark's callback, run once the waiter is suspended: the slot goes from
// pdWait to the waiter. It fails if the slot left pdWait in between, which Go
// must allow for (readiness or close on another thread) and ours never sees;
// the caller then must not stay parked. Go also counts the waiter in
// netpollWaiters here.
bool netpollblockcommit(Waiter gp, std::uintptr_t* gpp) {
    if (*gpp != pdWait) return false;
    *gpp = gp.bits();
    return true;
}

// Go's netpollblock parks the goroutine in its middle (gopark) and returns
// after it is woken: true for IO ready, false for a timeout or close. Ours
// cannot park inside a function, so it stops where gopark is and tells the
// caller what to do: true, readiness had been noted and is now consumed (Go
// returns true at once too); false, the slot is now pdWait and the caller
// parks (commit with netpollblockcommit, suspend) and, once woken, runs
// after_gopark for the rest. Go's third argument, waitio, serves only
// Windows' pollWaitCanceled.
bool netpollblock(pollDesc* pd, Mode mode) {
    std::uintptr_t* gpp = slot(pd, mode);
    if (*gpp == pdReady) {  // sticky readiness: consume it, don't park
        *gpp = pdNil;
        return true;
    }
    // One waiter per direction: two coroutines reading the same fd at once is
    // the caller's bug (Go's internal/poll serialises them with fdMutex).
    if (*gpp != pdNil) fatal("double wait");
    *gpp = pdWait;
    // Go checks netpollcheckerr again here, since another thread may have
    // closed the fd or moved a deadline since pollWait's check; ours cannot
    // have changed in between. Go calls netpollarm in pollWait, before its
    // loop; ours calls it here, only when it is sure to park: a
    // level-triggered poller armed for readiness nobody waits for would
    // report it for nothing.
    if (pd->poller) pd->poller->netpollarm(pd, mode);
    return false;
}

// The rest of Go's netpollblock once gopark returns (take the slot's value,
// leave pdNil; it must not hold a waiter), then what Go's pollWait does with
// the answer: IO ready wins, even over a deadline that expired meanwhile
// (exactly one result, and the system call will find the data); otherwise
// netpollcheckerr says why we were woken, and pollNoError means a deadline
// timer woke us but the deadline was moved before we ran: the caller retries,
// as Go's pollWait loops. `fdseq` is the pollDesc's fdseq when the wait
// began: if the pollDesc has been freed since (the closer did not wait for
// us), report pollErrClosing and touch nothing. Go needs no such check: its
// internal/poll keeps the pollDesc until every reader and writer has left.
int after_gopark(pollDesc* pd, Mode mode, std::uintptr_t fdseq) {
    if (fdseq != pd->fdseq) return pollErrClosing;
    std::uintptr_t old = std::exchange(*slot(pd, mode), pdNil);
    if (old > pdWait) fatal("corrupted polldesc");
    if (old == pdReady) return pollNoError;
    return netpollcheckerr(pd, mode);
}
// #endregion block

// #region netpollunblock
// The slot for `mode` is ready (ioready) or must be given up (close,
// deadline). Readiness already noted stays noted; an error with nobody
// waiting needs no note (the next wait checks errors first). Returns the
// parked waiter, if there was one, for the caller to make runnable.
Waiter netpollunblock(pollDesc* pd, Mode mode, bool ioready) {
    std::uintptr_t* gpp = slot(pd, mode);
    std::uintptr_t old = *gpp;
    if (old == pdReady) return {};
    if (old == pdNil && !ioready) return {};
    *gpp = ioready ? pdReady : pdNil;
    if (old == pdWait) old = pdNil;  // about to park, not parked: nobody to hand over
    return Waiter::from_bits(old);
}
// #endregion netpollunblock

// #region deadlineimpl
// A deadline timer fired. Go's timers call it through netpollReadDeadline
// (read), netpollWriteDeadline (write) or netpollDeadline (both, when the two
// deadlines are equal and Go arms one timer); ours call it with one direction.
// `seq` is what rseq (or wseq) was when the timer was armed: if it has changed
// (a new deadline, close, reuse), the timer is stale and ignored. Go returns
// nothing; ours returns whether the timer took effect, for the stats line.
bool netpolldeadlineimpl(pollDesc* pd, std::uintptr_t seq, bool read, bool write, gList& toRun) {
    std::uintptr_t currentSeq = read ? pd->rseq : pd->wseq;
    if (seq != currentSeq) return false;  // the descriptor was reused or the deadline changed
    Waiter rg, wg;
    if (read) {
        if (pd->rd == kNoDeadline || pd->rd == kDeadlineExpired) fatal("inconsistent read deadline");
        pd->rd = kDeadlineExpired;
        rg = netpollunblock(pd, Mode::read, false);
    }
    if (write) {
        if (pd->wd == kNoDeadline || pd->wd == kDeadlineExpired) fatal("inconsistent write deadline");
        pd->wd = kDeadlineExpired;
        wg = netpollunblock(pd, Mode::write, false);
    }
    if (rg) toRun.push_back(rg);
    if (wg) toRun.push_back(wg);
    return true;
}
// #endregion deadlineimpl

// pollDescs are never freed while the cache lives, only recycled
// ("type-stable"), because a stale event or timer may still point at one
// after its fd was closed; fdseq and rseq/wseq tell the stale ones apart.
// Blocks of pollBlockSize bytes, so a pollDesc never moves. Go takes them
// from persistentalloc (memory outside the garbage-collected heap) and never
// gives them back; ours go back when the cache is destroyed.
pollDesc* pollCache::alloc() {
    if (first == nullptr) {
        constexpr std::size_t n = std::max<std::size_t>(1, pollBlockSize / sizeof(pollDesc));
        auto& block = blocks.emplace_back(std::make_unique<pollDesc[]>(n));
        for (std::size_t i = 0; i < n; ++i) {
            block[i].link = first;
            first = &block[i];
        }
    }
    pollDesc* pd = first;
    first = pd->link;
    return pd;
}

// #region tagimpl
// How ours differs from Go 1.27's, and why. Go 1.27 pads every pollDesc to
// tagAlign = 512 bytes (tagAlignBits = 9) and takes addrBits = 49 on amd64,
// leaving 24 tag bits; it packs `ptr << 15 | tag` and unpacks with an
// arithmetic (sign-extending) shift, `>> 24 << 9`. Ours keeps the alignment
// C++ gives a pollDesc, 8 bytes (tagAlignBits = 3), and addrBits = 48, which
// leaves 19 tag bits: `ptr << 16 | tag`, unpacked `>> 19 << 3`, unsigned.
// That is Go's layout from 1.21, when taggedPointer came to netpoll, to 1.24
// (1.19 has none: it stores the bare pointer). Why: our pollDesc is 88 bytes;
// padding it to 512 would add 424 bytes to every connection (an idle one costs
// 2.50 KiB in all, docs/benchmarks.md S4, and 2.5 KiB is the chapter's limit),
// for a tag that wraps after 2^24 reuses of one pollDesc instead of 2^19. A stale event is mistaken for a current one only
// if its pollDesc is reused exactly a multiple of 2^19 times between the
// kernel queueing the event and netpoll reading it. And addrBits: Linux gives
// user space addresses below 2^47 unless a program asks for more (5-level
// paging, with an mmap hint), and taggedPointerPack stops the program if an
// address ever does not fit.
taggedPointer taggedPointerPack(pollDesc* ptr, std::uintptr_t tag) {
    static_assert(sizeof(std::uintptr_t) == 8, "the tag layout assumes 64-bit pointers");
    static_assert(alignof(pollDesc) >= (std::size_t{1} << tagAlignBits));
    constexpr std::uint64_t mask = (std::uint64_t{1} << tagBits) - 1;
    taggedPointer t{(std::uint64_t{reinterpret_cast<std::uintptr_t>(ptr)} << (tagBits - tagAlignBits)) | (tag & mask)};
    if (t.pointer() != ptr) fatal("taggedPointerPack invalid packing");
    return t;
}

pollDesc* taggedPointer::pointer() const { return reinterpret_cast<pollDesc*>(bits >> tagBits << tagAlignBits); }

std::uintptr_t taggedPointer::tag() const { return bits & ((std::uint64_t{1} << tagBits) - 1); }
// #endregion tagimpl

}  // namespace course::runtime
