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
// convertErr in fd_poll_runtime.go).
std::error_code Conn::wait_error_slow(PollError e) const {
    switch (e) {
        case PollError::none: return {};
        case PollError::closing: return net_errc::closed;
        case PollError::timeout: return net_errc::timeout;
        case PollError::not_pollable: {
            // Only EPOLLERR came: the socket's pending error says more, if it has one.
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) return from_errno(err);
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
IoOp Conn::read(std::span<char> buf) {
    if (!is_open()) return IoOp({0, net_errc::closed});
    if (buf.empty()) return IoOp(IoResult{});
    if (auto err = wait_error(pd_->poll_reset(Mode::read))) return IoOp({0, err});
    IoResult r;
    if (try_read(buf, r)) return IoOp(r);  // the fast path: no coroutine frame, no scheduler
    return IoOp(read_slow(buf));
}

// Go's loop in internal/poll, from its first EAGAIN on.
Task<IoResult> Conn::read_slow(std::span<char> buf) {
    IoResult r;
    do {
        // Nothing to read: park until netpoll, a deadline or close hands us back.
        // If readiness was noted already, this completes without suspending.
        if (auto err = wait_error(co_await pd_->wait(Mode::read))) co_return {0, err};
    } while (!try_read(buf, r));  // woken for nothing (a deadline that moved): park again
    co_return r;
}

bool Conn::try_read(std::span<char> buf, IoResult& r) {
    for (;;) {
        ssize_t n = sys::read(fd_.get(), buf.data(), buf.size());
        if (n > 0) r = {static_cast<std::size_t>(n), {}};
        else if (n == 0) r = {0, net_errc::eof};
        else if (errno == EINTR) continue;
        else if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        else r = {0, from_errno(errno)};
        return true;
    }
}
// #endregion read

// #region write
IoOp Conn::write_all(std::span<const char> data) {
    if (!is_open()) return IoOp({0, net_errc::closed});
    if (auto err = wait_error(pd_->poll_reset(Mode::write))) return IoOp({0, err});
    IoResult r;
    if (try_write(data, r)) return IoOp(r);   // the fast path: all written at once
    return IoOp(write_slow(data, r.n));       // r.n bytes are out; the socket buffer is full
}

Task<IoResult> Conn::write_slow(std::span<const char> data, std::size_t done) {
    IoResult r{done, {}};
    do {
        // Park until the peer has read some of what we sent. This is
        // backpressure: the coroutine that waits here is not reading.
        if (auto err = wait_error(co_await pd_->wait(Mode::write))) co_return {r.n, err};
    } while (!try_write(data, r));
    co_return r;
}

// Writes from data[r.n] on until all is written (true), an error (true,
// r.err set), or the socket buffer is full (false).
bool Conn::try_write(std::span<const char> data, IoResult& r) {
    while (r.n < data.size()) {
        ssize_t n = sys::write(fd_.get(), data.data() + r.n, data.size() - r.n);
        if (n >= 0) {
            r.n += static_cast<std::size_t>(n);  // maybe fewer than asked: write the rest
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        r.err = from_errno(errno);
        break;
    }
    return true;
}
// #endregion write

// #region close
Task<std::error_code> Conn::close() {
    if (!is_open()) co_return net_errc::closed;
    closing_ = true;
    // Go's pollUnblock: every wait on this fd fails from now on; the parked
    // waiters (another coroutine reading while we close) are made runnable.
    // The scheduler's shutdown may have done this already.
    bool others = pd_->closing();
    if (!others) {
        WaiterList woken;
        pd_->poll_unblock(woken);
        others = !woken.empty();
        sched_->inject(woken);
    }
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
    if (!pd_->closing()) {
        WaiterList woken;
        pd_->poll_unblock(woken);
        sched_->inject(woken);
    }
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
    if (auto err = conn_.wait_error(pd->poll_reset(Mode::read))) co_return {Conn{}, err};
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
        if (auto err = conn_.wait_error(co_await pd->wait(Mode::read))) co_return {Conn{}, err};
    }
}
// #endregion accept

}  // namespace course::runtime
