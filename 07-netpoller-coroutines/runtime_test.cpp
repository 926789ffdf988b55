// Tests of chapter 07's top half, in-process: Task and the trampoline, the
// scheduler, Conn and Listener over socketpairs. Every coroutine here is
// started with go() and run by Scheduler::run(), which returns when all of
// them have finished (or after stop() and the shutdown).
#include "conn.hpp"
#include "scheduler.hpp"
#include "sys.hpp"
#include "workload.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

using namespace course;
using namespace course::runtime;
using namespace std::chrono_literals;

// --- counting global operator new, per thread --------
// Our operator new is malloc and our delete is free, so they do match; g++
// only sees the malloc/free pair once both are inlined and warns anyway.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
thread_local std::uint64_t allocations = 0;
}
void* operator new(std::size_t n) {
    ++allocations;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

// Runs a task to completion without a scheduler (it must never park).
template <class T>
T run_sync(Task<T> task) {
    auto h = task.release();
    resume(h);
    EXPECT_TRUE(h.done());
    struct Destroy {
        typename Task<T>::Handle frame;
        ~Destroy() { frame.destroy(); }
    } d{h};
    return h.promise().take();
}

// Two connected Conns over a socketpair, registered with `s`.
std::pair<Conn, Conn> conn_pair(Scheduler& s) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
    auto [a, ea] = s.runtime_pollOpen(sv[0]);
    auto [b, eb] = s.runtime_pollOpen(sv[1]);
    if (!a || !b) throw std::system_error(ea ? ea : eb, std::system_category(), "runtime_pollOpen");
    return {Conn(s, Fd(sv[0]), a), Conn(s, Fd(sv[1]), b)};
}

class Runtime : public ::testing::TestWithParam<const char*> {
protected:
    Scheduler sched{GetParam()};
};
INSTANTIATE_TEST_SUITE_P(Pollers, Runtime, ::testing::Values("epoll", "poll"),
                         [](const auto& info) { return std::string(info.param); });

// --- Task and the trampoline ---------------------------------------------------

Task<int> answer() { co_return 42; }
Task<int> twice() { co_return co_await answer() + co_await answer(); }

TEST(TaskTest, IsLazyAndAwaitingRunsIt) {
    bool started = false;
    auto body = [&]() -> Task<int> {  // named: a coroutine lambda's captures live in the lambda
        started = true;
        co_return co_await twice();
    };
    auto t = body();
    EXPECT_FALSE(started);
    EXPECT_EQ(run_sync(std::move(t)), 84);
    EXPECT_TRUE(started);
}

TEST(TaskTest, AnExceptionReachesTheAwaiter) {
    auto thrower = []() -> Task<int> {
        throw std::runtime_error("boom");
        co_return 0;
    };
    auto outer = [&]() -> Task<std::string> {
        try {
            co_await thrower();
        } catch (const std::runtime_error& e) {
            co_return e.what();
        }
        co_return "";
    };
    EXPECT_EQ(run_sync(outer()), "boom");
}

// At -O0 and under ASan (the asan preset) symmetric
// transfer would overflow the stack long before a million.
Task<long> nested(long depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await nested(depth - 1);
}

TEST(TaskTest, AMillionNestedSynchronousAwaitsDoNotGrowTheStack) {
    EXPECT_EQ(run_sync(nested(1'000'000)), 1'000'000);
}

TEST(TaskTest, AMillionSynchronousAwaitsInALoopDoNotGrowTheStack) {
    auto loop = []() -> Task<long> {
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i) sum += co_await answer();
        co_return sum;
    };
    EXPECT_EQ(run_sync(loop()), 42'000'000);
}

TEST(TaskTest, FramesAreRecycledAfterWarmUp) {
    run_sync(twice());
    std::uint64_t before = allocations;
    for (int i = 0; i < 1000; ++i) run_sync(twice());
    EXPECT_EQ(allocations - before, 0u);
}

// --- scheduler ------------------------------------------------------------------

TEST_P(Runtime, RunReturnsWhenEveryCoroutineHasFinished) {
    std::vector<int> order;
    auto one = [&](int i) -> Task<> {
        order.push_back(i);
        co_await sched.Gosched();
        order.push_back(10 + i);
    };
    go(one(1));
    go(one(2));
    sched.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 11, 12})) << "FIFO: yield goes to the back of the queue";
    EXPECT_EQ(sched.gcount(), 0u);
}

// Each read finds its byte at once and completes
// without a trip through the scheduler.
TEST_P(Runtime, AMillionImmediatelyCompletingReadsDoNotGrowTheStack) {
    auto [a, b] = conn_pair(sched);
    long got = 0;
    auto body = [&]() -> Task<> {
        char out = 'x', in = 0;
        for (int i = 0; i < 1'000'000; ++i) {
            auto [w, werr] = co_await a.write_all(std::span(&out, 1));
            auto [n, rerr] = co_await b.read(std::span(&in, 1));
            if (werr || rerr || w != 1 || n != 1) break;
            ++got;
        }
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(got, 1'000'000);
}

TEST_P(Runtime, CloseWakesAParkedReaderWithClosedAndLaterOpsFailAtOnce) {
    auto [a, b] = conn_pair(sched);
    std::error_code parked_err, later_read, later_write, second_close;
    bool reader_done = false;
    auto reader = [&]() -> Task<> {
        char buf[16];
        auto [n, err] = co_await b.read(buf);  // nothing arrives: parks
        parked_err = err;
        reader_done = true;
    };
    auto closer = [&]() -> Task<> {
        EXPECT_EQ(b.fd() >= 0, true);
        EXPECT_FALSE(reader_done) << "the reader must be parked by now";
        co_await b.close();
        EXPECT_TRUE(reader_done) << "close lets the woken reader run before it returns";
        char buf[4] = "abc";
        later_read = (co_await b.read(buf)).err;
        later_write = (co_await b.write_all(std::span(buf, 3))).err;
        second_close = co_await b.close();
        co_await a.close();
    };
    go(reader());
    go(closer());
    sched.run();
    EXPECT_EQ(parked_err, net_errc::closed);
    EXPECT_EQ(parked_err.message(), "use of closed network connection");
    EXPECT_EQ(later_read, net_errc::closed);
    EXPECT_EQ(later_write, net_errc::closed);
    EXPECT_EQ(second_close, net_errc::closed);
}

TEST_P(Runtime, HalfCloseDeliversEverythingThenEof) {
    auto [a, b] = conn_pair(sched);
    std::string got;
    std::error_code end;
    auto body = [&]() -> Task<> {
        std::string data(100'000, 'h');
        go([](Conn& a, std::string data) -> Task<> {  // the writer: everything, then SHUT_WR
            co_await a.write_all(data);
            ::shutdown(a.fd(), SHUT_WR);
        }(a, data));
        char buf[4096];
        for (int i = 0; i < 100'000; ++i) {
            auto [n, err] = co_await b.read(buf);
            if (err) {
                end = err;
                break;
            }
            got.append(buf, n);
        }
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(got.size(), 100'000u);
    EXPECT_EQ(end, net_errc::eof);
}

// A sleep for tests, made of the runtime's own timer: a read that times out.
Task<> sleep_on(Conn& idle, Clock::duration d) {
    idle.set_read_deadline(Clock::now() + d);
    char c;
    co_await idle.read(std::span(&c, 1));
    idle.set_read_deadline(kNoDeadline);
}

TEST_P(Runtime, ReadWithNoDataTimesOutAfterTheDeadline) {
    auto [a, b] = conn_pair(sched);
    std::error_code err;
    Clock::duration took{};
    auto body = [&]() -> Task<> {
        auto start = Clock::now();
        b.set_read_deadline(start + 50ms);
        char buf[8];
        err = (co_await b.read(buf)).err;
        took = Clock::now() - start;
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(err, net_errc::timeout);
    EXPECT_EQ(err.message(), "i/o timeout");
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 2s);
}

TEST_P(Runtime, SettingTheSameDeadlineTwiceArmsOneTimer) {
    auto [a, b] = conn_pair(sched);
    std::error_code err;
    auto body = [&]() -> Task<> {
        auto deadline = Clock::now() + 20ms;
        b.set_read_deadline(deadline);
        b.set_read_deadline(deadline);  // unchanged: no second timer
        char buf[8];
        err = (co_await b.read(buf)).err;
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(err, net_errc::timeout);
    EXPECT_EQ(sched.stats().timers, 1u);
}

TEST_P(Runtime, ADeadlineInThePastWakesAParkedReaderAtOnce) {
    auto [a, b] = conn_pair(sched);
    std::error_code err;
    auto reader = [&]() -> Task<> {
        char buf[8];
        err = (co_await b.read(buf)).err;
    };
    auto other = [&]() -> Task<> {
        b.set_read_deadline(Clock::now() - 1s);  // the reader is parked (FIFO: it ran first)
        co_await sched.Gosched();
        co_await a.close();
        co_await b.close();
    };
    go(reader());
    go(other());
    auto start = Clock::now();
    sched.run();
    EXPECT_EQ(err, net_errc::timeout);
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(sched.stats().timers, 0u) << "a past deadline needs no timer";
}

TEST_P(Runtime, ExtendingTheDeadlineWhileParkedDoesNotTimeOutEarly) {
    auto [a, b] = conn_pair(sched);
    auto [c, d] = conn_pair(sched);  // c: for sleeping
    IoResult result;
    auto reader = [&]() -> Task<> {
        b.set_read_deadline(Clock::now() + 200ms);
        char buf[8];
        result = co_await b.read(buf);
        for (Conn* x : {&a, &b, &c, &d}) co_await x->close();
    };
    auto other = [&]() -> Task<> {
        co_await sleep_on(c, 50ms);
        b.set_read_deadline(Clock::now() + 30s);  // extended while the reader is parked
        co_await sleep_on(c, 350ms);              // well past the first deadline
        co_await a.write_all(std::string_view("late"));
    };
    go(reader());
    go(other());
    sched.run();
    EXPECT_FALSE(result.err) << result.err.message();
    EXPECT_EQ(result.n, 4u);
    EXPECT_EQ(sched.stats().expired, 2u) << "only the two sleeps";
}

// Go's pollWait loop: the deadline timer fires and makes the parked reader
// runnable, but before the reader runs, another coroutine moves the deadline
// into the future. The wake-up was for nothing: the reader's IoOp tries the
// read again, gets EAGAIN and parks again, and the reader's coroutine is not
// resumed until the data comes. (An awaiter cannot suspend its coroutine a
// second time, which is why IoOp::wake does the retry, not the coroutine.)
TEST_P(Runtime, AReaderWokenByADeadlineThatMovedParksAgain) {
    auto [a, b] = conn_pair(sched);  // the reader reads b
    auto [c, d] = conn_pair(sched);  // makes the mover runnable in the round the timer fires
    auto [e, f] = conn_pair(sched);  // for sleeping
    const Clock::time_point deadline = Clock::now() + 20ms;
    int resumed = 0;
    IoResult result;
    auto reader = [&]() -> Task<> {
        b.set_read_deadline(deadline);
        char buf[8];
        result = co_await b.read(buf);  // parks; woken by the timer; parks again
        ++resumed;
        for (Conn* x : {&a, &b, &c, &d, &e, &f}) co_await x->close();
    };
    auto mover = [&]() -> Task<> {
        char x;
        co_await d.read(std::span(&x, 1));        // queued by netpoll, ahead of the timer's wake-up
        b.set_read_deadline(Clock::now() + 30s);  // the reader is runnable now, but has not run
        co_await sleep_on(e, 50ms);
        co_await a.write_all(std::string_view("late"));
    };
    auto trigger = [&]() -> Task<> {
        // Busy until the deadline has passed (the loop cannot poll meanwhile),
        // then makes d readable: the next round's netpoll returns the mover,
        // then the reader's timer fires and queues the reader behind it.
        while (Clock::now() <= deadline) {
        }
        co_await c.write_all(std::string_view("x"));
    };
    go(reader());
    go(mover());
    go(trigger());
    const std::uint64_t eagain_before = sys::counter(sys::Call::read).eagain;
    sched.run();
    EXPECT_EQ(resumed, 1);
    EXPECT_FALSE(result.err) << result.err.message();
    EXPECT_EQ(result.n, 4u);
    EXPECT_EQ(sched.stats().expired, 2u) << "the reader's timer (the deadline moved after it fired) and the sleep";
    // The reader's first try, its retry after the wake-up for nothing, the mover's first try, the sleep's.
    EXPECT_EQ(sys::counter(sys::Call::read).eagain - eagain_before, 4u);
}

TEST_P(Runtime, ATimerThatFiresAfterCloseIsIgnored) {
    auto [a, b] = conn_pair(sched);
    auto [c, d] = conn_pair(sched);
    auto body = [&]() -> Task<> {
        b.set_read_deadline(Clock::now() + 20ms);
        co_await b.close();
        auto [e, f] = conn_pair(sched);  // likely reuses b's pollDesc
        co_await sleep_on(c, 100ms);     // b's timer fires meanwhile
        char buf[1];
        f.set_read_deadline(Clock::now());
        EXPECT_EQ((co_await f.read(buf)).err, net_errc::timeout);
        for (Conn* x : {&a, &c, &d, &e, &f}) co_await x->close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(sched.stats().expired, 1u) << "only sleep_on's timer took effect";
}

// For writes. The peer never reads, so the socket
// buffers fill and write_all parks; 8 MiB is far more than they hold.
constexpr std::size_t kMoreThanTheBuffers = std::size_t{8} << 20;

TEST_P(Runtime, WriteToAPeerThatDoesNotReadTimesOutAfterTheDeadline) {
    auto [a, b] = conn_pair(sched);
    const std::string data(kMoreThanTheBuffers, 'w');
    IoResult result;
    Clock::duration took{};
    auto body = [&]() -> Task<> {
        auto start = Clock::now();
        b.set_write_deadline(start + 50ms);
        result = co_await b.write_all(data);
        took = Clock::now() - start;
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(result.err, net_errc::timeout);
    EXPECT_EQ(result.err.message(), "i/o timeout");
    EXPECT_GT(result.n, 0u) << "what fitted in the buffers was written";
    EXPECT_LT(result.n, data.size()) << "the buffers never filled: the test proved nothing";
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 2s);
}

TEST_P(Runtime, ADeadlineInThePastWakesAParkedWriterAtOnce) {
    auto [a, b] = conn_pair(sched);
    const std::string data(kMoreThanTheBuffers, 'w');
    IoResult result;
    bool writer_done = false;
    auto writer = [&]() -> Task<> {
        result = co_await b.write_all(data);  // fills the buffers, then parks
        writer_done = true;
    };
    auto other = [&]() -> Task<> {
        EXPECT_FALSE(writer_done) << "the writer must be parked by now (FIFO: it ran first)";
        b.set_write_deadline(Clock::now() - 1s);
        co_await sched.Gosched();
        co_await b.close();  // b first: a writer still parked would get "closed", not SIGPIPE
        co_await a.close();
    };
    go(writer());
    go(other());
    auto start = Clock::now();
    sched.run();
    EXPECT_EQ(result.err, net_errc::timeout);
    EXPECT_LT(result.n, data.size());
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(sched.stats().timers, 0u) << "a past deadline needs no timer";
}

TEST_P(Runtime, ExtendingTheWriteDeadlineWhileParkedDoesNotTimeOutEarly) {
    auto [a, b] = conn_pair(sched);
    auto [c, d] = conn_pair(sched);  // c: for sleeping
    const std::string data(kMoreThanTheBuffers, 'w');
    IoResult result;
    std::size_t drained = 0;
    auto writer = [&]() -> Task<> {
        b.set_write_deadline(Clock::now() + 200ms);
        result = co_await b.write_all(data);
        co_await b.close();
    };
    auto other = [&]() -> Task<> {
        co_await sleep_on(c, 50ms);
        b.set_write_deadline(Clock::now() + 30s);  // extended while the writer is parked
        co_await sleep_on(c, 350ms);               // well past the first deadline
        std::vector<char> buf(65536);
        while (drained < data.size()) {  // now read everything: the writer finishes
            auto [n, err] = co_await a.read(buf);
            if (err) break;
            drained += n;
        }
        for (Conn* x : {&a, &c, &d}) co_await x->close();
    };
    go(writer());
    go(other());
    sched.run();
    EXPECT_FALSE(result.err) << result.err.message();
    EXPECT_EQ(result.n, data.size());
    EXPECT_EQ(drained, data.size());
    EXPECT_EQ(sched.stats().expired, 2u) << "only the two sleeps";
}

TEST_P(Runtime, AWriteTimerThatFiresAfterCloseIsIgnored) {
    auto [a, b] = conn_pair(sched);
    auto [c, d] = conn_pair(sched);
    std::error_code e_err, f_err;
    auto body = [&]() -> Task<> {
        b.set_write_deadline(Clock::now() + 20ms);
        co_await b.close();
        auto [e, f] = conn_pair(sched);  // one of them likely reuses b's pollDesc
        co_await sleep_on(c, 100ms);     // b's timer fires meanwhile
        e_err = (co_await e.write_all(std::string_view("x"))).err;
        f_err = (co_await f.write_all(std::string_view("x"))).err;
        for (Conn* x : {&a, &c, &d, &e, &f}) co_await x->close();
    };
    go(body());
    sched.run();
    EXPECT_FALSE(e_err) << e_err.message();
    EXPECT_FALSE(f_err) << f_err.message();
    EXPECT_EQ(sched.stats().expired, 1u) << "only sleep_on's timer took effect";
}

// Readiness and a deadline reach a parked reader in the
// same scheduler round. It is resumed once, with one result: the data or
// "i/o timeout", never both, never twice. After its result the reader yields
// twice, so a second wake-up would find it alive and show in the counters.
struct OneResult {
    int results = 0;
    IoResult result;
    bool exactly_one() const {
        return results == 1 && (result.err ? result.n == 0 && result.err == net_errc::timeout : result.n == 4);
    }
};

// Data arrives and, before the reader runs (before netpoll has even seen the
// data), its deadline is moved into the past.
TEST_P(Runtime, DataAndAPastDeadlineTogetherDeliverExactlyOneResult) {
    auto [a, b] = conn_pair(sched);
    OneResult got;
    auto reader = [&]() -> Task<> {
        char buf[8];
        got.result = co_await b.read(buf);  // parks
        ++got.results;
        co_await sched.Gosched();
        co_await sched.Gosched();
        co_await a.close();
        co_await b.close();
    };
    auto other = [&]() -> Task<> {
        co_await a.write_all(std::string_view("data"));  // b is readable: the next netpoll says so
        b.set_read_deadline(Clock::now() - 1s);           // and the deadline has passed: wakes the reader
        co_return;
    };
    go(reader());
    go(other());
    sched.run();
    EXPECT_TRUE(got.exactly_one()) << got.results << " results, n=" << got.result.n << " " << got.result.err.message();
    EXPECT_EQ(sched.stats().resumed, 5u) << "2 starts, 1 wake-up of the reader, its 2 yields";
}

// The deadline timer fires and netpoll returns the reader's readiness in the
// same round of the loop.
TEST_P(Runtime, DataAndATimerFiringInTheSameRoundDeliverExactlyOneResult) {
    auto [a, b] = conn_pair(sched);
    OneResult got;
    Clock::time_point deadline = Clock::now() + 5ms;
    auto reader = [&]() -> Task<> {
        b.set_read_deadline(deadline);
        char buf[8];
        got.result = co_await b.read(buf);  // parks
        ++got.results;
        co_await sched.Gosched();
        co_await sched.Gosched();
        co_await a.close();
        co_await b.close();
    };
    auto other = [&]() -> Task<> {
        // Runs right after the reader has parked. Waits without parking (so
        // the loop cannot poll in between) until the deadline has passed, then
        // makes b readable: the loop's next netpoll returns the reader, and
        // the timer, due by then, fires right after it.
        while (Clock::now() <= deadline) {
        }
        co_await a.write_all(std::string_view("data"));
    };
    go(reader());
    go(other());
    sched.run();
    EXPECT_TRUE(got.exactly_one()) << got.results << " results, n=" << got.result.n << " " << got.result.err.message();
    EXPECT_EQ(sched.stats().resumed, 5u) << "2 starts, 1 wake-up of the reader, its 2 yields";
    EXPECT_EQ(sched.stats().expired, 1u) << "the timer fired (in that round: the reader closes b right after)";
}

// Go deletes or moves a descriptor's timer when its deadline changes; here
// the old entry stays behind, stale, until the scheduler sweeps it. A new
// deadline before each of 100,000 reads must not leave 100,000 entries.
TEST_P(Runtime, ADeadlineBeforeEveryReadKeepsTheTimerHeapSmall) {
    auto [a, b] = conn_pair(sched);
    long got = 0;
    std::size_t most = 0;
    auto body = [&]() -> Task<> {
        char out = 'x', in = 0;
        for (int i = 0; i < 100'000; ++i) {
            co_await a.write_all(std::span(&out, 1));
            b.set_read_deadline(Clock::now() + 1min);  // a new deadline, a new timer, every time
            auto [n, err] = co_await b.read(std::span(&in, 1));
            if (err || n != 1) break;
            ++got;
            most = std::max(most, sched.timers_pending());
        }
        co_await a.close();
        co_await b.close();
    };
    go(body());
    sched.run();
    EXPECT_EQ(got, 100'000);
    EXPECT_EQ(sched.stats().timers, 100'000u);
    EXPECT_LE(most, 128u) << "stale timers pile up in the heap";
}

// Shutdown with 1,000 parked coroutines. Each holds an
// object whose destructor counts: every frame must be freed, none while parked.
TEST_P(Runtime, StopWakesAThousandParkedCoroutinesAndFreesEveryFrame) {
    test::raise_open_file_limit();
    constexpr int kConns = 1000;
    struct Alive {
        int* n;
        explicit Alive(int* c) : n(c) { ++*n; }
        ~Alive() { --*n; }
    };
    int alive = 0, closed = 0;
    std::vector<std::pair<Conn, Conn>> pairs;
    for (int i = 0; i < kConns; ++i) pairs.push_back(conn_pair(sched));
    auto parked = [&](Conn& conn) -> Task<> {
        Alive guard(&alive);
        char buf[64];
        auto [n, err] = co_await conn.read(buf);
        if (err == net_errc::closed) ++closed;
        co_await conn.close();
    };
    for (auto& p : pairs) go(parked(p.second));
    auto stopper = [&]() -> Task<> {
        EXPECT_EQ(alive, kConns) << "all parked";
        sched.stop();
        co_return;
    };
    go(stopper());
    sched.run();
    EXPECT_EQ(closed, kConns);
    EXPECT_EQ(alive, 0);
    EXPECT_EQ(sched.gcount(), 0u);
}

// After warm-up, 10,000 round trips allocate nothing
// (this thread's calls to global operator new, which the test counts). The
// server is main.cpp's echo, RecvBuffer included: 64-byte messages never
// fill its small buffer, so it never takes the large one.
TEST_P(Runtime, RoundTripsAllocateNothingInSteadyState) {
    auto [a, b] = conn_pair(sched);
    std::uint64_t during = ~0ull;
    int done = 0;
    bool took_large = false;
    auto server = [&]() -> Task<> {  // the echo of main.cpp
        RecvBuffer buf;
        for (;;) {
            auto [n, err] = co_await b.read(buf);
            if (err) break;
            auto [written, werr] = co_await b.write_all(buf.received(n));
            took_large |= buf.holds_large();
            if (werr) break;
        }
        co_await b.close();
    };
    auto client = [&]() -> Task<> {
        char out[64] = "ping", in[64];
        auto round_trip = [&]() -> Task<bool> {
            if ((co_await a.write_all(std::span(out, 64))).err) co_return false;
            for (std::size_t got = 0; got < 64;) {
                auto [n, err] = co_await a.read(std::span(in + got, 64 - got));
                if (err) co_return false;
                got += n;
            }
            co_return true;
        };
        for (int i = 0; i < 1000; ++i) co_await round_trip();  // warm-up
        std::uint64_t before = allocations;
        for (int i = 0; i < 10'000; ++i)
            if (co_await round_trip()) ++done;
        during = allocations - before;
        co_await a.close();
    };
    go(server());
    go(client());
    sched.run();
    EXPECT_EQ(done, 10'000);
    EXPECT_EQ(during, 0u);
    EXPECT_FALSE(took_large);
}

// --- RecvBuffer: the adaptive receive buffer of main.cpp's echo ------------------

TEST(RecvBufferTest, StartsSmallGrowsWhenAReadFillsItAndGoesBackWhenQuiet) {
    RecvBuffer buf;
    EXPECT_EQ(buf.space().size(), RecvBuffer::kSmall);
    EXPECT_FALSE(buf.holds_large());
    char* small = buf.space().data();

    // A read that does not fill the small buffer changes nothing.
    EXPECT_EQ(buf.received(100).data(), small);
    EXPECT_EQ(buf.space().size(), RecvBuffer::kSmall);

    // One that fills it: its bytes are still where they were read; the next read goes to 64 KiB.
    std::span<const char> got = buf.received(RecvBuffer::kSmall);
    EXPECT_EQ(got.data(), small);
    EXPECT_EQ(got.size(), RecvBuffer::kSmall);
    EXPECT_TRUE(buf.holds_large());
    EXPECT_EQ(buf.space().size(), RecvBuffer::kLarge);
    char* large = buf.space().data();
    EXPECT_EQ(buf.received(RecvBuffer::kSmall).data(), large) << "2 KiB into the large buffer: stays large";
    EXPECT_EQ(buf.received(RecvBuffer::kLarge).data(), large);

    // About to park: the large buffer goes back.
    std::span<char> waiting = buf.quiet();
    EXPECT_EQ(waiting.data(), small);
    EXPECT_EQ(waiting.size(), RecvBuffer::kSmall);
    EXPECT_FALSE(buf.holds_large());
    EXPECT_EQ(buf.space().data(), small);
}

// A bulk transfer through main.cpp's echo loop: after the first full 2 KiB
// read the reads are up to 64 KiB (on a socketpair they come back as large as
// what is queued), every byte is echoed in order, and whenever the echo
// parks in a read, it holds no large buffer: an idle connection costs only
// its frame. The sender writes in bursts and waits for each burst's echo, so
// the echo goes quiet (and parks) between bursts.
TEST_P(Runtime, BulkReadsUseTheLargeBufferAndAParkedReadHoldsNone) {
    auto [a, b] = conn_pair(sched);
    RecvBuffer buf;  // the echo's, here so that the client can look at it while the echo is parked
    std::size_t largest = 0, reads = 0;
    auto server = [&]() -> Task<> {
        for (;;) {
            auto [n, err] = co_await b.read(buf);
            if (err) break;
            largest = std::max(largest, n);
            ++reads;
            auto [written, werr] = co_await b.write_all(buf.received(n));
            if (werr) break;
        }
        co_await b.close();
    };
    constexpr std::size_t kBurst = 1 << 20;
    constexpr int kBursts = 4;
    int quiet_checks = 0, held_while_parked = 0;
    bool echoed_ok = true;
    auto client = [&]() -> Task<> {
        std::string out(kBurst, '\0'), in(kBurst, '\0');
        for (int burst = 0; burst < kBursts; ++burst) {
            for (std::size_t i = 0; i < kBurst; ++i) out[i] = static_cast<char>('a' + (i * 7 + burst) % 26);
            // Send and receive at once: the echo writes back while we still send.
            std::size_t sent = 0, got = 0;
            auto sender = [&]() -> Task<> {
                auto [n, err] = co_await a.write_all(std::span<const char>(out.data(), kBurst));
                sent = n;
                EXPECT_FALSE(err) << err.message();
            };
            go(sender());
            while (got < kBurst) {
                auto [n, err] = co_await a.read(std::span(in.data() + got, kBurst - got));
                if (err) co_return;
                got += n;
            }
            EXPECT_EQ(sent, kBurst);
            echoed_ok = echoed_ok && in == out;
            // Everything is echoed: the echo is parked in its next read (we are
            // the only other coroutine, so it has run until it parked).
            co_await sched.Gosched();
            ++quiet_checks;
            if (buf.holds_large()) ++held_while_parked;
        }
        co_await a.close();
    };
    go(server());
    go(client());
    sched.run();
    EXPECT_TRUE(echoed_ok);
    EXPECT_EQ(quiet_checks, kBursts);
    EXPECT_EQ(held_while_parked, 0) << "a parked read kept its 64 KiB buffer";
    EXPECT_GT(largest, RecvBuffer::kSmall) << "bulk reads never left the 2 KiB buffer";
    EXPECT_LT(reads, kBursts * kBurst / RecvBuffer::kSmall) << "as many reads as with 2 KiB alone";
}

}  // namespace
