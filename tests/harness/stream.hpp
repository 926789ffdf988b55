// Bulk transfers for tests that fill every buffer between a client and a
// server: a sender thread that never reads, a receiver that checks a long
// echo without keeping it, and a client whose echo comes back through narrow
// buffers, so that the server's writes fail soon (EAGAIN).
#pragma once

#include "client.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace course::test {

// Streams `total` bytes (`block` repeated) to `fd` from its own thread, and
// never reads. It reports a stall when it finds no room to send for 300 ms:
// the socket buffers both ways and the server's buffer for this client are
// then full, and the server has stopped reading from it. When everything is
// sent, it half-closes, unless told not to. `block` must outlive the sender.
class StreamSender {
public:
    enum class AtEnd { half_close, stay_open };
    StreamSender(int fd, const std::string& block, size_t total, AtEnd at_end = AtEnd::half_close)
        : thread_([this, fd, &block, total, at_end] { run(fd, block, total, at_end); }) {}
    ~StreamSender();  // a test that failed half-way: stops within one poll timeout
    StreamSender(const StreamSender&) = delete;
    StreamSender& operator=(const StreamSender&) = delete;

    // True once the sender has stalled; false if it finished first or the timeout passed.
    bool wait_until_stalled(Millis timeout);
    // Waits for the sender to end (all sent, an error, or its own 100 s deadline); returns the bytes sent.
    size_t wait_sent(Millis timeout);
    size_t sent();

private:
    void run(int fd, const std::string& block, size_t total, AtEnd at_end);

    std::mutex mu_;
    std::condition_variable cv_;
    size_t sent_ = 0;
    bool stalled_ = false, over_ = false;
    std::atomic<bool> quit_{false};
    std::thread thread_;  // last: starts after the members it uses exist
};

// Receives up to `total` bytes and checks each piece against `block` repeated,
// at the piece's offset, without keeping what arrived. Returns the number of
// bytes that arrived and matched; stops at the first difference (`mismatch`),
// EOF, an error, the timeout, or when nothing arrives for `idle`.
size_t receive_repeated_block(int fd, const std::string& block, size_t total, Millis timeout, Millis idle,
                              bool& mismatch);

// A client of 127.0.0.1:port whose echo comes back through narrow buffers: a
// 4 KiB receive buffer (the kernel doubles it) and 1 KiB segments, both set
// before connect: the window is sized then, and the segment size is announced
// in the SYN. The server's kernel sizes its send buffer for the connection
// from that segment size (it held 78 KiB here, where loopback's 64 KiB
// segments give 2-4 MiB), so a client that does not read soon makes the
// server's writes fail (EAGAIN), and the rest of the echo waits in the
// server's own buffer. Throws on failure.
Fd connect_through_narrow_buffers(std::uint16_t port);

}  // namespace course::test
