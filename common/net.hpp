// Socket set-up that every chapter needs and none of them teaches.
//
// Errors are thrown as std::system_error whose what() names the call and its
// arguments, then errno's text: "bind 127.0.0.1:8080: Address already in use";
// an address that does not resolve as std::runtime_error ("bad address 'x': ...").
#pragma once

#include "fd.hpp"

#include <cstdint>
#include <string>

namespace course {

inline constexpr int kListenBacklog = 4096;  // the kernel caps it at net.core.somaxconn

// socket + SO_REUSEADDR + bind + listen. `host` is a numeric IPv4/IPv6 address
// or a name from /etc/hosts; port 0 lets the kernel pick a free port.
// The socket is blocking and close-on-exec; call set_nonblocking() if needed.
Fd listen_tcp(const std::string& host, std::uint16_t port, int backlog = kListenBacklog);

// A blocking, connected TCP socket.
Fd connect_tcp(const std::string& host, std::uint16_t port);

void set_nonblocking(int fd);

// The address a socket is bound to / connected to, as "127.0.0.1:8080" or "[::1]:8080".
std::string local_address(int fd);
std::string peer_address(int fd);
std::uint16_t local_port(int fd);

// Prints the contract's ready line, "listening on HOST:PORT", to stdout and flushes it.
void print_ready_line(int listen_fd);

}  // namespace course
