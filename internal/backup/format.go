package backup

import (
	"fmt"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

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

// storageErr gives a storage error without a pgBackRest code the code c;
// storage messages already name the operation and the path (as the
// command's).
func storageErr(c errs.Code, err error) error {
	if err == nil || errs.CodeOf(err) != errs.Unknown {
		return err
	}
	return &errs.Error{Code: c, Msg: err.Error(), Err: err}
}
