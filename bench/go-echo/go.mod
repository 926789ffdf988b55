module course/bench/go-echo

go 1.19
