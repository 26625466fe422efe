package config

import (
	"os"
	"testing"
)

// FuzzParseConfigFile feeds arbitrary config file text through the whole
// parser (ini, section selection, validation, dependency resolution, the
// post-parse updates) and the accessors. It must never panic.
func FuzzParseConfigFile(f *testing.F) {
	seeds := []string{
		"",
		"[global]\nrepo1-path=/r\n[main]\npg1-path=/pg\n",
		"[global]\nrepo1-type=s3\nrepo1-s3-bucket=b\nrepo1-s3-endpoint=e\nrepo1-s3-region=r\nrepo1-s3-key=k\nrepo1-s3-key-secret=s\n[main]\npg1-path=/pg\n",
		"[global]\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=x\ncompress-type=zst\ncompress-level=22\n[main:backup]\nprocess-max=4\n",
		"[main]\npg1-path=/pg\npg2-host=h\npg2-path=/p2\nrecovery-option=a=b\nrecovery-option=c\nexclude=x\nexclude=y\n",
		"key=before\n[global]\n",
		"[global\n",
		"[]\n",
		"[global]\n=x\n",
		"[global]\nprocess-max=1\nprocess-max=2\n",
		"[global]\nstart-fast=maybe\n",
		"[global]\nbuffer-size=3MiB\narchive-timeout=0.05\ndb-timeout=10\nprotocol-timeout=5\n",
		"[global]\nrepo256-path=/x\nrepo257-path=/y\npg0-path=/z\n",
		"[main]\ndb-path=/pg\ndb2-port=1\nretention-full=2\nhardlink=y\nrepo1-hardlink=n\n",
		"\xff\xfe[global]\r\nlog-path=/var/log\r\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	commands := []string{"backup", "restore", "archive-push", "archive-get", "check", "expire", "info", "stanza-create", "verify"}
	f.Fuzz(func(t *testing.T, text string) {
		for _, cmd := range commands {
			p := newParser()
			p.readFile = func(name string) ([]byte, error) {
				if name == "/fuzz/pgbackrest.conf" {
					return []byte(text), nil
				}
				return nil, os.ErrNotExist
			}
			p.readDir = func(string) ([]string, error) { return nil, os.ErrNotExist }
			c, err := p.parse([]string{"--config=/fuzz/pgbackrest.conf", "--stanza=main", cmd}, nil)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("empty error message")
				}
				continue
			}
			_ = c.LogParams()
			_ = c.CommandLineArgs()
			_ = c.Warnings()
			for _, k := range c.RepoKeys() {
				_ = c.String(RepoPath.Index(k))
			}
			for _, o := range optDefs {
				name := Opt{name: fullName(o, 1)}
				_ = c.String(name)
				_ = c.Bool(name)
				_ = c.Int(name)
				_ = c.Size(name)
				_ = c.Duration(name)
				_ = c.List(name)
				_ = c.Hash(name)
				_ = c.IsSet(name)
				_ = c.Source(name)
			}
		}
	})
}
