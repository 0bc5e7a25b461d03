// Package faultproxy is a reverse proxy on 127.0.0.1 that stands in front of
// a blob service (Azurite) and injects faults on demand: 503 answers, or
// requests forwarded whose answer is then lost (the connection is dropped),
// which is what a timeout after a landed append looks like to the client.
package faultproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

// Mode is what the proxy does with a request.
type Mode int32

const (
	// Pass forwards every request.
	Pass Mode = iota
	// Unavailable answers 503 ServerBusy without forwarding.
	Unavailable
	// DropAnswer forwards appends, then drops the connection instead of
	// answering; other requests are forwarded normally.
	DropAnswer
	// HookAfterAppend forwards the next append, calls the hook (e.g. to
	// kill the collector) once it has landed, drops the answer, and goes
	// back to Pass.
	HookAfterAppend
	// HookAfterAnswer forwards the next request of any kind, calls the hook
	// once its answer has come back, drops the answer, and goes back to Pass:
	// in front of a collector, a request it took whose answer never reached
	// the client.
	HookAfterAnswer
)

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	srv      *http.Server
	ln       net.Listener
	mode     atomic.Int32
	injected atomic.Int64
	passed   atomic.Int64
	hook     atomic.Pointer[func()]
	hooked   atomic.Pointer[http.Header]
}

// Start listens on 127.0.0.1 (a free port) and forwards to target
// (e.g. http://127.0.0.1:10000). Close stops it.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		w.WriteHeader(http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch Mode(p.mode.Load()) {
		case Unavailable:
			p.injected.Add(1)
			w.Header().Set("x-ms-error-code", "ServerBusy")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>injected</Message></Error>`))
			return
		case DropAnswer:
			if r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "comp=appendblock") {
				p.injected.Add(1)
				rec := &discardWriter{header: http.Header{}}
				rp.ServeHTTP(rec, r)        // the append lands...
				panic(http.ErrAbortHandler) // ...and the answer is lost
			}
		case HookAfterAppend, HookAfterAnswer:
			isAppend := r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "comp=appendblock")
			mode := Mode(p.mode.Load())
			if (mode == HookAfterAnswer || isAppend) && p.mode.CompareAndSwap(int32(mode), int32(Pass)) {
				p.injected.Add(1)
				header := r.Header.Clone()
				p.hooked.Store(&header)
				rp.ServeHTTP(&discardWriter{header: http.Header{}}, r)
				if h := p.hook.Load(); h != nil {
					(*h)()
				}
				panic(http.ErrAbortHandler)
			}
		}
		p.passed.Add(1)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's base URL, e.g. http://127.0.0.1:41234.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetHook sets the function HookAfterAppend calls.
func (p *Proxy) SetHook(f func()) { p.hook.Store(&f) }

// HookedHeader is the header of the last request a hook mode forwarded.
func (p *Proxy) HookedHeader() http.Header {
	if h := p.hooked.Load(); h != nil {
		return *h
	}
	return nil
}

// SetMode switches the fault at once.
func (p *Proxy) SetMode(m Mode) { p.mode.Store(int32(m)) }

// Injected is the number of requests that got a fault; Passed those forwarded untouched.
func (p *Proxy) Injected() int64 { return p.injected.Load() }
func (p *Proxy) Passed() int64   { return p.passed.Load() }

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
