package command

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The text rendering parses with Prometheus' own parser: families, help,
// label escaping, sorted series and special values.
func TestGaugesText(t *testing.T) {
	g := newGauges()
	g.set("b_metric", "Help with \\ and\nnewline.", []string{"zeta", "alpha"}, 2, "z2", "a1")
	g.set("b_metric", "ignored", []string{"zeta", "alpha"}, 1, "z1", "a\"q\"\\\n")
	g.set("b_metric", "", nil, 5, "z1") // label count mismatch: ignored
	g.set("a_metric", "No labels.", nil, 1.5e12)
	g.set("c_metric", "Special.", []string{"k"}, math.Inf(1), "inf")
	g.set("c_metric", "", nil, math.NaN(), "nan")
	g.set("a_metric", "", nil, 3) // overwrite
	var buf bytes.Buffer
	if err := g.writeText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	if len(fams) != 3 {
		t.Fatalf("%d families:\n%s", len(fams), text)
	}
	if v := fams["a_metric"].Metric[0].GetGauge().GetValue(); v != 3 {
		t.Errorf("a_metric = %v", v)
	}
	b := fams["b_metric"]
	if b.GetHelp() != "Help with \\ and\nnewline." || len(b.Metric) != 2 {
		t.Fatalf("b_metric: help %q, %d series\n%s", b.GetHelp(), len(b.Metric), text)
	}
	// Sorted by label values in label name order: alpha first.
	m0 := b.Metric[0]
	if m0.Label[0].GetName() != "alpha" || m0.Label[0].GetValue() != "a\"q\"\\\n" || m0.Label[1].GetValue() != "z1" || m0.GetGauge().GetValue() != 1 {
		t.Errorf("first b_metric series: %v\n%s", m0, text)
	}
	if strings.Index(text, "a_metric") > strings.Index(text, "b_metric") {
		t.Errorf("families not sorted:\n%s", text)
	}
	c := fams["c_metric"].Metric
	if len(c) != 2 || !math.IsInf(c[0].GetGauge().GetValue(), 1) || !math.IsNaN(c[1].GetGauge().GetValue()) {
		t.Errorf("c_metric: %v\n%s", c, text)
	}
	if _, ok := g.value("b_metric", "z2", "a1"); !ok {
		t.Errorf("value of a set series not found")
	}
	if _, ok := g.value("b_metric", "nope", "a1"); ok {
		t.Errorf("value of an unset series found")
	}
}

// TestLastBackupSameStop: of two backups that stopped in the same second
// (a pgbr backup can take less than one), the later label is the last.
func TestLastBackupSameStop(t *testing.T) {
	mk := func(label, typ string, start, stop, size int64) exInfoBackup {
		var b exInfoBackup
		b.Label, b.Type, b.Info.Size = label, typ, size
		b.Timestamp.Start, b.Timestamp.Stop = start, stop
		return b
	}
	s := &exInfoStanza{Name: "main", Backup: []exInfoBackup{
		mk("20261207-000000F", "full", 90, 99, 1),
		mk("20261207-000000F_20261207-000139I", "incr", 99, 100, 2),
		mk("20261207-000000F_20261207-000140I", "incr", 100, 100, 3),
	}}
	g := newGauges()
	exportStanza(g, s, time.Unix(200, 0))
	if v, ok := g.value("pgbackrest_backup_last_size_bytes", "incr", "n", "main"); !ok || v != 3 {
		t.Errorf("last incr size %v (%v), want the later label's 3", v, ok)
	}
}
