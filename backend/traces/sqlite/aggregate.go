package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"

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
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	from, to, width := q.From.UnixNano(), q.To.UnixNano(), int64(q.Bucket)
	bargs := append([]any{nil, nil}, args...)
	var latencies []float64
	for i := range a.Len() {
		lo := from + int64(i)*width
		bargs[0], bargs[1] = lo, min(lo+width, to)
		rows, err := stmt.QueryContext(ctx, bargs...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				g       string
				n, errs int64
				pt, ct  int64
				cost    float64
				micros  sql.RawBytes
			)
			if err := rows.Scan(&g, &n, &errs, &cost, &pt, &ct, &micros); err != nil {
				rows.Close()
				return err
			}
			if n == 0 {
				continue // the ungrouped query's one row over an empty bucket
			}
			b := &a.Buckets(g)[i]
			b.Requests, b.Errors, b.CostUSD = n, errs, cost
			b.PromptTokens, b.CompletionTokens = pt, ct
			if latencies, err = parseMicros(latencies[:0], micros); err != nil {
				rows.Close()
				return err
			}
			setPercentiles(b, latencies)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
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
