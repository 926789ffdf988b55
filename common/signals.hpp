// Signals, the way every chapter handles them.
//
// - SIGINT/SIGTERM ask the server to stop: stop_requested() turns true and
//   stop_fd() becomes readable, so a poller can wait on it with its sockets.
// - The handlers are installed WITHOUT SA_RESTART: a thread blocked in
//   accept/read/write in the main thread gets -1/EINTR and can look at
//   stop_requested(). A signal that lands just before the blocking call starts
//   would be missed, so once a stop is requested SIGALRM is also raised every
//   second until the process exits, interrupting whatever it blocked in.
// - SIGPIPE is ignored: writing to a peer that has gone returns -1/EPIPE
//   instead of killing the server.
// - SIGUSR1 does nothing but interrupt a blocking call (EINTR). The tests use
//   it to check that a server retries on EINTR instead of dropping the client.
#pragma once

namespace course {

void install_signal_handlers();
bool stop_requested();
int stop_fd();

// A function the SIGINT/SIGTERM handler calls after setting stop_requested(),
// for a loop that sleeps somewhere stop_fd() cannot reach (chapter 07's
// netpoll is woken by its own netpoll_break). It runs in the signal handler:
// it must be async-signal-safe. nullptr removes it.
void set_stop_hook(void (*hook)() noexcept);

}  // namespace course
