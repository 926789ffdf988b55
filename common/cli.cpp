#include "cli.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace course {

namespace {

long long parse_integer(const std::string& name, const std::string& text, long long min, long long max) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
        throw CliError(fmt::format("{} expects a whole number, got '{}'", name, text));
    }
    if (value < min || value > max) {
        throw CliError(fmt::format("{} must be between {} and {}, got {}", name, min, max, value));
    }
    return value;
}

}  // namespace

Cli::Cli(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

void Cli::flag(const std::string& name, const std::string& help, bool& out) {
    specs_.push_back({name, "", help, [&out](const std::string&) { out = true; }});
}

void Cli::option(const std::string& name, const std::string& metavar, const std::string& help, long long& out,
                 long long min, long long max) {
    specs_.push_back({name, metavar, help, [&out, name, min, max](const std::string& v) {
                          out = parse_integer(name, v, min, max);
                      }});
}

void Cli::choice(const std::string& name, const std::vector<std::string>& choices, const std::string& help,
                 std::string& out) {
    std::string metavar = fmt::format("{}", fmt::join(choices, "|"));
    specs_.push_back({name, metavar, help, [&out, name, choices](const std::string& v) {
                          for (const auto& c : choices)
                              if (c == v) {
                                  out = v;
                                  return;
                              }
                          throw CliError(fmt::format("{} must be one of {}, got '{}'", name, fmt::join(choices, ", "), v));
                      }});
}

namespace {
// The contract's flags, shared by every chapter.
struct Builtin {
    const char* name;
    const char* metavar;
    const char* help;
};
constexpr Builtin kBuiltins[] = {
    {"--host", "ADDR", "address to listen on (default 127.0.0.1)"},
    {"--port", "N", "TCP port to listen on, 0 picks a free one (default 8080)"},
    {"--trace", "", "print every system call and its result on stderr"},
    {"--help", "", "show this help and exit"},
};
}  // namespace

Options Cli::parse_args(const std::vector<std::string>& args, bool& help_requested) {
    Options opt;
    auto set_builtin = [&](const std::string& name, const std::string& v) {
        if (name == "--host") {
            if (v.empty()) throw CliError("--host expects an address, got ''");
            opt.host = v;
        } else if (name == "--port") {
            opt.port = static_cast<std::uint16_t>(parse_integer("--port", v, 0, 65535));
        } else if (name == "--trace") {
            opt.trace = true;
        } else {
            help_requested = true;
        }
    };

    help_requested = false;
    for (size_t i = 0; i < args.size(); ++i) {
        // "--name value" or "--name=value".
        std::string name = args[i], value;
        bool has_value = false;
        if (auto eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        std::string metavar;
        const Spec* spec = nullptr;
        bool known = false;
        for (const auto& b : kBuiltins)
            if (name == b.name) known = true, metavar = b.metavar;
        for (const auto& s : specs_)
            if (name == s.name) known = true, metavar = s.metavar, spec = &s;
        if (!known) throw CliError(fmt::format("unknown argument '{}'", args[i]));

        if (metavar.empty() && has_value) throw CliError(fmt::format("{} takes no value", name));
        if (!metavar.empty() && !has_value) {
            if (i + 1 >= args.size()) throw CliError(fmt::format("{} expects a value ({})", name, metavar));
            value = args[++i];
        }
        if (spec != nullptr) spec->set(value);
        else set_builtin(name, value);
    }
    return opt;
}

std::string Cli::help() const {
    std::string text = fmt::format("usage: {} [--host ADDR] [--port N] [--trace]", program_);
    for (const auto& s : specs_)
        text += s.metavar.empty() ? fmt::format(" [{}]", s.name) : fmt::format(" [{} {}]", s.name, s.metavar);
    text += fmt::format("\n\n{}\n\n", summary_);
    auto row = [&](const std::string& name, const std::string& metavar, const std::string& help) {
        text += fmt::format("  {:<26} {}\n", metavar.empty() ? name : name + " " + metavar, help);
    };
    for (const auto& b : kBuiltins)
        if (std::string(b.name) != "--help") row(b.name, b.metavar, b.help);
    for (const auto& s : specs_) row(s.name, s.metavar, s.help);
    row("--help", "", "show this help and exit");
    text += "\nSIGINT/SIGTERM stop the server and print the stats line on stderr.\n";
    return text;
}

Options Cli::parse(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    bool wants_help = false;
    try {
        Options opt = parse_args(args, wants_help);
        if (wants_help) {
            std::fputs(help().c_str(), stdout);
            std::exit(0);
        }
        return opt;
    } catch (const CliError& e) {
        std::fprintf(stderr, "%s: %s (see --help)\n", program_.c_str(), e.what());
        std::exit(2);
    }
}

}  // namespace course
