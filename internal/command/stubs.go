package command

import "github.com/pgbr-dev/pgbr/internal/errs"

func backup(e *Env) error  { return errs.New(errs.CommandInvalid, "not yet") }
func restore(e *Env) error { return errs.New(errs.CommandInvalid, "not yet") }
func info(e *Env) error    { return errs.New(errs.CommandInvalid, "not yet") }
func check(e *Env) error   { return errs.New(errs.CommandInvalid, "not yet") }
