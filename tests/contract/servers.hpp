// The servers the contract suite runs against, what each one's I/O model lets
// us expect of it beyond the contract (its Traits), and the test fixture.
// servers.cpp holds the table: a new chapter is one more row there.
#pragma once

#include "comparison.hpp"
#include "server_process.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace course::test::contract {

// How many of a server's reads find nothing (EAGAIN) while it echoes.
enum class EagainReads {
    none,          // it reads when a readiness call (or a blocking read) says data is there
    one_per_echo,  // it reads until EAGAIN: 06 drains each edge, 07 tries the read before parking
    many,          // it asks every client on every sweep (02): they pile up with the sweeps
    // No expectation: it depends on when the sweeps come round. 02 with
    // --backoff-us 1000 sleeps 1 ms after each sweep, so by the next one the
    // data is usually there: few EAGAIN reads, paid for in latency.
    unpredictable,
};

// What a server's I/O model lets us expect of it, beyond the contract.
struct Traits {
    // Serves many clients at the same time. False for 01's iterative mode: a
    // second client waits in the listen backlog until the first one leaves.
    bool concurrent = true;
    // While idle, sleeps in a traced system call (accept, read, write, select,
    // poll, epoll_wait), so SIGUSR1 makes that call return -1 EINTR and --trace
    // shows it. False for 02: its calls never sleep. (With --backoff-us it
    // sleeps in usleep(3), which --trace does not show and which has nothing
    // to retry: an interrupted back-off is only a shorter one.)
    bool blocks_in_syscalls = true;
    // Calls accept/read again and again while idle (02, with or without
    // back-off), so its call counts grow with time, not with the work done.
    bool spins_when_idle = false;
    // And keeps a core busy doing it (02 without back-off; with --backoff-us
    // 1000 it sleeps between sweeps and uses a few percent).
    bool burns_cpu_when_idle = false;
    // Holds at most a bounded amount of memory for a client that sends but
    // does not read its echo (backpressure). The contract: true for all.
    bool bounded_memory_per_slow_reader = true;
    // Serves only descriptors below this number and closes the clients beyond
    // (select: an fd_set holds FD_SETSIZE = 1024 bits). 0: no limit of its
    // own, so 10,000 connections are tested in the comparison run.
    int fd_limit = 0;
    // The readiness call it sleeps in, once per batch of ready clients:
    // "select", "poll", "epoll_wait"; nullptr for 01 and 02, which have none.
    const char* wait_call = nullptr;
    EagainReads eagain_reads = EagainReads::none;
    // Reads on while part of a client's echo waits, unsent, in a buffer of
    // its own (02-06: up to 256 KiB per client). False for 01 and 07, which
    // write each piece in full (blocking, or suspended in write_all) before
    // they read the next, so they never read the EOF with echo bytes waiting.
    bool reads_while_echo_is_pending = true;
};

struct Server {
    const char* name;               // the test name suffix, e.g. "03-select" (as 03_select)
    // The chapter's directory, e.g. "03-select": the program name the server
    // uses in its messages. Not taken from the binary's file name, since a
    // student's server is named as the student likes (build/bin/work-05.interest).
    const char* chapter;
    std::string binary;             // BIN_03 from CMake, or COURSE_SERVER_03 if set: see server_binary()
    std::vector<std::string> args;  // the chapter flags this entry runs with
    Traits traits;
};
void PrintTo(const Server& s, std::ostream* os);  // names the ctest cases

// Every server whose chapter has a target (BIN_NN is defined only for those: tests/CMakeLists.txt).
std::vector<Server> servers();

class ContractTest : public testing::TestWithParam<Server> {
protected:
    const Traits& traits() const { return GetParam().traits; }
    // The program name the server uses in its messages: its chapter's directory.
    std::string chapter() const { return GetParam().chapter; }
    // A value for this server's row of the behaviour matrix (comparison.hpp, columns.hpp).
    void record(const char* column, const std::string& value) const {
        comparison::record(GetParam().name, column, value);
    }

    // The entry's flags, then `extra`; the harness adds --port 0 and waits for the ready line.
    ServerProcess start(std::vector<std::string> extra = {}, StartOptions o = {}) const {
        auto args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return ServerProcess::start(GetParam().binary, args, o);
    }
    // For a run that is expected to end by itself (--help, a bad command line).
    ServerProcess run_to_exit(std::vector<std::string> extra) const {
        StartOptions o;
        o.wait_ready = false;
        o.add_port_zero = false;
        return start(std::move(extra), o);
    }
};

// SIGTERM; the server must exit 0 within 2 s and print its stats line.
void expect_clean_exit_within_2s(ServerProcess& server);

}  // namespace course::test::contract
