// conn.hpp, the net layer (named so as not to hide common/net.hpp): Listener
// and Conn, whose operations look blocking to the coroutine that awaits them
// and never block the thread (Go's net.Listener and net.Conn over
// internal/poll.FD).
//
// Each operation is Go's internal/poll loop (fd_unix.go):
//   try the system call;
//   EAGAIN: park on the pollDesc until the fd is ready, then try again;
//   anything else: that is the result.
// read and write_all run it in an IoOp (below), accept in a coroutine.
//
// Results are Go's (value, error) pairs: `auto [n, err] = co_await conn.read(buf);`
// with std::error_code for the error: net_errc::eof, closed, timeout, or the
// system error (ECONNRESET, EPIPE, ...).
#pragma once

#include "fd.hpp"
#include "poll_desc.hpp"
#include "waiter.hpp"
#include "task.hpp"

#include <array>
#include <cstddef>
#include <memory>
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

// No error, as std::error_code{} is, made once: constructing one calls
// std::system_category(), a function in libstdc++.so (a call through the
// PLT, and the registers saved around it). Each IoOp starts from a copy of
// this instead: 12 fewer instructions per echo round trip
// (tools/callgrind-roundtrip.sh).
inline const std::error_code kNoError{};

// #region recvbuffer
// RecvBuffer: what echo() reads into. No Go twin (Go's echo reads into one
// fixed slice); an adaptive receive buffer in the spirit of Netty's
// AdaptiveRecvByteBufAllocator, cut down to two sizes:
//   small  2 KiB inside the coroutine frame, what every connection has;
//   large  64 KiB on the heap, taken when a read fills the small buffer (the
//          peer sends more than a small buffer holds: bulk), and given back
//          when a read is about to park (the socket is drained: the
//          connection has gone quiet). RecvRead (below) does that.
// So an idle connection never holds the large buffer (it is parked in a
// read), and a 64-byte ping-pong never takes it (no allocation per round
// trip). The trade-off: a bulk transfer moves 64 KiB per read(2) and write(2)
// instead of 2 KiB (S3: 33 system calls per MiB instead of 1,026); in return,
// each time a bulk connection drains its socket it costs one free, and when
// it fills the small buffer again one malloc and one more 2 KiB read and
// write; and a connection whose reader is slow holds up to 64 KiB of echo
// while its write waits, not 2 KiB (chapter 06 holds up to 256 KiB).
class RecvBuffer {
public:
    static constexpr std::size_t kSmall = 2 * 1024;
    static constexpr std::size_t kLarge = 64 * 1024;

    RecvBuffer() = default;
    RecvBuffer(const RecvBuffer&) = delete;  // space_ may point into small_
    RecvBuffer& operator=(const RecvBuffer&) = delete;

    // Where the next read goes: the large buffer while we hold one, else the small one.
    std::span<char> space() const noexcept { return space_; }
    bool holds_large() const noexcept { return large_ != nullptr; }
    // The n bytes the last read put into space(). If they filled the small
    // buffer, the next read goes to a large one, taken now.
    std::span<const char> received(std::size_t n) {
        std::span<const char> got = space_.first(n);
        if (n == kSmall && !large_) grow();
        return got;
    }
    // A read into the large buffer is about to park: the large buffer goes
    // back, and the read waits with the small one.
    std::span<char> quiet() noexcept {
        large_.reset();
        return space_ = small_;
    }

private:
    void grow();  // takes the large buffer: the next reads go there

    std::array<char, kSmall> small_;
    std::unique_ptr<char[]> large_;
    std::span<char> space_{small_};
};
// #endregion recvbuffer

// #region ioop
// What read() and write_all() return: `auto [n, err] = co_await conn.read(buf);`
// (IoOp<Mode::read> and IoOp<Mode::write>: one class, two directions; no Go
// twin as a type: it is the loop of internal/poll's (*FD).Read and
// (*FD).Write, made an awaiter.)
//
// Go's loop is one function: prepare once; then loop: the system call;
// EAGAIN: wait for readiness (the goroutine parks inside the wait), then
// continue. Ours is the same loop in one function, step(), with one
// difference: where Go's goroutine parks inside the wait, step() parks the
// IoOp itself in the pollDesc's slot and returns "not done". No coroutine is
// made for that and nothing is allocated: the IoOp lives in the awaiting
// coroutine's frame.
//   await_ready    prepare (pollReset), then step(): done, or parked
//   await_suspend  parked: remember whose coroutine to resume
//   wake           the scheduler runs the parked IoOp: look at the slot (the
//                  tail of netpollblock), and step() again; resume the
//                  coroutine once done. Parked again: it never knows.
template <Mode M>
class [[nodiscard]] IoOp : ParkedOp {
public:
    using Buffer = std::conditional_t<M == Mode::read, char*, const char*>;

    // pd: the connection's pollDesc, or nullptr once it is closed (while
    // close() runs, the pollDesc says `closing` and pollReset fails).
    IoOp(pollDesc* pd, int fd, Buffer data, std::size_t size) noexcept
        : ParkedOp{&IoOp::wake}, pd_(pd), fd_(fd), data_(data), size_(size) {}
    IoOp(const IoOp&) = delete;
    IoOp& operator=(const IoOp&) = delete;

    bool await_ready();
    void await_suspend(std::coroutine_handle<> caller) noexcept { caller_ = caller; }
    IoResult await_resume() const noexcept { return {n_, err_}; }

protected:
    // For RecvRead: the read waits with another buffer.
    void retarget(std::span<char> buf) noexcept
        requires(M == Mode::read)
    {
        data_ = buf.data();
        size_ = buf.size();
    }

private:
    bool step();                       // the loop: true, done (n_, err_ set); false, parked
    int wait();                        // in step, on EAGAIN: pollWait up to the park
    static void wake(ParkedOp* self);  // no Go twin: what Go's goroutine does when gopark returns

    // wait()'s third answer, besides pollNoError and the error codes: the IoOp
    // is parked (no Go twin: there the goroutine parks inside the wait).
    static constexpr int parked = -1;

    pollDesc* pd_;
    int fd_;
    Buffer data_;
    std::size_t size_;
    std::size_t n_ = 0;  // bytes read, or written so far
    std::error_code err_ = kNoError;
    std::coroutine_handle<> caller_;  // set by await_suspend
    std::uintptr_t fdseq_ = 0;        // the pollDesc's fdseq when we parked; set by wait
};
// #endregion ioop

// #region recvread
// What Conn::read(RecvBuffer&) returns: an IoOp<Mode::read> into the
// buffer's space() that, if its coroutine parks, gives the large buffer back
// first (RecvBuffer::quiet) and waits with the small one. No Go twin.
class [[nodiscard]] RecvRead : public IoOp<Mode::read> {
public:
    RecvRead(pollDesc* pd, int fd, RecvBuffer& buf) noexcept
        : IoOp(pd, fd, buf.space().data(), buf.space().size()), buf_(&buf) {}

    void await_suspend(std::coroutine_handle<> caller) noexcept {
        IoOp::await_suspend(caller);
        if (buf_->holds_large()) retarget(buf_->quiet());
    }

private:
    RecvBuffer* buf_;
};
// #endregion recvread

class Conn {
public:
    Conn() = default;
    Conn(Scheduler& sched, Fd fd, pollDesc* pd) : sched_(&sched), pd_(pd), fd_(std::move(fd)) {}
    Conn(Conn&& other) noexcept;
    Conn& operator=(Conn&& other) noexcept;
    ~Conn();  // closes if still open (without waiting: see close())

    // Some bytes into `buf`: n > 0, or an error (eof when the peer half-closed).
    IoOp<Mode::read> read(std::span<char> buf) { return {pd_, fd(), buf.data(), buf.size()}; }
    // The same into a RecvBuffer's space(), which gives its large buffer back
    // if the read has to wait.
    RecvRead read(RecvBuffer& buf) { return {pd_, fd(), buf}; }
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

    // In this order Conn takes 24 bytes, not 32: it lives in every
    // connection's coroutine frame.
    Scheduler* sched_ = nullptr;
    pollDesc* pd_ = nullptr;
    Fd fd_;
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
    Conn conn_;  // the listening socket, with its pollDesc
    Fd reserve_;
};

}  // namespace course::runtime
