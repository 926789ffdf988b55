// go-echo: the reference point for chapter 07, a goroutine-per-connection
// echo server on Go's own netpoller (the program the course starts from).
//
//	go-echo [--host ADDR] [--port N]
//
// It follows the chapters' contract: prints "listening on HOST:PORT" on stdout
// once it accepts connections, echoes every byte back, closes a connection when
// the client's side reaches EOF (after echoing what came before it), and on
// SIGTERM or SIGINT exits 0 after one "stats: " line on stderr. Go gives no
// per-system-call counts, so that line carries none.
//
// Each connection reads into a 2 KiB buffer, like chapter 07's coroutines, so
// that memory per connection compares like with like. GOMAXPROCS is left at
// Go's default: tools/benchmark pins the server to one CPU with taskset, and Go
// sets GOMAXPROCS from the CPU affinity mask, so it runs on one core like the
// C++ servers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF: the client half-closed (or left); close our side
			return
		}
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "TCP port to listen on, 0 picks a free one")
	flag.Parse()

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// EMFILE and friends: back off briefly, like net/http does.
				time.Sleep(5 * time.Millisecond)
				continue
			}
			accepted.Add(1)
			go serve(c)
		}
	}()

	// os.Stdout is unbuffered in Go: the line is out when Printf returns.
	fmt.Printf("listening on %s\n", ln.Addr())
	<-stop
	ln.Close()
	fmt.Fprintf(os.Stderr, "stats: (go reference: no syscall counts) accepted_connections=%d\n", accepted.Load())
	os.Exit(0)
}
