// A loopback TCP connection whose both ends are in this process: for tests of
// the harness itself, against a peer the test controls. Throws if it cannot
// listen or connect; `server` is invalid if accept failed.
#pragma once

#include "client.hpp"
#include "net.hpp"

#include <sys/socket.h>

namespace course::test {

struct LocalPeer {
    Fd listener = listen_tcp("127.0.0.1", 0);
    Fd client = connect_to(local_port(listener.get()));
    Fd server{::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)};
};

}  // namespace course::test
