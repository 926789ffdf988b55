// The table of servers (servers.hpp): one row per server and mode.
#include "servers.hpp"

#include <sys/select.h>

namespace course::test::contract {

void PrintTo(const Server& s, std::ostream* os) { *os << s.name; }

// A chapter whose target does not exist yet has no BIN_NN (tests/CMakeLists.txt).
std::vector<Server> servers() {
    std::vector<Server> table;
#ifdef HAVE_01
    table.push_back({"01-iterative", "01-blocking", server_binary("01", BIN_01), {},
                     {.concurrent = false, .reads_while_echo_is_pending = false}});
    table.push_back({"01-threads", "01-blocking", server_binary("01", BIN_01), {"--threads"},
                     {.reads_while_echo_is_pending = false}});
#endif
#ifdef HAVE_02
    table.push_back({"02-spin", "02-nonblocking-spin", server_binary("02", BIN_02), {},
                     {.blocks_in_syscalls = false,
                      .spins_when_idle = true,
                      .burns_cpu_when_idle = true,
                      .eagain_reads = EagainReads::many}});
    table.push_back({"02-spin-backoff", "02-nonblocking-spin", server_binary("02", BIN_02),
                     {"--backoff-us", "1000"},
                     {.blocks_in_syscalls = false, .spins_when_idle = true, .eagain_reads = EagainReads::unpredictable}});
#endif
#ifdef HAVE_03
    table.push_back(
        {"03-select", "03-select", server_binary("03", BIN_03), {}, {.fd_limit = FD_SETSIZE, .wait_call = "select"}});
#endif
#ifdef HAVE_04
    table.push_back({"04-poll", "04-poll", server_binary("04", BIN_04), {}, {.wait_call = "poll"}});
#endif
#ifdef HAVE_05
    table.push_back({"05-epoll-lt", "05-epoll-lt", server_binary("05", BIN_05), {}, {.wait_call = "epoll_wait"}});
#endif
#ifdef HAVE_06
    table.push_back({"06-epoll-et", "06-epoll-et", server_binary("06", BIN_06), {},
                     {.wait_call = "epoll_wait", .eagain_reads = EagainReads::one_per_echo}});
#endif
#ifdef HAVE_07
    table.push_back({"07-netpoller", "07-netpoller-coroutines", server_binary("07", BIN_07), {},
                     {.wait_call = "epoll_wait",
                      .eagain_reads = EagainReads::one_per_echo,
                      .reads_while_echo_is_pending = false}});
    table.push_back({"07-netpoller-poll", "07-netpoller-coroutines", server_binary("07", BIN_07), {"--poller", "poll"},
                     {.wait_call = "poll",
                      .eagain_reads = EagainReads::one_per_echo,
                      .reads_while_echo_is_pending = false}});
#endif
    return table;
}

void expect_clean_exit_within_2s(ServerProcess& server) {
    Exit e = server.stop();
    EXPECT_TRUE(e.clean()) << "exited " << e.exited << " code " << e.code << " signal " << e.signal << "\n"
                           << server.stderr_text();
    EXPECT_LT(e.seconds, 2.0);
    EXPECT_NE(server.stderr_text().find("stats: "), std::string::npos) << server.stderr_text();
}

}  // namespace course::test::contract
