#include "netpoll_break.hpp"

#include "net.hpp"
#include "sys.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace course::runtime {

void BreakFd::open() {
    netpollEventFd = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!netpollEventFd) throw_errno("eventfd");
}

// #region wake
void BreakFd::wake() noexcept {
    if (netpollWakeSig.exchange(true, std::memory_order_acq_rel)) return;  // a wake-up is on its way already
    const int saved = errno;  // a signal handler must not change errno under the code it interrupted
    const std::uint64_t one = 1;
    // EAGAIN (the counter is full) cannot happen: at most one write is pending.
    if (::write(netpollEventFd.get(), &one, sizeof one) == sizeof one) writes_.fetch_add(1, std::memory_order_relaxed);
    errno = saved;
}
// #endregion wake

void BreakFd::drain() {
    std::uint64_t count = 0;
    // The count itself does not matter (it is 1: one write per pending break),
    // only that the fd is no longer readable. An error would be harmless too:
    // the worst case is one more wake-up.
    [[maybe_unused]] ssize_t n = sys::read(netpollEventFd.get(), &count, sizeof count);
    netpollWakeSig.store(false, std::memory_order_release);
}

}  // namespace course::runtime
