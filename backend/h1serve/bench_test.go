package h1serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverEnv makes the test binary a server for BenchmarkRoundTrip: "net/http" or "h1serve".
const serverEnv = "H1SERVE_BENCH_SERVER"

func TestMain(m *testing.M) {
	if kind := os.Getenv(serverEnv); kind != "" {
		if err := serveForBenchmark(kind); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// answer is a chat completion's size, the gateway's usual answer.
var answer = strings.Repeat("x", 600)

// serveForBenchmark serves a small answer on a loopback port, prints the address, and stops
// when stdin closes.
func serveForBenchmark(kind string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
	switch kind {
	case "net/http":
		go http.Serve(ln, h)
	case "h1serve":
		go (&Server{Handler: h}).Serve(ln)
	default:
		return fmt.Errorf("unknown server %q", kind)
	}
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// BenchmarkRoundTrip is one keep-alive request and answer between two processes over loopback,
// served by net/http's server and by this one: what a client of the gateway pays for the
// server alone. Thread wake-ups dominate, so it is measured across processes, as it is used.
func BenchmarkRoundTrip(b *testing.B) {
	for _, kind := range []string{"net/http", "h1serve"} {
		b.Run(strings.ReplaceAll(kind, "/", "_"), func(b *testing.B) {
			addr := startServerProcess(b, kind)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			payload := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}`
			request := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
				strconv.Itoa(len(payload)) + "\r\n\r\n" + payload)
			one := func() time.Duration {
				start := time.Now()
				if _, err := nc.Write(request); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				if err != nil || n != int64(len(answer)) {
					b.Fatalf("answer: %d bytes, %v", n, err)
				}
				return time.Since(start)
			}
			for range 200 { // warm both sides up
				one()
			}
			samples := make([]time.Duration, 0, b.N)
			for b.Loop() {
				samples = append(samples, one())
			}
			slices.Sort(samples)
			b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// startServerProcess runs this test binary as a server of kind and returns its address.
func startServerProcess(b *testing.B, kind string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("server process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(errors.Join(errors.New("server process printed no address"), err))
	}
	return strings.TrimSpace(line)
}
