package log

import "fmt"

// Size formats a size as pgBackRest's strSizeFormat does in its log lines
// and info text: 512B, 8KB, 1.5MB, 3GB.
func Size(n uint64) string {
	units := []string{"KB", "MB", "GB"}
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if int(v*10)%10 == 0 {
		return fmt.Sprintf("%d%s", int(v), units[u])
	}
	return fmt.Sprintf("%.1f%s", v, units[u])
}

// Pct formats a percentage with two decimals, as pgBackRest's progress.
func Pct(p float64) string { return fmt.Sprintf("%.2f", p) }
