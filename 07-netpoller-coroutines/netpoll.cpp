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

// #region timeout
int timeout_ms(std::chrono::nanoseconds delay) {
    using namespace std::chrono;
    if (delay < nanoseconds::zero()) return -1;  // block until something happens
    if (delay == nanoseconds::zero()) return 0;  // just look
    // Round up: 1 us becomes 1 ms, never 0. Cap far below INT_MAX ms (Go caps at 1e9 ms, 11.5 days).
    auto ms = ceil<milliseconds>(std::min(delay, duration_cast<nanoseconds>(hours(24 * 11))));
    return static_cast<int>(ms.count());
}
// #endregion timeout

}  // namespace course::runtime
