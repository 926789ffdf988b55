#include <gtest/gtest.h>

#include "signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

// install_signal_handlers() changes the whole process, and a stop request
// cannot be undone (SIGALRM keeps firing every second afterwards). So every
// test here runs its body in a child process (a gtest "death test") that ends
// with _Exit(0) when all its checks pass; the test process itself is untouched.
// CHILD_CHECK prints the failed condition on stderr, which gtest shows.
#define CHILD_CHECK(cond)                                                                                   \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            std::fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); \
            std::_Exit(1);                                                                                  \
        }                                                                                                   \
    } while (0)

using namespace course;
using namespace std::chrono_literals;

namespace {

class SignalsDeathTest : public ::testing::Test {
protected:
    void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

bool stop_fd_readable() {
    pollfd pfd{stop_fd(), POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) != 0;
}

[[noreturn]] void stop_signal_requests_stop(int sig) {
    install_signal_handlers();
    CHILD_CHECK(stop_fd() >= 0);
    CHILD_CHECK(!stop_requested());
    CHILD_CHECK(!stop_fd_readable());
    ::raise(sig);
    CHILD_CHECK(stop_requested());
    CHILD_CHECK(stop_fd_readable());
    std::_Exit(0);
}

}  // namespace

TEST_F(SignalsDeathTest, SigtermRequestsStopAndWakesTheStopFd) {
    EXPECT_EXIT(stop_signal_requests_stop(SIGTERM), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, SigintRequestsStopAndWakesTheStopFd) {
    EXPECT_EXIT(stop_signal_requests_stop(SIGINT), ::testing::ExitedWithCode(0), "");
}

static std::atomic<int> hook_calls{0};
static void count_hook() noexcept { hook_calls.fetch_add(1); }

TEST_F(SignalsDeathTest, TheStopHookRunsInTheHandlerAfterTheFlagIsSet) {
    auto body = [] {
        install_signal_handlers();
        set_stop_hook(count_hook);
        ::raise(SIGTERM);
        CHILD_CHECK(stop_requested());
        CHILD_CHECK(hook_calls.load() == 1);
        set_stop_hook(nullptr);  // removed: the next stop signal does not call it
        ::raise(SIGINT);
        CHILD_CHECK(hook_calls.load() == 1);
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, HandlersAreInstalledWithoutSaRestart) {
    auto body = [] {
        install_signal_handlers();
        for (int sig : {SIGINT, SIGTERM, SIGALRM, SIGUSR1}) {
            struct sigaction sa {};
            CHILD_CHECK(::sigaction(sig, nullptr, &sa) == 0);
            CHILD_CHECK(sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
            CHILD_CHECK((sa.sa_flags & SA_RESTART) == 0);  // blocking calls must see EINTR
        }
        struct sigaction pipe_sa {};
        CHILD_CHECK(::sigaction(SIGPIPE, nullptr, &pipe_sa) == 0);
        CHILD_CHECK(pipe_sa.sa_handler == SIG_IGN);
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, InstallingTwiceKeepsTheSameStopFd) {
    auto body = [] {
        install_signal_handlers();
        int first = stop_fd();
        install_signal_handlers();
        CHILD_CHECK(stop_fd() == first);
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, WriteToAClosedPeerReturnsEpipeInsteadOfKilling) {
    // Without the handlers this child would die of SIGPIPE, which the
    // ExitedWithCode(0) predicate reports as a failure.
    auto body = [] {
        install_signal_handlers();
        int sv[2];
        CHILD_CHECK(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        ::close(sv[1]);
        CHILD_CHECK(::write(sv[0], "x", 1) == -1);
        CHILD_CHECK(errno == EPIPE);
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, Sigusr1InterruptsABlockingReadWithEintr) {
    // Another thread sends SIGUSR1 to the reader until its read returns (a
    // signal that lands before the read starts is simply handled). After 5 s it
    // gives up and writes a byte, so the read returns 1 and the check fails.
    auto body = [] {
        install_signal_handlers();
        int p[2];
        CHILD_CHECK(::pipe(p) == 0);  // blocking
        std::atomic<bool> done{false};
        pthread_t reader = ::pthread_self();
        std::thread sender([&] {
            for (int i = 0; i < 500 && !done.load(); ++i) {
                ::pthread_kill(reader, SIGUSR1);
                std::this_thread::sleep_for(10ms);
            }
            if (!done.load() && ::write(p[1], "x", 1) != 1) std::_Exit(3);
        });
        char c;
        ssize_t r = ::read(p[0], &c, 1);
        int e = errno;
        done = true;
        sender.join();
        CHILD_CHECK(r == -1);
        CHILD_CHECK(e == EINTR);
        CHILD_CHECK(!stop_requested());  // SIGUSR1 only interrupts
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}

TEST_F(SignalsDeathTest, AfterAStopRequestSigalrmKeepsInterruptingBlockingReads) {
    // The safety net for a stop signal that arrives just BEFORE a blocking
    // call: here SIGTERM is handled first, then the process blocks in read()
    // on an empty pipe. SIGALRM, re-armed every second, must interrupt it,
    // and the next blocking read too.
    auto body = [] {
        install_signal_handlers();
        int data[2], quit[2];
        CHILD_CHECK(::pipe(data) == 0 && ::pipe(quit) == 0);

        // Watchdog: if the reads are not interrupted within 8 s, unblock them
        // with data so the checks fail instead of hanging. It blocks every
        // signal so that SIGALRM is delivered to the reading thread.
        sigset_t all, old;
        sigfillset(&all);
        ::pthread_sigmask(SIG_SETMASK, &all, &old);
        std::thread watchdog([&] {
            pollfd pfd{quit[0], POLLIN, 0};
            if (::poll(&pfd, 1, 8000) == 0 && ::write(data[1], "xx", 2) != 2) std::_Exit(3);
        });
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);

        ::raise(SIGTERM);
        CHILD_CHECK(stop_requested());
        char c;
        for (int round = 0; round < 2; ++round) {
            auto start = std::chrono::steady_clock::now();
            ssize_t r = ::read(data[0], &c, 1);
            int e = errno;
            auto waited = std::chrono::steady_clock::now() - start;
            CHILD_CHECK(r == -1);
            CHILD_CHECK(e == EINTR);
            CHILD_CHECK(waited < 2500ms);
        }
        CHILD_CHECK(::write(quit[1], "q", 1) == 1);
        watchdog.join();
        std::_Exit(0);
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "");
}
