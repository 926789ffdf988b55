#include "conn.hpp"

#include "net.hpp"  // common: set_nonblocking
#include "scheduler.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

namespace course::runtime {
namespace {

class NetCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "net"; }
    std::string message(int e) const override {
        switch (static_cast<net_errc>(e)) {
            case net_errc::eof: return "EOF";
            case net_errc::closed: return "use of closed network connection";
            case net_errc::timeout: return "i/o timeout";
            case net_errc::not_pollable: return "not pollable";
        }
        return "unknown net error";
    }
};

std::error_code from_errno(int e) { return {e, std::system_category()}; }

}  // namespace

const std::error_category& net_category() noexcept {
    static const NetCategory category;
    return category;
}

// #region errmap
// What a wait that did not end in readiness means to the caller (Go's
// convertErr in fd_poll_runtime.go). `fd` is only looked at for not_pollable.
static std::error_code wait_error(PollError e, int fd) {
    switch (e) {
        case PollError::none: return {};
        case PollError::closing: return net_errc::closed;
        case PollError::timeout: return net_errc::timeout;
        case PollError::not_pollable: {
            // Only EPOLLERR came: the socket's pending error says more, if it has one.
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) return from_errno(err);
            return net_errc::not_pollable;
        }
    }
    return net_errc::closed;
}
// #endregion errmap

Conn::Conn(Conn&& other) noexcept
    : sched_(other.sched_), fd_(std::move(other.fd_)), pd_(std::exchange(other.pd_, nullptr)),
      closing_(std::exchange(other.closing_, false)) {}

Conn& Conn::operator=(Conn&& other) noexcept {
    if (this != &other) {
        close_now();
        sched_ = other.sched_;
        fd_ = std::move(other.fd_);
        pd_ = std::exchange(other.pd_, nullptr);
        closing_ = std::exchange(other.closing_, false);
    }
    return *this;
}

Conn::~Conn() { close_now(); }

// #region read
// await_ready: Go's prepareRead/prepareWrite (pollReset: fail at once if the
// fd is closing or the deadline has passed), then the first try.
template <Mode M>
bool IoOp<M>::start() {
    if (!pd_) {
        err_ = net_errc::closed;
        return true;
    }
    if (M == Mode::read && size_ == 0) return true;  // nothing asked, nothing done
    if (PollError e = pd_->poll_reset(M); e != PollError::none) {
        err_ = wait_error(e, fd_);
        return true;
    }
    return attempt();  // the fast path: done without suspending, or it would block
}

template <>
bool IoOp<Mode::read>::attempt() {
    for (;;) {
        ssize_t n = sys::read(fd_, data_, size_);
        if (n > 0) n_ = static_cast<std::size_t>(n);
        else if (n == 0) err_ = net_errc::eof;
        else if (errno == EINTR) continue;
        else if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        else err_ = from_errno(errno);
        return true;
    }
}
// #endregion read

// #region write
// Writes from data_[n_] on until all is written (true), an error (true, err_
// set), or the socket buffer is full (false: park until the peer has read).
template <>
bool IoOp<Mode::write>::attempt() {
    while (n_ < size_) {
        ssize_t n = sys::write(fd_, data_ + n_, size_ - n_);
        if (n >= 0) {
            n_ += static_cast<std::size_t>(n);  // maybe fewer than asked: write the rest
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        err_ = from_errno(errno);
        break;
    }
    return true;
}
// #endregion write

// #region park
// Go's pollWait: park until netpoll, close or a deadline hands us back.
// Returns true when parked (the coroutine stays suspended; the scheduler will
// call wake), false when the operation has settled without parking: readiness
// had been noted already, or an error is pending.
template <Mode M>
bool IoOp<M>::park() {
    for (;;) {
        fdseq_ = pd_->fdseq();
        std::optional<PollError> now = pd_->netpollblock(M);
        if (!now) {
            if (pd_->netpollblockcommit(M, Waiter(this))) return true;
            now = pd_->netpollblock_resume(M, fdseq_);  // never, single-threaded: see netpollblockcommit
        }
        if (after_wait(*now)) return false;
    }
}

// Back from a wait: an error settles the operation (closed, timed out);
// otherwise try the system call again (Go's `continue` in fd.Read).
template <Mode M>
bool IoOp<M>::after_wait(PollError e) {
    if (e != PollError::none) {
        err_ = wait_error(e, fd_);
        return true;
    }
    return attempt();
}

// The scheduler runs this when the parked IoOp is runnable. The slot says why
// we are back; if the retry would block again (a deadline woke us but was
// moved before we ran; readiness the call did not find), park again, and the
// coroutine never knows. Otherwise resume it: await_resume hands it the result.
template <Mode M>
void IoOp<M>::wake(ParkedOp* self) {
    auto* op = static_cast<IoOp*>(self);
    if (op->after_wait(op->pd_->netpollblock_resume(M, op->fdseq_)) || !op->park()) resume(op->caller_);
}
// #endregion park

template class IoOp<Mode::read>;
template class IoOp<Mode::write>;

// #region close
Task<std::error_code> Conn::close() {
    if (!is_open()) co_return net_errc::closed;
    closing_ = true;
    // Go's pollUnblock: every wait on this fd fails from now on; the parked
    // waiters (another coroutine reading while we close) are made runnable.
    // The scheduler's shutdown may have done this already.
    bool others = pd_->closing() || sched_->poll_unblock(*pd_) > 0;
    // Let them run first (the run queue is FIFO): each finds out it was closed
    // and leaves the PollDesc, so none is parked when we free it and no fd
    // number is reused under a parked coroutine.
    if (others) co_await sched_->yield();
    sched_->poll_close(std::exchange(pd_, nullptr));  // EPOLL_CTL_DEL, then...
    fd_.reset();                                       // ...close(2)
    co_return std::error_code{};
}
// #endregion close

// Closing without waiting, for a Conn that is destroyed while open. Whoever
// was parked on it is woken ("closed"); it must not use this Conn again.
void Conn::close_now() noexcept {
    if (!pd_) return;
    if (!pd_->closing()) sched_->poll_unblock(*pd_);
    sched_->poll_close(std::exchange(pd_, nullptr));
    fd_.reset();
    closing_ = false;
}

void Conn::set_read_deadline(Clock::time_point t) {
    if (is_open()) sched_->set_deadline(*pd_, Mode::read, t);
}

void Conn::set_write_deadline(Clock::time_point t) {
    if (is_open()) sched_->set_deadline(*pd_, Mode::write, t);
}

Listener::Listener(Scheduler& sched, Fd listen_fd) {
    set_nonblocking(listen_fd.get());
    std::error_code ec;
    PollDesc* pd = sched.poll_open(listen_fd.get(), ec);
    if (!pd) throw std::system_error(ec, "netpoll_open(listener)");
    conn_ = Conn(sched, std::move(listen_fd), pd);
    reserve_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

// #region accept
Task<Accepted> Listener::accept() {
    if (!conn_.is_open()) co_return {Conn{}, net_errc::closed};
    PollDesc* pd = conn_.pd_;
    const int lfd = conn_.fd();
    if (auto err = wait_error(pd->poll_reset(Mode::read), lfd)) co_return {Conn{}, err};
    for (;;) {
        int fd = sys::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_) {
            reserve_.reset();  // free one descriptor, take the waiting client...
            fd = sys::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            reserve_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            if (fd >= 0 && !reserve_) {  // ...and if that used the last one, close it: it sees EOF at once
                sys::trace_note(fmt::format("fd {}: out of descriptors, closing the new client", fd));
                sys::close(fd);
                reserve_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
                continue;
            }
        }
        if (fd >= 0) {
            Fd owned(fd);
            std::error_code ec;
            PollDesc* cpd = conn_.sched_->poll_open(fd, ec);
            if (!cpd) co_return {Conn{}, ec};  // the poller refused it (ENOMEM, ENOSPC): closed by ~Fd
            co_return {Conn(*conn_.sched_, std::move(owned), cpd), {}};
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) co_return {Conn{}, from_errno(errno)};
        if (auto err = wait_error(co_await pd->wait(Mode::read), lfd)) co_return {Conn{}, err};
    }
}
// #endregion accept

}  // namespace course::runtime
