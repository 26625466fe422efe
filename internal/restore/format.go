package restore

import "fmt"

// parallelMin is the size from which a file is written from a second
// goroutine (filter.AsyncWriter) beside its reading and decoding, at
// process-max > 1 (the command's backup uses the same threshold).
const parallelMin = 8 << 20

// sizeFormat formats a size as pgBackRest's strSizeFormat.
func sizeFormat(n uint64) string {
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

func pctFormat(p float64) string { return fmt.Sprintf("%.2f", p) }
