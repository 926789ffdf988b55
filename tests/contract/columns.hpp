// The columns of the behaviour matrix (docs/comparison.md), in table order.
// A test records its value under one of these names (ContractTest::record);
// what each column measures, and what each model should show, is said in
// comparison-prose.md under "## Column: NAME".
#pragma once

#include <string>

namespace course::test::contract {

inline constexpr const char* kContract = "Contract";  // the shared tests, counted (comparison.cpp)
inline constexpr const char* kConcurrent = "Concurrent clients";
inline constexpr const char* kConnections = "Connections held";
inline constexpr const char* kIdleCalls = "Idle calls/s";
inline constexpr const char* kIdleCpu = "Idle CPU";
inline constexpr const char* kStalled = "Calls while a client is stalled";
inline constexpr const char* kSlowReader = "Slow reader: RSS growth";
inline constexpr const char* kEmfile = "EMFILE";
inline constexpr const char* kCallsPerEcho = "Calls/echo";
inline constexpr const char* kEagainPerEcho = "EAGAIN reads/echo";
inline constexpr const char* kWaitsPerEcho = "Waits/echo";

inline constexpr const char* kColumns[] = {kContract,   kConcurrent, kConnections,   kIdleCalls,
                                           kIdleCpu,    kStalled,    kSlowReader,    kEmfile,
                                           kCallsPerEcho, kEagainPerEcho, kWaitsPerEcho};

// How a count is written in a cell: 10000 -> "10,000".
inline std::string thousands(long long n) {
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
}

}  // namespace course::test::contract
