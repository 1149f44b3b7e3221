// Go's echo server, written the way Go users write one: a goroutine per
// connection on the runtime's netpoller (epoll), reading into a buffer and
// writing it back. The comparison runs it with GOMAXPROCS=1, so one thread
// runs the Go code, as one RingLoop loop does.
//
//	go build -o echo_go echo.go && ./echo_go PORT
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

func serve(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, 16384)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := 7000
	if len(os.Args) > 1 {
		if p, err := strconv.Atoi(os.Args[1]); err == nil {
			port = p
		}
	}
	listener, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_go:", err)
		os.Exit(1)
	}
	fmt.Printf("echo_go listening on 127.0.0.1:%d\n", port)
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue // EMFILE and friends: keep accepting
		}
		// net.TCPConn sets TCP_NODELAY by default.
		go serve(conn)
	}
}
