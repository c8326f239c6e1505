package bench

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// RegisterFlags binds cfg's fields to command-line flags on fs, for an `opentracy bench`
// sub-command; the flag defaults are the zero values that Run replaces with its defaults.
func (cfg *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&cfg.Target, "target", cfg.Target, "base URL (…/v1) of another gateway to measure instead of starting OpenTracy")
	fs.StringVar(&cfg.TargetKey, "target-key", cfg.TargetKey, "key sent as Authorization: Bearer to -target")
	fs.IntVar(&cfg.TargetPID, "target-pid", cfg.TargetPID, "process id of -target, to measure its RSS")
	fs.BoolVar(&cfg.WaitForTarget, "wait", cfg.WaitForTarget, "with -target: print the fake upstream's URL, then wait up to 30 s for -target/models to answer")
	fs.StringVar(&cfg.Model, "model", cfg.Model, "model requested (default gpt-4o-mini)")
	fs.StringVar(&cfg.Upstream, "upstream", cfg.Upstream, "base URL of a fake upstream served by another harness (default: start one here)")
	fs.StringVar(&cfg.UpstreamAddr, "upstream-addr", cfg.UpstreamAddr, "listen address of the fake upstream started here (default 127.0.0.1:0)")
	fs.StringVar(&cfg.Binary, "binary", cfg.Binary, "opentracy executable to start as the gateway (`serve` in a child process); empty runs it in process, without RSS")
	fs.IntVar(&cfg.GatewayProcs, "gateway-procs", cfg.GatewayProcs, "GOMAXPROCS of the child gateway (default 2)")
	fs.StringVar(&cfg.CPUs, "cpus", cfg.CPUs, "pinning (Linux): auto (the child gateway gets -gateway-procs CPUs of its own when there are 2 more for the harness), off, or GATEWAY/HARNESS CPU lists like 0-1/2-7")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per sweep step and target (default 3s)")
	fs.Func("concurrency", "comma-separated client counts of the sweep (default 1,4,16,64,128,256)", func(s string) error {
		c, err := ParseConcurrency(s)
		if err != nil {
			return err
		}
		cfg.Concurrency = c
		return nil
	})
	fs.IntVar(&cfg.LatencyRequests, "latency-requests", cfg.LatencyRequests, "sequential requests per target at 1 client (default 2000)")
	fs.IntVar(&cfg.PausedRequests, "paused-requests", cfg.PausedRequests, "requests per target at 1 client each after -pause of quiet (default 300; negative skips them)")
	fs.DurationVar(&cfg.Pause, "pause", cfg.Pause, "quiet before each of the -paused-requests (default 10ms)")
	fs.DurationVar(&cfg.UpstreamDelay, "upstream-delay", cfg.UpstreamDelay, "fake upstream's processing time in the sweep (default 20ms)")
	fs.IntVar(&cfg.StreamChunks, "stream-chunks", cfg.StreamChunks, "chunks per streamed answer (default 50)")
	fs.DurationVar(&cfg.ChunkDelay, "chunk-delay", cfg.ChunkDelay, "fake upstream's pause between chunks (default 2ms)")
	fs.IntVar(&cfg.StreamRequests, "stream-requests", cfg.StreamRequests, "streams per target (default 20)")
}

// ParseConcurrency reads a comma-separated list of positive client counts ("1,4,16").
func ParseConcurrency(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("concurrency %q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
