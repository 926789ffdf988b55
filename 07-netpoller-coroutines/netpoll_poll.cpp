// The poll(2) backend: the same five functions over the call from chapter 04,
// to show that nothing above the Poller interface depends on epoll.
//
// poll has no registration and no edges: every call hands the kernel the whole
// list of fds and what to watch on each, and it reports levels ("readable
// now"), again and again, for as long as they hold. So the question is what to
// ask for. Asking for POLLIN|POLLOUT on every fd would make poll return at once
// forever: an idle connection is always writable, and a socket with unread data
// stays readable while its coroutine is busy elsewhere. Go's answer for its
// level-triggered pollers (AIX's netpoll uses poll(2)) is netpollarm:
//
//   a waiter about to park arms its direction (POLLIN or POLLOUT) on its fd;
//   a reported direction is disarmed, so it is reported once per arm;
//   an fd with nothing armed is skipped entirely (fd = -1).
//
// Nothing is lost by not asking: a level is still there when a waiter arms,
// and the next poll reports it. Skipping the fd, not just passing events = 0,
// matters: poll always reports POLLHUP and POLLERR, asked or not, so a
// hung-up idle connection would make every call return at once.
//
// The cost is chapter 04's: every call hands the kernel the whole array and
// the kernel scans it all, O(registered fds), however few are ready.
#include "netpoll.hpp"
#include "netpoll_break.hpp"

#include "net.hpp"
#include "sys.hpp"

#include <poll.h>

#include <cerrno>
#include <vector>

namespace course::runtime {
namespace {

class PollPoller final : public Poller {
public:
    const char* name() const override { return "poll"; }

    void netpollinit() override {
        break_.open();
        fds_.push_back({break_.fd(), POLLIN, 0});  // entry 0, always watched
        watched_.push_back({break_.fd(), nullptr});
    }

    // No system call: registering is remembering.
    int netpollopen(int fd, pollDesc* pd) override {
        if (fd < 0) return EBADF;
        if (static_cast<size_t>(fd) >= index_.size()) index_.resize(static_cast<size_t>(fd) + 1, -1);
        if (index_[fd] >= 0) return EEXIST;  // as EPOLL_CTL_ADD
        index_[fd] = static_cast<int>(fds_.size());
        fds_.push_back({-1, 0, 0});  // nothing armed yet: skipped
        watched_.push_back({fd, pd});
        return 0;
    }

    // Forgetting, by moving the last entry into the hole.
    int netpollclose(int fd) override {
        if (fd < 0 || static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0) return ENOENT;  // as EPOLL_CTL_DEL
        int i = index_[fd];
        int last = static_cast<int>(fds_.size()) - 1;
        fds_[i] = fds_[last];
        watched_[i] = watched_[last];
        index_[watched_[i].fd] = i;  // a no-op when fd was the last entry
        fds_.pop_back();
        watched_.pop_back();
        index_[fd] = -1;
        return 0;
    }

    // #region netpoll
    bool arms() const noexcept override { return true; }

    void netpollarm(pollDesc* pd, Mode mode) override {
        pollfd& p = fds_[index_[pd->fd]];
        p.fd = pd->fd;
        p.events |= mode == Mode::read ? POLLIN | POLLRDHUP : POLLOUT;
    }

    void netpoll(std::chrono::nanoseconds delay, gList& toRun) override {
        int n = sys::poll(fds_.data(), fds_.size(), timeout_ms(delay));
        if (n < 0) {
            if (errno == EINTR) return;
            throw_errno("poll");
        }
        if (fds_[0].revents != 0) {
            --n;
            if (delay != std::chrono::nanoseconds::zero()) break_.drain();  // as in the epoll backend
        }
        for (size_t i = 1; i < fds_.size() && n > 0; ++i) {  // stop after the n-th reported fd
            pollfd& p = fds_[i];
            short re = p.revents;
            if (re == 0) continue;
            --n;
            // Go's mapping of epoll events, limited to what was armed; each
            // reported direction is disarmed. POLLNVAL (the fd was closed
            // under us) wakes both: the syscall reports EBADF.
            int mode = 0;
            if ((re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) && (p.events & POLLIN)) {
                mode += 'r';
                p.events &= ~(POLLIN | POLLRDHUP);
            }
            if ((re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) && (p.events & POLLOUT)) {
                mode += 'w';
                p.events &= ~POLLOUT;
            }
            if (p.events == 0) p.fd = -1;  // nothing armed: skip it, POLLHUP included
            if (mode == 0) continue;
            watched_[i].pd->setEventErr(re == POLLERR, 0);
            netpollready(toRun, watched_[i].pd, static_cast<Mode>(mode));
        }
    }
    // #endregion netpoll

    void netpollBreak() noexcept override { break_.wake(); }
    std::uint64_t break_writes() const noexcept override { return break_.writes(); }

private:
    BreakFd break_;
    struct Watched {
        int fd;
        pollDesc* pd;
    };
    std::vector<pollfd> fds_;        // what poll(2) gets; entry 0 is the break fd
    std::vector<Watched> watched_;   // watched_[i] is what fds_[i] stands for
    std::vector<int> index_;         // index_[fd]: where fd is in fds_, or -1
};

}  // namespace

std::unique_ptr<Poller> new_poll_poller() { return std::make_unique<PollPoller>(); }

}  // namespace course::runtime
