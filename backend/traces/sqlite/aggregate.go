package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"opentracy/backend/traces"
)

// Aggregate buckets the matching traces of [From, To) and computes latency percentiles in Go.
func (s *Store) Aggregate(ctx context.Context, q traces.AggregateQuery) (traces.Aggregates, error) {
	nb, groupBy, err := q.Shape()
	if err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	group := "''"
	if groupBy != "" {
		group = "t." + groupBy
	}
	a := traces.NewSeriesBuilder(q, nb)
	if len(q.Metadata) == 0 && strings.TrimSpace(q.Text) == "" {
		err = s.aggregateIndexed(ctx, q, group, a)
	} else {
		err = s.aggregateRows(ctx, q, group, a)
	}
	if err != nil {
		return traces.Aggregates{}, fmt.Errorf("aggregate traces: %w", err)
	}
	return a.Result(), nil
}

// setPercentiles fills b's latency percentiles from its latencies, which it sorts.
func setPercentiles(b *traces.Bucket, latencies []float64) {
	slices.Sort(latencies)
	b.LatencyP50 = percentile(latencies, 50)
	b.LatencyP95 = percentile(latencies, 95)
	b.LatencyP99 = percentile(latencies, 99)
}

// aggregateIndexed answers from traces_time_cover alone, one query per bucket: SQLite sums, and
// the latencies come back as one list per group (whole microseconds, as text) rather than one
// row per trace, which through the driver cost more than everything else together. A query per
// bucket rather than a GROUP BY over the range saves sorting every trace by bucket: the index
// already returns each bucket's traces together.
func (s *Store) aggregateIndexed(ctx context.Context, q traces.AggregateQuery, group string, a *traces.SeriesBuilder) error {
	where, args := s.where(q.Query, plan{})
	query := `SELECT ` + group + `, count(*), coalesce(sum(t.status NOT BETWEEN 200 AND 299), 0),
		total(t.cost_usd), coalesce(sum(t.prompt_tokens), 0), coalesce(sum(t.completion_tokens), 0),
		group_concat(CAST(t.latency_ms * 1000 AS INTEGER))
		FROM traces t INDEXED BY traces_time_cover
		WHERE t.started_at >= ? AND t.started_at < ? AND ` + where
	if group != "''" {
		query += ` GROUP BY 1`
	}
	// The buckets are independent: contiguous runs of them go to one reader connection per CPU
	// (a month of traces is a million index entries to sum), and merge here.
	n := a.Len()
	workers := min(runtime.NumCPU(), n)
	results := make([][]bucketResult, workers)
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		g.Go(func() error {
			var err error
			results[w], err = s.sumBuckets(gctx, query, args, q, lo, hi)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, rs := range results {
		for _, r := range rs {
			bs := a.Buckets(r.group)
			r.bucket.Start = bs[r.index].Start
			bs[r.index] = r.bucket
		}
	}
	return nil
}

// bucketResult is one (group, bucket) of an aggregate.
type bucketResult struct {
	group  string
	index  int
	bucket traces.Bucket
}

// sumBuckets runs the bucket query of aggregateIndexed for buckets [lo, hi) on one connection.
func (s *Store) sumBuckets(ctx context.Context, query string, args []any, q traces.AggregateQuery, lo, hi int) ([]bucketResult, error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	from, to, width := q.From.UnixNano(), q.To.UnixNano(), int64(q.Bucket)
	bargs := append([]any{nil, nil}, args...)
	var (
		out       []bucketResult
		latencies []float64
	)
	for i := lo; i < hi; i++ {
		start := from + int64(i)*width
		bargs[0], bargs[1] = start, min(start+width, to)
		rows, err := stmt.QueryContext(ctx, bargs...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				r      = bucketResult{index: i}
				micros sql.RawBytes
			)
			b := &r.bucket
			if err := rows.Scan(&r.group, &b.Requests, &b.Errors, &b.CostUSD, &b.PromptTokens, &b.CompletionTokens, &micros); err != nil {
				rows.Close()
				return nil, err
			}
			if b.Requests == 0 {
				continue // the ungrouped query's one row over an empty bucket
			}
			if latencies, err = parseMicros(latencies[:0], micros); err != nil {
				rows.Close()
				return nil, err
			}
			setPercentiles(b, latencies)
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseMicros appends the comma-separated integers of list, in milliseconds.
func parseMicros(dst []float64, list []byte) ([]float64, error) {
	var v int64
	neg, digits := false, 0
	for i := 0; i <= len(list); i++ {
		if i == len(list) || list[i] == ',' {
			if digits == 0 {
				return nil, fmt.Errorf("bad latency list near byte %d", i)
			}
			if neg {
				v = -v
			}
			dst = append(dst, float64(v)/1000)
			v, neg, digits = 0, false, 0
			continue
		}
		switch c := list[i]; {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digits++
		case c == '-' && digits == 0 && !neg:
			neg = true
		default:
			return nil, fmt.Errorf("bad latency list near byte %d", i)
		}
	}
	return dst, nil
}

// aggregateRows reads one row per matching trace: for filters the index does not hold
// (metadata, text).
func (s *Store) aggregateRows(ctx context.Context, q traces.AggregateQuery, group string, a *traces.SeriesBuilder) error {
	where, args := s.where(q.Query, plan{})
	rows, err := s.r.QueryContext(ctx, `SELECT `+group+`, t.started_at, t.status, t.cost_usd,
		t.prompt_tokens, t.completion_tokens, t.latency_ms FROM traces t WHERE `+where, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	from, width := q.From.UnixNano(), int64(q.Bucket)
	latencies := map[string][][]float64{}
	for rows.Next() {
		var g string
		var ts int64
		var status int
		var cost, latency float64
		var pt, ct int64
		if err := rows.Scan(&g, &ts, &status, &cost, &pt, &ct, &latency); err != nil {
			return err
		}
		i := (ts - from) / width
		b := &a.Buckets(g)[i]
		b.Requests++
		if status < 200 || status > 299 {
			b.Errors++
		}
		b.CostUSD += cost
		b.PromptTokens += pt
		b.CompletionTokens += ct
		ls := latencies[g]
		if ls == nil {
			ls = make([][]float64, a.Len())
			latencies[g] = ls
		}
		ls[i] = append(ls[i], latency)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for g, ls := range latencies {
		bs := a.Buckets(g)
		for i, l := range ls {
			setPercentiles(&bs[i], l)
		}
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted values (0 when empty).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
