// Chapter 07: a Go-style netpoller with C++20 coroutines.
//
// Read it as the Go program it imitates:
//
//   ln, _ := net.Listen("tcp", addr)
//   for {
//       conn, err := ln.Accept()
//       go echo(conn)
//   }
//
// One coroutine per connection, written as if every call blocked (chapter 01),
// running on one thread over one edge-triggered epoll registration per fd
// (chapter 06). The runtime in scheduler.cpp, conn.cpp and poll_desc.cpp does
// what Go's does: a call that would block parks the coroutine on its fd's
// pollDesc, and the scheduler resumes it when netpoll says the fd is ready.
#include "cli.hpp"
#include "conn.hpp"
#include "net.hpp"
#include "scheduler.hpp"
#include "signals.hpp"
#include "sys.hpp"

#include <atomic>
#include <string>

#include <fmt/format.h>

using namespace course;
using namespace course::runtime;

namespace {

// #region echo
// Echoes until the client half-closes (EOF) or fails, then closes.
// Backpressure comes free: while write_all waits for a slow reader, this
// coroutine does not read, so the kernel's buffers fill and the client stalls.
Task<> echo(Conn conn) {
    // Reads go into a RecvBuffer (conn.hpp): 2 KiB in this frame, which keeps
    // an idle connection at 2.5 KiB of server memory, and 64 KiB from the
    // heap while the peer keeps filling it (bulk: 33 system calls per MiB
    // instead of 1,026), given back before a read parks, so that an idle
    // connection never holds it.
    RecvBuffer buf;
    for (;;) {
        auto [n, err] = co_await conn.read(buf);
        if (err) break;  // EOF (half-close), reset, or closed by shutdown
        auto [written, werr] = co_await conn.write_all(buf.received(n));
        if (werr) break;  // the peer is gone (EPIPE, ECONNRESET)
    }
    co_await conn.close();
}
// #endregion echo

// #region accept
Task<> serve(Listener& ln) {
    for (;;) {
        auto [conn, err] = co_await ln.accept();
        if (err == net_errc::closed) break;  // shutdown
        if (err) {                            // a client the poller refused, or a transient error
            sys::trace_note(fmt::format("accept: {}", err.message()));
            continue;
        }
        go(echo(std::move(conn)));
    }
    co_await ln.close();
}
// #endregion accept

std::atomic<Scheduler*> the_scheduler{nullptr};
void stop_scheduler() noexcept {  // in the SIGTERM/SIGINT handler
    if (Scheduler* s = the_scheduler.load()) s->stop();
}

}  // namespace

int main(int argc, char** argv) {
    Cli cli("07-netpoller-coroutines", "Echo server: a coroutine per connection on a Go-style netpoller.");
    std::string poller = "epoll";
    cli.choice("--poller", {"epoll", "poll"}, "what netpoll waits with (default epoll)", poller);
    Options opt = cli.parse(argc, argv);
    sys::set_trace(opt.trace);

    try {
        Scheduler sched(poller);
        install_signal_handlers();
        the_scheduler.store(&sched);
        set_stop_hook(stop_scheduler);  // SIGTERM -> stop() -> netpoll_break wakes netpoll

        Listener ln(sched, listen_tcp(opt.host, opt.port));
        print_ready_line(ln.fd());
        go(serve(ln));
        sched.run();  // until SIGTERM; then every connection is woken with "closed" and finishes

        set_stop_hook(nullptr);
        the_scheduler.store(nullptr);
        fmt::print(stderr, "{} {}\n", sys::stats_line(), sched.stats_text());
    } catch (const std::exception& e) {
        fmt::print(stderr, "07-netpoller-coroutines: {}\n", e.what());
        return 1;
    }
    return 0;
}
