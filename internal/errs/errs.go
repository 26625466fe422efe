// Package errs holds pgBackRest's numbered errors. Every error that reaches a
// user carries one of these codes; the process exits with the code.
package errs

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Code is a pgBackRest error code (src/build/error/error.yaml in 2.45).
type Code int

// The codes pgbr uses. Names match pgBackRest's error type names.
const (
	Assert                Code = 25
	Checksum              Code = 26
	Config                Code = 27
	FileInvalid           Code = 28
	Format                Code = 29
	CommandRequired       Code = 30
	OptionInvalid         Code = 31
	OptionInvalidValue    Code = 32
	OptionRequired        Code = 37
	PgRunning             Code = 38
	PathNotEmpty          Code = 40
	FileOpen              Code = 41
	FileRead              Code = 42
	ParamRequired         Code = 43
	ArchiveMismatch       Code = 44
	ArchiveDuplicate      Code = 45
	VersionNotSupported   Code = 46
	PathCreate            Code = 47
	CommandInvalid        Code = 48
	LockAcquire           Code = 50
	BackupMismatch        Code = 51
	FileSync              Code = 52
	PathOpen              Code = 53
	PathSync              Code = 54
	FileMissing           Code = 55
	DbConnect             Code = 56
	DbQuery               Code = 57
	DbMismatch            Code = 58
	FileRemove            Code = 60
	PathRemove            Code = 61
	Stop                  Code = 62
	Term                  Code = 63
	FileWrite             Code = 64
	FeatureNotSupported   Code = 67
	ArchiveCommandInvalid Code = 68
	LinkExpected          Code = 69
	LinkDestination       Code = 70
	PathMissing           Code = 73
	FileMove              Code = 74
	BackupSetInvalid      Code = 75
	TablespaceMap         Code = 76
	LinkMap               Code = 78
	FileClose             Code = 79
	DbMissing             Code = 80
	DbInvalid             Code = 81
	ArchiveTimeout        Code = 82
	FileMode              Code = 83
	ArchiveDisabled       Code = 87
	FileOwner             Code = 88
	FileExists            Code = 93
	Crypto                Code = 95
	ParamInvalid          Code = 96
	FileInfo              Code = 98
	JSONFormat            Code = 99
	Service               Code = 101
	Execute               Code = 102
	RepoInvalid           Code = 103
	Command               Code = 104
	Access                Code = 105
	Clock                 Code = 106
	Runtime               Code = 122
	Unhandled             Code = 124
	Unknown               Code = 125
)

var names = map[Code]string{
	Assert: "AssertError", Checksum: "ChecksumError", Config: "ConfigError", FileInvalid: "FileInvalidError",
	Format: "FormatError", CommandRequired: "CommandRequiredError", OptionInvalid: "OptionInvalidError",
	OptionInvalidValue: "OptionInvalidValueError", OptionRequired: "OptionRequiredError", PgRunning: "PgRunningError",
	PathNotEmpty: "PathNotEmptyError", FileOpen: "FileOpenError", FileRead: "FileReadError",
	ParamRequired: "ParamRequiredError", ArchiveMismatch: "ArchiveMismatchError",
	ArchiveDuplicate: "ArchiveDuplicateError", VersionNotSupported: "VersionNotSupportedError",
	PathCreate: "PathCreateError", CommandInvalid: "CommandInvalidError", LockAcquire: "LockAcquireError",
	BackupMismatch: "BackupMismatchError", FileSync: "FileSyncError", PathOpen: "PathOpenError",
	PathSync: "PathSyncError", FileMissing: "FileMissingError", DbConnect: "DbConnectError", DbQuery: "DbQueryError",
	DbMismatch: "DbMismatchError", FileRemove: "FileRemoveError", PathRemove: "PathRemoveError", Stop: "StopError",
	Term: "TermError", FileWrite: "FileWriteError", FeatureNotSupported: "FeatureNotSupportedError",
	ArchiveCommandInvalid: "ArchiveCommandInvalidError", LinkExpected: "LinkExpectedError",
	LinkDestination: "LinkDestinationError", PathMissing: "PathMissingError", FileMove: "FileMoveError",
	BackupSetInvalid: "BackupSetInvalidError", TablespaceMap: "TablespaceMapError", LinkMap: "LinkMapError",
	FileClose: "FileCloseError", DbMissing: "DbMissingError", DbInvalid: "DbInvalidError", ArchiveTimeout: "ArchiveTimeoutError", FileMode: "FileModeError",
	ArchiveDisabled: "ArchiveDisabledError", FileOwner: "FileOwnerError", FileExists: "FileExistsError",
	Crypto: "CryptoError", ParamInvalid: "ParamInvalidError", FileInfo: "FileInfoError",
	JSONFormat: "JsonFormatError", Service: "ServiceError", Execute: "ExecuteError", RepoInvalid: "RepoInvalidError",
	Command: "CommandError", Access: "AccessError", Clock: "ClockError", Runtime: "RuntimeError",
	Unhandled: "UnhandledError", Unknown: "UnknownError",
}

// Name returns pgBackRest's name for the code, e.g. "FileMissingError".
func (c Code) Name() string {
	if n, ok := names[c]; ok {
		return n
	}
	return "UnknownError"
}

// Error is an error with a pgBackRest code. Msg may span several lines.
type Error struct {
	Code Code
	Msg  string
	Err  error // optional cause, for errors.Is/As
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with code c and a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with code c whose message is the formatted text
// followed by ": " and the cause's message.
func Wrap(c Code, cause error, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &Error{Code: c, Msg: msg, Err: cause}
}

// CodeOf returns the code of err: the code of the first *Error in its chain,
// or Unknown when there is none. A nil error has code 0.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Unknown
}

// Is reports whether err carries code c.
func Is(err error, c Code) bool { return err != nil && CodeOf(err) == c }

// OrCode gives err the code c when it has none yet (a storage error: its
// message already names the operation and the path); nil stays nil and a
// coded error keeps its code.
func OrCode(c Code, err error) error {
	if err == nil || CodeOf(err) != Unknown {
		return err
	}
	return &Error{Code: c, Msg: err.Error(), Err: err}
}

// Guard runs f and turns a panic in it into an Assert error asking for a
// report; debugf receives the panic and its stack (the log at debug level).
func Guard(debugf func(format string, a ...any), f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			debugf("panic: %v\n%s", r, debug.Stack())
			err = New(Assert, "internal error: %v\nHINT: please report this to the pgbr developers with the log file", r)
		}
	}()
	return f()
}
