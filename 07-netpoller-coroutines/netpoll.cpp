#include "netpoll.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace course::runtime {

std::unique_ptr<Poller> make_poller(std::string_view name) {
    std::unique_ptr<Poller> poller;
    if (name == "epoll") poller = new_epoll_poller();
    else if (name == "poll") poller = new_poll_poller();
    else throw std::invalid_argument("unknown poller '" + std::string(name) + "' (expected epoll or poll)");
    poller->netpoll_init();
    return poller;
}

void netpoll_arm(Poller& poller, PollDesc& pd, Mode mode) { poller.netpoll_arm(pd, mode); }


}  // namespace course::runtime
