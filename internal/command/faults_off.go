//go:build !pgbr_faults

package command

import "github.com/pgbr-dev/pgbr/internal/storage"

// wrapRepoStorage is the identity in production builds: fault injection
// exists only in binaries built with -tags pgbr_faults (faults_on.go).
func wrapRepoStorage(_ *Env, st storage.Storage) (storage.Storage, error) { return st, nil }
