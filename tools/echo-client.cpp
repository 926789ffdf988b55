// echo-client: sends each message to an echo server, prints what comes back,
// then half-closes the connection and waits for the server to close its side.
//
//   echo-client --port 8080 hello "second message"
//
// Used by `tools/course run` to show a chapter's server at work; handy in class
// next to `nc 127.0.0.1 PORT`.
#include "fd.hpp"
#include "net.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course;

namespace {

int usage(const char* why) {
    fmt::print(stderr, "echo-client: {}\nusage: echo-client [--host ADDR] --port N MESSAGE...\n", why);
    return 2;
}

bool read_exactly(int fd, char* buf, size_t len) {
    while (len > 0) {
        ssize_t n = ::read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        buf += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

bool write_all(int fd, const char* data, size_t len) {
    while (len > 0) {
        ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        data += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = -1;
    std::vector<std::string> messages;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if ((arg == "--host" || arg == "--port") && i + 1 >= argc) return usage("missing value");
        if (arg == "--host") {
            host = argv[++i];
        } else if (arg == "--port") {
            std::string v = argv[++i];
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
            if (ec != std::errc() || end != v.data() + v.size() || port < 1 || port > 65535)
                return usage("--port expects a number from 1 to 65535");
        } else if (arg == "--help") {
            fmt::print("usage: echo-client [--host ADDR] --port N MESSAGE...\n");
            return 0;
        } else if (arg.rfind("--", 0) == 0) {
            return usage(fmt::format("unknown argument '{}'", arg).c_str());
        } else {
            messages.push_back(arg);
        }
    }
    if (port < 0) return usage("--port is required");

    try {
        Fd conn = connect_tcp(host, static_cast<std::uint16_t>(port));
        fmt::print("connected to {} from {}\n", peer_address(conn.get()), local_address(conn.get()));
        for (const auto& m : messages) {
            std::string back(m.size(), '\0');
            if (!write_all(conn.get(), m.data(), m.size()) || !read_exactly(conn.get(), back.data(), back.size())) {
                fmt::print(stderr, "echo-client: the server closed the connection early\n");
                return 1;
            }
            fmt::print("sent {:?} ({} bytes), got back {:?}{}\n", m, m.size(), back, back == m ? "" : "  MISMATCH");
            if (back != m) return 1;
        }
        ::shutdown(conn.get(), SHUT_WR);
        fmt::print("half-closed (shutdown SHUT_WR): waiting for the server to close\n");
        char byte;
        ssize_t n;
        do n = ::read(conn.get(), &byte, 1);
        while (n < 0 && errno == EINTR);
        if (n != 0) {
            fmt::print(stderr, "echo-client: expected EOF, got {}\n", n < 0 ? std::strerror(errno) : "data");
            return 1;
        }
        fmt::print("server closed the connection: done\n");
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo-client: {}\n", e.what());
        return 1;
    }
    return 0;
}
