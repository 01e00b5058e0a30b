package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/strata-paas/strata/api"
)

// chart is one small line chart of an app's last hour, drawn on the server
// as inline SVG (no script, no external request).
type chart struct {
	Title  string
	Latest string // the last minute's value, as text
	Max    string // the top of the scale, as text
	SVG    template.HTML
}

const chartW, chartH = 240.0, 48.0

// charts draws requests/minute, mean latency, CPU and memory.
func charts(ps []api.MetricPoint) []chart {
	if len(ps) == 0 {
		return nil
	}
	series := func(f func(api.MetricPoint) float64) []float64 {
		out := make([]float64, len(ps))
		for i, p := range ps {
			out[i] = f(p)
		}
		return out
	}
	mk := func(title string, vs []float64, unit func(float64) string) chart {
		top := 0.0
		for _, v := range vs {
			top = math.Max(top, v)
		}
		return chart{Title: title, Latest: unit(vs[len(vs)-1]), Max: unit(top), SVG: polyline(title, vs, top)}
	}
	num := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	return []chart{
		mk("Requests per minute", series(func(p api.MetricPoint) float64 { return float64(p.Requests) }), num),
		mk("Mean latency", series(func(p api.MetricPoint) float64 { return p.LatencyMs }), func(v float64) string { return fmt.Sprintf("%.1f ms", v) }),
		mk("CPU", series(func(p api.MetricPoint) float64 { return p.CPUPercent }), func(v float64) string { return fmt.Sprintf("%.1f%%", v) }),
		mk("Memory", series(func(p api.MetricPoint) float64 { return float64(p.MemoryBytes) }), func(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }),
	}
}

// polyline draws vs (oldest first) scaled to top.
func polyline(title string, vs []float64, top float64) template.HTML {
	var pts strings.Builder
	step := chartW / math.Max(1, float64(len(vs)-1))
	for i, v := range vs {
		y := chartH - 2
		if top > 0 {
			y = chartH - 2 - (v/top)*(chartH-4)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", float64(i)*step, y)
	}
	// Only numbers and fixed markup go into the SVG; the title is escaped.
	return template.HTML(fmt.Sprintf(`<svg class="chart" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s over the last hour"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="%s"/></svg>`,
		chartW, chartH, chartW, chartH, template.HTMLEscapeString(title), strings.TrimSpace(pts.String())))
}
