// poll_desc.hpp: the platform-independent half of the netpoller, Go's
// runtime/netpoll.go: what the runtime knows about each file descriptor (a
// pollDesc), and the functions that park a waiter on it and wake it again.
//
// Laid out as redis lays out ae.h: this header holds the types and the
// prototypes, one line each; poll_desc.cpp holds the definitions and their
// prose, in the order of netpoll.go, so the two files can be read side by side.
//
// Names. Everything that has a Go twin carries Go's name exactly (pollDesc,
// rg, netpollblock, poll_runtime_pollWait, ...); what has none says so.
// Go's functions become free functions over a plain struct, taking the
// pollDesc first as Go's do, so that a line of ours reads like Go's:
// Go's arguments first, in Go's order; then what Go keeps in globals and we
// pass in (the pollCache, the Poller, the list `toRun` that Go's goready
// would feed).
//
// Single-threaded runtime: plain fields, no atomics, no lock. Go needs both
// because its netpoll runs on any thread, concurrently with the goroutines;
// where Go re-checks something after an atomic step, ours cannot change in
// between, and poll_desc.cpp says so at each place.
#pragma once

#include "waiter.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace course::runtime {

class Poller;

// Go's mode, an int32 that is 'r', 'w' or 'r'+'w'; an enum with those values.
enum class Mode : int { read = 'r', write = 'w', read_write = 'r' + 'w' };

// The error codes of poll_runtime_pollReset and poll_runtime_pollWait (Go's, same values).
inline constexpr int pollNoError = 0;         // ready, or woken for nothing: retry the system call
inline constexpr int pollErrClosing = 1;      // the descriptor is being closed
inline constexpr int pollErrTimeout = 2;      // the deadline for this direction has passed
inline constexpr int pollErrNotPollable = 3;  // the poller saw only an error on the fd (reads only)

// #region slot
// A waiter slot (rg or wg) is one word, as in Go: one of these three, or the
// bits of the Waiter parked there (waiter.hpp; never 0, 1 or 2).
inline constexpr std::uintptr_t pdNil = 0;    // nobody waits, no readiness noted
inline constexpr std::uintptr_t pdReady = 1;  // readiness arrived while nobody waited; the next wait consumes it
inline constexpr std::uintptr_t pdWait = 2;   // a waiter has decided to park but is not parked yet
// #endregion slot

using Clock = std::chrono::steady_clock;
// No Go twins: Go's deadlines are nanotimes where 0 means none and -1 expired;
// ours are time points with the same two special values.
inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();
inline constexpr Clock::time_point kDeadlineExpired = Clock::time_point::min();

// Go's pollDesc: one per open descriptor, recycled through the pollCache.
struct pollDesc {
    pollDesc* link = nullptr;            // the next free pollDesc, in the pollCache
    int fd = -1;                         // the descriptor, for this pollDesc's current use
    std::uintptr_t fdseq = 0;            // bumped at each reuse: protects against stale pollDesc
    std::uintptr_t rg = pdNil;           // pdReady, pdWait, the Waiter parked to read, or pdNil
    std::uintptr_t wg = pdNil;           // the same for a writer
    bool closing = false;                // set by poll_runtime_pollUnblock: every wait fails
    bool eventErr = false;               // Go's pollEventErr bit of atomicInfo: the last event was only an error
    std::uintptr_t rseq = 0;             // bumped when rd changes: protects from stale read timers
    Clock::time_point rd = kNoDeadline;  // read deadline (kDeadlineExpired once passed)
    std::uintptr_t wseq = 0;             // the same for writes
    Clock::time_point wd = kNoDeadline;  // write deadline
    Poller* poller = nullptr;            // no Go twin: the poller to netpollarm before parking, if it arms

    // Go's (*pollDesc).setEventErr: note whether the last event was an error only.
    void setEventErr(bool b, std::uintptr_t seq);
};

// Go's pollCache: pollDescs, handed out and taken back, never freed while it lives.
struct pollCache {
    pollDesc* first = nullptr;                            // the free list
    std::vector<std::unique_ptr<pollDesc[]>> blocks;      // no Go twin: Go's blocks are never freed at all

    pollDesc* alloc();            // Go's (*pollCache).alloc: a pollDesc from the free list, or a new block
    void free(pollDesc* pd);      // Go's (*pollCache).free: back to the list, fdseq bumped
};

// --- netpoll.go's functions, in its order -------------------------------------

// Go's poll_runtime_pollOpen: a pollDesc for `fd`, registered with netpollopen; {pd, 0} or {nullptr, errno}.
std::pair<pollDesc*, int> poll_runtime_pollOpen(int fd, pollCache& cache, Poller& netpoll);
// Go's poll_runtime_pollClose: netpollclose, and the pollDesc back to the cache (after pollUnblock).
void poll_runtime_pollClose(pollDesc* pd, pollCache& cache, Poller& netpoll);
// Go's poll_runtime_pollReset: before the system call, the pending error or forget noted readiness.
int poll_runtime_pollReset(pollDesc* pd, Mode mode);
class PollWait;
// Go's poll_runtime_pollWait, as an awaiter: `int res = co_await poll_runtime_pollWait(pd, mode);`
PollWait poll_runtime_pollWait(pollDesc* pd, Mode mode);
// Go's poll_runtime_pollSetDeadline, without the timers: rd/wd and rseq/wseq; a past `d` wakes into toRun.
void poll_runtime_pollSetDeadline(pollDesc* pd, Clock::time_point d, Mode mode, Clock::time_point now, gList& toRun);
// Go's poll_runtime_pollUnblock: `closing` from now on, the parked waiters into toRun.
void poll_runtime_pollUnblock(pollDesc* pd, gList& toRun);
// Go's netpollready: the poller saw pd's fd ready for `mode`: wake into toRun, or note pdReady.
inline void netpollready(gList& toRun, pollDesc* pd, Mode mode);
// Go's netpollcheckerr: closing, then an expired deadline, then (reads only) an error event.
int netpollcheckerr(pollDesc* pd, Mode mode);
// Go's netpollblockcommit, gopark's callback: the slot *gpp goes from pdWait to gp.
bool netpollblockcommit(Waiter gp, std::uintptr_t* gpp);
// Go's netpollblock up to gopark: true, IO ready (pdReady consumed); false, the slot is pdWait: park.
bool netpollblock(pollDesc* pd, Mode mode);
// No Go twin: the rest of Go's netpollblock after gopark returns, and pollWait's look at why.
int after_gopark(pollDesc* pd, Mode mode, std::uintptr_t fdseq);
// Go's netpollunblock: the slot becomes pdReady (ioready) or pdNil; returns the Waiter parked there.
Waiter netpollunblock(pollDesc* pd, Mode mode, bool ioready);
// Go's netpolldeadlineimpl: a deadline timer armed at `seq` fired; returns whether it was not stale.
bool netpolldeadlineimpl(pollDesc* pd, std::uintptr_t seq, bool read, bool write, gList& toRun);

// #region awaiter
// Go's poll_runtime_pollWait as a C++20 awaiter (PollWait: no Go twin as a type). A
// C++20 awaiter has three functions and Go's wait has three steps; they line up:
//   await_ready    pollWait's netpollcheckerr, then netpollblock up to gopark;
//                  true (don't suspend) when an error is pending or readiness
//                  was noted: a million ready waits are a million calls, not
//                  a million suspensions.
//   await_suspend  gopark's callback, netpollblockcommit, run once the
//                  coroutine is suspended: the slot holds its handle.
//   await_resume   after_gopark: the slot says why we are back.
class PollWait {
public:
    PollWait(pollDesc* pd, Mode mode) : pd_(pd), mode_(mode) {}

    bool await_ready() {
        res_ = netpollcheckerr(pd_, mode_);
        if (res_ != pollNoError || netpollblock(pd_, mode_)) return true;
        fdseq_ = pd_->fdseq;
        return false;
    }
    bool await_suspend(std::coroutine_handle<> gp) {
        parked_ = true;
        return netpollblockcommit(gp, mode_ == Mode::read ? &pd_->rg : &pd_->wg);
    }
    int await_resume() { return parked_ ? after_gopark(pd_, mode_, fdseq_) : res_; }

private:
    pollDesc* pd_;
    Mode mode_;
    int res_ = pollNoError;
    std::uintptr_t fdseq_ = 0;
    bool parked_ = false;
};
// #endregion awaiter

inline PollWait poll_runtime_pollWait(pollDesc* pd, Mode mode) { return {pd, mode}; }

// #region tag
// Go's taggedPointer (runtime/tagptr.go, tagptr_64bit.go): a pollDesc's
// address and the low bits of its fdseq in one 64-bit word, which is what an
// epoll event carries back (epoll_event.data). Go's formulas with our numbers:
// user-space addresses fit in addrBits = 48 bits, and a pollDesc is aligned to
// 2^tagAlignBits = 8 bytes, so the address needs 45 bits and the tag gets
// tagBits = 64 - 48 + 3 = 19:
//
//   bit 63 ............................ 19 | 18 ............. 0
//       pollDesc address >> 3 (45 bits)    |  tag: fdseq (19 bits)
//
// Go 1.27 on linux/amd64 has addrBits = 49 and tagAlignBits = 9 (it pads each
// pollDesc to 512 bytes), so 24 tag bits; poll_desc.cpp says why ours differ.
inline constexpr int addrBits = 48;
inline constexpr int tagAlignBits = 3;
inline constexpr int tagBits = 64 - addrBits + tagAlignBits;
inline constexpr int taggedPointerBits = tagBits;  // Go's name for the width of fdseq (pollCache.free)

struct taggedPointer {
    std::uint64_t bits = 0;  // Go's taggedPointer is the uint64 itself

    pollDesc* pointer() const;  // Go's (taggedPointer).pointer
    std::uintptr_t tag() const;  // Go's (taggedPointer).tag
};
// Go's taggedPointerPack: `tag` is cut to its low tagBits.
taggedPointer taggedPointerPack(pollDesc* ptr, std::uintptr_t tag);
// #endregion tag

// --- inline, because it measurably matters --------------------------------------
// Everything else is defined in poll_desc.cpp, and link-time optimisation
// (CMakeLists.txt) inlines what a round trip goes through just as well. Not
// netpollready: each backend's netpoll calls it once per event, and there
// GCC 12 keeps it a call unless it is declared inline (it is not small, with
// the vector's growth path): 518 user-space instructions per round trip with
// it in poll_desc.cpp, 490 with it here (tools/callgrind-roundtrip.sh, Release;
// without link-time optimisation, 603).

// Called by the backends' netpoll for each event: `mode` is 'r', 'w' or
// 'r'+'w'. Wakes the parked waiters into toRun (the run queue itself, when
// the scheduler polls), or notes pdReady for the next wait. Go's also returns
// a count for netpollWaiters (how many goroutines wait on the network, which
// Go's scheduler asks before blocking in netpoll); ours has no such count.
inline void netpollready(gList& toRun, pollDesc* pd, Mode mode) {
    Waiter rg, wg;
    if (mode == Mode::read || mode == Mode::read_write) rg = netpollunblock(pd, Mode::read, true);
    if (mode == Mode::write || mode == Mode::read_write) wg = netpollunblock(pd, Mode::write, true);
    if (rg) toRun.push_back(rg);
    if (wg) toRun.push_back(wg);
}

// Go's throw: a broken invariant of the runtime itself. Not an exception:
// nothing above could repair it, and unwinding through suspended coroutines
// would only hide where it happened.
[[noreturn]] void fatal(const char* what);

}  // namespace course::runtime
