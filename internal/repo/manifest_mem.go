package repo

import (
	"strings"
	"unsafe"
)

// A parsed manifest must not keep the text it was parsed from alive: the
// JSON parser hands out substrings of it, and one kept substring pins the
// whole text (about 200 bytes per file). strStore copies what a manifest
// keeps: names and checksums into shared blocks (one allocation per 64 KiB
// instead of one per string), modes, owners and references interned.
type strStore struct {
	block  []byte
	intern map[string]string
}

const (
	strBlockSize = 64 << 10
	strMaxIntern = 4096 // distinct values interned; the rest are copied
)

func newStrStore() *strStore { return &strStore{intern: map[string]string{}} }

// copy returns s in memory of the store's own. Bytes appended to a block
// are never written again, so the strings pointing into it stay immutable.
func (st *strStore) copy(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > strBlockSize/16 {
		return strings.Clone(s)
	}
	if cap(st.block)-len(st.block) < len(s) {
		st.block = make([]byte, 0, strBlockSize)
	}
	at := len(st.block)
	st.block = append(st.block, s...)
	return unsafe.String(&st.block[at], len(s))
}

// shared returns one copy of s for every equal s (a few distinct values).
func (st *strStore) shared(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := st.intern[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(st.intern) < strMaxIntern {
		st.intern[v] = v
	}
	return v
}

func (st *strStore) owner(o Owner) Owner {
	o.Name = st.shared(o.Name)
	return o
}

func (st *strStore) defaults(d *ManifestDefaults) {
	d.Mode = st.shared(d.Mode)
	d.User = st.owner(d.User)
	d.Group = st.owner(d.Group)
}

// file detaches one file entry.
func (st *strStore) file(f *ManifestFile) {
	f.Name = st.copy(f.Name)
	f.ChecksumPageError = st.copy(f.ChecksumPageError)
	f.Reference = st.shared(f.Reference)
	f.Mode = st.shared(f.Mode)
	f.User = st.owner(f.User)
	f.Group = st.owner(f.Group)
}

// path detaches one path entry.
func (st *strStore) path(p *ManifestPath) {
	p.Name = st.copy(p.Name)
	p.Mode = st.shared(p.Mode)
	p.User = st.owner(p.User)
	p.Group = st.owner(p.Group)
}

// link detaches one link entry.
func (st *strStore) link(l *ManifestLink) {
	l.Name = st.copy(l.Name)
	l.Destination = st.copy(l.Destination)
	l.User = st.owner(l.User)
	l.Group = st.owner(l.Group)
}

// rest detaches everything but the files, paths and links (done one by one
// as they are parsed). TestManifestDetached overwrites the parsed text afterwards: a
// field missing here shows there.
func (st *strStore) rest(m *Manifest) {
	m.BackrestVersion = strings.Clone(m.BackrestVersion)
	m.CipherPass = strings.Clone(m.CipherPass)
	b := &m.Backup
	for _, s := range []*string{&b.ArchiveStart, &b.ArchiveStop, &b.Label, &b.LsnStart, &b.LsnStop, &b.Prior, &b.Type,
		&m.DB.Version, &m.Option.CompressType} {
		*s = strings.Clone(*s)
	}
	for i := range b.Reference {
		b.Reference[i] = st.shared(b.Reference[i])
	}
	for i := range m.Targets {
		t := &m.Targets[i]
		for _, s := range []*string{&t.Name, &t.Path, &t.File, &t.TablespaceID, &t.TablespaceName, &t.Type} {
			*s = strings.Clone(*s)
		}
	}
	for i := range m.Databases {
		m.Databases[i].Name = strings.Clone(m.Databases[i].Name)
	}
	if m.Annotation != nil {
		a := make(map[string]string, len(m.Annotation))
		for k, v := range m.Annotation {
			a[strings.Clone(k)] = strings.Clone(v)
		}
		m.Annotation = a
	}
	st.defaults(&m.FileDefault)
	st.defaults(&m.PathDefault)
	st.defaults(&m.LinkDefault)
}
