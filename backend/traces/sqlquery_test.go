package traces

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWhereKeepsConditionsAndArgumentsInStep(t *testing.T) {
	from := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	q := Query{From: from, To: from.Add(time.Hour), Status: "error", MinCostUSD: new(0.5), MaxTokens: new(100),
		Models: []string{"a", "b"}, Metadata: map[string]string{"team": "x", "env": "prod"}}
	var w Where
	w.AddScalar(q, Columns{StartedAt: "ts", Status: "st", CostUSD: "cost", LatencyMillis: "lat", Tokens: "tok"})
	w.In("model", q.Models)
	w.In("provider", nil)
	for _, k := range q.MetadataKeys() {
		w.Add("meta(?, ?)", k, q.Metadata[k])
	}
	wantSQL := "ts >= ? AND ts < ? AND NOT (st BETWEEN 200 AND 299) AND cost >= ? AND tok <= ? AND model IN (?,?) AND meta(?, ?) AND meta(?, ?)"
	if got := w.SQL(); got != wantSQL {
		t.Errorf("SQL:\n got %s\nwant %s", got, wantSQL)
	}
	wantArgs := []any{from.UnixNano(), from.Add(time.Hour).UnixNano(), 0.5, 100, "a", "b", "env", "prod", "team", "x"}
	if diff := cmp.Diff(wantArgs, w.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if strings.Count(w.SQL(), "?") != len(w.Args) {
		t.Errorf("%d placeholders for %d arguments", strings.Count(w.SQL(), "?"), len(w.Args))
	}
	var empty Where
	if empty.SQL() != "1" || len(empty.Args) != 0 {
		t.Errorf("no filters: %q %v", empty.SQL(), empty.Args)
	}
}

func TestAggregateShape(t *testing.T) {
	from := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	q := func(span, bucket time.Duration, group string) AggregateQuery {
		return AggregateQuery{Query: Query{From: from, To: from.Add(span)}, Bucket: bucket, GroupBy: group}
	}
	for _, c := range []struct {
		q       AggregateQuery
		buckets int
		err     string
	}{
		{q(24*time.Hour, time.Hour, "model"), 24, ""},
		{q(90*time.Minute, time.Hour, ""), 2, ""},
		{q(0, time.Hour, ""), 0, "need From before To"},
		{q(time.Hour, 0, ""), 0, "need a positive Bucket"},
		{q(365*24*time.Hour, time.Minute, ""), 0, "525600 buckets, at most 10000"},
		{q(time.Hour, time.Minute, "user"), 0, `cannot group by "user"`},
	} {
		n, _, err := c.q.Shape()
		if (err == nil) != (c.err == "") || err != nil && err.Error() != c.err || n != c.buckets {
			t.Errorf("%v by %v group %q: %d, %v; want %d, %q", c.q.To.Sub(c.q.From), c.q.Bucket, c.q.GroupBy, n, err, c.buckets, c.err)
		}
	}
	s := NewSeriesBuilder(q(2*time.Hour, time.Hour, ""), 2)
	got := s.Result()
	if len(got.Series) != 1 || len(got.Series[0].Buckets) != 2 || !got.Series[0].Buckets[1].Start.Equal(from.Add(time.Hour)) {
		t.Errorf("no traces, no grouping: %+v; want one series of two empty buckets", got)
	}
	if got := NewSeriesBuilder(q(2*time.Hour, time.Hour, "model"), 2).Result(); len(got.Series) != 0 {
		t.Errorf("no traces, grouped: %d series; want none", len(got.Series))
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := EncodeCursor(1767312000123456789, "0199-abc")
	ts, id, err := DecodeCursor(c)
	if err != nil || ts != 1767312000123456789 || id != "0199-abc" {
		t.Fatalf("DecodeCursor(%q) = %d, %q, %v", c, ts, id, err)
	}
	for _, bad := range []string{"!!", EncodeCursor(0, "x")[:2], "bm9jb2xvbg"} {
		if _, _, err := DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) accepted", bad)
		}
	}
	if (Query{}).PageSize() != DefaultPageSize || (Query{Limit: 10_000}).PageSize() != MaxPageSize || (Query{Limit: 7}).PageSize() != 7 {
		t.Error("PageSize does not bound the limit")
	}
}
