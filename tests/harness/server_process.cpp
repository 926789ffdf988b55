#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace course::test {

using Clock = std::chrono::steady_clock;

struct ServerProcess::State {
    pid_t pid = -1;
    int pidfd = -1;  // pollable: readable when the child exits
    bool reaped = false;
    Exit exit;
    std::string ready_line;
    std::uint16_t port = 0;

    // Output is drained continuously by a thread, so a server printing a long
    // --trace never blocks on a full pipe.
    mutable std::mutex mu;
    mutable std::condition_variable cv;
    std::string out, err;
    bool out_eof = false, err_eof = false;
    std::thread reader;

    ~State() {
        // The child leads its own process group: kill anything it started too,
        // or a leftover grandchild would hold the output pipes open.
        if (pid > 0) ::kill(-pid, SIGKILL);
        if (pid > 0 && !reaped) {
            int status;
            ::waitpid(pid, &status, 0);
        }
        if (reader.joinable()) reader.join();  // the pipes hit EOF once the child is gone
        if (pidfd >= 0) ::close(pidfd);
    }

    void drain(int out_fd, int err_fd) {
        pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
        int open_fds = 2;
        char buf[65536];
        while (open_fds > 0) {
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            for (int i = 0; i < 2; ++i) {
                if (fds[i].fd < 0 || fds[i].revents == 0) continue;
                ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR) continue;
                std::lock_guard lock(mu);
                if (n <= 0) {
                    ::close(fds[i].fd);
                    fds[i].fd = -1;
                    --open_fds;
                    (i == 0 ? out_eof : err_eof) = true;
                } else {
                    (i == 0 ? out : err).append(buf, static_cast<size_t>(n));
                }
                cv.notify_all();
            }
        }
    }

    // Waits for the exit without sleeping: poll(2) on the pidfd, then reap.
    bool wait_exit(std::chrono::milliseconds timeout, Clock::time_point since) {
        if (reaped) return true;
        pollfd p{pidfd, POLLIN, 0};
        auto deadline = Clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
            if (rc < 0 && errno == EINTR) continue;
            if (rc <= 0) return false;
            break;
        }
        int status = 0;
        if (::waitpid(pid, &status, 0) < 0) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
        reaped = true;
        exit.exited = true;
        exit.seconds = std::chrono::duration<double>(Clock::now() - since).count();
        if (WIFEXITED(status)) exit.code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
        return true;
    }
};

ServerProcess::ServerProcess(std::unique_ptr<State> s) : s_(std::move(s)) {}
ServerProcess::ServerProcess(ServerProcess&&) noexcept = default;
ServerProcess& ServerProcess::operator=(ServerProcess&&) noexcept = default;
ServerProcess::~ServerProcess() = default;

ServerProcess ServerProcess::start(const std::string& binary, std::vector<std::string> args, StartOptions opts) {
    bool has_port = false;
    for (const auto& a : args) has_port = has_port || a == "--port" || a.rfind("--port=", 0) == 0;
    if (!has_port && opts.add_port_zero) args.insert(args.begin(), {"--port", "0"});

    // Everything the child needs is prepared before fork(): between fork and
    // exec a child of a multi-threaded process may only make async-signal-safe calls.
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fill_first = 0, fill_end = 0;  // the InheritedFds block, [fill_first, fill_end)
    if (opts.inherited_fds) {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        rlim_t limit = opts.max_open_files ? *opts.max_open_files : rl.rlim_cur;
        const auto& b = *opts.inherited_fds;
        constexpr int kMaxCount = 65536, kRoomAbove = 64;
        if (b.first < 3 || b.count < 0 || b.count > kMaxCount ||
            static_cast<rlim_t>(b.first) + static_cast<rlim_t>(b.count) + kRoomAbove > limit)
            throw std::invalid_argument(fmt::format(
                "inherited_fds [{}, {}): must start at 3 or above, hold at most {} and leave {} numbers "
                "under the child's RLIMIT_NOFILE ({})",
                b.first, b.first + b.count, kMaxCount, kRoomAbove, limit));
        fill_first = b.first;
        fill_end = b.first + b.count;
    }

    int out[2], err[2], status_pipe[2];
    if (::pipe2(out, O_CLOEXEC) < 0 || ::pipe2(err, O_CLOEXEC) < 0 || ::pipe2(status_pipe, O_CLOEXEC) < 0)
        throw std::runtime_error(fmt::format("pipe2: {}", std::strerror(errno)));

    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
        ::setpgid(0, 0);
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(err[1], STDERR_FILENO);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (opts.max_open_files) {
            rlimit rl{*opts.max_open_files, *opts.max_open_files};
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
        // What went wrong goes to the parent through the status pipe: {step, errno}.
        int status_fd = status_pipe[1];
        auto fail = [&](int step) {
            int report[2] = {step, errno};
            [[maybe_unused]] ssize_t n = ::write(status_fd, report, sizeof report);
            ::_exit(127);
        };
        if (fill_end > fill_first) {
            // Keep the status pipe out of the block (dup2 would close it), then fill it.
            if (status_fd >= fill_first && status_fd < fill_end) {
                status_fd = ::fcntl(status_pipe[1], F_DUPFD_CLOEXEC, fill_end);
                if (status_fd < 0) ::_exit(127);
            }
            for (int fd = fill_first; fd < fill_end; ++fd)
                if (fd != null && ::dup2(null, fd) < 0) fail(1);  // dup2 has no CLOEXEC: exec keeps them
        }
        ::execv(binary.c_str(), argv.data());
        fail(0);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(status_pipe[1]);

    auto s = std::make_unique<State>();
    s->pid = pid;
    s->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (s->pidfd < 0) throw std::runtime_error(fmt::format("pidfd_open: {}", std::strerror(errno)));
    s->reader = std::thread([st = s.get(), o = out[0], e = err[0]] { st->drain(o, e); });

    int report[2] = {0, 0};  // {step, errno}; step 1: the inherited descriptors
    ssize_t n = ::read(status_pipe[0], report, sizeof report);  // EOF (0) means exec succeeded
    ::close(status_pipe[0]);
    if (n > 0 && report[0] == 1)
        throw std::runtime_error(fmt::format("{}: cannot open the inherited descriptors [{}, {}) in the child: {}",
                                             binary, fill_first, fill_end, std::strerror(report[1])));
    if (n > 0) throw std::runtime_error(fmt::format("cannot run {}: {}", binary, std::strerror(report[1])));

    ServerProcess proc(std::move(s));
    if (!opts.wait_ready) return proc;

    std::unique_lock lock(proc.s_->mu);
    bool got = proc.s_->cv.wait_for(lock, opts.ready_timeout, [&] {
        return proc.s_->out.find('\n') != std::string::npos || proc.s_->out_eof;
    });
    if (!got)
        throw std::runtime_error(fmt::format("{}: no ready line within {} ms; stderr so far: {}", binary,
                                             opts.ready_timeout.count(), proc.s_->err));
    if (proc.s_->out.find('\n') == std::string::npos) {
        // It closed stdout (exited) without a ready line: wait for its last words on stderr.
        proc.s_->cv.wait_for(lock, 5s, [&] { return proc.s_->err_eof; });
        throw std::runtime_error(fmt::format("{}: exited without a ready line; stderr: {}", binary, proc.s_->err));
    }
    std::string line = proc.s_->out.substr(0, proc.s_->out.find('\n'));
    proc.s_->ready_line = line;
    auto colon = line.rfind(':');
    if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos)
        throw std::runtime_error(fmt::format("{}: unexpected first line '{}'", binary, line));
    proc.s_->port = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
    return proc;
}

pid_t ServerProcess::pid() const { return s_->pid; }
std::uint16_t ServerProcess::port() const { return s_->port; }
const std::string& ServerProcess::ready_line() const { return s_->ready_line; }

void ServerProcess::signal(int sig) {
    if (!s_->reaped) ::kill(s_->pid, sig);
}

bool ServerProcess::running() { return !s_->wait_exit(0ms, Clock::now()); }

Exit ServerProcess::stop(std::chrono::milliseconds timeout, int sig) {
    auto since = Clock::now();
    signal(sig);
    if (!s_->wait_exit(timeout, since)) {
        ::kill(s_->pid, SIGKILL);
        s_->wait_exit(10s, since);
        Exit e = s_->exit;
        e.exited = false;  // it had to be killed
        return e;
    }
    return s_->exit;
}

Exit ServerProcess::wait(std::chrono::milliseconds timeout) {
    if (!s_->wait_exit(timeout, Clock::now())) return Exit{};
    // The exit status is known; wait for the last output too.
    std::unique_lock lock(s_->mu);
    s_->cv.wait_for(lock, 5s, [&] { return s_->out_eof && s_->err_eof; });
    return s_->exit;
}

std::string ServerProcess::stdout_text() const {
    std::lock_guard lock(s_->mu);
    return s_->out;
}

std::string ServerProcess::stderr_text() const {
    // After an exit, wait (bounded) until the reader has seen EOF, so the
    // last lines (the stats line) are in.
    std::unique_lock lock(s_->mu);
    if (s_->reaped) s_->cv.wait_for(lock, 5s, [&] { return s_->err_eof; });
    return s_->err;
}

bool ServerProcess::wait_for_stderr(const std::string& needle, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(s_->mu);
    return s_->cv.wait_for(lock, timeout, [&] { return s_->err.find(needle) != std::string::npos || s_->err_eof; }) &&
           s_->err.find(needle) != std::string::npos;
}

std::map<std::string, std::uint64_t> ServerProcess::stats() const {
    std::string err = stderr_text();
    auto at = err.rfind("stats:");
    if (at == std::string::npos) return {};
    return parse_stats(err.substr(at, err.find('\n', at) - at));
}

std::string server_binary(const char* chapter_number, const char* built) {
    const char* chosen = std::getenv(fmt::format("COURSE_SERVER_{}", chapter_number).c_str());
    return chosen != nullptr && *chosen != '\0' ? chosen : built;
}

std::map<std::string, std::uint64_t> parse_stats(const std::string& line) {
    std::map<std::string, std::uint64_t> result;
    std::istringstream in(line);
    std::string word;
    in >> word;  // "stats:"
    while (in >> word) {
        auto eq = word.find('=');
        if (eq == std::string::npos) continue;
        result[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
    }
    return result;
}

int server_fd_of(const std::string& trace, std::uint16_t port) {
    const std::string tail = fmt::format(": client 127.0.0.1:{} connected", port);
    const auto at = trace.find(tail);
    if (at == std::string::npos) return -1;
    const auto start = trace.rfind("fd ", at);
    return start == std::string::npos ? -1 : std::atoi(trace.c_str() + start + 3);
}

}  // namespace course::test
