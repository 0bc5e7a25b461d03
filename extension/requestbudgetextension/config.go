package requestbudgetextension

import (
	"errors"
	"fmt"
	"time"
)

const (
	defaultMaxBytesInFlight = 64 << 20
	defaultRetryAfter       = time.Second
	defaultBodyStallTimeout = 10 * time.Second
	// grpc-go's default largest message (max_recv_msg_size_mib: 4).
	defaultGRPCBytesPerCall = 4 << 20
	// The deploy configs' read_timeout on the HTTP servers.
	defaultGRPCMessageTimeout = 20 * time.Second
)

// Config bounds the request bodies the HTTP servers naming this extension
// in their `middlewares` hold at once, all of them together.
type Config struct {
	// MaxBytesInFlight is the most bytes of request bodies held at once,
	// each byte from when it is read until the server's handler returns. A
	// request that does not fit is answered 503 with Retry-After; a body
	// larger than the whole budget, 413.
	MaxBytesInFlight int64 `mapstructure:"max_bytes_in_flight"`
	// BodyStallTimeout cuts a request whose body sends nothing for this long
	// (408). 0: never.
	BodyStallTimeout time.Duration `mapstructure:"body_stall_timeout"`
	// RetryAfter is the Retry-After of a 503, in whole seconds.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// GRPCBytesPerCall is what a gRPC call takes from the budget while it
	// runs, on gRPC servers naming this extension: grpc-go reads and decodes
	// a message before any hook sees its size, so a call is charged the
	// largest message the server accepts.
	GRPCBytesPerCall int64 `mapstructure:"grpc_bytes_per_call"`
	// GRPCMessageTimeout cuts a gRPC call whose request has not all arrived
	// (its message and, on a unary call, its end) this long after its
	// headers, and gives back its grpc_bytes_per_call. 0: never.
	GRPCMessageTimeout time.Duration `mapstructure:"grpc_message_timeout"`
	// GRPCMaxBytesInFlight is the most of max_bytes_in_flight that gRPC
	// calls hold at once, so calls, which cost their clients only their
	// headers, never take the HTTP servers' share. 0: half of
	// max_bytes_in_flight, at least grpc_bytes_per_call.
	GRPCMaxBytesInFlight int64 `mapstructure:"grpc_max_bytes_in_flight"`
}

// grpcShare is grpc_max_bytes_in_flight, its default resolved.
func (cfg *Config) grpcShare() int64 {
	if cfg.GRPCMaxBytesInFlight > 0 {
		return cfg.GRPCMaxBytesInFlight
	}
	return max(cfg.MaxBytesInFlight/2, cfg.GRPCBytesPerCall)
}

func createDefaultConfig() *Config {
	return &Config{MaxBytesInFlight: defaultMaxBytesInFlight, RetryAfter: defaultRetryAfter, GRPCBytesPerCall: defaultGRPCBytesPerCall,
		BodyStallTimeout: defaultBodyStallTimeout, GRPCMessageTimeout: defaultGRPCMessageTimeout}
}

// Validate checks the config at start.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.MaxBytesInFlight <= 0 {
		errs = append(errs, fmt.Errorf("max_bytes_in_flight must be positive (default %d, 64 MiB; at least the servers' max_request_body_size), got %d", defaultMaxBytesInFlight, cfg.MaxBytesInFlight))
	}
	if cfg.RetryAfter < time.Second || cfg.RetryAfter%time.Second != 0 {
		errs = append(errs, fmt.Errorf("retry_after must be a whole number of seconds, at least 1s (Retry-After is in seconds), got %s", cfg.RetryAfter))
	}
	if cfg.BodyStallTimeout < 0 {
		errs = append(errs, fmt.Errorf("body_stall_timeout must not be negative (default %s; 0: never), got %s", defaultBodyStallTimeout, cfg.BodyStallTimeout))
	}
	if cfg.GRPCMessageTimeout < 0 {
		errs = append(errs, fmt.Errorf("grpc_message_timeout must not be negative (default %s; 0: never), got %s", defaultGRPCMessageTimeout, cfg.GRPCMessageTimeout))
	}
	if cfg.GRPCBytesPerCall <= 0 || cfg.GRPCBytesPerCall > cfg.MaxBytesInFlight {
		errs = append(errs, fmt.Errorf("grpc_bytes_per_call must be positive and at most max_bytes_in_flight (%d) (default %d: the gRPC servers' max_recv_msg_size_mib of 4), got %d",
			cfg.MaxBytesInFlight, defaultGRPCBytesPerCall, cfg.GRPCBytesPerCall))
	}
	if n := cfg.GRPCMaxBytesInFlight; n < 0 || (n > 0 && (n < cfg.GRPCBytesPerCall || n > cfg.MaxBytesInFlight)) {
		errs = append(errs, fmt.Errorf("grpc_max_bytes_in_flight must be at least grpc_bytes_per_call (%d) and at most max_bytes_in_flight (%d) (default 0: half of max_bytes_in_flight), got %d",
			cfg.GRPCBytesPerCall, cfg.MaxBytesInFlight, n))
	}
	return errors.Join(errs...)
}
