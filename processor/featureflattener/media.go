package featureflattener

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Drop reasons: the values of the "reason" attribute of the dropped-values
// metric. The first six are media: they also name the column in
// modeldata.dropped_columns; the next four are column selection; the last is
// a record timestamp replaced because it is not a scoring time.
const (
	reasonBytes       = "bytes"                  // a byte value
	reasonDataURI     = "data_uri"               // a data: URI
	reasonBase64Media = "base64_media"           // base64 whose decoded head is an image/audio/video signature
	reasonName        = "media_name"             // the column name says image/audio/video
	reasonContentType = "content_type"           // a sibling key declares an image/audio/video content type
	reasonSize        = "size"                   // over media.max_value_size
	reasonDuplicate   = "duplicate"              // a second value for a column name already taken
	reasonExcluded    = "excluded"               // removed by a rule's include/exclude
	reasonUnlisted    = "unlisted"               // a new column while allow_new_columns is false
	reasonMaxColumns  = "max_columns"            // a column past the first max_columns of its record
	reasonTimestamp   = "timestamp_out_of_range" // a record timestamp of 2^63 ns or more (contract.IsScoringTime)
)

var allReasons = []string{reasonBytes, reasonDataURI, reasonBase64Media, reasonName, reasonContentType,
	reasonSize, reasonDuplicate, reasonExcluded, reasonUnlisted, reasonMaxColumns, reasonTimestamp}

// minBase64Media is the shortest string checked for a base64 media head
// (12 decoded bytes: enough for every signature below, and short words
// never pay for a decode).
const minBase64Media = 16

// isDataURI reports whether s is a data: URI ("data:[<type>/<subtype>][;params],<data>").
func isDataURI(s string) bool {
	if len(s) < 6 || !strings.EqualFold(s[:5], "data:") {
		return false
	}
	rest := s[5:]
	if len(rest) > 256 {
		rest = rest[:256]
	}
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return false
	}
	meta := rest[:comma]
	if meta == "" || meta[0] == ';' {
		return true
	}
	mediatype, _, _ := strings.Cut(meta, ";")
	typ, sub, ok := strings.Cut(mediatype, "/")
	return ok && isToken(typ) && isToken(sub)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&^_.+-", c) >= 0) {
			return false
		}
	}
	return true
}

// isBase64Media reports whether s is base64 (standard or URL alphabet) whose
// decoded head carries a known image, audio or video signature.
func isBase64Media(s string) bool {
	if len(s) < minBase64Media {
		return false
	}
	head := s
	if len(head) > 64 {
		head = head[:64]
	}
	url := false
scan:
	for i := 0; i < len(head); i++ {
		switch c := head[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		case c == '-' || c == '_':
			url = true
		case c == '=': // padding: the data ends here
			head = head[:i]
			break scan
		default:
			return false
		}
	}
	head = head[:len(head)/4*4]
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	var src [64]byte
	var buf [48]byte
	n, _ := enc.Decode(buf[:], src[:copy(src[:], head)])
	return mediaSignature(buf[:n]) != ""
}

// mediaSignature names the image/audio/video format whose magic bytes start
// b, or returns "".
func mediaSignature(b []byte) string {
	has := func(off int, sig string) bool {
		return len(b) >= off+len(sig) && string(b[off:off+len(sig)]) == sig
	}
	switch {
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "png"
	case has(0, "\xff\xd8\xff"):
		return "jpeg"
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "gif"
	case has(0, "RIFF") && has(8, "WEBP"):
		return "webp"
	case has(0, "RIFF") && has(8, "WAVE"), has(0, "RIFX") && has(8, "WAVE"):
		return "wav"
	case has(0, "RIFF") && has(8, "AVI "):
		return "avi"
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "tiff"
	case isBMP(b):
		return "bmp"
	case has(0, "ID3"):
		return "mp3"
	case isMPEGAudioFrame(b):
		return "mp3"
	case has(0, "OggS"):
		return "ogg"
	case has(0, "fLaC"):
		return "flac"
	case has(4, "ftyp"):
		return "mp4" // also mov, m4a, 3gp, heic, avif
	case has(0, "\x1a\x45\xdf\xa3"):
		return "matroska" // also webm
	case has(0, "FORM") && (has(8, "AIFF") || has(8, "AIFC")):
		return "aiff"
	case has(0, "#!AMR"):
		return "amr"
	case has(0, "MThd"):
		return "midi"
	case has(0, "FLV\x01"):
		return "flv"
	case has(0, "\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
		return "asf" // wmv, wma
	case has(0, "\x00\x00\x01\xba"), has(0, "\x00\x00\x01\xb3"):
		return "mpeg"
	case has(0, "\x00\x00\x00\x0cjP  \r\n\x87\n"), has(0, "\x00\x00\x00\x0cJXL \r\n\x87\n"), has(0, "\xff\x0a"):
		return "jpeg2000/jxl"
	case has(0, "8BPS"):
		return "psd"
	case has(0, "caff"):
		return "caf"
	}
	return ""
}

// isBMP checks "BM" plus zero reserved bytes and a known DIB header size, as
// two letters alone would match too much text.
func isBMP(b []byte) bool {
	if len(b) < 18 || b[0] != 'B' || b[1] != 'M' || !bytes.Equal(b[6:10], []byte{0, 0, 0, 0}) {
		return false
	}
	switch uint32(b[14]) | uint32(b[15])<<8 | uint32(b[16])<<16 | uint32(b[17])<<24 {
	case 12, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}

// isMPEGAudioFrame checks an MPEG audio frame header without ID3 tag: sync
// bits, a valid layer, and neither the "bad" bitrate nor the reserved rate.
func isMPEGAudioFrame(b []byte) bool {
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return false
	}
	version, layer := (b[1]>>3)&3, (b[1]>>1)&3
	bitrate, rate := b[2]>>4, (b[2]>>2)&3
	return version != 1 && layer != 0 && bitrate != 0xf && bitrate != 0 && rate != 3
}

// stringMediaReason tells why a string value is media, or "".
func (f *flattener) stringMediaReason(name, s string, inMediaMap bool) string {
	if r := f.valueMediaReason(s, inMediaMap); r != "" {
		return r
	}
	if f.nameIsMedia(name) {
		return reasonName
	}
	return ""
}

// valueMediaReason is stringMediaReason without the column name check.
func (f *flattener) valueMediaReason(s string, inMediaMap bool) string {
	switch {
	case inMediaMap:
		return reasonContentType
	case f.cfg.Media.MaxValueSize > 0 && len(s) > f.cfg.Media.MaxValueSize:
		return reasonSize
	case isDataURI(s):
		return reasonDataURI
	case isBase64Media(s):
		return reasonBase64Media
	}
	return ""
}

// nameIsMedia matches a column name against media.name_patterns, caching
// verdicts since the same names come back in every record.
func (f *flattener) nameIsMedia(name string) bool {
	if f.mediaNames == nil {
		return false
	}
	if v, ok := f.nameCache.Load(name); ok {
		return v.(bool)
	}
	match := f.mediaNames.MatchString(name)
	if f.nameCacheLen.Load() < maxNameCache {
		if _, loaded := f.nameCache.LoadOrStore(name, match); !loaded {
			f.nameCacheLen.Add(1)
		}
	}
	return match
}

// declaresMedia reports whether a map carries a content type key whose value
// is an image/audio/video type: its other string and byte values are the payload.
func (f *flattener) declaresMedia(m pcommon.Map) bool {
	if len(f.ctKeys) == 0 || len(f.cfg.Media.ContentTypes) == 0 {
		return false
	}
	for k, v := range m.All() {
		if !f.isContentTypeKey(k) || v.Type() != pcommon.ValueTypeStr {
			continue
		}
		ct := strings.ToLower(strings.TrimSpace(v.Str()))
		for _, p := range f.cfg.Media.ContentTypes {
			if strings.HasPrefix(ct, strings.ToLower(p)) {
				return true
			}
		}
	}
	return false
}

func (f *flattener) isContentTypeKey(k string) bool {
	if len(k) >= 64 || f.ctKeyLenMask&(1<<len(k)) == 0 {
		return false
	}
	return slices.Contains(f.ctKeys, k)
}
