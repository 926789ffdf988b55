// The epoll backend (Go's runtime/netpoll_epoll.go).
//
// Every fd is registered once, for everything, edge-triggered:
// EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, with its pollDesc and fdseq packed
// into the event's data (a taggedPointer). After that epoll_ctl is never
// called for it again until netpollclose deletes it: no re-arming per read or
// write, no EPOLLOUT toggling. So a connection costs two epoll_ctl calls in
// all, ADD when it is accepted and DEL before close(2); chapter 06 makes one,
// its ADD (close(2) removes the registration there). An edge that arrives
// while nobody waits is not lost: netpollready notes it in the pollDesc
// (pdReady), and the next wait consumes it.
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

// The break fd's events carry 0: no pollDesc packs to 0 (its address is not null).
// (Go's carry the address of netpollEventFd.)
constexpr std::uint64_t kBreakData = 0;

class EpollPoller final : public Poller {
public:
    const char* name() const override { return "epoll"; }

    void netpollinit() override {
        epfd = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (!epfd) throw_errno("epoll_create1");
        break_.open();
        // Level-triggered on purpose: a break seen by netpoll(0) is left in
        // place (see below) and must be reported again to the next netpoll.
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kBreakData;
        if (sys::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, break_.fd(), &ev) < 0) throw_errno("epoll_ctl(eventfd)");
    }

    // #region open
    int netpollopen(int fd, pollDesc* pd) override {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = taggedPointerPack(pd, pd->fdseq).bits;
        return sys::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev) < 0 ? errno : 0;
    }

    int netpollclose(int fd) override { return sys::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fd, nullptr) < 0 ? errno : 0; }
    // #endregion open

    // #region netpoll
    void netpoll(std::chrono::nanoseconds delay, gList& toRun) override {
        int n = sys::epoll_wait(epfd.get(), events.data(), kMaxEvents, timeout_ms(delay));
        if (n < 0) {
            if (errno == EINTR) return;  // a signal: let the caller look at what it changed
            throw_errno("epoll_wait");
        }
        for (const epoll_event& ev : std::span(events.data(), static_cast<size_t>(n))) {
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
            taggedPointer tp{ev.data.u64};
            pollDesc* pd = tp.pointer();
            std::uintptr_t tag = tp.tag();
            // An event for a previous user of this pollDesc: its fd was closed
            // (and the pollDesc maybe reused) after the kernel queued the event.
            if (pd->fdseq != tag) continue;
            pd->setEventErr(ev.events == EPOLLERR, tag);
            netpollready(toRun, pd, static_cast<Mode>(mode));
        }
    }
    // #endregion netpoll

    void netpollBreak() noexcept override { break_.wake(); }
    std::uint64_t break_writes() const noexcept override { return break_.writes(); }

private:
    Fd epfd;  // Go's epfd
    BreakFd break_;  // Go's netpollEventFd and netpollWakeSig
    static constexpr int kMaxEvents = 128;  // per call, as Go's; the rest wait for the next call
    std::array<epoll_event, kMaxEvents> events{};  // Go's is a local array of netpoll
};

}  // namespace

std::unique_ptr<Poller> new_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace course::runtime
