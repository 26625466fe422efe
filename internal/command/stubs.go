package command

import "github.com/pgbr-dev/pgbr/internal/errs"

func info(e *Env) error  { return errs.New(errs.CommandInvalid, "not yet") }
func check(e *Env) error { return errs.New(errs.CommandInvalid, "not yet") }
