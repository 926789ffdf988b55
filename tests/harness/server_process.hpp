// ServerProcess: a chapter's server as a real child process, for tests.
//
//   auto server = ServerProcess::start(kServer, {"--threads"});   // adds --port 0, waits for the ready line
//   auto conn = connect_to(server.port());
//   ...
//   Exit exit = server.stop();        // SIGTERM, then waits; exit.code, exit.seconds
//   auto stats = server.stats();      // the "stats:" line from stderr, parsed
//
// If a test fails half-way, the destructor kills the server (SIGKILL) and reaps it.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace course::test {

using namespace std::chrono_literals;

struct Exit {
    bool exited = false;      // false: still running after the timeout (it was then killed)
    int code = -1;            // exit status if it exited normally
    int signal = 0;           // the signal that killed it, if any
    double seconds = 0;       // from the request (SIGTERM, or start) to the exit
    bool clean() const { return exited && signal == 0 && code == 0; }
};

// Descriptors [first, first + count) open in the child when it starts: copies
// of /dev/null, inherited through exec. The kernel gives out the lowest free
// number, so the server's own descriptors take the free numbers below `first`,
// then numbers from first + count on: how a test gives a handful of
// connections numbers above 1023 without making a thousand of them.
struct InheritedFds {
    int first = 0;
    int count = 0;
};

struct StartOptions {
    std::optional<rlim_t> max_open_files;  // RLIMIT_NOFILE for the child
    // start() refuses a block that leaves the child fewer than 64 numbers above
    // it under its RLIMIT_NOFILE, or that overlaps 0-2.
    std::optional<InheritedFds> inherited_fds;
    bool wait_ready = true;                // false for processes expected to fail (bad CLI)
    bool add_port_zero = true;             // add "--port 0" unless the arguments have a --port
    std::chrono::milliseconds ready_timeout = 10s;
};

class ServerProcess {
public:
    // Starts `binary args...`; adds "--port 0" unless `args` has a --port.
    // Throws std::runtime_error if exec fails or no ready line arrives in time.
    static ServerProcess start(const std::string& binary, std::vector<std::string> args, StartOptions opts = {});

    ServerProcess(ServerProcess&&) noexcept;
    ServerProcess& operator=(ServerProcess&&) noexcept;
    ~ServerProcess();

    pid_t pid() const;
    std::uint16_t port() const;
    const std::string& ready_line() const;

    // Sends `sig` (default SIGTERM) and waits for the process to exit.
    Exit stop(std::chrono::milliseconds timeout = 5s, int sig = SIGTERM);
    // Waits for the process to exit by itself.
    Exit wait(std::chrono::milliseconds timeout = 10s);
    bool running();
    void signal(int sig);

    std::string stdout_text() const;
    std::string stderr_text() const;
    // Waits until stderr contains `needle` (e.g. a trace line); false on timeout.
    bool wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout = 5s) const;
    // The last "stats:" line on stderr as {"read": 12, "read_eagain": 3, ...}; empty if none.
    std::map<std::string, std::uint64_t> stats() const;

private:
    struct State;
    explicit ServerProcess(std::unique_ptr<State> s);
    std::unique_ptr<State> s_;
};

// The server binary a test runs for chapter `chapter_number` ("05"): the
// environment variable COURSE_SERVER_05 if it is set and not empty, else
// `built` (the chapter's own server, SERVER_BIN or BIN_05 from CMake). This is
// how a student's server, or a deliberately broken one, is put through the
// same tests:  COURSE_SERVER_05=$PWD/my-server build/bin/05-epoll-lt_test
std::string server_binary(const char* chapter_number, const char* built);

// The descriptor number a server gave the client whose local port is `port`,
// from its trace note "fd N: client 127.0.0.1:PORT connected"; -1 if none.
int server_fd_of(const std::string& trace, std::uint16_t port);

// Parses "stats: a=1 b=2 ..." (the format of course::sys::stats_line()).
std::map<std::string, std::uint64_t> parse_stats(const std::string& line);

}  // namespace course::test
