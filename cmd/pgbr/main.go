// Command pgbr is a drop-in for pgBackRest: same pgbackrest.conf, same
// command line, same repository format.
package main

import (
	"os"

	"github.com/pgbr-dev/pgbr/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
