package requestbudgetextension

import (
	"mime"
	"net/http"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// decodedBytesPerLogRecord is what the otlp receiver's decoding of one log
// record costs beyond its bytes on the wire: pdata v1.71 allocates 173 bytes
// for a record of only a timestamp (11 bytes on the wire), measured with
// runtime.MemStats around plog.ProtoUnmarshaler on 1,000,000 such records;
// rounded up. A larger record costs more, but so do its bytes, which are
// charged as well.
const decodedBytesPerLogRecord = 192

// otlpLogsDecoded charges an OTLP/HTTP protobuf logs body (a path ending
// /v1/logs, the otlp receiver's default, and Content-Type
// application/x-protobuf) decodedBytesPerLogRecord for each log record, as
// its bytes stream through. confighttp decompresses bodies before its
// middlewares, so the scanner sees the protobuf whatever the
// Content-Encoding. Other requests are charged their bytes only.
func otlpLogsDecoded(req *http.Request) func(chunk []byte) int64 {
	if !strings.HasSuffix(req.URL.Path, "/v1/logs") {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/x-protobuf" {
		return nil
	}
	s := &logRecordScanner{}
	return func(chunk []byte) int64 { return s.scan(chunk) * decodedBytesPerLogRecord }
}

// The nesting of an ExportLogsServiceRequest down to its records: field 1
// resource_logs (ResourceLogs), its field 2 scope_logs (ScopeLogs), its
// field 2 log_records (LogRecord).
var logRecordPath = [...]protowire.Number{1, 2, 2}

const (
	readTag = iota
	readVarint
	readLength
)

// logRecordScanner counts the LogRecord messages of an
// ExportLogsServiceRequest in protobuf as its bytes arrive, in chunks cut
// anywhere, without holding them: it reads tags and lengths, steps into
// resource_logs and scope_logs and skips everything else by its length. On
// malformed protobuf it stops counting (what it counted stays): the otlp
// receiver refuses the body when it decodes it.
type logRecordScanner struct {
	pos    int64                         // bytes scanned
	ends   [len(logRecordPath) - 1]int64 // where the open ResourceLogs and ScopeLogs end
	depth  int                           // messages open
	state  int
	field  protowire.Number // of the length being read
	varint uint64           // of the varint being read
	shift  uint
	skip   int64 // bytes left of a skipped field
	broken bool
}

// scan reads chunk and returns the log records that started in it.
func (s *logRecordScanner) scan(chunk []byte) (records int64) {
	for len(chunk) > 0 && !s.broken {
		if s.skip > 0 {
			k := min(s.skip, int64(len(chunk)))
			chunk, s.pos, s.skip = chunk[k:], s.pos+k, s.skip-k
			continue
		}
		if s.state == readTag && s.shift == 0 && !s.close() {
			return records
		}
		b := chunk[0]
		chunk, s.pos = chunk[1:], s.pos+1
		if s.shift > 63 { // over the 10 bytes of a varint
			s.broken = true
			return records
		}
		s.varint |= uint64(b&0x7f) << s.shift
		if b&0x80 != 0 {
			s.shift += 7
			continue
		}
		v := s.varint
		s.varint, s.shift = 0, 0
		switch s.state {
		case readTag:
			s.tag(v)
		case readVarint:
			s.state = readTag
		case readLength:
			if s.length(v) {
				records++
			}
		}
	}
	return records
}

// close ends the messages that end here; false when a field ran past the
// end of its message.
func (s *logRecordScanner) close() bool {
	for s.depth > 0 && s.pos >= s.ends[s.depth-1] {
		if s.pos > s.ends[s.depth-1] {
			s.broken = true
			return false
		}
		s.depth--
	}
	return true
}

// room is the bytes left in the innermost open message (-1: no limit, at
// the top).
func (s *logRecordScanner) room() int64 {
	if s.depth == 0 {
		return -1
	}
	return s.ends[s.depth-1] - s.pos
}

func (s *logRecordScanner) tag(v uint64) {
	num, typ := protowire.DecodeTag(v)
	if !num.IsValid() {
		s.broken = true
		return
	}
	switch typ {
	case protowire.VarintType:
		s.state = readVarint
	case protowire.Fixed32Type:
		s.skipField(4)
	case protowire.Fixed64Type:
		s.skipField(8)
	case protowire.BytesType:
		s.state, s.field = readLength, num
	default: // groups, which OTLP does not use, and invalid types
		s.broken = true
	}
}

func (s *logRecordScanner) skipField(n int64) {
	if room := s.room(); room >= 0 && n > room {
		s.broken = true
		return
	}
	s.skip, s.state = n, readTag
}

// length starts a field of n bytes: it steps into a ResourceLogs or a
// ScopeLogs, and skips any other field; it reports whether the field is a
// LogRecord.
func (s *logRecordScanner) length(n uint64) (record bool) {
	if room := s.room(); n > 1<<62 || room >= 0 && int64(n) > room {
		s.broken = true
		return false
	}
	s.state = readTag
	if s.field != logRecordPath[s.depth] {
		s.skip = int64(n)
		return false
	}
	if s.depth == len(s.ends) {
		s.skip = int64(n)
		return true
	}
	s.ends[s.depth] = s.pos + int64(n)
	s.depth++
	return false
}
