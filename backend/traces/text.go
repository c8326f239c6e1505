package traces

// PreviewRunes bounds Summary.Preview.
const PreviewRunes = 200

// SummaryOf is t as a row of the trace list.
func SummaryOf(t *Trace) Summary {
	return Summary{
		ID: t.ID, StartedAt: t.StartedAt, Endpoint: t.Endpoint, RequestedModel: t.RequestedModel,
		Alias: t.Alias, Model: t.Model, Provider: t.Provider, Status: t.Status, Error: t.Error,
		Stream: t.Stream, LatencyMillis: t.LatencyMillis, TTFTMillis: t.TTFTMillis, Usage: t.Usage,
		CostUSD: t.CostUSD, Preview: Preview(t.Input),
	}
}
