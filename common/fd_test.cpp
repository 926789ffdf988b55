#include <gtest/gtest.h>

#include "fd.hpp"
#include "sys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <type_traits>
#include <utility>

using course::Fd;

namespace {

// True when `fd` is not an open descriptor of this process.
bool is_closed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

// A fresh pipe; the test decides who owns (and closes) each end.
struct RawPipe {
    int read_end = -1, write_end = -1;
    RawPipe() {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) == 0) read_end = p[0], write_end = p[1];
    }
};

}  // namespace

// Copying would mean two owners and a double close; moving is the only way to hand an Fd on.
static_assert(!std::is_copy_constructible_v<Fd>);
static_assert(!std::is_copy_assignable_v<Fd>);
static_assert(std::is_nothrow_move_constructible_v<Fd>);
static_assert(std::is_nothrow_move_assignable_v<Fd>);

TEST(Fd, DefaultConstructedOwnsNothing) {
    Fd fd;
    EXPECT_EQ(fd.get(), -1);
    EXPECT_FALSE(fd.valid());
    EXPECT_FALSE(static_cast<bool>(fd));
}

TEST(Fd, ClosesOnDestruction) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    {
        Fd r(p.read_end), w(p.write_end);
        EXPECT_TRUE(r.valid());
        EXPECT_FALSE(is_closed(p.read_end));
    }
    EXPECT_TRUE(is_closed(p.read_end));
    EXPECT_TRUE(is_closed(p.write_end));
}

TEST(Fd, ClosesExactlyOnceThroughTheCountedWrapper) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    ::close(p.write_end);
    course::sys::reset_counters();
    {
        Fd a(p.read_end);
        Fd b(std::move(a));
        Fd c;
        c = std::move(b);
    }
    // One close for three owners in turn, and no failed (double) close.
    EXPECT_EQ(course::sys::counter(course::sys::Call::close).calls, 1u);
    EXPECT_EQ(course::sys::counter(course::sys::Call::close).errors, 0u);
}

TEST(Fd, MoveConstructorTransfersOwnership) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    Fd w(p.write_end);
    {
        Fd a(p.read_end);
        Fd b(std::move(a));
        EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state is the point
        EXPECT_EQ(b.get(), p.read_end);
        EXPECT_FALSE(is_closed(p.read_end));  // a's destructor must not close what b now owns
    }
    EXPECT_TRUE(is_closed(p.read_end));
}

TEST(Fd, MoveAssignmentClosesTheOldTargetAndTakesOwnership) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    Fd target(p.read_end);
    Fd source(p.write_end);
    target = std::move(source);
    EXPECT_TRUE(is_closed(p.read_end));  // what target owned before
    EXPECT_EQ(target.get(), p.write_end);
    EXPECT_FALSE(source.valid());  // NOLINT(bugprone-use-after-move)
    EXPECT_FALSE(is_closed(p.write_end));
}

TEST(Fd, SelfMoveAssignmentKeepsTheDescriptorOpen) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    Fd w(p.write_end);
    Fd a(p.read_end);
    Fd& alias = a;  // through a reference, so the compiler does not flag the self-move
    a = std::move(alias);
    EXPECT_EQ(a.get(), p.read_end);
    EXPECT_FALSE(is_closed(p.read_end));
}

TEST(Fd, ReleaseGivesUpOwnershipWithoutClosing) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    Fd w(p.write_end);
    int raw = -1;
    {
        Fd a(p.read_end);
        raw = a.release();
        EXPECT_FALSE(a.valid());
    }
    EXPECT_EQ(raw, p.read_end);
    EXPECT_FALSE(is_closed(raw));
    ::close(raw);
}

TEST(Fd, ResetClosesTheOldDescriptorAndOwnsTheNewOne) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    {
        Fd a(p.read_end);
        a.reset(p.write_end);
        EXPECT_TRUE(is_closed(p.read_end));
        EXPECT_EQ(a.get(), p.write_end);
        EXPECT_FALSE(is_closed(p.write_end));
    }
    EXPECT_TRUE(is_closed(p.write_end));
}

TEST(Fd, ResetWithoutArgumentClosesAndEmpties) {
    RawPipe p;
    ASSERT_GE(p.read_end, 0);
    Fd w(p.write_end);
    Fd a(p.read_end);
    a.reset();
    EXPECT_TRUE(is_closed(p.read_end));
    EXPECT_FALSE(a.valid());
}
