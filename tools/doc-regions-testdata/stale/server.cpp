#include <unistd.h>

void echo(int fd) {
    char buf[512];
    // #region loop
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        write(fd, buf, static_cast<size_t>(n));
    }
    // #endregion loop
}

// #region close
void done(int fd) { close(fd); }
// #endregion close
