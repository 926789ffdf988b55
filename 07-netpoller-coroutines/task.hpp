// Task: the coroutine type of chapter 07, and go() to start one.
//
// A Task is lazy (it starts when awaited or spawned), move-only, and owns its
// frame: the frame is freed when the Task that owns it is destroyed, or, for a
// coroutine started with go(), by the coroutine itself when it finishes.
//
//   Task<Accepted> accept()            an operation: `auto [conn, err] = co_await ln.accept();`
//   go(echo(std::move(conn)));         a connection coroutine (Go: `go echo(conn)`)
//
// Why a trampoline. The textbook way for one coroutine to start another and be
// continued by it is symmetric transfer (await_suspend returns the handle to
// run next). g++ 12 compiles that into a real call at -O0 and under ASan, not a
// jump, so a loop of a million synchronous `co_await`s grows the stack by a
// million frames and crashes. Here nobody resumes anybody directly: an awaiter
// only says who runs next (hand_over), returns, and resume() below, the only
// place a coroutine is resumed, runs that one. The stack never holds more than
// one coroutine. The scheduler resumes every coroutine it runs through here
// (Waiter::run in poll_desc.hpp, and IoOp::wake once its retry is done).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>

namespace course::runtime {

namespace detail {
// Who runs after the coroutine that resume() is running now suspends or ends.
inline thread_local std::coroutine_handle<> next;
// Coroutines started with go() that have not finished yet (Go: gcount).
inline thread_local std::size_t live_goroutines = 0;

// Coroutine frames come from per-size free lists and go back to them: after
// warm-up, starting a Task allocates nothing (zero heap allocations
// per round trip). Go reuses goroutine stacks for the same reason.
void* frame_alloc(std::size_t size);
void frame_free(void* p, std::size_t size) noexcept;
}  // namespace detail

// #region trampoline
// Says that `h` runs as soon as the current coroutine has suspended.
inline void hand_over(std::coroutine_handle<> h) noexcept { detail::next = h; }

// Runs `h` until it parks or ends, then whatever it handed over, and so on:
// a loop, so a chain of a million synchronous awaits uses one stack frame.
inline void resume(std::coroutine_handle<> h) {
    while (h) {
        detail::next = {};
        h.resume();
        h = std::exchange(detail::next, {});
    }
}
// #endregion trampoline

template <class T = void>
class Task;

namespace detail {

struct PromiseBase {
    std::coroutine_handle<> continuation;  // who awaits us; null when started by go()
    bool detached = false;                  // started by go(): frees itself at the end
    std::exception_ptr error;

    static void* operator new(std::size_t size) { return frame_alloc(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

    std::suspend_always initial_suspend() noexcept { return {}; }  // lazy

    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <class P>
        void await_suspend(std::coroutine_handle<P> self) noexcept {
            PromiseBase& p = self.promise();
            if (p.detached) {  // nobody owns this frame: free it ourselves
                if (p.error) std::terminate();  // Go: a panic in a goroutine ends the program
                self.destroy();
                --live_goroutines;
                return;
            }
            hand_over(p.continuation);  // back to the awaiter; its Task frees this frame
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
    T value{};
    Task<T> get_return_object() noexcept;
    void return_value(T v) { value = std::move(v); }
    T take() {
        if (error) std::rethrow_exception(error);
        return std::move(value);
    }
};

template <>
struct Promise<void> : PromiseBase {
    Task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {
        if (error) std::rethrow_exception(error);
    }
};

}  // namespace detail

// #region task
template <class T>
class [[nodiscard]] Task {
public:
    using promise_type = detail::Promise<T>;
    using Handle = std::coroutine_handle<promise_type>;

    Task() = default;
    explicit Task(Handle h) noexcept : h_(h) {}
    Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    Task& operator=(Task&& other) noexcept {
        if (this != &other) {
            if (h_) h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() {
        if (h_) h_.destroy();  // not started, or finished: never a parked frame (see Scheduler)
    }

    // Awaiting a task runs it: the awaiter suspends and hands over to the
    // child; the child's final suspend hands back (see the trampoline above).
    auto operator co_await() && noexcept {
        struct Awaiter {
            Handle child;
            bool await_ready() noexcept { return false; }
            void await_suspend(std::coroutine_handle<> parent) noexcept {
                child.promise().continuation = parent;
                hand_over(child);
            }
            T await_resume() { return child.promise().take(); }
        };
        return Awaiter{h_};
    }

    // For go() and tests: gives the frame away.
    Handle release() noexcept { return std::exchange(h_, {}); }
    bool done() const noexcept { return h_ && h_.done(); }

private:
    Handle h_;
};
// #endregion task

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

// Go's `go f()`: starts `task` as a detached coroutine on the current
// scheduler's run queue. It frees itself when it finishes. (scheduler.cpp)
void go(Task<void> task);

}  // namespace course::runtime
