// #region fine
int fine() { return 0; }
// #endregion fine

// #region never-closed
int open_forever() { return 1; }

// #region twice
int a() { return 2; }
// #endregion twice
// #region twice
int b() { return 3; }
// #endregion twice

// #region Bad_Name
// #endregion Bad_Name
