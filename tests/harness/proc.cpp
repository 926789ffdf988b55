#include "proc.hpp"

#include "client.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include <fmt/format.h>

namespace course::test {

double precise_cpu_seconds(pid_t pid) {
    std::error_code ec;
    unsigned long long ns = 0;
    for (auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::ifstream in(it->path() / "schedstat");
        unsigned long long on_cpu = 0;
        if (!(in >> on_cpu)) return cpu_seconds(pid);
        ns += on_cpu;
    }
    return ec ? cpu_seconds(pid) : static_cast<double>(ns) / 1e9;
}

bool every_thread_is(pid_t pid, std::string_view states) {
    std::error_code ec;
    int threads = 0;
    for (auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        std::ifstream in(it->path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto close = stat.rfind(')');  // the name may contain anything, even ") "
        if (close == std::string::npos || close + 2 >= stat.size()) return false;
        if (states.find(stat[close + 2]) == std::string_view::npos) return false;
        ++threads;
    }
    return !ec && threads > 0;
}

std::uint64_t ignored_signals(pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    std::uint64_t ignored = 0;
    while (std::getline(status, line))
        if (line.rfind("SigIgn:", 0) == 0) ignored = std::stoull(line.substr(7), nullptr, 16);
    return ignored;
}

}  // namespace course::test
