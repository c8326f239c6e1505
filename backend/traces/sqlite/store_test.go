package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"opentracy/backend/traces"
	"opentracy/backend/traces/storetest"
)

func openTest(t *testing.T, opt options) *Store {
	t.Helper()
	s, err := open(context.Background(), filepath.Join(t.TempDir(), "traces.db"), opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) traces.Store { return openTest(t, options{}) })
}

// The LIKE fallback passes the same contract, whatever this build links.
func TestContractWithoutFTS(t *testing.T) {
	storetest.Run(t, func(t *testing.T) traces.Store { return openTest(t, options{disableFTS: true}) })
}

// compiledWithFTS5 asks SQLite directly, independently of the store's detection.
func compiledWithFTS5(t *testing.T, s *Store) bool {
	t.Helper()
	_, err := s.w.Exec(`CREATE VIRTUAL TABLE temp.probe USING fts5(x)`)
	if err == nil {
		s.w.Exec(`DROP TABLE temp.probe`)
		return true
	}
	if !strings.Contains(err.Error(), "no such module") {
		t.Fatalf("probe fts5: %v", err)
	}
	return false
}

func TestFullTextUsesFTSWhenAvailable(t *testing.T) {
	s := openTest(t, options{})
	defer s.Close()
	ctx := context.Background()
	want := compiledWithFTS5(t, s)
	if s.FullText() != want {
		t.Fatalf("FullText() = %v, SQLite has FTS5: %v", s.FullText(), want)
	}
	tr := storetest.Trace(1)
	tr.Input = json.RawMessage(`[{"role":"user","content":"un café crème"}]`)
	if err := s.Write(ctx, []*traces.Trace{tr}); err != nil {
		t.Fatal(err)
	}
	// The FTS tokenizer folds diacritics; LIKE does not, which tells the two paths apart.
	p, err := s.List(ctx, traces.Query{Text: "creme"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Traces) == 1; got != want {
		t.Errorf("diacritic-folded search matched = %v, want %v (FTS5 %v)", got, want, want)
	}
	if !want {
		t.Log("this build's SQLite has no FTS5 (build with -tags sqlite_fts5 or libsqlite3 to cover it)")
		return
	}
	var qp strings.Builder
	where, args := s.where(traces.Query{Text: "creme"}, plan{})
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN SELECT t.id FROM traces t WHERE `+where, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		qp.WriteString(detail + "\n")
	}
	if !strings.Contains(qp.String(), "blob_fts") {
		t.Errorf("query plan does not use the FTS index:\n%s", qp.String())
	}
}

// A file written without FTS5 gets its index rebuilt when a build with FTS5 opens it.
func TestFTSRebuiltAfterFallbackWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.db")
	ctx := context.Background()
	s, err := open(ctx, path, options{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.FullText() {
		s.Close()
		t.Skip("SQLite without FTS5")
	}
	s.Close()
	s, err = open(ctx, path, options{disableFTS: true})
	if err != nil {
		t.Fatal(err)
	}
	tr := storetest.Trace(1)
	tr.Input = json.RawMessage(`[{"role":"user","content":"pelican"}]`)
	if err := s.Write(ctx, []*traces.Trace{tr}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = open(ctx, path, options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.List(ctx, traces.Query{Text: "pelican"})
	if err != nil || len(p.Traces) != 1 {
		t.Errorf("search after rebuild: %d traces, %v", len(p.Traces), err)
	}
}

// Agents resend the whole conversation every turn: storage must grow with the turns, not with
// their square.
func TestConversationDeduplicated(t *testing.T) {
	s := openTest(t, options{})
	defer s.Close()
	ctx := context.Background()
	const turns = 50
	filler := strings.Repeat("context ", 128) // ~1 KB per message
	msgs := []string{`{"role":"system","content":"You are an agent."}`}
	var sent, distinct int
	var inputs []string
	for i := range turns {
		user := fmt.Sprintf(`{"role":"user","content":"step %d %s"}`, i, filler)
		msgs = append(msgs, user)
		input := "[" + strings.Join(msgs, ",") + "]"
		reply := fmt.Sprintf(`{"role":"assistant","content":"done %d %s"}`, i, filler)
		tr := storetest.Trace(i)
		tr.Input = json.RawMessage(input)
		tr.Output = json.RawMessage(`[{"index":0,"message":` + reply + `}]`)
		if err := s.Write(ctx, []*traces.Trace{tr}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, reply)
		inputs = append(inputs, input)
		sent += len(input) + len(tr.Output)
		distinct += len(user) + len(tr.Output)
	}
	var count, bytes int
	if err := s.r.QueryRow(`SELECT count(*), sum(length(body)) FROM blobs`).Scan(&count, &bytes); err != nil {
		t.Fatal(err)
	}
	// Per turn: the new user message, the output, and the reply resent as an input element.
	if count > 3*turns+1 {
		t.Errorf("%d blobs for %d turns, want at most %d", count, turns, 3*turns+1)
	}
	if bytes > 2*distinct || bytes > sent/10 {
		t.Errorf("blobs hold %d bytes; distinct messages %d, sent %d", bytes, distinct, sent)
	}
	t.Logf("%d turns: sent %d bytes, stored %d bytes in %d blobs", turns, sent, bytes, count)
	for i, want := range inputs {
		got, err := s.Get(ctx, storetest.Trace(i).ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Input) != want {
			t.Fatalf("turn %d input not reassembled exactly", i)
		}
	}
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traces.db")
	ctx := context.Background()
	for i := range 3 {
		s, err := Open(ctx, path, nil)
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		if i == 0 {
			if err := s.Write(ctx, []*traces.Trace{storetest.Trace(1)}); err != nil {
				t.Fatal(err)
			}
		}
		var rows, version int
		if err := s.r.QueryRow(`SELECT count(*), max(version) FROM schema_version`).Scan(&rows, &version); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || version != len(migrations) {
			t.Errorf("open #%d: schema_version has %d rows, version %d; want 1 row, %d", i, rows, version, len(migrations))
		}
		if _, err := s.Get(ctx, storetest.Trace(1).ID); err != nil {
			t.Errorf("open #%d: %v", i, err)
		}
		s.Close()
	}
	// A file from a newer build is refused rather than misread.
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path, nil); err == nil {
		s.Close()
		t.Error("Open of a newer schema succeeded")
	}
}

func TestOpenRejectsMemory(t *testing.T) {
	if _, err := Open(context.Background(), ":memory:", nil); err == nil {
		t.Error("Open(:memory:) succeeded")
	}
}

func TestSplitArray(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`[{"a":1},"x",[1,2]]`, []string{`{"a":1}`, `"x"`, `[1,2]`}, true},
		{`[{"a":1}, {"b":2}]`, nil, false}, // whitespace would be lost
		{`[ ]`, nil, false},
		{`{"a":1}`, nil, false},
		{`"s"`, nil, false},
		{`[1,2`, nil, false},
		{`[1][2]`, nil, false},
	}
	for _, tc := range tests {
		got, ok := traces.SplitArray([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("SplitArray(%s) ok = %v", tc.in, ok)
			continue
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if fmt.Sprint(gs) != fmt.Sprint(tc.want) {
			t.Errorf("SplitArray(%s) = %q, want %q", tc.in, gs, tc.want)
		}
	}
}

// Filters matching more than commonRows traces take the probing plan; results must not change.
func TestCommonFiltersProbe(t *testing.T) {
	for _, opt := range []options{{}, {disableFTS: true}} {
		t.Run(fmt.Sprintf("fts=%v", !opt.disableFTS), func(t *testing.T) {
			s := openTest(t, opt)
			defer s.Close()
			ctx := context.Background()
			const n = commonRows + 100
			var batch []*traces.Trace
			for i := range n {
				tr := storetest.Trace(i)
				tr.Metadata = map[string]string{"team": "a", "odd": fmt.Sprint(i % 2)}
				if i%500 == 7 {
					tr.Input = json.RawMessage(`[{"role":"user","content":"rare marker"}]`)
				}
				batch = append(batch, tr)
			}
			if err := s.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				q       traces.Query
				want    int
				probing bool
			}{
				{traces.Query{Metadata: map[string]string{"team": "a"}}, n, true},
				{traces.Query{Metadata: map[string]string{"team": "a", "odd": "1"}}, n / 2, true},
				{traces.Query{Text: "question"}, n - 5, true},
				{traces.Query{Text: "question terse"}, n - 5, true},
				{traces.Query{Text: "marker"}, 5, false},
				{traces.Query{Text: "question", Metadata: map[string]string{"odd": "0"}}, n / 2, true}, // the rare ones are odd
			}
			for _, tc := range tests {
				p, err := s.plan(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(p.metadata)+len(p.text) > 0; got != tc.probing {
					t.Errorf("%+v: probing %v, want %v", tc.q, got, tc.probing)
				}
				tc.q.Limit = 97
				seen := map[string]bool{}
				last := ""
				for {
					page, err := s.List(ctx, tc.q)
					if err != nil {
						t.Fatal(err)
					}
					for _, sm := range page.Traces {
						if seen[sm.ID] || (last != "" && sm.ID >= last) {
							t.Fatalf("%+v: %s out of order after %s", tc.q, sm.ID, last)
						}
						seen[sm.ID], last = true, sm.ID
					}
					if page.NextCursor == "" {
						break
					}
					tc.q.Cursor = page.NextCursor
				}
				if len(seen) != tc.want {
					t.Errorf("%+v: %d traces, want %d", tc.q, len(seen), tc.want)
				}
			}
		})
	}
}

// The walk (common words, checked against streams of their matches) must list exactly what
// collecting the matches and sorting them lists, whatever the order the traces were written in,
// messages shared across traces (old system prompts, resent history) and deep cursors.
func TestWalkMatchesCollect(t *testing.T) {
	s := openTest(t, options{})
	defer s.Close()
	if !s.FullText() {
		t.Skip("SQLite without FTS5")
	}
	ctx := context.Background()
	words := []string{"alpha", "alphabet", "beta", "gamma", "delta", "omega", "omicron", "zeta"}
	const n = commonRows + 1500
	var all []*traces.Trace
	for i := range n {
		r := uint64(i)*2654435761 + 7
		pick := func(k uint64) string { return words[(r>>k)%uint64(len(words))] }
		tr := storetest.Trace(i)
		// Written in a shuffled order of start times, a few far out of order.
		tr.StartedAt = tr.StartedAt.Add(time.Duration(int64(r%97)-48) * time.Second)
		if i%500 == 3 {
			tr.StartedAt = tr.StartedAt.Add(-30 * time.Minute)
		}
		sys := fmt.Sprintf(`{"role":"system","content":"prompt %d %s"}`, i%3, []string{"omega", "zeta", "plain"}[i%3])
		msgs := []string{sys}
		if i > 10 && i%4 == 0 {
			msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":"earlier %s %d"}`, pick(5), i-7))
		}
		msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":"%s %s %d"}`, pick(0), pick(3), i))
		tr.Input = json.RawMessage("[" + strings.Join(msgs, ",") + "]")
		tr.Output = json.RawMessage(fmt.Sprintf(`[{"message":{"content":"%s"}}]`, pick(9)))
		if i%7 == 0 {
			tr.Output = nil
		}
		all = append(all, tr)
	}
	for i := 0; i < len(all); i += 700 {
		if err := s.Write(ctx, all[i:min(i+700, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(q traces.Query, force bool) []string {
		var out []string
		for {
			var page traces.Page
			var err error
			if force {
				// Collect and sort, whatever the counts say.
				p, perr := s.plan(ctx, q)
				if perr != nil {
					t.Fatal(perr)
				}
				p.text = nil
				var ts int64
				var id string
				if q.Cursor != "" {
					ts, id, _ = traces.DecodeCursor(q.Cursor)
				}
				page, err = s.list(ctx, q, p, q.Limit, ts, id)
			} else {
				page, err = s.List(ctx, q)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, sm := range page.Traces {
				out = append(out, sm.ID)
			}
			if page.NextCursor == "" {
				return out
			}
			q.Cursor = page.NextCursor
		}
	}
	for _, q := range []traces.Query{
		{Text: "alpha"},      // a prefix of alphabet too
		{Text: "omega"},      // in a shared system prompt and in messages
		{Text: "zeta beta"},  // two words, anywhere in the trace
		{Text: "ALPHA gam"},  // case and prefix
		{Text: "o"},          // many words
		{Text: "plain alph"}, // shared prompt and a prefix
		{Text: "omega", Models: []string{"gpt-4o"}, Status: "ok"},
		{Text: "delta", Metadata: map[string]string{"none": "x"}},
	} {
		p, err := s.plan(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.text) == 0 && q.Metadata == nil {
			t.Errorf("%+v: not planned as common; the test does not cover the walk", q)
		}
		for _, limit := range []int{40, 500} {
			q.Limit = limit
			got, want := pages(q, false), pages(q, true)
			if !slices.Equal(got, want) {
				t.Errorf("%+v: walk listed %d traces, collecting %d", q, len(got), len(want))
			}
		}
	}
}

// Aggregate from the index alone agrees with reading every row: sums exactly, latencies to the
// microsecond the index path rounds them to.
func TestAggregateIndexedMatchesRows(t *testing.T) {
	s := openTest(t, options{})
	defer s.Close()
	ctx := context.Background()
	var batch []*traces.Trace
	for i := range 3000 {
		tr := genTrace(i)
		tr.StartedAt = storetest.Trace(0).StartedAt.Add(time.Duration(i) * 7 * time.Second)
		batch = append(batch, tr)
	}
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	from := storetest.Trace(0).StartedAt.Add(-time.Minute)
	for _, q := range []traces.AggregateQuery{
		{Query: traces.Query{From: from, To: from.Add(6 * time.Hour)}, Bucket: time.Hour},
		{Query: traces.Query{From: from, To: from.Add(5*time.Hour + 10*time.Minute)}, Bucket: 20 * time.Minute, GroupBy: "model"},
		{Query: traces.Query{From: from.Add(time.Hour), To: from.Add(3 * time.Hour), Status: "error"}, Bucket: time.Hour, GroupBy: "provider"},
		{Query: traces.Query{From: from, To: from.Add(9 * time.Hour), Models: []string{"gpt-4o", "o3-mini"}, MinLatency: new(500.0)}, Bucket: 90 * time.Minute, GroupBy: "alias"},
		{Query: traces.Query{From: from.Add(100 * time.Hour), To: from.Add(101 * time.Hour)}, Bucket: time.Hour},
	} {
		nb, groupBy, err := q.Shape()
		if err != nil {
			t.Fatal(err)
		}
		group := "''"
		if groupBy != "" {
			group = "t." + groupBy
		}
		indexed, rows := traces.NewSeriesBuilder(q, nb), traces.NewSeriesBuilder(q, nb)
		if err := s.aggregateIndexed(ctx, q, group, indexed); err != nil {
			t.Fatal(err)
		}
		if err := s.aggregateRows(ctx, q, group, rows); err != nil {
			t.Fatal(err)
		}
		got, want := indexed.Result(), rows.Result()
		isLatency := func(p cmp.Path) bool { return strings.HasPrefix(p.Last().String(), ".LatencyP") }
		opts := cmp.Options{
			cmp.FilterPath(func(p cmp.Path) bool { return !isLatency(p) }, cmpopts.EquateApprox(0, 1e-9)),
			cmp.FilterPath(isLatency, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 0.001 })),
		}
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("%+v: index and rows differ (-rows +index):\n%s", q, diff)
		}
	}
}
