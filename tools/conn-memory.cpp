// conn-memory: how much server memory does one more connection cost?
//
//   build/bin/conn-memory build/bin/01-blocking --counts 100,1000 -- --threads
//
// For each count N (three runs each, median reported): start the server, do
// one echo to warm it up, read its RSS; open N connections that each do one
// echo (so a thread-per-connection server has run every thread), read the RSS
// and thread count again. Prints the growth per connection.
//
// RSS counts the pages the process touched. It does not count kernel memory:
// socket buffers, and for a thread its kernel stack and task structure. The
// kernel-stack column is read from /proc/meminfo (KernelStack), which is
// system-wide: run it on an otherwise quiet machine. VmSize is the address
// space reserved (a thread's stack is reserved in full, touched in part).
#include "client.hpp"
#include "server_process.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace course;
using namespace course::test;

namespace {

struct Sample {
    long base_kib, loaded_kib;
    long base_vm_kib, loaded_vm_kib;
    long base_kstack_kib, loaded_kstack_kib;
    int threads;
};

// A "Key:   123 kB" line of a /proc file, in KiB; -1 if absent.
long proc_kib(const std::string& file, const std::string& key) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
    return -1;
}

Sample measure(const std::string& server, const std::vector<std::string>& args, int n) {
    StartOptions o;
    o.max_open_files = static_cast<rlim_t>(n + 64);
    auto proc = ServerProcess::start(server, args, o);
    {
        Fd warm = connect_to(proc.port());
        if (!send_all(warm.get(), "warm") || recv_exactly(warm.get(), 4) != "warm") throw std::runtime_error("warm-up echo failed");
        half_close(warm.get());
        wait_closed(warm.get());
    }
    const std::string status = fmt::format("/proc/{}/status", proc.pid());
    Sample s{};
    s.base_kib = rss_kib(proc.pid());
    s.base_vm_kib = proc_kib(status, "VmSize");
    s.base_kstack_kib = proc_kib("/proc/meminfo", "KernelStack");
    std::vector<Fd> conns;
    conns.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        conns.push_back(connect_to(proc.port()));
        if (!send_all(conns.back().get(), "x") || recv_exactly(conns.back().get(), 1, 10s) != "x")
            throw std::runtime_error(fmt::format("echo on connection {} failed", i));
    }
    s.loaded_kib = rss_kib(proc.pid());
    s.loaded_vm_kib = proc_kib(status, "VmSize");
    s.loaded_kstack_kib = proc_kib("/proc/meminfo", "KernelStack");
    s.threads = thread_count(proc.pid());
    conns.clear();
    proc.stop();
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {  // --help, or a flag where the server belongs
        bool help = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
        fmt::print(help ? stdout : stderr, "usage: conn-memory SERVER [--counts N,N,...] [--runs R] [-- SERVER ARGS...]\n");
        return help ? 0 : 2;
    }
    std::string server = argv[1];
    std::vector<int> counts = {100, 1000};
    int runs = 3;
    std::vector<std::string> args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            args.assign(argv + i + 1, argv + argc);
            break;
        }
        if (a == "--counts" && i + 1 < argc) {
            counts.clear();
            std::string list = argv[++i];
            for (size_t at = 0; at <= list.size();) {
                size_t comma = std::min(list.find(',', at), list.size());
                int v = 0;
                std::from_chars(list.data() + at, list.data() + comma, v);
                if (v > 0) counts.push_back(v);
                at = comma + 1;
            }
        } else if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else {
            fmt::print(stderr, "conn-memory: unknown argument '{}'\n", a);
            return 2;
        }
    }
    // This process holds the client ends: raise our own descriptor limit too.
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    fmt::print("server: {} {}\n", server, fmt::join(args, " "));
    fmt::print("{:>12}  {:>22}  {:>22}  {:>24}  {:>8}\n", "connections", "RSS KiB/conn", "VmSize KiB/conn",
               "KernelStack KiB/conn", "threads");
    for (int n : counts) {
        std::vector<double> rss, vm, kstack;
        int threads = 0;
        for (int r = 0; r < runs; ++r) {
            try {
                Sample s = measure(server, args, n);
                rss.push_back(static_cast<double>(s.loaded_kib - s.base_kib) / n);
                vm.push_back(static_cast<double>(s.loaded_vm_kib - s.base_vm_kib) / n);
                kstack.push_back(static_cast<double>(s.loaded_kstack_kib - s.base_kstack_kib) / n);
                threads = s.threads;
            } catch (const std::exception& e) {
                fmt::print(stderr, "conn-memory: {} connections: {}\n", n, e.what());
                return 1;
            }
        }
        // "median (min-max)" of the runs.
        auto summary = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return fmt::format("{:.1f} ({:.1f}-{:.1f})", v[v.size() / 2], v.front(), v.back());
        };
        fmt::print("{:>12}  {:>22}  {:>22}  {:>24}  {:>8}\n", n, summary(rss), summary(vm), summary(kstack), threads);
    }
    fmt::print("median (min-max) of {} runs per row; threads counted in the last run\n", runs);
    return 0;
}
