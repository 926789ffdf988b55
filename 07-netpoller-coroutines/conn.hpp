// conn.hpp, the net layer (named so as not to hide common/net.hpp): Listener
// and Conn, whose operations look blocking to the coroutine that awaits them
// and never block the thread (Go's net.Listener and net.Conn over
// internal/poll.FD).
//
// Each operation is Go's internal/poll loop (fd_unix.go):
//   try the system call;
//   EAGAIN: park on the PollDesc until the fd is ready, then try again;
//   anything else: that is the result.
// read and write_all run it in an IoOp (below), accept in a coroutine.
//
// Results are Go's (value, error) pairs: `auto [n, err] = co_await conn.read(buf);`
// with std::error_code for the error: net_errc::eof, closed, timeout, or the
// system error (ECONNRESET, EPIPE, ...).
#pragma once

#include "fd.hpp"
#include "poll_desc.hpp"
#include "task.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>

namespace course::runtime {

class Scheduler;

// #region errors
enum class net_errc {
    eof = 1,       // Go: io.EOF, the peer shut down its writing side
    closed,        // Go: net.ErrClosed, "use of closed network connection"
    timeout,       // Go: os.ErrDeadlineExceeded, "i/o timeout"
    not_pollable,  // Go: poll.ErrNotPollable (an EPOLLERR-only event and no socket error)
};
const std::error_category& net_category() noexcept;
inline std::error_code make_error_code(net_errc e) noexcept { return {static_cast<int>(e), net_category()}; }
// #endregion errors

}  // namespace course::runtime

template <>
struct std::is_error_code_enum<course::runtime::net_errc> : std::true_type {};

namespace course::runtime {

struct IoResult {
    std::size_t n = 0;
    std::error_code err;
};

// #region ioop
// What read() and write_all() return: `auto [n, err] = co_await conn.read(buf);`
// (IoOp<Mode::read> and IoOp<Mode::write>: one class, two directions.)
//
// Awaiting it runs Go's internal/poll loop with no coroutine of its own:
//   await_ready    Go's prepareRead (pollReset), then the system call, as a
//                  plain function call. If that settles it (data was waiting,
//                  the write fit, an error), the coroutine does not suspend.
//   await_suspend  it would block (EAGAIN): park on the PollDesc. What the
//                  slot holds is this IoOp (a ParkedOp), not the coroutine.
//   wake           netpoll, close or a deadline made it runnable, and the
//                  scheduler runs it: try the call again; resume the coroutine
//                  only once there is a result; EAGAIN again: park again.
// The IoOp lives in the awaiting coroutine's frame while it is parked, so
// parking allocates nothing and costs no memory beyond that frame.
template <Mode M>
class [[nodiscard]] IoOp : ParkedOp {
public:
    using Buffer = std::conditional_t<M == Mode::read, char*, const char*>;

    // pd: the connection's PollDesc, or nullptr once it is closed (while
    // close() runs, the PollDesc says `closing` and poll_reset fails).
    IoOp(PollDesc* pd, int fd, Buffer data, std::size_t size) noexcept
        : ParkedOp{&IoOp::wake}, pd_(pd), fd_(fd), data_(data), size_(size) {}
    IoOp(const IoOp&) = delete;
    IoOp& operator=(const IoOp&) = delete;

    bool await_ready() { return start(); }
    bool await_suspend(std::coroutine_handle<> self) {
        caller_ = self;
        return park();  // false: settled after all (readiness was noted, or an error is pending)
    }
    IoResult await_resume() const noexcept { return {n_, err_}; }

private:
    bool start();                  // true: settled, no need to suspend
    bool attempt();                // the system call; false: it would block (EAGAIN)
    bool park();                   // true: parked; false: settled
    bool after_wait(PollError e);  // an error settles it; else attempt() again
    static void wake(ParkedOp* self);

    PollDesc* pd_;
    int fd_;
    Buffer data_;
    std::size_t size_;
    std::size_t n_ = 0;  // bytes read, or written so far
    std::error_code err_;
    std::coroutine_handle<> caller_;  // set by await_suspend
    std::uint64_t fdseq_;             // the PollDesc's fdseq when we parked; set by park
};
// #endregion ioop

class Conn {
public:
    Conn() = default;
    Conn(Scheduler& sched, Fd fd, PollDesc* pd) : sched_(&sched), fd_(std::move(fd)), pd_(pd) {}
    Conn(Conn&& other) noexcept;
    Conn& operator=(Conn&& other) noexcept;
    ~Conn();  // closes if still open (without waiting: see close())

    // Some bytes into `buf`: n > 0, or an error (eof when the peer half-closed).
    IoOp<Mode::read> read(std::span<char> buf) { return {pd_, fd(), buf.data(), buf.size()}; }
    // All of `data`, or an error and how much was written before it.
    IoOp<Mode::write> write_all(std::span<const char> data) { return {pd_, fd(), data.data(), data.size()}; }
    // Go's fd.Close: wakes every coroutine parked on this connection (they get
    // `closed`), lets them run, then unregisters and closes the fd. Later
    // operations fail with `closed` at once. Closing twice: `closed`.
    Task<std::error_code> close();

    // Go's SetReadDeadline / SetWriteDeadline: an absolute time after which
    // the operation fails with `timeout`; kNoDeadline clears it; a time in
    // the past wakes a parked operation at once.
    void set_read_deadline(Clock::time_point t);
    void set_write_deadline(Clock::time_point t);

    int fd() const { return fd_.get(); }
    bool is_open() const { return pd_ != nullptr && !closing_; }

private:
    friend class Listener;
    void close_now() noexcept;

    Scheduler* sched_ = nullptr;
    Fd fd_;
    PollDesc* pd_ = nullptr;
    bool closing_ = false;
};

struct Accepted {
    Conn conn;
    std::error_code err;
};

class Listener {
public:
    // Takes a listening socket (made non-blocking here) and registers it.
    // Throws std::system_error if the poller refuses it.
    Listener(Scheduler& sched, Fd listen_fd);

    // The next client, as a Conn already registered with the poller. Out of
    // descriptors (EMFILE): the reserved-fd trick of chapter 06, so the
    // waiting client is closed at once instead of making accept spin.
    Task<Accepted> accept();
    Task<std::error_code> close() { return conn_.close(); }
    int fd() const { return conn_.fd(); }

private:
    Conn conn_;  // the listening socket, with its PollDesc
    Fd reserve_;
};

}  // namespace course::runtime
