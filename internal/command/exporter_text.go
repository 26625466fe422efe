package command

import (
	"bufio"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The exporter's metrics are gauges, rendered in Prometheus' text
// exposition format (version 0.0.4) without the Prometheus client library:
// its package initialisers (default registry, Go and process collectors,
// protobuf) cost every pgbr process about 4 ms at start, which a burst of
// archive-push calls pays once per WAL segment.

// gauges is the metrics of one scrape, by family name.
type gauges struct {
	fams map[string]*gaugeFamily
}

type gaugeFamily struct {
	help   string
	labels []string
	series map[string]*gaugeSeries // by label values joined with \xff
}

type gaugeSeries struct {
	values []string
	v      float64
}

func newGauges() *gauges { return &gauges{fams: map[string]*gaugeFamily{}} }

// set sets the series of family name with the label values (in the order
// of labels) to value; the first call for a name fixes its help and labels.
// Values that do not match the labels are a programming error: ignored.
func (g *gauges) set(name, help string, labels []string, value float64, values ...string) {
	f, ok := g.fams[name]
	if !ok {
		f = &gaugeFamily{help: help, labels: labels, series: map[string]*gaugeSeries{}}
		g.fams[name] = f
	}
	if len(values) != len(f.labels) {
		return
	}
	k := strings.Join(values, "\xff")
	s, ok := f.series[k]
	if !ok {
		s = &gaugeSeries{values: append([]string(nil), values...)}
		f.series[k] = s
	}
	s.v = value
}

// value returns the value of a series.
func (g *gauges) value(name string, values ...string) (float64, bool) {
	f, ok := g.fams[name]
	if !ok {
		return 0, false
	}
	s, ok := f.series[strings.Join(values, "\xff")]
	if !ok {
		return 0, false
	}
	return s.v, true
}

// writeText renders the families sorted by name, their labels sorted by
// name and their series by label values, as the Prometheus client does.
func (g *gauges) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	names := make([]string, 0, len(g.fams))
	for n := range g.fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := g.fams[n]
		if len(f.series) == 0 {
			continue
		}
		order := make([]int, len(f.labels)) // label indexes sorted by name
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return f.labels[order[a]] < f.labels[order[b]] })
		series := make([]*gaugeSeries, 0, len(f.series))
		for _, s := range f.series {
			series = append(series, s)
		}
		sort.Slice(series, func(a, b int) bool {
			for _, i := range order {
				if x, y := series[a].values[i], series[b].values[i]; x != y {
					return x < y
				}
			}
			return false
		})
		bw.WriteString("# HELP " + n + " " + escapeHelp(f.help) + "\n# TYPE " + n + " gauge\n")
		for _, s := range series {
			bw.WriteString(n)
			if len(order) > 0 {
				bw.WriteByte('{')
				for j, i := range order {
					if j > 0 {
						bw.WriteByte(',')
					}
					bw.WriteString(f.labels[i] + `="` + escapeLabel(s.values[i]) + `"`)
				}
				bw.WriteByte('}')
			}
			bw.WriteString(" " + formatFloat(s.v) + "\n")
		}
	}
	return bw.Flush()
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
