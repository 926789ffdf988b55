// The waiters: what a pollDesc's slots (rg, wg) and the scheduler's run queue
// hold. In Go both hold goroutines: a slot holds a *g, netpoll returns a gList
// of them, a P's runq is a ring of them. Ours hold a Waiter: a suspended
// coroutine, or a parked operation (a ParkedOp) that still has work to do
// before its coroutine may continue.
//
// This is the scheduler's idea of "who waits"; poll_desc.hpp only stores and
// hands back Waiters, and scheduler.cpp runs them.
#pragma once

#include "task.hpp"

#include <cassert>
#include <coroutine>
#include <cstdint>
#include <vector>

namespace course::runtime {

// #region waiter
// No Go twin (a goroutine parks itself, and its stack keeps its place in its
// loop). An operation that has work of its own to do when it is woken, before
// its coroutine may continue. IoOp (conn.hpp) is the one: it retries its
// system call there and, if that would block again, parks again (Go's loop in
// internal/poll). A C++ awaiter cannot suspend a second time once its
// coroutine has been resumed, so the retry has to happen before that.
struct ParkedOp {
    void (*wake)(ParkedOp* self);
};

// Go's *g, as a slot or the run queue holds it: a suspended coroutine, or a
// ParkedOp. One word, as Go's slot is one word (pdNil, pdReady, pdWait or a
// *g): the low bit says which. Coroutine frames and ParkedOps are at least
// 8-byte aligned, so a real address never has that bit set, and a Waiter is
// never 0, 1 or 2 (pdNil, pdReady, pdWait): a slot can hold its bits.
class Waiter {
public:
    Waiter() = default;
    Waiter(std::coroutine_handle<> h) noexcept : bits_(reinterpret_cast<std::uintptr_t>(h.address())) {
        assert((bits_ & kOp) == 0);
    }
    explicit Waiter(ParkedOp* op) noexcept : bits_(reinterpret_cast<std::uintptr_t>(op) | kOp) {
        static_assert(alignof(ParkedOp) >= 2);
    }
    // The word a slot stores, and back (poll_desc.cpp).
    static Waiter from_bits(std::uintptr_t bits) noexcept {
        Waiter w;
        w.bits_ = bits;
        return w;
    }
    std::uintptr_t bits() const noexcept { return bits_; }

    explicit operator bool() const noexcept { return bits_ != 0; }
    bool operator==(const Waiter&) const = default;
    // The coroutine, if this waiter is one (else null).
    std::coroutine_handle<> handle() const noexcept {
        return bits_ & kOp ? std::coroutine_handle<>{} : std::coroutine_handle<>::from_address(reinterpret_cast<void*>(bits_));
    }
    // What the scheduler does with a runnable waiter: wake the operation, or
    // resume the coroutine (through the trampoline of task.hpp).
    void run() const {
        if (bits_ & kOp) {
            auto* op = reinterpret_cast<ParkedOp*>(bits_ & ~kOp);
            op->wake(op);
        } else {
            resume(handle());
        }
    }

private:
    static constexpr std::uintptr_t kOp = 1;
    std::uintptr_t bits_ = 0;
};
// #endregion waiter

// Go's gList: waiters made runnable, in order. Go links its gs through
// g.schedlink; ours is a vector, which keeps its capacity (no allocation once
// warmed up) and which netpoll can append to directly.
using gList = std::vector<Waiter>;

}  // namespace course::runtime
