#include <gtest/gtest.h>

#include "cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using course::Cli;
using course::CliError;
using course::Options;

namespace {

// A Cli the way a chapter sets one up: the built-in flags plus one flag, one
// bounded integer option and one choice of its own.
class CliTest : public ::testing::Test {
protected:
    CliTest() {
        cli.flag("--threads", "one thread per connection", threads);
        cli.option("--workers", "N", "number of worker threads", workers, 1, 64);
        cli.choice("--poller", {"epoll", "poll"}, "readiness API to use", poller);
    }

    Options parse(const std::vector<std::string>& args) { return cli.parse_args(args, help_requested); }

    // The CliError message for `args`, or "(accepted)" if they parse.
    std::string error_of(const std::vector<std::string>& args) {
        try {
            parse(args);
        } catch (const CliError& e) {
            return e.what();
        }
        return "(accepted)";
    }

    bool threads = false;
    long long workers = 4;
    std::string poller = "epoll";
    bool help_requested = false;
    Cli cli{"05-test", "A chapter under test."};
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_F(CliTest, DefaultsAreLoopbackPort8080NoTrace) {
    Options opt = parse({});
    EXPECT_EQ(opt.host, "127.0.0.1");
    EXPECT_EQ(opt.port, 8080);
    EXPECT_FALSE(opt.trace);
    EXPECT_FALSE(help_requested);
    // Chapter variables keep their defaults when their flags are absent.
    EXPECT_FALSE(threads);
    EXPECT_EQ(workers, 4);
    EXPECT_EQ(poller, "epoll");
}

TEST_F(CliTest, HostPortAndTraceAreParsed) {
    Options opt = parse({"--host", "0.0.0.0", "--port", "9000", "--trace"});
    EXPECT_EQ(opt.host, "0.0.0.0");
    EXPECT_EQ(opt.port, 9000);
    EXPECT_TRUE(opt.trace);
}

TEST_F(CliTest, NameEqualsValueFormIsAccepted) {
    Options opt = parse({"--port=9001", "--host=::1"});
    EXPECT_EQ(opt.port, 9001);
    EXPECT_EQ(opt.host, "::1");
}

TEST_F(CliTest, PortZeroAndPort65535AreAccepted) {
    EXPECT_EQ(parse({"--port", "0"}).port, 0);
    EXPECT_EQ(parse({"--port", "65535"}).port, 65535);
}

TEST_F(CliTest, BadPortIsRejectedNamingPort) {
    for (const std::string bad : {"70000", "65536", "-1", "notanumber", "", "12x", " 80", "+80"}) {
        std::string message = error_of({"--port", bad});
        EXPECT_TRUE(contains(message, "--port")) << "value '" << bad << "': " << message;
    }
    EXPECT_TRUE(contains(error_of({"--port="}), "--port"));
}

TEST_F(CliTest, UnknownArgumentIsRejectedNamingIt) {
    EXPECT_EQ(error_of({"--bogus"}), "unknown argument '--bogus'");
    EXPECT_EQ(error_of({"--bogus=3"}), "unknown argument '--bogus=3'");
    EXPECT_EQ(error_of({"stray"}), "unknown argument 'stray'");
}

TEST_F(CliTest, MissingValueIsRejected) {
    EXPECT_EQ(error_of({"--port"}), "--port expects a value (N)");
    EXPECT_EQ(error_of({"--trace", "--host"}), "--host expects a value (ADDR)");
    EXPECT_EQ(error_of({"--workers"}), "--workers expects a value (N)");
}

TEST_F(CliTest, SwitchWithAValueIsRejected) {
    EXPECT_EQ(error_of({"--trace=1"}), "--trace takes no value");
    EXPECT_EQ(error_of({"--threads=yes"}), "--threads takes no value");
    EXPECT_EQ(error_of({"--help=1"}), "--help takes no value");
}

TEST_F(CliTest, EmptyHostIsRejected) {
    EXPECT_TRUE(contains(error_of({"--host", ""}), "--host"));
    EXPECT_TRUE(contains(error_of({"--host="}), "--host"));
}

TEST_F(CliTest, HelpSetsHelpRequested) {
    parse({"--help"});
    EXPECT_TRUE(help_requested);
    parse({});  // and a later parse without --help clears it
    EXPECT_FALSE(help_requested);
}

TEST_F(CliTest, ChapterFlagIsSetWhenPresent) {
    parse({"--threads"});
    EXPECT_TRUE(threads);
}

TEST_F(CliTest, ChapterOptionParsesWithinItsBounds) {
    parse({"--workers", "8"});
    EXPECT_EQ(workers, 8);
    parse({"--workers=64"});
    EXPECT_EQ(workers, 64);
    parse({"--workers", "1"});
    EXPECT_EQ(workers, 1);
}

TEST_F(CliTest, ChapterOptionOutOfBoundsOrNotANumberIsRejected) {
    EXPECT_EQ(error_of({"--workers", "0"}), "--workers must be between 1 and 64, got 0");
    EXPECT_EQ(error_of({"--workers", "65"}), "--workers must be between 1 and 64, got 65");
    EXPECT_EQ(error_of({"--workers", "many"}), "--workers expects a whole number, got 'many'");
}

TEST_F(CliTest, ChapterChoiceAcceptsOnlyItsWords) {
    parse({"--poller", "poll"});
    EXPECT_EQ(poller, "poll");
    EXPECT_EQ(error_of({"--poller=kqueue"}), "--poller must be one of epoll, poll, got 'kqueue'");
    EXPECT_EQ(poller, "poll");  // a rejected value does not overwrite the variable
}

TEST_F(CliTest, HelpListsEveryFlagOnExactlyOneLine) {
    std::string help = cli.help();
    EXPECT_EQ(help.rfind("usage: 05-test ", 0), 0u) << help;
    EXPECT_TRUE(contains(help, "A chapter under test.")) << help;

    const std::vector<std::pair<std::string, std::string>> rows = {
        {"--host ADDR", "address to listen on"},
        {"--port N", "TCP port to listen on"},
        {"--trace", "system call"},
        {"--help", "show this help"},
        {"--threads", "one thread per connection"},
        {"--workers N", "number of worker threads"},
        {"--poller epoll|poll", "readiness API to use"},
    };
    for (const auto& [flag, text] : rows) {
        int lines = 0;
        std::istringstream in(help);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("  " + flag + " ", 0) == 0) {
                ++lines;
                EXPECT_TRUE(contains(line, text)) << line;
            }
        }
        EXPECT_EQ(lines, 1) << flag << " in:\n" << help;
    }
}

namespace {

// Runs Cli::parse on `args` as if they were argv[1..]. The copies live until
// exit, which Cli::parse may call.
Options run_parse(Cli& cli, const std::vector<std::string>& args) {
    static std::vector<std::string> storage;
    storage = args;
    storage.insert(storage.begin(), cli.program());
    std::vector<char*> argv;
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    return cli.parse(static_cast<int>(storage.size()), argv.data());
}

// A death test matches its regex against the child's stderr only. These
// helpers leave exactly one of the two streams on that capture.
void discard(int fd) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, fd);
    ::close(null);
}
void capture_only_stderr() {
    std::fflush(stdout);  // what the test runner printed so far goes out first
    discard(STDOUT_FILENO);
}
void capture_only_stdout() {
    std::fflush(stdout);
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    discard(STDERR_FILENO);
}

// gtest runs suites named *DeathTest first, before other tests may have started threads.
using CliDeathTest = CliTest;

}  // namespace

TEST_F(CliDeathTest, ParseExitsTwoWithOneLineOnStderrForABadCommandLine) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // The whole of stderr is that one line.
    EXPECT_EXIT(
        {
            capture_only_stderr();
            run_parse(cli, {"--port", "70000"});
        },
        ::testing::ExitedWithCode(2), "^05-test: --port must be between 0 and 65535, got 70000 \\(see --help\\)\n$");
    EXPECT_EXIT(
        {
            capture_only_stderr();
            run_parse(cli, {"--bogus"});
        },
        ::testing::ExitedWithCode(2), "^05-test: unknown argument '--bogus' \\(see --help\\)\n$");
}

TEST_F(CliDeathTest, ParseExitsZeroWithUsageOnStdoutForHelp) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    // What the regex sees here is stdout only.
    EXPECT_EXIT(
        {
            capture_only_stdout();
            run_parse(cli, {"--help"});
        },
        ::testing::ExitedWithCode(0), "^usage: 05-test .*--poller epoll\\|poll.*SIGINT/SIGTERM");
}

TEST_F(CliTest, ParseReturnsTheOptionsForAGoodCommandLine) {
    Options opt = run_parse(cli, {"--port", "0", "--threads"});
    EXPECT_EQ(opt.port, 0);
    EXPECT_TRUE(threads);
}
