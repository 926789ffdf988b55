// The epoll backend (Go's runtime/netpoll_epoll.go).
//
// Every fd is registered once, for everything, edge-triggered:
// EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, with its PollDesc and fdseq packed
// into the event's data. After that epoll_ctl is never called for it again
// until netpoll_close: no re-arming per read or write, no EPOLLOUT toggling,
// which is why chapter 06 showed two epoll_ctl calls per connection. An edge
// that arrives while nobody waits is not lost: netpollready notes it in the
// PollDesc ("ready"), and the next wait consumes it.
#include "netpoll.hpp"
#include "netpoll_break.hpp"

#include "fd.hpp"
#include "net.hpp"
#include "sys.hpp"

#include <sys/epoll.h>

#include <array>
#include <span>
#include <cerrno>

namespace course::runtime {
namespace {

// The break fd's events carry 0: no PollDesc packs to 0 (its address is not null).
constexpr std::uint64_t kBreakData = 0;

class EpollPoller final : public Poller {
public:
    const char* name() const override { return "epoll"; }

    void netpoll_init() override {
        epfd_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (!epfd_) throw_errno("epoll_create1");
        break_.open();
        // Level-triggered on purpose: a break seen by netpoll(0) is left in
        // place (see below) and must be reported again to the next netpoll.
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kBreakData;
        if (sys::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, break_.fd(), &ev) < 0) throw_errno("epoll_ctl(eventfd)");
    }

    // #region open
    std::error_code netpoll_open(int fd, PollDesc* pd) override {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = TaggedPointer::pack(pd, pd->fdseq()).bits;
        if (sys::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return {errno, std::system_category()};
        return {};
    }

    std::error_code netpoll_close(int fd) override {
        if (sys::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0) return {errno, std::system_category()};
        return {};
    }
    // #endregion open

    // #region netpoll
    void netpoll(std::chrono::nanoseconds delay, gList& to_run) override {
        int n = sys::epoll_wait(epfd_.get(), events_.data(), kMaxEvents, timeout_ms(delay));
        if (n < 0) {
            if (errno == EINTR) return;  // a signal: let the caller look at what it changed
            throw_errno("epoll_wait");
        }
        for (const epoll_event& ev : std::span(events_.data(), static_cast<size_t>(n))) {
            if (ev.data.u64 == kBreakData) {
                // netpoll(0) may see a break meant for a poller that blocks:
                // leave it for that one, as Go does. A blocking poll consumes it.
                if (delay != std::chrono::nanoseconds::zero()) break_.drain();
                continue;
            }
            // Hang-up and error wake both directions: the syscall will tell
            // each of them what happened. EPOLLRDHUP (the peer shut down its
            // writing side) is "readable": read() returns the rest, then 0.
            int mode = 0;
            if (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) mode += 'r';
            if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) mode += 'w';
            if (mode == 0) continue;
            TaggedPointer tp{ev.data.u64};
            PollDesc* pd = tp.pointer();
            // An event for a previous user of this PollDesc: its fd was closed
            // (and the PollDesc maybe reused) after the kernel queued the event.
            if (pd->fdseq() != tp.tag()) continue;
            pd->set_event_err(ev.events == EPOLLERR);
            netpollready(to_run, *pd, static_cast<Mode>(mode));
        }
    }
    // #endregion netpoll

    void netpoll_break() noexcept override { break_.wake(); }
    std::uint64_t break_writes() const noexcept override { return break_.writes(); }

private:
    Fd epfd_;
    BreakFd break_;
    static constexpr int kMaxEvents = 128;  // per call, as Go; the rest wait for the next call
    std::array<epoll_event, kMaxEvents> events_{};
};

}  // namespace

std::unique_ptr<Poller> new_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace course::runtime
