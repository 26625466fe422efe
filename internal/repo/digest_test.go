package repo

import (
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

func TestDigest(t *testing.T) {
	d, ok := ParseDigest(EmptySHA1)
	if !ok || d.String() != EmptySHA1 || d.IsZero() {
		t.Fatalf("%v %q", ok, d)
	}
	if u, ok := ParseDigest(strings.ToUpper(EmptySHA1)); !ok || u != d {
		t.Fatal("upper case")
	}
	for _, bad := range []string{"", "abc", EmptySHA1[:39] + "g", EmptySHA1 + "0"} {
		if _, ok := ParseDigest(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	if (Digest{}).String() != "" || HexDigest("") != (Digest{}) || HexDigest(EmptySHA1) != d {
		t.Fatal("zero digest")
	}
	// An all-zero checksum in a manifest is refused: zero means absent.
	ini, err := ParseIniUnchecked(manifestTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for _, v := range ini.Values {
		if v.Section == manifestFileKey && strings.Contains(v.Value, `"checksum":"`) {
			key = v.Key
			ini.Set(manifestFileKey, key, strings.Replace(v.Value, v.Value[strings.Index(v.Value, `"checksum":"`)+12:][:40], strings.Repeat("0", 40), 1))
			break
		}
	}
	if key == "" {
		t.Fatal("no file with a checksum in the template")
	}
	if _, err := ParseManifest(ini.Bytes()); errs.CodeOf(err) != errs.Format || !strings.Contains(err.Error(), "invalid SHA-1") {
		t.Fatalf("all-zero checksum: %v", err)
	}
}
