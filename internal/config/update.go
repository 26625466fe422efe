package config

import (
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
)

// valid reports whether the option (full or base name) is valid for the command.
func (c *Config) valid(name string) bool {
	o, _, _, _, err := parseName(name, false)
	return err == nil && o != nil && o.validFor(c.command, c.role)
}

// setDefault replaces a value keeping it a default (source SourceDefault).
func (c *Config) setDefault(full string, value string) {
	o, idx, _, _, err := parseName(full, false)
	if err != nil || o == nil {
		return
	}
	v := &optVal{opt: o, idx: idx, src: SourceDefault}
	if convertValue(v, []string{value}, nil, c.command) == nil {
		v.set = true
		c.vals[fullName(o, idx)] = v
	}
}

// update applies the rules pgBackRest runs after parsing (cfgLoadUpdateOption).
func (p *parser) update() error {
	c := p.c
	repoKeys := c.RepoKeys()

	// --repo / --pg must name a configured key.
	for _, sel := range []struct {
		opt   Opt
		group string
	}{{Repo, "repo"}, {Pg, "pg"}} {
		if c.valid(sel.opt.name) && c.IsSet(sel.opt) {
			k := int(c.Int(sel.opt))
			if !containsInt(c.groupKeys(sel.group), k) {
				return errs.New(errs.OptionInvalidValue, "key '%d' is not valid for '%s' option", k, sel.opt)
			}
		}
	}

	// stanza-delete needs --repo when more than one repository is configured.
	if c.command == "stanza-delete" && c.valid("repo") && !c.IsSet(Repo) &&
		(len(repoKeys) > 1 || repoKeys[0] != 1) {
		return errs.New(errs.OptionRequired, "%s command requires option: repo\n"+
			"HINT: this command requires a specific repository to operate on", c.command)
	}

	// Local repositories of the same type must not share a path.
	if len(repoKeys) > 1 && c.valid("repo-path") {
		for _, a := range repoKeys {
			for _, b := range repoKeys {
				if a >= b {
					continue
				}
				ta, tb := c.String(RepoType.Index(a)), c.String(RepoType.Index(b))
				if c.String(RepoHost.Index(a)) != "" || c.String(RepoHost.Index(b)) != "" {
					continue
				}
				if (ta == "posix" || ta == "cifs") && ta == tb &&
					c.String(RepoPath.Index(a)) == c.String(RepoPath.Index(b)) {
					return errs.New(errs.OptionInvalidValue, "local repo%d and repo%d paths are both '%s' but must be different",
						a, b, c.String(RepoPath.Index(b)))
				}
			}
		}
	}

	// protocol-timeout must be greater than db-timeout.
	if c.valid("db-timeout") && c.valid("protocol-timeout") {
		db, proto := c.vals["db-timeout"], c.vals["protocol-timeout"]
		if db != nil && proto != nil && db.set && proto.set && proto.i <= db.i {
			switch {
			case proto.src == SourceDefault:
				c.setDefault("protocol-timeout", fmtNum(float64(db.i+30000)/1000))
			case db.src == SourceDefault:
				n := proto.i - 30000
				if n < 15000 {
					n = proto.i / 2
				}
				c.setDefault("db-timeout", fmtNum(float64(n)/1000))
			default:
				return errs.New(errs.OptionInvalidValue,
					"'%s' is not valid for 'protocol-timeout' option\n"+
						"HINT 'protocol-timeout' option (%s) should be greater than 'db-timeout' option (%s).",
					proto.disp, proto.disp, db.disp)
			}
		}
	}

	// pg and repo hosts cannot both be remote.
	if c.valid("pg-host") && c.valid("repo-host") {
		pgHost := false
		for _, k := range c.PgKeys() {
			if c.String(PgHost.Index(k)) != "" {
				pgHost = true
			}
		}
		if pgHost {
			for _, k := range repoKeys {
				if c.String(RepoHost.Index(k)) != "" {
					return errs.New(errs.Config, "pg and repo hosts cannot both be configured as remote")
				}
			}
		}
	}

	// Retention warnings and the derived archive retention.
	if c.valid("repo-retention-full-type") {
		for _, k := range repoKeys {
			full := RepoRetentionFull.Index(k)
			if !c.Has(full) {
				c.addWarning("option '%s' is not set for 'repo%d-retention-full-type=%s', the repository may run out of space"+
					"\nHINT: to retain full backups indefinitely (without warning), set option '%s' to the maximum.",
					full, k, c.String(RepoRetentionFullType.Index(k)), full)
			}
		}
	}
	if c.valid("repo-retention-archive") {
		for _, k := range repoKeys {
			archType := c.String(RepoRetentionArchiveType.Index(k))
			arch := RepoRetentionArchive.Index(k)
			diff := RepoRetentionDiff.Index(k)
			off := sprintf("WAL segments will not be expired: option 'repo%d-retention-archive-type=%s' but", k, archType)
			if !c.Has(arch) {
				switch archType {
				case "full":
					if c.String(RepoRetentionFullType.Index(k)) == "count" && c.Has(RepoRetentionFull.Index(k)) {
						c.setDefault(arch.name, c.String(RepoRetentionFull.Index(k)))
					}
				case "diff":
					if c.Has(diff) {
						c.setDefault(arch.name, c.String(diff))
					} else {
						c.addWarning("%s neither option '%s' nor option '%s' is set", off, arch, diff)
					}
				case "incr":
					c.addWarning("%s option '%s' is not set", off, arch)
				}
			} else if archType == "diff" && !c.Has(diff) {
				c.addWarning("option '%s' is not set for 'repo%d-retention-archive-type=diff'\n"+
					"HINT: to retain differential backups indefinitely (without warning), set option '%s' to the maximum.",
					diff, k, diff)
			}
		}
	}

	// S3 bucket names with dots cannot be verified with host-style TLS.
	for _, k := range repoKeys {
		bucket := c.String(RepoS3Bucket.Index(k))
		if bucket != "" && c.Bool(RepoStorageVerifyTLS.Index(k)) && strings.Contains(bucket, ".") &&
			c.String(RepoS3URIStyle.Index(k)) != "path" {
			return errs.New(errs.OptionInvalidValue, "'%s' is not valid for option 'repo%d-s3-bucket'\n"+
				"HINT: RFC-2818 forbids dots in wildcard matches.\n"+
				"HINT: TLS/SSL verification cannot proceed with this bucket name.\n"+
				"HINT: remove dots from the bucket name.", bucket, k)
		}
	}

	// Default upload chunk size depends on the repository type.
	if c.valid("repo-storage-upload-chunk-size") {
		for _, k := range repoKeys {
			n := RepoStorageUploadChunkSize.Index(k)
			t := c.String(RepoType.Index(k))
			if !c.Has(n) && (t == "s3" || t == "gcs" || t == "azure") {
				if t == "s3" {
					c.setDefault(n.name, "5MiB")
				} else {
					c.setDefault(n.name, "4MiB")
				}
			}
		}
	}

	// TLS host port default.
	if c.valid("repo-host-port") {
		for _, k := range repoKeys {
			n := RepoHostPort.Index(k)
			if c.String(RepoHostType.Index(k)) == "tls" && c.Source(n) == SourceDefault && c.String(RepoHost.Index(k)) != "" {
				c.setDefault(n.name, "8432")
			}
		}
	}
	if c.valid("pg-host-port") {
		for _, k := range c.PgKeys() {
			n := PgHostPort.Index(k)
			if c.String(PgHostType.Index(k)) == "tls" && c.Source(n) == SourceDefault && c.String(PgHost.Index(k)) != "" {
				c.setDefault(n.name, "8432")
			}
		}
	}

	// Deprecated compress → compress-type.
	if c.valid("compress") {
		cv := c.vals["compress"]
		ct := c.vals["compress-type"]
		if cv != nil && cv.src != SourceDefault {
			if ct != nil && ct.src != SourceDefault {
				c.addWarning("'compress' and 'compress-type' options should not both be set\n" +
					"HINT: 'compress-type' is preferred and 'compress' is deprecated.")
			} else if !cv.b && ct != nil {
				nv := &optVal{opt: ct.opt, src: SourceParam, set: true, s: "none", disp: "none"}
				c.vals["compress-type"] = nv
			}
		}
		// compress is not used past this point (pgBackRest invalidates it); keep it for display.
	}

	// compress-level default and range per compression type.
	if c.valid("compress-level") {
		t := c.String(CompressType)
		lv := c.vals["compress-level"]
		dflt, lo, hi, ok := filter.Levels(filter.CompressType(t))
		if lv == nil || !lv.set || lv.src == SourceDefault {
			c.setDefault("compress-level", sprintf("%d", dflt))
		} else if ok && (lv.i < int64(lo) || lv.i > int64(hi)) {
			return errs.New(errs.OptionInvalidValue,
				"'%d' is out of range for 'compress-level' option when 'compress-type' option = '%s'%s: must be between %d and %d",
				lv.i, t, p.whereOf("compress-level"), lo, hi)
		}
	}
	return nil
}

// whereOf returns the origin text of a raw value, "" when unknown.
func (p *parser) whereOf(full string) string {
	r, ok := p.raw[full]
	if !ok {
		return ""
	}
	return r.where(full, 0).String()
}
