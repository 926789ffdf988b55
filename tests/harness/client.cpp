#include "client.hpp"

#include "net.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace course::test {

using Clock = std::chrono::steady_clock;

namespace {

// poll(2) for `events` until `deadline`; returns revents, 0 on timeout.
short wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        pollfd p{fd, events, 0};
        int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
        if (rc < 0 && errno == EINTR) continue;
        return rc > 0 ? p.revents : 0;
    }
}

}  // namespace

Fd connect_to(std::uint16_t port) { return connect_tcp("127.0.0.1", port); }

bool send_all(int fd, std::string_view data, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLOUT, deadline) == 0) return false;
        } else {
            return false;
        }
    }
    return true;
}

std::string recv_exactly(int fd, size_t n, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    std::string got;
    char buf[65536];
    while (got.size() < n) {
        ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - got.size()), MSG_DONTWAIT);
        if (r > 0) {
            got.append(buf, static_cast<size_t>(r));
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_for(fd, POLLIN, deadline) == 0) break;
        } else {
            break;  // EOF or error
        }
    }
    return got;
}

bool nothing_arrives(int fd, Millis window) { return wait_for(fd, POLLIN, Clock::now() + window) == 0; }

PeerEnd wait_closed(int fd, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        char byte;
        ssize_t r = ::recv(fd, &byte, 1, MSG_DONTWAIT);
        if (r == 0) return PeerEnd::eof;
        if (r > 0) return PeerEnd::data;
        if (errno == ECONNRESET) return PeerEnd::reset;
        if (errno != EAGAIN && errno != EINTR) return PeerEnd::reset;
        if (wait_for(fd, POLLIN, deadline) == 0) return PeerEnd::timeout;
    }
}

const char* to_string(PeerEnd e) {
    switch (e) {
        case PeerEnd::eof: return "eof";
        case PeerEnd::reset: return "reset";
        case PeerEnd::timeout: return "timeout";
        case PeerEnd::data: return "data";
    }
    return "?";
}

bool echo_session(std::uint16_t port, std::string_view message, Millis timeout) {
    Fd conn = connect_to(port);
    if (!send_all(conn.get(), message, timeout) || recv_exactly(conn.get(), message.size(), timeout) != message)
        return false;
    half_close(conn.get());
    return wait_closed(conn.get(), timeout) == PeerEnd::eof;
}

void half_close(int fd) { ::shutdown(fd, SHUT_WR); }

void abort_close(Fd& fd) {
    linger lg{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    fd.reset();
}

std::string exchange(int fd, std::string_view payload, std::mt19937& rng, size_t max_chunk, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    std::uniform_int_distribution<size_t> chunk(1, max_chunk);
    std::string got;
    got.reserve(payload.size());
    size_t sent = 0;
    char buf[65536];
    while (got.size() < payload.size()) {
        short want = POLLIN | (sent < payload.size() ? POLLOUT : 0);
        short ready = wait_for(fd, want, deadline);
        if (ready == 0) break;  // timeout
        if (ready & POLLOUT) {
            size_t len = std::min(chunk(rng), payload.size() - sent);
            ssize_t n = ::send(fd, payload.data() + sent, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) sent += static_cast<size_t>(n);
            else if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        }
        if (ready & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) got.append(buf, static_cast<size_t>(n));
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
        }
    }
    return got;
}

std::string random_bytes(size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng() & 0xff);
    return s;
}

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

int thread_count(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
    return -1;
}

int open_fd_count(pid_t pid) {
    std::error_code ec;
    int n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return ec ? -1 : n;
}

long current_syscall(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
    std::string first;
    if (!(in >> first) || first == "running") return -1;
    return std::stol(first);
}

bool wait_until_in_syscall(pid_t pid, long nr, Millis timeout) {
    return eventually([&] { return current_syscall(pid) == nr; }, timeout);
}

bool eventually(const std::function<bool()>& condition, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() > deadline) return false;
        ::usleep(1000);  // polling a state that has no event to wait on; bounded by the deadline
    }
    return true;
}

double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    auto close = text.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoll(field);
        if (i == 15) stime = std::stoll(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace course::test
