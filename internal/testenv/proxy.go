package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a loopback service. It can
// limit bandwidth (to make a backup last several credential lifetimes
// without gigabytes of data) and count connections. TLS passes through.
type Proxy struct {
	Port        int
	target      string
	bytesPerSec atomic.Int64
	up, down    limiter // shared by every connection, one per direction
	ln          net.Listener
	wg          sync.WaitGroup
	conns       sync.Map
	closed      atomic.Bool
}

// StartProxy proxies 127.0.0.1:<Port> to target ("127.0.0.1:9000"), at
// most bytesPerSec in each direction over all connections together (0 =
// unlimited): a client opening more connections gets no more bandwidth.
func StartProxy(t testing.TB, target string, bytesPerSec int64) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: ln.Addr().(*net.TCPAddr).Port, target: target, ln: ln}
	p.bytesPerSec.Store(bytesPerSec)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// SetRate changes the bandwidth limit.
func (p *Proxy) SetRate(bytesPerSec int64) { p.bytesPerSec.Store(bytesPerSec) }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	p.conns.Store(c, u)
	defer p.conns.Delete(c)
	done := make(chan struct{}, 2)
	go func() { p.copy(u, c, &p.up); u.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { p.copy(c, u, &p.down); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// limiter spaces the chunks of one direction: each chunk reserves its
// share of time after the previous reservation (idle time is not saved up).
type limiter struct {
	mu   sync.Mutex
	next time.Time
}

// wait sleeps until n bytes may pass at rate bytes per second.
func (l *limiter) wait(n int, rate int64) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	due := l.next
	l.mu.Unlock()
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// copy moves bytes in chunks, keeping the direction under the rate.
func (p *Proxy) copy(dst io.Writer, src io.Reader, l *limiter) {
	buf := make([]byte, 16*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if rate := p.bytesPerSec.Load(); rate > 0 {
				l.wait(n, rate)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops the proxy and every connection.
func (p *Proxy) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.ln.Close()
	p.conns.Range(func(k, v any) bool {
		k.(net.Conn).Close()
		v.(net.Conn).Close()
		return true
	})
	p.wg.Wait()
}
