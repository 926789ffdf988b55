// The poll(2) backend: the same five functions over the call from chapter 04,
// to show that nothing above the Poller interface depends on epoll.
//
// poll has no registration and no edges: every call hands the kernel the whole
// list of fds and what to watch on each, and it reports levels ("readable
// now"), again and again, for as long as they hold. So the question is what to
// ask for. Asking for POLLIN|POLLOUT on every fd would make poll return at once
// forever: an idle connection is always writable, and a socket with unread data
// stays readable while its coroutine is busy elsewhere. Our choice:
//
//   ask for POLLIN only while a reader is parked on the fd, and POLLOUT only
//   while a writer is parked; skip the fd entirely (fd = -1) while nobody is.
//
// Nothing is lost by not asking: a level is still there when a waiter parks,
// and the next poll reports it. So this backend never needs sticky readiness:
// it marks a slot only for a parked waiter. Skipping the fd, not just passing
// events = 0, matters: poll always reports POLLHUP and POLLERR, asked or not,
// so a hung-up idle connection would make every call return at once.
//
// The cost is chapter 04's: each call rebuilds the interest of every fd and
// the kernel scans them all, O(registered fds), however few are ready.
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

    void netpoll_init() override {
        break_.open();
        fds_.push_back({break_.fd(), POLLIN, 0});  // entry 0, always watched
        watched_.push_back({break_.fd(), nullptr});
        to_run_.reserve(256);
    }

    // No system call: registering is remembering.
    std::error_code netpoll_open(int fd, PollDesc* pd) override {
        if (fd < 0) return std::make_error_code(std::errc::bad_file_descriptor);
        if (static_cast<size_t>(fd) >= index_.size()) index_.resize(static_cast<size_t>(fd) + 1, -1);
        if (index_[fd] >= 0) return std::make_error_code(std::errc::file_exists);  // as EPOLL_CTL_ADD
        index_[fd] = static_cast<int>(fds_.size());
        fds_.push_back({fd, 0, 0});
        watched_.push_back({fd, pd});
        return {};
    }

    // Forgetting, by moving the last entry into the hole.
    std::error_code netpoll_close(int fd) override {
        if (fd < 0 || static_cast<size_t>(fd) >= index_.size() || index_[fd] < 0)
            return std::make_error_code(std::errc::no_such_file_or_directory);  // as EPOLL_CTL_DEL
        int i = index_[fd];
        int last = static_cast<int>(fds_.size()) - 1;
        fds_[i] = fds_[last];
        watched_[i] = watched_[last];
        index_[watched_[i].fd] = i;  // a no-op when fd was the last entry
        fds_.pop_back();
        watched_.pop_back();
        index_[fd] = -1;
        return {};
    }

    // #region netpoll
    std::span<const Waiter> netpoll(std::chrono::nanoseconds delay) override {
        to_run_.clear();
        for (size_t i = 1; i < fds_.size(); ++i) {  // the interest, rebuilt on every call
            const PollDesc* pd = watched_[i].pd;
            short events = 0;
            if (pd->state(Mode::read) == WaitSlot::parked) events |= POLLIN | POLLRDHUP;
            if (pd->state(Mode::write) == WaitSlot::parked) events |= POLLOUT;
            fds_[i].fd = events != 0 ? watched_[i].fd : -1;  // -1: poll skips it, POLLHUP included
            fds_[i].events = events;
        }
        int n = sys::poll(fds_.data(), fds_.size(), timeout_ms(delay));
        if (n < 0) {
            if (errno == EINTR) return {};
            throw_errno("poll");
        }
        if (fds_[0].revents & POLLIN) {
            if (delay != std::chrono::nanoseconds::zero()) break_.drain();  // as in the epoll backend
        }
        for (size_t i = 1; i < fds_.size(); ++i) {
            short re = fds_[i].revents;
            if (re == 0) continue;
            // Go's mapping of epoll events, limited to what a waiter asked for.
            // POLLNVAL (the fd was closed under us) wakes both: the syscall reports EBADF.
            int mode = 0;
            if ((re & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) && (fds_[i].events & POLLIN)) mode += 'r';
            if ((re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) && (fds_[i].events & POLLOUT)) mode += 'w';
            if (mode == 0) continue;
            watched_[i].pd->set_event_err(re == POLLERR);
            netpollready(to_run_, *watched_[i].pd, static_cast<Mode>(mode));
        }
        return to_run_;
    }
    // #endregion netpoll

    void netpoll_break() noexcept override { break_.wake(); }
    std::uint64_t break_writes() const noexcept override { return break_.writes(); }

private:
    BreakFd break_;
    struct Watched {
        int fd;
        PollDesc* pd;
    };
    std::vector<pollfd> fds_;        // what poll(2) gets; entry 0 is the break fd
    std::vector<Watched> watched_;   // watched_[i] is what fds_[i] stands for
    std::vector<int> index_;         // index_[fd]: where fd is in fds_, or -1
    WaiterList to_run_;
};

}  // namespace

std::unique_ptr<Poller> new_poll_poller() { return std::make_unique<PollPoller>(); }

}  // namespace course::runtime
