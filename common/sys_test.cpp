#include <gtest/gtest.h>

#include "sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace sys = course::sys;
using sys::Call;

namespace {

// A connected pair of non-blocking local stream sockets, closed with the bare
// ::close so that the close counter and the trace are left alone.
struct SocketPair {
    int a = -1, b = -1;
    SocketPair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) a = sv[0], b = sv[1];
    }
    ~SocketPair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};

// Sends everything written to fd 2 into a pipe until text() is called.
// The sys wrappers write their trace lines with write(2), so std::cerr
// redirection would not see them; this swaps the descriptor itself.
class StderrCapture {
public:
    StderrCapture() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
        read_end_ = p[0];
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(p[1], STDERR_FILENO);
        ::close(p[1]);
    }
    ~StderrCapture() { text(); }
    // Restores fd 2 and returns what was written (the pipe holds 64 KiB, far
    // more than a few trace lines).
    std::string text() {
        if (saved_ < 0) return captured_;
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
        char buf[4096];
        for (ssize_t n; (n = ::read(read_end_, buf, sizeof buf)) > 0;) captured_.append(buf, static_cast<size_t>(n));
        ::close(read_end_);
        return captured_;
    }

private:
    int read_end_ = -1, saved_ = -1;
    std::string captured_;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The counters and the trace switch are process-wide: start each test clean.
class Sys : public ::testing::Test {
protected:
    void SetUp() override {
        sys::set_trace(false);
        sys::reset_counters();
        ASSERT_GE(pair.a, 0);
    }
    void TearDown() override { sys::set_trace(false); }
    SocketPair pair;
    char buf[16] = {};
};

}  // namespace

TEST_F(Sys, SuccessfulReadCountsACallAndNoError) {
    ASSERT_EQ(::write(pair.b, "abc", 3), 3);
    EXPECT_EQ(sys::read(pair.a, buf, sizeof buf), 3);
    sys::Counter c = sys::counter(Call::read);
    EXPECT_EQ(c.calls, 1u);
    EXPECT_EQ(c.eagain, 0u);
    EXPECT_EQ(c.eintr, 0u);
    EXPECT_EQ(c.errors, 0u);
}

TEST_F(Sys, ReadOnAnEmptyNonBlockingSocketCountsEagain) {
    EXPECT_EQ(sys::read(pair.a, buf, sizeof buf), -1);
    sys::Counter c = sys::counter(Call::read);
    EXPECT_EQ(c.calls, 1u);
    EXPECT_EQ(c.eagain, 1u);
    EXPECT_EQ(c.errors, 0u);
}

TEST_F(Sys, ReadOnABadFdCountsAnError) {
    EXPECT_EQ(sys::read(-1, buf, sizeof buf), -1);
    sys::Counter c = sys::counter(Call::read);
    EXPECT_EQ(c.calls, 1u);
    EXPECT_EQ(c.eagain, 0u);
    EXPECT_EQ(c.errors, 1u);
}

TEST_F(Sys, ResetCountersZeroesEveryKind) {
    sys::read(-1, buf, sizeof buf);
    sys::write(-1, buf, 1);
    sys::reset_counters();
    EXPECT_EQ(sys::counter(Call::read).calls, 0u);
    EXPECT_EQ(sys::counter(Call::read).errors, 0u);
    EXPECT_EQ(sys::counter(Call::write).calls, 0u);
}

TEST_F(Sys, EachWrapperCountsUnderItsOwnKind) {
    sys::write(pair.b, "x", 1);
    sys::read(pair.a, buf, sizeof buf);
    sys::accept4(pair.a, nullptr, nullptr, 0);  // not a listener: an error, but counted as accept
    sys::shutdown(pair.b, SHUT_WR);
    pollfd pfd{pair.a, POLLIN, 0};
    sys::poll(&pfd, 1, 0);
    fd_set rd;
    FD_ZERO(&rd);
    timeval zero{0, 0};
    sys::select(0, &rd, nullptr, nullptr, &zero);
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    sys::epoll_ctl(ep, EPOLL_CTL_ADD, pair.a, &ev);
    sys::epoll_wait(ep, &ev, 1, 0);
    sys::close(ep);

    for (int i = 0; i < sys::kCallKinds; ++i) {
        auto kind = static_cast<Call>(i);
        EXPECT_EQ(sys::counter(kind).calls, 1u) << sys::call_name(kind);
    }
}

TEST_F(Sys, FailedCallLeavesErrnoForTheCaller) {
    // With tracing on and stderr on /dev/full, the wrapper's own trace write
    // fails with ENOSPC: the caller must still see the errno of its call.
    sys::set_trace(true);
    int saved_stderr = ::dup(STDERR_FILENO);
    int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(full, 0);
    ::dup2(full, STDERR_FILENO);
    ::close(full);

    errno = 0;
    ssize_t eagain_result = sys::read(pair.a, buf, sizeof buf);
    int eagain_errno = errno;
    errno = 0;
    ssize_t ebadf_result = sys::write(-1, buf, 1);
    int ebadf_errno = errno;

    ::dup2(saved_stderr, STDERR_FILENO);
    ::close(saved_stderr);
    EXPECT_EQ(eagain_result, -1);
    EXPECT_EQ(eagain_errno, EAGAIN);
    EXPECT_EQ(ebadf_result, -1);
    EXPECT_EQ(ebadf_errno, EBADF);
}

TEST_F(Sys, StatsLineListsOnlyTheKindsCalled) {
    ASSERT_EQ(::write(pair.b, "abc", 3), 3);
    sys::read(pair.a, buf, sizeof buf);  // 3
    sys::read(pair.a, buf, sizeof buf);  // -1 EAGAIN
    EXPECT_EQ(sys::stats_line(), "stats: read=2 read_eagain=1 read_eintr=0 read_err=0");
}

TEST_F(Sys, StatsLineListsKindsInDeclarationOrder) {
    sys::write(-1, buf, 1);
    sys::accept4(-1, nullptr, nullptr, 0);
    EXPECT_EQ(sys::stats_line(), "stats: accept=1 accept_eagain=0 accept_eintr=0 accept_err=1"
                                 " write=1 write_eagain=0 write_eintr=0 write_err=1");
}

TEST_F(Sys, StatsLineIsBareAfterReset) { EXPECT_EQ(sys::stats_line(), "stats:"); }

TEST_F(Sys, PrintStatsWritesTheStatsLineToStderr) {
    sys::read(-1, buf, sizeof buf);
    StderrCapture err;
    sys::print_stats();
    EXPECT_EQ(err.text(), sys::stats_line() + "\n");
}

TEST_F(Sys, TraceShowsTheCallAndEagain) {
    StderrCapture err;
    sys::set_trace(true);
    sys::read(pair.a, buf, sizeof buf);
    sys::set_trace(false);
    std::string text = err.text();
    EXPECT_TRUE(contains(text, "read(fd=" + std::to_string(pair.a) + ", len=16)")) << text;
    EXPECT_TRUE(contains(text, "-1 EAGAIN")) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;  // one line per call
}

TEST_F(Sys, TraceShowsTheResultOfASuccessfulCall) {
    ASSERT_EQ(::write(pair.b, "abc", 3), 3);
    StderrCapture err;
    sys::set_trace(true);
    sys::read(pair.a, buf, sizeof buf);
    sys::set_trace(false);
    std::string text = err.text();
    EXPECT_TRUE(contains(text, "read(fd=")) << text;
    EXPECT_FALSE(contains(text, "-1")) << text;
    // The result is the last thing on the line (possibly followed by a colour reset).
    EXPECT_TRUE(contains(text, "= 3\n") || contains(text, "3\033[0m\n")) << text;
}

TEST_F(Sys, NothingIsTracedWhenTracingIsOff) {
    StderrCapture err;
    sys::read(pair.a, buf, sizeof buf);
    sys::trace_note("client connected");
    EXPECT_EQ(err.text(), "");
    EXPECT_FALSE(sys::tracing());
}

TEST_F(Sys, TraceNotePrintsOnlyWhenTracing) {
    StderrCapture err;
    sys::set_trace(true);
    EXPECT_TRUE(sys::tracing());
    sys::trace_note("client 127.0.0.1:5000 connected");
    sys::set_trace(false);
    sys::trace_note("not printed");
    std::string text = err.text();
    EXPECT_TRUE(contains(text, "client 127.0.0.1:5000 connected")) << text;
    EXPECT_FALSE(contains(text, "not printed")) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

namespace {

void on_usr1(int) {}

// In a child process: a blocking read interrupted by a signal counts as eintr.
// Another thread sends SIGUSR1 to the reader until its read returns; if that
// never happens it gives up and writes a byte so the read returns 1 (failure).
[[noreturn]] void blocking_read_interrupted_counts_eintr() {
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0;  // no SA_RESTART, so the read fails with EINTR
    ::sigaction(SIGUSR1, &sa, nullptr);
    int p[2];
    if (::pipe(p) != 0) std::_Exit(3);
    sys::reset_counters();

    std::atomic<bool> done{false};
    pthread_t reader = ::pthread_self();
    std::thread sender([&] {
        for (int i = 0; i < 500 && !done.load(); ++i) {
            ::pthread_kill(reader, SIGUSR1);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!done.load() && ::write(p[1], "x", 1) != 1) std::_Exit(4);
    });
    char c;
    ssize_t r = sys::read(p[0], &c, 1);
    int e = errno;
    done = true;
    sender.join();
    sys::Counter k = sys::counter(Call::read);
    std::fprintf(stderr, "r=%zd errno=%d calls=%llu eintr=%llu errors=%llu\n", r, e,
                 static_cast<unsigned long long>(k.calls), static_cast<unsigned long long>(k.eintr),
                 static_cast<unsigned long long>(k.errors));
    std::_Exit(r == -1 && e == EINTR && k.calls == 1 && k.eintr == 1 && k.errors == 0 ? 0 : 1);
}

}  // namespace

TEST(SysDeathTest, InterruptedReadCountsEintr) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(blocking_read_interrupted_counts_eintr(), ::testing::ExitedWithCode(0), "");
}
