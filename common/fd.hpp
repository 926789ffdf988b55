// Fd: owns one file descriptor and closes it exactly once.
//
// Move-only, like std::unique_ptr: copying an fd would mean two owners and a
// double close, which can close a descriptor some other code has just reused.
#pragma once

#include "sys.hpp"

#include <utility>

namespace course {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    ~Fd() { reset(); }

    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership without closing.
    int release() noexcept { return std::exchange(fd_, -1); }

    // Closes the current descriptor (through sys::close, so it is traced and
    // counted) and takes ownership of `fd`.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) sys::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace course
