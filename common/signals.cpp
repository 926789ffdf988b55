#include "signals.hpp"

#include "sys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>

namespace course {
namespace {

std::atomic<bool> stop_flag{false};
int pipe_fds[2] = {-1, -1};  // the self-pipe: [0] is polled, [1] written by the handler
std::atomic<void (*)() noexcept> stop_hook{nullptr};
static_assert(std::atomic<void (*)() noexcept>::is_always_lock_free);

void on_stop_signal(int) {
    // Only async-signal-safe work here: an atomic store, write(2), alarm(2).
    const int saved = errno;
    stop_flag.store(true);
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(pipe_fds[1], &byte, 1);  // non-blocking; a full pipe is fine
    ::alarm(1);
    if (auto hook = stop_hook.load()) hook();
    errno = saved;
}

void on_alarm(int) {
    if (stop_flag.load()) ::alarm(1);  // keep interrupting until the process has exited
}

void on_usr1(int) {}

void handle(int sig, void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
    if (::sigaction(sig, &sa, nullptr) < 0) throw_errno("sigaction");
}

}  // namespace

void install_signal_handlers() {
    if (pipe_fds[0] < 0 && ::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) < 0) throw_errno("pipe2");
    handle(SIGINT, on_stop_signal);
    handle(SIGTERM, on_stop_signal);
    handle(SIGALRM, on_alarm);
    handle(SIGUSR1, on_usr1);
    handle(SIGPIPE, SIG_IGN);
}

bool stop_requested() { return stop_flag.load(); }

int stop_fd() { return pipe_fds[0]; }

void set_stop_hook(void (*hook)() noexcept) { stop_hook.store(hook); }

}  // namespace course
