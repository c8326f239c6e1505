package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"opentracy/backend/traces"
)

// The 1M-trace fixture: a realistic month of gateway traffic, generated deterministically from
// each trace's index so that every run (and every machine) builds the same database.

// fixtureVersion names the generator and the store's layout choices that are not schema
// versions (full-text merge settings): bump it when either changes, so that cached databases
// built otherwise are rebuilt rather than measured. The schema version is in the name too.
const fixtureVersion = 2

const (
	fixtureTraces = 1_000_000
	fixtureSpan   = 30 * 24 * time.Hour
)

// fixtureEnd is when the fixture's month ends; queries are relative to it.
var fixtureEnd = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

type fixtureModel struct {
	name, provider string
	weight         int     // share of traffic, out of 100
	inPrice        float64 // USD per million prompt tokens
	outPrice       float64
}

var fixtureModels = []fixtureModel{
	{"gpt-4o-mini", "openai", 28, 0.15, 0.6},
	{"gpt-4o", "openai", 20, 2.5, 10},
	{"claude-sonnet-4", "anthropic", 15, 3, 15},
	{"claude-haiku-3.5", "anthropic", 10, 0.8, 4},
	{"llama-3.3-70b", "groq", 10, 0.59, 0.79},
	{"gemini-2.0-flash", "google", 8, 0.1, 0.4},
	{"mixtral-8x7b", "groq", 6, 0.24, 0.24},
	{"o3-mini", "openai", 3, 1.1, 4.4},
}

var (
	fixtureAliases = []string{"smart", "fast", "cheap"}
	fixtureTeams   = []string{"search", "ads", "support", "billing", "growth", "infra", "mobile", "data", "legal", "research"}
	fixtureTools   = []string{
		`[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`,
		`[{"type":"function","function":{"name":"search_docs","parameters":{"type":"object","properties":{"query":{"type":"string"}}}}},{"type":"function","function":{"name":"open_ticket","parameters":{"type":"object"}}}]`,
		`[{"type":"function","function":{"name":"run_sql","parameters":{"type":"object","properties":{"sql":{"type":"string"}}}}}]`,
	}
)

// fixtureVocab is the prompts' vocabulary: common English words first, then made-up words, drawn
// with a Zipf distribution so that the first words are in most traces and the last in a handful.
var fixtureVocab = sync.OnceValue(func() []string {
	words := strings.Fields(`the a to of and in for is on that with this please can you what how
		data report customer order summary error user account payment invoice email request service
		team product document question issue update table query result time price model system file
		code function list number value project plan review meeting policy release schedule draft
		contract refund shipping delivery status ticket log metric dashboard latency budget forecast`)
	seen := map[string]bool{}
	for _, w := range words {
		seen[w] = true
	}
	r := rand.New(rand.NewPCG(7, 7))
	cons := []string{"b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "pl", "gr"}
	vows := []string{"a", "e", "i", "o", "u", "ai", "ou", "ea"}
	for len(words) < 20_000 {
		var sb strings.Builder
		for range 2 + r.IntN(3) {
			sb.WriteString(cons[r.IntN(len(cons))])
			sb.WriteString(vows[r.IntN(len(vows))])
		}
		if r.IntN(3) == 0 {
			sb.WriteString(cons[r.IntN(len(cons))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
})

// Benchmark search terms: one in 40% of the traces, one in about 400, one in about ten, one in
// a system prompt (one message shared by 12% of the traces) and one in none.
const (
	termCommon   = "customer"
	termUncommon = "buvost" // the 19,000th word
	termRare     = "xylophone"
	termSystem   = "concise"
	termNone     = "xylophonequartz"
)

var systemPrompts = []string{
	"You are a helpful assistant. Answer in a concise and friendly way.",
	"You are a support agent for an online shop. Be polite and precise.",
	"You are a senior engineer reviewing code. Point out bugs first.",
	"You translate the user's text to French, keeping the formatting.",
	"You summarise documents for busy executives in three bullet points.",
	"You are a SQL expert. Answer with one query and a short explanation.",
	"You extract structured data as JSON from the user's message.",
	"You are a careful legal assistant; cite the clause you rely on.",
}

// sentence is n Zipf-drawn words.
func sentence(r *rand.Rand, z *rand.Zipf, n int) string {
	vocab := fixtureVocab()
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(vocab[z.Uint64()])
	}
	return sb.String()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// fixtureRand is the generator of trace i's content; part is which piece of it.
func fixtureRand(i, part int) (*rand.Rand, *rand.Zipf) {
	r := rand.New(rand.NewPCG(uint64(i), uint64(part)))
	return r, rand.NewZipf(r, 1.1, 2, uint64(len(fixtureVocab())-1))
}

// userText and answerText are trace i's prompt and reply, also resent as history by later turns.
func userText(i int) string {
	r, z := fixtureRand(i, 1)
	s := sentence(r, z, 8+r.IntN(30))
	if i%99_991 == 17 {
		s += " " + termRare // made-up words have no x or y
	}
	return s
}

func answerText(i int) string {
	r, z := fixtureRand(i, 2)
	return sentence(r, z, 20+r.IntN(60))
}

// fixtureID is a UUIDv7-shaped id, ordered by time like the gateway's.
func fixtureID(started time.Time, i int) string {
	ms := uint64(started.UnixMilli())
	lo := uint64(i)*0x9E3779B97F4A7C15 | 1
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", ms>>16, ms&0xffff, (lo>>52)&0xfff, 0x8000|(lo>>36)&0x3fff, lo&0xffffffffffff)
}

// genTrace returns fixture trace i of fixtureTraces, in start order up to a second's jitter.
func genTrace(i int) *traces.Trace {
	r := rand.New(rand.NewPCG(uint64(i), 0))
	start := fixtureEnd.Add(-fixtureSpan)
	step := fixtureSpan / fixtureTraces
	started := start.Add(time.Duration(i)*step + time.Duration(r.Int64N(int64(time.Second))))
	pick := r.IntN(100)
	m := fixtureModels[len(fixtureModels)-1]
	for _, fm := range fixtureModels {
		if pick < fm.weight {
			m = fm
			break
		}
		pick -= fm.weight
	}
	t := &traces.Trace{
		ID:             fixtureID(started, i),
		StartedAt:      started,
		Endpoint:       "chat.completions",
		RequestedModel: m.name,
		Model:          m.name,
		Provider:       m.provider,
		Status:         200,
		FinishReason:   "stop",
		User:           "user-" + strconv.Itoa(r.IntN(5000)),
		UserAgent:      []string{"openai-python/1.54.0", "openai-node/4.70.0", "curl/8.5.0"}[r.IntN(3)],
	}
	if a := r.IntN(10); a < 3 {
		t.Alias = fixtureAliases[a]
		t.RequestedModel = t.Alias
	}
	switch e := r.IntN(100); {
	case e < 90:
	case e < 95:
		t.Endpoint = "embeddings"
	case e < 98:
		t.Endpoint = "responses"
	default:
		t.Endpoint = "completions"
	}
	// Latency: log-normal around 800 ms, 50 ms to a minute.
	t.LatencyMillis = min(max(800*expNorm(r, 1.0), 50), 60_000)
	t.Usage.PromptTokens = 50 + r.IntN(4000)
	t.Usage.CompletionTokens = 10 + r.IntN(1000)
	if r.IntN(4) == 0 {
		t.Usage.CachedTokens = t.Usage.PromptTokens / 2
	}
	if m.name == "o3-mini" {
		t.Usage.ReasoningTokens = t.Usage.CompletionTokens / 2
	}
	t.CostUSD = (float64(t.Usage.PromptTokens)*m.inPrice + float64(t.Usage.CompletionTokens)*m.outPrice) / 1e6
	t.Attempts = []traces.Attempt{{Provider: m.provider, Model: m.name, StartedAt: started, LatencyMillis: t.LatencyMillis, Status: 200}}
	if e := r.IntN(100); e < 5 { // 5% errors
		t.Status = []int{429, 500, 502, 503, 400}[e]
		t.Error = []string{"rate limited", "upstream error", "bad gateway", "overloaded", "invalid request"}[e]
		t.Attempts[0].Status, t.Attempts[0].Error = t.Status, t.Error
		t.Usage, t.CostUSD, t.FinishReason = traces.Usage{}, 0, ""
	} else if e < 8 { // a fallback that worked
		t.Attempts = append([]traces.Attempt{{Provider: "azure", Model: m.name, StartedAt: started, LatencyMillis: 30, Status: 503, Error: "overloaded"}}, t.Attempts...)
	}
	if t.Endpoint == "chat.completions" && r.IntN(5) < 2 {
		t.Stream = true
		t.TTFTMillis = t.LatencyMillis * (0.05 + 0.2*r.Float64())
	}
	team := fixtureTeams[r.IntN(len(fixtureTeams))]
	env := "prod"
	if e := r.IntN(10); e >= 7 {
		env = []string{"staging", "staging", "dev"}[e-7]
	}
	t.Metadata = map[string]string{"team": team, "env": env}
	if r.IntN(2) == 0 {
		t.Metadata["feature"] = "feature-" + strconv.Itoa(r.IntN(20))
	}
	switch t.Endpoint {
	case "embeddings":
		t.Input = json.RawMessage(jsonString(userText(i)))
		t.Output = nil
		t.FinishReason = ""
		return t
	case "completions":
		t.Input = json.RawMessage(jsonString(userText(i)))
	default:
		sys := systemPrompts[r.IntN(len(systemPrompts))]
		msgs := []string{`{"role":"system","content":` + jsonString(sys) + `}`}
		// A third are later turns of a conversation: the earlier turn is sent again.
		if prev := i - 1 - r.IntN(50); r.IntN(3) == 0 && prev >= 0 {
			msgs = append(msgs, `{"role":"user","content":`+jsonString(userText(prev))+`}`,
				`{"role":"assistant","content":`+jsonString(answerText(prev))+`}`)
		}
		msgs = append(msgs, `{"role":"user","content":`+jsonString(userText(i))+`}`)
		t.Input = json.RawMessage("[" + strings.Join(msgs, ",") + "]")
		if r.IntN(10) == 0 {
			t.Tools = json.RawMessage(fixtureTools[r.IntN(len(fixtureTools))])
		}
	}
	if t.Status == 200 {
		t.Output = json.RawMessage(`[{"index":0,"message":{"role":"assistant","content":` + jsonString(answerText(i)) + `},"finish_reason":"stop"}]`)
	}
	return t
}

// expNorm is exp of a normal sample with deviation sigma.
func expNorm(r *rand.Rand, sigma float64) float64 {
	return math.Exp(r.NormFloat64() * sigma)
}

// fixtureDir holds the cached fixtures, shared by benchmark runs.
func fixtureDir() string { return filepath.Join(os.TempDir(), "opentracy-bench") }

// fixturePath is the cached database for this generator and schema: a change to either makes a
// new name, and older files are removed when it is built.
func fixturePath() string {
	return filepath.Join(fixtureDir(), fmt.Sprintf("traces-f%d-s%d-n%d.db", fixtureVersion, len(migrations), fixtureTraces))
}

// need1M skips unless the 1M-trace benchmarks were asked for: building the fixture takes minutes
// the first time.
func need1M(b *testing.B) {
	b.Helper()
	if os.Getenv("OPENTRACY_BENCH_1M") != "1" {
		b.Skip("set OPENTRACY_BENCH_1M=1 to run the benchmarks over 1M traces (the fixture is cached in the temp dir)")
	}
}

var fixtureOnce = sync.OnceValues(buildFixture)

// fixture returns the path of the cached 1M-trace database, building it when missing.
func fixture(b *testing.B) string {
	b.Helper()
	need1M(b)
	path, err := fixtureOnce()
	if err != nil {
		b.Fatal(err)
	}
	return path
}

func buildFixture() (string, error) {
	path := fixturePath()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(fixtureDir(), 0o755); err != nil {
		return "", fmt.Errorf("fixture dir: %w", err)
	}
	// Built under a temporary name and renamed when complete, so that an interrupted build is
	// never mistaken for a fixture.
	tmp := fmt.Sprintf("%s.building-%d", path, os.Getpid())
	defer removeDB(tmp)
	ctx := context.Background()
	s, err := Open(ctx, tmp, nil)
	if err != nil {
		return "", err
	}
	started := time.Now()
	const batch = 2000
	next := make(chan []*traces.Trace, 2)
	go func() { // generating overlaps writing
		defer close(next)
		for i := 0; i < fixtureTraces; i += batch {
			tr := make([]*traces.Trace, 0, batch)
			for j := i; j < min(i+batch, fixtureTraces); j++ {
				tr = append(tr, genTrace(j))
			}
			next <- tr
		}
	}()
	for tr := range next {
		if err := s.Write(ctx, tr); err != nil {
			s.Close()
			for range next {
			}
			return "", fmt.Errorf("build fixture: %w", err)
		}
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("build fixture: %w", err)
	}
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		return "", errors.New("build fixture: the WAL outlived Close")
	}
	fmt.Fprintf(os.Stderr, "built %d-trace fixture in %v: %s\n", fixtureTraces, time.Since(started).Round(time.Second), path)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("build fixture: %w", err)
	}
	// Fixtures of other versions are stale now, and so are builds abandoned a day ago; another
	// process's build in progress is left alone.
	old, _ := filepath.Glob(filepath.Join(fixtureDir(), "traces-*.db*"))
	for _, o := range old {
		if o == path {
			continue
		}
		if strings.Contains(o, ".building-") {
			if st, err := os.Stat(o); err != nil || time.Since(st.ModTime()) < 24*time.Hour {
				continue
			}
		}
		os.Remove(o)
	}
	return path, nil
}

// removeDB removes a database and its WAL files.
func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// copyFixture copies the fixture to dir, for benchmarks that write to it.
func copyFixture(b *testing.B, dir string) string {
	b.Helper()
	src := fixture(b)
	dst := filepath.Join(dir, "traces.db")
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := out.ReadFrom(in); err != nil {
		b.Fatal(err)
	}
	// Written back now, not while the benchmark writes: gigabytes of dirty pages flushing
	// meanwhile made repeated runs differ by a third.
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}
