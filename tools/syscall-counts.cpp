// syscall-counts: the same workload against several servers, and the system
// calls each one made for it, as a Markdown table.
//
//   syscall-counts [--clients N] [--rounds R] [--size S] SERVER [SERVER ...]
//
// SERVER is a path, optionally followed by its flags after a comma:
// build/bin/06-epoll-et,--no-drain. The workload: N clients connect; R times,
// every client sends S bytes, then every client reads its echo; then all
// half-close and wait for the server to close. The counts come from the
// server's stats line, so they include accepting the N clients.
#include "server_process.hpp"
#include "workload.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course::test;

int main(int argc, char** argv) {
    int clients = 10, rounds = 1000;
    size_t size = 64;
    std::vector<std::string> servers;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--clients" && i + 1 < argc) clients = std::max(1, std::atoi(argv[++i]));
        else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
        else if (a == "--size" && i + 1 < argc) size = static_cast<size_t>(std::max(1, std::atoi(argv[++i])));
        else if (a.rfind("--", 0) == 0) {
            fmt::print(stderr, "syscall-counts: unknown argument '{}'\n", a);
            return 2;
        } else servers.push_back(a);
    }
    if (servers.empty()) {
        fmt::print(stderr, "usage: syscall-counts [--clients N] [--rounds R] [--size S] SERVER[,FLAG...] ...\n");
        return 2;
    }
    const double round_trips = static_cast<double>(clients) * rounds;
    fmt::print("{} round trips ({} clients x {} rounds) of {} bytes; calls in total (per round trip)\n\n",
               clients * rounds, clients, rounds, size);
    const char* kinds[] = {"accept", "read", "read_eagain", "write", "write_eagain",
                           "select", "poll", "epoll_wait", "epoll_ctl"};
    fmt::print("| server |");
    for (const char* k : kinds) fmt::print(" {} |", k);
    fmt::print("\n|---|");
    for (size_t i = 0; i < std::size(kinds); ++i) fmt::print("---:|");
    fmt::print("\n");
    for (const auto& spec : servers) {
        std::vector<std::string> parts;
        for (size_t at = 0; at <= spec.size();) {
            size_t comma = std::min(spec.find(',', at), spec.size());
            parts.push_back(spec.substr(at, comma - at));
            at = comma + 1;
        }
        std::string binary = parts[0];
        std::vector<std::string> args(parts.begin() + 1, parts.end());
        try {
            auto server = ServerProcess::start(binary, args);
            if (std::string err = ping_pong(server.port(), clients, rounds, size); !err.empty())
                throw std::runtime_error(err);
            if (!server.stop().clean()) throw std::runtime_error("did not exit cleanly");
            auto stats = server.stats();
            std::string name = binary.substr(binary.rfind('/') + 1);
            for (const auto& a : args) name += " " + a;
            fmt::print("| {} |", name);
            for (const char* k : kinds) {
                std::string base = k;
                if (auto at = base.find("_eagain"); at != std::string::npos) base.resize(at);
                if (stats.count(base) == 0) fmt::print(" - |");  // this server never makes that call
                else fmt::print(" {} ({:.2f}) |", stats[k], static_cast<double>(stats[k]) / round_trips);
            }
            fmt::print("\n");
        } catch (const std::exception& e) {
            fmt::print(stderr, "syscall-counts: {}: {}\n", spec, e.what());
            return 1;
        }
    }
    return 0;
}
