// The frame pool behind Task (see task.hpp): per-size free lists, per thread.
#include "task.hpp"

#include <array>
#include <new>

namespace course::runtime::detail {
namespace {

constexpr std::size_t kGrain = 64;       // size classes 64, 128, ... bytes
constexpr std::size_t kClasses = 128;    // up to 8 KiB; larger frames use the heap directly

struct FreeFrame {
    FreeFrame* next;
};

struct FramePool {
    std::array<FreeFrame*, kClasses> free{};
    ~FramePool() {  // at thread exit: give everything back (LeakSanitizer stays quiet)
        for (FreeFrame*& head : free)
            while (head) ::operator delete(std::exchange(head, head->next));
    }
};
thread_local FramePool pool;

std::size_t size_class(std::size_t size) { return (size + kGrain - 1) / kGrain; }

}  // namespace

void* frame_alloc(std::size_t size) {
    std::size_t c = size_class(size);
    if (c >= kClasses) return ::operator new(size);
    if (FreeFrame* f = pool.free[c]) {
        pool.free[c] = f->next;
        return f;
    }
    return ::operator new(c * kGrain);
}

void frame_free(void* p, std::size_t size) noexcept {
    std::size_t c = size_class(size);
    if (c >= kClasses) {
        ::operator delete(p);
        return;
    }
    auto* f = static_cast<FreeFrame*>(p);
    f->next = pool.free[c];
    pool.free[c] = f;
}

}  // namespace course::runtime::detail
