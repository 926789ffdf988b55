// A source with nested, overlapping and indented regions.
#include <cstdio>

// #region outer
int add(int a, int b) {
    // #region body
    int sum = a + b;

    return sum;
    // #endregion body
}
// #endregion outer

int main() {
    // #region first
    int x = add(1, 2);
        // #region second
    if (x > 2) {
        std::printf("%d\n", x);
        // #endregion first
    }
        // #endregion second
    // #region empty
    // #endregion empty
    return 0;
}
