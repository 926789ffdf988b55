#include "stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace course::test {

using Clock = std::chrono::steady_clock;

StreamSender::~StreamSender() {
    quit_ = true;
    thread_.join();
}

bool StreamSender::wait_until_stalled(Millis timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return stalled_ || over_; });
    return stalled_;
}

size_t StreamSender::wait_sent(Millis timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return over_; });
    return sent_;
}

size_t StreamSender::sent() {
    std::lock_guard lock(mu_);
    return sent_;
}

void StreamSender::run(int fd, const std::string& block, size_t total, AtEnd at_end) {
    auto deadline = Clock::now() + 100s;
    size_t sent = 0;
    while (sent < total && !quit_ && Clock::now() < deadline) {
        size_t offset = sent % block.size();
        size_t len = std::min(block.size() - offset, total - sent);
        ssize_t n = ::send(fd, block.data() + offset, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            std::lock_guard lock(mu_);
            sent_ = sent;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 300) == 0) {
            std::lock_guard lock(mu_);
            stalled_ = true;
            cv_.notify_all();
        }
    }
    if (sent == total && at_end == AtEnd::half_close) half_close(fd);
    std::lock_guard lock(mu_);
    over_ = true;
    cv_.notify_all();
}

size_t receive_repeated_block(int fd, const std::string& block, size_t total, Millis timeout, Millis idle,
                              bool& mismatch) {
    auto deadline = Clock::now() + timeout;
    std::string buf(block.size(), '\0');
    size_t received = 0;
    mismatch = false;
    while (received < total) {
        ssize_t n = ::recv(fd, buf.data(), std::min(buf.size(), total - received), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            auto left = std::min(std::chrono::duration_cast<Millis>(deadline - Clock::now()), idle).count();
            pollfd p{fd, POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0) break;
            continue;
        }
        if (n <= 0) break;  // EOF or error
        for (size_t done = 0; done < static_cast<size_t>(n);) {
            size_t offset = (received + done) % block.size();
            size_t len = std::min(static_cast<size_t>(n) - done, block.size() - offset);
            const char* piece = buf.data() + done;
            if (auto [at, _] = std::mismatch(piece, piece + len, block.data() + offset); at != piece + len) {
                mismatch = true;
                return received + done + static_cast<size_t>(at - piece);
            }
            done += len;
        }
        received += static_cast<size_t>(n);
    }
    return received;
}

Fd connect_through_narrow_buffers(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    const int rcvbuf = 4096, mss = 1024;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0 ||
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) < 0)
        throw std::runtime_error(fmt::format("setsockopt: {}", std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    while (rc < 0 && errno == EINTR) {  // as in connect_tcp(): the second call waits for the first
        rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        if (rc < 0 && errno == EISCONN) rc = 0;
    }
    if (rc < 0) throw std::runtime_error(fmt::format("connect: {}", std::strerror(errno)));
    return fd;
}

}  // namespace course::test
