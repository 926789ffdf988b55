// Tests of the bottom half of chapter 07's runtime: the pollDesc on its own, and
// the two Poller backends on real sockets.
//
// The waiters are coroutines of a trivial type defined here (Probe), owned by
// the test: the test resumes only its own coroutines, and only after the
// runtime has handed them back.
#include "netpoll.hpp"
#include "poll_desc.hpp"
#include "fd.hpp"
#include "sys.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace course;
using namespace course::runtime;
using namespace std::chrono_literals;

namespace {

// --- a trivial coroutine type ------------------------------------------------

// Starts at once and runs until its first real suspension; keeps its frame
// after finishing so the test can look at done(); destroyed by its owner.
struct Probe {
    struct promise_type {
        Probe get_return_object() { return Probe{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() { std::terminate(); }
    };

    explicit Probe(std::coroutine_handle<promise_type> h) : handle(h) {}
    Probe(Probe&& other) noexcept : handle(std::exchange(other.handle, {})) {}
    Probe& operator=(Probe&&) = delete;
    ~Probe() {
        if (handle) handle.destroy();
    }

    bool done() const { return handle.done(); }
    bool is(Waiter w) const { return w.handle().address() == handle.address(); }

    std::coroutine_handle<promise_type> handle;
};

// One wait on `pd`, its result stored in `result`.
Probe wait_on(pollDesc* pd, Mode mode, std::optional<int>& result) { result = co_await poll_runtime_pollWait(pd, mode); }

// What a slot holds, by name.
std::string state(std::uintptr_t slot) {
    if (slot == pdNil) return "pdNil";
    if (slot == pdReady) return "pdReady";
    if (slot == pdWait) return "pdWait";
    return "parked";
}

// A poller that watches nothing, for pollDescs with no real fd behind them:
// the PollDescTest cases make no system call.
struct NullPoller final : Poller {
    const char* name() const override { return "null"; }
    void netpollinit() override {}
    int netpollopen(int, pollDesc*) override { return 0; }
    int netpollclose(int) override { return 0; }
    void netpoll(std::chrono::nanoseconds, gList&) override {}
    void netpollBreak() noexcept override {}
    std::uint64_t break_writes() const noexcept override { return 0; }
};

// The mask of a taggedPointer's tag, and of fdseq.
constexpr std::uint64_t kTagMask = (std::uint64_t{1} << tagBits) - 1;

// Resumes `probe` if and only if `list` holds exactly it, as the scheduler would.
::testing::AssertionResult resume_if_only(std::span<const Waiter> list, Probe& probe) {
    if (list.size() != 1) return ::testing::AssertionFailure() << "expected 1 runnable waiter, got " << list.size();
    if (!probe.is(list[0])) return ::testing::AssertionFailure() << "the runnable waiter is not the probe";
    probe.handle.resume();
    return ::testing::AssertionSuccess();
}

// --- sockets and threads -----------------------------------------------------

struct SocketPair {
    Fd a, b;
    SocketPair() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
        a = Fd(sv[0]);
        b = Fd(sv[1]);
    }
};

void send_byte(const Fd& fd) { ASSERT_EQ(::write(fd.get(), "x", 1), 1); }

pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Whether thread `tid` of this process is blocked in epoll_wait or poll right
// now, from /proc/self/task/TID/syscall (its first field is the number of the
// system call the thread is in, or "running").
bool blocked_in_poll(pid_t tid) {
    std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
    long nr = -1;
    if (!(in >> nr)) return false;
    for (long waiting : {long{SYS_epoll_wait}, long{SYS_epoll_pwait}, long{SYS_poll}, long{SYS_ppoll}})
        if (nr == waiting) return true;
    return false;
}

// Waits (bounded) until `tid` blocks in the poller. A condition being polled,
// not a sleep standing in for synchronisation.
bool wait_until_blocked(pid_t tid, std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (blocked_in_poll(tid)) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

std::chrono::nanoseconds since(std::chrono::steady_clock::time_point t0) { return std::chrono::steady_clock::now() - t0; }

// --- the fixture for tests run on both backends --------------------------------

class Backend : public ::testing::TestWithParam<const char*> {
protected:
    std::unique_ptr<Poller> poller = make_poller(GetParam());
    pollCache cache;

    bool is_epoll() const { return std::string(GetParam()) == "epoll"; }
    sys::Call wait_call() const { return is_epoll() ? sys::Call::epoll_wait : sys::Call::poll; }

    pollDesc* open(const Fd& fd) {
        auto [pd, errno_] = poll_runtime_pollOpen(fd.get(), cache, *poller);
        EXPECT_EQ(errno_, 0) << std::strerror(errno_);
        return pd;
    }
    void close(pollDesc* pd) {
        gList woken;
        poll_runtime_pollUnblock(pd, woken);
        EXPECT_TRUE(woken.empty());
        poll_runtime_pollClose(pd, cache, *poller);
    }
    // Lets the poller see what registration itself reports (epoll: the
    // socket is writable, one EPOLLOUT edge) so that later calls start quiet.
    void settle() { (void)poller->netpoll(0ns); }

    // netpoll(-1) until something is runnable, at most `tries` times.
    gList poll_until_runnable(int tries = 10) {
        for (int i = 0; i < tries; ++i) {
            auto list = poller->netpoll(-1ns);
            if (!list.empty()) return list;
        }
        return {};
    }
};

INSTANTIATE_TEST_SUITE_P(Pollers, Backend, ::testing::Values("epoll", "poll"),
                         [](const auto& info) { return std::string(info.param); });

// --- the poller: delays, EINTR, break --------------------------------------------

TEST_P(Backend, ZeroDelayReturnsAtOnceWithNothing) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    for (int i = 0; i < 3; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        auto list = poller->netpoll(0ns);
        EXPECT_TRUE(list.empty());
        EXPECT_LT(since(t0), 100ms);
    }
    close(pd);
}

TEST_P(Backend, BlockingPollReturnsTheParkedReaderWhenDataArrives) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    ASSERT_FALSE(reader.done());
    EXPECT_EQ(state(pd->rg), "parked");

    pid_t main_tid = current_tid();
    std::thread writer([&] {
        wait_until_blocked(main_tid);  // if this times out the write still wakes it
        send_byte(sp.b);
    });
    auto list = poll_until_runnable();
    writer.join();
    ASSERT_TRUE(resume_if_only(list, reader));
    EXPECT_TRUE(reader.done());
    EXPECT_EQ(result, pollNoError);
    close(pd);
}

TEST_P(Backend, PositiveDelayWaitsAtLeastOneMillisecond) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    for (auto delay : {std::chrono::nanoseconds(1ns), std::chrono::nanoseconds(1us), std::chrono::nanoseconds(999us)}) {
        auto t0 = std::chrono::steady_clock::now();
        auto list = poller->netpoll(delay);
        auto took = since(t0);
        EXPECT_TRUE(list.empty());
        EXPECT_GE(took, 1ms) << "delay " << delay.count() << " ns";
        EXPECT_LT(took, 1s);
    }
    close(pd);
}

// Readiness nobody waits for must not wake the poller again and again: an
// idle connection is always writable, and a hung-up one with unread data is
// readable and "hung up" for ever. epoll reports each edge once; the poll
// backend does not watch an fd nobody waits on.
TEST_P(Backend, IdleAndHungUpFdsWithoutWaitersDoNotWakeThePoller) {
    SocketPair idle, hung_up;
    pollDesc* a = open(idle.a);
    pollDesc* b = open(hung_up.a);
    send_byte(hung_up.b);
    hung_up.b.reset();
    settle();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(30ms).empty());
    EXPECT_GE(since(t0), 30ms) << "the poller woke up for readiness nobody waits for";
    close(a);
    close(b);
}

// Go's netpoll truncates the delay to whole milliseconds; only a positive
// delay under 1 ms is raised (to 1), so that it never becomes "just look".
TEST(Netpoll, TimeoutTruncatesToMillisecondsAsGosDoes) {
    EXPECT_EQ(timeout_ms(-1ns), -1);
    EXPECT_EQ(timeout_ms(0ns), 0);
    EXPECT_EQ(timeout_ms(1ns), 1);
    EXPECT_EQ(timeout_ms(999us), 1);
    EXPECT_EQ(timeout_ms(1ms), 1);
    EXPECT_EQ(timeout_ms(1ms + 1ns), 1);
    EXPECT_EQ(timeout_ms(1999us), 1);
    EXPECT_EQ(timeout_ms(2ms), 2);
    EXPECT_EQ(timeout_ms(std::chrono::seconds(999'999)), 999'999'000);
    EXPECT_EQ(timeout_ms(std::chrono::nanoseconds::max()), 1'000'000'000);  // capped, not overflowed
}

extern "C" void ignore_signal(int) {}

TEST_P(Backend, InterruptedWaitReturnsAnEmptyList) {
    struct sigaction sa {}, old {};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the blocked call returns EINTR
    ASSERT_EQ(::sigaction(SIGUSR2, &sa, &old), 0);

    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    const auto eintr_before = sys::counter(wait_call()).eintr;
    pid_t main_tid = current_tid();
    pthread_t main_thread = ::pthread_self();
    std::atomic<bool> returned{false};
    std::thread killer([&] {
        // A signal that lands just before the call blocks is missed: retry, bounded.
        for (int attempt = 0; attempt < 20 && !returned; ++attempt) {
            if (wait_until_blocked(main_tid, 1s)) ::pthread_kill(main_thread, SIGUSR2);
            for (int i = 0; i < 100 && !returned; ++i) std::this_thread::sleep_for(2ms);
        }
        if (!returned) poller->netpollBreak();  // give up without hanging; the test fails below
    });
    auto list = poller->netpoll(-1ns);
    returned = true;
    killer.join();
    ::sigaction(SIGUSR2, &old, nullptr);

    EXPECT_TRUE(list.empty());
    EXPECT_EQ(sys::counter(wait_call()).eintr, eintr_before + 1);
    close(pd);
}

TEST_P(Backend, BreakFromAnotherThreadWakesABlockedPoll) {
    pid_t main_tid = current_tid();
    std::atomic<bool> was_blocked{false};
    std::thread breaker([&] {
        was_blocked = wait_until_blocked(main_tid);
        poller->netpollBreak();
    });
    auto t0 = std::chrono::steady_clock::now();
    auto list = poller->netpoll(-1ns);
    breaker.join();
    EXPECT_TRUE(was_blocked) << "netpoll(-1) never blocked";
    EXPECT_TRUE(list.empty());
    EXPECT_LT(since(t0), 10s);
}

TEST_P(Backend, AThousandBreaksCostOneWriteAndOneWakeUp) {
    const auto writes_before = poller->break_writes();
    std::thread breaker([&] {
        for (int i = 0; i < 1000; ++i) poller->netpollBreak();
    });
    breaker.join();
    EXPECT_EQ(poller->break_writes(), writes_before + 1);

    const auto calls_before = sys::counter(wait_call()).calls;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(-1ns).empty());  // the one wake-up
    EXPECT_LT(since(t0), 1s);
    EXPECT_EQ(sys::counter(wait_call()).calls, calls_before + 1);

    // Nothing left: a bounded wait runs to its end.
    t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(20ms).empty());
    EXPECT_GE(since(t0), 20ms);

    // And the next break writes again.
    poller->netpollBreak();
    EXPECT_EQ(poller->break_writes(), writes_before + 2);
    EXPECT_TRUE(poller->netpoll(-1ns).empty());
}

TEST_P(Backend, ZeroDelayPollLeavesTheBreakForABlockingPoll) {
    const auto writes_before = poller->break_writes();
    poller->netpollBreak();
    EXPECT_TRUE(poller->netpoll(0ns).empty());  // sees it, leaves it
    poller->netpollBreak();                     // still pending: no second write
    EXPECT_EQ(poller->break_writes(), writes_before + 1);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(-1ns).empty());  // returns at once, consumes it
    EXPECT_LT(since(t0), 1s);
    t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(20ms).empty());
    EXPECT_GE(since(t0), 20ms);
}

// --- the poller and the pollDesc together --------------------------------------

// A waiter that leaves without I/O (here a deadline) leaves its direction
// asked for: the poll backend armed it (Go's netpollarm) and nothing disarmed
// it. The data that arrives afterwards may be reported, once (it is noted as
// sticky readiness); after that the poller must sleep, not return at once for
// a level nobody waits for. With epoll the edge is reported once anyway.
TEST_P(Backend, ALevelLeftArmedIsReportedAtMostOnce) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    ASSERT_FALSE(reader.done());
    gList woken;
    auto now = Clock::now();
    poll_runtime_pollSetDeadline(pd, now, Mode::read, now, woken);  // expired: the reader leaves
    ASSERT_TRUE(resume_if_only(woken, reader));
    EXPECT_EQ(result, pollErrTimeout);

    send_byte(sp.b);  // nobody reads it
    EXPECT_TRUE(poller->netpoll(0ns).empty());  // maybe reported here: nobody to wake
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(poller->netpoll(30ms).empty());
    EXPECT_GE(since(t0), 30ms) << "the poller woke up again for a level nobody waits for";
    close(pd);
}

TEST_P(Backend, ReadinessWithNobodyWaitingIsNotLost) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    send_byte(sp.b);
    EXPECT_TRUE(poller->netpoll(0ns).empty());  // nobody waits: nobody to wake

    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    if (is_epoll()) {
        // The edge was noted (sticky "ready"): the wait completed without parking.
        EXPECT_TRUE(reader.done());
    } else {
        // poll was not asked about this fd while nobody waited; the level is
        // still there, so the first poll after parking reports it.
        ASSERT_FALSE(reader.done());
        ASSERT_TRUE(resume_if_only(poller->netpoll(0ns), reader));
    }
    EXPECT_TRUE(reader.done());
    EXPECT_EQ(result, pollNoError);
    EXPECT_EQ(state(pd->rg), "pdNil");
    close(pd);
}

TEST_P(Backend, AParkedWaiterIsWokenExactlyOnce) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    send_byte(sp.b);
    auto list = poll_until_runnable();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_TRUE(reader.is(list[0]));
    // More data before the woken reader runs: a new edge, nobody new to wake.
    send_byte(sp.b);
    EXPECT_TRUE(poller->netpoll(0ns).empty());
    reader.handle.resume();
    EXPECT_TRUE(reader.done());
    EXPECT_EQ(result, pollNoError);
    close(pd);
}

TEST_P(Backend, CloseWakesTheParkedReaderAndLaterWaitsFailAtOnce) {
    SocketPair sp;
    pollDesc* pd = open(sp.a);
    settle();
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    ASSERT_FALSE(reader.done());

    gList woken;
    poll_runtime_pollUnblock(pd, woken);
    ASSERT_TRUE(resume_if_only(woken, reader));
    EXPECT_EQ(result, pollErrClosing);
    EXPECT_TRUE(poller->netpoll(0ns).empty());  // nothing else to wake

    for (Mode mode : {Mode::read, Mode::write}) {
        std::optional<int> later;
        Probe p = wait_on(pd, mode, later);
        EXPECT_TRUE(p.done()) << "a wait on a closing descriptor must not park";
        EXPECT_EQ(later, pollErrClosing);
    }
    poll_runtime_pollClose(pd, cache, *poller);
}

// epoll: one EPOLL_CTL_ADD for the whole life of a fd, however much it waits,
// and one EPOLL_CTL_DEL at close.
TEST(EpollBackend, OneAddPerFdAndOneDelAtClose) {
    auto poller = make_poller("epoll");
    pollCache cache;
    SocketPair sp;
    const auto before = sys::counter(sys::Call::epoll_ctl);
    auto [pd, errno_] = poll_runtime_pollOpen(sp.a.get(), cache, *poller);
    ASSERT_EQ(errno_, 0);
    EXPECT_EQ(sys::counter(sys::Call::epoll_ctl).calls, before.calls + 1);

    for (int round = 0; round < 100; ++round) {
        std::optional<int> result;
        Probe reader = wait_on(pd, Mode::read, result);
        send_byte(sp.b);
        if (!reader.done()) {
            auto list = poller->netpoll(-1ns);
            ASSERT_TRUE(resume_if_only(list, reader)) << "round " << round;
        }
        ASSERT_EQ(result, pollNoError);
        char c;
        ASSERT_EQ(::read(sp.a.get(), &c, 1), 1);
    }
    EXPECT_EQ(sys::counter(sys::Call::epoll_ctl).calls, before.calls + 1);

    gList woken;
    poll_runtime_pollUnblock(pd, woken);
    poll_runtime_pollClose(pd, cache, *poller);
    EXPECT_EQ(sys::counter(sys::Call::epoll_ctl).calls, before.calls + 2);
    EXPECT_EQ(sys::counter(sys::Call::epoll_ctl).errors, before.errors);
}

TEST(PollBackend, OpenAndCloseMakeNoSystemCall) {
    auto poller = make_poller("poll");
    pollCache cache;
    SocketPair sp;
    const auto ctl = sys::counter(sys::Call::epoll_ctl).calls;
    const auto polls = sys::counter(sys::Call::poll).calls;
    auto [pd, errno_] = poll_runtime_pollOpen(sp.a.get(), cache, *poller);
    ASSERT_EQ(errno_, 0);
    EXPECT_EQ(poller->netpollopen(sp.a.get(), pd), EEXIST);
    gList woken;
    poll_runtime_pollUnblock(pd, woken);
    poll_runtime_pollClose(pd, cache, *poller);
    EXPECT_EQ(poller->netpollclose(sp.a.get()), ENOENT);
    EXPECT_EQ(sys::counter(sys::Call::epoll_ctl).calls, ctl);
    EXPECT_EQ(sys::counter(sys::Call::poll).calls, polls);
}

// A stale event: the kernel reports readiness of a file that our pollDesc no
// longer stands for. netpollclose's EPOLL_CTL_DEL normally rules that out, so
// the test makes one the way a racing close would leave it: epoll registers an
// open file, not an fd number (epoll(7), "Questions and answers", 6), and a
// dup() keeps the old file, and with it the old registration and its old tag,
// alive after close(2) when the DEL is skipped. The fd number and the pollDesc
// are then reused for a new socket; an event with the old tag must be ignored.
TEST(EpollBackend, AStaleEventForAClosedAndReusedFdIsIgnored) {
    auto poller = make_poller("epoll");
    pollCache cache;

    auto old_pair = std::make_unique<SocketPair>();
    const int fd = old_pair->a.get();
    auto [pd, errno_] = poll_runtime_pollOpen(fd, cache, *poller);
    ASSERT_EQ(errno_, 0);
    const auto old_seq = pd->fdseq;
    (void)poller->netpoll(0ns);
    Fd keep_old_file(::dup(fd));
    ASSERT_TRUE(keep_old_file);
    gList woken;
    poll_runtime_pollUnblock(pd, woken);
    cache.free(pd);        // recycled WITHOUT netpollclose: the registration stays
    old_pair->a.reset();   // close(2) the fd number; the file lives on in keep_old_file

    SocketPair fresh;
    ASSERT_EQ(fresh.a.get(), fd) << "the kernel hands out the lowest free fd number";
    auto [reused, reopen_errno] = poll_runtime_pollOpen(fd, cache, *poller);
    ASSERT_EQ(reopen_errno, 0) << std::strerror(reopen_errno);
    ASSERT_EQ(reused, pd) << "the cache hands the recycled pollDesc back";
    ASSERT_NE(reused->fdseq, old_seq);
    (void)poller->netpoll(0ns);  // the new registration's own EPOLLOUT edge

    std::optional<int> result;
    Probe reader = wait_on(reused, Mode::read, result);
    ASSERT_FALSE(reader.done());

    // Readable: the OLD file. Its event carries (pd, old_seq).
    send_byte(old_pair->b);
    auto t0 = std::chrono::steady_clock::now();
    auto list = poller->netpoll(5s);
    EXPECT_LT(since(t0), 4s) << "the stale event never arrived: the test proves nothing";
    EXPECT_TRUE(list.empty()) << "a stale event woke the new fd's reader";
    EXPECT_EQ(state(reused->rg), "parked");

    // Readable: the new socket. Its reader is woken.
    send_byte(fresh.b);
    ASSERT_TRUE(resume_if_only(poller->netpoll(-1ns), reader));
    EXPECT_EQ(result, pollNoError);

    woken.clear();
    poll_runtime_pollUnblock(reused, woken);
    poll_runtime_pollClose(reused, cache, *poller);
}

TEST(Netpoll, UnknownPollerNameIsRejected) { EXPECT_THROW(make_poller("kqueue"), std::invalid_argument); }

// --- the pollDesc on its own -------------------------------------------------------

class PollDescTest : public ::testing::Test {
protected:
    NullPoller null;
    pollCache cache;
    pollDesc* pd = nullptr;
    gList to_run;
    Clock::time_point now = Clock::now();
    void SetUp() override { pd = open(42); }  // no real fd needed: nothing here makes a syscall
    pollDesc* open(int fd) {
        auto [p, errno_] = poll_runtime_pollOpen(fd, cache, null);
        EXPECT_EQ(errno_, 0);
        return p;
    }
};

TEST_F(PollDescTest, ReadyWaitCompletesWithoutSuspending) {
    netpollready(to_run, pd, Mode::read);
    EXPECT_TRUE(to_run.empty());
    EXPECT_EQ(state(pd->rg), "pdReady");
    EXPECT_EQ(state(pd->wg), "pdNil");

    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    EXPECT_TRUE(reader.done()) << "an already-ready wait must not suspend";
    EXPECT_EQ(result, pollNoError);
    EXPECT_EQ(state(pd->rg), "pdNil");  // consumed

    Probe again = wait_on(pd, Mode::read, result);  // the readiness is gone: this one parks
    EXPECT_FALSE(again.done());
    EXPECT_EQ(state(pd->rg), "parked");
    netpollready(to_run, pd, Mode::read);
    ASSERT_TRUE(resume_if_only(to_run, again));
}

TEST_F(PollDescTest, AMillionReadyWaitsInARowDoNotGrowTheStack) {
    // Each iteration is a wait that completes at once; if any of them went
    // through a suspension and a resume chain, ASan or the stack would say so.
    std::optional<int> result;
    int completed = 0;
    auto loop = [&]() -> Probe {
        for (int i = 0; i < 1'000'000; ++i) {
            netpollready(to_run, pd, Mode::read);
            result = co_await poll_runtime_pollWait(pd, Mode::read);
            if (result == pollNoError) ++completed;
        }
    };
    Probe p = loop();
    EXPECT_TRUE(p.done());
    EXPECT_EQ(completed, 1'000'000);
    EXPECT_TRUE(to_run.empty());
}

TEST_F(PollDescTest, SlotStatesFollowGo) {
    // pdNil -> pdWait (netpollblock) -> parked (netpollblockcommit), by hand.
    EXPECT_FALSE(netpollblock(pd, Mode::write)) << "nothing noted: park";
    EXPECT_EQ(state(pd->wg), "pdWait");
    // Readiness while in `wait` (only possible with threads in Go): the slot
    // becomes ready, nobody to wake, and the commit refuses to park.
    EXPECT_FALSE(netpollunblock(pd, Mode::write, true));
    EXPECT_EQ(state(pd->wg), "pdReady");
    EXPECT_FALSE(netpollblockcommit(std::coroutine_handle<>(std::noop_coroutine()), &pd->wg));
    EXPECT_EQ(after_gopark(pd, Mode::write, pd->fdseq), pollNoError);
    EXPECT_EQ(state(pd->wg), "pdNil");
}

TEST_F(PollDescTest, AParkedWaiterIsWokenExactlyOnce) {
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    netpollready(to_run, pd, Mode::read);
    netpollready(to_run, pd, Mode::read_write);
    netpollready(to_run, pd, Mode::read);
    ASSERT_TRUE(resume_if_only(to_run, reader));
    EXPECT_EQ(result, pollNoError);
}

TEST_F(PollDescTest, ReadAndWriteWaitersAreIndependent) {
    std::optional<int> r, w;
    Probe reader = wait_on(pd, Mode::read, r);
    Probe writer = wait_on(pd, Mode::write, w);
    netpollready(to_run, pd, Mode::write);
    ASSERT_TRUE(resume_if_only(to_run, writer));
    EXPECT_FALSE(reader.done());
    to_run.clear();
    netpollready(to_run, pd, Mode::read);
    ASSERT_TRUE(resume_if_only(to_run, reader));
}

TEST_F(PollDescTest, CloseWakesBothWaitersWithClosing) {
    std::optional<int> r, w;
    Probe reader = wait_on(pd, Mode::read, r);
    Probe writer = wait_on(pd, Mode::write, w);
    poll_runtime_pollUnblock(pd, to_run);
    ASSERT_EQ(to_run.size(), 2u);
    for (Waiter w : to_run) w.handle().resume();  // both are ours
    EXPECT_EQ(r, pollErrClosing);
    EXPECT_EQ(w, pollErrClosing);
    // Readiness noted earlier does not beat close.
    netpollready(to_run, pd, Mode::read);
    std::optional<int> later;
    Probe p = wait_on(pd, Mode::read, later);
    EXPECT_TRUE(p.done());
    EXPECT_EQ(later, pollErrClosing);
    EXPECT_EQ(poll_runtime_pollReset(pd, Mode::read), pollErrClosing);
}

TEST_F(PollDescTest, PollResetForgetsNotedReadiness) {
    netpollready(to_run, pd, Mode::read);
    EXPECT_EQ(poll_runtime_pollReset(pd, Mode::read), pollNoError);
    EXPECT_EQ(state(pd->rg), "pdNil");
}

TEST_F(PollDescTest, DeadlineTimerWakesTheParkedReaderWithTimeout) {
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    EXPECT_TRUE(to_run.empty());
    const auto seq = pd->rseq;  // what the scheduler's timer carries

    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    ASSERT_FALSE(reader.done());
    EXPECT_TRUE(netpolldeadlineimpl(pd, seq, true, false, to_run));
    ASSERT_TRUE(resume_if_only(to_run, reader));
    EXPECT_EQ(result, pollErrTimeout);

    // Expired: later reads fail at once; writes are unaffected.
    std::optional<int> later;
    Probe again = wait_on(pd, Mode::read, later);
    EXPECT_TRUE(again.done());
    EXPECT_EQ(later, pollErrTimeout);
    EXPECT_EQ(netpollcheckerr(pd, Mode::write), pollNoError);

    // A new deadline in the future lifts the expiry.
    to_run.clear();
    poll_runtime_pollSetDeadline(pd, now + 1h, Mode::read, now, to_run);
    EXPECT_EQ(netpollcheckerr(pd, Mode::read), pollNoError);
}

TEST_F(PollDescTest, DeadlineInThePastWakesTheParkedWaiterAtOnce) {
    std::optional<int> result;
    Probe writer = wait_on(pd, Mode::write, result);
    poll_runtime_pollSetDeadline(pd, now - 1s, Mode::write, now, to_run);
    ASSERT_TRUE(resume_if_only(to_run, writer));
    EXPECT_EQ(result, pollErrTimeout);
    EXPECT_EQ(pd->wd, kDeadlineExpired);
}

TEST_F(PollDescTest, StaleDeadlineTimersAreIgnored) {
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);

    // Armed for +10 ms, then extended while parked: the first timer is stale.
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    const auto first = pd->rseq;
    poll_runtime_pollSetDeadline(pd, now + 1h, Mode::read, now, to_run);
    const auto second = pd->rseq;
    EXPECT_NE(first, second);
    EXPECT_FALSE(netpolldeadlineimpl(pd, first, true, false, to_run));
    EXPECT_TRUE(to_run.empty());
    EXPECT_EQ(state(pd->rg), "parked");
    EXPECT_EQ(netpollcheckerr(pd, Mode::read), pollNoError);

    // Cleared: the second is stale too.
    poll_runtime_pollSetDeadline(pd, kNoDeadline, Mode::read, now, to_run);
    EXPECT_FALSE(netpolldeadlineimpl(pd, second, true, false, to_run));
    EXPECT_EQ(state(pd->rg), "parked");

    // Armed again, then the fd is closed: a timer firing after close is ignored.
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    const auto third = pd->rseq;
    poll_runtime_pollUnblock(pd, to_run);
    ASSERT_TRUE(resume_if_only(to_run, reader));
    EXPECT_EQ(result, pollErrClosing);
    to_run.clear();
    EXPECT_FALSE(netpolldeadlineimpl(pd, third, true, false, to_run));
    EXPECT_EQ(pd->rd, now + 10ms);  // untouched

    // And after the pollDesc is reused for another fd.
    const auto before_reuse = pd->wseq;
    poll_runtime_pollClose(pd, cache, null);
    ASSERT_EQ(open(43), pd) << "the cache hands the same pollDesc back";
    EXPECT_FALSE(netpolldeadlineimpl(pd, before_reuse, false, true, to_run));
    EXPECT_TRUE(to_run.empty());
}

// Go's rule, and ours: whatever the slot holds when the woken waiter runs
// decides, so an event and a timeout together produce one wake-up and one result.
TEST_F(PollDescTest, EventThenTimeoutDeliverExactlyOneResult) {
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    const auto seq = pd->rseq;
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);

    netpollready(to_run, pd, Mode::read);                 // the event: reader runnable
    EXPECT_TRUE(netpolldeadlineimpl(pd, seq, true, false, to_run));  // the timer, before it runs
    ASSERT_TRUE(resume_if_only(to_run, reader));         // woken once
    EXPECT_EQ(result, pollNoError);                  // the data is there: read it
    EXPECT_EQ(netpollcheckerr(pd, Mode::read), pollErrTimeout);  // the next read times out
}

TEST_F(PollDescTest, TimeoutThenEventDeliverExactlyOneResult) {
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    const auto seq = pd->rseq;
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);

    EXPECT_TRUE(netpolldeadlineimpl(pd, seq, true, false, to_run));  // the timer: reader runnable
    netpollready(to_run, pd, Mode::read);                 // the event, before it runs
    ASSERT_TRUE(resume_if_only(to_run, reader));         // woken once
    EXPECT_EQ(result, pollNoError);                  // readiness arrived before it ran
    EXPECT_EQ(state(pd->rg), "pdNil");      // consumed, not left for a second result
}

TEST_F(PollDescTest, WokenByATimerWhoseDeadlineMovedIsASpuriousWakeUp) {
    poll_runtime_pollSetDeadline(pd, now + 10ms, Mode::read, now, to_run);
    const auto seq = pd->rseq;
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    EXPECT_TRUE(netpolldeadlineimpl(pd, seq, true, false, to_run));
    gList ignored;
    poll_runtime_pollSetDeadline(pd, now + 1h, Mode::read, now, ignored);  // extended before the reader ran
    ASSERT_TRUE(resume_if_only(to_run, reader));
    EXPECT_EQ(result, pollNoError) << "neither closed nor expired: the caller retries its syscall";
}

TEST(PollCacheTest, RecyclesPollDescsAndBumpsFdseq) {
    pollCache cache;
    NullPoller null;
    auto [a, errno_] = poll_runtime_pollOpen(5, cache, null);
    ASSERT_EQ(errno_, 0);
    const auto seq = a->fdseq;
    cache.free(a);
    pollDesc* b = cache.alloc();
    EXPECT_EQ(a, b);
    EXPECT_EQ(b->fdseq, (seq + 1) & kTagMask);

    // Type-stable: many allocations, all distinct, none moves.
    std::vector<pollDesc*> all{b};
    for (int i = 0; i < 1000; ++i) all.push_back(cache.alloc());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

TEST(PollCacheTest, AWaiterWokenByCloseTouchesNothingAfterReuse) {
    pollCache cache;
    NullPoller null;
    auto [pd, errno_] = poll_runtime_pollOpen(5, cache, null);
    ASSERT_EQ(errno_, 0);
    std::optional<int> result;
    Probe reader = wait_on(pd, Mode::read, result);
    gList to_run;
    poll_runtime_pollUnblock(pd, to_run);
    // The closer recycles the pollDesc before the woken reader has run (a net
    // layer bug this guards against), and a new fd starts waiting on it.
    cache.free(pd);
    auto [reused, reopen_errno] = poll_runtime_pollOpen(6, cache, null);
    ASSERT_EQ(reopen_errno, 0);
    ASSERT_EQ(reused, pd);
    std::optional<int> other;
    Probe new_reader = wait_on(reused, Mode::read, other);
    ASSERT_EQ(state(reused->rg), "parked");

    ASSERT_TRUE(resume_if_only(to_run, reader));
    EXPECT_EQ(result, pollErrClosing);
    EXPECT_EQ(state(reused->rg), "parked") << "the stale waiter must not touch the new owner's slot";
    gList woken;
    netpollready(woken, reused, Mode::read);
    ASSERT_TRUE(resume_if_only(woken, new_reader));
}

TEST(TaggedPointerTest, PacksPointerAndTagIntoOneWord) {
    pollCache cache;
    pollDesc* pd = cache.alloc();
    for (std::uint64_t tag : {std::uint64_t{0}, std::uint64_t{1}, kTagMask}) {
        taggedPointer tp = taggedPointerPack(pd, tag);
        EXPECT_EQ(tp.pointer(), pd);
        EXPECT_EQ(tp.tag(), tag);
        EXPECT_NE(tp.bits, 0u) << "0 is the break fd's data";
    }
    // fdseq wraps at 19 bits, as the tag does.
    EXPECT_EQ(taggedPointerPack(pd, kTagMask + 2).tag(), 1u);
}

TEST(PollDescDeathTest, TwoWaitersInOneDirectionAreFatal) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            pollDesc pd;
            (void)netpollblock(&pd, Mode::read);
            (void)netpollblock(&pd, Mode::read);
        },
        "double wait");
}

}  // namespace
