package filter

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"sync"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// OpenSSL "Salted__" format (format spec §5.1): magic, 8-byte salt, then
// AES-256-CBC ciphertext with PKCS#7 padding; key and IV from
// EVP_BytesToKey(SHA-1, 1 iteration) over passphrase and salt.
const (
	cipherMagic  = "Salted__"
	saltSize     = 8
	headerSize   = len(cipherMagic) + saltSize
	cipherBlock  = aes.BlockSize
	cipherHint   = "\nHINT: is or was the repo encrypted?"
	subPassBytes = 48
)

// deriveKey implements EVP_BytesToKey with SHA-1 and one iteration, giving a
// 32-byte key and a 16-byte IV.
func deriveKey(pass string, salt []byte) (key, iv []byte) {
	var out [60]byte // 3 SHA-1 digests
	var prev []byte
	h := sha1.New()
	for n := 0; n < 48; {
		h.Reset()
		h.Write(prev)
		h.Write([]byte(pass))
		h.Write(salt)
		prev = h.Sum(out[n:n])
		n += len(prev)
	}
	return out[:32], out[32:48]
}

func newBlockMode(pass string, salt []byte, encrypt bool) (cipher.BlockMode, error) {
	key, iv := deriveKey(pass, salt)
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, errs.Wrap(errs.Crypto, err, "unable to initialize cipher")
	}
	if encrypt {
		return cipher.NewCBCEncrypter(b, iv), nil
	}
	return cipher.NewCBCDecrypter(b, iv), nil
}

func checkPass(pass string) error {
	if pass == "" {
		return errs.New(errs.Crypto, "cipher passphrase is empty")
	}
	return nil
}

// Encryptor encrypts what is written into an OpenSSL-compatible stream.
type encryptor struct {
	w       io.Writer
	mode    cipher.BlockMode
	salt    [saltSize]byte
	started bool
	pend    [cipherBlock]byte
	buf     []byte // pending plaintext (< cipherBlock bytes between calls), in pend
	out     []byte // work buffer from cipherBufPool, returned by Close
	err     error
	closed  bool
}

// NewEncryptor returns a writer that encrypts into w with aes-256-cbc in
// OpenSSL's "Salted__" format, as `openssl enc -aes-256-cbc -md sha1`. Close
// writes the final padded block; it does not close w.
func NewEncryptor(w io.Writer, pass string) (io.WriteCloser, error) {
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, errs.Wrap(errs.Crypto, err, "unable to generate salt")
	}
	return newEncryptorSalt(w, pass, salt)
}

func newEncryptorSalt(w io.Writer, pass string, salt [saltSize]byte) (*encryptor, error) {
	if err := checkPass(pass); err != nil {
		return nil, err
	}
	mode, err := newBlockMode(pass, salt[:], true)
	if err != nil {
		return nil, err
	}
	e := &encryptor{w: w, mode: mode, salt: salt}
	e.buf = e.pend[:0]
	e.out = *cipherBufPool.Get().(*[]byte)
	return e, nil
}

// cipherBufPool holds the work buffers of encryptors and decryptors
// (BufferSize + one block).
var cipherBufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize+cipherBlock); return &b }}

func putCipherBuf(b []byte) {
	if cap(b) == BufferSize+cipherBlock {
		b = b[:cap(b)]
		cipherBufPool.Put(&b)
	}
}

func (e *encryptor) header() error {
	if e.started {
		return nil
	}
	e.started = true
	var h [headerSize]byte
	copy(h[:], cipherMagic)
	copy(h[len(cipherMagic):], e.salt[:])
	_, err := e.w.Write(h[:])
	return err
}

func (e *encryptor) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.closed {
		return 0, errs.New(errs.Assert, "write to a closed encryptor")
	}
	if err := e.header(); err != nil {
		e.err = err
		return 0, err
	}
	n := len(p)
	// Complete a pending partial block first.
	if len(e.buf) > 0 {
		c := copy(e.buf[len(e.buf):cipherBlock], p)
		e.buf = e.buf[:len(e.buf)+c]
		p = p[c:]
		if len(e.buf) < cipherBlock {
			return n, nil
		}
		e.mode.CryptBlocks(e.out[:cipherBlock], e.buf)
		e.buf = e.buf[:0]
		if _, err := e.w.Write(e.out[:cipherBlock]); err != nil {
			e.err = err
			return n - len(p), err
		}
	}
	for len(p) >= cipherBlock {
		m := min(len(p)&^(cipherBlock-1), BufferSize)
		e.mode.CryptBlocks(e.out[:m], p[:m])
		if _, err := e.w.Write(e.out[:m]); err != nil {
			e.err = err
			return n - len(p), err
		}
		p = p[m:]
	}
	e.buf = append(e.buf, p...)
	return n, nil
}

// Close pads and writes the final block.
func (e *encryptor) Close() error {
	if e.closed {
		return e.err
	}
	e.closed = true
	defer func() { putCipherBuf(e.out); e.out = nil }()
	if e.err != nil {
		return e.err
	}
	if err := e.header(); err != nil {
		e.err = err
		return err
	}
	pad := cipherBlock - len(e.buf)
	for i := 0; i < pad; i++ {
		e.buf = append(e.buf, byte(pad))
	}
	e.mode.CryptBlocks(e.out[:cipherBlock], e.buf)
	e.buf = e.buf[:0]
	if _, err := e.w.Write(e.out[:cipherBlock]); err != nil {
		e.err = err
		return err
	}
	return nil
}

// decryptor reads plaintext from an OpenSSL "Salted__" stream.
type decryptor struct {
	r    io.Reader
	pass string
	mode cipher.BlockMode
	// buf holds ciphertext read from r; buf[dec:] is not yet decrypted.
	// Plaintext buf[pos:dec] is ready except for the last block, which is
	// held back until EOF to strip the padding.
	buf      []byte
	pos, dec int
	eof      bool
	err      error
	total    int64 // ciphertext bytes after the header
}

// NewDecryptor returns a reader of the plaintext of an OpenSSL "Salted__"
// aes-256-cbc stream read from r. A missing header, a length that is not a
// whole number of blocks or invalid padding (the usual sign of a wrong
// passphrase) gives a CryptoError at the end of the stream. Because the
// format has no authentication, a wrong passphrase is only detected at the
// end (and with a chance of about 1/256 not at all): callers must verify the
// plaintext checksum before trusting the data.
func NewDecryptor(r io.Reader, pass string) (io.Reader, error) {
	if err := checkPass(pass); err != nil {
		return nil, err
	}
	return &decryptor{r: r, pass: pass}, nil
}

func cryptoError(msg string) error { return errs.New(errs.Crypto, "%s", msg+cipherHint) }

func (d *decryptor) init() error {
	var h [headerSize]byte
	n, err := io.ReadFull(d.r, h[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return err
	}
	if n == 0 {
		return cryptoError("cipher header missing")
	}
	if n < headerSize || string(h[:len(cipherMagic)]) != cipherMagic {
		return cryptoError("cipher header invalid")
	}
	mode, err := newBlockMode(d.pass, h[len(cipherMagic):], false)
	if err != nil {
		return err
	}
	d.mode = mode
	d.buf = (*cipherBufPool.Get().(*[]byte))[:0]
	return nil
}

// fill reads more ciphertext and decrypts all complete blocks but the last.
func (d *decryptor) fill() error {
	// Move the held-back data to the front.
	rest := copy(d.buf[:cap(d.buf)], d.buf[d.pos:])
	d.dec -= d.pos
	d.pos = 0
	d.buf = d.buf[:rest]
	for !d.eof && len(d.buf) < cap(d.buf) {
		n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		d.total += int64(n)
		if err == io.EOF {
			d.eof = true
			break
		}
		if err != nil {
			return err
		}
		if n > 0 && len(d.buf)-d.dec > cipherBlock {
			break
		}
	}
	// Decrypt all complete blocks, keeping at least the last one back.
	end := d.dec + ((len(d.buf) - d.dec) &^ (cipherBlock - 1))
	if end > d.dec {
		d.mode.CryptBlocks(d.buf[d.dec:end], d.buf[d.dec:end])
		d.dec = end
	}
	if d.eof {
		if len(d.buf) != d.dec || d.total == 0 {
			return cryptoError("unable to flush: ciphertext length is not a multiple of the block size")
		}
		// Strip and check the padding in the last block.
		last := d.buf[d.dec-cipherBlock : d.dec]
		pad := int(last[cipherBlock-1])
		if pad < 1 || pad > cipherBlock {
			return cryptoError("unable to flush: bad decrypt (wrong passphrase or corrupt data)")
		}
		for _, c := range last[cipherBlock-pad:] {
			if int(c) != pad {
				return cryptoError("unable to flush: bad decrypt (wrong passphrase or corrupt data)")
			}
		}
		d.dec -= pad
		d.buf = d.buf[:d.dec]
	}
	return nil
}

// ready returns the end of the plaintext that may be handed out.
func (d *decryptor) ready() int {
	if d.eof {
		return d.dec
	}
	return d.dec - cipherBlock
}

// fail records the sticky result (io.EOF or an error) and returns the work
// buffer to its pool: nothing more will be read.
func (d *decryptor) fail(err error) (int, error) {
	d.err = err
	if d.buf != nil {
		putCipherBuf(d.buf)
		d.buf = nil
	}
	return 0, err
}

func (d *decryptor) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.mode == nil {
		if err := d.init(); err != nil {
			return d.fail(err)
		}
	}
	for d.pos >= d.ready() {
		if d.eof {
			return d.fail(io.EOF)
		}
		if err := d.fill(); err != nil {
			return d.fail(err)
		}
	}
	n := copy(p, d.buf[d.pos:d.ready()])
	d.pos += n
	return n, nil
}

// EncryptBytes encrypts plain into OpenSSL "Salted__" aes-256-cbc format with
// a random salt.
func EncryptBytes(plain []byte, pass string) ([]byte, error) {
	var salt [saltSize]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, errs.Wrap(errs.Crypto, err, "unable to generate salt")
	}
	return encryptBytesSalt(plain, pass, salt)
}

func encryptBytesSalt(plain []byte, pass string, salt [saltSize]byte) ([]byte, error) {
	if err := checkPass(pass); err != nil {
		return nil, err
	}
	mode, err := newBlockMode(pass, salt[:], true)
	if err != nil {
		return nil, err
	}
	pad := cipherBlock - len(plain)%cipherBlock
	out := make([]byte, headerSize+len(plain)+pad)
	copy(out, cipherMagic)
	copy(out[len(cipherMagic):], salt[:])
	body := out[headerSize:]
	copy(body, plain)
	for i := len(plain); i < len(body); i++ {
		body[i] = byte(pad)
	}
	mode.CryptBlocks(body, body)
	return out, nil
}

// DecryptBytes decrypts data in OpenSSL "Salted__" aes-256-cbc format. A
// wrong passphrase or corrupt data gives a CryptoError (see NewDecryptor for
// the limits of detection).
func DecryptBytes(data []byte, pass string) ([]byte, error) {
	if err := checkPass(pass); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, cryptoError("cipher header missing")
	}
	if len(data) < headerSize || string(data[:len(cipherMagic)]) != cipherMagic {
		return nil, cryptoError("cipher header invalid")
	}
	body := data[headerSize:]
	if len(body) == 0 || len(body)%cipherBlock != 0 {
		return nil, cryptoError("unable to flush: ciphertext length is not a multiple of the block size")
	}
	mode, err := newBlockMode(pass, data[len(cipherMagic):headerSize], false)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(body))
	mode.CryptBlocks(out, body)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > cipherBlock {
		return nil, cryptoError("unable to flush: bad decrypt (wrong passphrase or corrupt data)")
	}
	for _, c := range out[len(out)-pad:] {
		if int(c) != pad {
			return nil, cryptoError("unable to flush: bad decrypt (wrong passphrase or corrupt data)")
		}
	}
	return out[:len(out)-pad], nil
}

// NewSubPassphrase returns a new sub-passphrase: 48 random bytes in standard
// base64, 64 characters (format spec §5.3).
func NewSubPassphrase() (string, error) {
	var b [subPassBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errs.Wrap(errs.Crypto, err, "unable to generate passphrase")
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}
