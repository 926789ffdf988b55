// The command line every chapter shares: --host, --port, --trace, --help,
// plus the flags a chapter declares for itself.
//
//   course::Cli cli("01-blocking", "Blocking echo server: one client at a time, or a thread per client.");
//   bool threads = false;
//   cli.flag("--threads", "one thread per connection instead of one client at a time", threads);
//   course::Options opt = cli.parse(argc, argv);   // exits on --help or a bad command line
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace course {

struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    bool trace = false;
};

// A bad command line; what() is the one-line message for the user.
struct CliError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Cli {
public:
    Cli(std::string program, std::string summary);

    // A switch: present means true.
    void flag(const std::string& name, const std::string& help, bool& out);
    // An integer in [min, max], written as "--name N" or "--name=N".
    void option(const std::string& name, const std::string& metavar, const std::string& help, long long& out,
                long long min, long long max);
    // One of a fixed set of words, e.g. --poller epoll|poll.
    void choice(const std::string& name, const std::vector<std::string>& choices, const std::string& help,
                std::string& out);

    // Parses argv; on --help prints help() to stdout and exits 0, on a bad
    // command line prints one line to stderr and exits 2.
    Options parse(int argc, char** argv);

    // The testable core: throws CliError; `help_requested` is set by --help.
    Options parse_args(const std::vector<std::string>& args, bool& help_requested);
    std::string help() const;
    const std::string& program() const { return program_; }

private:
    struct Spec {
        std::string name, metavar, help;
        std::function<void(const std::string&)> set;  // metavar empty: a switch, called with ""
    };
    std::string program_, summary_;
    std::vector<Spec> specs_;
};

}  // namespace course
