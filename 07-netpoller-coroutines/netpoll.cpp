#include "netpoll.hpp"

#include <stdexcept>
#include <string>

namespace course::runtime {

std::unique_ptr<Poller> make_poller(std::string_view name) {
    std::unique_ptr<Poller> poller;
    if (name == "epoll") poller = new_epoll_poller();
    else if (name == "poll") poller = new_poll_poller();
    else throw std::invalid_argument("unknown poller '" + std::string(name) + "' (expected epoll or poll)");
    poller->netpollinit();
    return poller;
}

}  // namespace course::runtime
