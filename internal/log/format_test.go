package log

import "testing"

func TestInfoSizeFormat(t *testing.T) {
	// Values and results of pgBackRest's strSizeFormat.
	for _, c := range []struct {
		n    uint64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1024, "1KB"}, {1126, "1KB"}, {1127, "1.1KB"}, {1536, "1.5KB"},
		{1048575, "1024.0KB"}, {1048576, "1MB"}, {37550333, "35.8MB"}, {786432, "768KB"},
		{6831516, "6.5MB"}, {1073741824, "1GB"}, {1 << 40, "1024GB"}, {1610612736, "1.5GB"},
	} {
		if got := Size(c.n); got != c.want {
			t.Errorf("Size(%d) = %s, want %s", c.n, got, c.want)
		}
	}
}
