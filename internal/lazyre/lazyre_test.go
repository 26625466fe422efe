package lazyre

import "testing"

func TestRegexp(t *testing.T) {
	r := New(`^([0-9]+)-(x|y)$`)
	if r.re != nil {
		t.Fatal("compiled before use")
	}
	if !r.MatchString("12-x") || r.MatchString("12-z") {
		t.Fatal("MatchString")
	}
	if m := r.FindStringSubmatch("7-y"); len(m) != 3 || m[1] != "7" || m[2] != "y" {
		t.Fatalf("FindStringSubmatch: %q", m)
	}
	if got := r.ReplaceAllString("3-x", "$2"); got != "x" {
		t.Fatalf("ReplaceAllString: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an invalid expression did not panic at first use")
		}
	}()
	New(`(`).MatchString("")
}
