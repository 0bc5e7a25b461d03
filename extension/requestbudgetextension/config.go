package requestbudgetextension

import (
	"errors"
	"fmt"
	"time"
)

const (
	defaultMaxBytesInFlight = 64 << 20
	defaultRetryAfter       = time.Second
)

// Config bounds the request bodies the HTTP servers naming this extension
// in their `middlewares` hold at once, all of them together.
type Config struct {
	// MaxBytesInFlight is the most bytes of request bodies held at once, from
	// the first byte read until the server's handler returns. A request that
	// does not fit is answered 503 with Retry-After; a body larger than the
	// whole budget, 413.
	MaxBytesInFlight int64 `mapstructure:"max_bytes_in_flight"`
	// RetryAfter is the Retry-After of a 503, in whole seconds.
	RetryAfter time.Duration `mapstructure:"retry_after"`
}

func createDefaultConfig() *Config {
	return &Config{MaxBytesInFlight: defaultMaxBytesInFlight, RetryAfter: defaultRetryAfter}
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
	return errors.Join(errs...)
}
