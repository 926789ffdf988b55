// echo-bench: the course's load generator, and a lesson of its own: an epoll *client*.
//
//   echo-bench --port P [--mode ping-pong|idle-active|bulk] [--connections N] ...   (--help: all options)
//
//   ping-pong    N connections; each sends --size bytes, waits for the whole echo, checks it, records
//                the round trip's latency and sends the next message, for --duration seconds after
//                --warmup seconds that are not counted.
//   idle-active  --idle I connections are opened first and left silent, then N active ones do
//                ping-pong; at the end every idle connection must still answer a probe (idle_ok).
//   bulk         each of N connections streams --bytes bytes and reads the echo at the same time.
//
// Output: one human line, or one JSON object (--json). Exit 0 if there were no errors, no refused
// connections and (idle-active) every idle connection answered; 1 otherwise; 2 for a bad command line.
//
// Why epoll. A thread per connection would measure the scheduler: 1,000 blocked threads woken in
// turn cost the generator a sleep and a wake-up per round trip on top of the I/O. One thread, one
// epoll instance, non-blocking sockets: each epoll_wait returns every connection whose echo has
// arrived, and the thread serves them in a batch. That is the server's design (chapters 05-07), used
// from the other end.
//
// Edge-triggered, without the usual price. Each socket is registered once, for EPOLLIN and EPOLLOUT,
// edge-triggered, and never touched by epoll_ctl again. Level-triggered would cost more here: epoll
// puts every socket it reported back on its ready list and polls it again at the next epoll_wait,
// one more socket poll per round trip. The usual price of edge-triggered, a last read that returns
// EAGAIN to prove the socket is empty (chapter 06 pays it), is not needed: we know how many bytes
// are due. A read that completes the message leaves nothing behind, since nothing else is due; a
// read that returns less than asked for emptied the socket, and the next byte to arrive brings a new
// edge. Writes likewise: a short write means a full send buffer, and an EPOLLOUT edge will follow.
// A ping-pong round trip therefore costs one write() and one read() plus a share of one epoll_wait().
// Within a batch of events, all the reads come first and the next messages are written after them:
// a burst of writes wakes a sleeping server once, where writes interleaved with reads could wake it
// (an inter-processor interrupt, paid by the writer) once per message.
//
// Why ramp. A non-blocking connect() for 10,000 sockets at once would send 10,000 SYNs at once; the
// listener's SYN and accept queues are bounded (somaxconn), and a dropped SYN is retried only after a
// second, which would show up as a 1 s "latency". So connections are opened --ramp-batch at a time; a
// batch must complete (or fail: refused) before the next starts. A completed connect() only means the
// kernel did the handshake, not that the server accepted; so one message is echoed on the batch's last
// connection, which proves the server has accepted the whole batch (the accept queue is FIFO).
//
// How latency is measured. steady_clock (the vDSO, no system call, ~30 ns) is read just before each
// write and when the read that completes the echo returns. The round trip therefore includes the time
// the echo waited for us in a batch of events: what a client would see. Latencies go into a
// log-linear histogram (128 linear steps per power of two: under 0.4% error, reported at the bucket's
// middle) of fixed size: no allocation per round trip, whatever the duration.
//
// Why verify every byte. A fast wrong server is easy to write: one that mixes up two connections'
// buffers, drops a partial read or repeats a stale one. Each message is a slice of a pseudo-random tape
// whose start depends on the connection and the round, so every echo is compared (memcmp) against
// exactly what that connection sent in that round; bulk streams compare every chunk likewise.
//
// Not being the bottleneck. The generator does the least per round trip that the protocol allows: one
// write from the tape (no copy, no formatting), one read into a shared buffer, one memcmp, two clock
// reads, one histogram increment; no allocation after set-up. It reports its own CPU time per round trip
// (getrusage) next to the server's (--server-pid, from /proc/PID/stat) so you can check, with the two
// pinned to different CPUs (--cpu, taskset), that the server is the one that is saturated.
//
// Every wait is bounded: connects (3 s per batch), an echo making no progress (3 s), the final EOF
// (2 s). A stalled server yields errors and an exit within --warmup + --duration + 10 s.
#include "client.hpp"    // cpu_seconds
#include "sys.hpp"       // throw_errno
#include "workload.hpp"  // raise_open_file_limit

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

constexpr const char* kUsage =
    "usage: echo-bench --port P [--host 127.0.0.1] [--mode ping-pong|idle-active|bulk]\n"
    "  --connections N     active connections (default 1)\n"
    "  --idle I            idle-active: idle connections opened first and held open (default 0)\n"
    "  --size S            message size in bytes for ping-pong (default 64)\n"
    "  --duration SEC      measured time, decimal seconds (default 3)\n"
    "  --warmup SEC        ping-pong before measuring, not counted (default 0.5)\n"
    "  --bytes B           bulk: bytes to stream through each connection (default 1073741824)\n"
    "  --ramp-batch K      connections opened per batch (default 100)\n"
    "  --cpu C             pin this process to CPU C\n"
    "  --server-pid PID    also report the server's CPU time over the measured interval\n"
    "  --json              print one JSON object on one line instead of the human line\n";

enum class Mode { ping_pong, idle_active, bulk };

struct Config {
    std::string host = "127.0.0.1";
    long long port = 0, connections = 1, idle = 0, size = 64, ramp_batch = 100, cpu = -1, server_pid = 0;
    long long bytes = 1LL << 30;
    double duration = 3, warmup = 0.5;
    Mode mode = Mode::ping_pong;
    bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
    fmt::print(stderr, "echo-bench: {}\n{}", message, kUsage);
    std::exit(2);
}

Config parse(int argc, char** argv) {
    Config c;
    bool have_port = false;
    for (int i = 1; i < argc; ++i) {
        std::string name = argv[i], v;
        if (name == "--help" || name == "-h") {
            fmt::print("{}", kUsage);
            std::exit(0);
        }
        if (name == "--json") {
            c.json = true;
            continue;
        }
        if (auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
            v = name.substr(eq + 1);
            name.resize(eq);
        } else if (name.rfind("--", 0) == 0 && i + 1 < argc) {
            v = argv[++i];
        } else {
            usage_error(fmt::format("unexpected argument '{}' (or it needs a value)", name));
        }
        auto integer = [&](long long lo, long long hi) {
            long long x = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
            if (ec != std::errc{} || end != v.data() + v.size() || x < lo || x > hi)
                usage_error(fmt::format("{} wants an integer in [{}, {}], not '{}'", name, lo, hi, v));
            return x;
        };
        auto decimal = [&](double lo, double hi) {
            char* end = nullptr;
            double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
                usage_error(fmt::format("{} wants a number of seconds in [{}, {}], not '{}'", name, lo, hi, v));
            return x;
        };
        if (name == "--port") c.port = integer(1, 65535), have_port = true;
        else if (name == "--host") c.host = v;
        else if (name == "--mode" && v == "ping-pong") c.mode = Mode::ping_pong;
        else if (name == "--mode" && v == "idle-active") c.mode = Mode::idle_active;
        else if (name == "--mode" && v == "bulk") c.mode = Mode::bulk;
        else if (name == "--mode") usage_error(fmt::format("--mode is ping-pong, idle-active or bulk, not '{}'", v));
        else if (name == "--connections") c.connections = integer(0, 1'000'000);
        else if (name == "--idle") c.idle = integer(0, 1'000'000);
        else if (name == "--size") c.size = integer(1, 16 << 20);
        else if (name == "--duration") c.duration = decimal(0.001, 1e6);
        else if (name == "--warmup") c.warmup = decimal(0, 1e6);
        else if (name == "--bytes") c.bytes = integer(1, 1LL << 50);
        else if (name == "--ramp-batch") c.ramp_batch = integer(1, 1'000'000);
        else if (name == "--cpu") c.cpu = integer(0, CPU_SETSIZE - 1);
        else if (name == "--server-pid") c.server_pid = integer(1, INT32_MAX);
        else usage_error(fmt::format("unknown option '{}'", name));
    }
    if (!have_port) usage_error("--port is required");
    if (c.idle > 0 && c.mode != Mode::idle_active) usage_error("--idle needs --mode idle-active");
    if (c.connections == 0 && c.mode != Mode::idle_active) usage_error("--connections must be at least 1");
    return c;
}

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kMs = 1'000'000, kSec = 1'000 * kMs;
constexpr std::int64_t kConnectTimeout = 3 * kSec, kEchoTimeout = 3 * kSec, kCloseTimeout = 2 * kSec;
constexpr std::uint64_t kProbeSize = 32;     // ramp and idle probes
constexpr std::uint32_t kReadable = EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP;

std::int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

double cpu_self() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto s = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

// The payload source: `period` (a power of two) pseudo-random bytes stored twice in a row, so that
// any `period` bytes starting anywhere in the first copy are contiguous: messages are written and
// checked in place. Small on purpose: 32 KiB (64 KiB with the copy) stays in the CPU's caches and
// TLB, where random slices of a few MiB would cost cache and TLB misses on every round trip.
class Tape {
public:
    explicit Tape(size_t period) : period_(std::bit_ceil(period)), bytes_(2 * period_) {
        std::uint64_t x = 0x9e3779b97f4a7c15;
        for (size_t i = 0; i < period_; ++i) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
            bytes_[i] = bytes_[i + period_] = static_cast<unsigned char>(x >> 32);
        }
    }
    const unsigned char* at(std::uint64_t pos) const { return bytes_.data() + (pos & (period_ - 1)); }
    size_t period() const { return period_; }
    // Where the message of connection `id`, round `round` starts (splitmix64 of the pair).
    std::uint64_t offset(std::uint64_t id, std::uint64_t round) const {
        std::uint64_t z = id * 0x9e3779b97f4a7c15 + round * 0xbf58476d1ce4e5b9 + 1;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return (z ^ (z >> 31)) & (period_ - 1);
    }

private:
    size_t period_;
    std::vector<unsigned char> bytes_;
};

// Log-linear histogram of nanoseconds: exact below 128, then 128 buckets per power of two.
class Histogram {
public:
    void record(std::uint64_t ns) {
        ++total_;
        if (ns < kSub) return void(++counts_[ns]);
        int shift = static_cast<int>(std::bit_width(ns)) - 1 - kSubBits;  // 0 for [128, 256)
        ++counts_[kSub * (1 + static_cast<size_t>(shift)) + ((ns >> shift) - kSub)];
    }
    std::uint64_t total() const { return total_; }
    // The value below which a fraction q of the samples lie, in microseconds (bucket middle).
    double quantile_us(double q) const {
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_) + 0.999999);
        std::uint64_t seen = 0;
        for (size_t i = 0; i < counts_.size(); ++i) {
            if ((seen += counts_[i]) < std::max<std::uint64_t>(rank, 1)) continue;
            if (i < kSub) return static_cast<double>(i) / 1e3;
            size_t shift = i / kSub - 1;
            double low = static_cast<double>((kSub + i % kSub) << shift);
            return (low + static_cast<double>(std::uint64_t{1} << shift) / 2) / 1e3;
        }
        return 0;
    }

private:
    static constexpr int kSubBits = 7;
    static constexpr size_t kSub = 1 << kSubBits;
    std::array<std::uint64_t, kSub * 58> counts_{};
    std::uint64_t total_ = 0;
};

enum class St : std::uint8_t { connecting, ready, echoing, closing, done, failed };
enum class Role : std::uint8_t { active, idle };
enum class Phase { ramp, warmup, measure, drain, probe, close };

struct Conn {
    int fd = -1;
    St st = St::connecting;
    Role role = Role::active;
    std::uint64_t round = 0;        // messages started on this connection
    std::uint64_t off = 0, len = 0, sent = 0, got = 0;  // the message in flight: tape bytes [off, off + len)
    std::int64_t t0 = 0, last = 0;  // when it was sent; when it last made progress
};

class Bench {
public:
    explicit Bench(const Config& cfg)
        : cfg_(cfg), tape_(cfg.mode == Mode::bulk ? 256 * 1024 : std::max<size_t>(32 * 1024, static_cast<size_t>(cfg.size))),
          rbuf_(tape_.period()), ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) course::throw_errno("epoll_create1");
        conns_.reserve(static_cast<size_t>(cfg.idle + cfg.connections));
        next_.reserve(conns_.capacity());
        events_.resize(static_cast<size_t>(std::clamp<long long>(cfg.idle + cfg.connections, 64, 4096)));
        addr_len_ = resolve(cfg.host, static_cast<std::uint16_t>(cfg.port));
        hist_ = std::make_unique<Histogram>();
    }
    ~Bench() {
        for (auto& c : conns_)
            if (c.fd >= 0) ::close(c.fd);
        ::close(ep_);
    }

    void run() {
        if (cfg_.mode == Mode::idle_active) ramp(cfg_.idle, Role::idle);
        ramp(cfg_.connections, Role::active);
        if (aborted_) {
            // the ramp failed: nothing to measure
        } else if (cfg_.mode == Mode::bulk) {
            begin_measure();
            for_each(Role::active, St::ready, [&](Conn& c) { send(c, now_, static_cast<std::uint64_t>(cfg_.bytes)); });
            loop(INT64_MAX, [&] { return in_flight_ == 0; });  // bounded by the stall watchdog
            end_measure();
        } else {
            phase_ = Phase::warmup;
            now_ = now_ns();
            for_each(Role::active, St::ready, [&](Conn& c) { send(c, now_, static_cast<std::uint64_t>(cfg_.size)); });
            loop(now_ + static_cast<std::int64_t>(cfg_.warmup * 1e9), [] { return false; });
            begin_measure();
            loop(start_ + static_cast<std::int64_t>(cfg_.duration * 1e9), [] { return false; });
            end_measure();
            phase_ = Phase::drain;  // let the messages in flight come back, uncounted
            settle(kEchoTimeout, "no echo at the end of the run");
        }
        if (cfg_.mode == Mode::idle_active && !aborted_) {
            phase_ = Phase::probe;
            for_each(Role::idle, St::ready, [&](Conn& c) { send(c, now_, kProbeSize); });
            settle(kEchoTimeout, "idle connection: no answer to the probe");
        }
        close_all();
    }

    bool ok() const { return errors_ == 0 && refused_ == 0 && (cfg_.mode != Mode::idle_active || idle_ok_ == cfg_.idle); }
    void report() const;

private:
    socklen_t resolve(const std::string& host, std::uint16_t port) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&addr_);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr_);
        if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1)
            return v4->sin_family = AF_INET, v4->sin_port = htons(port), sizeof *v4;
        if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1)
            return v6->sin6_family = AF_INET6, v6->sin6_port = htons(port), sizeof *v6;
        usage_error(fmt::format("--host wants a numeric IPv4 or IPv6 address, not '{}'", host));
    }

    template <class F> void for_each(Role role, St st, F f) {
        now_ = now_ns();
        for (auto& c : conns_)
            if (c.role == role && c.st == st) f(c);
    }

    void begin_measure() {
        phase_ = Phase::measure;
        cpu0_ = cpu_self();
        srv0_ = cfg_.server_pid ? course::test::cpu_seconds(static_cast<pid_t>(cfg_.server_pid)) : -1;
        start_ = now_ = now_ns();
    }
    void end_measure() {
        end_ = now_ns();
        cpu_ = cpu_self() - cpu0_;
        double srv1 = srv0_ >= 0 ? course::test::cpu_seconds(static_cast<pid_t>(cfg_.server_pid)) : -1;
        if (srv1 >= 0) srv_ = srv1 - srv0_;  // -1: no such process (any more)
    }

    // #region ramp
    // Opens `count` connections, `ramp_batch` at a time (see the header comment).
    void ramp(long long count, Role role) {
        phase_ = Phase::ramp;
        for (long long opened = 0; opened < count; opened += cfg_.ramp_batch) {
            if (aborted_) {  // the server stopped accepting: do not wait for it batch after batch
                refused_ += count - opened;
                return;
            }
            size_t first = conns_.size();
            for (long long i = opened; i < std::min(count, opened + cfg_.ramp_batch); ++i) open(role);
            loop(now_ns() + kConnectTimeout, [&] { return connecting_ == 0; });
            for (size_t i = first; i < conns_.size(); ++i)
                if (conns_[i].st == St::connecting) refuse(conns_[i], "connect timed out"), aborted_ = true;
            size_t last = conns_.size();
            while (last > first && conns_[last - 1].st != St::ready) --last;
            if (last == first) {
                aborted_ = true;
                continue;
            }
            send(conns_[last - 1], now_ns(), kProbeSize);
            settle(kEchoTimeout, "no echo during the ramp");
            if (conns_[last - 1].st != St::ready) aborted_ = true;
        }
    }
    // #endregion ramp

    void open(Role role) {
        Conn& c = conns_.emplace_back();
        c.role = role;
        c.fd = ::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) course::throw_errno("socket");
        int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++connecting_;
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), addr_len_) < 0 && errno != EINPROGRESS)
            return refuse(c, std::strerror(errno));
        // Edge-triggered, both directions, once for the connection's life: no epoll_ctl after this.
        epoll_event ev{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.u32 = static_cast<std::uint32_t>(conns_.size() - 1)}};
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) course::throw_errno("epoll_ctl ADD");
    }

    // The event loop: until done() or the deadline, with the stall watchdog every 100 ms.
    template <class Done> void loop(std::int64_t deadline, Done done) {
        now_ = now_ns();
        while (!done() && now_ < deadline) {
            auto timeout = static_cast<int>(std::min<std::int64_t>((deadline - now_ + kMs - 1) / kMs, 100));
            int n = ::epoll_wait(ep_, events_.data(), static_cast<int>(events_.size()), timeout);
            if (n < 0 && errno != EINTR) course::throw_errno("epoll_wait");
            now_ = now_ns();
            for (int i = 0; i < n; ++i) handle(conns_[events_[static_cast<size_t>(i)].data.u32], events_[static_cast<size_t>(i)].events);
            send_next();
            if (now_ - last_scan_ >= 100 * kMs) {
                last_scan_ = now_;
                for (auto& c : conns_)
                    if (c.st == St::echoing && now_ - c.last > kEchoTimeout)
                        fail(c, fmt::format("no progress for 3 s ({} of {} bytes sent, {} echoed)", c.sent, c.len, c.got));
            }
        }
    }

    // The batch's reads come first, then the next messages are written together: a burst of writes
    // wakes a sleeping server once, where writes interleaved with reads could wake it once per message.
    void send_next() {
        for (std::uint32_t id : next_)
            if (conns_[id].st == St::ready) send(conns_[id], now_ns(), static_cast<std::uint64_t>(cfg_.size));
        next_.clear();
    }

    // Waits (bounded) for every message in flight; those still missing are errors.
    void settle(std::int64_t timeout, const char* what) {
        loop(now_ns() + timeout, [&] { return in_flight_ == 0; });
        for (auto& c : conns_)
            if (c.st == St::echoing) fail(c, what);
    }

    void handle(Conn& c, std::uint32_t ev) {
        switch (c.st) {
        case St::connecting: return connected(c);
        case St::echoing:
            if ((ev & EPOLLOUT) && c.sent < c.len) write_some(c);
            if (c.st == St::echoing && (ev & kReadable)) read_some(c);
            return;
        case St::ready:    // nothing is expected on this connection
        case St::closing:  // only the EOF is expected
            if (ev & kReadable) read_unexpected(c);
            return;
        default: return;
        }
    }

    void connected(Conn& c) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return refuse(c, std::strerror(err));
        --connecting_;
        c.st = St::ready;
    }

    // Starts a message of `len` bytes: the tape from an offset that depends on (connection, round).
    void send(Conn& c, std::int64_t now, std::uint64_t len) {
        c.off = tape_.offset(static_cast<std::uint64_t>(&c - conns_.data()), ++c.round);
        c.len = len, c.sent = c.got = 0, c.t0 = c.last = now;
        c.st = St::echoing;
        ++in_flight_;
        write_some(c);
    }

    void write_some(Conn& c) {
        while (c.sent < c.len) {
            size_t n = std::min<std::uint64_t>(c.len - c.sent, tape_.period());
            ssize_t w = ::write(c.fd, tape_.at(c.off + c.sent), n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno != EAGAIN) return fail(c, fmt::format("write: {}", std::strerror(errno)));
            if (w > 0) c.sent += static_cast<std::uint64_t>(w), c.last = now_;
            if (w < 0 || static_cast<size_t>(w) < n) return;  // the send buffer is full: the next EPOLLOUT edge
        }
    }

    // #region read-due
    // Reads what is due, never more. A short read emptied the socket (the next byte brings a new
    // edge); a read that completes the message leaves nothing behind, because nothing else is due.
    void read_some(Conn& c) {
        for (;;) {
            size_t want = std::min<std::uint64_t>(c.len - c.got, rbuf_.size());
            ssize_t r = ::read(c.fd, rbuf_.data(), want);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == EAGAIN) return;
            if (r < 0) return fail(c, fmt::format("read: {}", std::strerror(errno)));
            if (r == 0) return fail(c, fmt::format("EOF after {} of {} echoed bytes", c.got, c.len));
            auto n = static_cast<size_t>(r);
            const unsigned char* expected = tape_.at(c.off + c.got);
            if (std::memcmp(rbuf_.data(), expected, n) != 0) {
                auto i = static_cast<size_t>(std::mismatch(rbuf_.data(), rbuf_.data() + n, expected).first - rbuf_.data());
                return fail(c, fmt::format("round {}: echoed byte {} is 0x{:02x}, sent 0x{:02x}", c.round, c.got + i,
                                           rbuf_[i], expected[i]));
            }
            c.got += n, c.last = now_;
            if (counting()) bytes_ += n;
            if (c.got == c.len) return completed(c);
            if (n < want) return;
        }
    }
    // #endregion read-due

    bool counting() const { return phase_ == Phase::measure; }

    // #region completed
    // A round trip lasts from its write (t0, the clock read in the send pass) to the read that
    // completed its echo (the clock read here): two vDSO calls, about 30 ns each.
    void completed(Conn& c) {
        c.st = St::ready;
        --in_flight_;
        if (cfg_.mode == Mode::bulk) return;
        if (c.role == Role::idle && phase_ == Phase::probe) ++idle_ok_;
        if (c.role != Role::active || (phase_ != Phase::warmup && phase_ != Phase::measure)) return;
        if (phase_ == Phase::measure) hist_->record(static_cast<std::uint64_t>(now_ns() - c.t0)), ++round_trips_;
        next_.push_back(static_cast<std::uint32_t>(&c - conns_.data()));  // sent after the batch's reads
    }
    // #endregion completed

    void read_unexpected(Conn& c) {
        ssize_t r;
        while ((r = ::read(c.fd, rbuf_.data(), rbuf_.size())) < 0 && errno == EINTR) {
        }
        if (r < 0 && errno == EAGAIN) return;
        if (r > 0) return fail(c, fmt::format("{} bytes nobody asked for", r));
        if (r < 0) return fail(c, fmt::format("read: {}", std::strerror(errno)));
        if (c.st == St::ready) return fail(c, "the server closed a connection");
        ::close(c.fd);  // the EOF after our half-close: a polite end
        c.fd = -1, c.st = St::done;
        --closing_;
    }

    // Half-close every connection and wait (bounded) for the server's EOF.
    void close_all() {
        phase_ = Phase::close;
        for (auto& c : conns_)
            if (c.st == St::ready) ::shutdown(c.fd, SHUT_WR), c.st = St::closing, ++closing_;
        loop(now_ns() + kCloseTimeout, [&] { return closing_ == 0; });
        for (auto& c : conns_)
            if (c.st == St::closing) fail(c, "no EOF within 2 s of the half-close");
    }

    void refuse(Conn& c, const std::string& why) {
        ++refused_;
        --connecting_;
        note(c, "connect: " + why);
        drop(c);
    }
    void fail(Conn& c, const std::string& why) {
        ++errors_;
        if (c.st == St::echoing) --in_flight_;
        if (c.st == St::closing) --closing_;
        note(c, why);
        drop(c);
    }
    void drop(Conn& c) {
        ::close(c.fd);
        c.fd = -1, c.st = St::failed;
    }
    void note(const Conn& c, const std::string& why) {
        if (++notes_ <= 5) fmt::print(stderr, "echo-bench: connection {}: {}\n", &c - conns_.data(), why);
        if (notes_ == 6) fmt::print(stderr, "echo-bench: (further problems are only counted)\n");
    }

    Config cfg_;
    Tape tape_;
    std::vector<unsigned char> rbuf_;
    int ep_;
    sockaddr_storage addr_{};
    socklen_t addr_len_;
    std::vector<Conn> conns_;
    std::vector<epoll_event> events_;
    std::vector<std::uint32_t> next_;  // connections whose next message is due, reserved: never reallocates
    std::unique_ptr<Histogram> hist_;
    Phase phase_ = Phase::ramp;
    bool aborted_ = false;
    long long connecting_ = 0, in_flight_ = 0, closing_ = 0, notes_ = 0;
    long long errors_ = 0, refused_ = 0, idle_ok_ = 0;
    std::uint64_t round_trips_ = 0, bytes_ = 0;
    std::int64_t now_ = 0, last_scan_ = 0, start_ = 0, end_ = 0;
    double cpu0_ = 0, cpu_ = 0, srv0_ = -1;
    std::optional<double> srv_;
};

std::string num(std::optional<double> v, int decimals) {
    return v ? fmt::format("{:.{}f}", *v, decimals) : std::string("null");
}

void Bench::report() const {
    const bool pp = cfg_.mode != Mode::bulk, idle_active = cfg_.mode == Mode::idle_active;
    const double secs = static_cast<double>(end_ - start_) / 1e9, rts = static_cast<double>(round_trips_);
    auto if_rt = [&](double v) { return pp && round_trips_ > 0 ? std::optional<double>(v) : std::nullopt; };
    std::optional<double> rtps = pp && secs > 0 ? std::optional<double>(rts / secs) : std::nullopt;
    std::optional<double> p50 = if_rt(hist_->quantile_us(0.5)), p99 = if_rt(hist_->quantile_us(0.99)),
                          p999 = if_rt(hist_->quantile_us(0.999));
    std::optional<double> bps = secs > 0 ? std::optional<double>(static_cast<double>(bytes_) / secs) : std::nullopt;
    std::optional<double> cpu_rt = if_rt(cpu_ * 1e6 / rts), srv_rt = srv_ ? if_rt(*srv_ * 1e6 / rts) : std::nullopt;
    const char* mode = pp ? (idle_active ? "idle-active" : "ping-pong") : "bulk";
    if (cfg_.json) {
        fmt::print("{{\"mode\":\"{}\",\"connections\":{},\"idle\":{},\"size\":{},\"duration_s\":{},\"round_trips\":{},"
                   "\"round_trips_per_s\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"bytes\":{},\"bytes_per_s\":{},"
                   "\"errors\":{},\"refused\":{},\"idle_ok\":{},\"client_cpu_s\":{},\"client_cpu_us_per_rt\":{},"
                   "\"server_cpu_s\":{},\"server_cpu_us_per_rt\":{}}}\n",
                   mode, cfg_.connections, cfg_.idle, pp ? std::to_string(cfg_.size) : "null", num(secs, 6), round_trips_,
                   num(rtps, 1), num(p50, 2), num(p99, 2), num(p999, 2), bytes_, num(bps, 1), errors_, refused_,
                   idle_active ? std::to_string(idle_ok_) : "null", num(cpu_, 3), num(cpu_rt, 3), num(srv_, 2),
                   num(srv_rt, 3));
        return;
    }
    std::string line = fmt::format("echo-bench {}: {} connections", mode, cfg_.connections);
    if (idle_active) line += fmt::format(" + {} idle ({} answered the final probe)", cfg_.idle, idle_ok_);
    if (pp) {
        line += fmt::format(", {} B messages, {:.2f} s: {} round trips ({:.0f}/s)", cfg_.size, secs, round_trips_,
                            rtps.value_or(0));
        if (p50) line += fmt::format(", latency p50 {:.1f} us p99 {:.1f} us p999 {:.1f} us", *p50, *p99, *p999);
    } else {
        line += fmt::format(", {} B each, {:.2f} s", cfg_.bytes, secs);
    }
    line += fmt::format(", {} bytes echoed ({:.1f} MB/s), errors {}, refused {}; CPU: echo-bench {:.2f} s", bytes_,
                        bps.value_or(0) / 1e6, errors_, refused_, cpu_);
    if (cpu_rt) line += fmt::format(" ({:.2f} us/rt)", *cpu_rt);
    if (srv_) line += fmt::format(", server {:.2f} s", *srv_);
    if (srv_rt) line += fmt::format(" ({:.2f} us/rt)", *srv_rt);
    fmt::print("{}\n", line);
}

}  // namespace

int main(int argc, char** argv) {
    Config cfg = parse(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);  // a write to a reset connection is an error to count, not a reason to die
    course::test::raise_open_file_limit();
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (static_cast<rlim_t>(cfg.connections + cfg.idle + 16) > rl.rlim_cur)
        usage_error(fmt::format("{} connections need more descriptors than the limit ({})", cfg.connections + cfg.idle,
                                static_cast<unsigned long long>(rl.rlim_cur)));
    if (cfg.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<int>(cfg.cpu), &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0)
            usage_error(fmt::format("--cpu {}: {}", cfg.cpu, std::strerror(errno)));
    }
    try {
        Bench bench(cfg);
        bench.run();
        bench.report();
        return bench.ok() ? 0 : 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "echo-bench: {}\n", e.what());
        return 1;
    }
}
