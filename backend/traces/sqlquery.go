package traces

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What the SQL stores share of answering a Query: page sizes, cursors, the validation of an
// aggregate and the conditions every dialect writes alike. The rest (how metadata and text are
// matched, the plans) is each store's own.

// Page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	// MaxBuckets bounds Aggregate's output so that a tiny Bucket over a long range cannot
	// exhaust memory.
	MaxBuckets = 10000
)

// PageSize is q.Limit within [1, MaxPageSize], DefaultPageSize when unset.
func (q Query) PageSize() int {
	if q.Limit <= 0 {
		return DefaultPageSize
	}
	return min(q.Limit, MaxPageSize)
}

// MetadataKeys are q's metadata filter keys in order, so that the same query gives the same SQL.
func (q Query) MetadataKeys() []string {
	keys := make([]string, 0, len(q.Metadata))
	for k := range q.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Shape checks an aggregate query and returns its number of buckets and the column it groups
// by ("" for one series).
func (q AggregateQuery) Shape() (buckets int, groupBy string, err error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return 0, "", errors.New("need From before To")
	}
	if q.Bucket <= 0 {
		return 0, "", errors.New("need a positive Bucket")
	}
	span := q.To.Sub(q.From)
	nb := int64(span / q.Bucket)
	if span%q.Bucket != 0 {
		nb++
	}
	if nb > MaxBuckets {
		return 0, "", fmt.Errorf("%d buckets, at most %d", nb, MaxBuckets)
	}
	switch q.GroupBy {
	case "", "model", "provider", "alias":
		return int(nb), q.GroupBy, nil
	}
	return 0, "", fmt.Errorf("cannot group by %q", q.GroupBy)
}

// EncodeCursor makes the opaque cursor of a page that ends with the trace (startedAt, id).
func EncodeCursor(startedAt int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(startedAt, 10) + ":" + id))
}

// DecodeCursor reads a cursor EncodeCursor made.
func DecodeCursor(c string) (startedAt int64, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", fmt.Errorf("bad cursor: %w", err)
	}
	ts, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return 0, "", errors.New("bad cursor")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("bad cursor: %w", err)
	}
	return n, id, nil
}

// Where collects the conditions of a WHERE clause and their arguments, in order.
type Where struct {
	Conds []string
	Args  []any
}

// Add appends one condition with its arguments.
func (w *Where) Add(cond string, args ...any) {
	w.Conds = append(w.Conds, cond)
	w.Args = append(w.Args, args...)
}

// In adds expr IN (vals…) when vals is not empty.
func (w *Where) In(expr string, vals []string) {
	if len(vals) == 0 {
		return
	}
	w.Conds = append(w.Conds, expr+" IN ("+Placeholders(len(vals))+")")
	for _, v := range vals {
		w.Args = append(w.Args, v)
	}
}

// SQL is the conditions joined with AND; "1" (true) when there are none.
func (w *Where) SQL() string {
	if len(w.Conds) == 0 {
		return "1"
	}
	return strings.Join(w.Conds, " AND ")
}

// Columns are how a store's SQL names the columns the shared conditions read.
type Columns struct {
	StartedAt, Status, CostUSD, LatencyMillis, Tokens string
}

// AddScalar adds q's time range, status and cost, latency and token bounds.
func (w *Where) AddScalar(q Query, c Columns) {
	if !q.From.IsZero() {
		w.Add(c.StartedAt+" >= ?", q.From.UnixNano())
	}
	if !q.To.IsZero() {
		w.Add(c.StartedAt+" < ?", q.To.UnixNano())
	}
	switch q.Status {
	case "ok":
		w.Add(c.Status + " BETWEEN 200 AND 299")
	case "error":
		w.Add("NOT (" + c.Status + " BETWEEN 200 AND 299)")
	}
	bound(w, c.CostUSD+" >= ?", q.MinCostUSD)
	bound(w, c.CostUSD+" <= ?", q.MaxCostUSD)
	bound(w, c.LatencyMillis+" >= ?", q.MinLatency)
	bound(w, c.LatencyMillis+" <= ?", q.MaxLatency)
	bound(w, c.Tokens+" >= ?", q.MinTokens)
	bound(w, c.Tokens+" <= ?", q.MaxTokens)
}

func bound[T any](w *Where, cond string, v *T) {
	if v != nil {
		w.Add(cond, *v)
	}
}

// Placeholders is n question marks separated by commas.
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// SeriesBuilder collects an aggregate's buckets, group by group, as a store computes them.
type SeriesBuilder struct {
	q      AggregateQuery
	n      int
	groups map[string][]Bucket
}

// NewSeriesBuilder starts the series of q, n buckets each (AggregateQuery.Shape).
func NewSeriesBuilder(q AggregateQuery, n int) *SeriesBuilder {
	return &SeriesBuilder{q: q, n: n, groups: map[string][]Bucket{}}
}

// Len is the number of buckets of each series.
func (a *SeriesBuilder) Len() int { return a.n }

// Buckets is group g's series, created with its bucket start times on first use.
func (a *SeriesBuilder) Buckets(g string) []Bucket {
	bs := a.groups[g]
	if bs == nil {
		bs = make([]Bucket, a.n)
		for i := range bs {
			bs[i].Start = a.q.From.Add(time.Duration(i) * a.q.Bucket).UTC()
		}
		a.groups[g] = bs
	}
	return bs
}

// Result is the series sorted by group; without GroupBy, always one series (zeros when no
// trace matched).
func (a *SeriesBuilder) Result() Aggregates {
	if a.q.GroupBy == "" && len(a.groups) == 0 {
		a.Buckets("")
	}
	names := make([]string, 0, len(a.groups))
	for g := range a.groups {
		names = append(names, g)
	}
	slices.Sort(names)
	out := Aggregates{Series: make([]Series, 0, len(names))}
	for _, g := range names {
		out.Series = append(out.Series, Series{Group: g, Buckets: a.groups[g]})
	}
	return out
}
