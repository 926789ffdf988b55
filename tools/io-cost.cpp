// io-cost: what one echo round trip costs a server, and what idleness costs.
//
//   io-cost SERVER [--idle N,N,...] [--round-trips R] [--runs K] [-- SERVER ARGS]
//       For each N: start the server, open N idle connections, then one client
//       does R ping-pongs of 64 bytes. Reports round-trip latency (p50, p99),
//       the server's CPU time per round trip (from /proc) and its system calls
//       per round trip (from its stats line; they include the connection set-up,
//       spread over R round trips), median of K runs.
//   io-cost SERVER --idle-cpu SECONDS [-- SERVER ARGS]
//       One client connects, echoes once and stays idle: the server's CPU use
//       and calls per second while nothing happens (counted over the whole run,
//       so they include the one echo).
//
// The server is pinned to CPU 1 and this program to CPU 0 when the machine has
// two or more, so that they do not steal each other's time.
#include "client.hpp"
#include "server_process.hpp"
#include "workload.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course;
using namespace course::test;
using Clock = std::chrono::steady_clock;

namespace {

void pin(pid_t pid, int cpu) {
    if (::sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(pid, sizeof set, &set);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

std::string range(std::vector<double> v, const char* format) {
    std::sort(v.begin(), v.end());
    return fmt::format("{} ({}-{})", fmt::format(fmt::runtime(format), v[v.size() / 2]),
                       fmt::format(fmt::runtime(format), v.front()), fmt::format(fmt::runtime(format), v.back()));
}

struct RunResult {
    double p50_us, p99_us, cpu_us_per_rt, calls_per_rt;
    std::map<std::string, double> per_rt;  // calls of each kind per round trip
};

RunResult ping_pong_run(const std::string& server, const std::vector<std::string>& args, int idle, int round_trips) {
    StartOptions o;
    o.max_open_files = static_cast<rlim_t>(idle + 100);
    auto proc = ServerProcess::start(server, args, o);
    pin(proc.pid(), 1);
    std::vector<Fd> idlers;
    for (int i = 0; i < idle; ++i) idlers.push_back(connect_to(proc.port()));
    Fd active = connect_to(proc.port());
    const std::string msg(64, 'x');
    for (int i = 0; i < 100; ++i) recv_exactly(active.get(), send_all(active.get(), msg) ? 64 : 0);  // warm-up

    std::vector<double> rtt;
    rtt.reserve(static_cast<size_t>(round_trips));
    double cpu_before = cpu_seconds(proc.pid());
    for (int i = 0; i < round_trips; ++i) {
        auto t0 = Clock::now();
        if (!send_all(active.get(), msg) || recv_exactly(active.get(), 64) != msg)
            throw std::runtime_error(fmt::format("round trip {} failed", i));
        rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    double cpu = cpu_seconds(proc.pid()) - cpu_before;
    active.reset();
    idlers.clear();
    proc.stop();
    auto stats = proc.stats();

    std::sort(rtt.begin(), rtt.end());
    RunResult r{rtt[rtt.size() / 2], rtt[rtt.size() * 99 / 100], cpu * 1e6 / round_trips, 0, {}};
    for (const char* kind : {"select", "poll", "epoll_wait", "read", "write"}) {
        double per = static_cast<double>(stats[kind]) / round_trips;
        if (per > 0) r.per_rt[kind] = per;
    }
    return r;
}

void idle_cpu(const std::string& server, const std::vector<std::string>& args, double seconds) {
    auto proc = ServerProcess::start(server, args);
    pin(proc.pid(), 1);
    Fd client = connect_to(proc.port());
    send_all(client.get(), "hi");
    recv_exactly(client.get(), 2);
    double before = cpu_seconds(proc.pid());
    auto t0 = Clock::now();
    nothing_arrives(client.get(), std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
    double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    double cpu = cpu_seconds(proc.pid()) - before;
    proc.stop();
    auto stats = proc.stats();
    std::string waits;  // the call a multiplexing server sleeps in, if any
    for (const char* kind : {"select", "poll", "epoll_wait"})
        if (stats.count(kind)) waits += fmt::format(", {} {}s ({:.1f}/s)", stats[kind], kind, stats[kind] / wall);
    fmt::print("idle {:.1f} s, one idle client: server CPU {:.0f}% of one core; per second: {:.0f} reads "
               "({:.0f} EAGAIN), {:.0f} accepts ({:.0f} EAGAIN){}\n",
               wall, 100 * cpu / wall, stats["read"] / wall, stats["read_eagain"] / wall, stats["accept"] / wall,
               stats["accept_eagain"] / wall, waits);
}

std::vector<int> parse_list(const std::string& text) {
    std::vector<int> out;
    for (size_t at = 0; at <= text.size();) {
        size_t comma = std::min(text.find(',', at), text.size());
        int v = -1;
        std::from_chars(text.data() + at, text.data() + comma, v);
        if (v >= 0) out.push_back(v);
        at = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "usage: io-cost SERVER [--idle N,N,...] [--round-trips R] [--runs K] [--idle-cpu S] "
                           "[-- SERVER ARGS]\n");
        return 2;
    }
    std::string server = argv[1];
    std::vector<int> idle_counts = {0, 100, 1000};
    int round_trips = 20000, runs = 3;
    double idle_seconds = 0;
    std::vector<std::string> args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        bool has_value = i + 1 < argc;
        if (a == "--") {
            args.assign(argv + i + 1, argv + argc);
            break;
        } else if (a == "--idle" && has_value) {
            idle_counts = parse_list(argv[++i]);
        } else if (a == "--round-trips" && has_value) {
            round_trips = std::max(100, std::atoi(argv[++i]));
        } else if (a == "--runs" && has_value) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--idle-cpu" && has_value) {
            idle_seconds = std::atof(argv[++i]);
        } else {
            fmt::print(stderr, "io-cost: unknown argument '{}'\n", a);
            return 2;
        }
    }
    raise_open_file_limit();
    pin(0, 0);
    try {
        fmt::print("server: {} {}\n", server, fmt::join(args, " "));
        if (idle_seconds > 0) {
            idle_cpu(server, args, idle_seconds);
            return 0;
        }
        fmt::print("{:>6}  {:>22}  {:>22}  {:>24}  {}\n", "idle", "p50 us", "p99 us", "server CPU us/round trip",
                   "calls per round trip");
        for (int idle : idle_counts) {
            std::vector<double> p50, p99, cpu;
            std::map<std::string, std::vector<double>> calls;
            for (int r = 0; r < runs; ++r) {
                RunResult res = ping_pong_run(server, args, idle, round_trips);
                p50.push_back(res.p50_us);
                p99.push_back(res.p99_us);
                cpu.push_back(res.cpu_us_per_rt);
                for (auto& [k, v] : res.per_rt) calls[k].push_back(v);
            }
            std::string per;
            for (auto& [k, v] : calls) per += fmt::format("{}={:.2f} ", k, median(v));
            fmt::print("{:>6}  {:>22}  {:>22}  {:>24}  {}\n", idle, range(p50, "{:.1f}"), range(p99, "{:.1f}"),
                       range(cpu, "{:.2f}"), per);
        }
        fmt::print("{} round trips of 64 bytes per run, median (min-max) of {} runs\n", round_trips, runs);
    } catch (const std::exception& e) {
        fmt::print(stderr, "io-cost: {}\n", e.what());
        return 1;
    }
    return 0;
}
