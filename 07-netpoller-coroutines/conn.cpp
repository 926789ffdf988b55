#include "conn.hpp"

#include "net.hpp"  // common: set_nonblocking
#include "scheduler.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
// Go's convertErr (internal/poll/fd_poll_runtime.go): what a pollReset or
// pollWait error code means to the caller. Go's second argument says whether
// the fd is a file (a closed file and a closed network connection are
// different errors there); ours is the fd itself, looked at only for
// pollErrNotPollable, which Go reports as ErrNotPollable as it is.
static std::error_code convertErr(int res, int fd) {
    switch (res) {
        case pollNoError: return {};
        case pollErrClosing: return net_errc::closed;
        case pollErrTimeout: return net_errc::timeout;
        case pollErrNotPollable: {
            // Only EPOLLERR came: the socket's pending error says more, if it has one.
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) return from_errno(err);
            return net_errc::not_pollable;
        }
    }
    fatal("unexpected poll error code");  // Go panics here too
}
// #endregion errmap

void RecvBuffer::grow() {
    large_ = std::make_unique_for_overwrite<char[]>(kLarge);
    space_ = {large_.get(), kLarge};
}

Conn::Conn(Conn&& other) noexcept
    : sched_(other.sched_), pd_(std::exchange(other.pd_, nullptr)), fd_(std::move(other.fd_)),
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

// Go's ignoringEINTRIO: the system call again for as long as a signal interrupts it.
template <class Call, class Buffer>
static ssize_t ignoringEINTRIO(Call call, int fd, Buffer p, std::size_t n) {
    for (;;) {
        ssize_t r = call(fd, p, n);
        if (r >= 0 || errno != EINTR) return r;
    }
}

// await_ready: Go's prepareRead / prepareWrite (pollReset: fail at once if
// the fd is closing or the deadline has passed), done once, then the loop.
template <Mode M>
bool IoOp<M>::await_ready() {
    if (!pd_) {
        err_ = net_errc::closed;
        return true;
    }
    if (M == Mode::read && size_ == 0) return true;  // nothing asked, nothing done (as Go's Read)
    if (int res = poll_runtime_pollReset(pd_, M); res != pollNoError) {
        err_ = convertErr(res, fd_);
        return true;
    }
    return step();  // done without suspending, or parked
}

// #region read
// Go's (*FD).Read (internal/poll/fd_unix.go) after its prepareRead, step by
// step beside ours:
//   Go                                                ours
//   loop:                                             for (;;)
//     read(2), again while EINTR (ignoringEINTRIO)      n = ignoringEINTRIO(read)
//     an error:                                         n < 0:
//       EAGAIN: waitRead; no error: continue              EAGAIN: wait(): ready: continue;
//                                                           parked: return "not done"
//       else (or waitRead's error): that error            else err_
//     0 bytes and no error: io.EOF (eofError)           n == 0: eof
//     return n, err                                     return "done"
template <>
bool IoOp<Mode::read>::step() {
    for (;;) {
        ssize_t n = ignoringEINTRIO(sys::read, fd_, data_, size_);
        if (n < 0) {
            if (errno == EAGAIN) {  // EWOULDBLOCK is EAGAIN on Linux
                int res = wait();
                if (res == pollNoError) continue;
                if (res == parked) return false;
                err_ = convertErr(res, fd_);
            } else {
                err_ = from_errno(errno);
            }
        } else if (n == 0) {
            err_ = net_errc::eof;
        } else {
            n_ = static_cast<std::size_t>(n);
        }
        return true;
    }
}
// #endregion read

// #region write
// Go's (*FD).Write after its prepareWrite, the same way:
//   Go                                                ours
//   loop:                                             while not all written
//     write(2) of the rest, again while EINTR           n = ignoringEINTRIO(write)
//     n > 0: add it to what is written                  n >= 0: n_ += n
//     all written: return                               (the loop's condition)
//     EAGAIN: waitWrite; no error: continue             EAGAIN: wait(): ready: continue;
//                                                         parked: return "not done"
//     an error (or waitWrite's): return it              err_
//     0 bytes: io.ErrUnexpectedEOF                      (none: a socket never writes 0 of n > 0)
template <>
bool IoOp<Mode::write>::step() {
    while (n_ < size_) {
        ssize_t n = ignoringEINTRIO(sys::write, fd_, data_ + n_, size_ - n_);
        if (n >= 0) {
            n_ += static_cast<std::size_t>(n);  // maybe fewer than asked: write the rest
            continue;
        }
        if (errno != EAGAIN) {
            err_ = from_errno(errno);
            return true;
        }
        int res = wait();
        if (res == parked) return false;
        if (res != pollNoError) {
            err_ = convertErr(res, fd_);
            return true;
        }
    }
    return true;
}
// #endregion write

// #region park
// fd.pd.waitRead / waitWrite, that is poll_runtime_pollWait, up to the point
// where Go's goroutine parks: the pending error, if any; readiness noted
// while nobody waited (pollNoError: try again at once); or park, which here
// means that the slot holds this IoOp (netpollblockcommit; gopark would
// commit the goroutine). Nothing can run between this and the coroutine's
// suspension (await_suspend), so the commit cannot wait until then.
template <Mode M>
int IoOp<M>::wait() {
    int errcode = netpollcheckerr(pd_, M);
    if (errcode != pollNoError) return errcode;
    if (netpollblock(pd_, M)) return pollNoError;
    fdseq_ = pd_->fdseq;
    netpollblockcommit(Waiter(this), M == Mode::read ? &pd_->rg : &pd_->wg);  // succeeds: the slot was just set to pdWait
    return parked;
}

// The scheduler runs this when the parked IoOp is runnable: look at the slot
// (the tail of netpollblock after gopark, after_gopark), then step again,
// that is, continue Go's loop. If the system call would block again (a
// deadline woke us but was moved before we ran), step parks again and the
// coroutine never knows; otherwise resume it: await_resume hands it the result.
template <Mode M>
void IoOp<M>::wake(ParkedOp* self) {
    auto* op = static_cast<IoOp*>(self);
    if (int res = after_gopark(op->pd_, M, op->fdseq_); res != pollNoError) op->err_ = convertErr(res, op->fd_);
    else if (!op->step()) return;  // parked again
    resume(op->caller_);
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
    bool others = pd_->closing || sched_->runtime_pollUnblock(pd_) > 0;
    // Let them run first (the run queue is FIFO): each finds out it was closed
    // and leaves the pollDesc, so none is parked when we free it and no fd
    // number is reused under a parked coroutine.
    if (others) co_await sched_->Gosched();
    sched_->runtime_pollClose(std::exchange(pd_, nullptr));  // EPOLL_CTL_DEL, then...
    fd_.reset();                                       // ...close(2)
    co_return std::error_code{};
}
// #endregion close

// Closing without waiting, for a Conn that is destroyed while open. Whoever
// was parked on it is woken ("closed"); it must not use this Conn again.
void Conn::close_now() noexcept {
    if (!pd_) return;
    if (!pd_->closing) sched_->runtime_pollUnblock(pd_);
    sched_->runtime_pollClose(std::exchange(pd_, nullptr));
    fd_.reset();
    closing_ = false;
}

void Conn::set_read_deadline(Clock::time_point t) {
    if (is_open()) sched_->runtime_pollSetDeadline(pd_, t, Mode::read);
}

void Conn::set_write_deadline(Clock::time_point t) {
    if (is_open()) sched_->runtime_pollSetDeadline(pd_, t, Mode::write);
}

Listener::Listener(Scheduler& sched, Fd listen_fd) {
    set_nonblocking(listen_fd.get());
    auto [pd, errno_] = sched.runtime_pollOpen(listen_fd.get());
    if (!pd) throw std::system_error(from_errno(errno_), "netpollopen(listener)");
    conn_ = Conn(sched, std::move(listen_fd), pd);
    reserve_ = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

// #region accept
Task<Accepted> Listener::accept() {
    if (!conn_.is_open()) co_return {Conn{}, net_errc::closed};
    pollDesc* pd = conn_.pd_;
    const int lfd = conn_.fd();
    if (auto err = convertErr(poll_runtime_pollReset(pd, Mode::read), lfd)) co_return {Conn{}, err};
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
            // Go's newTCPConn: Nagle's algorithm off (setNoDelay), so the
            // second write of an echo larger than one read does not wait for
            // the ACK of the first. A failure changes only timing: ignored.
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            auto [cpd, errno_] = conn_.sched_->runtime_pollOpen(fd);
            if (!cpd) co_return {Conn{}, from_errno(errno_)};  // the poller refused it (ENOMEM, ENOSPC): closed by ~Fd
            co_return {Conn(*conn_.sched_, std::move(owned), cpd), {}};
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) co_return {Conn{}, from_errno(errno)};
        if (auto err = convertErr(co_await poll_runtime_pollWait(pd, Mode::read), lfd)) co_return {Conn{}, err};
    }
}
// #endregion accept

}  // namespace course::runtime
