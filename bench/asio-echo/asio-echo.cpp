// asio-echo: a reference point for chapters 05-07, a Boost.Asio echo server
// with C++20 coroutines: one coroutine per connection on a single-threaded
// io_context (Asio's epoll reactor underneath).
//
//   asio-echo [--host ADDR] [--port N]
//
// It follows the chapters' contract: prints "listening on HOST:PORT" on stdout
// once it accepts connections, echoes every byte back, closes a connection when
// the client's side reaches EOF (after echoing what came before it), and on
// SIGTERM or SIGINT exits 0 after one "stats: " line on stderr. Asio gives no
// per-system-call counts, so that line carries none.
//
// Each connection reads into a 2 KiB buffer in its coroutine frame, like
// chapter 07. Boost.Asio is header-only here; tools/benchmark builds this file
// directly (g++ -O2 -std=c++20 asio-echo.cpp -pthread), so the course's CMake
// never needs Boost.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::size_t accepted = 0;

asio::awaitable<void> echo(tcp::socket socket) {
    char buf[2048];
    boost::system::error_code ec;
    for (;;) {
        std::size_t n = co_await socket.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (n > 0) {
            boost::system::error_code wec;
            co_await asio::async_write(socket, asio::buffer(buf, n), asio::redirect_error(asio::use_awaitable, wec));
            if (wec) break;
        }
        if (ec) break;  // asio::error::eof: the client half-closed (or left); close our side
    }
    boost::system::error_code ignored;
    socket.close(ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {  // EMFILE and friends: back off briefly and go on
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(5));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        ++accepted;
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket)), asio::detached);
    }
}

[[noreturn]] void usage(int code) {
    std::fprintf(code ? stderr : stdout, "usage: asio-echo [--host ADDR] [--port N]\n");
    std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    unsigned long port = 8080;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help") usage(0);
        if (i + 1 >= argc) usage(2);
        if (a == "--host") {
            host = argv[++i];
        } else if (a == "--port") {
            char* end = nullptr;
            port = std::strtoul(argv[++i], &end, 10);
            if (*end != '\0' || port > 65535) usage(2);
        } else {
            usage(2);
        }
    }
    try {
        asio::io_context ctx(1);  // concurrency hint 1: one thread, no locking
        tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address(host), static_cast<unsigned short>(port)));
        asio::signal_set signals(ctx, SIGTERM, SIGINT);
        signals.async_wait([&](const boost::system::error_code&, int) { ctx.stop(); });
        asio::co_spawn(ctx, listen(acceptor), asio::detached);
        auto ep = acceptor.local_endpoint();
        std::cout << "listening on " << ep.address().to_string() << ':' << ep.port() << std::endl;  // flushes
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asio-echo: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "stats: (asio reference: no syscall counts) accepted_connections=%zu\n", accepted);
    return 0;
}
