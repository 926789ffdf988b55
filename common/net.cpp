#include "net.hpp"

#include "sys.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

namespace course {

namespace {

// Resolves host:port to one socket address; numeric addresses never touch DNS.
addrinfo* resolve(const std::string& host, std::uint16_t port, int flags) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        throw std::runtime_error(fmt::format("bad address '{}': {}", host, ::gai_strerror(rc)));
    }
    return res;
}

std::string format_address(const sockaddr_storage& ss) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
        ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
        return fmt::format("[{}]:{}", text, ntohs(a.sin6_port));
    }
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(a.sin_port));
}

}  // namespace

Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog) {
    addrinfo* ai = resolve(host, port, AI_PASSIVE);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(ai, ::freeaddrinfo);
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) throw_errno("socket");
    // SO_REUSEADDR: a restarted server can bind its port again while the old
    // connections still sit in TIME_WAIT. It does not let two servers share a
    // listening port; that would be SO_REUSEPORT, which we do not want.
    int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) throw_errno("setsockopt SO_REUSEADDR");
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) throw_errno(fmt::format("bind {}:{}", host, port));
    if (::listen(fd.get(), backlog) < 0) throw_errno("listen");
    return fd;
}

Fd connect_tcp(const std::string& host, std::uint16_t port) {
    addrinfo* ai = resolve(host, port, 0);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(ai, ::freeaddrinfo);
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) throw_errno("socket");
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    // Interrupted, the connection goes on in the background; a second connect()
    // waits for it, and says EISCONN if it completed in between.
    while (rc < 0 && errno == EINTR) {
        rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EISCONN) rc = 0;
    }
    if (rc < 0) throw_errno(fmt::format("connect {}:{}", host, port));
    return fd;
}

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw_errno(fmt::format("fcntl O_NONBLOCK fd={}", fd));
}

std::string local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) throw_errno("getsockname");
    return format_address(ss);
}

std::string peer_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "(unknown peer)";
    return format_address(ss);
}

std::uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) throw_errno("getsockname");
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(ss).sin_port);
}

void print_ready_line(int listen_fd) {
    std::string line = fmt::format("listening on {}\n", local_address(listen_fd));
    std::fputs(line.c_str(), stdout);
    std::fflush(stdout);
}

}  // namespace course
