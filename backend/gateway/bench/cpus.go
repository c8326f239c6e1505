package bench

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// cpuPlan is where the gateway and the harness (load generator and fake upstream) run. The
// throughput and tail-latency targets are for a gateway with its cores to itself: when the load
// generator shares them, it takes CPU the gateway would have, and the numbers say less.
type cpuPlan struct {
	gateway, harness []int // nil: not pinned
	// dedicated: the gateway's CPUs are its own (pinned apart from the harness).
	dedicated bool
	note      string
}

// planCPUs decides the CPUs from cfg.CPUs: "off", "G/H" (gateway and harness CPU lists, like
// "0-1/2-7"), or "auto" (default): with a child gateway and at least GatewayProcs+2 usable CPUs,
// the gateway gets the first GatewayProcs of them and the harness the rest.
func planCPUs(cfg Config, mode string) (cpuPlan, error) {
	spec := strings.TrimSpace(cfg.CPUs)
	allowed, allowedErr := allowedCPUs()
	shared := func(why string) cpuPlan {
		n := len(allowed)
		if n == 0 {
			return cpuPlan{note: "not pinned (" + why + ")"}
		}
		return cpuPlan{note: fmt.Sprintf("not pinned: gateway, load generator and fake upstream share %d CPUs (%s)", n, why)}
	}
	switch {
	case spec == "off":
		return shared("-cpus off"), nil
	case spec == "" || spec == "auto":
		switch {
		case allowedErr != nil:
			return shared(allowedErr.Error()), nil
		case mode == ModeInProcess:
			return shared("the gateway runs in the harness's process"), nil
		case mode == ModeExternal:
			return shared("external gateway: pin it and the harness yourself, or pass -cpus G/H for the harness's CPUs"), nil
		case len(allowed) < cfg.GatewayProcs+2:
			return shared(fmt.Sprintf("%d CPUs are too few to give the gateway %d of its own; %d would do", len(allowed), cfg.GatewayProcs, cfg.GatewayProcs+2)), nil
		}
		p := cpuPlan{gateway: allowed[:cfg.GatewayProcs], harness: allowed[cfg.GatewayProcs:], dedicated: true}
		p.note = fmt.Sprintf("gateway pinned to CPUs %s, load generator and fake upstream to %s", formatCPUs(p.gateway), formatCPUs(p.harness))
		return p, nil
	}
	if allowedErr != nil {
		return cpuPlan{}, fmt.Errorf("-cpus %s: %w", spec, allowedErr)
	}
	g, h, ok := strings.Cut(spec, "/")
	if !ok {
		return cpuPlan{}, fmt.Errorf("-cpus %q: want auto, off or GATEWAY/HARNESS CPU lists like 0-1/2-7", spec)
	}
	var p cpuPlan
	var err error
	if p.harness, err = parseCPUs(h); err != nil {
		return cpuPlan{}, fmt.Errorf("-cpus %q: harness: %w", spec, err)
	}
	if mode == ModeExternal {
		p.note = fmt.Sprintf("load generator and fake upstream pinned to CPUs %s; the external gateway is where you put it", formatCPUs(p.harness))
		return p, nil
	}
	if mode == ModeInProcess {
		return cpuPlan{}, fmt.Errorf("-cpus %q: the in-process gateway cannot be pinned apart from the harness", spec)
	}
	if p.gateway, err = parseCPUs(g); err != nil {
		return cpuPlan{}, fmt.Errorf("-cpus %q: gateway: %w", spec, err)
	}
	p.dedicated = !overlaps(p.gateway, p.harness)
	p.note = fmt.Sprintf("gateway pinned to CPUs %s, load generator and fake upstream to %s", formatCPUs(p.gateway), formatCPUs(p.harness))
	if !p.dedicated {
		p.note += " (overlapping)"
	}
	return p, nil
}

// pinHarness restricts this process to cpus, with GOMAXPROCS to match, and returns what undoes it.
func pinHarness(cpus []int) (restore func(), err error) {
	before, err := allowedCPUs()
	if err != nil {
		return nil, err
	}
	if err := pinSelf(cpus); err != nil {
		_ = pinSelf(before)
		return nil, err
	}
	procs := runtime.GOMAXPROCS(len(cpus))
	return func() {
		runtime.GOMAXPROCS(procs)
		_ = pinSelf(before)
	}, nil
}

// parseCPUs reads a CPU list like "0-1,4".
func parseCPUs(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a {
			return nil, fmt.Errorf("%q is not a CPU list like 0-1,4", s)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// formatCPUs writes a CPU list compactly ("0-1,4").
func formatCPUs(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

func overlaps(a, b []int) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
