// conn.hpp, the net layer (named so as not to hide common/net.hpp): Listener and Conn, whose operations look blocking to the
// coroutine that awaits them and never block the thread (Go's net.Listener
// and net.Conn over internal/poll.FD).
//
// Each operation is Go's internal/poll loop (fd_unix.go):
//   try the system call;
//   EAGAIN: park on the PollDesc until the fd is ready (co_await pd.wait),
//           then try again;
//   anything else: that is the result.
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
// What read() and write_all() return: `co_await` it at once.
//
// The operation is tried when read()/write_all() is called, as a plain
// function call. If that settles it (the socket buffer had room: the usual
// write; data was already waiting: a read under load), the result is stored
// here, await_ready() says "don't suspend", and no coroutine frame was made.
// Only when the call would block does IoOp hold a child Task, the slow path,
// which is Go's loop: park on the PollDesc, retry when woken. Awaiting IoOp
// then runs that Task. (The first version made every read and write_all a
// Task; the README measures what that cost.)
class [[nodiscard]] IoOp {
public:
    explicit IoOp(IoResult done) : done_(done) {}
    explicit IoOp(Task<IoResult> slow) : slow_(std::move(slow)) {}

    bool await_ready() const noexcept { return !slow_.valid(); }
    void await_suspend(std::coroutine_handle<> self) noexcept { slow_.start(self); }
    IoResult await_resume() { return slow_.valid() ? slow_.result() : done_; }

private:
    IoResult done_;
    Task<IoResult> slow_;
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
    IoOp read(std::span<char> buf);
    // All of `data`, or an error and how much was written before it.
    IoOp write_all(std::span<const char> data);
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
    // One attempt of the system call; false: it would block (EAGAIN).
    bool try_read(std::span<char> buf, IoResult& r);
    bool try_write(std::span<const char> data, IoResult& r);
    // The slow paths: park, retry, until done (Go's internal/poll loop).
    Task<IoResult> read_slow(std::span<char> buf);
    Task<IoResult> write_slow(std::span<const char> data, std::size_t done);
    // What a wait that did not end in readiness means (none: no error).
    std::error_code wait_error(PollError e) const {
        return e == PollError::none ? std::error_code{} : wait_error_slow(e);
    }
    std::error_code wait_error_slow(PollError e) const;

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
