package pricing

import (
	"bytes"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// costCase is one entry of testdata/costs.yaml.
type costCase struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	Usage    Usage  `yaml:"usage"`
	Want     Cost   `yaml:"want"`
}

func loadCostCases(t *testing.T) []costCase {
	t.Helper()
	data, err := os.ReadFile("testdata/costs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []costCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("parse testdata/costs.yaml: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/costs.yaml has no cases")
	}
	return cases
}

// approx absorbs float rounding in the hand-computed expectations, far below a micro-dollar.
var approx = cmpopts.EquateApprox(0, 1e-12)

func TestGoldenCosts(t *testing.T) {
	table := mustTable(t, nil)
	for _, tc := range loadCostCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			p, ok := table.Lookup(tc.Provider, tc.Model)
			if !ok {
				t.Fatalf("Lookup(%q, %q): not found", tc.Provider, tc.Model)
			}
			got := p.Breakdown(tc.Usage)
			if diff := cmp.Diff(tc.Want, got, approx); diff != "" {
				t.Errorf("Breakdown(%+v) mismatch (-want +got):\n%s", tc.Usage, diff)
			}
		})
	}
}

func TestTotalIsSumOfParts(t *testing.T) {
	table := mustTable(t, nil)
	for _, tc := range loadCostCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			p, _ := table.Lookup(tc.Provider, tc.Model)
			b := p.Breakdown(tc.Usage)
			// Exact equality: Total is defined as this sum, in this order.
			if sum := b.Input + b.CachedInput + b.CacheWrite + b.Output + b.Reasoning; sum != b.Total {
				t.Errorf("sum of parts %v != Total %v", sum, b.Total)
			}
			if c := p.Cost(tc.Usage); c != b.Total {
				t.Errorf("Cost %v != Breakdown().Total %v", c, b.Total)
			}
		})
	}
}

func TestBreakdownRates(t *testing.T) {
	million := Usage{PromptTokens: 3_000_000, CachedTokens: 1_000_000, CacheWriteTokens: 1_000_000,
		CompletionTokens: 2_000_000, ReasoningTokens: 1_000_000}
	tests := []struct {
		name  string
		price Price
		usage Usage
		want  Cost
	}{
		{
			name:  "every rate set",
			price: Price{Input: 1, CachedInput: 0.5, CacheWrite: 2, Output: 4, Reasoning: 8},
			usage: million,
			want:  Cost{Input: 1, CachedInput: 0.5, CacheWrite: 2, Output: 4, Reasoning: 8, Total: 15.5},
		},
		{
			name:  "zero cache and reasoning rates fall back to input and output",
			price: Price{Input: 1, Output: 4},
			usage: million,
			want:  Cost{Input: 1, CachedInput: 1, CacheWrite: 1, Output: 4, Reasoning: 4, Total: 11},
		},
		{
			name:  "zero price is free",
			price: Price{},
			usage: million,
			want:  Cost{},
		},
		{
			name:  "cache write clamped to what cache reads leave of the prompt",
			price: Price{Input: 1, CachedInput: 0.5, CacheWrite: 2, Output: 4},
			usage: Usage{PromptTokens: 1_000_000, CachedTokens: 600_000, CacheWriteTokens: 600_000},
			want:  Cost{CachedInput: 0.3, CacheWrite: 0.8, Total: 1.1},
		},
		{
			name:  "single token",
			price: Price{Input: 2.5, Output: 10},
			usage: Usage{PromptTokens: 1, CompletionTokens: 1},
			want:  Cost{Input: 0.0000025, Output: 0.00001, Total: 0.0000125},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.price.Breakdown(tt.usage)
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("Breakdown mismatch (-want +got):\n%s", diff)
			}
			if c := tt.price.Cost(tt.usage); c != got.Total {
				t.Errorf("Cost %v != Breakdown().Total %v", c, got.Total)
			}
		})
	}
}

// TestCostDeterministic guards the streamed == non-streamed promise: same usage, same bits.
func TestCostDeterministic(t *testing.T) {
	p := Price{Input: 0.15, CachedInput: 0.075, Output: 0.6}
	u := Usage{PromptTokens: 123457, CachedTokens: 9999, CompletionTokens: 7777, ReasoningTokens: 1}
	first := p.Cost(u)
	for range 100 {
		if got := p.Cost(u); got != first {
			t.Fatalf("Cost changed between calls: %v then %v", first, got)
		}
	}
}
