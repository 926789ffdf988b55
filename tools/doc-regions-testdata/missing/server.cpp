// #region close
void done(int fd) { close(fd); }
// #endregion close
